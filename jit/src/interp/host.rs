//! The interpreter's only contact with the host: reading and writing
//! memory at addresses the program computed, and calling native code.
//!
//! Native calls use a property of the System V x86-64 ABI: integer-class
//! and float arguments are assigned to their own register sequences
//! independently and in order (rdi, rsi, rdx, rcx, r8, r9; xmm0–xmm7).
//! Calling any function whose parameters fit in registers through
//! `extern "C" fn(u64 ×6, f64 ×8)` therefore places each argument where the
//! callee looks for it; the unused registers hold zeros the callee ignores.
//! An `f32` argument travels as an `f64` whose low 32 bits are the `f32`'s
//! bits (the callee reads only the low lane), and an `f32` result is the
//! low 32 bits of xmm0. Integer results come back in rax; the caller keeps
//! only the declared width. Variadic callees are not supported (al is not
//! set), and the verifier rejects signatures needing the stack.

/// Reads `size` (1, 2, 4 or 8) bytes at `addr`, zero-extended.
///
/// # Safety
///
/// `addr..addr + size` must be readable memory.
pub(super) unsafe fn load(addr: u64, size: u64) -> u64 {
    let p = addr as usize as *const u8;
    // SAFETY: the caller guarantees `size` readable bytes at `p`; unaligned
    // reads are used because IR pointers carry no alignment promise.
    unsafe {
        match size {
            1 => u64::from(p.read()),
            2 => u64::from(p.cast::<u16>().read_unaligned()),
            4 => u64::from(p.cast::<u32>().read_unaligned()),
            _ => p.cast::<u64>().read_unaligned(),
        }
    }
}

/// Writes the low `size` (1, 2, 4 or 8) bytes of `value` at `addr`.
///
/// # Safety
///
/// `addr..addr + size` must be writable memory.
pub(super) unsafe fn store(addr: u64, size: u64, value: u64) {
    let p = addr as usize as *mut u8;
    // SAFETY: the caller guarantees `size` writable bytes at `p`; the
    // truncating casts keep exactly the bytes being stored.
    unsafe {
        match size {
            1 => p.write(value as u8),
            2 => p.cast::<u16>().write_unaligned(value as u16),
            4 => p.cast::<u32>().write_unaligned(value as u32),
            _ => p.cast::<u64>().write_unaligned(value),
        }
    }
}

/// Register contents for a native call.
pub(super) struct NativeArgs {
    /// rdi, rsi, rdx, rcx, r8, r9.
    pub ints: [u64; 6],
    /// xmm0–xmm7, as raw bits.
    pub floats: [u64; 8],
}

/// Calls native code at `addr` and returns rax, or xmm0's low 64 bits when
/// `float_ret` is set.
///
/// # Safety
///
/// `addr` must be the entry of a non-variadic System V function whose
/// parameters are exactly the used argument registers and whose pointer
/// arguments satisfy its contract.
#[cfg(all(target_arch = "x86_64", not(windows)))]
pub(super) unsafe fn call_native(
    addr: u64,
    args: &NativeArgs,
    float_ret: bool,
) -> Result<u64, crate::Error> {
    type IntFn =
        extern "C" fn(u64, u64, u64, u64, u64, u64, f64, f64, f64, f64, f64, f64, f64, f64) -> u64;
    type FloatFn =
        extern "C" fn(u64, u64, u64, u64, u64, u64, f64, f64, f64, f64, f64, f64, f64, f64) -> f64;
    let [a, b, c, d, e, g] = args.ints;
    let [x0, x1, x2, x3, x4, x5, x6, x7] = args.floats.map(f64::from_bits);
    if addr == 0 {
        return Err(crate::Error::new(crate::ErrorKind::Trap(
            crate::TrapKind::NullPointer,
        )));
    }
    if float_ret {
        // SAFETY: the caller guarantees `addr` is a System V function taking
        // its arguments in these registers (see the module comment for why
        // the wider signature is compatible); returning in xmm0.
        let f: FloatFn = unsafe { std::mem::transmute::<usize, FloatFn>(addr as usize) };
        Ok(f(a, b, c, d, e, g, x0, x1, x2, x3, x4, x5, x6, x7).to_bits())
    } else {
        // SAFETY: as above, returning in rax (or nothing, leaving rax unused).
        let f: IntFn = unsafe { std::mem::transmute::<usize, IntFn>(addr as usize) };
        Ok(f(a, b, c, d, e, g, x0, x1, x2, x3, x4, x5, x6, x7))
    }
}

/// Native calls need the System V x86-64 convention.
///
/// # Safety
///
/// Always safe: it only reports the missing support.
#[cfg(not(all(target_arch = "x86_64", not(windows))))]
pub(super) unsafe fn call_native(_: u64, _: &NativeArgs, _: bool) -> Result<u64, crate::Error> {
    Err(crate::Error::new(crate::ErrorKind::NativeUnsupported))
}
