//! Address space reserved up front, made accessible from its start as a
//! memory or table grows, and every system call of the crate.
//!
//! A [`Reservation`] is mapped inaccessible (`PROT_NONE`) at its full size,
//! so the addresses of everything in it are fixed for its life; growing
//! turns pages read-write and never moves or unmaps any. Pages of an
//! anonymous mapping read zero until written, which is what new memory
//! bytes and new (null) table entries must be. The mapping is
//! `MAP_NORESERVE`: only the pages made accessible and touched cost memory.

use std::io;
use std::ptr::NonNull;

use crate::error::{Error, Space};

/// An owned anonymous mapping whose first bytes are read-write and whose
/// rest is inaccessible.
pub(crate) struct Reservation {
    base: NonNull<u8>,
    len: usize,
    /// The system page size, the granularity of protection changes.
    page: usize,
}

// SAFETY: a `Reservation` exclusively owns its mapping; the raw pointer is
// only its address. The bytes are reached through atomic views (see
// `descriptor`), which any thread may use, and protection changes are
// serialised by the descriptor's grow lock.
unsafe impl Send for Reservation {}
// SAFETY: see `Send`.
unsafe impl Sync for Reservation {}

impl Reservation {
    /// Reserves at least `bytes` (at least one system page) of inaccessible
    /// address space.
    ///
    /// # Errors
    ///
    /// The kernel's refusal, or a size beyond the address space.
    pub(crate) fn new(bytes: u64) -> io::Result<Self> {
        let page = page_size();
        let len = usize::try_from(bytes)
            .ok()
            .and_then(|len| len.max(1).checked_next_multiple_of(page))
            .ok_or_else(|| io::Error::other("the size is beyond the address space"))?;
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing touches no existing memory; the result is checked below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(raw.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned the null address"))?;
        Ok(Self { base, len, page })
    }

    /// The first byte, with the provenance of the whole mapping.
    pub(crate) fn pointer(&self) -> NonNull<u8> {
        self.base
    }

    /// The address of the first byte, exposed so that compiled code and
    /// the interpreter may use it as an integer.
    pub(crate) fn address(&self) -> u64 {
        // usize is at most 64 bits on every supported target.
        self.base.as_ptr().expose_provenance() as u64
    }

    /// Bytes mapped.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Makes the bytes from `accessible` to `end` read-write, where the
    /// first `accessible` bytes already are (the pages of a previous call,
    /// which were rounded up to whole pages, so the change starts on the
    /// next page boundary). The bytes already accessible are not touched.
    ///
    /// # Errors
    ///
    /// The kernel's refusal, or `end` past the reservation.
    pub(crate) fn make_accessible(&self, accessible: usize, end: usize) -> io::Result<()> {
        let start = accessible.checked_next_multiple_of(self.page);
        let end = end.checked_next_multiple_of(self.page);
        let (Some(start), Some(end)) = (start, end) else {
            return Err(io::Error::other("the size is beyond the address space"));
        };
        if end > self.len {
            return Err(io::Error::other("the size is beyond the reservation"));
        }
        if start >= end {
            return Ok(());
        }
        // SAFETY: `start..end` is a page-aligned range inside the mapping we
        // own and is not accessible yet, so no reference into it exists and
        // no access can observe the change but through the length published
        // after it.
        let status = unsafe {
            libc::mprotect(
                self.base.as_ptr().add(start).cast(),
                end - start,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if status != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: the range is exactly the mapping we own; the views into it
        // borrow its descriptor, and the raw-pointer entry points require
        // the descriptor alive, so nothing uses it any more.
        let status = unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
        debug_assert_eq!(status, 0, "munmap of an owned reservation failed");
    }
}

/// The system page size.
fn page_size() -> usize {
    // SAFETY: `sysconf` only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // Every supported system reports a positive power of two; 4 KiB is the
    // smallest any of them uses.
    usize::try_from(page)
        .ok()
        .filter(|page| page.is_power_of_two())
        .unwrap_or(4096)
}

/// The length and maximum of a new memory or table, in its descriptor's
/// units (bytes for a memory, entries for a table).
pub(crate) struct Extent {
    pub(crate) length: u64,
    pub(crate) maximum: u64,
}

/// Checks the declared sizes of the memory or table `name` (in pages or
/// entries) and reserves its maximum, with the initial size accessible.
///
/// # Errors
///
/// [`Error::AboveLimit`], [`Error::InitialAboveMaximum`],
/// [`Error::Reserve`], [`Error::Protect`].
pub(crate) fn reserve_declared(
    name: &str,
    space: Space,
    initial: u64,
    maximum: Option<u64>,
) -> Result<(Reservation, Extent), Error> {
    let limit = space.limit();
    for requested in [Some(initial), maximum].into_iter().flatten() {
        if requested > limit {
            return Err(Error::AboveLimit {
                name: name.to_owned(),
                space,
                requested,
            });
        }
    }
    let maximum = maximum.unwrap_or(limit);
    if initial > maximum {
        return Err(Error::InitialAboveMaximum {
            name: name.to_owned(),
            space,
            initial,
            maximum,
        });
    }
    // Below the limits (2^16 pages of 2^16 bytes, 2^20 entries of 8 bytes)
    // none of these products can overflow.
    let extent = Extent {
        length: initial * space.length_per_unit(),
        maximum: maximum * space.length_per_unit(),
    };
    let initial_bytes = extent.length * space.bytes_per_length();
    let maximum_bytes = extent.maximum * space.bytes_per_length();
    let reservation = Reservation::new(maximum_bytes).map_err(|source| Error::Reserve {
        name: name.to_owned(),
        space,
        bytes: maximum_bytes,
        source,
    })?;
    usize::try_from(initial_bytes)
        .map_err(io::Error::other)
        .and_then(|end| reservation.make_accessible(0, end))
        .map_err(|source| Error::Protect {
            name: name.to_owned(),
            space,
            bytes: initial_bytes,
            source,
        })?;
    Ok((reservation, extent))
}
