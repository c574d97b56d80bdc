//! Staging: a batch reserves room for functions at their final addresses,
//! takes their bytes while read-write, and publishes them all at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::arch;
use crate::dual::{DualRegion, Frontier, Views};
use crate::error::Error;
use crate::limits;
use crate::mapping::Staging;
use crate::memory::Shared;
use crate::perf_map;
use crate::published::{Function, PublishedCode};
use crate::{debug_object, gdb_jit, jitdump};

/// Identity of batches, unique in the process, so a reservation cannot be
/// used with a batch or published code it does not belong to.
static NEXT_BATCH: AtomicU64 = AtomicU64::new(1);

/// Room for one function in a [`CodeBatch`], at the address it will run at.
///
/// A reservation is a plain value (`Copy`): it names the function inside
/// its batch and, after publication, inside the [`PublishedCode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reservation {
    batch: u64,
    index: usize,
    address: usize,
    size: usize,
}

impl Reservation {
    /// The address the function's first byte will execute at once published.
    /// Known before any byte is written, so rip-relative operands, `call
    /// rel32` displacements and absolute addresses can be encoded for it.
    #[must_use]
    pub fn address(&self) -> usize {
        self.address
    }

    /// Bytes reserved.
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Position of the function in its batch (reservation order).
    #[must_use]
    pub fn index(&self) -> usize {
        self.index
    }

    /// The reservation's extent, `address .. address + size`.
    #[must_use]
    pub fn range(&self) -> std::ops::Range<usize> {
        self.address..self.address + self.size
    }

    pub(crate) fn batch(&self) -> u64 {
        self.batch
    }

    pub(crate) fn foreign(&self) -> Error {
        Error::ForeignReservation {
            address: self.address,
            index: self.index,
        }
    }
}

/// One staging mapping of a batch and how far it is filled.
struct Region {
    staging: Staging,
    cursor: usize,
}

/// Where a reservation's bytes live.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Home {
    /// In the batch's own staging region with this index (mprotect).
    Own(usize),
    /// In the shared dual-mapped region with this index in the batch's list.
    Shared(usize),
}

/// Bytes staged in private memory for a run of reservations in a region
/// without a read-write view (file writes), written into the region's file
/// at publication.
struct Staged {
    /// Index of the region in the batch's list.
    region: usize,
    /// Offset of the first byte in the region.
    start: usize,
    /// The reservations and the padding between them, trapping until
    /// written.
    bytes: Vec<u8>,
}

/// A function named inside a reservation.
struct Inner {
    offset: usize,
    len: usize,
    name: Box<str>,
}

struct Entry {
    home: Home,
    offset: usize,
    size: usize,
    /// Leading bytes that are instructions (the rest is data).
    instruction_len: usize,
    /// Kept only when an announcement (perf map, GDB, jitdump) is enabled.
    name: Box<str>,
    /// Functions named inside the reservation (kept as `name` is), which
    /// the announcements list instead of the reservation itself.
    inner: Vec<Inner>,
}

/// Code being prepared for publication at its final addresses.
///
/// Under [`Strategy::Mprotect`](crate::Strategy::Mprotect) functions are
/// packed one after another (at the alignment each asks for) into as few
/// private read-write regions as possible, never executable;
/// [`publish`](Self::publish) turns each region's used pages read-execute
/// with one protection change and unmaps the rest. Dropping an unpublished
/// batch unmaps its staging memory.
///
/// Under [`Strategy::DualMapping`](crate::Strategy::DualMapping) functions
/// are packed into the allocator's current shared region, written through
/// its read-write view; their addresses lie in its read-execute view, where
/// the unwritten bytes trap until published. Dropping an unpublished batch
/// gives up its ranges (they stay trapping; ranges are never reused).
/// Under [`Strategy::FileWrite`](crate::Strategy::FileWrite) the same, but
/// the bytes are staged in the batch's private memory and written into the
/// region's file at publication, one write per run of adjacent
/// reservations.
///
/// A batch belongs to one thread at a time (`Send`, not shared).
pub struct CodeBatch {
    shared: Arc<Shared>,
    id: u64,
    regions: Vec<Region>,
    /// Dual-mapped regions holding this batch's reservations, in order.
    shared_regions: Vec<Arc<DualRegion>>,
    /// The bytes of reservations in regions without a write view.
    staged: Vec<Staged>,
    entries: Vec<Entry>,
    /// Size of the first region, from a capacity hint; taken once.
    first_region: Option<usize>,
    /// Values the code refers to by address, kept as long as the code.
    keep: Vec<Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for CodeBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeBatch")
            .field("functions", &self.entries.len())
            .field("regions", &self.regions.len())
            .finish()
    }
}

