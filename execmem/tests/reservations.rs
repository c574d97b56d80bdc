//! The batch API at its boundaries: lengths, alignments, names, writes,
//! reservations used where they do not belong, packing, padding, and the
//! statistics each step leaves.

use execmem::limits::{MAX_ALIGNMENT, MAX_NAME_LEN, MAX_RESERVATION_LEN};
use execmem::{Config, Error, ExecMemory, PerfMap, Protection, Stats};

fn memory_with(region_size: usize) -> ExecMemory {
    ExecMemory::new(Config {
        region_size,
        perf_map: PerfMap::Disabled,
        ..Config::default()
    })
    .expect("allocator")
}

fn memory() -> ExecMemory {
    memory_with(Config::default().region_size)
}

#[test]
fn reservation_length_must_be_between_one_and_the_limit() {
    let memory = memory();
    let mut batch = memory.batch();
    assert!(matches!(
        batch.reserve("f", 0, 1),
        Err(Error::InvalidLength { len: 0, .. })
    ));
    assert_eq!(batch.reserve("f", 1, 1).expect("one byte").size(), 1);
    assert_eq!(
        batch
            .reserve("f", MAX_RESERVATION_LEN, 1)
            .expect("the limit")
            .size(),
        MAX_RESERVATION_LEN
    );
    assert!(matches!(
        batch.reserve("f", MAX_RESERVATION_LEN + 1, 1),
        Err(Error::InvalidLength { .. })
    ));
    assert_eq!(batch.len(), 2);
}

#[test]
fn alignment_must_be_a_power_of_two_up_to_the_limit() {
    let memory = memory();
    let mut batch = memory.batch();
    for align in [0, 3, 24, MAX_ALIGNMENT + 1, MAX_ALIGNMENT * 2] {
        assert!(
            matches!(
                batch.reserve("f", 8, align),
                Err(Error::InvalidAlignment { .. })
            ),
            "alignment {align}"
        );
    }
    for align in [1, 2, 16, 64, MAX_ALIGNMENT / 2, MAX_ALIGNMENT] {
        // A one-byte reservation first, so every aligned one needs padding.
        batch.reserve("pad", 1, 1).expect("reserved");
        let r = batch.reserve("f", 8, align).expect("reserved");
        assert_eq!(r.address() % align, 0, "alignment {align}");
    }
}

#[test]
fn names_longer_than_the_limit_are_refused() {
    let memory = memory();
    let mut batch = memory.batch();
    let long = "n".repeat(MAX_NAME_LEN);
    batch.reserve(&long, 4, 1).expect("at the limit");
    assert!(matches!(
        batch.reserve(&format!("{long}n"), 4, 1),
        Err(Error::NameTooLong { len, max }) if len == MAX_NAME_LEN + 1 && max == MAX_NAME_LEN
    ));
}

#[test]
fn writes_stay_inside_their_reservation() {
    let memory = memory();
    let mut batch = memory.batch();
    let r = batch.reserve("f", 16, 16).expect("reserved");
    let after = batch.reserve("g", 16, 16).expect("reserved");
    assert_eq!(after.address(), r.address() + 16);

    batch.write(&r, 0, &[1; 16]).expect("whole reservation");
    batch.write(&r, 15, &[2]).expect("last byte (len - 1)");
    batch
        .write(&r, 16, &[])
        .expect("empty write at the end (len)");
    assert!(matches!(
        batch.write(&r, 16, &[3]),
        Err(Error::OutOfBounds {
            offset: 16,
            len: 1,
            reserved: 16,
            ..
        })
    ));
    assert!(matches!(
        batch.write(&r, 17, &[]),
        Err(Error::OutOfBounds { offset: 17, .. })
    ));
    assert!(matches!(
        batch.write(&r, 0, &[4; 17]),
        Err(Error::OutOfBounds { len: 17, .. })
    ));
    assert!(matches!(
        batch.write(&r, usize::MAX, &[5]),
        Err(Error::OutOfBounds { .. })
    ));
    // Failed writes changed nothing, here or in the neighbour.
    let mut expected = [1u8; 16];
    expected[15] = 2;
    assert_eq!(batch.bytes_mut(&r).expect("own"), &expected);
    assert_eq!(batch.bytes_mut(&after).expect("own"), &[0xCC; 16]);
}

