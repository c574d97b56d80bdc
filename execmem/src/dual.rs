//! Code in a memory file: regions shared by every batch of an allocator,
//! which no protection change ever touches.
//!
//! Under dual mapping the file is mapped twice, a read-write view where
//! code is written and a read-execute view where it runs; the price is that
//! a writable alias of executable memory exists for as long as the region
//! lives. Under file writes the read-execute view is the only one: a batch
//! stages its bytes in private memory and publication writes them into the
//! file with `pwrite`, so changing code takes a system call on the file,
//! as changing it under `mprotect` takes one on the pages (see
//! doc/ARCHITECTURE.md). No single mapping is ever writable and executable
//! in either, and functions from any number of batches share pages.
//!
//! A [`DualRegion`] is created whole, its views mapped; every byte of it is
//! the trapping fill before anyone can own it (with a write view at once;
//! under file writes a page at a time, as the frontier reaches it, so that
//! a program compiling a few functions pays for one page, not the region).
//! A bump [`Frontier`] shared by all batches of an
//! allocator hands out byte ranges; a region lives while the frontier or any
//! batch or published code holding one of its ranges keeps it (`Arc`), and
//! is unmapped with its file when the last of them goes.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use crate::arch;
use crate::error::Error;
use crate::ledger::Ledger;
use crate::stats::Protection;

/// Name of the memory files, as `/proc/PID/maps` shows them
/// (`/memfd:smfjit-code (deleted)`).
const MEMFD_NAME: &CStr = c"smfjit-code";

/// Which views of its file a region maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Views {
    /// A read-write view for writing and a read-execute one (dual mapping).
    Both,
    /// Only the read-execute view; code is written into the file (file
    /// writes).
    ExecuteOnly,
}

/// A memory file with a read-execute view of its bytes and, under dual
/// mapping, a read-write one.
pub(crate) struct DualRegion {
    write_view: Option<NonNull<u8>>,
    exec_view: NonNull<u8>,
    len: usize,
    ledger: Arc<Ledger>,
    /// Kept open for the region's life: file writes go through it, and
    /// closing it after unmapping frees the memory.
    file: OwnedFd,
    /// How far the file holds the trapping fill: all of it with a write
    /// view; under file writes, the pages the frontier has reached (see
    /// [`DualRegion::fill_to`]).
    filled: AtomicUsize,
}

// SAFETY: the region owns its views; writes go only through `write`, whose
// contract gives each writer a byte range nobody else touches, and reads of
// the read-execute view only cover published bytes that are never written
// again. Sharing and sending it is therefore as safe as for a
// `Mutex`-free arena of disjoint slots.
unsafe impl Send for DualRegion {}
// SAFETY: see `Send`.
unsafe impl Sync for DualRegion {}

