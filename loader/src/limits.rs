//! Every default and bound the loader applies, in one place.

/// Files at most this large are read into memory instead of mapped: mapping
/// costs a few system calls and a page fault per touched page, and a copy
/// cannot be cut short by a truncation of the file (see `cache.rs`).
pub const DEFAULT_READ_THRESHOLD: u64 = 64 << 10;

/// Files the cache keeps by default before evicting the least recently used.
pub const DEFAULT_MAX_FILES: usize = 256;

/// Bytes of files the cache keeps by default before evicting.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// Threads, the caller's among them, that `SmfCache::prefetch` opens and
/// validates files on. The files' reads were queued by the advice before
/// (see `prefetch.rs`); a few threads overlap what is left of waiting for
/// them with validating (hashing) the files already read, and on the
/// two-core machines the benchmarks run on more would only take turns.
pub const PREFETCH_THREADS: usize = 4;

/// Default bound on nested instantiations (an instantiation asking for
/// another, which asks for another, ...): the IR's own bound on
/// instantiation chains. It is reached before the IR's limit on type
/// nesting, so polymorphic recursion (`f<T>` needing `f<ptr<T>>`) is
/// reported as a depth error that carries the whole chain.
pub const DEFAULT_MAX_DEPTH: usize = jit::limits::MAX_INSTANTIATION_DEPTH;

/// Native libraries searched, in order, for imports no module defines.
pub const DEFAULT_NATIVE_LIBRARIES: &[&str] = &["libc.so.6", "libm.so.6"];

/// Largest section alignment the loader honours: executable memory places
/// reservations at most page-aligned, and data sections share one mapping
/// that starts on a page boundary.
pub const MAX_LOAD_ALIGNMENT: u64 = 4096;

/// Bytes of one out-of-reach call stub: `jmp [rip+0]` followed by the
/// 8-byte target address.
pub const STUB_SIZE: usize = 14;

/// Distance between stubs, and their alignment: a stub per 16-byte fetch
/// block.
pub const STUB_STRIDE: usize = 16;

const _: () = assert!(STUB_SIZE <= STUB_STRIDE);

/// Shards of the instantiation cache's concurrent map (a power of two):
/// enough that threads resolving different names rarely share one.
pub const INSTANCE_SHARDS: usize = 32;

/// Template libraries the process keeps after the last module using them
/// is gone, so that a later loader of the same module neither decodes nor
/// verifies its templates again (the most recently used are kept).
pub const CACHED_TEMPLATE_LIBRARIES: usize = 16;

/// Bytes of TemplateCode sections those kept libraries may hold together
/// (their decoded templates come on top, a few times as much).
pub const CACHED_TEMPLATE_BYTES: usize = 64 << 20;

/// Calls a tiered instantiation runs interpreted under `auto` before the
/// next call compiles it (`TierConfig::calls`).
///
/// Chosen from the break-even rows of `smfjit-bench tier`
/// (`bench/src/tier.rs`): the calls after which a tier-up (about 4–6 µs
/// from a fresh loader) has paid for itself are 35–38 for a loop-free
/// seven-instruction function (an interpreted call ~120 ns, a compiled one
/// ~1 ns) and 6–7 for a loop over 16 elements (~820 ns against ~10 ns),
/// under 1 over 256. Whatever the threshold T, a function with break-even
/// b that stops being called right after its tier-up costs up to
/// 1 + max(T/b, b/T) times what the better choice in hindsight would have;
/// the worst case over those functions is smallest at T ≈ 15, so the
/// lowest of the anchors' 30–100 calls (.NET's 30), close to the smallest
/// functions' break-even, is the one taken.
pub const DEFAULT_TIER_CALLS: u32 = 30;

/// Back-edges to one loop header in one interpreted call after which the
/// call continues in compiled code under `auto` (`TierConfig::back_edges`).
///
/// Chosen from the break-even rows of `smfjit-bench tier` (recorded in
/// `doc/PERFORMANCE.md`): entering compiled code at a loop header (deriving,
/// compiling and publishing the loop entry, then transferring the live
/// values) costs about 14 µs, and an interpreted iteration of `sum$i64`'s
/// or `max$i64`'s loop 15–18 ns against well under 1 ns compiled, so the
/// loop entry pays for itself after some 760–940 back-edges. Loops doing
/// more per iteration break even sooner, so the default sits just below the
/// cheapest loops' figure: a long call in a loop whose break-even is b then
/// pays at most about 1 + b/750 times what entering compiled code at once
/// would have cost.
pub const DEFAULT_TIER_BACKEDGES: u32 = 750;
