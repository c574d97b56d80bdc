//! GDB's JIT interface ("JIT Compilation Interface" in GDB's manual): the
//! process exports a descriptor, `__jit_debug_descriptor`, heading a
//! doubly linked list of in-memory object files, and an empty function,
//! `__jit_debug_register_code`, on which GDB sets a breakpoint. To
//! announce or withdraw an object the process links or unlinks an entry,
//! points `relevant_entry` at it, sets `action_flag` and calls the
//! function; GDB, stopped there, reads the object from the process's
//! memory.
//!
//! One object describes one published batch (see `debug_object`), never
//! one function: GDB's cost per registration grows with the objects it
//! already holds, so registering each function separately makes loading
//! many of them quadratic. A [`Registration`] lives in the published code
//! and withdraws its object when the code is freed.
//!
//! Unwinding needs no `.eh_frame` here: the functions the backend
//! generates either build a frame with `push rbp; mov rbp, rsp` right
//! after `endbr64` (every function that calls, spills or saves a
//! register), or keep `rsp` at the return address throughout (leaves), the
//! two shapes GDB's x86-64 prologue analyser recognises from a symbol's
//! start; the loader's stubs and thunks build the same `rbp` frame.

use std::ptr;
use std::sync::{Mutex, PoisonError};

/// Environment variable that turns the interface on when set to `1` and
/// the configuration says [`Switch::Environment`](crate::Switch).
pub const DEBUG_ENV: &str = "SMFJIT_DEBUG";

const JIT_NOACTION: u32 = 0;
const JIT_REGISTER_FN: u32 = 1;
const JIT_UNREGISTER_FN: u32 = 2;

/// `struct jit_code_entry` of GDB's manual.
#[repr(C)]
struct CodeEntry {
    next: *mut CodeEntry,
    prev: *mut CodeEntry,
    symfile_addr: *const u8,
    symfile_size: u64,
}

/// `struct jit_descriptor` of GDB's manual.
#[repr(C)]
pub struct Descriptor {
    version: u32,
    action_flag: u32,
    relevant_entry: *mut CodeEntry,
    first_entry: *mut CodeEntry,
}

/// The descriptor GDB looks up by name. Only `update` touches it, with
/// `LOCK` held; GDB reads it while the process is stopped.
#[allow(non_upper_case_globals)]
#[unsafe(no_mangle)]
pub static mut __jit_debug_descriptor: Descriptor = Descriptor {
    version: 1,
    action_flag: JIT_NOACTION,
    relevant_entry: ptr::null_mut(),
    first_entry: ptr::null_mut(),
};

/// The function GDB breaks on to learn that the descriptor changed. Its
/// body is an empty `asm!` block, which the compiler must assume has
/// effects, so neither the function nor calls to it are optimised away.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn __jit_debug_register_code() {
    // SAFETY: an empty instruction sequence: it reads and writes nothing.
    unsafe { std::arch::asm!("", options(nostack, preserves_flags)) };
}

/// Serialises every change to the descriptor's list, from any allocator.
static LOCK: Mutex<()> = Mutex::new(());

/// An object registered with GDB; withdrawn when dropped.
pub(crate) struct Registration {
    /// Boxed so its address, which the list holds, never moves.
    entry: Box<CodeEntry>,
    /// The object the entry points at; never changed while registered.
    _object: Box<[u8]>,
}

// SAFETY: the entry's pointers are only followed or changed by `update`,
// under `LOCK`, and the object is immutable; GDB reads both while the
// process is stopped.
unsafe impl Send for Registration {}
// SAFETY: as for `Send`: `&Registration` gives access to nothing.
unsafe impl Sync for Registration {}

impl Registration {
    /// Links `object` at the head of the list and tells GDB.
    pub(crate) fn new(object: Vec<u8>) -> Self {
        let object = object.into_boxed_slice();
        let mut entry = Box::new(CodeEntry {
            next: ptr::null_mut(),
            prev: ptr::null_mut(),
            symfile_addr: object.as_ptr(),
            symfile_size: object.len() as u64,
        });
        let raw: *mut CodeEntry = &mut *entry;
        // SAFETY: `raw` is a live, unlinked entry (boxed, so it stays where
        // it is until `drop` unlinks it).
        unsafe { update(raw, JIT_REGISTER_FN) };
        Self {
            entry,
            _object: object,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let raw: *mut CodeEntry = &mut *self.entry;
        // SAFETY: `raw` was linked by `new` and is unlinked only here.
        unsafe { update(raw, JIT_UNREGISTER_FN) };
    }
}

/// Links (`JIT_REGISTER_FN`) or unlinks (`JIT_UNREGISTER_FN`) `entry` and
/// calls the breakpoint function, as the protocol says.
///
/// # Safety
///
/// `entry` must be valid; when linking, not yet linked, and it must stay
/// valid until it is unlinked; when unlinking, linked by an earlier call.
unsafe fn update(entry: *mut CodeEntry, action: u32) {
    let _guard = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let descriptor = &raw mut __jit_debug_descriptor;
    // SAFETY: `LOCK` makes this the only code using the descriptor and the
    // list's entries; every linked entry is valid (the caller's contract).
    unsafe {
        if action == JIT_REGISTER_FN {
            let first = (*descriptor).first_entry;
            (*entry).prev = ptr::null_mut();
            (*entry).next = first;
            if !first.is_null() {
                (*first).prev = entry;
            }
            (*descriptor).first_entry = entry;
        } else {
            let (prev, next) = ((*entry).prev, (*entry).next);
            if prev.is_null() {
                (*descriptor).first_entry = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
        }
        (*descriptor).relevant_entry = entry;
        (*descriptor).action_flag = action;
    }
    __jit_debug_register_code();
    // SAFETY: still under `LOCK`.
    unsafe {
        (*descriptor).relevant_entry = ptr::null_mut();
        (*descriptor).action_flag = JIT_NOACTION;
    }
}

/// How many objects are registered now (for tests).
#[cfg(test)]
pub(crate) fn registered() -> usize {
    let _guard = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let mut count = 0;
    // SAFETY: under `LOCK`; every linked entry is valid.
    unsafe {
        let descriptor = &raw const __jit_debug_descriptor;
        let mut entry = (*descriptor).first_entry;
        while !entry.is_null() {
            count += 1;
            entry = (*entry).next;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_link_at_the_head_and_unlink_from_anywhere() {
        let before = registered();
        let a = Registration::new(vec![1]);
        let b = Registration::new(vec![2, 2]);
        let c = Registration::new(vec![3, 3, 3]);
        assert_eq!(registered(), before + 3);
        drop(b);
        drop(a);
        let d = Registration::new(vec![4]);
        drop(c);
        drop(d);
        assert_eq!(registered(), before, "every object withdrawn");
    }
}
