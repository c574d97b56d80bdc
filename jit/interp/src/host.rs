//! The interpreter's only contact with the host: reading and writing
//! memory at addresses the program computed, and calling native code.
//!
//! Every such access goes through a [`Host`], a token that only the unsafe
//! entry points [`Interpreter::call`] and [`Interpreter::call_symbol`]
//! create, after their caller vouched for the program's addresses. The
//! rest of the interpreter is safe code that holds the token.
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

use std::sync::Arc;

use jit_ir::ir::Function;
use jit_ir::{Error, ErrorKind, TrapKind};

use crate::{Interpreter, NativeCalls, Value};

/// Integer argument registers of a native call: rdi, rsi, rdx, rcx, r8, r9.
pub const INT_ARGUMENT_REGISTERS: usize = 6;
/// Float argument registers of a native call: xmm0–xmm7.
pub const FLOAT_ARGUMENT_REGISTERS: usize = 8;

impl Interpreter<'_> {
    /// Runs `func` (a concrete, verified function) with `args`.
    ///
    /// # Safety
    ///
    /// The program dereferences whatever addresses it computes and calls
    /// whatever native functions the resolver hands out: every pointer
    /// argument must be valid for the accesses the function makes (as for
    /// the equivalent compiled code), and every native target must have the
    /// signature the call site declares.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ArgumentType`] / [`ErrorKind::ArgCount`] for arguments
    /// not matching the signature, [`ErrorKind::Trap`] with the location of
    /// the trapping instruction, [`ErrorKind::OutOfFuel`],
    /// [`ErrorKind::CallDepth`], resolver errors, and structural errors if
    /// the function was not verified.
    pub unsafe fn call(
        &self,
        func: &Arc<Function>,
        args: &[Value],
    ) -> Result<Option<Value>, Error> {
        self.call_in(Host(()), crate::prepared::code(func), args)
    }

    /// Resolves `symbol` and calls it with `args`.
    ///
    /// # Safety
    ///
    /// As [`Interpreter::call`].
    ///
    /// # Errors
    ///
    /// As [`Interpreter::call`], and the resolver's errors.
    pub unsafe fn call_symbol(&self, symbol: &str, args: &[Value]) -> Result<Option<Value>, Error> {
        self.call_symbol_in(Host(()), symbol, args)
    }
}

/// Leave to touch the host's memory and call its native code, for one run
/// whose caller vouched for every address the program uses (the contract
/// of [`Interpreter::call`]). Only that entry point makes one.
#[derive(Clone, Copy)]
pub(crate) struct Host(());

/// Register contents for a native call.
#[derive(Default)]
pub(crate) struct NativeArgs {
    /// rdi, rsi, rdx, rcx, r8, r9.
    pub ints: [u64; INT_ARGUMENT_REGISTERS],
    /// xmm0–xmm7, as raw bits.
    pub floats: [u64; FLOAT_ARGUMENT_REGISTERS],
}

/// The memory descriptor at the address a resolver handed out.
fn memory(desc: u64) -> *const jit_shared::MemoryDescriptor {
    std::ptr::with_exposed_provenance(desc as usize)
}

/// The table descriptor at the address a resolver handed out.
fn table(desc: u64) -> *const jit_shared::TableDescriptor {
    std::ptr::with_exposed_provenance(desc as usize)
}

#[cold]
fn out_of_bounds() -> Error {
    Error::new(ErrorKind::Trap(TrapKind::OutOfBounds))
}

