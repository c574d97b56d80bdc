//! The instruction builder the lowering writes into: instruction records
//! ([`super::inst`]) with labels, pool constants and call sites, and the
//! operand forms of the allocator's locations (register, spill slot,
//! immediate, pool constant).

use iced_x86::{Code, Register};

use super::emit::{Cc, Fixed, Item};
use super::inst::{Imm, Ins, Mem};
use super::regalloc::Loc;

/// Scratch general-purpose registers (never allocated).
pub(super) const SCRATCH_A: Register = Register::R10;
/// Second scratch register; also the temporary of parallel moves.
pub(super) const SCRATCH_B: Register = Register::R11;
/// Scratch xmm registers (never allocated).
pub(super) const XSCRATCH_A: Register = Register::XMM14;
/// Second scratch xmm register; also the temporary of parallel moves.
pub(super) const XSCRATCH_B: Register = Register::XMM15;

/// An operand that may be a register, memory or an immediate.
#[derive(Clone, Copy, Debug)]
pub(super) enum Rm {
    /// A register.
    Reg(Register),
    /// Memory (a spill slot).
    Mem(Mem),
    /// A sign-extended 32-bit immediate.
    Imm(i32),
    /// A pool constant.
    Pool(u32),
}

/// Two-operand integer instructions with a register destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Alu {
    Add,
    Sub,
    And,
    Or,
    Xor,
    Cmp,
    Imul,
}

/// Scalar SSE arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sse {
    Add,
    Sub,
    Mul,
    Div,
    Ucomi,
    Mov,
}

/// A function being built.
#[derive(Clone)]
pub(super) struct Asm {
    pub items: Vec<Item>,
    pub pool: Vec<u64>,
    labels: u32,
}

/// The 32-bit name of a 64-bit general-purpose register.
pub(super) fn r32(r: Register) -> Register {
    Register::EAX + (r as u32 - Register::RAX as u32)
}

/// The 16-bit name of a 64-bit general-purpose register.
pub(super) fn r16(r: Register) -> Register {
    Register::AX + (r as u32 - Register::RAX as u32)
}

/// The 8-bit (low byte) name of a 64-bit general-purpose register.
pub(super) fn r8(r: Register) -> Register {
    let n = r as u32 - Register::RAX as u32;
    match n {
        0..=3 => Register::AL + n,
        4..=7 => Register::SPL + (n - 4),
        _ => Register::R8L + (n - 8),
    }
}

/// `[rsp + 8 * slot]`.
pub(super) fn slot_mem(slot: u32) -> Mem {
    // Spill slots are counted in u32 but a frame never holds 2^28 of them
    // (execmem's reservation limit bounds the code that addresses them).
    Mem::base_disp(Register::RSP, slot.wrapping_mul(8) as i32)
}

thread_local! {
    /// Item lists and constant pools of functions this thread encoded,
    /// kept for the next ones: a function's list is some kilobytes,
    /// allocated and freed once per compilation otherwise.
    static SPARE_ITEMS: jit_shared::spare::Spares<(Vec<Item>, Vec<u64>)> = const { std::cell::Cell::new(Vec::new()) };
}

impl Asm {
    /// An empty function with room for `capacity` items.
    pub(super) fn new(capacity: usize) -> Self {
        let (mut items, mut pool) = jit_shared::spare::take(&SPARE_ITEMS);
        items.clear();
        items.reserve(capacity);
        pool.clear();
        Asm {
            items,
            pool,
            labels: 0,
        }
    }

    /// Gives the item list and pool back for the next function of this
    /// thread.
    pub(super) fn recycle(self) {
        jit_shared::spare::give(&SPARE_ITEMS, (self.items, self.pool));
    }

    /// Number of labels created.
    pub(super) fn label_count(&self) -> usize {
        self.labels as usize
    }

    pub(super) fn label(&mut self) -> u32 {
        self.labels += 1;
        self.labels - 1
    }

    pub(super) fn bind(&mut self, l: u32) {
        self.items.push(Item::Label(l));
    }

    pub(super) fn jmp(&mut self, l: u32) {
        self.items.push(Item::Jmp(l));
    }

    pub(super) fn jcc(&mut self, cc: Cc, l: u32) {
        self.items.push(Item::Jcc(cc, l));
    }

    pub(super) fn push(&mut self, ins: Ins) {
        self.items.push(Item::Ins(ins));
    }

