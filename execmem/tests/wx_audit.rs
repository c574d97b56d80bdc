//! W^X audit: `/proc/self/maps` never shows a mapping that is writable and
//! executable, neither anywhere in the process nor over the ranges this
//! allocator hands out, before, during and after publication — while
//! another thread publishes at the same time.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{
    as_fn2, assemble, lines_over, memory, memory_with, read_maps, writable_and_executable,
};
use execmem::{ExecMemory, Protection, Reservation, Strategy};
use iced_x86::code_asm::*;

/// `mov eax, value ; ret`
fn returns(value: u32) -> Vec<u8> {
    assemble(0, |a| {
        a.mov(eax, value)?;
        a.ret()
    })
}

/// How a test opens its batches: in regions mapped on demand, or as
/// single pages from the allocator's pool of spare pages.
#[derive(Clone, Copy, Debug)]
enum Staging {
    Regions,
    PooledPages,
}

impl Staging {
    fn open(self, memory: &ExecMemory) -> execmem::CodeBatch {
        match self {
            Staging::Regions => memory.batch(),
            Staging::PooledPages => memory.batch_with_capacity(memory.page_size()),
        }
    }
}

/// Stages `count` functions returning `first ..`, writes them, returns the
/// batch and the reservations.
fn stage(memory: &ExecMemory, first: u32, count: u32) -> (execmem::CodeBatch, Vec<Reservation>) {
    stage_in(memory, Staging::Regions, first, count)
}

/// [`stage`] in batches opened as `staging` says.
fn stage_in(
    memory: &ExecMemory,
    staging: Staging,
    first: u32,
    count: u32,
) -> (execmem::CodeBatch, Vec<Reservation>) {
    let mut batch = staging.open(memory);
    let reservations = (first..first + count)
        .map(|value| {
            let code = returns(value);
            let r = batch.reserve("value", code.len(), 16).expect("reserved");
            batch.write(&r, 0, &code).expect("fits");
            r
        })
        .collect();
    (batch, reservations)
}

/// A thread publishing, calling and releasing batches until stopped.
struct Publisher {
    stop: Arc<AtomicBool>,
    published: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl Publisher {
    /// Starts publishing and returns once the first batch is out.
    fn start(memory: &ExecMemory) -> Self {
        Self::start_in(memory, Staging::Regions)
    }

    /// [`Publisher::start`] with batches opened as `staging` says.
    fn start_in(memory: &ExecMemory, staging: Staging) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (memory, stop, published) = (memory.clone(), stop.clone(), published.clone());
            std::thread::spawn(move || {
                let mut round = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let (batch, reservations) = stage_in(&memory, staging, round * 8, 8);
                    let code = batch.publish().expect("published");
                    for (value, r) in (round * 8..).zip(&reservations) {
                        // SAFETY: `mov eax, imm32; ret` fits fn(i64, i64) -> i64
                        // (upper half of rax is zeroed by the 32-bit mov).
                        let f = unsafe { as_fn2(code.entry(r).expect("own")) };
                        assert_eq!(f(0, 0), i64::from(value));
                    }
                    drop(code);
                    published.fetch_add(1, Ordering::Relaxed);
                    round = (round + 1) % 1000;
                }
            })
        };
        while published.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        Self {
            stop,
            published,
            thread,
        }
    }

    fn rounds(&self) -> usize {
        self.published.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("publisher thread succeeded");
    }
}

fn assert_no_writable_executable_mapping(when: &str) {
    let maps = read_maps();
    let bad = writable_and_executable(&maps);
    assert!(bad.is_empty(), "{when}: writable and executable: {bad:#?}");
}

#[test]
fn no_mapping_is_ever_writable_and_executable_with_a_concurrent_publisher() {
    audit_with_a_concurrent_publisher(Staging::Regions);
}

