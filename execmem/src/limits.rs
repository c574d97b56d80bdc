//! Every bound the crate enforces on its callers' requests, in one place.

/// Largest single reservation: far beyond any function or module code section
/// the loader places, small enough that page arithmetic on it cannot overflow.
pub const MAX_RESERVATION_LEN: usize = 64 << 20;

/// Largest alignment a reservation may ask for. Regions start on page
/// boundaries and every supported page size is a multiple of 4 KiB, so any
/// power of two up to this bound is honoured exactly.
pub const MAX_ALIGNMENT: usize = 4096;

/// Default size of a fresh staging region when a batch runs out of room.
/// Untouched pages of an anonymous mapping cost no physical memory, and the
/// unused tail is unmapped at publication, so this only bounds how often a
/// large batch needs another region (and another protection change).
pub const DEFAULT_REGION_SIZE: usize = 64 << 10;

/// Default number of spare one-page staging regions the `mprotect`
/// strategy maps (and faults in) at a time: 64 KiB of 4 KiB pages, one
/// `mmap` per sixteen single-function publications.
pub const DEFAULT_POOL_PAGES: usize = 16;

/// Untouched spare pages a dropped allocator leaves to the process-wide
/// reserve, which the next allocator's pool takes before mapping (one
/// default refill: a loader created after another finds its first pages
/// ready).
pub const PROCESS_SPARE_PAGES: usize = 16;

/// Largest configurable pool refill, in pages.
pub const MAX_POOL_PAGES: usize = 1024;

/// Largest configurable region size and capacity hint.
pub const MAX_REGION_SIZE: usize = 1 << 30;

/// Longest function name accepted (it ends up in the perf map).
pub const MAX_NAME_LEN: usize = 4096;
