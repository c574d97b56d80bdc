//! What the pool tests share: one test at a time, a pooled allocator, a
//! single-page publication, and `/proc/self/maps` read without mapping.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::common::{lines_over, read_maps_into};
use execmem::{Config, ExecMemory, PerfMap};

/// Held by every test of this file for its whole run.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Room to read `/proc/self/maps` into, reserved before anything is
/// released (a large allocation is a mapping of its own, which could land
/// on a just-released page).
pub fn maps_buffer() -> Vec<u8> {
    Vec::with_capacity(1 << 20)
}

/// Whether `/proc/self/maps` shows nothing over the page at `address`.
pub fn unmapped(buffer: &mut Vec<u8>, address: usize, page: usize) -> bool {
    lines_over(&read_maps_into(buffer), &(address..address + page)).is_empty()
}

/// An allocator whose pool refills `pool_pages` pages at a time, mapped
/// afresh (not from the process reserve, so refills are exact).
pub fn pooled(pool_pages: usize) -> ExecMemory {
    ExecMemory::new(Config {
        perf_map: PerfMap::Disabled,
        pool_pages,
        shared_spares: false,
        ..Config::default()
    })
    .expect("allocator")
}

/// [`pooled`], sharing its spares with the process reserve (the default).
pub fn pooled_shared(pool_pages: usize) -> ExecMemory {
    ExecMemory::new(Config {
        perf_map: PerfMap::Disabled,
        pool_pages,
        ..Config::default()
    })
    .expect("allocator")
}

/// `ret`, published alone: a single-page batch.
pub fn publish_one(memory: &ExecMemory) -> execmem::PublishedFunction {
    memory.publish_function("one", &[0xC3]).expect("published")
}
