//! A shared table's entries, growth and bounds checks through the safe API.

use std::sync::atomic::Ordering;

use jit_shared::limits::MAX_TABLE_ENTRIES;
use jit_shared::{Error, OutOfBounds, SharedTable, Space};

#[test]
fn starts_with_null_entries() {
    let table = SharedTable::new("env.__indirect_function_table", 3, Some(8)).unwrap();
    assert_eq!(table.name(), "env.__indirect_function_table");
    assert_eq!(table.len(), 3);
    assert!(!table.is_empty());
    for index in 0..3 {
        assert_eq!(table.get(index), Some(0));
    }
    assert_eq!(table.get(3), None);
    let descriptor = table.descriptor();
    assert_eq!(descriptor.length.load(Ordering::Acquire), 3);
    assert_eq!(descriptor.maximum, 8);
    assert_eq!(descriptor.base % 8, 0);
    assert_eq!(descriptor.version.load(Ordering::Acquire), 0);
}

#[test]
fn set_and_get_at_the_boundaries() {
    let table = SharedTable::new("t", 4, None).unwrap();
    assert_eq!(table.descriptor().maximum, MAX_TABLE_ENTRIES);
    table.set(0, 0x1000).unwrap();
    table.set(3, 0x4000).unwrap();
    assert_eq!(table.get(0), Some(0x1000));
    assert_eq!(table.get(3), Some(0x4000));
    assert_eq!(
        table.set(4, 1),
        Err(OutOfBounds::Table {
            index: 4,
            length: 4
        })
    );
    assert!(table.set(5, 1).is_err());
    assert!(table.set(u64::MAX, 1).is_err());
    assert_eq!(table.get(4), None);
    assert_eq!(table.get(u64::MAX), None);
    // Setting null clears an entry.
    table.set(0, 0).unwrap();
    assert_eq!(table.get(0), Some(0));
}

#[test]
fn grow_adds_null_entries_and_returns_the_old_length() {
    let table = SharedTable::new("t", 0, Some(1000)).unwrap();
    assert!(table.is_empty());
    let base = table.descriptor().base;
    assert_eq!(table.grow(0), 0);
    assert_eq!(table.grow(1), 0);
    table.set(0, 42).unwrap();
    // Across a system page boundary (512 entries per 4 KiB page).
    assert_eq!(table.grow(600), 1);
    assert_eq!(table.len(), 601);
    assert_eq!(table.get(0), Some(42));
    assert!((1..601).all(|index| table.get(index) == Some(0)));
    table.set(600, 7).unwrap();
    assert_eq!(table.grow(399), 601);
    assert_eq!(table.len(), 1000);
    assert_eq!(table.grow(1), -1);
    assert_eq!(table.grow(-1), -1);
    assert_eq!(table.grow(i64::MAX), -1);
    assert_eq!(table.grow(0), 1000);
    assert_eq!(table.get(600), Some(7));
    assert_eq!(table.get(999), Some(0));
    assert_eq!(table.descriptor().base, base);
    assert_eq!(table.descriptor().version.load(Ordering::Acquire), 3);
    let statistics = table.statistics();
    assert_eq!(statistics.grows, 3);
    assert_eq!(statistics.refused_grows, 3);
}

#[test]
fn grows_to_the_limit_without_a_maximum() {
    let table = SharedTable::new("t", 1, None).unwrap();
    let limit = i64::try_from(MAX_TABLE_ENTRIES).unwrap();
    assert_eq!(table.grow(limit), -1);
    assert_eq!(table.grow(limit - 1), 1);
    table.set(MAX_TABLE_ENTRIES - 1, 9).unwrap();
    assert_eq!(table.get(MAX_TABLE_ENTRIES - 1), Some(9));
    assert_eq!(table.get(MAX_TABLE_ENTRIES), None);
    assert_eq!(table.grow(1), -1);
}

#[test]
fn rejects_sizes_past_the_maximum_or_the_limit() {
    let error = SharedTable::new("t", 5, Some(4)).unwrap_err();
    assert!(matches!(
        error,
        Error::InitialAboveMaximum {
            space: Space::Table,
            initial: 5,
            maximum: 4,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "shared table `t`: the initial size of 5 entries is above its maximum of 4"
    );
    let error = SharedTable::new("t", 0, Some(MAX_TABLE_ENTRIES + 1)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "shared table `t`: a size of {} entries is above the limit of {MAX_TABLE_ENTRIES}",
            MAX_TABLE_ENTRIES + 1
        )
    );
    SharedTable::new("t", MAX_TABLE_ENTRIES, None).unwrap();
    let empty = SharedTable::new("t", 0, Some(0)).unwrap();
    assert_eq!(empty.grow(1), -1);
    assert_eq!(empty.get(0), None);
}
