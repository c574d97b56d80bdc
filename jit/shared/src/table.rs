//! [`SharedTable`]: a table of function addresses and the descriptor
//! compiled code reads.

use crate::descriptor::{Statistics, TableDescriptor};
use crate::error::{Error, OutOfBounds, Space};
use crate::pinned::Pinned;
use crate::reservation::reserve_declared;

/// A shared table of function addresses (`u64`, 0 for null): owns its
/// [`TableDescriptor`] (at an address that never changes while the table
/// lives) and the address space of its maximum size. Dropping it unmaps the
/// entries; compiled code holding the descriptor's address must not run
/// after that.
#[derive(Debug)]
pub struct SharedTable {
    name: String,
    descriptor: Pinned<TableDescriptor>,
}

impl SharedTable {
    /// Creates the table `name` with `initial` null entries, reserving
    /// `maximum` entries (without a maximum,
    /// [`MAX_TABLE_ENTRIES`](crate::limits::MAX_TABLE_ENTRIES)) so that its
    /// base never moves.
    ///
    /// # Errors
    ///
    /// [`Error::AboveLimit`] when a size passes
    /// [`MAX_TABLE_ENTRIES`](crate::limits::MAX_TABLE_ENTRIES),
    /// [`Error::InitialAboveMaximum`], and [`Error::Reserve`] /
    /// [`Error::Protect`] when the kernel refuses the mapping.
    pub fn new(name: &str, initial: u64, maximum: Option<u64>) -> Result<SharedTable, Error> {
        let (reservation, extent) = reserve_declared(name, Space::Table, initial, maximum)?;
        Ok(SharedTable {
            name: name.to_owned(),
            descriptor: Pinned::new(TableDescriptor::new(
                reservation,
                extent.length,
                extent.maximum,
            )),
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The descriptor.
    pub fn descriptor(&self) -> &TableDescriptor {
        self.descriptor.get()
    }

    /// The descriptor as compiled code and [`table_grow`](crate::table_grow)
    /// take it.
    pub fn descriptor_ptr(&self) -> *const TableDescriptor {
        self.descriptor.as_ptr()
    }

    /// The descriptor's address, as compiled code embeds it. Valid while
    /// the table lives.
    pub fn descriptor_address(&self) -> u64 {
        self.descriptor.address()
    }

    /// Size in entries.
    pub fn len(&self) -> u64 {
        self.descriptor().len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.descriptor().is_empty()
    }

    /// Grows the table by `delta` null entries; see
    /// [`TableDescriptor::grow`].
    pub fn grow(&self, delta: i64) -> i64 {
        self.descriptor().grow(delta)
    }

    /// The entry at `index` (0 for null), or `None` past the length.
    pub fn get(&self, index: u64) -> Option<u64> {
        self.descriptor().get(index).ok()
    }

    /// Stores `value` (a function address, 0 for null) at `index`.
    ///
    /// # Errors
    ///
    /// [`OutOfBounds::Table`] when `index` is not below the length.
    pub fn set(&self, index: u64, value: u64) -> Result<(), OutOfBounds> {
        self.descriptor().set(index, value)
    }

    /// The table's counters.
    pub fn statistics(&self) -> Statistics {
        self.descriptor().statistics()
    }
}
