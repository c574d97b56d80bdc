//! The descriptors compiled code reads at fixed offsets, and the one
//! implementation of growth and bounds checks behind both kinds.
//!
//! A descriptor opens with four public 8-byte fields, the same for memories
//! and tables: `base` (fixed for the descriptor's life), `length` (atomic,
//! only ever increased), `maximum` and `version` (atomic, bumped by every
//! grow that changed the length). Behind them, at no fixed offset, is what
//! `grow` needs from the descriptor pointer alone: the reservation, a lock
//! and a counter of refused grows.
//!
//! The protocol: a grow takes the lock, makes the new bytes read-write,
//! stores the new length with `Release`, then bumps the version. An access
//! loads the length with `Acquire`, checks the range against it and only
//! then touches `base + offset`; bytes below a length it saw stay
//! accessible until the descriptor is dropped, because nothing shrinks.
//!
//! Rust code reaches memory bytes and table entries only through atomic
//! views (`AtomicU8`, `AtomicU64`), so hosts and interpreter threads racing
//! on the same bytes read torn but defined values instead of committing a
//! data race.

use std::fmt;
use std::mem::offset_of;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::error::{OutOfBounds, Space};
use crate::reservation::Reservation;

/// Offset of [`MemoryDescriptor::base`].
pub const MEMORY_BASE_OFFSET: usize = 0;
/// Offset of [`MemoryDescriptor::length`].
pub const MEMORY_LENGTH_OFFSET: usize = 8;
/// Offset of [`MemoryDescriptor::maximum`].
pub const MEMORY_MAXIMUM_OFFSET: usize = 16;
/// Offset of [`MemoryDescriptor::version`].
pub const MEMORY_VERSION_OFFSET: usize = 24;

/// Offset of [`TableDescriptor::base`].
pub const TABLE_BASE_OFFSET: usize = 0;
/// Offset of [`TableDescriptor::length`].
pub const TABLE_LENGTH_OFFSET: usize = 8;
/// Offset of [`TableDescriptor::maximum`].
pub const TABLE_MAXIMUM_OFFSET: usize = 16;
/// Offset of [`TableDescriptor::version`].
pub const TABLE_VERSION_OFFSET: usize = 24;

/// The runtime object of a shared memory, as compiled code sees it. One per
/// defined memory, at a stable address for the memory's life, used by every
/// importer, tier and backend and never copied; made and owned by
/// [`SharedMemory`](crate::SharedMemory).
#[repr(C)]
pub struct MemoryDescriptor {
    /// Address of byte 0 (at [`MEMORY_BASE_OFFSET`]). Never changes: the
    /// maximum is reserved up front.
    pub base: u64,
    /// Accessible bytes (at [`MEMORY_LENGTH_OFFSET`]), a multiple of
    /// [`PAGE_SIZE`](crate::limits::PAGE_SIZE). Load it with `Acquire`
    /// before using the bytes below it.
    pub length: AtomicU64,
    /// Largest length in bytes (at [`MEMORY_MAXIMUM_OFFSET`]): the declared
    /// maximum, or [`MAX_MEMORY_PAGES`](crate::limits::MAX_MEMORY_PAGES)
    /// pages without one.
    pub maximum: u64,
    /// Grows that changed the length so far (at [`MEMORY_VERSION_OFFSET`]).
    pub version: AtomicU64,
    growth: Growth,
}

/// The runtime object of a shared table, as compiled code sees it: the
/// fields of [`MemoryDescriptor`] counted in entries. Entries are `u64`
/// function addresses, 0 for null, at `base + 8 × index`. Made and owned by
/// [`SharedTable`](crate::SharedTable).
#[repr(C)]
pub struct TableDescriptor {
    /// Address of entry 0 (at [`TABLE_BASE_OFFSET`]), 8-byte aligned. Never
    /// changes: the maximum is reserved up front.
    pub base: u64,
    /// Accessible entries (at [`TABLE_LENGTH_OFFSET`]). Load it with
    /// `Acquire` before using the entries below it.
    pub length: AtomicU64,
    /// Largest length in entries (at [`TABLE_MAXIMUM_OFFSET`]): the declared
    /// maximum, or [`MAX_TABLE_ENTRIES`](crate::limits::MAX_TABLE_ENTRIES)
    /// without one.
    pub maximum: u64,
    /// Grows that changed the length so far (at [`TABLE_VERSION_OFFSET`]).
    pub version: AtomicU64,
    growth: Growth,
}

const _: () = {
    assert!(offset_of!(MemoryDescriptor, base) == MEMORY_BASE_OFFSET);
    assert!(offset_of!(MemoryDescriptor, length) == MEMORY_LENGTH_OFFSET);
    assert!(offset_of!(MemoryDescriptor, maximum) == MEMORY_MAXIMUM_OFFSET);
    assert!(offset_of!(MemoryDescriptor, version) == MEMORY_VERSION_OFFSET);
    assert!(offset_of!(TableDescriptor, base) == TABLE_BASE_OFFSET);
    assert!(offset_of!(TableDescriptor, length) == TABLE_LENGTH_OFFSET);
    assert!(offset_of!(TableDescriptor, maximum) == TABLE_MAXIMUM_OFFSET);
    assert!(offset_of!(TableDescriptor, version) == TABLE_VERSION_OFFSET);
};