/// Maps `len` bytes of `fd` shared with `protection` (and `extra` flags).
fn map_view(
    fd: &OwnedFd,
    len: usize,
    protection: libc::c_int,
    extra: libc::c_int,
) -> io::Result<NonNull<u8>> {
    // SAFETY: a shared mapping of our own memory file at an address of the
    // kernel's choosing touches no existing memory; the result is checked.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            protection,
            libc::MAP_SHARED | extra,
            fd.as_raw_fd(),
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(raw.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned the null address"))
}

/// Unmaps a view created by [`map_view`].
///
/// # Safety
///
/// `view` must be a live mapping of `len` bytes that nothing references.
unsafe fn unmap_view(view: NonNull<u8>, len: usize) {
    // SAFETY: guaranteed by the caller.
    let status = unsafe { libc::munmap(view.as_ptr().cast(), len) };
    debug_assert_eq!(status, 0, "munmap of an owned view failed");
}

/// Maps the bytes `from .. to` of `file` read-execute over the same range
/// of the reservation at `view`.
///
/// # Safety
///
/// `from .. to` must lie inside an inaccessible reservation the caller
/// owns, with nothing of it handed out.
unsafe fn map_over(file: &OwnedFd, view: NonNull<u8>, from: usize, to: usize) -> io::Result<()> {
    let at = libc::off_t::try_from(from).map_err(io::Error::other)?;
    // SAFETY: the range is the caller's own reservation (the contract), so
    // replacing its mapping touches no memory anyone else uses.
    let raw = unsafe {
        libc::mmap(
            view.as_ptr().add(from).cast(),
            to - from,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED | libc::MAP_FIXED,
            file.as_raw_fd(),
            at,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates an executable-capable memory file of `len` bytes.
fn memory_file(len: usize) -> io::Result<OwnedFd> {
    // Kernels from 6.3 on may default memory files to "never executable"
    // (`vm.memfd_noexec`); MFD_EXEC asks for an executable one explicitly.
    // Older kernels reject the unknown flag with EINVAL, so retry without.
    let mut fd = -1;
    for flags in [libc::MFD_CLOEXEC | libc::MFD_EXEC, libc::MFD_CLOEXEC] {
        // SAFETY: the name is a valid NUL-terminated string; the call only
        // creates a new descriptor.
        fd = unsafe { libc::memfd_create(MEMFD_NAME.as_ptr(), flags) };
        if fd >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    let size = libc::off_t::try_from(len).map_err(io::Error::other)?;
    // SAFETY: plain system call on our own descriptor.
    if unsafe { libc::ftruncate(file.as_raw_fd(), size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Calls `write` (a positioned write of what is left from the offset it is
/// given, as a `usize` and as the system call's `off_t`, returning what the
/// call returned) until the file holds everything from `offset` to `end`,
/// across partial writes and interrupted calls.
fn write_fully(
    mut offset: usize,
    end: usize,
    mut write: impl FnMut(usize, libc::off_t) -> isize,
) -> io::Result<()> {
    while offset < end {
        let at = libc::off_t::try_from(offset).map_err(io::Error::other)?;
        match usize::try_from(write(offset, at)) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => offset += n,
            Err(_) => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(())
}

/// Writes all of `bytes` into `file` at `offset`.
fn write_all_at(file: &OwnedFd, bytes: &[u8], offset: usize) -> io::Result<()> {
    write_fully(offset, offset + bytes.len(), |now, at| {
        let rest = &bytes[now - offset..];
        // SAFETY: `rest` is a live slice of `rest.len()` readable bytes;
        // the call only reads it and writes our own file.
        unsafe { libc::pwrite(file.as_raw_fd(), rest.as_ptr().cast(), rest.len(), at) }
    })
}

/// The unit the code file is filled in: a page on the smallest pages.
const FILL_UNIT: usize = 4096;

/// Sets the bytes `from .. to` of `file` to the trapping fill: one page of
/// it written as many times as needed, several pages per system call.
fn fill_file(file: &OwnedFd, from: usize, to: usize) -> io::Result<()> {
    const PAGE: usize = FILL_UNIT;
    const PAGES_PER_CALL: usize = 64;
    let page = [arch::TRAP_FILL; PAGE];
    let vector = |len| libc::iovec {
        iov_base: page.as_ptr().cast_mut().cast(),
        iov_len: len,
    };
    let mut vectors = [vector(PAGE); PAGES_PER_CALL];
    write_fully(from, to, |now, at| {
        let chunk = (to - now).min(PAGE * PAGES_PER_CALL);
        let count = chunk.div_ceil(PAGE);
        // Whole pages, and the rest of the last one.
        vectors[count - 1] = vector(chunk - (count - 1) * PAGE);
        // SAFETY: every vector points into `page`, which outlives the call
        // and is only read by it; `count` is at most `PAGES_PER_CALL`.
        let written =
            unsafe { libc::pwritev(file.as_raw_fd(), vectors.as_ptr(), count as libc::c_int, at) };
        vectors[count - 1] = vector(PAGE);
        written
    })
}

impl DualRegion {
    /// Creates a region of `len` bytes (a positive page multiple) with
    /// `views`. With a write view it is filled with trapping bytes now;
    /// under file writes the file starts empty and [`DualRegion::fill_to`]
    /// fills it a page at a time as the frontier reaches it, so a program
    /// that compiles a few functions fills, faults in and frees one page
    /// of the region, not all of it.
    ///
    /// # Errors
    ///
    /// [`Error::Map`] when the memory file or the read-write view cannot be
    /// created or filled, [`Error::ExecutableView`] when the read-execute
    /// view is refused (a hardened kernel: SELinux denying execute on
    /// memory files, PaX, `vm.memfd_noexec = 2`).
    pub(crate) fn create(len: usize, views: Views, ledger: &Arc<Ledger>) -> Result<Self, Error> {
        let map_error = |source| Error::Map { len, source };
        let file = memory_file(len).map_err(map_error)?;
        let write_view = match views {
            Views::Both => Some(
                map_view(&file, len, libc::PROT_READ | libc::PROT_WRITE, 0).map_err(map_error)?,
            ),
            Views::ExecuteOnly => None,
        };
        // Under file writes the view starts as an inaccessible reservation
        // (any access traps), and `fill_to` maps the file's pages over it,
        // read-execute, as the frontier reaches them.
        let exec_view = match views {
            Views::Both => map_view(&file, len, libc::PROT_READ | libc::PROT_EXEC, 0),
            Views::ExecuteOnly => Ok(crate::mapping::map_anonymous(
                len,
                libc::PROT_NONE,
                libc::MAP_NORESERVE,
            )?),
        };
        let exec_view = match exec_view {
            Ok(view) => view,
            Err(source) => {
                if let Some(write_view) = write_view {
                    // SAFETY: the write view was just mapped and nothing
                    // refers to it.
                    unsafe { unmap_view(write_view, len) };
                }
                return Err(Error::ExecutableView { len, source });
            }
        };
        if let Some(write_view) = write_view {
            // SAFETY: the write view is a fresh read-write mapping of `len`
            // bytes that no one else can reach yet.
            unsafe { std::slice::from_raw_parts_mut(write_view.as_ptr(), len) }
                .fill(arch::TRAP_FILL);
            ledger.mapped_as(write_view.as_ptr() as usize, len, Protection::ReadWrite);
            arch::make_coherent(exec_view.as_ptr() as usize, len);
        }
        ledger.mapped_as(exec_view.as_ptr() as usize, len, Protection::ReadExecute);
        let filled = AtomicUsize::new(if write_view.is_some() { len } else { 0 });
        let region = Self {
            write_view,
            exec_view,
            len,
            ledger: Arc::clone(ledger),
            file,
            filled,
        };
        if matches!(views, Views::ExecuteOnly) {
            // The first page now: it is where the first code goes, and
            // mapping it read-execute is the probe that the kernel allows
            // executing a memory file at all.
            let first = FILL_UNIT.min(len);
            fill_file(&region.file, 0, first).map_err(map_error)?;
            // SAFETY: the first page of the region's own reservation,
            // which nobody has been handed.
            unsafe { region.map_filled(0, first) }
                .map_err(|source| Error::ExecutableView { len, source })?;
            region.filled.store(first, Ordering::Release);
        }
        Ok(region)
    }

    /// Makes sure the file holds the trapping fill up to `end` (rounded
    /// up to the fill unit): every byte the frontier hands out, and the
    /// padding before it, is a trap until code is written over it. Called
    /// by the frontier under its lock before it hands the bytes out, so
    /// fills never race each other, and never reach bytes someone owns.
    ///
    /// # Errors
    ///
    /// What the kernel reports for the write.
    fn fill_to(&self, end: usize) -> io::Result<()> {
        let from = self.filled.load(Ordering::Acquire);
        let to = end.next_multiple_of(FILL_UNIT).min(self.len);
        if to > from {
            fill_file(&self.file, from, to)?;
            // SAFETY: `from .. to` lies inside the view's reservation,
            // which this region owns and nobody has been handed yet.
            unsafe { self.map_filled(from, to)? };
            self.filled.store(to, Ordering::Release);
        }
        Ok(())
    }

    /// Maps the filled bytes `from .. to` of the file read-execute over the
    /// view's reservation, and makes instruction fetch see their fill (the
    /// rest of the reservation is not mapped, so only this range can be).
    ///
    /// # Safety
    ///
    /// As [`map_over`]: `from .. to` inside the reservation, nothing of it
    /// handed out.
    unsafe fn map_filled(&self, from: usize, to: usize) -> io::Result<()> {
        // SAFETY: forwarded contract.
        unsafe { map_over(&self.file, self.exec_view, from, to)? };
        arch::make_coherent(self.exec_view.as_ptr() as usize + from, to - from);
        Ok(())
    }

    /// Which views the region maps.
    pub(crate) fn views(&self) -> Views {
        match self.write_view {
            Some(_) => Views::Both,
            None => Views::ExecuteOnly,
        }
    }

    /// Size of each view.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Address of the read-execute view: where code runs.
    pub(crate) fn exec_address(&self) -> usize {
        self.exec_view.as_ptr() as usize
    }

    /// The bytes `offset .. offset + size` through the read-write view.
    ///
    /// # Safety
    ///
    /// The range must lie inside the region and belong to a reservation
    /// that the caller exclusively owns and has not published, and the
    /// returned slice must not outlive that ownership.
    /// `None` for a region without a read-write view.
    #[expect(
        clippy::mut_from_ref,
        reason = "disjoint ranges of one shared region are written by different batches; \
                  exclusivity comes from the frontier, stated in the safety contract"
    )]
    pub(crate) unsafe fn write_slice(&self, offset: usize, size: usize) -> Option<&mut [u8]> {
        debug_assert!(offset + size <= self.len);
        let view = self.write_view?;
        // SAFETY: in bounds and exclusively owned, by the caller's contract;
        // no shared slice of these bytes exists before publication.
        Some(unsafe { std::slice::from_raw_parts_mut(view.as_ptr().add(offset), size) })
    }

    /// Writes `bytes` into the file at `offset`, where the read-execute
    /// view shows them at once (the view maps the file's own pages).
    ///
    /// The range must belong to reservations the caller exclusively owns
    /// and has not published, or be trapping padding nobody owns; no one
    /// can call into it before the caller publishes.
    ///
    /// # Errors
    ///
    /// What the kernel reports for the write.
    pub(crate) fn write_file(&self, offset: usize, bytes: &[u8]) -> io::Result<()> {
        debug_assert!(offset + bytes.len() <= self.len);
        write_all_at(&self.file, bytes, offset)
    }

    /// The bytes `offset .. offset + size` through the read-execute view.
    ///
    /// # Safety
    ///
    /// The range must lie inside the region and be published: never written
    /// again for the life of the region.
    pub(crate) unsafe fn exec_slice(&self, offset: usize, size: usize) -> &[u8] {
        debug_assert!(offset + size <= self.len);
        // SAFETY: in bounds and immutable from now on, by the caller's
        // contract; the slice borrows `self`, which keeps the view mapped.
        unsafe { std::slice::from_raw_parts(self.exec_view.as_ptr().add(offset), size) }
    }
}

impl Drop for DualRegion {
    fn drop(&mut self) {
        if let Some(write_view) = self.write_view {
            self.ledger.unmapping(write_view.as_ptr() as usize);
            // SAFETY: the view is ours; every slice borrowed the region (or
            // an `Arc` of it), so none is alive during drop.
            unsafe { unmap_view(write_view, self.len) };
        }
        self.ledger.unmapping(self.exec_view.as_ptr() as usize);
        // SAFETY: as for the write view.
        unsafe { unmap_view(self.exec_view, self.len) };
    }
}

/// The region new reservations of a dual-mapping allocator go into, and how
/// far it is handed out.
///
/// After `fork` the views are `MAP_SHARED` between parent and child, so the
/// two processes would hand out the same ranges of the same file and
/// overwrite each other's code. A fork-generation counter, bumped in every
/// child by a `pthread_atfork` handler, makes a child retire the region it
/// inherited and open a fresh one on its first reservation.
pub(crate) struct Frontier {
    current: Mutex<Current>,
    /// The views of every region it opens.
    views: Views,
}

struct Current {
    /// The region being filled and how far.
    region: Option<(Arc<DualRegion>, usize)>,
    /// [`FORK_GENERATION`] when `region` was opened.
    generation: u64,
}

/// How many times this process's ancestry forked since it started: bumped
/// in each child. A region opened in another generation is shared with
/// another process and must not receive new code.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// `pthread_atfork` child handler; async-signal-safe (one atomic add).
extern "C" fn forked_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Registers [`forked_child`] once per process.
fn watch_forks() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only performs an atomic add;
        // registration has no other effect. A failure (ENOMEM) leaves fork
        // detection off, which only matters to programs that fork and keep
        // publishing in the child; nothing to report it to here.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    });
}

impl Frontier {
    /// A frontier starting with `region` (the probe that proved the
    /// strategy works), opening regions with the same views.
    pub(crate) fn new(region: DualRegion) -> Self {
        watch_forks();
        Self {
            views: region.views(),
            current: Mutex::new(Current {
                region: Some((Arc::new(region), 0)),
                generation: FORK_GENERATION.load(Ordering::SeqCst),
            }),
        }
    }

    /// The views of the regions it opens.
    pub(crate) fn views(&self) -> Views {
        self.views
    }

    /// Hands out `size` bytes at `align`: the region, the offset, and where
    /// the alignment padding before it starts (the frontier's position
    /// before this call; the offset itself in a fresh region). When the
    /// current region is full, it is retired (it lives on while its code
    /// does) and a region of `fresh_len` bytes (a page multiple of at least
    /// `size`) takes its place.
    ///
    /// # Errors
    ///
    /// As [`DualRegion::create`].
    pub(crate) fn place(
        &self,
        size: usize,
        align: usize,
        fresh_len: usize,
        ledger: &Arc<Ledger>,
    ) -> Result<Placed, Error> {
        // Nothing below panics while the lock is held, so a poisoned lock
        // still guards a consistent cursor.
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = FORK_GENERATION.load(Ordering::SeqCst);
        if current.generation != generation {
            current.region = None;
            current.generation = generation;
        }
        if let Some((region, cursor)) = current.region.as_mut() {
            let start = cursor.checked_next_multiple_of(align);
            if let Some(start) = start.filter(|start| {
                start
                    .checked_add(size)
                    .is_some_and(|end| end <= region.len())
            }) {
                region
                    .fill_to(start + size)
                    .map_err(|source| fill_error(region, start, size, source))?;
                let padding = *cursor;
                *cursor = start + size;
                return Ok(Placed {
                    region: Arc::clone(region),
                    offset: start,
                    padding,
                });
            }
        }
        let region = Arc::new(DualRegion::create(fresh_len, self.views, ledger)?);
        region
            .fill_to(size)
            .map_err(|source| fill_error(&region, 0, size, source))?;
        current.region = Some((Arc::clone(&region), size));
        Ok(Placed {
            region,
            offset: 0,
            padding: 0,
        })
    }
}

/// The error of a trapping fill that failed for `size` bytes at `offset`
/// of `region`.
fn fill_error(region: &DualRegion, offset: usize, size: usize, source: io::Error) -> Error {
    Error::WriteCode {
        address: region.exec_address() + offset,
        len: size,
        source,
    }
}

/// What [`Frontier::place`] hands out.
pub(crate) struct Placed {
    pub(crate) region: Arc<DualRegion>,
    /// Where the reservation starts in the region.
    pub(crate) offset: usize,
    /// Where the alignment padding before it starts: bytes nobody owns.
    pub(crate) padding: usize,
}