impl CodeBatch {
    pub(crate) fn new(shared: Arc<Shared>, capacity: Option<usize>) -> Self {
        Self {
            shared,
            id: NEXT_BATCH.fetch_add(1, Ordering::Relaxed),
            regions: Vec::new(),
            shared_regions: Vec::new(),
            staged: Vec::new(),
            entries: Vec::new(),
            first_region: capacity.map(|bytes| bytes.min(limits::MAX_REGION_SIZE)),
            keep: Vec::new(),
        }
    }

    /// Keeps `value` alive as long as the published code: for data the
    /// code refers to by address (a stub's context record), which must not
    /// be freed while the code can still run.
    pub fn keep_alive(&mut self, value: Arc<dyn std::any::Any + Send + Sync>) {
        self.keep.push(value);
    }

    /// Makes room in the batch's books for about `additional` more
    /// functions (and values kept alive), so that a caller about to
    /// reserve many does not grow them step by step.
    pub fn expect_functions(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.keep.reserve(additional);
    }

    /// Number of functions reserved so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing has been reserved yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reserves `size` bytes aligned to `align` for a function called `name`
    /// (the name only matters for the perf map) and returns its final
    /// address. The bytes start out as trapping instructions (`int3` on
    /// x86), so any part left unwritten faults if reached.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLength`] for a size of zero or above
    /// [`limits::MAX_RESERVATION_LEN`], [`Error::InvalidAlignment`] for an
    /// alignment that is not a power of two up to [`limits::MAX_ALIGNMENT`],
    /// [`Error::NameTooLong`] past [`limits::MAX_NAME_LEN`], and
    /// [`Error::Map`] when a new region cannot be mapped.
    pub fn reserve(&mut self, name: &str, size: usize, align: usize) -> Result<Reservation, Error> {
        if size == 0 || size > limits::MAX_RESERVATION_LEN {
            return Err(Error::InvalidLength {
                len: size,
                max: limits::MAX_RESERVATION_LEN,
            });
        }
        if !align.is_power_of_two() || align > limits::MAX_ALIGNMENT {
            return Err(Error::InvalidAlignment {
                align,
                max: limits::MAX_ALIGNMENT,
            });
        }
        if name.len() > limits::MAX_NAME_LEN {
            return Err(Error::NameTooLong {
                len: name.len(),
                max: limits::MAX_NAME_LEN,
            });
        }
        let shared = Arc::clone(&self.shared);
        let (home, offset, address) = match &shared.frontier {
            Some(frontier) => self.reserve_shared(frontier, size, align)?,
            None => self.reserve_own(size, align)?,
        };
        let index = self.entries.len();
        self.entries.push(Entry {
            home,
            offset,
            size,
            instruction_len: size,
            name: if self.shared.keeps_names() {
                name.into()
            } else {
                Box::default()
            },
            inner: Vec::new(),
        });
        Ok(Reservation {
            batch: self.id,
            index,
            address,
            size,
        })
    }