#[test]
fn reservations_only_work_with_their_own_batch_and_code() {
    let memory = memory();
    let mut first = memory.batch();
    let mut second = memory.batch();
    let mine = first.reserve("mine", 4, 4).expect("reserved");
    let theirs = second.reserve("theirs", 4, 4).expect("reserved");
    assert!(matches!(
        first.write(&theirs, 0, &[0xC3]),
        Err(Error::ForeignReservation { index: 0, address }) if address == theirs.address()
    ));
    assert!(matches!(
        first.bytes_mut(&theirs),
        Err(Error::ForeignReservation { .. })
    ));

    let first = first.publish().expect("published");
    let second = second.publish().expect("published");
    assert!(first.entry(&mine).is_ok());
    assert!(matches!(
        first.entry(&theirs),
        Err(Error::ForeignReservation { .. })
    ));
    assert!(matches!(
        second.bytes(&mine),
        Err(Error::ForeignReservation { .. })
    ));

    // Another allocator's reservations are foreign too.
    let other = memory_with(1);
    let mut batch = other.batch();
    assert!(matches!(
        batch.write(&mine, 0, &[0]),
        Err(Error::ForeignReservation { .. })
    ));
}

/// A hundred 100-byte functions at 16-byte alignment pack 112 bytes apart
/// into three pages, published with one protection change; padding and the
/// rest of the last page trap.
#[test]
fn small_functions_share_pages_and_padding_traps() {
    let memory = memory();
    let page = memory.page_size();
    let mut batch = memory.batch();
    let reservations: Vec<_> = (0..100)
        .map(|i| {
            let r = batch.reserve("f", 100, 16).expect("reserved");
            batch.write(&r, 0, &[i as u8; 100]).expect("fits");
            r
        })
        .collect();
    for pair in reservations.windows(2) {
        assert_eq!(pair[1].address() - pair[0].address(), 112);
    }
    let staged = memory.stats();
    assert_eq!(staged.bytes_writable, Config::default().region_size);
    assert_eq!(staged.bytes_executable, 0);
    assert_eq!(
        memory.protection_of(reservations[0].address()),
        Some(Protection::ReadWrite)
    );

    let code = batch.publish().expect("published");
    // 99 strides of 112 bytes and a last function of 100 bytes.
    let code_end = reservations[0].address() + 99 * 112 + 100;
    let used = (99 * 112 + 100usize).div_ceil(page) * page;
    if page == 4096 {
        assert_eq!(used, 3 * 4096);
    }

    let stats = memory.stats();
    assert_eq!(
        stats,
        Stats {
            bytes_reserved: used,
            bytes_writable: 0,
            bytes_executable: used,
            bytes_code: 10_000,
            regions: 1,
            // A batch of several pages maps its own region.
            bytes_pooled: 0,
            functions: 100,
            protection_changes: 1,
            publications: 1,
            functions_published: 100,
            perf_map_failures: 0,
            jitdump_failures: 0,
        }
    );
    assert_eq!(stats.density(), Some(10_000.0 / used as f64));
    assert_eq!(stats.protection_changes_per_function(), Some(0.01));

    let mut regions = code.regions();
    let region = regions.next().expect("one region");
    assert_eq!(regions.next(), None);
    assert_eq!(
        region,
        reservations[0].address()..reservations[0].address() + used
    );
    for (i, r) in reservations.iter().enumerate() {
        assert_eq!(code.bytes(r).expect("own"), &[i as u8; 100]);
        assert_eq!(
            memory.protection_of(r.address()),
            Some(Protection::ReadExecute)
        );
        assert!(code.contains(r.address()));
    }
    assert_eq!(
        memory.protection_of(region.end - 1),
        Some(Protection::ReadExecute)
    );
    assert_eq!(memory.protection_of(region.end), None);
    assert!(!code.contains(region.end));

    // SAFETY: the region is published (readable) and stays mapped while
    // `code` lives, which outlives this slice.
    let published = unsafe { std::slice::from_raw_parts(region.start as *const u8, region.len()) };
    let offset = |address: usize| address - region.start;
    for r in &reservations[..99] {
        let gap = offset(r.address() + 100)..offset(r.address() + 112);
        assert!(published[gap].iter().all(|&b| b == 0xCC));
    }
    assert!(published[offset(code_end)..].iter().all(|&b| b == 0xCC));
    assert_eq!(published[offset(code_end) - 1], 99);
}

#[test]
fn a_reservation_larger_than_the_region_size_gets_its_own_region() {
    let memory = memory_with(1);
    let page = memory.page_size();
    let mut batch = memory.batch();
    let small = batch.reserve("small", 100, 16).expect("reserved");
    let big = batch.reserve("big", 3 * page + 1, 16).expect("reserved");
    let fits_first = batch.reserve("fits", 100, 16).expect("reserved");
    assert_eq!(fits_first.address(), small.address() + 112, "first fit");
    assert_eq!(memory.stats().regions, 2);
    assert_eq!(memory.stats().bytes_writable, page + 4 * page);
    let code = batch.publish().expect("published");
    assert_eq!(memory.stats().protection_changes, 2);
    assert_eq!(code.function_count(), 3);
    assert_eq!(code.code_bytes(), 200 + 3 * page + 1);
    assert_eq!(code.bytes(&big).expect("own").len(), 3 * page + 1);
}