impl Host {
    /// Reads `size` (1, 2, 4 or 8) bytes at `addr`, zero-extended.
    pub(crate) fn load(self, addr: u64, size: u64) -> u64 {
        let p = addr as usize as *const u8;
        // SAFETY: a `Host` exists only inside a run whose caller guaranteed
        // the program's accesses are valid; unaligned reads are used because
        // IR pointers carry no alignment promise.
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
    pub(crate) fn store(self, addr: u64, size: u64, value: u64) {
        let p = addr as usize as *mut u8;
        // SAFETY: as for `load`; the truncating casts keep exactly the
        // bytes being stored.
        unsafe {
            match size {
                1 => p.write(value as u8),
                2 => p.cast::<u16>().write_unaligned(value as u16),
                4 => p.cast::<u32>().write_unaligned(value as u32),
                _ => p.cast::<u64>().write_unaligned(value),
            }
        }
    }

    /// Reads `size` bytes at `offset` of the shared memory whose
    /// descriptor is at `desc`, zero-extended; past its length, the
    /// `OutOfBounds` trap.
    pub(crate) fn mem_load(self, desc: u64, offset: u64, size: u64) -> Result<u64, Error> {
        let mut bytes = [0u8; 8];
        let out = bytes.get_mut(..size as usize).unwrap_or_default();
        // SAFETY: the resolver handed out `desc` as a live descriptor (its
        // contract, vouched for by the run's caller).
        unsafe { jit_shared::load_bytes(memory(desc), offset, out) }
            .map_err(|_| out_of_bounds())?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Writes the low `size` bytes of `value` at `offset` of the shared
    /// memory at `desc`; past its length, the `OutOfBounds` trap.
    pub(crate) fn mem_store(
        self,
        desc: u64,
        offset: u64,
        size: u64,
        value: u64,
    ) -> Result<(), Error> {
        let bytes = value.to_le_bytes();
        let bytes = bytes.get(..size as usize).unwrap_or_default();
        // SAFETY: as for `mem_load`.
        unsafe { jit_shared::store_bytes(memory(desc), offset, bytes) }.map_err(|_| out_of_bounds())
    }

    /// The size in pages of the shared memory at `desc`.
    pub(crate) fn mem_size(self, desc: u64) -> u64 {
        // SAFETY: as for `mem_load`.
        unsafe { &*memory(desc) }.size_pages()
    }

    /// Grows the shared memory at `desc` by `delta` pages: the old size,
    /// or −1.
    pub(crate) fn mem_grow(self, desc: u64, delta: i64) -> i64 {
        // SAFETY: as for `mem_load`.
        unsafe { jit_shared::memory_grow(memory(desc), delta) }
    }

    /// Entry `index` of the shared table at `desc`; past its length, the
    /// `OutOfBounds` trap.
    pub(crate) fn table_get(self, desc: u64, index: u64) -> Result<u64, Error> {
        // SAFETY: as for `mem_load`.
        unsafe { jit_shared::table_get(table(desc), index) }.map_err(|_| out_of_bounds())
    }

    /// Sets entry `index` of the shared table at `desc`; past its length,
    /// the `OutOfBounds` trap.
    pub(crate) fn table_set(self, desc: u64, index: u64, value: u64) -> Result<(), Error> {
        // SAFETY: as for `mem_load`.
        unsafe { jit_shared::table_set(table(desc), index, value) }.map_err(|_| out_of_bounds())
    }

    /// The length in entries of the shared table at `desc`.
    pub(crate) fn table_size(self, desc: u64) -> u64 {
        // SAFETY: as for `mem_load`.
        unsafe { &*table(desc) }.len()
    }

    /// Grows the shared table at `desc` by `delta` null entries: the old
    /// length, or −1.
    pub(crate) fn table_grow(self, desc: u64, delta: i64) -> i64 {
        // SAFETY: as for `mem_load`.
        unsafe { jit_shared::table_grow(table(desc), delta) }
    }

    /// Calls native code at `addr` and returns rax, or xmm0's low 64 bits
    /// when `float_ret` is set. The resolver that handed out `addr` vouches
    /// (under the run's contract) that it is a non-variadic System V
    /// function whose parameters are exactly the used argument registers.
    #[cfg(all(target_arch = "x86_64", not(windows)))]
    pub(crate) fn call_native(
        self,
        addr: u64,
        args: &NativeArgs,
        float_ret: bool,
    ) -> Result<u64, Error> {
        type IntFn = extern "C" fn(
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
        ) -> u64;
        type FloatFn = extern "C" fn(
            u64,
            u64,
            u64,
            u64,
            u64,
            u64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
            f64,
        ) -> f64;
        let [a, b, c, d, e, g] = args.ints;
        let [x0, x1, x2, x3, x4, x5, x6, x7] = args.floats.map(f64::from_bits);
        if addr == 0 {
            return Err(Error::new(ErrorKind::Trap(TrapKind::NullPointer)));
        }
        if float_ret {
            // SAFETY: `addr` is a System V function taking its arguments in
            // these registers (see the module comment for why the wider
            // signature is compatible); returning in xmm0.
            let f: FloatFn = unsafe { std::mem::transmute::<usize, FloatFn>(addr as usize) };
            Ok(f(a, b, c, d, e, g, x0, x1, x2, x3, x4, x5, x6, x7).to_bits())
        } else {
            // SAFETY: as above, returning in rax (or nothing, leaving rax unused).
            let f: IntFn = unsafe { std::mem::transmute::<usize, IntFn>(addr as usize) };
            Ok(f(a, b, c, d, e, g, x0, x1, x2, x3, x4, x5, x6, x7))
        }
    }

    /// Calls native code at `addr` through the embedder's [`NativeCalls`]:
    /// a trap it reports becomes the interpreter's trap error.
    pub(crate) fn call_through(
        self,
        natives: &dyn NativeCalls,
        addr: u64,
        args: &NativeArgs,
        float_ret: bool,
    ) -> Result<u64, Error> {
        if addr == 0 {
            return Err(Error::new(ErrorKind::Trap(TrapKind::NullPointer)));
        }
        // SAFETY: a `Host` exists only inside a run whose caller vouched
        // for every address the program uses, which is `NativeCalls::call`'s
        // contract; the resolver handed out `addr` as such a function.
        let [rax, xmm0] = unsafe { natives.call(addr, &args.ints, &args.floats) }
            .map_err(|trap| Error::new(ErrorKind::Trap(trap)))?;
        Ok(if float_ret { xmm0 } else { rax })
    }

    /// Native calls need the System V x86-64 convention.
    #[cfg(not(all(target_arch = "x86_64", not(windows))))]
    pub(crate) fn call_native(self, _: u64, _: &NativeArgs, _: bool) -> Result<u64, Error> {
        Err(Error::new(ErrorKind::NativeUnsupported))
    }
}