    /// Places a reservation in the batch's own staging: the first region
    /// with room, or a fresh one. Alignment padding and the reservation
    /// itself are filled with trapping bytes.
    fn reserve_own(&mut self, size: usize, align: usize) -> Result<(Home, usize, usize), Error> {
        let place = self.regions.iter().enumerate().find_map(|(index, region)| {
            let start = region.cursor.checked_next_multiple_of(align)?;
            let end = start.checked_add(size)?;
            (end <= region.staging.len()).then_some((index, start))
        });
        let (index, offset) = match place {
            Some(place) => place,
            None => {
                let wanted = self.first_region.take().unwrap_or(self.shared.region_size);
                let len = self.shared.fresh_region_len(size, wanted)?;
                let staging = match &self.shared.pool {
                    Some(pool) if len == pool.page() => pool.take(&self.shared.ledger)?,
                    _ => Staging::map(len, &self.shared.ledger)?,
                };
                self.regions.push(Region { staging, cursor: 0 });
                (self.regions.len() - 1, 0)
            }
        };
        let region = &mut self.regions[index];
        let end = offset + size;
        region.staging.bytes_mut()[region.cursor..end].fill(arch::TRAP_FILL);
        region.cursor = end;
        Ok((Home::Own(index), offset, region.staging.address() + offset))
    }

    /// Places a reservation in the allocator's shared dual-mapped region
    /// (already filled with trapping bytes when created).
    fn reserve_shared(
        &mut self,
        frontier: &Frontier,
        size: usize,
        align: usize,
    ) -> Result<(Home, usize, usize), Error> {
        let fresh = self
            .shared
            .fresh_region_len(size, self.shared.region_size)?;
        let placed = frontier.place(size, align, fresh, &self.shared.ledger)?;
        let (offset, padding) = (placed.offset, placed.padding);
        let address = placed.region.exec_address() + offset;
        // The frontier only moves forward, so a batch's regions come in
        // order and only the last can repeat.
        let known = self
            .shared_regions
            .last()
            .is_some_and(|last| Arc::ptr_eq(last, &placed.region));
        if !known {
            self.shared_regions.push(placed.region);
        }
        let index = self.shared_regions.len() - 1;
        if frontier.views() == Views::ExecuteOnly {
            let end = offset + size;
            match self.staged.last_mut() {
                // Nothing was handed out between the run's end and this
                // reservation: the run grows over the padding.
                Some(run) if run.region == index && run.start + run.bytes.len() == padding => {
                    run.bytes.resize(end - run.start, arch::TRAP_FILL);
                }
                _ => self.staged.push(Staged {
                    region: index,
                    start: offset,
                    bytes: vec![arch::TRAP_FILL; size],
                }),
            }
        }
        Ok((Home::Shared(index), offset, address))
    }

    /// The entry a reservation names, if it belongs to this batch.
    fn entry(&self, reservation: &Reservation) -> Result<&Entry, Error> {
        if reservation.batch != self.id {
            return Err(reservation.foreign());
        }
        self.entries
            .get(reservation.index)
            .ok_or_else(|| reservation.foreign())
    }

    /// Whether publication announces functions by name (the perf map,
    /// GDB's JIT interface or the jitdump is on): a caller with names to
    /// give [`name_within`](Self::name_within) can skip looking them up
    /// otherwise.
    #[must_use]
    pub fn announces(&self) -> bool {
        self.shared.keeps_names()
    }

    /// Names a function of `len` bytes at `offset` inside a reservation
    /// that holds several (a loaded module's code section): debuggers and
    /// profilers then see these functions rather than the reservation as
    /// one. Nothing is kept when [`announces`](Self::announces) is false.
    ///
    /// # Errors
    ///
    /// [`Error::ForeignReservation`] when `reservation` belongs to another
    /// batch, [`Error::InvalidLength`] for an empty function or one past
    /// the reservation's end, [`Error::NameTooLong`] past
    /// [`limits::MAX_NAME_LEN`].
    pub fn name_within(
        &mut self,
        reservation: &Reservation,
        offset: usize,
        len: usize,
        name: &str,
    ) -> Result<(), Error> {
        self.entry(reservation)?;
        let end = offset
            .checked_add(len)
            .filter(|&end| len > 0 && end <= reservation.size);
        if end.is_none() {
            return Err(Error::InvalidLength {
                len,
                max: reservation.size.saturating_sub(offset),
            });
        }
        if name.len() > limits::MAX_NAME_LEN {
            return Err(Error::NameTooLong {
                len: name.len(),
                max: limits::MAX_NAME_LEN,
            });
        }
        if self.shared.keeps_names() {
            self.entries[reservation.index].inner.push(Inner {
                offset,
                len,
                name: name.into(),
            });
        }
        Ok(())
    }

