//! Owned anonymous mappings in their two states, and every system call and
//! raw-pointer access of the crate.
//!
//! A [`Staging`] mapping is read-write and hands out `&mut [u8]`; it turns
//! into an [`Executable`] mapping by value, which hands out only `&[u8]`.
//! There is no way back: that type-level one-way street is the W^X state
//! machine. Dropping either unmaps it.

use std::io;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::arch;
use crate::error::Error;
use crate::ledger::Ledger;
use crate::stats::Protection;

/// A live anonymous private mapping, page aligned, registered in a ledger.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
    ledger: Arc<Ledger>,
}

// SAFETY: a `Mapping` exclusively owns its pages; the raw pointer is only an
// address. Mutable access needs `&mut` (through `Staging`), shared access to
// read-execute pages is read-only, so moving or sharing it across threads is
// as safe as for a `Box<[u8]>`.
unsafe impl Send for Mapping {}
// SAFETY: see `Send`: `&Mapping` only gives read access.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn address(&self) -> usize {
        self.base.as_ptr() as usize
    }

    /// Unmaps the pages past `new_len` (a page multiple, not zero).
    fn truncate(&mut self, new_len: usize) {
        if new_len >= self.len {
            return;
        }
        self.ledger.shrinking(self.address(), new_len);
        // SAFETY: `new_len < self.len`, so the tail lies inside the mapping we
        // own, starts on a page boundary (new_len is a page multiple) and no
        // reference into it outlives this `&mut self` call.
        let status =
            unsafe { libc::munmap(self.base.as_ptr().add(new_len).cast(), self.len - new_len) };
        debug_assert_eq!(status, 0, "munmap of an owned tail failed");
        self.len = new_len;
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // The ledger forgets the span before the range can be reused.
        self.ledger.unmapping(self.address());
        // SAFETY: the range is exactly the mapping we own; every slice handed
        // out borrowed `self`, so none is alive during drop.
        let status = unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
        debug_assert_eq!(status, 0, "munmap of an owned mapping failed");
    }
}

/// A read-write mapping where code is staged. Never executable.
pub(crate) struct Staging {
    mapping: Mapping,
}

impl Staging {
    /// Maps `len` bytes (a positive page multiple) read-write.
    ///
    /// # Errors
    ///
    /// [`Error::Map`] when the kernel refuses.
    pub(crate) fn map(len: usize, ledger: &Arc<Ledger>) -> Result<Self, Error> {
        let base = map_read_write(len, 0)?;
        ledger.mapped_as(base.as_ptr() as usize, len, Protection::ReadWrite);
        Ok(Self {
            mapping: Mapping {
                base,
                len,
                ledger: Arc::clone(ledger),
            },
        })
    }

    /// Maps `count` pages of `page` bytes read-write with one system call,
    /// faulted in (zeroed) by the kernel up front, and returns them as
    /// separate spare pages, not yet in the books: each is unmapped on its
    /// own when dropped (unmapping part of a mapping is allowed).
    ///
    /// # Errors
    ///
    /// [`Error::Map`] when the kernel refuses.
    pub(crate) fn map_spares(
        count: usize,
        page: usize,
        ledger: &Arc<Ledger>,
    ) -> Result<Vec<Spare>, Error> {
        let len = count.checked_mul(page).ok_or(Error::InvalidLength {
            len: count,
            max: crate::limits::MAX_REGION_SIZE,
        })?;
        // MAP_POPULATE takes the first-touch faults now, in one call, instead
        // of one per page when the code is written.
        let base = map_read_write(len, libc::MAP_POPULATE)?;
        Ok((0..count)
            .map(|k| Spare {
                mapping: Mapping {
                    // SAFETY: `k * page < len`, inside the mapping just made.
                    base: unsafe { base.add(k * page) },
                    len: page,
                    ledger: Arc::clone(ledger),
                },
            })
            .collect())
    }

    /// Address of the first byte.
    pub(crate) fn address(&self) -> usize {
        self.mapping.address()
    }

    /// Mapped length.
    pub(crate) fn len(&self) -> usize {
        self.mapping.len
    }

    /// The whole mapping, writable.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is readable and writable for `len` bytes (a
        // staging mapping is never protected otherwise), zero-initialised by
        // the kernel, owned exclusively, and the slice borrows `self` mutably
        // so it cannot outlive the mapping or alias another view of it.
        unsafe { std::slice::from_raw_parts_mut(self.mapping.base.as_ptr(), self.mapping.len) }
    }

    /// Publishes the first `code_end` bytes: fills the rest of their last
    /// page with trapping bytes, unmaps the pages past it, makes the
    /// instruction cache coherent and turns the pages read-execute with one
    /// protection change.
    ///
    /// # Errors
    ///
    /// [`Error::Protect`] when the kernel refuses execute permission; the
    /// mapping is then unmapped.
    pub(crate) fn publish(mut self, code_end: usize, page: usize) -> Result<Executable, Error> {
        let used = code_end
            .div_ceil(page)
            .max(1)
            .saturating_mul(page)
            .min(self.len());
        if let Some(tail) = self.bytes_mut().get_mut(code_end..used) {
            tail.fill(arch::TRAP_FILL);
        }
        self.mapping.truncate(used);
        arch::make_coherent(self.address(), used);
        // SAFETY: the range is exactly our mapping; after this call no `&mut`
        // view of it can be created any more because `Staging` is consumed,
        // and `Executable` only hands out shared slices.
        let protected = unsafe {
            region::protect(
                self.mapping.base.as_ptr().cast_const(),
                used,
                region::Protection::READ_EXECUTE,
            )
        };
        if let Err(error) = protected {
            let source = match error {
                region::Error::SystemCall(source) => source,
                other => io::Error::other(other.to_string()),
            };
            return Err(Error::Protect {
                address: self.address(),
                len: used,
                source,
            });
        }
        self.mapping.ledger.made_executable(self.address());
        Ok(Executable {
            mapping: self.mapping,
        })
    }
}