/// Counters of one memory or table, cheap to read at any time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Statistics {
    /// Grows that changed the length (the version).
    pub grows: u64,
    /// Grows refused: a negative delta, past the maximum, or a protection
    /// change the kernel refused.
    pub refused_grows: u64,
    /// Bytes of address space reserved.
    pub reserved_bytes: u64,
}

/// What the two descriptors have in common beyond their layout: how they
/// are made, counted and shown.
macro_rules! descriptor_common {
    ($descriptor:ident, $what:literal) => {
        impl $descriptor {
            #[doc = concat!("A descriptor over `reservation`, whose first `length` ", $what)]
            /// are accessible (and zero).
            pub(crate) fn new(reservation: Reservation, length: u64, maximum: u64) -> Self {
                Self {
                    base: reservation.address(),
                    length: AtomicU64::new(length),
                    maximum,
                    version: AtomicU64::new(0),
                    growth: Growth::new(reservation),
                }
            }

            /// The counters of this memory or table.
            pub fn statistics(&self) -> Statistics {
                self.growth.statistics(&self.version)
            }
        }

        impl fmt::Debug for $descriptor {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($descriptor))
                    .field("base", &format_args!("{:#x}", self.base))
                    .field("length", &self.length.load(Ordering::Acquire))
                    .field("maximum", &self.maximum)
                    .field("version", &self.version.load(Ordering::Acquire))
                    .finish_non_exhaustive()
            }
        }
    };
}

descriptor_common!(MemoryDescriptor, "bytes");
descriptor_common!(TableDescriptor, "entries");

/// What `grow` needs beyond the public fields; behind them, so compiled
/// code's offsets do not depend on it.
struct Growth {
    reservation: Reservation,
    /// Serialises grows: the length changes only while it is held.
    lock: Mutex<()>,
    refused: AtomicU64,
}

impl MemoryDescriptor {
    /// Size in pages.
    pub fn size_pages(&self) -> u64 {
        self.length.load(Ordering::Acquire) / Space::Memory.length_per_unit()
    }

    /// Grows the memory by `delta_pages` pages of zero bytes.
    ///
    /// Returns the previous size in pages, or -1 (and changes nothing) when
    /// `delta_pages` is negative, the new size would pass the maximum or
    /// the kernel refuses the protection change. A delta of 0 returns the
    /// size.
    pub fn grow(&self, delta_pages: i64) -> i64 {
        self.growth.grow(
            Space::Memory,
            &self.length,
            self.maximum,
            &self.version,
            delta_pages,
        )
    }