    /// `code reg, [reg2,] imm`.
    pub(super) fn reg_imm(&mut self, code: Code, reg: Register, reg2: Option<Register>, imm: Imm) {
        self.push(match reg2 {
            Some(r2) => Ins::with2_imm(code, reg, r2, imm),
            None => Ins::with_imm(code, reg, imm),
        });
    }

    /// An instruction of a fixed form, as its bytes.
    pub(super) fn fixed(&mut self, f: Fixed) {
        self.items.push(Item::Bytes(f));
    }

    /// Index of an 8-byte pool constant (shared between uses).
    pub(super) fn constant(&mut self, bits: u64) -> u32 {
        match self.pool.iter().position(|&c| c == bits) {
            Some(i) => i as u32,
            None => {
                self.pool.push(bits);
                (self.pool.len() - 1) as u32
            }
        }
    }

    /// An instruction whose last memory operand is a pool constant.
    pub(super) fn pool_op(&mut self, ins: Ins, entry: u32) {
        self.items.push(Item::Pool(ins, entry));
    }

    /// `dst = value` without touching the flags.
    pub(super) fn mov_imm(&mut self, dst: Register, value: u64) {
        let ins = if let Ok(v) = u32::try_from(value) {
            Ins::with_imm(Code::Mov_r32_imm32, r32(dst), Imm::U32(v))
        } else if let Ok(v) = i32::try_from(value as i64) {
            Ins::with_imm(Code::Mov_rm64_imm32, dst, Imm::S32(v))
        } else {
            Ins::with_imm(Code::Mov_r64_imm64, dst, Imm::U64(value))
        };
        self.push(ins);
    }

    pub(super) fn mov(&mut self, dst: Register, src: Register) {
        if dst != src {
            self.fixed(Fixed::mov(dst, src));
        }
    }

    /// Loads a general-purpose location into `dst`.
    pub(super) fn load_gpr(&mut self, dst: Register, src: Loc) {
        match src {
            Loc::Gpr(r) => self.mov(dst, r),
            Loc::Stack(s) => self.push(Ins::with2(Code::Mov_r64_rm64, dst, slot_mem(s))),
            Loc::Imm(v) => self.mov_imm(dst, v),
            // Unused values: nothing to load.
            Loc::None | Loc::Xmm(_) | Loc::FImm(..) => {}
        }
    }

    /// Stores `src` into a general-purpose location.
    pub(super) fn store_gpr(&mut self, dst: Loc, src: Register) {
        match dst {
            Loc::Gpr(r) => self.mov(r, src),
            Loc::Stack(s) => self.push(Ins::with2(Code::Mov_rm64_r64, slot_mem(s), src)),
            _ => {}
        }
    }

    /// The register holding a general-purpose location, loading it into
    /// `scratch` unless it already lives in a register.
    pub(super) fn gpr(&mut self, src: Loc, scratch: Register) -> Register {
        match src {
            Loc::Gpr(r) => r,
            other => {
                self.load_gpr(scratch, other);
                scratch
            }
        }
    }

    /// The register a result goes to: its own, or `scratch` when spilled or unused.
    pub(super) fn dst_gpr(dst: Loc, scratch: Register) -> Register {
        match dst {
            Loc::Gpr(r) => r,
            _ => scratch,
        }
    }

    /// A general-purpose location as an operand: register, slot or
    /// immediate when it fits a sign-extended 32 bits.
    pub(super) fn rm(&mut self, src: Loc, scratch: Register) -> Rm {
        match src {
            Loc::Gpr(r) => Rm::Reg(r),
            Loc::Stack(s) => Rm::Mem(slot_mem(s)),
            Loc::Imm(v) => match i32::try_from(v as i64) {
                Ok(i) => Rm::Imm(i),
                Err(_) => {
                    self.mov_imm(scratch, v);
                    Rm::Reg(scratch)
                }
            },
            _ => Rm::Reg(scratch),
        }
    }

