//! A shared memory's sizes, growth and bounds checks through the safe API.

use std::sync::atomic::Ordering;

use jit_shared::limits::{MAX_MEMORY_PAGES, PAGE_SIZE};
use jit_shared::{Error, OutOfBounds, SharedMemory, Space};

#[test]
fn starts_with_the_initial_pages_and_the_declared_maximum() {
    let memory = SharedMemory::new("env.memory", 2, Some(5)).unwrap();
    assert_eq!(memory.name(), "env.memory");
    assert_eq!(memory.size_pages(), 2);
    assert_eq!(memory.size_bytes(), 2 * PAGE_SIZE);
    let descriptor = memory.descriptor();
    assert_eq!(descriptor.length.load(Ordering::Acquire), 2 * PAGE_SIZE);
    assert_eq!(descriptor.maximum, 5 * PAGE_SIZE);
    assert_eq!(descriptor.version.load(Ordering::Acquire), 0);
    assert_ne!(descriptor.base, 0);
    assert_eq!(descriptor.base % PAGE_SIZE.min(4096), 0);
    assert_eq!(memory.descriptor_address(), memory.descriptor_ptr() as u64);
}

#[test]
fn without_a_maximum_the_limit_is_the_maximum() {
    let memory = SharedMemory::new("m", 0, None).unwrap();
    assert_eq!(memory.descriptor().maximum, MAX_MEMORY_PAGES * PAGE_SIZE);
    assert_eq!(
        memory.statistics().reserved_bytes,
        MAX_MEMORY_PAGES * PAGE_SIZE
    );
    assert_eq!(memory.grow(0), 0);
}

#[test]
fn grow_returns_the_old_size_and_refuses_past_the_maximum() {
    let memory = SharedMemory::new("m", 1, Some(4)).unwrap();
    assert_eq!(memory.grow(0), 1);
    assert_eq!(memory.grow(2), 1);
    assert_eq!(memory.size_pages(), 3);
    // One page past the maximum: refused, nothing changes.
    assert_eq!(memory.grow(2), -1);
    assert_eq!(memory.size_pages(), 3);
    // Exactly to the maximum.
    assert_eq!(memory.grow(1), 3);
    assert_eq!(memory.size_pages(), 4);
    assert_eq!(memory.grow(1), -1);
    assert_eq!(memory.grow(0), 4);
    assert_eq!(memory.size_pages(), 4);
}

#[test]
fn grow_refuses_negative_and_huge_deltas() {
    let memory = SharedMemory::new("m", 2, None).unwrap();
    assert_eq!(memory.grow(-1), -1);
    assert_eq!(memory.grow(i64::MIN), -1);
    assert_eq!(memory.grow(i64::MAX), -1);
    // Would overflow the length in bytes if multiplied unchecked.
    assert_eq!(memory.grow(1 << 50), -1);
    let limit = i64::try_from(MAX_MEMORY_PAGES).unwrap();
    assert_eq!(memory.grow(limit - 1), -1);
    assert_eq!(memory.size_pages(), 2);
    let statistics = memory.statistics();
    assert_eq!(statistics.grows, 0);
    assert_eq!(statistics.refused_grows, 5);
}

#[test]
fn grows_to_the_limit_without_a_maximum() {
    let memory = SharedMemory::new("m", 0, None).unwrap();
    let limit = i64::try_from(MAX_MEMORY_PAGES).unwrap();
    assert_eq!(memory.grow(limit), 0);
    assert_eq!(memory.size_pages(), MAX_MEMORY_PAGES);
    assert_eq!(memory.grow(1), -1);
    // The last byte is accessible, the next is not.
    let last = MAX_MEMORY_PAGES * PAGE_SIZE - 1;
    memory.write(last, &[7]).unwrap();
    let mut byte = [0];
    memory.read(last, &mut byte).unwrap();
    assert_eq!(byte, [7]);
    assert!(memory.read(last + 1, &mut byte).is_err());
}

#[test]
fn initial_and_grown_bytes_read_zero() {
    let memory = SharedMemory::new("m", 1, Some(3)).unwrap();
    let mut page = vec![0xAA; usize::try_from(PAGE_SIZE).unwrap()];
    memory.read(0, &mut page).unwrap();
    assert!(page.iter().all(|&byte| byte == 0));
    memory.write(PAGE_SIZE - 1, &[9]).unwrap();
    assert_eq!(memory.grow(2), 1);
    for at in [PAGE_SIZE, 2 * PAGE_SIZE] {
        page.fill(0xAA);
        memory.read(at, &mut page).unwrap();
        assert!(page.iter().all(|&byte| byte == 0), "page at {at}");
    }
    // What was written before the grow is still there.
    let mut byte = [0];
    memory.read(PAGE_SIZE - 1, &mut byte).unwrap();
    assert_eq!(byte, [9]);
}

