//! The configuration object of the C ABI: `smfjit_config_new`, its
//! setters and `smfjit_loader_new_with_config`, so that a C program chooses
//! what Rust programs choose in [`LoaderConfig`] and [`JitConfig`] without
//! going through the environment.

use std::ffi::{c_char, c_int, c_uint};

use super::{
    Handle, HandleKind, SMFJIT_BIND_LAZY, SMFJIT_BIND_NOW, SMFJIT_OK, argument, failed, invalid,
    new_loader, smfjit_loader,
};
use crate::loader::{Binding, LoaderConfig};
use crate::tier::TierPolicy;
use crate::{CacheConfig, JitConfig};
use execmem::Switch;

/// `smfjit_config_set_tier`: compiled on the miss.
pub const SMFJIT_TIER_COMPILED: c_int = 0;
/// `smfjit_config_set_tier`: always interpreted, behind a real function
/// pointer.
pub const SMFJIT_TIER_INTERPRETED: c_int = 1;
/// `smfjit_config_set_tier`: interpreted first, compiled once hot.
pub const SMFJIT_TIER_AUTO: c_int = 2;

/// `smfjit_config_set_debug`: register generated code with GDB's JIT
/// interface.
pub const SMFJIT_DEBUG_GDB: c_uint = 1;
/// `smfjit_config_set_debug`: list generated functions in
/// `/tmp/perf-PID.map`.
pub const SMFJIT_DEBUG_PERF_MAP: c_uint = 2;
/// `smfjit_config_set_debug`: record generated functions in a jitdump
/// file for `perf inject --jit`.
pub const SMFJIT_DEBUG_JITDUMP: c_uint = 4;

/// What a configuration handle holds: the loader's configuration and the
/// JIT instantiator's.
#[derive(Debug, Clone, Default)]
pub struct Configuration {
    loader: LoaderConfig,
    jit: JitConfig,
}

impl HandleKind for Configuration {
    const TAG: u64 = u64::from_le_bytes(*b"smfjitCF");
    const WHAT: &'static str = "config";
}

/// The opaque configuration C programs fill before making a loader.
#[allow(non_camel_case_types)]
pub type smfjit_config = Handle<Configuration>;

/// The binding a C value names.
pub(super) fn binding(value: c_int) -> Result<Binding, c_int> {
    match value {
        SMFJIT_BIND_NOW => Ok(Binding::Now),
        SMFJIT_BIND_LAZY => Ok(Binding::Lazy),
        other => Err(invalid(&format!(
            "binding {other} is neither SMFJIT_BIND_NOW (0) nor SMFJIT_BIND_LAZY (1)"
        ))),
    }
}

fn into_raw(loader: LoaderConfig) -> *mut smfjit_config {
    Handle::into_raw(Configuration {
        loader,
        jit: JitConfig::default(),
    })
}

/// A new configuration with the defaults and nothing read from the
/// environment: imports bound at load, instantiations compiled on their
/// miss, open world, the default cache limits and native libraries, and
/// debugger and profiler support as `SMFJIT_DEBUG`, `SMFJIT_PERF_MAP` and
/// `SMFJIT_JITDUMP` say until `smfjit_config_set_debug` decides. Owned by
/// the caller until `smfjit_config_free`; never null (an allocation that
/// fails aborts the process, as Rust's allocations do).
#[unsafe(no_mangle)]
pub extern "C" fn smfjit_config_new() -> *mut smfjit_config {
    into_raw(LoaderConfig::default())
}

/// [`smfjit_config_new`] with the tier variables of the environment
/// applied, as `smfjit_loader_new` reads them; `NULL` with
/// `SMFJIT_ECONFIG` recorded for an invalid value.
#[unsafe(no_mangle)]
pub extern "C" fn smfjit_config_from_env() -> *mut smfjit_config {
    match LoaderConfig::from_env() {
        Ok(config) => into_raw(config),
        Err(error) => {
            failed(&error);
            std::ptr::null_mut()
        }
    }
}

