//! The entry points that work from a descriptor pointer alone: what
//! compiled code calls to grow, and what the interpreter calls to reach
//! memory bytes and table entries at a descriptor address it holds as an
//! integer (`std::ptr::with_exposed_provenance(address)` turns the address
//! back into the pointer these take).
//!
//! Each has the same contract: the descriptor must belong to a
//! [`SharedMemory`](crate::SharedMemory) or
//! [`SharedTable`](crate::SharedTable) that stays alive for the whole call.

use crate::descriptor::{MemoryDescriptor, TableDescriptor};
use crate::error::OutOfBounds;

/// Grows the memory of `descriptor` by `delta` pages: compiled code's
/// `memory.grow`. Returns the previous size in pages, or -1 (and changes
/// nothing) for a negative delta or past the maximum; see
/// [`MemoryDescriptor::grow`]. Never unwinds.
///
/// # Safety
///
/// `descriptor` is the descriptor of a live
/// [`SharedMemory`](crate::SharedMemory) (its
/// [`descriptor_ptr`](crate::SharedMemory::descriptor_ptr)), which is not
/// dropped before the call returns.
pub unsafe extern "C" fn memory_grow(descriptor: *const MemoryDescriptor, delta: i64) -> i64 {
    // SAFETY: the caller guarantees the descriptor is alive for the call.
    let descriptor = unsafe { &*descriptor };
    descriptor.grow(delta)
}

/// Grows the table of `descriptor` by `delta` null entries: compiled code's
/// `table.grow`. Returns the previous size in entries, or -1 (and changes
/// nothing) for a negative delta or past the maximum; see
/// [`TableDescriptor::grow`]. Never unwinds.
///
/// # Safety
///
/// `descriptor` is the descriptor of a live
/// [`SharedTable`](crate::SharedTable) (its
/// [`descriptor_ptr`](crate::SharedTable::descriptor_ptr)), which is not
/// dropped before the call returns.
pub unsafe extern "C" fn table_grow(descriptor: *const TableDescriptor, delta: i64) -> i64 {
    // SAFETY: the caller guarantees the descriptor is alive for the call.
    let descriptor = unsafe { &*descriptor };
    descriptor.grow(delta)
}

/// Copies `out.len()` bytes at `offset` of the memory of `descriptor` into
/// `out`, checked against the length.
///
/// # Errors
///
/// [`OutOfBounds::Memory`] when `offset + out.len()` passes the length.
///
/// # Safety
///
/// As [`memory_grow`].
pub unsafe fn load_bytes(
    descriptor: *const MemoryDescriptor,
    offset: u64,
    out: &mut [u8],
) -> Result<(), OutOfBounds> {
    // SAFETY: the caller guarantees the descriptor is alive for the call.
    let descriptor = unsafe { &*descriptor };
    descriptor.read(offset, out)
}

/// Copies `bytes` to `offset` of the memory of `descriptor`, checked
/// against the length.
///
/// # Errors
///
/// [`OutOfBounds::Memory`] when `offset + bytes.len()` passes the length.
///
/// # Safety
///
/// As [`memory_grow`].
pub unsafe fn store_bytes(
    descriptor: *const MemoryDescriptor,
    offset: u64,
    bytes: &[u8],
) -> Result<(), OutOfBounds> {
    // SAFETY: the caller guarantees the descriptor is alive for the call.
    let descriptor = unsafe { &*descriptor };
    descriptor.write(offset, bytes)
}

/// The entry at `index` of the table of `descriptor` (0 for null).
///
/// # Errors
///
/// [`OutOfBounds::Table`] when `index` is not below the length.
///
/// # Safety
///
/// As [`table_grow`].
pub unsafe fn table_get(
    descriptor: *const TableDescriptor,
    index: u64,
) -> Result<u64, OutOfBounds> {
    // SAFETY: the caller guarantees the descriptor is alive for the call.
    let descriptor = unsafe { &*descriptor };
    descriptor.get(index)
}

/// Stores `value` (a function address, 0 for null) at `index` of the table
/// of `descriptor`.
///
/// # Errors
///
/// [`OutOfBounds::Table`] when `index` is not below the length.
///
/// # Safety
///
/// As [`table_grow`].
pub unsafe fn table_set(
    descriptor: *const TableDescriptor,
    index: u64,
    value: u64,
) -> Result<(), OutOfBounds> {
    // SAFETY: the caller guarantees the descriptor is alive for the call.
    let descriptor = unsafe { &*descriptor };
    descriptor.set(index, value)
}
