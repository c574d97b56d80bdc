//! `smfjit_stats`: the loader's counters ([`LoaderStats`]) as a C struct
//! that can grow. The caller says how large its struct is in `size`; the
//! library fills the fields that fit, sets `size` to the bytes it filled,
//! and only ever appends fields, so that programs built against an older
//! or newer header keep working.

use std::ffi::c_int;
use std::mem::{offset_of, size_of};

use super::SMFJIT_OK;
use super::handle::{fill, loader_and_size};
use crate::loader::LoaderStats;

/// `struct smfjit_stats` of the header, field for field: `size`, then
/// unsigned 64-bit counters in the header's order.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SmfjitStats {
    /// In: the size of the caller's struct; out: the bytes filled.
    pub size: usize,
    /// Modules loaded now.
    pub modules: u64,
    /// Distinct exported names now.
    pub exports: u64,
    /// Shared memories and tables loaded modules define now.
    pub shared: u64,
    /// Loaded modules whose file on disk changed since they loaded.
    pub stale_modules: u64,
    /// SMF cache lookups answered from the cache.
    pub cache_hits: u64,
    /// SMF cache lookups that opened the file.
    pub cache_misses: u64,
    /// SMF cache entries evicted for its limits.
    pub cache_evictions: u64,
    /// Files the SMF cache holds now.
    pub cache_files: u64,
    /// Bytes the SMF cache holds now.
    pub cache_bytes: u64,
    /// Resolutions answered by an instantiation made before.
    pub instance_hits: u64,
    /// Names handed to the instantiator.
    pub instantiation_requests: u64,
    /// Instantiations that produced code.
    pub instantiations: u64,
    /// Instantiations that failed.
    pub instantiation_failures: u64,
    /// Instantiations held now.
    pub instances: u64,
    /// Nanoseconds spent instantiating (nested ones counted in their
    /// callers too).
    pub compile_nanos: u64,
    /// Bytes of code instantiations published.
    pub compiled_code_bytes: u64,
    /// Template entries decoded.
    pub templates_decoded: u64,
    /// Template entries verified.
    pub templates_verified: u64,
    /// Instantiations made to run in the interpreter first.
    pub tiered: u64,
    /// Calls of tiered instantiations that ran in the interpreter.
    pub interpreted_calls: u64,
    /// Loop back-edges of interpreted calls.
    pub back_edges: u64,
    /// Tiered instantiations compiled and switched to.
    pub tier_ups: u64,
    /// Interpreted calls that continued in a compiled loop entry.
    pub osr_entries: u64,
    /// Failed compilations of tiered instantiations (they stay
    /// interpreted).
    pub tier_compile_failures: u64,
    /// Bytes of live published code (modules and instantiations).
    pub code_bytes: u64,
    /// Bytes mapped read-execute now.
    pub executable_bytes: u64,
    /// Protection changes since the loader was made.
    pub protection_changes: u64,
    /// Publications of code since the loader was made.
    pub publications: u64,
}

/// The smallest `size` accepted: the size field and the first counter.
const MIN_SIZE: usize = offset_of!(SmfjitStats, modules) + size_of::<u64>();

fn wide(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl SmfjitStats {
    fn from_stats(stats: &LoaderStats) -> Self {
        let (cache, instances, tiers, memory) = (
            &stats.cache,
            &stats.instances,
            &stats.instances.tiers,
            &stats.memory,
        );
        Self {
            size: size_of::<Self>(),
            modules: wide(stats.modules),
            exports: wide(stats.exports),
            shared: wide(stats.shared),
            stale_modules: wide(stats.stale_modules),
            cache_hits: cache.hits,
            cache_misses: cache.misses,
            cache_evictions: cache.evictions,
            cache_files: wide(cache.files),
            cache_bytes: cache.bytes,
            instance_hits: instances.cache_hits,
            instantiation_requests: instances.requests,
            instantiations: instances.instantiations,
            instantiation_failures: instances.failures,
            instances: wide(instances.instances),
            compile_nanos: instances.compile_nanos,
            compiled_code_bytes: instances.code_bytes,
            templates_decoded: instances.templates.decoded,
            templates_verified: instances.templates.verified,
            tiered: tiers.tiered,
            interpreted_calls: tiers.interpreted_calls,
            back_edges: tiers.back_edges,
            tier_ups: tiers.tier_ups,
            osr_entries: tiers.osr_entries,
            tier_compile_failures: tiers.compile_failures,
            code_bytes: wide(memory.bytes_code),
            executable_bytes: wide(memory.bytes_executable),
            protection_changes: memory.protection_changes,
            publications: memory.publications,
        }
    }
}

/// Fills the caller's `struct smfjit_stats` with a snapshot of the
/// loader's counters. `out->size` must be set to the caller's
/// `sizeof(struct smfjit_stats)` (at least the size field and one
/// counter); the fields that fit are filled and `out->size` becomes the
/// bytes filled. 0, or `SMFJIT_EINVAL` (nothing written but the error).
///
/// # Safety
/// `loader` is null or a handle from a `smfjit_loader_new` function;
/// `out` is null or valid for reads and writes of `out->size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_stats(
    loader: *mut super::smfjit_loader,
    out: *mut SmfjitStats,
) -> c_int {
    // SAFETY: forwarded contracts.
    let (loader, asked) = match unsafe { loader_and_size(loader, out, MIN_SIZE, "smfjit_stats") } {
        Ok(checked) => checked,
        Err(code) => return code,
    };
    let snapshot = SmfjitStats::from_stats(&loader.stats());
    // Whole fields only: every field is eight bytes.
    let filled = asked.min(size_of::<SmfjitStats>()) / 8 * 8;
    // SAFETY: `filled` is at most the caller's size, writable by contract,
    // and at most the struct's.
    unsafe { fill(out, &snapshot, filled) };
    SMFJIT_OK
}