/// Frees a configuration; `NULL` is ignored, and so is one freed before
/// (recorded as an invalid argument; the handle's bytes stay allocated,
/// tagged, for that check). Loaders made from it are unaffected.
///
/// # Safety
/// `config` is null or a handle from `smfjit_config_new` or
/// `smfjit_config_from_env`, with no other call on it during this one.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_free(config: *mut smfjit_config) {
    // SAFETY: forwarded contract.
    unsafe { Handle::free(config) }
}

/// Applies `change` to the configuration behind `config`: 0, or
/// `SMFJIT_EINVAL` with nothing changed.
///
/// # Safety
/// `config` is null or a handle from `smfjit_config_new`, used by no other
/// thread during the call.
unsafe fn set(
    config: *mut smfjit_config,
    change: impl FnOnce(&mut Configuration) -> Result<(), c_int>,
) -> c_int {
    // SAFETY: forwarded contract.
    match unsafe { Handle::get_mut(config) }.and_then(change) {
        Ok(()) => SMFJIT_OK,
        Err(code) => code,
    }
}

/// Sets when imports are bound: `SMFJIT_BIND_NOW` or `SMFJIT_BIND_LAZY`.
///
/// # Safety
/// `config` is null or a handle from `smfjit_config_new`; not used by
/// another thread during the call (a configuration is not thread-safe;
/// loaders are).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_set_binding(
    config: *mut smfjit_config,
    value: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.loader.binding = binding(value)?;
            Ok(())
        })
    }
}

/// Sets where instantiations run: `SMFJIT_TIER_COMPILED`,
/// `SMFJIT_TIER_INTERPRETED` or `SMFJIT_TIER_AUTO`.
///
/// # Safety
/// As [`smfjit_config_set_binding`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_set_tier(config: *mut smfjit_config, tier: c_int) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.loader.tier.policy = match tier {
                SMFJIT_TIER_COMPILED => TierPolicy::Compiled,
                SMFJIT_TIER_INTERPRETED => TierPolicy::Interpreted,
                SMFJIT_TIER_AUTO => TierPolicy::Auto,
                other => {
                    return Err(invalid(&format!(
                        "tier {other} is none of SMFJIT_TIER_COMPILED (0), \
                         SMFJIT_TIER_INTERPRETED (1), SMFJIT_TIER_AUTO (2)"
                    )));
                }
            };
            Ok(())
        })
    }
}

/// Sets the `auto` tier's thresholds: calls interpreted before the next
/// one compiles, and loop back-edges in one interpreted call after which
/// it continues compiled; each at least 1.
///
/// # Safety
/// As [`smfjit_config_set_binding`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_set_tier_thresholds(
    config: *mut smfjit_config,
    calls: u32,
    back_edges: u32,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            if calls == 0 || back_edges == 0 {
                return Err(invalid(&format!(
                    "tier thresholds must be at least 1 (calls {calls}, back-edges {back_edges})"
                )));
            }
            c.loader.tier.calls = calls;
            c.loader.tier.back_edges = back_edges;
            Ok(())
        })
    }
}

/// Under the `auto` tier, compile on a thread of its own (nonzero) or in
/// the call that crossed the threshold (0, the default).
///
/// # Safety
/// As [`smfjit_config_set_binding`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_set_tier_background(
    config: *mut smfjit_config,
    background: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.loader.tier.background = background != 0;
            Ok(())
        })
    }
}

/// Nonzero (the default): instantiate any well-formed name whose template
/// a loaded module offers; 0: only the names the modules' notes list.
///
/// # Safety
/// As [`smfjit_config_set_binding`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_set_open_world(
    config: *mut smfjit_config,
    open: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.jit.open_world = open != 0;
            Ok(())
        })
    }
}

/// Nonzero (the default): a miss instantiates; 0: names no module exports
/// are unresolved.
///
/// # Safety
/// As [`smfjit_config_set_binding`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_set_instantiation(
    config: *mut smfjit_config,
    enabled: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.loader.instantiation_enabled = enabled != 0;
            Ok(())
        })
    }
}

