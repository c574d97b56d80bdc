//! Bookkeeping of every live mapping: its extent and protection, and the
//! counters behind [`Stats`]. Mappings report each state change here *before*
//! the address range can be handed to anyone else (before `munmap`), so two
//! live spans never overlap.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::stats::{Protection, Stats};

#[derive(Clone, Copy, Debug)]
struct Span {
    len: usize,
    protection: Protection,
}

#[derive(Default)]
struct Books {
    spans: BTreeMap<usize, Span>,
    stats: Stats,
}

/// Every live read-execute span of every ledger in the process, base to
/// length, for [`is_code`].
static CODE: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

fn code_spans() -> MutexGuard<'static, BTreeMap<usize, usize>> {
    CODE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `address` lies in executable memory that an
/// [`ExecMemory`](crate::ExecMemory) of this process made: generated code.
///
/// Fit for a signal handler that a fault in generated code interrupted:
/// the lock is only held inside this crate's bookkeeping, which never
/// runs generated code, so the interrupted thread cannot hold it. Should
/// the fault come from this crate itself, holding the lock, the function
/// gives up after a bounded wait and answers `false` rather than wait
/// forever.
#[must_use]
pub fn is_code(address: usize) -> bool {
    for _ in 0..10_000 {
        match CODE.try_lock() {
            Ok(spans) => return contains(&spans, address),
            Err(std::sync::TryLockError::Poisoned(p)) => return contains(&p.into_inner(), address),
            Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
    false
}

fn contains(spans: &BTreeMap<usize, usize>, address: usize) -> bool {
    spans
        .range(..=address)
        .next_back()
        .is_some_and(|(base, len)| address - base < *len)
}

/// The shared ledger; one per [`ExecMemory`](crate::ExecMemory).
#[derive(Default)]
pub(crate) struct Ledger {
    books: Mutex<Books>,
}

impl Ledger {
    fn books(&self) -> MutexGuard<'_, Books> {
        // No update below can panic half-way, so a poisoned lock still holds
        // consistent books.
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh mapping with `protection` exists at `base .. base + len`.
    pub(crate) fn mapped_as(&self, base: usize, len: usize, protection: Protection) {
        if protection == Protection::ReadExecute {
            code_spans().insert(base, len);
        }
        let mut books = self.books();
        books.spans.insert(base, Span { len, protection });
        let stats = &mut books.stats;
        stats.bytes_reserved += len;
        stats.regions += 1;
        match protection {
            Protection::ReadWrite => stats.bytes_writable += len,
            Protection::ReadExecute => stats.bytes_executable += len,
        }
    }

    /// The read-write mapping at `base` is about to lose everything past
    /// `new_len`.
    pub(crate) fn shrinking(&self, base: usize, new_len: usize) {
        let mut books = self.books();
        let Some(span) = books.spans.get_mut(&base) else {
            return;
        };
        let removed = span.len - new_len;
        span.len = new_len;
        books.stats.bytes_reserved -= removed;
        books.stats.bytes_writable -= removed;
    }

    /// The mapping at `base` turned read-execute with one protection change.
    pub(crate) fn made_executable(&self, base: usize) {
        let mut books = self.books();
        let Some(span) = books.spans.get_mut(&base) else {
            return;
        };
        span.protection = Protection::ReadExecute;
        let len = span.len;
        code_spans().insert(base, len);
        let stats = &mut books.stats;
        stats.bytes_writable -= len;
        stats.bytes_executable += len;
        stats.protection_changes += 1;
    }

    /// The mapping at `base` is about to be unmapped.
    pub(crate) fn unmapping(&self, base: usize) {
        let mut books = self.books();
        let Some(span) = books.spans.remove(&base) else {
            return;
        };
        if span.protection == Protection::ReadExecute {
            code_spans().remove(&base);
        }
        let stats = &mut books.stats;
        stats.bytes_reserved -= span.len;
        stats.regions -= 1;
        match span.protection {
            Protection::ReadWrite => stats.bytes_writable -= span.len,
            Protection::ReadExecute => stats.bytes_executable -= span.len,
        }
    }

    /// `len` bytes of spare pages were mapped into the pool.
    pub(crate) fn pooled(&self, len: usize) {
        self.books().stats.bytes_pooled += len;
    }

    /// A spare page of `len` bytes left the pool (for a batch, which
    /// reports it with [`Ledger::mapped_as`]).
    pub(crate) fn unpooled(&self, len: usize) {
        self.books().stats.bytes_pooled -= len;
    }

    /// A batch of `functions` functions totalling `code_bytes` was published.
    pub(crate) fn code_published(&self, functions: usize, code_bytes: usize) {
        let stats = &mut self.books().stats;
        stats.publications += 1;
        stats.functions_published += functions as u64;
        stats.functions += functions;
        stats.bytes_code += code_bytes;
    }

    /// Published code of `functions` functions totalling `code_bytes` was
    /// released.
    pub(crate) fn code_released(&self, functions: usize, code_bytes: usize) {
        let stats = &mut self.books().stats;
        stats.functions -= functions;
        stats.bytes_code -= code_bytes;
    }

    /// Writing the perf map failed for one publication.
    pub(crate) fn perf_map_failed(&self) {
        self.books().stats.perf_map_failures += 1;
    }

    /// Writing the jitdump failed for one publication.
    pub(crate) fn jitdump_failed(&self) {
        self.books().stats.jitdump_failures += 1;
    }

    /// Protection of the live mapping containing `address`, if any.
    pub(crate) fn protection_of(&self, address: usize) -> Option<Protection> {
        let books = self.books();
        let (base, span) = books.spans.range(..=address).next_back()?;
        (address - base < span.len).then_some(span.protection)
    }

    pub(crate) fn snapshot(&self) -> Stats {
        self.books().stats
    }
}
