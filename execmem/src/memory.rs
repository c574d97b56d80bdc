//! The allocator: configuration, the state every batch and handle shares,
//! and the entry points that create batches.

use std::sync::Arc;

use crate::batch::CodeBatch;
use crate::dual::{DualRegion, Frontier, Views};
use crate::error::Error;
use crate::gdb_jit;
use crate::jitdump;
use crate::ledger::Ledger;
use crate::limits;
use crate::perf_map::{self, PerfMap};
use crate::pool::Pool;
use crate::published::PublishedFunction;
use crate::stats::{Protection, Stats};
use crate::switch::Switch;

/// Alignment of functions published through
/// [`ExecMemory::publish_function`]: the 16 bytes x86-64 compilers align
/// function entries to, so a function's first instructions share a fetch
/// block.
pub const FUNCTION_ALIGNMENT: usize = 16;

/// How code becomes executable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Each batch stages in private read-write pages and publishes them with
    /// `mprotect` to read-execute, one change per region. No writable alias
    /// of executable memory ever exists; batches never share a page.
    #[default]
    Mprotect,
    /// Code is written through a read-write view of a memory file and runs
    /// from a read-execute view of the same file. No protection ever
    /// changes and functions of all batches share pages, but the writable
    /// view of executable bytes lives as long as the region. Probed when the
    /// allocator is created; where the kernel refuses it (no `memfd_create`,
    /// SELinux, PaX, `vm.memfd_noexec = 2`) the allocator uses
    /// [`Strategy::Mprotect`] instead, which [`ExecMemory::strategy`]
    /// reports. So it does too when publications are announced (the perf
    /// map, GDB's JIT interface, the jitdump): debuggers cannot set
    /// breakpoints in a shared read-execute mapping, and `perf` names JIT
    /// code only in anonymous memory.
    DualMapping,
    /// Code runs from the only view of a memory file, read-execute, and is
    /// written into the file with `pwrite` at publication, from the batch's
    /// private staging. No mapping of code is ever writable, no protection
    /// ever changes, and functions of all batches share pages: changing
    /// published code takes a system call on the file, as it takes one on
    /// the pages under `mprotect`. Probed, refused and left for announced
    /// code as [`Strategy::DualMapping`] is, falling back to
    /// [`Strategy::Mprotect`].
    FileWrite,
}

/// How an [`ExecMemory`] maps and announces code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Size of a fresh staging region when a batch without a capacity hint
    /// needs room; rounded up to whole pages. The unused tail is unmapped at
    /// publication, so this trades protection changes of large batches
    /// (one per region) against the cost of mapping.
    pub region_size: usize,
    /// Whether published functions are listed in `/tmp/perf-PID.map`.
    pub perf_map: PerfMap,
    /// Whether each published batch is registered with GDB's JIT
    /// interface ([`Switch::Environment`]: when `SMFJIT_DEBUG=1`), so
    /// debuggers name and unwind generated functions.
    pub gdb_jit: Switch,
    /// Whether published functions are recorded, with their bytes, in the
    /// jitdump file `jit-PID.dump` that `perf inject --jit` reads
    /// ([`Switch::Environment`]: when `SMFJIT_JITDUMP=1`).
    pub jitdump: Switch,
    /// How code becomes executable.
    pub strategy: Strategy,
    /// Under [`Strategy::Mprotect`], pages kept mapped read-write and
    /// faulted in for batches whose first region is one page (a single
    /// instantiation, [`ExecMemory::publish_function`]), mapped this many
    /// at a time with one system call when the pool runs dry; such a batch
    /// then costs one protection change and no `mmap` or page fault. Pages
    /// never return to the pool once handed out. `0` maps every region on
    /// demand. At most [`limits::MAX_POOL_PAGES`]; ignored under dual
    /// mapping, where regions are shared anyway.
    pub pool_pages: usize,
    /// Whether the pool takes the spare pages dropped allocators left to
    /// the process-wide reserve before mapping, and leaves its own there
    /// when dropped (see `release_spare_pages`). On by default; off, the
    /// pool maps every refill and unmaps its spares with the allocator.
    pub shared_spares: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            region_size: limits::DEFAULT_REGION_SIZE,
            perf_map: PerfMap::Environment,
            gdb_jit: Switch::Environment,
            jitdump: Switch::Environment,
            strategy: Strategy::Mprotect,
            pool_pages: limits::DEFAULT_POOL_PAGES,
            shared_spares: true,
        }
    }
}