    /// Records that only the first `len` bytes of the reservation are
    /// instructions and the rest data (a constant pool), for disassemblers
    /// reading the published code back ([`PublishedCode::instruction_len`]).
    /// Without it, all of the reservation counts as instructions.
    ///
    /// # Errors
    ///
    /// [`Error::ForeignReservation`] when `reservation` belongs to another
    /// batch, [`Error::InvalidLength`] when `len` exceeds its size.
    pub fn set_instruction_len(
        &mut self,
        reservation: &Reservation,
        len: usize,
    ) -> Result<(), Error> {
        self.entry(reservation)?;
        if len > reservation.size {
            return Err(Error::InvalidLength {
                len,
                max: reservation.size,
            });
        }
        self.entries[reservation.index].instruction_len = len;
        Ok(())
    }

    /// The reserved bytes of a function, writable until publication: code
    /// can be assembled or relocated in place.
    ///
    /// # Errors
    ///
    /// [`Error::ForeignReservation`] when `reservation` belongs to another
    /// batch.
    pub fn bytes_mut(&mut self, reservation: &Reservation) -> Result<&mut [u8], Error> {
        let &Entry {
            home, offset, size, ..
        } = self.entry(reservation)?;
        let index = match home {
            Home::Own(index) => {
                return Ok(&mut self.regions[index].staging.bytes_mut()[offset..offset + size]);
            }
            Home::Shared(index) => index,
        };
        // SAFETY: the range was handed to this batch alone by the frontier
        // and is not published while the batch exists; the slice borrows
        // the batch mutably, so no second slice of it (or of any other
        // reservation of the batch) coexists.
        if let Some(bytes) = unsafe { self.shared_regions[index].write_slice(offset, size) } {
            return Ok(bytes);
        }
        self.staged
            .iter_mut()
            .find(|run| {
                run.region == index
                    && run.start <= offset
                    && offset + size <= run.start + run.bytes.len()
            })
            .map(|run| &mut run.bytes[offset - run.start..offset - run.start + size])
            .ok_or_else(|| reservation.foreign())
    }

    /// Copies `bytes` into the reservation at `offset` (any offset, any
    /// number of times, until publication).
    ///
    /// # Errors
    ///
    /// [`Error::ForeignReservation`] when `reservation` belongs to another
    /// batch, [`Error::OutOfBounds`] when `offset + bytes.len()` exceeds the
    /// reservation (nothing is written then).
    pub fn write(
        &mut self,
        reservation: &Reservation,
        offset: usize,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let out_of_bounds = Error::OutOfBounds {
            address: reservation.address,
            offset,
            len: bytes.len(),
            reserved: reservation.size,
        };
        let target = self.bytes_mut(reservation)?;
        let end = offset.checked_add(bytes.len());
        match end.and_then(|end| target.get_mut(offset..end)) {
            Some(target) => {
                target.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(out_of_bounds),
        }
    }

    /// Publishes every reserved function: pads each region's last page with
    /// trapping bytes, makes the instruction cache coherent, and turns each
    /// region read-execute with one protection change (one region for any
    /// batch that fits [`Config::region_size`](crate::Config::region_size)
    /// or its capacity hint). Under file writes, writes each run of staged
    /// reservations into its region's file instead. Consumes the batch, so
    /// nothing can be written afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::Protect`] when the kernel refuses execute permission (see
    /// the error's text); all of the batch's memory is unmapped then.
    /// [`Error::WriteCode`] when a write into a code file fails; the
    /// batch's ranges are given up then.
    pub fn publish(self) -> Result<PublishedCode, Error> {
        let Self {
            shared,
            id,
            regions,
            shared_regions,
            staged,
            entries,
            keep,
            ..
        } = self;
        for run in &staged {
            let region = &shared_regions[run.region];
            region
                .write_file(run.start, &run.bytes)
                .map_err(|source| Error::WriteCode {
                    address: region.exec_address() + run.start,
                    len: run.bytes.len(),
                    source,
                })?;
        }
        let mut mappings = Vec::with_capacity(regions.len());
        for region in regions {
            // On error the regions not yet published and those already
            // published are dropped here, which unmaps them all.
            mappings.push(region.staging.publish(region.cursor, shared.page)?);
        }
        let functions: Vec<Function> = entries
            .iter()
            .map(|entry| Function {
                home: entry.home,
                offset: entry.offset,
                size: entry.size,
                instruction_len: entry.instruction_len,
            })
            .collect();
        let mut code = PublishedCode::new(
            Arc::clone(&shared.ledger),
            id,
            mappings,
            shared_regions,
            functions,
            keep,
        );
        // Shared regions are executable already: only the instruction
        // stream needs to see the new bytes.
        for function in code.functions() {
            if function.is_shared() {
                arch::make_coherent(function.address(), function.len());
            }
        }
        if shared.keeps_names() && !entries.is_empty() {
            announce(&shared, &mut code, &entries);
        }
        Ok(code)
    }
}

/// A function as the announcements name it: a whole reservation, or a
/// function named inside one with [`CodeBatch::name_within`].
struct Announced<'a> {
    home: Home,
    bytes: &'a [u8],
    name: &'a str,
}