#[test]
fn capacity_hint_maps_exactly_what_is_needed() {
    let memory = memory();
    let page = memory.page_size();
    let mut batch = memory.batch_with_capacity(page + 1);
    batch.reserve("f", 10, 16).expect("reserved");
    assert_eq!(memory.stats().bytes_writable, 2 * page);
    // Past the hint, regions of the configured size follow.
    batch.reserve("g", 2 * page, 16).expect("reserved");
    assert_eq!(
        memory.stats().bytes_writable,
        2 * page + Config::default().region_size
    );
}

#[test]
fn publishing_an_empty_batch_changes_nothing() {
    let memory = memory();
    let batch = memory.batch();
    assert!(batch.is_empty());
    let code = batch.publish().expect("published");
    assert_eq!(code.function_count(), 0);
    assert_eq!(code.regions().count(), 0);
    assert_eq!(memory.stats(), Stats::default());
}

#[test]
fn region_size_is_checked_and_rounded_to_pages() {
    let zero = ExecMemory::new(Config {
        region_size: 0,
        perf_map: PerfMap::Disabled,
        ..Config::default()
    });
    assert!(matches!(
        zero,
        Err(Error::InvalidRegionSize { size: 0, .. })
    ));
    let too_big = ExecMemory::new(Config {
        region_size: execmem::limits::MAX_REGION_SIZE + 1,
        perf_map: PerfMap::Disabled,
        ..Config::default()
    });
    assert!(matches!(too_big, Err(Error::InvalidRegionSize { .. })));
    let memory = memory_with(1);
    let mut batch = memory.batch();
    batch.reserve("f", 1, 1).expect("reserved");
    assert_eq!(memory.stats().bytes_writable, memory.page_size());
}

#[test]
fn errors_read_as_sentences() {
    let memory = memory();
    let mut batch = memory.batch();
    let r = batch.reserve("f", 4, 4).expect("reserved");
    let error = batch.write(&r, 3, &[1, 2]).expect_err("overrun");
    assert_eq!(
        error.to_string(),
        format!(
            "writing 2 bytes at offset 3 overruns the 4-byte reservation at {:#x}",
            r.address()
        )
    );
    assert_eq!(
        batch.reserve("f", 0, 1).expect_err("empty").to_string(),
        format!(
            "a reservation of 0 bytes is not possible: it must be between 1 and {MAX_RESERVATION_LEN} bytes"
        )
    );
}

#[test]
fn functions_named_within_a_reservation_stay_inside_it() {
    let memory = memory();
    let mut batch = memory.batch();
    let r = batch.reserve("section", 64, 16).expect("reserved");
    batch.name_within(&r, 0, 64, "whole").expect("all of it");
    batch.name_within(&r, 63, 1, "last byte").expect("len - 1");
    for (offset, len) in [(0, 0), (0, 65), (63, 2), (64, 1), (usize::MAX, 2)] {
        assert!(
            matches!(
                batch.name_within(&r, offset, len, "f"),
                Err(Error::InvalidLength { .. })
            ),
            "{offset} + {len}"
        );
    }
    let long = "n".repeat(MAX_NAME_LEN + 1);
    assert!(matches!(
        batch.name_within(&r, 0, 1, &long),
        Err(Error::NameTooLong { .. })
    ));
    let other = memory.batch().reserve("f", 8, 8).expect("reserved");
    assert!(matches!(
        batch.name_within(&other, 0, 1, "f"),
        Err(Error::ForeignReservation { .. })
    ));
}

#[test]
fn instruction_len_is_the_whole_reservation_unless_set_and_never_more() {
    let memory = memory();
    let mut batch = memory.batch();
    let a = batch.reserve("a", 24, 8).expect("reserved");
    let b = batch.reserve("b", 24, 8).expect("reserved");
    batch.set_instruction_len(&b, 24).expect("len");
    batch.set_instruction_len(&b, 11).expect("below len");
    assert!(matches!(
        batch.set_instruction_len(&b, 25),
        Err(Error::InvalidLength { len: 25, max: 24 })
    ));
    let code = batch.publish().expect("published");
    assert_eq!(code.instruction_len(&a).expect("own"), 24);
    assert_eq!(code.instruction_len(&b).expect("own"), 11);
}
