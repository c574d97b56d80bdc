//! Every bound the crate enforces, in one place.

/// Bytes in one page of a memory: the unit of its size and of `grow`.
pub const PAGE_SIZE: u64 = 65_536;

/// Largest size of a memory, in pages: 4 GiB. A memory declared without a
/// maximum reserves this much address space, so its base never moves.
pub const MAX_MEMORY_PAGES: u64 = 65_536;

/// Bytes in one table entry: a function address, 0 for null.
pub const TABLE_ENTRY_SIZE: u64 = 8;

/// Largest size of a table, in entries (8 MiB of address space). A table
/// declared without a maximum reserves this many.
pub const MAX_TABLE_ENTRIES: u64 = 1 << 20;
