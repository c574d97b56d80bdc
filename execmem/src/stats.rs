//! The public view of the allocator's bookkeeping.

/// Protection of a range of memory handed out by an [`ExecMemory`](crate::ExecMemory).
///
/// There is deliberately no read-write-execute variant: no range this crate
/// maps is ever both writable and executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protection {
    /// Staging memory of an unpublished batch: readable and writable, never
    /// executable.
    ReadWrite,
    /// Published code: readable and executable, never writable again.
    ReadExecute,
}

/// A snapshot of what an [`ExecMemory`](crate::ExecMemory) holds and has done.
///
/// The `bytes_*`, `regions` and `functions` fields describe memory alive at
/// the moment of the snapshot; the other fields count events since the
/// allocator was created. All fields are taken under one lock, so they are
/// consistent with each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes currently mapped: staging plus published (a dual-mapped region
    /// counts both of its views).
    pub bytes_reserved: usize,
    /// Bytes currently read-write: staging of unpublished batches, or the
    /// write views of dual-mapped regions.
    pub bytes_writable: usize,
    /// Bytes currently read-execute: whole pages of published code, or the
    /// execute views of dual-mapped regions.
    pub bytes_executable: usize,
    /// Bytes of published functions still alive: the sum of their
    /// reservation lengths, without padding.
    pub bytes_code: usize,
    /// Mappings currently alive (a dual-mapped region is two).
    pub regions: usize,
    /// Spare pages the `mprotect` strategy holds mapped read-write for
    /// future batches ([`Config::pool_pages`](crate::Config::pool_pages));
    /// not part of `bytes_reserved`, `bytes_writable` or `regions` until a
    /// batch takes them.
    pub bytes_pooled: usize,
    /// Published functions currently alive.
    pub functions: usize,
    /// Protection changes (read-write to read-execute) since creation;
    /// always zero under dual mapping and file writes.
    pub protection_changes: u64,
    /// Successful publications of at least one function since creation.
    pub publications: u64,
    /// Functions published since creation.
    pub functions_published: u64,
    /// Publications whose perf-map lines could not be written (the code was
    /// published all the same).
    pub perf_map_failures: u64,
    /// Publications whose jitdump records could not be written (the code
    /// was published all the same).
    pub jitdump_failures: u64,
}

impl Stats {
    /// Share of executable bytes that are code: `bytes_code / bytes_executable`,
    /// or `None` while nothing is executable.
    #[must_use]
    pub fn density(&self) -> Option<f64> {
        ratio(self.bytes_code as f64, self.bytes_executable as f64)
    }

    /// Protection changes per published function since creation, or `None`
    /// before the first publication.
    #[must_use]
    pub fn protection_changes_per_function(&self) -> Option<f64> {
        ratio(
            self.protection_changes as f64,
            self.functions_published as f64,
        )
    }
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}
