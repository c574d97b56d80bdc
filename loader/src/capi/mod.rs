//! The C ABI of `include/smfjit.h` (BRIEF §6), exported by `libsmfjit.so`.
//!
//! A `smfjit_loader *` is a [`Loader`] in a tagged box (`handle`), so that
//! a handle used after `smfjit_loader_free` is reported, not followed.
//! Failures return
//! `NULL` or a negative code ([`Error::code`](crate::Error::code), listed
//! with [`SMFJIT_EINVAL`] and the others below, and as the header's `enum
//! smfjit_error`) and leave a message and the code for
//! [`smfjit_last_error`] and [`smfjit_last_error_code`] in thread-local
//! storage.
//!
//! The pieces: loaders, modules and names here; the configuration object
//! (`config`); the statistics (`stats`); the `dladdr` analogue
//! (`address`).

mod address;
mod config;
mod handle;
mod stats;

pub use address::{SMFJIT_ADDR_INSTANCE, SMFJIT_ADDR_MODULE, SMFJIT_ADDR_TIER_CODE};
pub use config::{
    Configuration, SMFJIT_DEBUG_GDB, SMFJIT_DEBUG_JITDUMP, SMFJIT_DEBUG_PERF_MAP, SMFJIT_TIER_AUTO,
    SMFJIT_TIER_COMPILED, SMFJIT_TIER_INTERPRETED, smfjit_config,
};
pub use handle::{Handle, HandleKind};

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::loader::{Loader, LoaderConfig};
use crate::module::LoadedModule;
use crate::{Error, ModuleId};

/// Success.
pub const SMFJIT_OK: c_int = 0;
/// A null or invalid argument (a freed handle, text that is not UTF-8, a
/// value out of range).
pub const SMFJIT_EINVAL: c_int = -1;
/// The file cannot be opened, read or mapped, or changed while read.
pub const SMFJIT_EIO: c_int = -2;
/// Not a valid SMF module (or its note is invalid), or built for another
/// platform.
pub const SMFJIT_EFORMAT: c_int = -3;
/// A layout the loader does not support, or a shared memory or table that
/// conflicts with what is loaded.
pub const SMFJIT_EUNSUPPORTED: c_int = -4;
/// A symbol, memory or table no loaded module defines.
pub const SMFJIT_EUNDEFINED: c_int = -5;
/// A relocation's result does not fit its field.
pub const SMFJIT_ERELOC: c_int = -6;
/// An instantiation failed, nested too deeply or formed a cycle.
pub const SMFJIT_EINSTANTIATE: c_int = -7;
/// Executable, data or shared memory could not be obtained.
pub const SMFJIT_ENOMEM: c_int = -8;
/// No module is loaded under that handle or path.
pub const SMFJIT_ENOMODULE: c_int = -9;
/// A configuration value (an environment variable) is not valid.
pub const SMFJIT_ECONFIG: c_int = -10;
/// A module cannot be unloaded while another imports its shared memory or
/// table.
pub const SMFJIT_EINUSE: c_int = -11;
/// `smfjit_addr_info`: the loader holds nothing at that address.
pub const SMFJIT_ENOTFOUND: c_int = -12;

/// `smfjit_loader_new_with_binding`: resolve every import at load.
pub const SMFJIT_BIND_NOW: c_int = 0;
/// `smfjit_loader_new_with_binding`: resolve each import on its first call.
pub const SMFJIT_BIND_LAZY: c_int = 1;

/// A loaded module's handle (its [`ModuleId`]); 0 is never one.
#[allow(non_camel_case_types)]
pub type smfjit_module = u64;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static LAST_CODE: Cell<c_int> = const { Cell::new(SMFJIT_OK) };
}

/// Records the calling thread's last failure.
fn set_last_error(code: c_int, message: &str) {
    // An interior NUL cannot be represented in C; cut the message there.
    let text = message.split('\0').next().unwrap_or("");
    let text = CString::new(text).unwrap_or_default();
    LAST_ERROR.with(|cell| *cell.borrow_mut() = text);
    LAST_CODE.with(|cell| cell.set(code));
}

/// Records an invalid argument; returns its code.
fn invalid(message: &str) -> c_int {
    set_last_error(SMFJIT_EINVAL, message);
    SMFJIT_EINVAL
}

