//! The C ABI of `include/smfjit.h` (BRIEF §6), exported by `libsmfjit.so`.
//!
//! A `smfjit_loader *` is a boxed [`Loader`]. Failures return `NULL` or a
//! negative code ([`Error::code`](crate::Error::code)) and leave a message
//! for [`smfjit_last_error`] in thread-local storage.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;

use crate::loader::{Binding, Loader, LoaderConfig};

/// Code for a null or non-UTF-8 argument.
pub const SMFJIT_EINVAL: c_int = -1;

/// `smfjit_loader_new_with_binding`: resolve every import at load.
pub const SMFJIT_BIND_NOW: c_int = 0;
/// `smfjit_loader_new_with_binding`: resolve each import on its first call.
pub const SMFJIT_BIND_LAZY: c_int = 1;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // An interior NUL cannot be represented in C; cut the message there.
    let text = message.split('\0').next().unwrap_or("");
    let text = CString::new(text).unwrap_or_default();
    LAST_ERROR.with(|cell| *cell.borrow_mut() = text);
}

/// The opaque loader handle C programs hold.
#[allow(non_camel_case_types)]
pub struct smfjit_loader {
    loader: Loader,
}

/// Reads a C string argument.
///
/// # Safety
/// `text` is null or points to a NUL-terminated string that stays valid
/// for the call.
unsafe fn argument<'a>(text: *const c_char, what: &str) -> Option<&'a str> {
    if text.is_null() {
        set_last_error(&format!("{what} is NULL"));
        return None;
    }
    // SAFETY: non-null, and NUL-terminated by the caller's contract.
    let text = unsafe { CStr::from_ptr(text) };
    match text.to_str() {
        Ok(text) => Some(text),
        Err(_) => {
            set_last_error(&format!("{what} is not valid UTF-8"));
            None
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
    let binding = match binding {
        SMFJIT_BIND_NOW => Binding::Now,
        SMFJIT_BIND_LAZY => Binding::Lazy,
        other => {
            set_last_error(&format!(
                "binding {other} is neither SMFJIT_BIND_NOW (0) nor SMFJIT_BIND_LAZY (1)"
            ));
            return std::ptr::null_mut();
        }
    };
    let made = LoaderConfig::from_env()
        .and_then(|config| Loader::with_jit(LoaderConfig { binding, ..config }));
    match made {
        Ok(loader) => Box::into_raw(Box::new(smfjit_loader { loader })),
        Err(error) => {
            set_last_error(&error.to_string());
            std::ptr::null_mut()
        }
    }
}

/// Loads the module at `path`: 0, or a negative code with a message for
/// [`smfjit_last_error`].
///
/// # Safety
/// `loader` is null or a live handle from [`smfjit_loader_new`]; `path` is
/// null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_load(loader: *mut smfjit_loader, path: *const c_char) -> c_int {
    // SAFETY: null or live, by the caller's contract; only shared access.
    let Some(handle) = (unsafe { loader.as_ref() }) else {
        set_last_error("loader is NULL");
        return SMFJIT_EINVAL;
    };
    // SAFETY: forwarded contract on `path`.
    let Some(path) = (unsafe { argument(path, "path") }) else {
        return SMFJIT_EINVAL;
    };
    match handle.loader.load(Path::new(path)) {
        Ok(_) => 0,
        Err(error) => {
            set_last_error(&error.to_string());
            error.code()
        }
    }
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
    // SAFETY: null or live, by the caller's contract; only shared access.
    let Some(handle) = (unsafe { loader.as_ref() }) else {
        set_last_error("loader is NULL");
        return std::ptr::null_mut();
    };
    // SAFETY: forwarded contract on `symbol`.
    let Some(symbol) = (unsafe { argument(symbol, "symbol") }) else {
        return std::ptr::null_mut();
    };
    match handle.loader.resolve(symbol) {
        Ok(address) => address.as_ptr().cast_mut().cast(),
        Err(error) => {
            set_last_error(&error.to_string());
            std::ptr::null_mut()
        }
    }
}

/// The message of the calling thread's last failure (empty if none); valid
/// until this thread's next call into the library.
#[unsafe(no_mangle)]
pub extern "C" fn smfjit_last_error() -> *const c_char {
    LAST_ERROR.with(|cell| cell.borrow().as_ptr())
}

/// Frees a loader and every module it holds; `NULL` is ignored.
///
/// # Safety
/// `loader` is null or a handle from [`smfjit_loader_new`] not freed
/// before; no code of its modules runs during or after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smfjit_loader_free(loader: *mut smfjit_loader) {
    if !loader.is_null() {
        // SAFETY: made by `Box::into_raw` in `smfjit_loader_new` and freed
        // once, by the caller's contract.
        drop(unsafe { Box::from_raw(loader) });
    }
}