/// State shared by the allocator, its batches and its published code.
pub(crate) struct Shared {
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) page: usize,
    pub(crate) region_size: usize,
    pub(crate) perf_map: bool,
    pub(crate) gdb_jit: bool,
    pub(crate) jitdump: bool,
    /// Present exactly when the allocator uses dual mapping or file writes.
    pub(crate) frontier: Option<Frontier>,
    /// Spare one-page staging regions (mprotect with a pool configured).
    pub(crate) pool: Option<Pool>,
}

impl Shared {
    /// Whether functions' names are kept for an announcement.
    pub(crate) fn keeps_names(&self) -> bool {
        self.perf_map || self.gdb_jit || self.jitdump
    }

    /// Size of a fresh region for a reservation of `size` bytes: the
    /// configured (or hinted) size, or `size` in whole pages if larger.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLength`] if the rounding overflows (sizes are bounded
    /// far below that by [`limits::MAX_RESERVATION_LEN`]).
    pub(crate) fn fresh_region_len(&self, size: usize, wanted: usize) -> Result<usize, Error> {
        round_to_pages(wanted.max(size), self.page).ok_or(Error::InvalidLength {
            len: size,
            max: limits::MAX_RESERVATION_LEN,
        })
    }
}

/// A write-xor-execute executable-memory allocator.
///
/// Cheap to clone (all clones share one ledger), `Send` and `Sync`: any
/// number of threads may open batches and publish at once.
#[derive(Clone)]
pub struct ExecMemory {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ExecMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecMemory")
            .field("page_size", &self.shared.page)
            .field("region_size", &self.shared.region_size)
            .field("perf_map", &self.shared.perf_map)
            .field("gdb_jit", &self.shared.gdb_jit)
            .field("jitdump", &self.shared.jitdump)
            .field("strategy", &self.strategy())
            .field("stats", &self.stats())
            .finish()
    }
}

impl ExecMemory {
    /// Creates an allocator. Nothing is mapped until a batch reserves room.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRegionSize`] when `config.region_size` is zero or
    /// above [`limits::MAX_REGION_SIZE`]; [`Error::InvalidPoolSize`] when
    /// `config.pool_pages` is above [`limits::MAX_POOL_PAGES`];
    /// [`Error::PerfMap`] when the perf map is enabled and
    /// `/tmp/perf-PID.map` cannot be opened; [`Error::Jitdump`] when the
    /// jitdump is enabled and its file cannot be created and mapped.
    pub fn new(config: Config) -> Result<Self, Error> {
        let page = region::page::size();
        let invalid = || Error::InvalidRegionSize {
            size: config.region_size,
            page,
            max: limits::MAX_REGION_SIZE,
        };
        if config.region_size == 0 || config.region_size > limits::MAX_REGION_SIZE {
            return Err(invalid());
        }
        let region_size = round_to_pages(config.region_size, page).ok_or_else(invalid)?;
        if config.pool_pages > limits::MAX_POOL_PAGES {
            return Err(Error::InvalidPoolSize {
                pages: config.pool_pages,
                max: limits::MAX_POOL_PAGES,
            });
        }
        let perf_map = config.perf_map.is_enabled(perf_map::PERF_MAP_ENV);
        if perf_map {
            perf_map::open()?;
        }
        let gdb_jit = config.gdb_jit.is_enabled(gdb_jit::DEBUG_ENV);
        let jitdump = config.jitdump.is_enabled(jitdump::JITDUMP_ENV);
        if jitdump {
            jitdump::open()?;
        }
        let ledger = Arc::default();
        // The probe for a memory-file strategy is the allocator's first
        // region; any refusal means the kernel will not do it, so fall back.
        // Announced code needs private anonymous pages: a debugger sets
        // breakpoints by writing through `ptrace`, which the kernel refuses
        // in a shared mapping without write permission, and `perf` looks
        // JIT symbols up only for anonymous memory.
        let announced = perf_map || gdb_jit || jitdump;
        let views = match config.strategy {
            _ if announced => None,
            Strategy::Mprotect => None,
            Strategy::DualMapping => Some(Views::Both),
            Strategy::FileWrite => Some(Views::ExecuteOnly),
        };
        let frontier = views.and_then(|views| {
            DualRegion::create(region_size, views, &ledger)
                .ok()
                .map(Frontier::new)
        });
        // Nothing is mapped for the pool until a batch asks for a page.
        let pool = (frontier.is_none() && config.pool_pages > 0)
            .then(|| Pool::new(config.pool_pages, page, config.shared_spares));
        Ok(Self {
            shared: Arc::new(Shared {
                ledger,
                page,
                region_size,
                perf_map,
                gdb_jit,
                jitdump,
                frontier,
                pool,
            }),
        })
    }

