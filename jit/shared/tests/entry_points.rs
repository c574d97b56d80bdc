//! The descriptor layout compiled code relies on, and the raw-pointer entry
//! points compiled code and the interpreter call.

use std::mem::offset_of;
use std::sync::atomic::Ordering;

use jit_shared::limits::PAGE_SIZE;
use jit_shared::{
    MEMORY_BASE_OFFSET, MEMORY_LENGTH_OFFSET, MEMORY_MAXIMUM_OFFSET, MEMORY_VERSION_OFFSET,
    MemoryDescriptor, OutOfBounds, SharedMemory, SharedTable, TABLE_BASE_OFFSET,
    TABLE_LENGTH_OFFSET, TABLE_MAXIMUM_OFFSET, TABLE_VERSION_OFFSET, TableDescriptor, load_bytes,
    memory_grow, store_bytes, table_get, table_grow, table_set,
};

#[test]
fn the_public_fields_sit_at_the_published_offsets() {
    assert_eq!(offset_of!(MemoryDescriptor, base), MEMORY_BASE_OFFSET);
    assert_eq!(offset_of!(MemoryDescriptor, length), MEMORY_LENGTH_OFFSET);
    assert_eq!(offset_of!(MemoryDescriptor, maximum), MEMORY_MAXIMUM_OFFSET);
    assert_eq!(offset_of!(MemoryDescriptor, version), MEMORY_VERSION_OFFSET);
    assert_eq!(offset_of!(TableDescriptor, base), TABLE_BASE_OFFSET);
    assert_eq!(offset_of!(TableDescriptor, length), TABLE_LENGTH_OFFSET);
    assert_eq!(offset_of!(TableDescriptor, maximum), TABLE_MAXIMUM_OFFSET);
    assert_eq!(offset_of!(TableDescriptor, version), TABLE_VERSION_OFFSET);
    assert_eq!(
        [
            MEMORY_BASE_OFFSET,
            MEMORY_LENGTH_OFFSET,
            MEMORY_MAXIMUM_OFFSET,
            MEMORY_VERSION_OFFSET
        ],
        [0, 8, 16, 24]
    );
    assert_eq!(
        [
            TABLE_BASE_OFFSET,
            TABLE_LENGTH_OFFSET,
            TABLE_MAXIMUM_OFFSET,
            TABLE_VERSION_OFFSET
        ],
        [0, 8, 16, 24]
    );
}

/// The u64 at `offset` of the record at `address`, read as compiled code
/// reads it.
fn field(address: u64, offset: usize) -> u64 {
    let record = std::ptr::with_exposed_provenance::<u8>(usize::try_from(address).unwrap());
    // SAFETY: the callers pass the address of a live descriptor and one of
    // its published 8-byte field offsets; descriptors are 8-byte aligned.
    unsafe { record.add(offset).cast::<u64>().read() }
}

#[test]
fn compiled_code_reads_the_fields_at_their_offsets() {
    let memory = SharedMemory::new("m", 2, Some(3)).unwrap();
    assert_eq!(memory.grow(1), 2);
    let address = memory.descriptor_address();
    assert_eq!(field(address, MEMORY_BASE_OFFSET), memory.descriptor().base);
    assert_eq!(field(address, MEMORY_LENGTH_OFFSET), 3 * PAGE_SIZE);
    assert_eq!(field(address, MEMORY_MAXIMUM_OFFSET), 3 * PAGE_SIZE);
    assert_eq!(field(address, MEMORY_VERSION_OFFSET), 1);

    let table = SharedTable::new("t", 5, Some(9)).unwrap();
    let address = table.descriptor_address();
    assert_eq!(field(address, TABLE_BASE_OFFSET), table.descriptor().base);
    assert_eq!(field(address, TABLE_LENGTH_OFFSET), 5);
    assert_eq!(field(address, TABLE_MAXIMUM_OFFSET), 9);
    assert_eq!(field(address, TABLE_VERSION_OFFSET), 0);
    // Entries are u64 at base + 8 × index.
    table.set(4, 0xdead_beef).unwrap();
    assert_eq!(field(table.descriptor().base, 4 * 8), 0xdead_beef);
}