/// Records `error`; returns its code.
fn failed(error: &Error) -> c_int {
    let code = error.code();
    set_last_error(code, &error.to_string());
    code
}

impl HandleKind for Loader {
    const TAG: u64 = u64::from_le_bytes(*b"smfjitLD");
    const WHAT: &'static str = "loader";
}

/// The opaque loader handle C programs hold.
#[allow(non_camel_case_types)]
pub type smfjit_loader = Handle<Loader>;

/// The loader behind a handle, or the code of why there is none.
///
/// # Safety
/// `handle` is null or a pointer from one of the `smfjit_loader_new`
/// functions (freed or not), not being freed concurrently.
unsafe fn loader<'a>(handle: *mut smfjit_loader) -> Result<&'a Loader, c_int> {
    // SAFETY: forwarded contract.
    unsafe { Handle::get(handle) }
}

/// Reads a C string argument.
///
/// # Safety
/// `text` is null or points to a NUL-terminated string that stays valid
/// for the call.
unsafe fn argument<'a>(text: *const c_char, what: &str) -> Result<&'a str, c_int> {
    if text.is_null() {
        return Err(invalid(&format!("{what} is NULL")));
    }
    // SAFETY: non-null, and NUL-terminated by the caller's contract.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_str()
        .map_err(|_| invalid(&format!("{what} is not valid UTF-8")))
}

/// Runs `body` on the loader behind `handle`, turning either failure into
/// its code.
///
/// # Safety
/// As [`loader`].
unsafe fn with_loader(
    handle: *mut smfjit_loader,
    body: impl FnOnce(&Loader) -> Result<c_int, c_int>,
) -> c_int {
    // SAFETY: forwarded contract.
    match unsafe { loader(handle) }.and_then(body) {
        Ok(code) | Err(code) => code,
    }
}

/// Writes `id` through `out` when it is not null.
///
/// # Safety
/// `out` is null or valid for a write.
unsafe fn give_id(out: *mut smfjit_module, id: ModuleId) {
    if !out.is_null() {
        // SAFETY: non-null and writable by the caller's contract.
        unsafe { out.write(id) };
    }
}

/// Makes a loader handle from `config` with the JIT installed; null with
/// the error recorded on failure.
fn new_loader(config: crate::Result<LoaderConfig>, jit: crate::JitConfig) -> *mut smfjit_loader {
    let made = config.and_then(|config| {
        let tier = config.tier;
        let loader = Loader::new(config)?;
        crate::JitInstantiator::with_tier(jit, tier)?.install(&loader);
        Ok(loader)
    });
    match made {
        Ok(loader) => Handle::into_raw(loader),
        Err(error) => {
            failed(&error);
            std::ptr::null_mut()
        }
    }
}

/// Creates a loader with the default configuration that instantiates
/// templates of its modules on a miss ([`Loader::with_jit`]), in the tier
/// the environment chooses ([`LoaderConfig::from_env`]: `SMFJIT_TIER`,
/// `SMFJIT_TIER_CALLS`, `SMFJIT_TIER_BACKEDGES`, `SMFJIT_TIER_BACKGROUND`);
/// `NULL` on failure, an invalid value of one of those included.
#[unsafe(no_mangle)]
pub extern "C" fn smfjit_loader_new() -> *mut smfjit_loader {
    smfjit_loader_new_with_binding(SMFJIT_BIND_NOW)
}

/// A loader like [`smfjit_loader_new`]'s whose modules bind their imports
/// as `binding` says ([`SMFJIT_BIND_NOW`] or [`SMFJIT_BIND_LAZY`]); null,
/// with a message for [`smfjit_last_error`], for any other value.
#[unsafe(no_mangle)]
pub extern "C" fn smfjit_loader_new_with_binding(binding: c_int) -> *mut smfjit_loader {
    let binding = match config::binding(binding) {
        Ok(binding) => binding,
        Err(_) => return std::ptr::null_mut(),
    };
    let config = LoaderConfig::from_env().map(|config| LoaderConfig { binding, ..config });
    new_loader(config, crate::JitConfig::default())
}

