//! Lazy binding: an import is resolved (and instantiated, if need be) on
//! its first call instead of at load.
//!
//! Each lazily bound import of a module gets:
//! - a slot in the module's read-write data, holding where calls go;
//! - a PLT entry in its code, `jmp [rip+slot]`, which its `plt32` call
//!   sites call (its `gotpcrel` sites use the slot directly);
//! - a binding stub in its code, `mov r11, descriptor; jmp resolver`, whose
//!   address the slot holds until the import is bound.
//!
//! The resolver trampoline, one per loader, saves every register an
//! argument may be in (rdi, rsi, rdx, rcx, r8, r9, rax for the vector
//! count of variadic calls, r10, and xmm0–xmm7 — the whole ymm registers
//! when the CPU has AVX), aligns the stack, calls [`bind`] with the
//! descriptor, restores everything and jumps to the bound address: the
//! original call continues as if it had gone there directly, and its
//! return comes back to the call site. The bytes of the trampoline, the
//! PLT entries and the stubs are the backend's (`jit::backend::lazy`);
//! this module owns the descriptors and what binding does. Later calls go through the patched
//! slot straight to the target. Only function imports reached by `plt32`
//! or `gotpcrel` bind lazily; any other use of a symbol (an address taken
//! with `abs64` or `pc32`, a data import) binds it at load.
//!
//! A lazy import that cannot be resolved when first called has nowhere to
//! report an error to: like the system's dynamic linker, the process
//! prints the reason and aborts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, Result};
use crate::resolution::Address;

pub(crate) use jit::backend::lazy::{ENTRY_SIZE, STUB_OFFSET};

/// What keeps a bound target mapped while the importing module lives (the
/// exporting module, an instantiation's code, the native libraries). Lazy
/// binding only holds it, so it need not know which.
pub(crate) type KeepAlive = Box<dyn Send + Sync>;

/// Resolves imports for lazy binding on behalf of a loader that may be gone.
pub(crate) trait Binder: Send + Sync {
    /// Resolves `name` and, when something defines it, hands its address
    /// and what keeps it alive to `store` before anything can replace it
    /// (no reload runs until `store` returns); `Ok(false)` when nothing
    /// defines it.
    fn bind(&self, name: &str, store: &mut dyn FnMut(Address, KeepAlive)) -> Result<bool>;
}

/// What a binding stub hands the resolver: which import, and where its
/// slot is. Boxed by the module, so its address is stable while the module
/// (and so its stubs) lives.
pub(crate) struct LazyImport {
    name: Box<str>,
    /// Address of the 8-byte slot in the module's read-write data.
    slot: usize,
    /// Address of the binding stub, which the slot holds until bound.
    stub: usize,
    binder: Arc<dyn Binder>,
    /// The bound target's keep-alive and address, once bound.
    bound: Mutex<Option<(KeepAlive, usize)>>,
}

impl std::fmt::Debug for LazyImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyImport")
            .field("name", &self.name)
            .field("slot", &format_args!("{:#x}", self.slot))
            .field("bound", &self.bound_address())
            .finish()
    }
}

impl LazyImport {
    pub(crate) fn new(name: &str, slot: usize, stub: usize, binder: Arc<dyn Binder>) -> Self {
        Self {
            name: name.into(),
            slot,
            stub,
            binder,
            bound: Mutex::new(None),
        }
    }

    /// The import's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The address it was bound to, once its first call happened.
    pub(crate) fn bound_address(&self) -> Option<usize> {
        let bound = self.bound.lock().unwrap_or_else(PoisonError::into_inner);
        bound.as_ref().map(|(_, address)| *address)
    }

    fn bind_now(&self) -> Result<usize> {
        if let Some(address) = self.bound_address() {
            return Ok(address);
        }
        // The binder holds off reloads while it resolves and stores, and
        // `bound` is locked only inside: a reload, which unbinds under
        // `bound` after holding off new bindings, never waits for a
        // binding that waits for it.
        let mut result = None;
        let defined = self.binder.bind(&self.name, &mut |address, keep| {
            let mut bound = self.bound.lock().unwrap_or_else(PoisonError::into_inner);
            // Another thread bound it meanwhile: its binding stands.
            if let Some((_, earlier)) = bound.as_ref() {
                result = Some(*earlier);
                return;
            }
            self.slot().store(address.get(), Ordering::Release);
            *bound = Some((keep, address.get()));
            result = Some(address.get());
        })?;
        match result {
            Some(address) if defined => Ok(address),
            _ => Err(Error::Unresolved {
                name: self.name.to_string(),
                detail: " (bound lazily, at its first call)".to_owned(),
            }),
        }
    }

    /// Points the import back at its binding stub when it is bound to
    /// an address `stale` says is gone (a reload replaced what it was
    /// bound to), so that its next call binds it again; returns what kept
    /// the old target alive, for the caller to keep until no thread can be
    /// running it any more.
    pub(crate) fn unbind_if(&self, stale: impl FnOnce(usize) -> bool) -> Option<KeepAlive> {
        let mut bound = self.bound.lock().unwrap_or_else(PoisonError::into_inner);
        if !stale(bound.as_ref()?.1) {
            return None;
        }
        // A call reading the slot before this store still reaches the old
        // target (kept alive by the caller); one reading it after binds.
        self.slot().store(self.stub, Ordering::Release);
        bound.take().map(|(keep, _)| keep)
    }

    fn slot(&self) -> &AtomicUsize {
        // SAFETY: `slot` is an 8-aligned 8-byte cell in the read-write data
        // map of the module that owns this descriptor; the map lives as long
        // as the module, hence as long as this descriptor. Generated code
        // only ever reads it, and every write goes through an atomic, so
        // concurrent first calls (and a reload unbinding it) race benignly.
        unsafe { AtomicUsize::from_ptr(self.slot as *mut usize) }
    }
}

/// Called by the trampoline with the descriptor of the import being called;
/// returns the address to continue at.
///
/// # Safety
/// `import` points to a live [`LazyImport`]: the trampoline passes the
/// pointer a binding stub embedded, and the stub's module (which owns the
/// descriptor) is running, so it is alive.
unsafe extern "C" fn bind(import: *const LazyImport) -> usize {
    // SAFETY: by the function's contract.
    let import = unsafe { &*import };
    match import.bind_now() {
        Ok(address) => address,
        Err(error) => {
            eprintln!(
                "smfjit: cannot bind '{}' at its first call: {error}",
                import.name
            );
            std::process::abort();
        }
    }
}

/// The resolver trampoline for this CPU, calling [`bind`].
pub(crate) fn trampoline(avx: bool) -> Vec<u8> {
    jit::backend::lazy::resolver_trampoline(avx, bind as *const () as u64)
}

/// The PLT entry and binding stub of one import (see
/// `jit::backend::lazy::entry`); `None` when the slot is out of reach.
pub(crate) fn entry(
    entry: usize,
    slot: usize,
    descriptor: usize,
    trampoline: usize,
) -> Option<[u8; ENTRY_SIZE]> {
    jit::backend::lazy::entry(
        entry as u64,
        slot as u64,
        descriptor as u64,
        trampoline as u64,
    )
}
