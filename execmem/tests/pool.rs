//! The pool of spare pages under `mprotect`: single-page batches take
//! pre-mapped pages, refills come a configured number of pages at a time,
//! pages never come back, and other batches and strategies do not use it.
//!
//! The tests run one at a time ([`serial`]). Those that check in
//! `/proc/self/maps` that a released page is gone are in `pool_unmapping.rs`,
//! a test binary of one test: here, the harness starting another test's
//! thread (a stack mapping) could take a just-released address at once.
#![cfg(target_os = "linux")]

mod common;
mod pool_support;

use execmem::{Config, Error, ExecMemory, PerfMap, Stats, Strategy, limits};
use pool_support::{pooled, publish_one, serial};

#[test]
fn nothing_is_pooled_before_the_first_batch() {
    let _serial = serial();
    let memory = pooled(4);
    assert_eq!(memory.stats(), Stats::default());
}

#[test]
fn single_page_batches_take_spares_and_refill_when_the_pool_is_dry() {
    let _serial = serial();
    let memory = pooled(4);
    let page = memory.page_size();
    let mut kept = Vec::new();
    // Pool of 4: takes 1..=4 come from the first refill, take 5 refills.
    for (taken, pooled_after) in [(1, 3), (2, 2), (3, 1), (4, 0), (5, 3), (6, 2)] {
        kept.push(publish_one(&memory));
        let stats = memory.stats();
        assert_eq!(stats.bytes_pooled, pooled_after * page, "after {taken}");
        assert_eq!(stats.bytes_reserved, taken * page, "after {taken}");
        assert_eq!(stats.bytes_executable, taken * page, "after {taken}");
        assert_eq!(stats.bytes_writable, 0, "after {taken}");
        assert_eq!(stats.regions, taken, "after {taken}");
        assert_eq!(stats.protection_changes, taken as u64, "after {taken}");
    }
    // The first refill was handed out from its lowest page up.
    let first: Vec<usize> = kept[..4]
        .iter()
        .map(|f| f.reservation().address())
        .collect();
    for pair in first.windows(2) {
        assert_eq!(pair[1], pair[0] + page);
    }
}

#[test]
fn batches_larger_than_a_page_map_their_own_regions() {
    let _serial = serial();
    let memory = pooled(4);
    let page = memory.page_size();
    for capacity in [page + 1, 2 * page] {
        let mut batch = memory.batch_with_capacity(capacity);
        batch.reserve("f", 100, 16).expect("reserved");
        assert_eq!(memory.stats().bytes_writable, 2 * page);
        assert_eq!(memory.stats().bytes_pooled, 0);
    }
    // A reservation of exactly a page still fits one pooled page.
    let mut batch = memory.batch_with_capacity(page);
    batch.reserve("f", page, 16).expect("reserved");
    assert_eq!(memory.stats().bytes_writable, page);
    assert_eq!(memory.stats().bytes_pooled, 3 * page);
    // One byte more takes two pages, mapped on demand.
    let mut batch = memory.batch_with_capacity(page);
    batch.reserve("g", page + 1, 16).expect("reserved");
    assert_eq!(memory.stats().bytes_pooled, 3 * page);
}

#[test]
fn a_pool_of_zero_maps_every_region_on_demand() {
    let _serial = serial();
    let memory = pooled(0);
    let kept: Vec<_> = (0..3).map(|_| publish_one(&memory)).collect();
    let stats = memory.stats();
    assert_eq!(stats.bytes_pooled, 0);
    assert_eq!(stats.regions, kept.len());
}

#[test]
fn memory_file_strategies_have_no_pool() {
    let _serial = serial();
    for strategy in [Strategy::DualMapping, Strategy::FileWrite] {
        let memory = ExecMemory::new(Config {
            perf_map: PerfMap::Disabled,
            strategy,
            pool_pages: 4,
            ..Config::default()
        })
        .expect("allocator");
        let _kept = publish_one(&memory);
        assert_eq!(memory.stats().bytes_pooled, 0);
    }
}

#[test]
fn pool_sizes_up_to_the_limit_are_accepted() {
    let _serial = serial();
    for pages in [0, 1, limits::MAX_POOL_PAGES - 1, limits::MAX_POOL_PAGES] {
        // Accepted, and in effect: the first single-page batch takes one
        // page of a refill of `pages` (none with the pool off).
        let memory = pooled(pages);
        let _kept = publish_one(&memory);
        let page = memory.page_size();
        assert_eq!(
            memory.stats().bytes_pooled,
            pages.saturating_sub(1) * page,
            "pool of {pages}"
        );
    }
    let refused = ExecMemory::new(Config {
        pool_pages: limits::MAX_POOL_PAGES + 1,
        ..Config::default()
    });
    match refused {
        Err(error @ Error::InvalidPoolSize { pages, max }) => {
            assert_eq!(
                (pages, max),
                (limits::MAX_POOL_PAGES + 1, limits::MAX_POOL_PAGES)
            );
            assert_eq!(
                error.to_string(),
                format!(
                    "a pool of {} spare pages was asked for, at most {} are allowed",
                    limits::MAX_POOL_PAGES + 1,
                    limits::MAX_POOL_PAGES
                )
            );
        }
        other => panic!("expected InvalidPoolSize, got {other:?}"),
    }
}

#[test]
fn pooled_functions_run_and_concurrent_takers_get_distinct_pages() {
    let _serial = serial();
    let memory = pooled(3);
    let page = memory.page_size();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let memory = memory.clone();
            std::thread::spawn(move || (0..10).map(|_| publish_one(&memory)).collect::<Vec<_>>())
        })
        .collect();
    let all: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    let mut addresses: Vec<usize> = all.iter().map(|f| f.reservation().address()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(addresses.len(), 40);
    let stats = memory.stats();
    assert_eq!(stats.bytes_executable, 40 * page);
    // 40 takes from refills of 3: 14 refills, 2 pages left over.
    assert_eq!(stats.bytes_pooled, 2 * page);
    for f in &all {
        // SAFETY: `ret` fits fn(i64, i64) -> i64 (rax is whatever it was).
        let call = unsafe { common::as_fn2(f.entry()) };
        call(0, 0);
    }
}