/// A read-write page mapped and faulted in ahead of use, held by the pool
/// and not yet in the books (no batch holds it). Never executable: it only
/// becomes a [`Staging`] mapping, which publication consumes.
pub(crate) struct Spare {
    mapping: Mapping,
}

impl Spare {
    /// Hands the page to a batch: it enters the books as read-write staging.
    pub(crate) fn into_staging(self) -> Staging {
        let mapping = self.mapping;
        mapping
            .ledger
            .mapped_as(mapping.address(), mapping.len, Protection::ReadWrite);
        Staging { mapping }
    }

    /// Mapped length.
    pub(crate) fn len(&self) -> usize {
        self.mapping.len
    }

    /// Leaves its allocator's pool: the ledger no longer counts it.
    pub(crate) fn leave_books(&self) {
        self.mapping.ledger.unpooled(self.mapping.len);
    }

    /// Joins the pool of the allocator keeping `ledger` (from the process
    /// reserve, where no ledger counted it).
    pub(crate) fn rehome(&mut self, ledger: &Arc<Ledger>) {
        self.mapping.ledger = Arc::clone(ledger);
    }

    /// Address of the page.
    fn address(&self) -> usize {
        self.mapping.address()
    }
}

/// Unmaps spare pages no batch took, each run of adjacent pages with one
/// `munmap` (a pool's refill is one mapping cut into pages; unmapping its
/// unused tail page by page cost a system call and a TLB flush per page
/// when a short-lived process freed its loader).
pub(crate) fn unmap_spares(mut spares: Vec<Spare>) {
    spares.sort_unstable_by_key(Spare::address);
    while let Some(first) = spares.first() {
        let start = first.address();
        let mut end = start + first.len();
        let run = 1 + spares
            .iter()
            .skip(1)
            .take_while(|spare| {
                let adjacent = spare.address() == end;
                end += if adjacent { spare.len() } else { 0 };
                adjacent
            })
            .count();
        for spare in spares.drain(..run) {
            // Spares are outside the books; the range is unmapped below as
            // one, so the page's own drop must not unmap it again.
            spare.mapping.ledger.unmapping(spare.address());
            std::mem::forget(spare);
        }
        // SAFETY: `start..end` is a run of adjacent spare pages, each a
        // page-aligned range this pool owned and just gave up (forgotten
        // above, so nothing else unmaps or uses them).
        let status = unsafe { libc::munmap(start as *mut libc::c_void, end - start) };
        debug_assert_eq!(status, 0, "munmap of owned spare pages failed");
    }
}

/// Maps `len` bytes of private anonymous memory read-write, with `extra`
/// flags (`MAP_POPULATE`).
fn map_read_write(len: usize, extra: libc::c_int) -> Result<NonNull<u8>, Error> {
    map_anonymous(len, libc::PROT_READ | libc::PROT_WRITE, extra)
}

/// Maps `len` bytes of private anonymous memory with `protection` and
/// `extra` flags (`PROT_NONE` and `MAP_NORESERVE` reserve address space
/// that any access traps in).
pub(crate) fn map_anonymous(
    len: usize,
    protection: libc::c_int,
    extra: libc::c_int,
) -> Result<NonNull<u8>, Error> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory; the result is checked below.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            protection,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(Error::Map {
            len,
            source: io::Error::last_os_error(),
        });
    }
    NonNull::new(raw.cast::<u8>()).ok_or_else(|| Error::Map {
        len,
        source: io::Error::other("mmap returned the null address"),
    })
}

/// A read-execute mapping of published code. Never writable.
pub(crate) struct Executable {
    mapping: Mapping,
}

impl Executable {
    /// Address of the first byte.
    pub(crate) fn address(&self) -> usize {
        self.mapping.address()
    }

    /// Mapped length.
    pub(crate) fn len(&self) -> usize {
        self.mapping.len
    }

    /// The published bytes, read-only.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is readable for `len` bytes and never written
        // again (read-execute, and no `&mut` view exists after publication);
        // the slice borrows `self`, so it cannot outlive the mapping.
        unsafe { std::slice::from_raw_parts(self.mapping.base.as_ptr(), self.mapping.len) }
    }
}