    /// Copies the bytes at `offset` into `out`.
    ///
    /// # Errors
    ///
    /// [`OutOfBounds::Memory`] when `offset + out.len()` passes the length;
    /// `out` is then unchanged.
    pub fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), OutOfBounds> {
        let bytes = self.bytes(offset, out.len())?;
        for (out, byte) in out.iter_mut().zip(bytes) {
            *out = byte.load(Ordering::Relaxed);
        }
        Ok(())
    }

    /// Copies `bytes` to `offset`.
    ///
    /// # Errors
    ///
    /// [`OutOfBounds::Memory`] when `offset + bytes.len()` passes the
    /// length; nothing is written then.
    pub fn write(&self, offset: u64, bytes: &[u8]) -> Result<(), OutOfBounds> {
        let memory = self.bytes(offset, bytes.len())?;
        for (byte, value) in memory.iter().zip(bytes) {
            byte.store(*value, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The accessible bytes `offset..offset + size`.
    fn bytes(&self, offset: u64, size: usize) -> Result<&[AtomicU8], OutOfBounds> {
        let length = self.length.load(Ordering::Acquire);
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        let out_of_bounds = || OutOfBounds::Memory {
            offset,
            size,
            length,
        };
        let end = offset
            .checked_add(size)
            .filter(|&end| end <= length)
            .ok_or_else(out_of_bounds)?;
        // `end <= length <= maximum`, and the maximum fits the reservation.
        let start = usize::try_from(offset).map_err(|_| out_of_bounds())?;
        let end = usize::try_from(end).map_err(|_| out_of_bounds())?;
        // SAFETY: `start..end` lies below the length loaded above with
        // `Acquire`, and grow made those bytes read-write before storing
        // that length with `Release`; they stay so until the reservation is
        // unmapped, which drops this descriptor and so cannot happen while
        // `&self` is borrowed. `AtomicU8` has the size and alignment of
        // `u8`, and Rust code reaches these bytes only through such atomic
        // views, so sharing them between threads is not a data race.
        Ok(unsafe {
            std::slice::from_raw_parts(
                self.growth
                    .reservation
                    .pointer()
                    .as_ptr()
                    .add(start)
                    .cast::<AtomicU8>(),
                end - start,
            )
        })
    }
}

impl TableDescriptor {
    /// Size in entries.
    pub fn len(&self) -> u64 {
        self.length.load(Ordering::Acquire)
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Grows the table by `delta` null entries.
    ///
    /// Returns the previous size in entries, or -1 (and changes nothing)
    /// when `delta` is negative, the new size would pass the maximum or the
    /// kernel refuses the protection change. A delta of 0 returns the size.
    pub fn grow(&self, delta: i64) -> i64 {
        self.growth.grow(
            Space::Table,
            &self.length,
            self.maximum,
            &self.version,
            delta,
        )
    }

    /// The entry at `index`: a function address, 0 for null.
    ///
    /// # Errors
    ///
    /// [`OutOfBounds::Table`] when `index` is not below the length.
    pub fn get(&self, index: u64) -> Result<u64, OutOfBounds> {
        Ok(self.entry(index)?.load(Ordering::Acquire))
    }

    /// Stores `value` (a function address, 0 for null) at `index`.
    ///
    /// # Errors
    ///
    /// [`OutOfBounds::Table`] when `index` is not below the length; nothing
    /// is stored then.
    pub fn set(&self, index: u64, value: u64) -> Result<(), OutOfBounds> {
        self.entry(index)?.store(value, Ordering::Release);
        Ok(())
    }

    /// The accessible entry at `index`.
    fn entry(&self, index: u64) -> Result<&AtomicU64, OutOfBounds> {
        let length = self.length.load(Ordering::Acquire);
        let out_of_bounds = OutOfBounds::Table { index, length };
        if index >= length {
            return Err(out_of_bounds);
        }
        // `index < length <= maximum`, and the maximum fits the reservation.
        let index = usize::try_from(index).map_err(|_| out_of_bounds)?;
        // SAFETY: the entry lies below the length loaded above with
        // `Acquire`, and grow made it read-write before storing that length
        // with `Release`; it stays so until the reservation is unmapped,
        // which drops this descriptor and so cannot happen while `&self` is
        // borrowed. The base is page aligned, so every entry is 8-byte
        // aligned as `AtomicU64` requires, and Rust code reaches entries
        // only through such atomic views.
        Ok(unsafe {
            &*self
                .growth
                .reservation
                .pointer()
                .as_ptr()
                .cast::<AtomicU64>()
                .add(index)
        })
    }
}

impl Growth {
    fn new(reservation: Reservation) -> Self {
        Self {
            reservation,
            lock: Mutex::new(()),
            refused: AtomicU64::new(0),
        }
    }

    /// Grows `length` by `delta` units of `space` up to `maximum` (both in
    /// length units); the protocol of the module documentation. Never
    /// panics: compiled code calls it through `extern "C"`.
    fn grow(
        &self,
        space: Space,
        length: &AtomicU64,
        maximum: u64,
        version: &AtomicU64,
        delta: i64,
    ) -> i64 {
        let per_unit = space.length_per_unit();
        let Ok(delta) = u64::try_from(delta) else {
            return self.refuse();
        };
        if delta == 0 {
            return size_result(length.load(Ordering::Acquire) / per_unit);
        }
        // A panic while holding the lock cannot leave the length half
        // changed (it is one store), so a poisoned lock is still good.
        let _held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // Only grow changes the length, and only while holding the lock.
        let old = length.load(Ordering::Relaxed);
        let Some(new) = delta
            .checked_mul(per_unit)
            .and_then(|added| old.checked_add(added))
            .filter(|&new| new <= maximum)
        else {
            return self.refuse();
        };
        let bytes = |length: u64| {
            length
                .checked_mul(space.bytes_per_length())
                .and_then(|bytes| usize::try_from(bytes).ok())
        };
        let (Some(start), Some(end)) = (bytes(old), bytes(new)) else {
            return self.refuse();
        };
        if self.reservation.make_accessible(start, end).is_err() {
            return self.refuse();
        }
        length.store(new, Ordering::Release);
        version.fetch_add(1, Ordering::Release);
        size_result(old / per_unit)
    }

    #[cold]
    fn refuse(&self) -> i64 {
        self.refused.fetch_add(1, Ordering::Relaxed);
        -1
    }

    fn statistics(&self, version: &AtomicU64) -> Statistics {
        Statistics {
            grows: version.load(Ordering::Acquire),
            refused_grows: self.refused.load(Ordering::Relaxed),
            reserved_bytes: u64::try_from(self.reservation.len()).unwrap_or(u64::MAX),
        }
    }
}

/// A size as `grow` returns it. Sizes are bounded by the limits (2^20 at
/// most), far below `i64::MAX`.
fn size_result(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(-1)
}
