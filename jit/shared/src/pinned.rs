//! Ownership of a descriptor at an address that never changes.

use std::fmt;
use std::ptr::NonNull;

/// Owns a `T` on the heap at a fixed address, like a `Box<T>` that is never
/// moved out of and never reborrowed mutably: compiled code and the
/// interpreter hold the address as an integer, so the value is reached
/// only through shared references for as long as it lives. (A `Box`
/// would claim unique access each time the owner moved, which raw
/// pointers held elsewhere may not outlive.)
pub(crate) struct Pinned<T> {
    pointer: NonNull<T>,
}

// SAFETY: a `Pinned<T>` owns its `T` as a `Box<T>` does, and only ever hands
// out `&T`; sending it sends the `T` and sharing it shares `&T`.
unsafe impl<T: Send + Sync> Send for Pinned<T> {}
// SAFETY: see `Send`.
unsafe impl<T: Sync> Sync for Pinned<T> {}

impl<T> Pinned<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            pointer: NonNull::from(Box::leak(Box::new(value))),
        }
    }

    pub(crate) fn get(&self) -> &T {
        // SAFETY: the pointer came from `Box::leak` and is freed only in
        // `drop`; no `&mut T` is ever made, so a shared reference is valid
        // for as long as `self` is borrowed.
        unsafe { self.pointer.as_ref() }
    }

    pub(crate) fn as_ptr(&self) -> *const T {
        self.pointer.as_ptr().cast_const()
    }

    /// The address, exposed so that it may be used as an integer.
    pub(crate) fn address(&self) -> u64 {
        // usize is at most 64 bits on every supported target.
        self.pointer.as_ptr().expose_provenance() as u64
    }
}

impl<T> Drop for Pinned<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` and this is the only
        // place that frees it; every reference handed out borrowed `self`.
        drop(unsafe { Box::from_raw(self.pointer.as_ptr()) });
    }
}

impl<T: fmt::Debug> fmt::Debug for Pinned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}
