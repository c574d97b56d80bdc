//! Calling generated code and getting traps back as values.
//!
//! [`TrapRuntime`] owns two small generated functions. The *entry shim*
//! saves the callee-saved registers, records its stack pointer in a
//! [`GuardFrame`] on the Rust caller's stack, loads the six integer and
//! eight float argument registers from arrays and calls the target. The
//! *trap handler* — the address compiled functions call on a trap — asks
//! Rust for the current thread's innermost guard frame, stores the trap
//! kind and code there, resets the stack pointer to the one recorded and
//! returns from the shim with status 1, discarding the generated frames
//! in between (they own nothing). Outside any guard the handler reports
//! the trap on stderr and aborts the process: deterministic, never a jump
//! into nowhere.
//!
//! Traps are only caught across generated frames: a trap inside generated
//! code called back from native code that owns resources would skip that
//! native code's cleanup, so such embedders install their own handler.

#![allow(unsafe_code)]

use std::cell::Cell;

use iced_x86::{Code, Register};

use super::asm::Asm;
use super::emit::{Cc, Fixed, encode};
use super::inst::{Imm, Ins, Mem};
use super::regalloc::INT_ARGS;
use super::{Error, lower};
use jit_ir::TrapKind;
use jit_ir::ir::Signature;
use jit_ir::value::Value;

/// Where the shim records how to get back, and where a trap is reported.
#[repr(C)]
#[derive(Debug, Default)]
struct GuardFrame {
    /// Stack pointer inside the shim, after its prologue.
    saved_rsp: u64,
    /// Trap kind written by the handler.
    kind: u32,
    /// Trap code written by the handler.
    code: u32,
}