/// The same audit over single-page batches, which take pre-mapped pages
/// from the pool (refilled many times over: 16 pages a refill).
#[test]
fn pooled_pages_are_never_writable_and_executable_with_a_concurrent_publisher() {
    audit_with_a_concurrent_publisher(Staging::PooledPages);
}

/// Stages, publishes, calls and releases batches opened as `staging` says
/// while another thread does the same, reading `/proc/self/maps` at each
/// step.
fn audit_with_a_concurrent_publisher(staging: Staging) {
    let memory = memory();
    let publisher = Publisher::start_in(&memory, staging);

    let mut rounds = 0;
    while rounds < 40 || publisher.rounds() < 40 {
        assert_no_writable_executable_mapping("before staging");
        let (batch, reservations) = stage_in(&memory, staging, 1, 3);

        // Staging: our reservations are read-write, never executable.
        let maps = read_maps();
        assert!(writable_and_executable(&maps).is_empty(), "during staging");
        for r in &reservations {
            let lines = lines_over(&maps, &r.range());
            assert!(!lines.is_empty(), "staging at {:#x} is mapped", r.address());
            for line in lines {
                assert_eq!(&line.perms[..3], "rw-", "staging line {}", line.text);
            }
            assert_eq!(
                memory.protection_of(r.address()),
                Some(Protection::ReadWrite)
            );
        }

        let code = batch.publish().expect("published");

        // Published: read-execute, never writable.
        let maps = read_maps();
        assert!(
            writable_and_executable(&maps).is_empty(),
            "after publication"
        );
        for range in code.regions() {
            let lines = lines_over(&maps, &range);
            assert!(!lines.is_empty(), "published {range:#x?} is mapped");
            for line in lines {
                assert_eq!(&line.perms[..3], "r-x", "published line {}", line.text);
            }
        }
        for (value, r) in (1..).zip(&reservations) {
            assert_eq!(
                memory.protection_of(r.address()),
                Some(Protection::ReadExecute)
            );
            // SAFETY: see the publisher thread.
            let f = unsafe { as_fn2(code.entry(r).expect("own")) };
            assert_eq!(f(0, 0), value);
        }
        drop(code);
        assert_no_writable_executable_mapping("after release");
        rounds += 1;
    }
    publisher.stop();
}

/// Every address the books report matches the kernel's view, for staging
/// and published memory held at the same time.
#[test]
fn protection_of_agrees_with_the_maps() {
    let memory = memory();
    let (open, open_reservations) = stage(&memory, 0, 4);
    let (done, done_reservations) = stage(&memory, 10, 4);
    let done = done.publish().expect("published");
    let single = memory
        .publish_function("single", &returns(7))
        .expect("published");

    let maps = read_maps();
    let cases = open_reservations
        .iter()
        .map(|r| (r.address(), Protection::ReadWrite))
        .chain(
            done_reservations
                .iter()
                .map(|r| (r.address(), Protection::ReadExecute)),
        )
        .chain([(single.reservation().address(), Protection::ReadExecute)]);
    for (address, expected) in cases {
        assert_eq!(memory.protection_of(address), Some(expected));
        let lines = lines_over(&maps, &(address..address + 1));
        assert_eq!(lines.len(), 1, "one line covers {address:#x}");
        let perms = &lines[0].perms[..3];
        match expected {
            Protection::ReadWrite => assert_eq!(perms, "rw-"),
            Protection::ReadExecute => assert_eq!(perms, "r-x"),
        }
    }
    // Memory the allocator does not hold has no protection in its books.
    let outside = &maps as *const _ as usize;
    assert_eq!(memory.protection_of(outside), None);
    drop(open);
    drop(done);
}

