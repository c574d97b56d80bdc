//! Released memory leaves the mappings. One test in its own binary, so no
//! other test maps memory that could land on the ranges it watches; the maps
//! buffer is allocated up front for the same reason.
#![cfg(target_os = "linux")]

mod common;

use common::{lines_over, read_maps_into};
use execmem::{Config, ExecMemory, PerfMap, Stats, Strategy};

#[test]
fn released_code_and_abandoned_batches_leave_the_mappings() {
    let mut buffer = Vec::with_capacity(4 << 20);
    let memory = ExecMemory::new(Config {
        region_size: 1,
        perf_map: PerfMap::Disabled,
        ..Config::default()
    })
    .expect("allocator");
    let page = memory.page_size();

    // Three functions that each need most of a one-page region.
    let mut batch = memory.batch();
    let reservations: Vec<_> = (0..3)
        .map(|_| batch.reserve("big", page - 100, 16).expect("reserved"))
        .collect();
    let code = batch.publish().expect("published");
    let regions: Vec<_> = code.regions().collect();
    assert_eq!(regions.len(), 3);
    for (range, r) in regions.iter().zip(&reservations) {
        assert_eq!(range.len(), page);
        assert_eq!(range.start, r.address());
    }
    let maps = read_maps_into(&mut buffer);
    for range in &regions {
        let lines = lines_over(&maps, range);
        assert!(lines.iter().all(|line| &line.perms[..3] == "r-x"));
        assert!(!lines.is_empty());
    }

    // A clone keeps the code mapped; the last drop unmaps it.
    let clone = code.clone();
    drop(code);
    let maps = read_maps_into(&mut buffer);
    for range in &regions {
        assert!(!lines_over(&maps, range).is_empty(), "still referenced");
    }
    assert_eq!(memory.stats().functions, 3);
    drop(clone);
    let maps = read_maps_into(&mut buffer);
    for range in &regions {
        assert_eq!(lines_over(&maps, range), Vec::<&common::MapLine>::new());
    }
    assert_eq!(memory.stats().functions, 0);

    // The unused tail of a staging region is unmapped at publication.
    let memory = ExecMemory::new(Config {
        region_size: 16 * page,
        perf_map: PerfMap::Disabled,
        ..Config::default()
    })
    .expect("allocator");
    let mut batch = memory.batch();
    let r = batch.reserve("small", 100, 16).expect("reserved");
    let staging = r.address()..r.address() + 16 * page;
    let maps = read_maps_into(&mut buffer);
    assert!(
        lines_over(&maps, &staging)
            .iter()
            .all(|line| &line.perms[..3] == "rw-"
                && line.start <= staging.start
                && line.end >= staging.end)
    );
    let code = batch.publish().expect("published");
    let maps = read_maps_into(&mut buffer);
    let first_page = staging.start..staging.start + page;
    let tail = staging.start + page..staging.end;
    assert!(
        lines_over(&maps, &first_page)
            .iter()
            .all(|l| &l.perms[..3] == "r-x")
    );
    assert!(lines_over(&maps, &tail).is_empty(), "tail unmapped");
    drop(code);

    // An abandoned batch unmaps its staging memory.
    let mut batch = memory.batch();
    let r = batch.reserve("abandoned", 100, 16).expect("reserved");
    let staging = r.address()..r.address() + 16 * page;
    assert!(!lines_over(&read_maps_into(&mut buffer), &staging).is_empty());
    drop(batch);
    assert!(lines_over(&read_maps_into(&mut buffer), &staging).is_empty());

    let stats = memory.stats();
    assert_eq!(
        stats,
        Stats {
            protection_changes: 1,
            publications: 1,
            functions_published: 1,
            ..Stats::default()
        }
    );

    // Dual mapping and file writes: a retired region loses its views when
    // its last code goes; the current region stays until the allocator
    // goes.
    for (strategy, views) in [(Strategy::DualMapping, 2), (Strategy::FileWrite, 1)] {
        let memory = ExecMemory::new(Config {
            region_size: 1,
            perf_map: PerfMap::Disabled,
            strategy,
            ..Config::default()
        })
        .expect("allocator");
        if memory.strategy() != strategy {
            eprintln!("{strategy:?} refused by this kernel; its release is not applicable");
            continue;
        }
        let code_files = |buffer: &mut Vec<u8>| {
            read_maps_into(buffer)
                .into_iter()
                .filter(|line| line.text.contains("/memfd:smfjit-code"))
                .count()
        };
        let big = vec![0xC3; page - 100];
        let first = memory.publish_function("first", &big).expect("published");
        let second = memory.publish_function("second", &big).expect("published");
        let retired: Vec<_> = first.code().regions().collect();
        assert_eq!(retired.len(), 1);
        assert_eq!(retired[0].len(), page);
        assert!(!second.code().contains(first.reservation().address()));
        assert_eq!(code_files(&mut buffer), 2 * views, "two regions");
        assert_eq!(memory.stats().regions, 2 * views);

        drop(first);
        let maps = read_maps_into(&mut buffer);
        assert!(
            lines_over(&maps, &retired[0]).is_empty(),
            "retired region unmapped"
        );
        assert_eq!(code_files(&mut buffer), views);
        assert_eq!(memory.stats().regions, views);

        drop(second);
        assert_eq!(code_files(&mut buffer), views, "the current region stays");
        drop(memory);
        assert_eq!(code_files(&mut buffer), 0);
    }
}
