//! Spare staging pages for single-page batches under `mprotect`.
//!
//! A lone instantiation stages a page of code and publishes it. Mapping
//! that page on demand costs an `mmap` and a first-touch page fault on
//! every publication, as much as compiling a small function; the pool maps
//! [`Config::pool_pages`](crate::Config::pool_pages) pages at once with
//! `MAP_POPULATE` (one system call, the faults taken up front) and hands
//! them out one by one, so such a batch only writes its bytes and changes
//! the protection once. Pages only go one way: pool → staging → published
//! → unmapped. A published page never comes back (it would have to become
//! writable again), and neither does an abandoned batch's page, which is
//! unmapped as before; spare pages are read-write and never executable.
//!
//! Spares outlive their allocator: when an allocator is dropped, up to
//! [`limits::PROCESS_SPARE_PAGES`](crate::limits::PROCESS_SPARE_PAGES) of
//! its untouched spare pages go to a process-wide reserve (the rest are
//! unmapped), and a pool that runs dry takes from the reserve before it
//! maps. A program that creates a loader after an earlier one is gone
//! (each test, each plugin host session) then finds its first pages mapped
//! and faulted in already. The reserve only ever holds pages no batch has
//! used, so what it hands out is as fresh as a new mapping.

use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Error;
use crate::ledger::Ledger;
use crate::limits;
use crate::mapping::{Spare, Staging, unmap_spares};

/// Untouched spare pages of allocators that are gone.
static RESERVE: Mutex<Vec<Spare>> = Mutex::new(Vec::new());

/// Spare read-write pages, refilled a batch of pages at a time.
pub(crate) struct Pool {
    spares: Mutex<Vec<Spare>>,
    refill: usize,
    page: usize,
    /// Takes from and leaves to the process-wide reserve.
    shared: bool,
}

impl Pool {
    /// A pool refilled `refill` pages at a time (at least one), sharing its
    /// spares with the process reserve when `shared`.
    pub(crate) fn new(refill: usize, page: usize, shared: bool) -> Self {
        Self {
            spares: Mutex::new(Vec::new()),
            refill: refill.max(1),
            page,
            shared,
        }
    }

    /// One page of staging, from the spares or, when none is left, from a
    /// fresh refill.
    ///
    /// # Errors
    ///
    /// [`Error::Map`] when the refill cannot be mapped.
    pub(crate) fn take(&self, ledger: &Arc<Ledger>) -> Result<Staging, Error> {
        let mut spares = self.spares.lock().unwrap_or_else(PoisonError::into_inner);
        // At most two rounds: a refill holds at least one page.
        loop {
            if let Some(spare) = spares.pop() {
                ledger.unpooled(spare.len());
                drop(spares);
                return Ok(spare.into_staging());
            }
            let mut fresh = if self.shared {
                from_reserve(self.refill, self.page, ledger)
            } else {
                Vec::new()
            };
            if fresh.is_empty() {
                fresh = Staging::map_spares(self.refill, self.page, ledger)?;
                // Handed out from the end: the lowest address first.
                fresh.reverse();
            }
            ledger.pooled(fresh.len() * self.page);
            *spares = fresh;
        }
    }

    /// Pages of `page` bytes the pool serves.
    pub(crate) fn page(&self) -> usize {
        self.page
    }
}

/// Unmaps the spare pages that allocators no longer alive left to the
/// process-wide reserve (see the module documentation) and returns how
/// many there were: for a host giving memory back, or a test that needs
/// the next pool to map afresh.
pub fn release_spare_pages() -> usize {
    let spares = std::mem::take(&mut *RESERVE.lock().unwrap_or_else(PoisonError::into_inner));
    let count = spares.len();
    unmap_spares(spares);
    count
}

/// Up to `count` pages of `page` bytes from the process-wide reserve, now
/// counted by `ledger`.
fn from_reserve(count: usize, page: usize, ledger: &Arc<Ledger>) -> Vec<Spare> {
    let mut reserve = RESERVE.lock().unwrap_or_else(PoisonError::into_inner);
    let keep = reserve.len().saturating_sub(count);
    let mut taken: Vec<Spare> = reserve.drain(keep..).collect();
    drop(reserve);
    taken.retain(|spare| spare.len() == page);
    for spare in &mut taken {
        spare.rehome(ledger);
    }
    taken
}

impl Drop for Pool {
    fn drop(&mut self) {
        let mut spares = std::mem::take(
            self.spares
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if !self.shared {
            unmap_spares(spares);
            return;
        }
        for spare in &spares {
            spare.leave_books();
        }
        // The lowest addresses are handed out first (the end of the list).
        let mut reserve = RESERVE.lock().unwrap_or_else(PoisonError::into_inner);
        let room = limits::PROCESS_SPARE_PAGES.saturating_sub(reserve.len());
        let kept = spares.len().min(room);
        let start = spares.len() - kept;
        reserve.splice(0..0, spares.drain(start..));
        drop(reserve);
        unmap_spares(spares);
    }
}