/// Dual mapping and file writes: every reservation address lies in a
/// read-execute view from the start (bytes are written through the other,
/// read-write view, or into the file), each view of a code file is either
/// `rw-s` or `r-xs`, and nothing in the process is writable and executable
/// — while another thread publishes. File writes map nothing writable.
#[test]
fn memory_file_views_are_never_writable_and_executable() {
    for strategy in [Strategy::DualMapping, Strategy::FileWrite] {
        let memory = memory_with(strategy);
        if memory.strategy() != strategy {
            eprintln!(
                "{strategy:?} refused by this kernel; the mprotect audit covers the fallback"
            );
            continue;
        }
        let publisher = Publisher::start(&memory);
        let mut rounds = 0;
        while rounds < 40 || publisher.rounds() < 40 {
            let (batch, reservations) = stage(&memory, 1, 3);
            audit_dual_views(&memory, &reservations, "staging");
            let code = batch.publish().expect("published");
            audit_dual_views(&memory, &reservations, "published");
            for (value, r) in (1..).zip(&reservations) {
                // SAFETY: see the publisher thread.
                let f = unsafe { as_fn2(code.entry(r).expect("own")) };
                assert_eq!(f(0, 0), value);
            }
            drop(code);
            assert_no_writable_executable_mapping("after release");
            rounds += 1;
        }
        let stats = memory.stats();
        assert_eq!(stats.protection_changes, 0);
        if strategy == Strategy::FileWrite {
            assert_eq!(stats.bytes_writable, 0, "file writes map nothing writable");
        }
        publisher.stop();
    }
}

/// The memory-file checks of one moment (`when`).
fn audit_dual_views(memory: &ExecMemory, reservations: &[Reservation], when: &str) {
    let maps = read_maps();
    assert!(writable_and_executable(&maps).is_empty(), "{when}");
    let views: Vec<_> = maps
        .iter()
        .filter(|line| line.text.contains("/memfd:smfjit-code"))
        .collect();
    assert!(!views.is_empty(), "{when}: the views are mapped");
    for view in views {
        assert!(
            view.perms == "rw-s" || view.perms == "r-xs",
            "{when}: {}",
            view.text
        );
    }
    for r in reservations {
        let lines = lines_over(&maps, &r.range());
        assert!(
            !lines.is_empty() && lines.iter().all(|line| line.perms == "r-xs"),
            "{when}: {lines:?}"
        );
        assert_eq!(
            memory.protection_of(r.address()),
            Some(Protection::ReadExecute)
        );
    }
}

/// Spare pages wait in the pool read-write, never executable and outside
/// the books (no batch holds them); the page a batch took is published
/// read-execute on its own.
#[test]
fn spare_pages_are_read_write_and_outside_the_books() {
    let memory = memory();
    let page = memory.page_size();
    let pool = execmem::limits::DEFAULT_POOL_PAGES;
    let single = memory
        .publish_function("single", &returns(7))
        .expect("published");
    let taken = single.reservation().address();
    assert_eq!(
        taken % page,
        0,
        "a pooled page holds one function at its start"
    );
    // A refill is handed out lowest page first: the spares follow it.
    let spares = taken + page..taken + pool * page;
    let maps = read_maps();
    assert!(writable_and_executable(&maps).is_empty());
    let spare_lines = lines_over(&maps, &spares);
    assert!(!spare_lines.is_empty(), "spares are mapped");
    for line in spare_lines {
        assert_eq!(&line.perms[..3], "rw-", "spare line {}", line.text);
    }
    for address in spares.clone().step_by(page) {
        assert_eq!(memory.protection_of(address), None);
    }
    let published = lines_over(&maps, &(taken..taken + page));
    assert_eq!(published.len(), 1);
    assert_eq!(&published[0].perms[..3], "r-x");
    assert_eq!(memory.protection_of(taken), Some(Protection::ReadExecute));
    assert_eq!(memory.stats().bytes_pooled, (pool - 1) * page);
    assert_eq!(memory.stats().bytes_reserved, page);
    // SAFETY: `mov eax, 7; ret` fits fn(i64, i64) -> i64.
    let f = unsafe { as_fn2(single.entry()) };
    assert_eq!(f(0, 0), 7);
}
