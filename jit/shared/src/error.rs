//! The crate's error types: [`Error`] for creating a memory or table,
//! [`OutOfBounds`] for an access outside the accessible part of one.

use std::fmt;
use std::io;

use crate::limits::{MAX_MEMORY_PAGES, MAX_TABLE_ENTRIES, PAGE_SIZE, TABLE_ENTRY_SIZE};

/// Which kind of shared object an error or a size is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Space {
    /// A linear memory, sized in pages of [`PAGE_SIZE`] bytes.
    Memory,
    /// A table of function addresses, sized in entries.
    Table,
}

impl Space {
    /// The unit sizes and `grow` deltas are counted in, plural.
    pub fn unit(self) -> &'static str {
        match self {
            Space::Memory => "pages",
            Space::Table => "entries",
        }
    }

    /// Largest size, in [`unit`](Self::unit)s.
    pub fn limit(self) -> u64 {
        match self {
            Space::Memory => MAX_MEMORY_PAGES,
            Space::Table => MAX_TABLE_ENTRIES,
        }
    }

    /// How many of the descriptor's length units one size unit is: a
    /// memory's length counts bytes, its size pages; a table's both count
    /// entries.
    pub(crate) fn length_per_unit(self) -> u64 {
        match self {
            Space::Memory => PAGE_SIZE,
            Space::Table => 1,
        }
    }

    /// Bytes of address space one length unit occupies.
    pub(crate) fn bytes_per_length(self) -> u64 {
        match self {
            Space::Memory => 1,
            Space::Table => TABLE_ENTRY_SIZE,
        }
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Space::Memory => "memory",
            Space::Table => "table",
        })
    }
}

/// Why a shared memory or table could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The initial size is above the declared maximum.
    #[error("shared {space} `{name}`: the initial size of {initial} {} is above its maximum of {maximum}", .space.unit())]
    InitialAboveMaximum {
        /// Name of the memory or table.
        name: String,
        /// Memory or table.
        space: Space,
        /// Initial size asked for.
        initial: u64,
        /// Declared maximum.
        maximum: u64,
    },
    /// A size (initial or maximum) is above the crate's limit
    /// ([`MAX_MEMORY_PAGES`], [`MAX_TABLE_ENTRIES`]).
    #[error("shared {space} `{name}`: a size of {requested} {} is above the limit of {}", .space.unit(), .space.limit())]
    AboveLimit {
        /// Name of the memory or table.
        name: String,
        /// Memory or table.
        space: Space,
        /// Size asked for.
        requested: u64,
    },
    /// The operating system refused to reserve the address space of the
    /// maximum size.
    #[error("shared {space} `{name}`: could not reserve {bytes} bytes of address space: {source}")]
    Reserve {
        /// Name of the memory or table.
        name: String,
        /// Memory or table.
        space: Space,
        /// Bytes asked for.
        bytes: u64,
        /// What the kernel reported.
        source: io::Error,
    },
    /// The operating system refused to make the initial bytes read-write.
    #[error(
        "shared {space} `{name}`: could not make the initial {bytes} bytes read-write: {source}"
    )]
    Protect {
        /// Name of the memory or table.
        name: String,
        /// Memory or table.
        space: Space,
        /// Bytes asked for.
        bytes: u64,
        /// What the kernel reported.
        source: io::Error,
    },
}

/// An access outside the accessible part of a memory or table: the trap
/// every tier raises for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutOfBounds {
    /// Bytes of a memory at or past its length.
    #[error(
        "an access of {size} bytes at offset {offset} reaches past the {length} accessible bytes of the memory"
    )]
    Memory {
        /// First byte accessed.
        offset: u64,
        /// Bytes accessed.
        size: u64,
        /// The memory's length in bytes when it was checked.
        length: u64,
    },
    /// An entry of a table at or past its length.
    #[error("index {index} is past the {length} entries of the table")]
    Table {
        /// Entry accessed.
        index: u64,
        /// The table's length in entries when it was checked.
        length: u64,
    },
}
