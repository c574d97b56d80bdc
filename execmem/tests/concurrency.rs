//! Many threads reserve, write and publish at once through one shared
//! allocator; handles cross threads; the books balance afterwards.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{STRATEGIES, as_fn2, assemble, memory_with};
use execmem::{CodeBatch, ExecMemory, PublishedCode, PublishedFunction, Reservation, Strategy};
use iced_x86::code_asm::*;

const THREADS: u32 = 8;
const BATCHES: u32 = 25;
const FUNCTIONS: u32 = 20;

fn is_send_sync<T: Send + Sync>() {}
fn is_send<T: Send>() {}

#[test]
fn handles_are_shareable_across_threads() {
    is_send_sync::<ExecMemory>();
    is_send_sync::<PublishedCode>();
    is_send_sync::<PublishedFunction>();
    is_send_sync::<Reservation>();
    is_send::<CodeBatch>();
}

fn tag(thread: u32, batch: u32, function: u32) -> u32 {
    (thread << 16) | (batch << 8) | function
}

#[test]
fn threads_publishing_at_once_each_get_working_code() {
    for strategy in STRATEGIES {
        publish_from_many_threads(strategy);
    }
}

fn publish_from_many_threads(strategy: Strategy) {
    let memory = memory_with(strategy);
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let memory = memory.clone();
            std::thread::spawn(move || {
                (0..BATCHES)
                    .map(|batch_index| {
                        let mut batch = memory.batch();
                        let reservations: Vec<_> = (0..FUNCTIONS)
                            .map(|function| {
                                let value = tag(thread, batch_index, function);
                                let code = assemble(0, |a| {
                                    a.mov(eax, value)?;
                                    a.ret()
                                });
                                let r = batch.reserve("tag", code.len(), 16).expect("reserved");
                                batch.write(&r, 0, &code).expect("fits");
                                r
                            })
                            .collect();
                        (batch.publish().expect("published"), reservations)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let published: Vec<_> = workers
        .into_iter()
        .map(|worker| worker.join().expect("worker succeeded"))
        .collect();

    let stats = memory.stats();
    let batches = u64::from(THREADS * BATCHES);
    assert_eq!(stats.publications, batches);
    // Mprotect: one change per batch, no staging left. Dual mapping: no
    // change ever, and each region's writable view matches its executable
    // one. File writes: no change, nothing writable.
    let (changes, writable) = match memory.strategy() {
        Strategy::Mprotect => (batches, 0),
        Strategy::DualMapping => (0, stats.bytes_executable),
        Strategy::FileWrite => (0, 0),
    };
    assert_eq!(stats.protection_changes, changes);
    assert_eq!(stats.bytes_writable, writable);
    assert_eq!(stats.functions, (THREADS * BATCHES * FUNCTIONS) as usize);

    // Every function runs on another thread than the one that published it
    // and returns its own tag; no two functions share an address.
    let mut addresses = std::collections::HashSet::new();
    std::thread::scope(|scope| {
        for (thread, batches) in (0..).zip(&published) {
            for (batch_index, (code, reservations)) in (0..).zip(batches) {
                for r in reservations {
                    assert!(addresses.insert(r.address()));
                }
                let code = code.clone();
                scope.spawn(move || {
                    for (function, r) in (0..).zip(reservations) {
                        // SAFETY: `mov eax, imm32; ret` fits fn(i64, i64) -> i64
                        // and `code` lives in this closure.
                        let f = unsafe { as_fn2(code.entry(r).expect("own")) };
                        assert_eq!(f(0, 0), i64::from(tag(thread, batch_index, function)));
                    }
                });
            }
        }
    });

    drop(published);
    let stats = memory.stats();
    assert_eq!(stats.bytes_code, 0);
    assert_eq!(stats.functions, 0);
    // Dual mapping keeps its current region (two views) until the
    // allocator goes, file writes its one view.
    let (kept, writable) = match memory.strategy() {
        Strategy::Mprotect => (0, 0),
        Strategy::DualMapping => (2, stats.bytes_executable),
        Strategy::FileWrite => (1, 0),
    };
    assert_eq!(stats.regions, kept);
    assert_eq!(stats.bytes_writable, writable);
}