    /// `dst op= rm` on 64 bits.
    pub(super) fn alu(&mut self, op: Alu, dst: Register, rm: Rm) {
        let (rr, ri) = match op {
            Alu::Add => (Code::Add_r64_rm64, Code::Add_rm64_imm32),
            Alu::Sub => (Code::Sub_r64_rm64, Code::Sub_rm64_imm32),
            Alu::And => (Code::And_r64_rm64, Code::And_rm64_imm32),
            Alu::Or => (Code::Or_r64_rm64, Code::Or_rm64_imm32),
            Alu::Xor => (Code::Xor_r64_rm64, Code::Xor_rm64_imm32),
            Alu::Cmp => (Code::Cmp_r64_rm64, Code::Cmp_rm64_imm32),
            Alu::Imul => (Code::Imul_r64_rm64, Code::Imul_r64_rm64_imm32),
        };
        let ins = match rm {
            Rm::Reg(r) => Ins::with2(rr, dst, r),
            Rm::Mem(m) => Ins::with2(rr, dst, m),
            Rm::Imm(i) if op == Alu::Imul => Ins::with2_imm(ri, dst, dst, Imm::S32(i)),
            Rm::Imm(i) => Ins::with_imm(ri, dst, Imm::S32(i)),
            Rm::Pool(_) => return,
        };
        self.push(ins);
    }

    /// Loads an xmm location into `dst`.
    pub(super) fn load_xmm(&mut self, dst: Register, src: Loc, f32: bool) {
        match src {
            Loc::Xmm(r) if r != dst => {
                self.push(Ins::with2(Code::Movaps_xmm_xmmm128, dst, r));
            }
            Loc::Stack(_) | Loc::FImm(..) => {
                let rm = self.xrm(src);
                self.sse(Sse::Mov, f32, dst, rm);
            }
            _ => {}
        }
    }

    /// Stores `src` into an xmm location.
    pub(super) fn store_xmm(&mut self, dst: Loc, src: Register, f32: bool) {
        match dst {
            Loc::Xmm(r) if r != src => {
                self.push(Ins::with2(Code::Movaps_xmm_xmmm128, r, src));
            }
            Loc::Stack(s) => {
                let code = if f32 {
                    Code::Movss_xmmm32_xmm
                } else {
                    Code::Movsd_xmmm64_xmm
                };
                self.push(Ins::with2(code, slot_mem(s), src));
            }
            _ => {}
        }
    }

    /// The xmm register holding a location, loading into `scratch` if needed.
    pub(super) fn xmm(&mut self, src: Loc, scratch: Register, f32: bool) -> Register {
        match src {
            Loc::Xmm(r) => r,
            other => {
                self.load_xmm(scratch, other, f32);
                scratch
            }
        }
    }

    /// An xmm location as an operand.
    pub(super) fn xrm(&mut self, src: Loc) -> Rm {
        match src {
            Loc::Xmm(r) => Rm::Reg(r),
            Loc::Stack(s) => Rm::Mem(slot_mem(s)),
            Loc::FImm(bits, _) => Rm::Pool(self.constant(bits)),
            _ => Rm::Reg(XSCRATCH_B),
        }
    }

    /// `dst op= rm` in single (`f32`) or double precision.
    pub(super) fn sse(&mut self, op: Sse, f32: bool, dst: Register, rm: Rm) {
        let code = match (op, f32) {
            (Sse::Add, true) => Code::Addss_xmm_xmmm32,
            (Sse::Add, false) => Code::Addsd_xmm_xmmm64,
            (Sse::Sub, true) => Code::Subss_xmm_xmmm32,
            (Sse::Sub, false) => Code::Subsd_xmm_xmmm64,
            (Sse::Mul, true) => Code::Mulss_xmm_xmmm32,
            (Sse::Mul, false) => Code::Mulsd_xmm_xmmm64,
            (Sse::Div, true) => Code::Divss_xmm_xmmm32,
            (Sse::Div, false) => Code::Divsd_xmm_xmmm64,
            (Sse::Ucomi, true) => Code::Ucomiss_xmm_xmmm32,
            (Sse::Ucomi, false) => Code::Ucomisd_xmm_xmmm64,
            (Sse::Mov, true) => Code::Movss_xmm_xmmm32,
            (Sse::Mov, false) => Code::Movsd_xmm_xmmm64,
        };
        match rm {
            Rm::Reg(r) if op == Sse::Mov => {
                if r != dst {
                    self.push(Ins::with2(Code::Movaps_xmm_xmmm128, dst, r));
                }
            }
            Rm::Reg(r) => self.push(Ins::with2(code, dst, r)),
            Rm::Mem(m) => self.push(Ins::with2(code, dst, m)),
            Rm::Pool(e) => self.pool_op(Ins::with2(code, dst, Mem::pool()), e),
            Rm::Imm(_) => {}
        }
    }
}