/// Announces a published batch to whatever is enabled: the perf map, the
/// jitdump, GDB. A failed file write does not fail the publication (the
/// code is live already); it is counted.
fn announce(shared: &Shared, code: &mut PublishedCode, entries: &[Entry]) {
    let mut functions = Vec::with_capacity(entries.len());
    for (entry, function) in entries.iter().zip(code.functions()) {
        let bytes = function.bytes();
        if entry.inner.is_empty() {
            functions.push(Announced {
                home: entry.home,
                bytes,
                name: &entry.name,
            });
        }
        for inner in &entry.inner {
            // Bounds were checked by `name_within`.
            functions.push(Announced {
                home: entry.home,
                bytes: &bytes[inner.offset..inner.offset + inner.len],
                name: &inner.name,
            });
        }
    }
    if shared.perf_map {
        let lines = functions
            .iter()
            .map(|f| (f.bytes.as_ptr() as usize, f.bytes.len(), f.name));
        if perf_map::append(lines).is_err() {
            shared.ledger.perf_map_failed();
        }
    }
    if shared.jitdump {
        let records = functions.iter().map(|f| (f.name, f.bytes));
        if jitdump::append(records).is_err() {
            shared.ledger.jitdump_failed();
        }
    }
    if shared.gdb_jit {
        let object = debug_object_of(&functions);
        code.set_registration(gdb_jit::Registration::new(object));
    }
}

/// The debugger's view of a batch: one `.text` section per region the
/// batch's functions lie in (spanning just those functions, so batches
/// sharing a dual-mapped region do not overlap) and a symbol per function.
fn debug_object_of(functions: &[Announced<'_>]) -> Vec<u8> {
    let mut homes: Vec<Home> = Vec::new();
    let mut texts: Vec<debug_object::Text> = Vec::new();
    let mut symbols = Vec::with_capacity(functions.len());
    for function in functions {
        let (address, len) = (function.bytes.as_ptr() as usize, function.bytes.len());
        let text = match homes.iter().position(|&home| home == function.home) {
            Some(text) => {
                let stretch = &mut texts[text];
                let end = (stretch.address + stretch.len).max(address + len);
                stretch.address = stretch.address.min(address);
                stretch.len = end - stretch.address;
                text
            }
            None => {
                homes.push(function.home);
                texts.push(debug_object::Text { address, len });
                texts.len() - 1
            }
        };
        symbols.push(debug_object::Symbol {
            name: function.name,
            text,
            address,
            len,
        });
    }
    debug_object::build(&texts, &symbols)
}
