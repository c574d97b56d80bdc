//! [`SharedMemory`]: a memory and the descriptor compiled code reads.

use std::sync::atomic::Ordering;

use crate::descriptor::{MemoryDescriptor, Statistics};
use crate::error::{Error, OutOfBounds, Space};
use crate::pinned::Pinned;
use crate::reservation::reserve_declared;

/// A shared linear memory: owns its [`MemoryDescriptor`] (at an address
/// that never changes while the memory lives) and the address space of its
/// maximum size. Dropping it unmaps the memory; compiled code holding the
/// descriptor's address must not run after that.
#[derive(Debug)]
pub struct SharedMemory {
    name: String,
    descriptor: Pinned<MemoryDescriptor>,
}

impl SharedMemory {
    /// Creates the memory `name` with `initial_pages` pages of zero bytes,
    /// reserving `maximum_pages` pages (without a maximum,
    /// [`MAX_MEMORY_PAGES`](crate::limits::MAX_MEMORY_PAGES)) so that its
    /// base never moves.
    ///
    /// # Errors
    ///
    /// [`Error::AboveLimit`] when a size passes
    /// [`MAX_MEMORY_PAGES`](crate::limits::MAX_MEMORY_PAGES),
    /// [`Error::InitialAboveMaximum`], and [`Error::Reserve`] /
    /// [`Error::Protect`] when the kernel refuses the mapping.
    pub fn new(
        name: &str,
        initial_pages: u64,
        maximum_pages: Option<u64>,
    ) -> Result<SharedMemory, Error> {
        let (reservation, extent) =
            reserve_declared(name, Space::Memory, initial_pages, maximum_pages)?;
        Ok(SharedMemory {
            name: name.to_owned(),
            descriptor: Pinned::new(MemoryDescriptor::new(
                reservation,
                extent.length,
                extent.maximum,
            )),
        })
    }

    /// The memory's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The descriptor.
    pub fn descriptor(&self) -> &MemoryDescriptor {
        self.descriptor.get()
    }

    /// The descriptor as compiled code and [`memory_grow`](crate::memory_grow)
    /// take it.
    pub fn descriptor_ptr(&self) -> *const MemoryDescriptor {
        self.descriptor.as_ptr()
    }

    /// The descriptor's address, as compiled code embeds it. Valid while
    /// the memory lives.
    pub fn descriptor_address(&self) -> u64 {
        self.descriptor.address()
    }

    /// Size in pages.
    pub fn size_pages(&self) -> u64 {
        self.descriptor().size_pages()
    }

    /// Accessible bytes.
    pub fn size_bytes(&self) -> u64 {
        self.descriptor().length.load(Ordering::Acquire)
    }

    /// Grows the memory by `delta_pages`; see [`MemoryDescriptor::grow`].
    pub fn grow(&self, delta_pages: i64) -> i64 {
        self.descriptor().grow(delta_pages)
    }

    /// Copies the bytes at `offset` into `out`.
    ///
    /// # Errors
    ///
    /// [`OutOfBounds::Memory`] when `offset + out.len()` passes the length.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), OutOfBounds> {
        self.descriptor().read(offset, out)
    }

    /// Copies `bytes` to `offset`.
    ///
    /// # Errors
    ///
    /// [`OutOfBounds::Memory`] when `offset + bytes.len()` passes the
    /// length.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), OutOfBounds> {
        self.descriptor().write(offset, bytes)
    }

    /// The memory's counters.
    pub fn statistics(&self) -> Statistics {
        self.descriptor().statistics()
    }
}