#[test]
fn accesses_are_checked_against_the_length() {
    let memory = SharedMemory::new("m", 1, Some(2)).unwrap();
    let length = PAGE_SIZE;
    let mut one = [0];
    let mut two = [0; 2];
    // len − 1, len, len + 1.
    memory.write(length - 1, &[5]).unwrap();
    memory.read(length - 1, &mut one).unwrap();
    assert_eq!(one, [5]);
    assert_eq!(
        memory.read(length, &mut one),
        Err(OutOfBounds::Memory {
            offset: length,
            size: 1,
            length
        })
    );
    assert!(memory.read(length + 1, &mut one).is_err());
    assert!(memory.write(length, &[1]).is_err());
    // A range that starts inside and ends outside.
    assert_eq!(
        memory.read(length - 1, &mut two),
        Err(OutOfBounds::Memory {
            offset: length - 1,
            size: 2,
            length
        })
    );
    assert!(memory.write(length - 1, &[1, 2]).is_err());
    // A failed write changes nothing.
    memory.read(length - 1, &mut one).unwrap();
    assert_eq!(one, [5]);
    // Offsets whose end overflows.
    assert!(memory.read(u64::MAX, &mut one).is_err());
    assert!(memory.write(u64::MAX - 1, &[1, 2, 3]).is_err());
    // An empty access at the length is in bounds, one past it is not.
    memory.read(length, &mut []).unwrap();
    assert!(memory.read(length + 1, &mut []).is_err());
    // After a grow the same offsets are accessible.
    assert_eq!(memory.grow(1), 1);
    memory.read(length, &mut two).unwrap();
    assert_eq!(two, [0, 0]);
}

#[test]
fn the_base_never_changes_and_every_grow_bumps_the_version() {
    let memory = SharedMemory::new("m", 0, Some(40)).unwrap();
    let base = memory.descriptor().base;
    let address = memory.descriptor_address();
    for step in 1..=40 {
        assert_eq!(memory.grow(1), step - 1);
        let descriptor = memory.descriptor();
        assert_eq!(descriptor.base, base);
        assert_eq!(
            descriptor.version.load(Ordering::Acquire),
            u64::try_from(step).unwrap()
        );
        assert_eq!(memory.descriptor_address(), address);
    }
    // Neither a refused grow nor a grow by 0 changes the version.
    assert_eq!(memory.grow(1), -1);
    assert_eq!(memory.grow(0), 40);
    assert_eq!(memory.descriptor().version.load(Ordering::Acquire), 40);
    assert_eq!(memory.statistics().grows, 40);
    assert_eq!(memory.statistics().refused_grows, 1);
}

#[test]
fn the_descriptor_stays_put_when_the_memory_moves() {
    let memory = SharedMemory::new("m", 1, Some(1)).unwrap();
    let address = memory.descriptor_address();
    let moved = Box::new(memory);
    assert_eq!(moved.descriptor_address(), address);
    assert_eq!(moved.descriptor_ptr() as u64, address);
}

#[test]
fn rejects_sizes_past_the_maximum_or_the_limit() {
    let error = SharedMemory::new("m", 3, Some(2)).unwrap_err();
    assert!(matches!(
        error,
        Error::InitialAboveMaximum {
            space: Space::Memory,
            initial: 3,
            maximum: 2,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "shared memory `m`: the initial size of 3 pages is above its maximum of 2"
    );
    let error = SharedMemory::new("m", 0, Some(MAX_MEMORY_PAGES + 1)).unwrap_err();
    assert!(matches!(
        error,
        Error::AboveLimit {
            space: Space::Memory,
            requested,
            ..
        } if requested == MAX_MEMORY_PAGES + 1
    ));
    let error = SharedMemory::new("m", MAX_MEMORY_PAGES + 1, None).unwrap_err();
    assert!(matches!(error, Error::AboveLimit { .. }));
    // At the limit is fine, and so is a maximum of zero.
    SharedMemory::new("m", 0, Some(MAX_MEMORY_PAGES)).unwrap();
    let empty = SharedMemory::new("m", 0, Some(0)).unwrap();
    assert_eq!(empty.grow(1), -1);
    assert!(empty.read(0, &mut [0]).is_err());
}