/// Turns debugger and profiler support on for exactly the features in
/// `flags` (`SMFJIT_DEBUG_GDB | SMFJIT_DEBUG_PERF_MAP |
/// SMFJIT_DEBUG_JITDUMP`, or 0 for none), whatever the environment says.
///
/// # Safety
/// As [`smfjit_config_set_binding`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_set_debug(
    config: *mut smfjit_config,
    flags: c_uint,
) -> c_int {
    const ALL: c_uint = SMFJIT_DEBUG_GDB | SMFJIT_DEBUG_PERF_MAP | SMFJIT_DEBUG_JITDUMP;
    let switch = |flag: c_uint| {
        if flags & flag == 0 {
            Switch::Disabled
        } else {
            Switch::Enabled
        }
    };
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            if flags & !ALL != 0 {
                return Err(invalid(&format!(
                    "debug flags {flags:#x} include bits other than SMFJIT_DEBUG_GDB, \
                     SMFJIT_DEBUG_PERF_MAP and SMFJIT_DEBUG_JITDUMP"
                )));
            }
            c.loader.memory.gdb_jit = switch(SMFJIT_DEBUG_GDB);
            c.loader.memory.perf_map = switch(SMFJIT_DEBUG_PERF_MAP);
            c.loader.memory.jitdump = switch(SMFJIT_DEBUG_JITDUMP);
            Ok(())
        })
    }
}

/// Sets the SMF cache's limits: files kept (at least 1) and bytes kept
/// before the least recently used file is evicted.
///
/// # Safety
/// As [`smfjit_config_set_binding`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_set_cache_limits(
    config: *mut smfjit_config,
    max_files: usize,
    max_bytes: u64,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            if max_files == 0 {
                return Err(invalid("the cache must keep at least 1 file"));
            }
            c.loader.cache = CacheConfig {
                max_files,
                max_bytes,
                ..c.loader.cache.clone()
            };
            Ok(())
        })
    }
}

/// Sets how deeply instantiations may nest (at least 1).
///
/// # Safety
/// As [`smfjit_config_set_binding`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_set_max_depth(
    config: *mut smfjit_config,
    depth: usize,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            if depth == 0 {
                return Err(invalid("the instantiation depth must be at least 1"));
            }
            c.loader.max_depth = depth;
            Ok(())
        })
    }
}

/// Replaces the native libraries searched for imports no module defines
/// (by default `libc.so.6` then `libm.so.6`) with none; add them back in
/// order with [`smfjit_config_add_native_library`].
///
/// # Safety
/// As [`smfjit_config_set_binding`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_clear_native_libraries(config: *mut smfjit_config) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        set(config, |c| {
            c.loader.native_libraries.clear();
            Ok(())
        })
    }
}

/// Appends a native library (a name `dlopen` finds, or a path) to those
/// searched for imports; the text is copied.
///
/// # Safety
/// As [`smfjit_config_set_binding`]; `library` is null or a NUL-terminated
/// string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_config_add_native_library(
    config: *mut smfjit_config,
    library: *const c_char,
) -> c_int {
    // SAFETY: forwarded contracts.
    unsafe {
        set(config, |c| {
            let library = argument(library, "library")?;
            c.loader.native_libraries.push(library.to_owned());
            Ok(())
        })
    }
}

/// A loader made as `config` says (the configuration is read, not taken:
/// free it when done, and it may make more loaders), with the JIT
/// instantiator installed; `NULL` with the error recorded on failure (a
/// null or freed configuration, a native library that does not open,
/// executable memory).
///
/// # Safety
/// `config` is null or a handle from `smfjit_config_new`, not changed by
/// another thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_loader_new_with_config(
    config: *const smfjit_config,
) -> *mut smfjit_loader {
    // SAFETY: forwarded contract.
    match unsafe { Handle::get(config) } {
        Ok(config) => new_loader(Ok(config.loader.clone()), config.jit),
        Err(_) => std::ptr::null_mut(),
    }
}
