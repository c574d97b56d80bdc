//! The runtime object of shared memories and tables.
//!
//! Each defined memory or table has one descriptor, a `#[repr(C)]` record
//! at an address that never changes while it lives: `base`, an atomic
//! `length`, `maximum` and an atomic `version` at the fixed offsets
//! [`MEMORY_BASE_OFFSET`] … [`TABLE_VERSION_OFFSET`]. The defining module
//! owns it as a [`SharedMemory`] or [`SharedTable`]; every importer, tier
//! and backend uses that one descriptor, never a copy, so a grow is seen
//! everywhere at once and nobody holds a stale base.
//!
//! The maximum (without one, the limit in [`limits`]) is reserved up front
//! as inaccessible address space, so the base never moves. A grow takes
//! the descriptor's lock, makes the new bytes read-write (they read zero),
//! publishes the new length with `Release` and bumps the version; an
//! access loads the length with `Acquire`, checks its range against it and
//! fails with [`OutOfBounds`] past it. Memories count their length in
//! bytes and grow in pages of [`PAGE_SIZE`](limits::PAGE_SIZE); tables
//! count and grow in entries, `u64` function addresses with 0 for null.
//!
//! Hosts and tests use the safe methods of [`SharedMemory`] and
//! [`SharedTable`]. Compiled code reads the descriptor fields itself and
//! calls [`memory_grow`] / [`table_grow`]; the interpreter, which holds
//! descriptor addresses as integers, uses the `unsafe` entry points of the
//! same module ([`load_bytes`], [`store_bytes`], [`table_get`],
//! [`table_set`]).
//!
//! Inside, `reservation` owns the system calls, `descriptor` the layout,
//! the grow protocol and the bounds checks, and `pinned` keeps a
//! descriptor at its address.
//!
//! ```
//! use jit_shared::SharedMemory;
//!
//! let memory = SharedMemory::new("env.memory", 1, Some(4))?;
//! let base = memory.descriptor().base;
//! memory.write(65_532, &[1, 2, 3, 4])?;
//! assert!(memory.write(65_533, &[1, 2, 3, 4]).is_err());
//! assert_eq!(memory.grow(2), 1);
//! assert_eq!(memory.grow(2), -1);
//! assert_eq!(memory.descriptor().base, base);
//! let mut bytes = [0xff; 4];
//! memory.read(65_536, &mut bytes)?;
//! assert_eq!(bytes, [0; 4]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod descriptor;
mod error;
pub mod limits;
mod memory;
mod pinned;
mod reservation;
mod runtime;
pub mod spare;
mod table;

pub use descriptor::{
    MEMORY_BASE_OFFSET, MEMORY_LENGTH_OFFSET, MEMORY_MAXIMUM_OFFSET, MEMORY_VERSION_OFFSET,
    MemoryDescriptor, Statistics, TABLE_BASE_OFFSET, TABLE_LENGTH_OFFSET, TABLE_MAXIMUM_OFFSET,
    TABLE_VERSION_OFFSET, TableDescriptor,
};
pub use error::{Error, OutOfBounds, Space};
pub use memory::SharedMemory;
pub use runtime::{load_bytes, memory_grow, store_bytes, table_get, table_grow, table_set};
pub use table::SharedTable;