#[test]
fn memory_grow_works_from_the_descriptor_pointer() {
    let memory = SharedMemory::new("m", 1, Some(2)).unwrap();
    let grow: unsafe extern "C" fn(*const MemoryDescriptor, i64) -> i64 = memory_grow;
    let descriptor = memory.descriptor_ptr();
    // SAFETY: `memory` is alive for every call below.
    unsafe {
        assert_eq!(grow(descriptor, 0), 1);
        assert_eq!(grow(descriptor, -1), -1);
        assert_eq!(grow(descriptor, 1), 1);
        assert_eq!(grow(descriptor, 1), -1);
    }
    assert_eq!(memory.size_pages(), 2);
    assert_eq!(memory.descriptor().version.load(Ordering::Acquire), 1);
}

#[test]
fn table_grow_works_from_the_descriptor_pointer() {
    let table = SharedTable::new("t", 0, Some(4)).unwrap();
    let grow: unsafe extern "C" fn(*const TableDescriptor, i64) -> i64 = table_grow;
    let descriptor = table.descriptor_ptr();
    // SAFETY: `table` is alive for every call below.
    unsafe {
        assert_eq!(grow(descriptor, 3), 0);
        assert_eq!(grow(descriptor, 2), -1);
        assert_eq!(grow(descriptor, 1), 3);
        assert_eq!(grow(descriptor, 0), 4);
    }
    assert_eq!(table.len(), 4);
}

#[test]
fn the_interpreter_reaches_bytes_from_a_descriptor_address() {
    let memory = SharedMemory::new("m", 1, None).unwrap();
    let descriptor = std::ptr::with_exposed_provenance::<MemoryDescriptor>(
        usize::try_from(memory.descriptor_address()).unwrap(),
    );
    let last = PAGE_SIZE - 4;
    // SAFETY: `memory` is alive for every call below.
    unsafe {
        store_bytes(descriptor, last, &0x0102_0304_u32.to_le_bytes()).unwrap();
        let mut bytes = [0; 4];
        load_bytes(descriptor, last, &mut bytes).unwrap();
        assert_eq!(u32::from_le_bytes(bytes), 0x0102_0304);
        assert_eq!(
            load_bytes(descriptor, last + 1, &mut bytes),
            Err(OutOfBounds::Memory {
                offset: last + 1,
                size: 4,
                length: PAGE_SIZE
            })
        );
        assert!(store_bytes(descriptor, PAGE_SIZE, &[1]).is_err());
        assert_eq!(memory_grow(descriptor, 1), 1);
        store_bytes(descriptor, PAGE_SIZE, &[1]).unwrap();
    }
    let mut byte = [0];
    memory.read(PAGE_SIZE, &mut byte).unwrap();
    assert_eq!(byte, [1]);
}

#[test]
fn the_interpreter_reaches_entries_from_a_descriptor_address() {
    let table = SharedTable::new("t", 2, Some(3)).unwrap();
    let descriptor = std::ptr::with_exposed_provenance::<TableDescriptor>(
        usize::try_from(table.descriptor_address()).unwrap(),
    );
    // SAFETY: `table` is alive for every call below.
    unsafe {
        assert_eq!(table_get(descriptor, 1), Ok(0));
        table_set(descriptor, 1, 0x7000).unwrap();
        assert_eq!(table_get(descriptor, 1), Ok(0x7000));
        assert_eq!(
            table_get(descriptor, 2),
            Err(OutOfBounds::Table {
                index: 2,
                length: 2
            })
        );
        assert!(table_set(descriptor, 2, 1).is_err());
        assert_eq!(table_grow(descriptor, 1), 2);
        assert_eq!(table_get(descriptor, 2), Ok(0));
    }
    assert_eq!(table.get(1), Some(0x7000));
}
