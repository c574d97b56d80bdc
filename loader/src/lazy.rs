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
//! return comes back to the call site. Later calls go through the patched
//! slot straight to the target. Only function imports reached by `plt32`
//! or `gotpcrel` bind lazily; any other use of a symbol (an address taken
//! with `abs64` or `pc32`, a data import) binds it at load.
//!
//! A lazy import that cannot be resolved when first called has nowhere to
//! report an error to: like the system's dynamic linker, the process
//! prints the reason and aborts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use iced_x86::code_asm::{
    CodeAssembler, r8, r9, r10, r11, rax, rbp, rcx, rdi, rdx, rsi, rsp, xmmword_ptr, ymmword_ptr,
};
use iced_x86::code_asm::{xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7};
use iced_x86::code_asm::{ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7};

use crate::error::{Error, Result};
use crate::resolution::Address;

/// Bytes of one lazily bound import in code: the PLT entry (6 bytes, padded
/// to 8) and the binding stub (24 bytes).
pub(crate) const ENTRY_SIZE: usize = 32;
/// Offset of the binding stub inside an entry.
pub(crate) const STUB_OFFSET: usize = 8;

/// What keeps a bound target mapped while the importing module lives (the
/// exporting module, an instantiation's code, the native libraries). Lazy
/// binding only holds it, so it need not know which.
pub(crate) type KeepAlive = Box<dyn Send + Sync>;

/// Resolves imports for lazy binding on behalf of a loader that may be gone.
pub(crate) trait Binder: Send + Sync {
    /// The import's address and what keeps it alive, or `None` when nothing
    /// defines it.
    fn bind(&self, name: &str) -> Result<Option<(Address, KeepAlive)>>;
}

/// What a binding stub hands the resolver: which import, and where its
/// slot is. Boxed by the module, so its address is stable while the module
/// (and so its stubs) lives.
pub(crate) struct LazyImport {
    name: Box<str>,
    /// Address of the 8-byte slot in the module's read-write data.
    slot: usize,
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
    pub(crate) fn new(name: &str, slot: usize, binder: Arc<dyn Binder>) -> Self {
        Self {
            name: name.into(),
            slot,
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
        let mut bound = self.bound.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, address)) = bound.as_ref() {
            return Ok(*address);
        }
        let (address, keep) = self
            .binder
            .bind(&self.name)?
            .ok_or_else(|| Error::Unresolved {
                name: self.name.to_string(),
                detail: " (bound lazily, at its first call)".to_owned(),
            })?;
        // SAFETY: `slot` is an 8-aligned 8-byte cell in the read-write data
        // map of the module that owns this descriptor; the map lives as long
        // as the module, hence as long as this descriptor. Generated code
        // only ever reads it, and every write goes through an atomic, so
        // concurrent first calls race benignly.
        let slot = unsafe { AtomicUsize::from_ptr(self.slot as *mut usize) };
        slot.store(address.get(), Ordering::Release);
        *bound = Some((keep, address.get()));
        Ok(address.get())
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

/// Assembles the resolver trampoline (see the module documentation).
pub(crate) fn trampoline(avx: bool) -> std::result::Result<Vec<u8>, iced_x86::IcedError> {
    let integer = [rdi, rsi, rdx, rcx, r8, r9, rax, r10];
    let xmm = [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7];
    let ymm = [ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7];
    let width: usize = if avx { 32 } else { 16 };
    let area = (width * 8) as i32;
    let mut a = CodeAssembler::new(64)?;
    a.endbr64()?;
    // On entry rsp is 8 off 16-byte alignment (the caller's return address);
    // rbp brings it back, and 8 pushes and the save area keep it.
    a.push(rbp)?;
    a.mov(rbp, rsp)?;
    for register in integer {
        a.push(register)?;
    }
    a.sub(rsp, area)?;
    for i in 0..8 {
        let at = (i * width) as i32;
        if avx {
            a.vmovdqu(ymmword_ptr(rsp + at), ymm[i])?;
        } else {
            a.movdqu(xmmword_ptr(rsp + at), xmm[i])?;
        }
    }
    a.mov(rdi, r11)?;
    a.mov(rax, bind as *const () as u64)?;
    a.call(rax)?;
    a.mov(r11, rax)?;
    for i in 0..8 {
        let at = (i * width) as i32;
        if avx {
            a.vmovdqu(ymm[i], ymmword_ptr(rsp + at))?;
        } else {
            a.movdqu(xmm[i], xmmword_ptr(rsp + at))?;
        }
    }
    a.add(rsp, area)?;
    for register in integer.into_iter().rev() {
        a.pop(register)?;
    }
    a.pop(rbp)?;
    a.jmp(r11)?;
    a.assemble(0)
}

/// The PLT entry and binding stub of one import, for an entry placed at
/// `entry` whose slot is at `slot`.
///
/// # Errors
/// [`None`] when the slot is out of `rel32` reach of the entry.
pub(crate) fn entry(
    entry: usize,
    slot: usize,
    descriptor: usize,
    trampoline: usize,
) -> Option<[u8; ENTRY_SIZE]> {
    let mut bytes = [0xCCu8; ENTRY_SIZE];
    // jmp [rip + slot]: the displacement counts from the end of the 6 bytes.
    let displacement =
        i32::try_from(i128::from(slot as u64) - i128::from(entry as u64) - 6).ok()?;
    bytes[..2].copy_from_slice(&[0xFF, 0x25]);
    bytes[2..6].copy_from_slice(&displacement.to_le_bytes());
    // mov r11, descriptor; jmp [rip + 0]; the trampoline's address.
    let stub = &mut bytes[STUB_OFFSET..];
    stub[..2].copy_from_slice(&[0x49, 0xBB]);
    stub[2..10].copy_from_slice(&(descriptor as u64).to_le_bytes());
    stub[10..16].copy_from_slice(&[0xFF, 0x25, 0, 0, 0, 0]);
    stub[16..24].copy_from_slice(&(trampoline as u64).to_le_bytes());
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampolines_assemble_with_and_without_avx() {
        let plain = trampoline(false).unwrap();
        let wide = trampoline(true).unwrap();
        assert_eq!(
            &plain[..4],
            &[0xF3, 0x0F, 0x1E, 0xFA],
            "starts with endbr64"
        );
        assert_eq!(&wide[..4], &[0xF3, 0x0F, 0x1E, 0xFA]);
        assert_eq!(
            &plain[plain.len() - 3..],
            &[0x41, 0xFF, 0xE3],
            "ends with jmp r11"
        );
        assert_ne!(plain, wide);
    }

    #[test]
    fn entry_jumps_through_its_slot_and_stub_loads_the_descriptor() {
        let bytes = entry(0x1000, 0x3000, 0xAABB, 0x5000).unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0x25]);
        assert_eq!(
            i32::from_le_bytes(bytes[2..6].try_into().unwrap()),
            0x3000 - 0x1006
        );
        assert_eq!(&bytes[8..10], &[0x49, 0xBB]);
        assert_eq!(
            u64::from_le_bytes(bytes[10..18].try_into().unwrap()),
            0xAABB
        );
        assert_eq!(&bytes[18..24], &[0xFF, 0x25, 0, 0, 0, 0]);
        assert_eq!(
            u64::from_le_bytes(bytes[24..32].try_into().unwrap()),
            0x5000
        );
        assert!(entry(0, 1 << 40, 0, 0).is_none());
    }
}
