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

use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Error;
use crate::ledger::Ledger;
use crate::mapping::{Spare, Staging, unmap_spares};

/// Spare read-write pages, refilled a batch of pages at a time.
pub(crate) struct Pool {
    spares: Mutex<Vec<Spare>>,
    refill: usize,
    page: usize,
}

impl Pool {
    /// A pool refilled `refill` pages at a time (at least one).
    pub(crate) fn new(refill: usize, page: usize) -> Self {
        Self {
            spares: Mutex::new(Vec::new()),
            refill: refill.max(1),
            page,
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
            let mut fresh = Staging::map_spares(self.refill, self.page, ledger)?;
            // Handed out from the end: the lowest address first.
            fresh.reverse();
            ledger.pooled(fresh.len() * self.page);
            *spares = fresh;
        }
    }

    /// Pages of `page` bytes the pool serves.
    pub(crate) fn page(&self) -> usize {
        self.page
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let spares = std::mem::take(
            self.spares
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        unmap_spares(spares);
    }
}
