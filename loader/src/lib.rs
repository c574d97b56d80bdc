//! The loader: SMF modules placed in memory, names resolved, and the seam
//! where the JIT instantiates what no module defines.
//!
//! The pieces, in the order a name travels (BRIEF §2, §6):
//!
//! - [`SmfCache`] opens each file once (a read-only map, or a copy for small
//!   files), validates it with the `smf` reader and shares it behind an
//!   `Arc`; it notices files that changed on disk and evicts by count and
//!   bytes; it fetches a batch on several threads after asking the kernel
//!   to read ahead what each header's `prefetch_hint` names (`prefetch`);
//! - [`Loader::load`] places a module: code into W^X executable memory
//!   (`execmem`), data and bss into read-write memory, relocations applied
//!   (`module`, `relocate`), imports bound to other modules' exports, to
//!   instantiations, or to native libraries (`native`);
//! - [`Loader::resolve`] looks a name up in the export snapshot (`exports`,
//!   lock-free), then in the instantiation cache, then asks the
//!   [`Instantiator`] — the miss hook the JIT implements — through a
//!   [`ResolveContext`] that bounds depth, reports cycles, and makes
//!   concurrent misses of one name compile once (`instances`);
//! - [`JitInstantiator`] is that hook for real: it finds the module offering
//!   a name's template, instantiates it and compiles it with the `jit`
//!   crate's x86-64 backend, straight into the batch of a module being
//!   loaded when there is one (`jit_service`); [`Loader::with_jit`] installs
//!   it and binds `__smfjit_trap` to the process-wide [`trap_runtime`];
//! - [`Binding::Now`] binds every import at load and publishes the module
//!   with the instantiations it needs in one batch; [`Binding::Lazy`] binds
//!   function calls at their first call through per-import slots and a
//!   resolver trampoline that keeps every argument register (`lazy`);
//! - [`Loader::reload`] and [`Loader::unload`] swap or remove a module,
//!   updating every [`SymbolSlot`] (`slots`) atomically, while code still
//!   referenced stays mapped; a reload also drops the instantiations made
//!   from (or calling) the old version and makes again those behind slots,
//!   with instantiations kept out meanwhile (`gate`);
//! - `capi` is the C ABI of `include/smfjit.h`, exported by `libsmfjit.so`.
//!
//! `doc/ARCHITECTURE.md` describes each piece and the rules it follows
//! (precedence, relocation arithmetic, what happens to files that change).
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod address;
// Unsafe code: views the bytes of a read-only file mapping.
#[allow(unsafe_code)]
mod cache;
// Unsafe code: the C ABI: exported functions taking raw pointers from C.
#[allow(unsafe_code)]
pub mod capi;
mod error;
mod exports;
mod gate;
// Unsafe code: reads entry points out of published executable memory.
#[allow(unsafe_code)]
mod instances;
mod jit_service;
// Unsafe code: the lazy-binding resolver entry point and its slot patching.
#[allow(unsafe_code)]
mod lazy;
pub mod limits;
mod loader;
mod module;
// Unsafe code: looks up and keeps native libraries and their symbols.
#[allow(unsafe_code)]
mod native;
mod note;
mod offered;
// Unsafe code: advises the kernel to read files ahead (posix_fadvise).
#[allow(unsafe_code)]
mod prefetch;
mod relocate;
mod resolution;
mod shared;
mod slots;
mod template_cache;
// Unsafe code: reads the processor's time-stamp counter.
#[allow(unsafe_code)]
mod ticks;
// Unsafe code: the interpreter thunks' entry point and guarded calls.
#[allow(unsafe_code)]
mod tier;

pub use address::{AddressInfo, AddressOwner};
pub use cache::{Backing, CacheConfig, CacheStats, FileIdentity, SmfCache, SmfFile};
pub use error::{Error, InstantiationError, Result};
pub use exports::Export;
pub use instances::{InstanceCode, InstanceStats, Instantiator, ResolveContext, TemplateStats};
pub use jit_service::{JitConfig, JitInstantiator, TRAP_SYMBOL, trap_runtime, write_back_note};
pub use loader::{Binding, CODE_MEMORY_ENV, Loader, LoaderConfig, LoaderStats};
pub use module::{Import, LoadedModule};
pub use prefetch::{Advice, PrefetchHint};
pub use resolution::{Address, ImportSource, JIT_OBJECT, ModuleId};
pub use slots::SymbolSlot;
pub use tier::{
    TIER_BACKEDGES_ENV, TIER_BACKGROUND_ENV, TIER_CALLS_ENV, TIER_ENV, Tier, TierConfig,
    TierPolicy, TierStats, TierTotals,
};
