//! Dual mapping: one memory file mapped twice, a read-write view where code
//! is written and a read-execute view where it runs. No single mapping is
//! ever writable and executable, no protection ever changes, and functions
//! from any number of batches share pages; the price is that a writable
//! alias of executable memory exists for as long as the region lives (see
//! doc/ARCHITECTURE.md).
//!
//! A [`DualRegion`] is created whole: both views mapped and every byte set to
//! the trapping fill. A bump [`Frontier`] shared by all batches of an
//! allocator hands out byte ranges; a region lives while the frontier or any
//! batch or published code holding one of its ranges keeps it (`Arc`), and
//! is unmapped with its file when the last of them goes.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use crate::arch;
use crate::error::Error;
use crate::ledger::Ledger;
use crate::stats::Protection;

/// Name of the memory files, as `/proc/PID/maps` shows them
/// (`/memfd:smfjit-code (deleted)`).
const MEMFD_NAME: &CStr = c"smfjit-code";

/// A memory file with a read-write and a read-execute view of its bytes.
pub(crate) struct DualRegion {
    write_view: NonNull<u8>,
    exec_view: NonNull<u8>,
    len: usize,
    ledger: Arc<Ledger>,
    /// Kept open for the region's life; closing it after unmapping frees
    /// the memory.
    _file: OwnedFd,
}

// SAFETY: the region owns its views; writes go only through `write`, whose
// contract gives each writer a byte range nobody else touches, and reads of
// the read-execute view only cover published bytes that are never written
// again. Sharing and sending it is therefore as safe as for a
// `Mutex`-free arena of disjoint slots.
unsafe impl Send for DualRegion {}
// SAFETY: see `Send`.
unsafe impl Sync for DualRegion {}

/// Maps `len` bytes of `fd` shared with `protection`.
fn map_view(fd: &OwnedFd, len: usize, protection: libc::c_int) -> io::Result<NonNull<u8>> {
    // SAFETY: a shared mapping of our own memory file at an address of the
    // kernel's choosing touches no existing memory; the result is checked.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            protection,
            libc::MAP_SHARED,
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

impl DualRegion {
    /// Creates a region of `len` bytes (a positive page multiple) with both
    /// views, filled with trapping bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Map`] when the memory file or the read-write view cannot be
    /// created, [`Error::ExecutableView`] when the read-execute view is refused (a
    /// hardened kernel: SELinux denying execute on memory files, PaX,
    /// `vm.memfd_noexec = 2`).
    pub(crate) fn create(len: usize, ledger: &Arc<Ledger>) -> Result<Self, Error> {
        let map_error = |source| Error::Map { len, source };
        let file = memory_file(len).map_err(map_error)?;
        let write_view =
            map_view(&file, len, libc::PROT_READ | libc::PROT_WRITE).map_err(map_error)?;
        let exec_view = match map_view(&file, len, libc::PROT_READ | libc::PROT_EXEC) {
            Ok(view) => view,
            Err(source) => {
                // SAFETY: the write view was just mapped and nothing refers
                // to it.
                unsafe { unmap_view(write_view, len) };
                return Err(Error::ExecutableView { len, source });
            }
        };
        // SAFETY: the write view is a fresh read-write mapping of `len`
        // bytes that no one else can reach yet.
        unsafe { std::slice::from_raw_parts_mut(write_view.as_ptr(), len) }.fill(arch::TRAP_FILL);
        arch::make_coherent(exec_view.as_ptr() as usize, len);
        ledger.mapped_as(write_view.as_ptr() as usize, len, Protection::ReadWrite);
        ledger.mapped_as(exec_view.as_ptr() as usize, len, Protection::ReadExecute);
        Ok(Self {
            write_view,
            exec_view,
            len,
            ledger: Arc::clone(ledger),
            _file: file,
        })
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
    #[expect(
        clippy::mut_from_ref,
        reason = "disjoint ranges of one shared region are written by different batches; \
                  exclusivity comes from the frontier, stated in the safety contract"
    )]
    pub(crate) unsafe fn write_slice(&self, offset: usize, size: usize) -> &mut [u8] {
        debug_assert!(offset + size <= self.len);
        // SAFETY: in bounds and exclusively owned, by the caller's contract;
        // no shared slice of these bytes exists before publication.
        unsafe { std::slice::from_raw_parts_mut(self.write_view.as_ptr().add(offset), size) }
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
        self.ledger.unmapping(self.write_view.as_ptr() as usize);
        self.ledger.unmapping(self.exec_view.as_ptr() as usize);
        // SAFETY: both views are ours; every slice borrowed the region (or
        // an `Arc` of it), so none is alive during drop.
        unsafe {
            unmap_view(self.write_view, self.len);
            unmap_view(self.exec_view, self.len);
        }
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
    /// A frontier starting with `region` (the probe that proved dual
    /// mapping works).
    pub(crate) fn new(region: DualRegion) -> Self {
        watch_forks();
        Self {
            current: Mutex::new(Current {
                region: Some((Arc::new(region), 0)),
                generation: FORK_GENERATION.load(Ordering::SeqCst),
            }),
        }
    }

    /// Hands out `size` bytes at `align`: the region and the offset. When
    /// the current region is full, it is retired (it lives on while its
    /// code does) and a region of `fresh_len` bytes (a page multiple of at
    /// least `size`) takes its place.
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
    ) -> Result<(Arc<DualRegion>, usize), Error> {
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
                *cursor = start + size;
                return Ok((Arc::clone(region), start));
            }
        }
        let region = Arc::new(DualRegion::create(fresh_len, ledger)?);
        current.region = Some((Arc::clone(&region), size));
        Ok((region, 0))
    }
}