thread_local! {
    static GUARD: Cell<*mut GuardFrame> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn current_guard() -> *mut GuardFrame {
    GUARD.with(Cell::get)
}

extern "C" fn unguarded_trap(kind: u32, code: u32) -> ! {
    eprintln!(
        "fatal: generated code trapped outside a guarded call: {}",
        trap_kind(kind, code)
    );
    std::process::abort()
}

fn trap_kind(kind: u32, code: u32) -> TrapKind {
    match kind {
        lower::TRAP_DIVIDE_BY_ZERO => TrapKind::DivideByZero,
        lower::TRAP_NULL_POINTER => TrapKind::NullPointer,
        lower::TRAP_OUT_OF_BOUNDS => TrapKind::OutOfBounds,
        _ => TrapKind::Explicit(code),
    }
}

/// The handler's arguments for `trap`: the inverse of [`trap_kind`].
fn trap_args(trap: TrapKind) -> (u32, u32) {
    match trap {
        TrapKind::DivideByZero => (lower::TRAP_DIVIDE_BY_ZERO, 0),
        TrapKind::NullPointer => (lower::TRAP_NULL_POINTER, 0),
        TrapKind::OutOfBounds => (lower::TRAP_OUT_OF_BOUNDS, 0),
        TrapKind::Explicit(code) => (lower::TRAP_EXPLICIT, code),
    }
}

/// A trap reported by generated code: the interpreter's [`TrapKind`].
pub type Trap = TrapKind;

type Shim = unsafe extern "C" fn(*mut GuardFrame, u64, *const u64, *const u64, *mut u64) -> u32;

const SAVED: [Register; 6] = [
    Register::RBP,
    Register::RBX,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];

/// The entry shim and trap handler, published once and shared.
#[derive(Debug)]
pub struct TrapRuntime {
    code: execmem::PublishedCode,
    shim: usize,
    handler: usize,
    /// Whether the process's fault handler turns null accesses of
    /// generated code into traps (`fault.rs`).
    null_faults: bool,
}

fn q(base: Register, disp: i32) -> Mem {
    Mem::base_disp(base, disp)
}

/// Restores the shim's frame from its recorded stack pointer and returns
/// `status` from it.
fn shim_return(a: &mut Asm, status: u32) {
    a.reg_imm(Code::Mov_r32_imm32, Register::EAX, None, Imm::U32(status));
    a.reg_imm(Code::Add_rm64_imm8, Register::RSP, None, Imm::S8to64(8));
    for &r in SAVED.iter().rev() {
        a.fixed(Fixed::pop(r));
    }
    a.fixed(Fixed::ret());
}

fn shim_code() -> Asm {
    let mut a = Asm::new(64);
    a.fixed(Fixed::endbr64());
    for &r in &SAVED {
        a.fixed(Fixed::push(r));
    }
    // Return address + six pushes = 56 bytes: 8 more keeps calls aligned.
    a.reg_imm(Code::Sub_rm64_imm8, Register::RSP, None, Imm::S8to64(8));
    a.mov(Register::RBX, Register::RDI);
    a.mov(Register::R12, Register::R8);
    a.push(Ins::with2(
        Code::Mov_rm64_r64,
        q(Register::RBX, 0),
        Register::RSP,
    ));
    a.mov(Register::RAX, Register::RSI);
    a.mov(Register::R10, Register::RDX);
    a.mov(Register::R11, Register::RCX);
    for k in 0..8u32 {
        a.push(Ins::with2(
            Code::Movsd_xmm_xmmm64,
            Register::XMM0 + k,
            q(Register::R11, k as i32 * 8),
        ));
    }
    for (k, &r) in INT_ARGS.iter().enumerate() {
        a.push(Ins::with2(
            Code::Mov_r64_rm64,
            r,
            q(Register::R10, k as i32 * 8),
        ));
    }
    a.push(Ins::with1(Code::Call_rm64, Register::RAX));
    a.push(Ins::with2(
        Code::Mov_rm64_r64,
        q(Register::R12, 0),
        Register::RAX,
    ));
    a.push(Ins::with2(
        Code::Movsd_xmmm64_xmm,
        q(Register::R12, 8),
        Register::XMM0,
    ));
    shim_return(&mut a, 0);
    a
}

fn handler_code() -> Asm {
    let mut a = Asm::new(32);
    let guard = a.constant(current_guard as *const () as usize as u64);
    let fatal = a.constant(unguarded_trap as *const () as usize as u64);
    a.fixed(Fixed::endbr64());
    // The trapping frames are abandoned, so any register may be used.
    a.push(Ins::with2(Code::Mov_r32_rm32, Register::EBX, Register::EDI));
    a.push(Ins::with2(
        Code::Mov_r32_rm32,
        Register::R12D,
        Register::ESI,
    ));
    a.reg_imm(Code::Sub_rm64_imm8, Register::RSP, None, Imm::S8to64(8));
    a.pool_op(Ins::with1(Code::Call_rm64, Mem::pool()), guard);
    a.push(Ins::with2(
        Code::Test_rm64_r64,
        Register::RAX,
        Register::RAX,
    ));
    let none = a.label();
    a.jcc(Cc::E, none);
    a.push(Ins::with2(
        Code::Mov_rm32_r32,
        q(Register::RAX, 8),
        Register::EBX,
    ));
    a.push(Ins::with2(
        Code::Mov_rm32_r32,
        q(Register::RAX, 12),
        Register::R12D,
    ));
    a.push(Ins::with2(
        Code::Mov_r64_rm64,
        Register::RSP,
        q(Register::RAX, 0),
    ));
    shim_return(&mut a, 1);
    a.bind(none);
    a.push(Ins::with2(Code::Mov_r32_rm32, Register::EDI, Register::EBX));
    a.push(Ins::with2(
        Code::Mov_r32_rm32,
        Register::ESI,
        Register::R12D,
    ));
    a.pool_op(Ins::with1(Code::Call_rm64, Mem::pool()), fatal);
    a.fixed(Fixed::ud2());
    a
}

impl TrapRuntime {
    /// Generates and publishes the shim and the handler in `memory`.
    ///
    /// # Errors
    ///
    /// [`Error::Memory`] when execmem refuses, [`Error::Encode`] never in
    /// practice (the code is fixed).
    pub fn new(memory: &execmem::ExecMemory) -> Result<Self, Error> {
        let mut batch = memory.batch();
        let mut place = |name: &str, a: Asm| -> Result<execmem::Reservation, Error> {
            let p = encode(&a.items, a.label_count(), &a.pool, Vec::new(), false)
                .map_err(|e| Error::encode(name, &e))?;
            let r = batch.reserve(name, p.size(), 16)?;
            p.link(r.address() as u64, &[], batch.bytes_mut(&r)?);
            Ok(r)
        };
        let shim = place("smfjit_entry_shim", shim_code())?;
        let handler = place("smfjit_trap_handler", handler_code())?;
        let code = batch.publish()?;
        let null_faults = super::fault::install(handler.address(), &code);
        Ok(TrapRuntime {
            code,
            shim: shim.address(),
            handler: handler.address(),
            null_faults,
        })
    }

    /// The trap handler's address, for [`super::Options::trap_handler`].
    pub fn handler(&self) -> u64 {
        self.handler as u64
    }

    /// Whether a load or store of generated code through a null address
    /// is turned into the `NullPointer` trap by the process's fault
    /// handler, which the first runtime installs; `false` where page 0
    /// is mapped, or the handler could not be installed.
    pub fn catches_null_faults(&self) -> bool {
        self.null_faults
    }

    /// The backend options for code run with this runtime: its trap
    /// handler, and implicit null checks where it catches null faults.
    pub fn options(&self) -> super::Options {
        super::Options {
            trap_handler: self.handler(),
            implicit_null_checks: self.null_faults,
        }
    }

    /// Reports `trap` as generated code does: through the handler, to the
    /// innermost guarded call of this thread ([`TrapRuntime::call_raw`]),
    /// or, outside any, on stderr before aborting. Code that runs for
    /// generated code (an interpreter thunk) raises its traps with it.
    ///
    /// # Safety
    ///
    /// Every frame between here and the innermost guard is abandoned: none
    /// may own anything (no pending destructor, no lock held).
    pub unsafe fn raise(&self, trap: Trap) -> ! {
        type Handler = unsafe extern "C" fn(u32, u32) -> !;
        let (kind, code) = trap_args(trap);
        // SAFETY: `handler` is the published trap handler, of this type;
        // the caller vouches for the frames it abandons.
        unsafe {
            let handler: Handler = std::mem::transmute::<usize, Handler>(self.handler);
            handler(kind, code)
        }
    }

    /// The published memory holding the shim and the handler.
    pub fn code(&self) -> &execmem::PublishedCode {
        &self.code
    }

    /// Calls `entry` with the integer argument registers `ints` (rdi, rsi,
    /// rdx, rcx, r8, r9) and float registers `floats` (xmm0–xmm7, raw
    /// bits); returns rax and the low 64 bits of xmm0, or the trap the
    /// code reported through this runtime's handler.
    ///
    /// # Safety
    ///
    /// `entry` must be a System V function reading at most these argument
    /// registers, every pointer it receives must be valid for what it does
    /// with it, and any trap it raises must come from generated code whose
    /// frames own nothing (no native frame between the shim and the trap).
    pub unsafe fn call_raw(
        &self,
        entry: *const u8,
        ints: &[u64; 6],
        floats: &[u64; 8],
    ) -> Result<[u64; 2], Trap> {
        let mut frame = GuardFrame::default();
        let mut out = [0u64; 2];
        let previous = GUARD.with(|g| g.replace(&raw mut frame));
        // SAFETY: `shim` is the published entry shim, whose signature is
        // `Shim`; the arrays are live for the call and as long as the shim
        // reads them; the caller vouches for `entry`.
        let status = unsafe {
            let shim: Shim = std::mem::transmute::<usize, Shim>(self.shim);
            shim(
                &raw mut frame,
                entry as usize as u64,
                ints.as_ptr(),
                floats.as_ptr(),
                out.as_mut_ptr(),
            )
        };
        GUARD.with(|g| g.set(previous));
        if status == 0 {
            Ok(out)
        } else {
            Err(trap_kind(frame.kind, frame.code))
        }
    }

    /// Calls compiled code of signature `sig` with interpreter values, so
    /// results compare directly with `jit_interp::Interpreter::call`.
    ///
    /// # Safety
    ///
    /// As [`TrapRuntime::call_raw`], with `sig` the function's signature
    /// and `args` matching it (extra arguments beyond the registers are
    /// ignored, as the verifier rejects such signatures).
    pub unsafe fn call(
        &self,
        entry: *const u8,
        sig: &Signature,
        args: &[Value],
    ) -> Result<Option<Value>, Trap> {
        let (mut ints, mut floats) = ([0u64; 6], [0u64; 8]);
        let (mut ni, mut nf) = (0, 0);
        for (a, t) in args.iter().zip(&sig.params) {
            let slot = if t.is_float() {
                nf += 1;
                floats.get_mut(nf - 1)
            } else {
                ni += 1;
                ints.get_mut(ni - 1)
            };
            if let Some(s) = slot {
                *s = a.to_bits();
            }
        }
        // SAFETY: forwarded contract.
        let [rax, xmm0] = unsafe { self.call_raw(entry, &ints, &floats)? };
        Ok(sig.ret.as_ref().map(|t| {
            if t.is_float() {
                Value::from_bits(t, xmm0)
            } else {
                Value::from_bits(t, rax)
            }
        }))
    }
}