    /// Opens an empty batch. With [`Strategy::Mprotect`] its first
    /// reservation maps a region of [`Config::region_size`] bytes (or more,
    /// if that reservation is larger); with [`Strategy::DualMapping`] and
    /// [`Strategy::FileWrite`] reservations go into the allocator's shared
    /// current region.
    #[must_use]
    pub fn batch(&self) -> CodeBatch {
        CodeBatch::new(Arc::clone(&self.shared), None)
    }

    /// Opens an empty batch whose first region holds at least
    /// `capacity` bytes (capped at [`limits::MAX_REGION_SIZE`]; ignored
    /// under [`Strategy::DualMapping`] and [`Strategy::FileWrite`], where
    /// regions are shared). A caller that knows the total size of its code
    /// — the loader copying a code section, a single function — maps
    /// exactly what it needs and publishes with one protection change.
    #[must_use]
    pub fn batch_with_capacity(&self, capacity: usize) -> CodeBatch {
        CodeBatch::new(Arc::clone(&self.shared), Some(capacity))
    }

    /// Publishes one position-independent function: reserves `code.len()`
    /// bytes aligned to [`FUNCTION_ALIGNMENT`], copies `code` in and
    /// publishes. Code whose bytes depend on its own address (rip-relative
    /// data, `call rel32` to other code) must use a [`CodeBatch`] instead,
    /// which gives the address before the bytes are written.
    ///
    /// # Errors
    ///
    /// As [`CodeBatch::reserve`] and [`CodeBatch::publish`].
    pub fn publish_function(&self, name: &str, code: &[u8]) -> Result<PublishedFunction, Error> {
        let mut batch = self.batch_with_capacity(code.len());
        let reservation = batch.reserve(name, code.len(), FUNCTION_ALIGNMENT)?;
        batch.write(&reservation, 0, code)?;
        let code = batch.publish()?;
        Ok(PublishedFunction::new(code, reservation))
    }

    /// A consistent snapshot of the allocator's bookkeeping.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.ledger.snapshot()
    }

    /// Protection of `address` if it lies in memory this allocator currently
    /// holds (staging or published), from the allocator's own books.
    #[must_use]
    pub fn protection_of(&self, address: usize) -> Option<Protection> {
        self.shared.ledger.protection_of(address)
    }

    /// The page size protections are changed at.
    #[must_use]
    pub fn page_size(&self) -> usize {
        self.shared.page
    }

    /// The strategy in effect: [`Config::strategy`], or
    /// [`Strategy::Mprotect`] where a memory-file strategy was asked for
    /// but refused, or publications are announced.
    #[must_use]
    pub fn strategy(&self) -> Strategy {
        match self.shared.frontier.as_ref().map(Frontier::views) {
            Some(Views::Both) => Strategy::DualMapping,
            Some(Views::ExecuteOnly) => Strategy::FileWrite,
            None => Strategy::Mprotect,
        }
    }

    /// Whether publications are listed in the perf map.
    #[must_use]
    pub fn perf_map_enabled(&self) -> bool {
        self.shared.perf_map
    }

    /// Whether publications are registered with GDB's JIT interface.
    #[must_use]
    pub fn gdb_jit_enabled(&self) -> bool {
        self.shared.gdb_jit
    }

    /// Whether publications are recorded in the jitdump file.
    #[must_use]
    pub fn jitdump_enabled(&self) -> bool {
        self.shared.jitdump
    }
}

/// `len` rounded up to a multiple of `page`, or `None` on overflow.
pub(crate) fn round_to_pages(len: usize, page: usize) -> Option<usize> {
    len.div_ceil(page).checked_mul(page)
}