/// Loads the module at `path`: 0, or a negative code with a message for
/// [`smfjit_last_error`].
///
/// # Safety
/// `loader` is null or a handle from a `smfjit_loader_new` function;
/// `path` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_load(loader: *mut smfjit_loader, path: *const c_char) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { smfjit_load_module(loader, path, std::ptr::null_mut()) }
}

/// [`smfjit_load`], writing the new module's handle to `module` (unless
/// null).
///
/// # Safety
/// As [`smfjit_load`]; `module` is null or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_load_module(
    loader: *mut smfjit_loader,
    path: *const c_char,
    module: *mut smfjit_module,
) -> c_int {
    // SAFETY: forwarded contracts.
    unsafe {
        with_loader(loader, |loader| {
            let path = argument(path, "path")?;
            let loaded = loader.load(Path::new(path)).map_err(|e| failed(&e))?;
            give_id(module, loaded.id());
            Ok(SMFJIT_OK)
        })
    }
}

/// The most recently loaded module whose file is `path` (compared after
/// resolving links and relative parts, when the file still exists).
fn module_at(loader: &Loader, path: &str) -> Result<Arc<LoadedModule>, c_int> {
    let wanted = canonical(Path::new(path));
    loader
        .modules()
        .into_iter()
        .rev()
        .find(|module| canonical(module.path()) == wanted)
        .ok_or_else(|| {
            set_last_error(
                SMFJIT_ENOMODULE,
                &format!("no module is loaded from '{path}'"),
            );
            SMFJIT_ENOMODULE
        })
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Writes the handle of the most recently loaded module from `path` to
/// `module`: 0, or [`SMFJIT_ENOMODULE`].
///
/// # Safety
/// As [`smfjit_load_module`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_module_find(
    loader: *mut smfjit_loader,
    path: *const c_char,
    module: *mut smfjit_module,
) -> c_int {
    // SAFETY: forwarded contracts.
    unsafe {
        with_loader(loader, |loader| {
            if module.is_null() {
                return Err(invalid("module is NULL"));
            }
            let found = module_at(loader, argument(path, "path")?)?;
            give_id(module, found.id());
            Ok(SMFJIT_OK)
        })
    }
}

/// Reloads a module from its file (the newest version on disk) and
/// writes its new handle to `new_module` (unless null); the old handle
/// names nothing afterwards.
fn reload(loader: &Loader, id: ModuleId, new_module: *mut smfjit_module) -> Result<c_int, c_int> {
    let module = loader.reload(id).map_err(|e| failed(&e))?;
    // SAFETY: the callers pass their caller's `new_module`, null or
    // writable by contract.
    unsafe { give_id(new_module, module.id()) };
    Ok(SMFJIT_OK)
}

/// Reloads the most recently loaded module from `path` ([`Loader::reload`]:
/// its new version replaces it, addresses handed out for the old version
/// stay valid until [`smfjit_reclaim`]); writes the new handle to
/// `new_module` unless null. 0, or a negative code.
///
/// # Safety
/// As [`smfjit_load_module`], for `new_module`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_reload(
    loader: *mut smfjit_loader,
    path: *const c_char,
    new_module: *mut smfjit_module,
) -> c_int {
    // SAFETY: forwarded contracts.
    unsafe {
        with_loader(loader, |loader| {
            let module = module_at(loader, argument(path, "path")?)?;
            reload(loader, module.id(), new_module)
        })
    }
}

/// [`smfjit_reload`] of the module whose handle is `module`.
///
/// # Safety
/// As [`smfjit_reload`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_reload_module(
    loader: *mut smfjit_loader,
    module: smfjit_module,
    new_module: *mut smfjit_module,
) -> c_int {
    // SAFETY: forwarded contracts.
    unsafe { with_loader(loader, |loader| reload(loader, module, new_module)) }
}

/// Frees what reloads replaced once no thread can still run it
/// ([`Loader::reclaim_replaced`]); returns how many versions were freed,
/// or a negative code.
///
/// # Safety
/// As [`smfjit_load`]; no thread runs code of a replaced version during
/// or after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_reclaim(loader: *mut smfjit_loader) -> c_int {
    // SAFETY: forwarded contract.
    unsafe {
        with_loader(loader, |loader| {
            Ok(c_int::try_from(loader.reclaim_replaced()).unwrap_or(c_int::MAX))
        })
    }
}

