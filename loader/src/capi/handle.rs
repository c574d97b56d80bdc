//! What every C handle and every versioned struct of the C ABI share.
//!
//! A handle is a box holding a tag and the value. Freeing drops the value
//! but keeps the box, tagged as freed, so that a handle used after its
//! free (or freed twice) is reported as `SMFJIT_EINVAL` instead of being
//! followed into freed memory; the cost is a few bytes per handle ever
//! made, and handles are long-lived.
//!
//! A versioned struct starts with its size, set by the caller: the library
//! fills the whole fields that fit and writes back how many bytes it
//! filled, so both sides may be built against different versions of the
//! header as long as fields are only ever appended.

use std::ffi::c_int;

use super::invalid;

/// What a kind of handle is called in messages, and its live tag.
pub trait HandleKind {
    /// The tag of a live handle of this kind (distinct per kind, so that a
    /// handle of one kind passed as another is caught).
    const TAG: u64;
    /// The argument's name in messages (`loader`, `config`).
    const WHAT: &'static str;
}

/// Tag of any handle whose value was freed.
const FREED: u64 = u64::from_le_bytes(*b"smfjitFR");

/// A C handle: see the module documentation.
pub struct Handle<T: HandleKind> {
    tag: u64,
    value: Option<T>,
}

impl<T: HandleKind> Handle<T> {
    /// A new handle owning `value`, for C to hold.
    pub(super) fn into_raw(value: T) -> *mut Self {
        Box::into_raw(Box::new(Self {
            tag: T::TAG,
            value: Some(value),
        }))
    }

    /// The value behind `handle`, or the code of why there is none (with
    /// the message recorded). Shared: a loader is used by many threads at
    /// once.
    ///
    /// # Safety
    /// `handle` is null or a pointer from [`Handle::into_raw`] (freed or
    /// not: the box is never deallocated), not being freed or changed
    /// concurrently.
    pub(super) unsafe fn get<'a>(handle: *const Self) -> Result<&'a T, c_int> {
        // SAFETY: null or a box from `into_raw`, by the caller's contract.
        let handle = unsafe { handle.as_ref() };
        Self::check(handle)
    }

    /// [`Handle::get`] for changing the value (a configuration).
    ///
    /// # Safety
    /// As [`Handle::get`], with no other access to the handle while the
    /// borrow lives.
    pub(super) unsafe fn get_mut<'a>(handle: *mut Self) -> Result<&'a mut T, c_int> {
        // SAFETY: null or a box from `into_raw`, used by one thread only,
        // by the caller's contract.
        let handle = unsafe { handle.as_mut() };
        Self::check_mut(handle)
    }

    fn check(handle: Option<&Self>) -> Result<&T, c_int> {
        let Some(handle) = handle else {
            return Err(invalid(&format!("{} is NULL", T::WHAT)));
        };
        match (handle.tag, handle.value.as_ref()) {
            (tag, Some(value)) if tag == T::TAG => Ok(value),
            (FREED, _) => Err(invalid(&format!("{} was freed", T::WHAT))),
            _ => Err(invalid(&format!("{} is not a {0} handle", T::WHAT))),
        }
    }

    fn check_mut(handle: Option<&mut Self>) -> Result<&mut T, c_int> {
        let handle = handle.ok_or_else(|| invalid(&format!("{} is NULL", T::WHAT)))?;
        Self::check(Some(&*handle))?;
        handle
            .value
            .as_mut()
            .ok_or_else(|| invalid(&format!("{} was freed", T::WHAT)))
    }

    /// Drops the value behind `handle`, keeping the tagged box; null is
    /// ignored, a freed handle recorded as an invalid argument.
    ///
    /// # Safety
    /// As [`Handle::get`], with no other call on the handle during this
    /// one.
    pub(super) unsafe fn free(handle: *mut Self) {
        if handle.is_null() {
            return;
        }
        // SAFETY: non-null, from `into_raw`, with no other access during
        // the call, by the caller's contract.
        let handle = unsafe { &mut *handle };
        if Self::check_mut(Some(&mut *handle)).is_ok() {
            handle.tag = FREED;
            drop(handle.value.take());
        }
    }
}

/// The loader behind `handle` and the size the caller's versioned struct
/// at `out` says it has (at least `min`), or the code of what is wrong,
/// recorded with `what` (the struct's name): what every function filling
/// such a struct checks first.
///
/// # Safety
/// `handle` as for [`Handle::get`]; `out` is null or valid for reading its
/// leading `usize`.
pub(super) unsafe fn loader_and_size<'a, T>(
    handle: *mut super::smfjit_loader,
    out: *mut T,
    min: usize,
    what: &str,
) -> Result<(&'a crate::Loader, usize), c_int> {
    // SAFETY: forwarded contracts.
    unsafe { Ok((super::loader(handle)?, asked_size(out, min, what)?)) }
}

/// The size a caller's versioned struct at `out` says it has: at least
/// `min`, or `SMFJIT_EINVAL` recorded with `what` (the struct's name).
///
/// # Safety
/// `out` is null or valid for reading its leading `usize`.
unsafe fn asked_size<T>(out: *mut T, min: usize, what: &str) -> Result<usize, c_int> {
    if out.is_null() {
        return Err(invalid(&format!("{what} is NULL")));
    }
    // SAFETY: non-null, and its size field readable by the caller's
    // contract.
    let asked = unsafe { out.cast::<usize>().read_unaligned() };
    if asked < min {
        return Err(invalid(&format!(
            "{what} size {asked} is below {min}: set it to sizeof(struct {what})"
        )));
    }
    Ok(asked)
}

/// Copies the first `filled` bytes of `answer` (whole fields, the size
/// field first) to `out`, then writes `filled` into `out`'s size field.
///
/// # Safety
/// `out` is valid for writes of `filled` bytes, which is at most
/// `size_of::<T>()` and at least a `usize`.
pub(super) unsafe fn fill<T>(out: *mut T, answer: &T, filled: usize) {
    debug_assert!(filled <= size_of::<T>() && filled >= size_of::<usize>());
    // SAFETY: `filled` bytes are readable from `answer` (at most its size)
    // and writable at `out` by the caller's contract; a caller's struct
    // does not overlap the library's local answer.
    unsafe {
        std::ptr::copy_nonoverlapping(std::ptr::from_ref(answer).cast::<u8>(), out.cast(), filled);
        out.cast::<usize>().write_unaligned(filled);
    }
}
