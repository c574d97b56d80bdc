//! Growing while other threads access: every write within the length they
//! saw lands and stays, every access past the length fails, nothing
//! crashes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use jit_shared::limits::PAGE_SIZE;
use jit_shared::{SharedMemory, SharedTable};

const WORKERS: u64 = 3;
const MAXIMUM_PAGES: u64 = 48;

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Writes and reads back 8-byte values at offsets of its own (every
/// `WORKERS`-th 8-byte slot, starting at slot `worker`) below the length it
/// sees, and tries accesses at and past that length. Returns what it wrote
/// last at each offset.
fn memory_worker(
    memory: &SharedMemory,
    worker: u64,
    start: &Barrier,
    grown: &AtomicBool,
) -> HashMap<u64, u64> {
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15 ^ (worker + 1));
    let mut written = HashMap::new();
    start.wait();
    let mut rounds = 0_u64;
    while !grown.load(Ordering::Acquire) || rounds < 1000 {
        rounds += 1;
        let length = memory.size_bytes();
        let slots = length / (8 * WORKERS);
        if slots > 0 {
            let offset = (random.next() % slots * WORKERS + worker) * 8;
            let value = random.next();
            memory.write(offset, &value.to_le_bytes()).unwrap();
            let mut bytes = [0; 8];
            memory.read(offset, &mut bytes).unwrap();
            assert_eq!(u64::from_le_bytes(bytes), value, "at {offset}");
            written.insert(offset, value);
        }
        // At the length seen: in bounds only if a grow happened since.
        let mut byte = [0];
        if memory.read(length, &mut byte).is_ok() {
            assert!(memory.size_bytes() > length);
        }
        // Past the maximum: always out of bounds.
        let maximum = MAXIMUM_PAGES * PAGE_SIZE;
        assert!(memory.read(maximum, &mut byte).is_err());
        assert!(memory.write(maximum - 4, &[0; 8]).is_err());
    }
    written
}

#[test]
fn accesses_race_with_grows_safely() {
    let memory = Arc::new(SharedMemory::new("m", 1, Some(MAXIMUM_PAGES)).unwrap());
    let base = memory.descriptor().base;
    let start = Arc::new(Barrier::new(usize::try_from(WORKERS).unwrap() + 1));
    let grown = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (memory, start, grown) = (memory.clone(), start.clone(), grown.clone());
            thread::spawn(move || memory_worker(&memory, worker, &start, &grown))
        })
        .collect();
    start.wait();
    let mut expected = 1;
    while memory.size_pages() < MAXIMUM_PAGES {
        assert_eq!(memory.grow(1), expected);
        expected += 1;
        thread::yield_now();
    }
    assert_eq!(memory.grow(1), -1);
    grown.store(true, Ordering::Release);
    let written: Vec<_> = workers
        .into_iter()
        .map(|worker| worker.join().unwrap())
        .collect();

    assert_eq!(memory.descriptor().base, base);
    assert_eq!(
        memory.descriptor().version.load(Ordering::Acquire),
        MAXIMUM_PAGES - 1
    );
    // Nothing written was lost to a grow.
    let mut checked = 0;
    for (offset, value) in written.iter().flatten() {
        let mut bytes = [0; 8];
        memory.read(*offset, &mut bytes).unwrap();
        assert_eq!(u64::from_le_bytes(bytes), *value, "at {offset}");
        checked += 1;
    }
    assert!(checked > 0);
    let mut byte = [0];
    assert!(memory.read(memory.size_bytes(), &mut byte).is_err());
}

#[test]
fn table_accesses_race_with_grows_safely() {
    const MAXIMUM: u64 = 4096;
    let table = Arc::new(SharedTable::new("t", 1, Some(MAXIMUM)).unwrap());
    let start = Arc::new(Barrier::new(usize::try_from(WORKERS).unwrap() + 1));
    let grown = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (table, start, grown) = (table.clone(), start.clone(), grown.clone());
            thread::spawn(move || {
                let mut random = XorShift(0x2545_F491_4F6C_DD1D ^ (worker + 1));
                let mut written = HashMap::new();
                start.wait();
                while !grown.load(Ordering::Acquire) {
                    let length = table.len();
                    let slots = length / WORKERS;
                    if slots > 0 {
                        let index = random.next() % slots * WORKERS + worker;
                        let value = random.next() | 1;
                        table.set(index, value).unwrap();
                        assert_eq!(table.get(index), Some(value));
                        written.insert(index, value);
                    }
                    if table.get(length).is_some() {
                        assert!(table.len() > length);
                    }
                    assert_eq!(table.get(MAXIMUM), None);
                    assert!(table.set(MAXIMUM, 1).is_err());
                }
                written
            })
        })
        .collect();
    start.wait();
    while table.len() < MAXIMUM {
        assert!(table.grow(7.min(i64::try_from(MAXIMUM - table.len()).unwrap())) > 0);
    }
    grown.store(true, Ordering::Release);
    for (index, value) in workers
        .into_iter()
        .flat_map(|worker| worker.join().unwrap())
    {
        assert_eq!(table.get(index), Some(value));
    }
}