fn unload(loader: &Loader, id: ModuleId) -> Result<c_int, c_int> {
    loader.unload(id).map_err(|e| failed(&e))?;
    Ok(SMFJIT_OK)
}

/// Unloads the most recently loaded module from `path`
/// ([`Loader::unload`]): its exports go at once; its code stays mapped
/// while modules that bound to it live. 0, or a negative code
/// ([`SMFJIT_ENOMODULE`], [`SMFJIT_EINUSE`] while another module imports
/// its memory or table).
///
/// # Safety
/// As [`smfjit_load`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_unload(loader: *mut smfjit_loader, path: *const c_char) -> c_int {
    // SAFETY: forwarded contracts.
    unsafe {
        with_loader(loader, |loader| {
            let module = module_at(loader, argument(path, "path")?)?;
            unload(loader, module.id())
        })
    }
}

/// [`smfjit_unload`] of the module whose handle is `module`.
///
/// # Safety
/// As [`smfjit_load`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_unload_module(
    loader: *mut smfjit_loader,
    module: smfjit_module,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { with_loader(loader, |loader| unload(loader, module)) }
}

/// The address of `symbol`, or `NULL` with a message for
/// [`smfjit_last_error`]. The address stays valid until the module is
/// unloaded or replaced, or the loader freed.
///
/// # Safety
/// As [`smfjit_load`], for `symbol`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_resolve(
    loader: *mut smfjit_loader,
    symbol: *const c_char,
) -> *mut c_void {
    let mut address = std::ptr::null_mut();
    // SAFETY: forwarded contracts.
    unsafe {
        with_loader(loader, |loader| {
            let symbol = argument(symbol, "symbol")?;
            let found = loader.resolve(symbol).map_err(|e| failed(&e))?;
            address = found.as_ptr().cast_mut().cast();
            Ok(SMFJIT_OK)
        })
    };
    address
}

/// The message of the calling thread's last failure (empty if none); valid
/// until this thread's next call into the library.
#[unsafe(no_mangle)]
pub extern "C" fn smfjit_last_error() -> *const c_char {
    LAST_ERROR.with(|cell| cell.borrow().as_ptr())
}

/// The code of the calling thread's last failure (0 if none): what a
/// function returning a pointer does not return.
#[unsafe(no_mangle)]
pub extern "C" fn smfjit_last_error_code() -> c_int {
    LAST_CODE.with(Cell::get)
}

/// The library's version as text, `"MAJOR.MINOR.PATCH"` (static).
#[unsafe(no_mangle)]
pub extern "C" fn smfjit_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => panic!("the package version has no NUL"),
        };
    VERSION.as_ptr()
}

/// The library's version as `MAJOR * 10000 + MINOR * 100 + PATCH`, as
/// the header's `SMFJIT_VERSION_NUMBER` computes it.
#[unsafe(no_mangle)]
pub extern "C" fn smfjit_version_number() -> c_uint {
    const fn number(text: &str) -> c_uint {
        let bytes = text.as_bytes();
        let mut value = 0;
        let mut i = 0;
        while i < bytes.len() {
            value = value * 10 + (bytes[i] - b'0') as c_uint;
            i += 1;
        }
        value
    }
    const MAJOR: c_uint = number(env!("CARGO_PKG_VERSION_MAJOR"));
    const MINOR: c_uint = number(env!("CARGO_PKG_VERSION_MINOR"));
    const PATCH: c_uint = number(env!("CARGO_PKG_VERSION_PATCH"));
    MAJOR * 10_000 + MINOR * 100 + PATCH
}

/// Frees a loader and every module it holds; `NULL` is ignored, and so
/// is a handle freed before (recorded as an invalid argument). The
/// handle's few bytes stay allocated, tagged as freed, so that a later
/// use is reported rather than followed.
///
/// # Safety
/// `loader` is null or a handle from a `smfjit_loader_new` function; no
/// other call on it runs during the free, and no code of its modules runs
/// during or after it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_loader_free(loader: *mut smfjit_loader) {
    // SAFETY: forwarded contract.
    unsafe { Handle::free(loader) }
}
