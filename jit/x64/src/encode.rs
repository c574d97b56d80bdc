//! The backend's own instruction encoder: the bytes of every iced-x86
//! `Code` the lowering emits, from a table of their forms.
//!
//! iced-x86's `Encoder` builds its op-code tables (a handler for every
//! legacy, VEX and EVEX instruction, some 4,000 allocations) the first time
//! any encoder or checked constructor with an immediate needs them. That
//! cost 2.5 M of the 4.1 M instructions a fresh process spent from creating
//! a loader to its first JIT-compiled call, for about a hundred forms the
//! backend uses. Those forms are a row each in [`FORMS`]: mandatory prefix,
//! REX.W, op-code bytes, where each operand goes (ModRM.reg, ModRM.rm, the
//! op-code's low bits) and the immediate. Memory operands are encoded as
//! iced-x86 encodes them, down to its choice between no displacement, disp8
//! and disp32, so the output is the same bytes.
//!
//! iced-x86 stays the reference: the unit tests encode every form with
//! every register, memory operand shape and boundary immediate both ways.
//! An instruction outside the table (a backend bug, never the shipped
//! lowering) falls back to iced-x86's `Encoder`, built then, and is counted
//! in [`encoder_fallbacks`].

use std::sync::atomic::{AtomicU64, Ordering};

use iced_x86::{Code, Encoder, IcedError, Register};

use super::inst::{self, ImmKind, Ins, Operand};

/// Instructions encoded by iced-x86 because [`FORMS`] has no row for them.
static FALLBACKS: AtomicU64 = AtomicU64::new(0);

/// How many instructions this process encoded with iced-x86's `Encoder`
/// because the backend's own encoder has no form for them. Every
/// instruction the lowering emits has one, so this stays 0; tests pin it,
/// since a fallback builds iced-x86's op-code tables on the cold path.
pub fn encoder_fallbacks() -> u64 {
    FALLBACKS.load(Ordering::Relaxed)
}

/// The register file an operand comes from, or memory alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Gpr8,
    Gpr16,
    Gpr32,
    Gpr64,
    Xmm,
    /// A memory operand only (`lea`'s source).
    Mem,
}

/// Where an instruction's operands go, in operand order.
#[derive(Clone, Copy, Debug)]
enum Operands {
    None,
    /// Operand 0 in ModRM.reg, operand 1 in ModRM.rm.
    RegRm(Class, Class),
    /// Operand 0 in ModRM.rm, operand 1 in ModRM.reg.
    RmReg(Class, Class),
    /// Operand 0 in ModRM.rm; ModRM.reg holds the op-code extension.
    Rm(u8, Class),
    /// Operand 0 in the last op-code byte's low three bits (REX.B above).
    Plus(Class),
}

/// The operand after the register and memory ones.
#[derive(Clone, Copy, Debug)]
enum Immediate {
    None,
    /// The `cl` of a shift count (implied by the op-code, no bytes).
    Cl,
    /// One byte, of this kind.
    Byte(ImmKind),
    /// Four bytes, of this kind.
    Dword(ImmKind),
    /// Eight bytes (`mov r64, imm64`).
    Qword,
}

/// The encoding of one `Code`.
#[derive(Clone, Copy, Debug)]
struct Form {
    /// Mandatory prefix (0x66, 0xF2, 0xF3), 0 for none.
    prefix: u8,
    rex_w: bool,
    opcode: [u8; 3],
    opcode_len: u8,
    operands: Operands,
    immediate: Immediate,
}

use Class::{Gpr8, Gpr16, Gpr32, Gpr64, Mem, Xmm};

impl Form {
    /// Op-code bytes (one to three) with no prefix, operands or immediate.
    const fn of(opcode: &[u8]) -> Form {
        let mut bytes = [0u8; 3];
        let mut i = 0;
        while i < opcode.len() {
            bytes[i] = opcode[i];
            i += 1;
        }
        Form {
            prefix: 0,
            rex_w: false,
            opcode: bytes,
            opcode_len: opcode.len() as u8,
            operands: Operands::None,
            immediate: Immediate::None,
        }
    }

    const fn w(mut self) -> Form {
        self.rex_w = true;
        self
    }

    const fn prefix(mut self, prefix: u8) -> Form {
        self.prefix = prefix;
        self
    }

    const fn reg_rm(mut self, reg: Class, rm: Class) -> Form {
        self.operands = Operands::RegRm(reg, rm);
        self
    }

    const fn rm_reg(mut self, rm: Class, reg: Class) -> Form {
        self.operands = Operands::RmReg(rm, reg);
        self
    }

    const fn rm(mut self, extension: u8, rm: Class) -> Form {
        self.operands = Operands::Rm(extension, rm);
        self
    }

    const fn plus(mut self, reg: Class) -> Form {
        self.operands = Operands::Plus(reg);
        self
    }

    const fn imm(mut self, immediate: Immediate) -> Form {
        self.immediate = immediate;
        self
    }
}

/// `op r64, r/m64`.
const fn q_reg_rm(opcode: &[u8]) -> Form {
    Form::of(opcode).w().reg_rm(Gpr64, Gpr64)
}

/// `op r/m64` with an op-code extension (and maybe an immediate).
const fn q_rm(opcode: &[u8], extension: u8) -> Form {
    Form::of(opcode).w().rm(extension, Gpr64)
}

/// `op xmm, xmm/m` (SSE, with its mandatory prefix when `prefix` is not 0).
const fn sse(prefix: u8, opcode: u8) -> Form {
    Form::of(&[0x0F, opcode]).prefix(prefix).reg_rm(Xmm, Xmm)
}

/// `cmovcc r64, r/m64` for the condition's `tttn`.
const fn cmov(tttn: u8) -> Form {
    q_reg_rm(&[0x0F, 0x40 | tttn])
}

/// `setcc r/m8` for the condition's `tttn`.
const fn setcc(tttn: u8) -> Form {
    Form::of(&[0x0F, 0x90 | tttn]).rm(0, Gpr8)
}

const IB8TO64: Immediate = Immediate::Byte(ImmKind::S8to64);
const IB8TO32: Immediate = Immediate::Byte(ImmKind::S8to32);
const IB: Immediate = Immediate::Byte(ImmKind::U8);
const ID32TO64: Immediate = Immediate::Dword(ImmKind::S32);
const ID: Immediate = Immediate::Dword(ImmKind::U32);

/// Every form the backend emits (Intel SDM vol. 2 for the op-codes).
const FORMS: &[(Code, Form)] = &[
    // Without operands.
    (Code::Endbr64, Form::of(&[0x0F, 0x1E, 0xFA]).prefix(0xF3)),
    (Code::Retnq, Form::of(&[0xC3])),
    (Code::Cqo, Form::of(&[0x99]).w()),
    (Code::Ud2, Form::of(&[0x0F, 0x0B])),
    // Register in the op-code.
    (Code::Push_r64, Form::of(&[0x50]).plus(Gpr64)),
    (Code::Pop_r64, Form::of(&[0x58]).plus(Gpr64)),
    (Code::Mov_r32_imm32, Form::of(&[0xB8]).plus(Gpr32).imm(ID)),
    (
        Code::Mov_r64_imm64,
        Form::of(&[0xB8]).w().plus(Gpr64).imm(Immediate::Qword),
    ),
    // Integer arithmetic, register destination.
    (Code::Add_r64_rm64, q_reg_rm(&[0x03])),
    (Code::Sub_r64_rm64, q_reg_rm(&[0x2B])),
    (Code::And_r64_rm64, q_reg_rm(&[0x23])),
    (Code::Or_r64_rm64, q_reg_rm(&[0x0B])),
    (Code::Xor_r64_rm64, q_reg_rm(&[0x33])),
    (Code::Cmp_r64_rm64, q_reg_rm(&[0x3B])),
    (Code::Imul_r64_rm64, q_reg_rm(&[0x0F, 0xAF])),
    (Code::Imul_r64_rm64_imm32, q_reg_rm(&[0x69]).imm(ID32TO64)),
    (Code::And_r8_rm8, Form::of(&[0x22]).reg_rm(Gpr8, Gpr8)),
    (Code::Or_r8_rm8, Form::of(&[0x0A]).reg_rm(Gpr8, Gpr8)),
    (
        Code::Test_rm64_r64,
        Form::of(&[0x85]).w().rm_reg(Gpr64, Gpr64),
    ),
    // Immediate groups 1 (0x81 imm32, 0x83 imm8) and 2 (shifts), BT.
    (Code::Add_rm64_imm32, q_rm(&[0x81], 0).imm(ID32TO64)),
    (Code::Or_rm64_imm32, q_rm(&[0x81], 1).imm(ID32TO64)),
    (Code::And_rm64_imm32, q_rm(&[0x81], 4).imm(ID32TO64)),
    (Code::Sub_rm64_imm32, q_rm(&[0x81], 5).imm(ID32TO64)),
    (Code::Xor_rm64_imm32, q_rm(&[0x81], 6).imm(ID32TO64)),
    (Code::Cmp_rm64_imm32, q_rm(&[0x81], 7).imm(ID32TO64)),
    (Code::Xor_rm32_imm32, Form::of(&[0x81]).rm(6, Gpr32).imm(ID)),
    (Code::Add_rm64_imm8, q_rm(&[0x83], 0).imm(IB8TO64)),
    (Code::Sub_rm64_imm8, q_rm(&[0x83], 5).imm(IB8TO64)),
    (Code::Cmp_rm64_imm8, q_rm(&[0x83], 7).imm(IB8TO64)),
    (
        Code::And_rm32_imm8,
        Form::of(&[0x83]).rm(4, Gpr32).imm(IB8TO32),
    ),
    (
        Code::Xor_rm32_imm8,
        Form::of(&[0x83]).rm(6, Gpr32).imm(IB8TO32),
    ),
    (Code::Shl_rm64_imm8, q_rm(&[0xC1], 4).imm(IB)),
    (Code::Shr_rm64_imm8, q_rm(&[0xC1], 5).imm(IB)),
    (Code::Sar_rm64_imm8, q_rm(&[0xC1], 7).imm(IB)),
    (Code::Shl_rm64_CL, q_rm(&[0xD3], 4).imm(Immediate::Cl)),
    (Code::Shr_rm64_CL, q_rm(&[0xD3], 5).imm(Immediate::Cl)),
    (Code::Sar_rm64_CL, q_rm(&[0xD3], 7).imm(Immediate::Cl)),
    (Code::Btc_rm64_imm8, q_rm(&[0x0F, 0xBA], 7).imm(IB)),
    // Group 3 and 5.
    (Code::Not_rm64, q_rm(&[0xF7], 2)),
    (Code::Neg_rm64, q_rm(&[0xF7], 3)),
    (Code::Div_rm64, q_rm(&[0xF7], 6)),
    (Code::Idiv_rm64, q_rm(&[0xF7], 7)),
    (Code::Call_rm64, Form::of(&[0xFF]).rm(2, Gpr64)),
    // Moves of every width, extensions, addresses.
    (Code::Mov_r64_rm64, q_reg_rm(&[0x8B])),
    (Code::Mov_r32_rm32, Form::of(&[0x8B]).reg_rm(Gpr32, Gpr32)),
    (
        Code::Mov_rm64_r64,
        Form::of(&[0x89]).w().rm_reg(Gpr64, Gpr64),
    ),
    (Code::Mov_rm32_r32, Form::of(&[0x89]).rm_reg(Gpr32, Gpr32)),
    (
        Code::Mov_rm16_r16,
        Form::of(&[0x89]).prefix(0x66).rm_reg(Gpr16, Gpr16),
    ),
    (Code::Mov_rm8_r8, Form::of(&[0x88]).rm_reg(Gpr8, Gpr8)),
    (Code::Mov_rm64_imm32, q_rm(&[0xC7], 0).imm(ID32TO64)),
    (
        Code::Movsx_r64_rm8,
        Form::of(&[0x0F, 0xBE]).w().reg_rm(Gpr64, Gpr8),
    ),
    (
        Code::Movsx_r64_rm16,
        Form::of(&[0x0F, 0xBF]).w().reg_rm(Gpr64, Gpr16),
    ),
    (
        Code::Movsxd_r64_rm32,
        Form::of(&[0x63]).w().reg_rm(Gpr64, Gpr32),
    ),
    (
        Code::Movzx_r32_rm8,
        Form::of(&[0x0F, 0xB6]).reg_rm(Gpr32, Gpr8),
    ),
    (
        Code::Movzx_r32_rm16,
        Form::of(&[0x0F, 0xB7]).reg_rm(Gpr32, Gpr16),
    ),
    (Code::Lea_r64_m, Form::of(&[0x8D]).w().reg_rm(Gpr64, Mem)),
    // Conditions (`tttn` as in emit's `Cc`).
    (Code::Cmovb_r64_rm64, cmov(0x2)),
    (Code::Cmovae_r64_rm64, cmov(0x3)),
    (Code::Cmove_r64_rm64, cmov(0x4)),
    (Code::Cmovne_r64_rm64, cmov(0x5)),
    (Code::Cmovbe_r64_rm64, cmov(0x6)),
    (Code::Cmova_r64_rm64, cmov(0x7)),
    (Code::Cmovp_r64_rm64, cmov(0xA)),
    (Code::Cmovnp_r64_rm64, cmov(0xB)),
    (Code::Cmovl_r64_rm64, cmov(0xC)),
    (Code::Cmovge_r64_rm64, cmov(0xD)),
    (Code::Cmovle_r64_rm64, cmov(0xE)),
    (Code::Cmovg_r64_rm64, cmov(0xF)),
    (Code::Setb_rm8, setcc(0x2)),
    (Code::Setae_rm8, setcc(0x3)),
    (Code::Sete_rm8, setcc(0x4)),
    (Code::Setne_rm8, setcc(0x5)),
    (Code::Setbe_rm8, setcc(0x6)),
    (Code::Seta_rm8, setcc(0x7)),
    (Code::Setp_rm8, setcc(0xA)),
    (Code::Setnp_rm8, setcc(0xB)),
    (Code::Setl_rm8, setcc(0xC)),
    (Code::Setge_rm8, setcc(0xD)),
    (Code::Setle_rm8, setcc(0xE)),
    (Code::Setg_rm8, setcc(0xF)),
    // Scalar SSE.
    (Code::Addss_xmm_xmmm32, sse(0xF3, 0x58)),
    (Code::Addsd_xmm_xmmm64, sse(0xF2, 0x58)),
    (Code::Mulss_xmm_xmmm32, sse(0xF3, 0x59)),
    (Code::Mulsd_xmm_xmmm64, sse(0xF2, 0x59)),
    (Code::Subss_xmm_xmmm32, sse(0xF3, 0x5C)),
    (Code::Subsd_xmm_xmmm64, sse(0xF2, 0x5C)),
    (Code::Divss_xmm_xmmm32, sse(0xF3, 0x5E)),
    (Code::Divsd_xmm_xmmm64, sse(0xF2, 0x5E)),
    (Code::Ucomiss_xmm_xmmm32, sse(0, 0x2E)),
    (Code::Ucomisd_xmm_xmmm64, sse(0x66, 0x2E)),
    (Code::Movss_xmm_xmmm32, sse(0xF3, 0x10)),
    (Code::Movsd_xmm_xmmm64, sse(0xF2, 0x10)),
    (
        Code::Movss_xmmm32_xmm,
        Form::of(&[0x0F, 0x11]).prefix(0xF3).rm_reg(Xmm, Xmm),
    ),
    (
        Code::Movsd_xmmm64_xmm,
        Form::of(&[0x0F, 0x11]).prefix(0xF2).rm_reg(Xmm, Xmm),
    ),
    (Code::Movaps_xmm_xmmm128, sse(0, 0x28)),
    (Code::Xorps_xmm_xmmm128, sse(0, 0x57)),
    (Code::Cvtss2sd_xmm_xmmm32, sse(0xF3, 0x5A)),
    (Code::Cvtsd2ss_xmm_xmmm64, sse(0xF2, 0x5A)),
    (
        Code::Cvtsi2ss_xmm_rm64,
        sse(0xF3, 0x2A).w().reg_rm(Xmm, Gpr64),
    ),
    (
        Code::Cvtsi2sd_xmm_rm64,
        sse(0xF2, 0x2A).w().reg_rm(Xmm, Gpr64),
    ),
    (
        Code::Cvttsd2si_r64_xmmm64,
        sse(0xF2, 0x2C).w().reg_rm(Gpr64, Xmm),
    ),
    // Between general and xmm registers.
    (Code::Movd_xmm_rm32, sse(0x66, 0x6E).reg_rm(Xmm, Gpr32)),
    (Code::Movq_xmm_rm64, sse(0x66, 0x6E).w().reg_rm(Xmm, Gpr64)),
    (Code::Movd_rm32_xmm, sse(0x66, 0x7E).rm_reg(Gpr32, Xmm)),
    (Code::Movq_rm64_xmm, sse(0x66, 0x7E).w().rm_reg(Gpr64, Xmm)),
];

/// One past the largest `Code` in [`FORMS`].
const INDEX_LEN: usize = {
    let mut max = 0;
    let mut i = 0;
    while i < FORMS.len() {
        let code = FORMS[i].0 as usize;
        if code > max {
            max = code;
        }
        i += 1;
    }
    max + 1
};

/// The row of [`FORMS`] for each `Code` value, [`u8::MAX`] for none: a
/// direct look-up instead of a search on every instruction.
static INDEX: [u8; INDEX_LEN] = {
    assert!(FORMS.len() < u8::MAX as usize);
    let mut index = [u8::MAX; INDEX_LEN];
    let mut i = 0;
    while i < FORMS.len() {
        let code = FORMS[i].0 as usize;
        assert!(index[code] == u8::MAX, "a code has two forms");
        index[code] = i as u8;
        i += 1;
    }
    index
};

fn form(code: Code) -> Option<&'static Form> {
    let row = *INDEX.get(code as usize)?;
    FORMS.get(usize::from(row)).map(|(_, f)| f)
}

/// The hardware number (0–15) of `r` if it belongs to `class`, and whether
/// it needs a REX prefix even without an extension bit (spl, bpl, sil and
/// dil, which are ah, ch, dh and bh without one). The high-byte registers
/// are not offered: the backend never uses them.
fn number(r: Register, class: Class) -> Option<(u8, bool)> {
    let from = |first: Register| (r as u32).wrapping_sub(first as u32);
    let n = match class {
        Gpr64 => from(Register::RAX),
        Gpr32 => from(Register::EAX),
        Gpr16 => from(Register::AX),
        Xmm => from(Register::XMM0),
        Gpr8 => {
            return match from(Register::AL) {
                n @ 0..=3 => Some((n as u8, false)),
                n @ 8..=11 => Some((n as u8 - 4, true)),
                n @ 12..=19 => Some((n as u8 - 4, false)),
                _ => None,
            };
        }
        Mem => return None,
    };
    (n < 16).then_some((n as u8, false))
}

/// The ModRM.mod/rm bits, SIB and displacement of a memory operand.
struct Address {
    modrm: u8,
    sib: Option<u8>,
    disp: Displacement,
    /// REX.X and REX.B.
    rex: u8,
}

enum Displacement {
    None,
    Disp8(i8),
    Disp32(i32),
    /// `[rip + disp32]`, this far from the instruction's first byte.
    Rip(i32),
}

/// `m` encoded as iced-x86 encodes it: `[rip + disp32]` for a rip base;
/// `[index * scale + disp32]` without a base (a SIB byte whose base field
/// says none, whatever the displacement size); otherwise no displacement
/// when the displacement size is 0 (except over rbp and r13, whose ModRM
/// form without one means rip-relative or disp32: they get a disp8 of 0),
/// disp8 when the size is 1 and the value fits, disp32 otherwise; a SIB
/// byte for an index, a scale, or an rsp or r12 base (their ModRM.rm value
/// means "SIB follows"). `None` for what iced-x86 would refuse or the
/// backend never uses (32-bit bases, neither base nor index).
fn address(m: &inst::Mem) -> Option<Address> {
    let (base, index, scale, value) = (m.base, m.index, m.scale, m.disp);
    if base == Register::RIP {
        return (index == Register::None && scale == 1).then_some(Address {
            modrm: 0b00_000_101,
            sib: None,
            disp: Displacement::Rip(value),
            rex: 0,
        });
    }
    if base == Register::None {
        // SIB base 101 under mod 00: no base, and always a disp32.
        let (x, _) = match index {
            Register::None | Register::RSP => return None,
            r => number(r, Gpr64)?,
        };
        return Some(Address {
            modrm: 0b00_000_100,
            sib: Some((scale_bits(scale)? << 6) | ((x & 7) << 3) | 0b101),
            disp: Displacement::Disp32(value),
            rex: (x >> 3) << 1,
        });
    }
    let (b, _) = number(base, Gpr64)?;
    let x = match index {
        Register::None => None,
        Register::RSP => return None,
        r => Some(number(r, Gpr64)?.0),
    };
    let disp = match m.displ_size {
        0 if value != 0 => return None,
        0 if b & 7 == 5 => Displacement::Disp8(0),
        0 => Displacement::None,
        1 => match i8::try_from(value) {
            Ok(v) => Displacement::Disp8(v),
            Err(_) => Displacement::Disp32(value),
        },
        8 => Displacement::Disp32(value),
        _ => return None,
    };
    let mode = match disp {
        Displacement::None | Displacement::Rip(_) => 0b00,
        Displacement::Disp8(_) => 0b01,
        Displacement::Disp32(_) => 0b10,
    };
    let ss = scale_bits(scale)?;
    let (rm, sib) = if x.is_none() && b & 7 != 4 && scale == 1 {
        (b & 7, None)
    } else {
        // Index 0b100 with REX.X clear means "no index".
        (
            0b100,
            Some((ss << 6) | ((x.unwrap_or(4) & 7) << 3) | (b & 7)),
        )
    };
    Some(Address {
        modrm: (mode << 6) | rm,
        sib,
        disp,
        rex: ((x.unwrap_or(0) >> 3) << 1) | (b >> 3),
    })
}

/// The SIB scale field of `scale`.
fn scale_bits(scale: u8) -> Option<u8> {
    match scale {
        1 => Some(0),
        2 => Some(1),
        4 => Some(2),
        8 => Some(3),
        _ => None,
    }
}

/// The bytes of one instruction under construction (15 at most).
struct Bytes {
    buf: [u8; 16],
    len: usize,
}

impl Bytes {
    /// Appends `b`; the longest form the table holds is 15 bytes, so the
    /// buffer never fills (a byte past it would be dropped, and the
    /// caller compares lengths).
    fn put(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn put_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.put(b);
        }
    }
}

/// What [`write`] reports about an instruction it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Encoded {
    /// Its length in bytes.
    pub len: usize,
    /// Offset of its displacement from its first byte, if it has one.
    pub displacement: Option<usize>,
}

/// Operand `op` of `ins` as a register of `class`: its number, with the
/// REX requirement of byte registers added to `force_rex`.
#[inline]
fn register(ins: &Ins, op: usize, class: Class, force_rex: &mut bool) -> Option<u8> {
    let Some(Operand::Reg(r)) = ins.ops.get(op) else {
        return None;
    };
    let (n, rex) = number(*r, class)?;
    *force_rex |= rex;
    Some(n)
}

/// Appends the bytes of `ins` to `out`; `None` (and nothing written) when
/// [`FORMS`] has no form for it or its operands are not what the form
/// takes.
pub(super) fn write(ins: &Ins, out: &mut Vec<u8>) -> Option<Encoded> {
    let form = form(ins.code)?;
    if let Some(encoded) = write_register_and_rm(form, ins, out) {
        return Some(encoded);
    }
    let mut force_rex = false;
    let mut rex = u8::from(form.rex_w) << 3;
    // (ModRM.reg, operand in ModRM.rm), the register in the op-code, and
    // the immediate's operand.
    let (reg, rm, plus, next) = match form.operands {
        Operands::None => (None, None, None, 0),
        Operands::RegRm(r, m) => (
            Some(register(ins, 0, r, &mut force_rex)?),
            Some((1, m)),
            None,
            2,
        ),
        Operands::RmReg(m, r) => (
            Some(register(ins, 1, r, &mut force_rex)?),
            Some((0, m)),
            None,
            2,
        ),
        Operands::Rm(extension, m) => (Some(extension), Some((0, m)), None, 1),
        Operands::Plus(r) => (None, None, Some(register(ins, 0, r, &mut force_rex)?), 1),
    };
    // Operands past the form's take nothing.
    if ins.ops.iter().skip(next + 1).any(|o| *o != Operand::None) {
        return None;
    }
    let mut modrm = reg.map(|r| {
        rex |= (r >> 3) << 2;
        (r & 7) << 3
    });
    let mut addr = None;
    if let (Some((op, class)), Some(m)) = (rm, modrm.as_mut()) {
        match ins.ops.get(op) {
            Some(Operand::Reg(_)) if class != Mem => {
                let n = register(ins, op, class, &mut force_rex)?;
                rex |= n >> 3;
                *m |= 0b11_000_000 | (n & 7);
            }
            Some(Operand::Mem) => {
                let a = address(&ins.mem)?;
                rex |= a.rex;
                *m |= a.modrm;
                addr = Some(a);
            }
            _ => return None,
        }
    }
    if let Some(n) = plus {
        rex |= n >> 3;
    }
    let mut bytes = Bytes {
        buf: [0; 16],
        len: 0,
    };
    if form.prefix != 0 {
        bytes.put(form.prefix);
    }
    if rex != 0 || force_rex {
        bytes.put(0x40 | rex);
    }
    let opcode = form.opcode.get(..usize::from(form.opcode_len))?;
    match (plus, opcode.split_last()) {
        (Some(n), Some((last, first))) => {
            bytes.put_all(first);
            bytes.put(last | (n & 7));
        }
        _ => bytes.put_all(opcode),
    }
    if let Some(m) = modrm {
        bytes.put(m);
    }
    let mut displacement = None;
    if let Some(a) = &addr {
        if let Some(sib) = a.sib {
            bytes.put(sib);
        }
        if !matches!(a.disp, Displacement::None) {
            displacement = Some(bytes.len);
        }
        match a.disp {
            Displacement::None => {}
            Displacement::Disp8(v) => bytes.put(v as u8),
            Displacement::Disp32(v) => bytes.put_all(&v.to_le_bytes()),
            // Written below, once the instruction's end is known.
            Displacement::Rip(_) => bytes.put_all(&[0; 4]),
        }
    }
    let next = ins.ops.get(next).copied().unwrap_or(Operand::None);
    match form.immediate {
        Immediate::None if next == Operand::None => {}
        Immediate::Cl if next == Operand::Reg(Register::CL) => {}
        Immediate::Byte(kind) if next == Operand::Imm(kind) => bytes.put(ins.imm as u8),
        Immediate::Dword(kind) if next == Operand::Imm(kind) => {
            bytes.put_all(&(ins.imm as u32).to_le_bytes());
        }
        Immediate::Qword if next == Operand::Imm(ImmKind::U64) => {
            bytes.put_all(&ins.imm.to_le_bytes());
        }
        _ => return None,
    }
    if let (
        Some(Address {
            disp: Displacement::Rip(from_start),
            ..
        }),
        Some(at),
    ) = (&addr, displacement)
    {
        let rel = i64::from(*from_start) - bytes.len as i64;
        let rel = i32::try_from(rel).ok()?;
        bytes
            .buf
            .get_mut(at..at + 4)?
            .copy_from_slice(&rel.to_le_bytes());
    }
    let len = bytes.len;
    append_prefix(out, &bytes.buf, len);
    Some(Encoded { len, displacement })
}

/// [`write`] for the commonest shapes, a register and a register or
/// memory operand and nothing else (`op reg, reg`, `mov reg, [mem]`,
/// `mov [mem], reg`, `lea`, extensions), without the general path's look
/// at immediates and op-code registers; `None` for any other shape, which
/// the general path then encodes (or refuses). The same bytes as the
/// general path: the tests compare both with iced-x86.
#[inline]
fn write_register_and_rm(form: &Form, ins: &Ins, out: &mut Vec<u8>) -> Option<Encoded> {
    let (reg_op, rm_op, reg_class, rm_class) = match form.operands {
        Operands::RegRm(r, m) => (0, 1, r, m),
        Operands::RmReg(m, r) => (1, 0, r, m),
        _ => return None,
    };
    if !matches!(form.immediate, Immediate::None) || ins.ops[2] != Operand::None {
        return None;
    }
    let Operand::Reg(reg) = ins.ops[reg_op] else {
        return None;
    };
    let (reg, mut force_rex) = number(reg, reg_class)?;
    let a = match ins.ops[rm_op] {
        Operand::Reg(rm) => {
            let (rm, rm_rex) = number(rm, rm_class)?;
            force_rex |= rm_rex;
            Address {
                modrm: 0b11_000_000 | (rm & 7),
                sib: None,
                disp: Displacement::None,
                rex: rm >> 3,
            }
        }
        Operand::Mem => address(&ins.mem)?,
        _ => return None,
    };
    let rex = (u8::from(form.rex_w) << 3) | ((reg >> 3) << 2) | a.rex;
    // Prefix, REX, three op-code bytes, ModRM, SIB and a disp32: 11 at most.
    let mut bytes = [0u8; 16];
    let mut len = 0;
    if form.prefix != 0 {
        bytes[0] = form.prefix;
        len = 1;
    }
    if rex != 0 || force_rex {
        bytes[len] = 0x40 | rex;
        len += 1;
    }
    let opcode_len = usize::from(form.opcode_len).min(3);
    bytes[len..len + 3].copy_from_slice(&form.opcode);
    len += opcode_len;
    bytes[len] = a.modrm | ((reg & 7) << 3);
    len += 1;
    if let Some(sib) = a.sib {
        bytes[len] = sib;
        len += 1;
    }
    let displacement = match a.disp {
        Displacement::None => None,
        Displacement::Disp8(v) => {
            bytes[len] = v as u8;
            len += 1;
            Some(len - 1)
        }
        Displacement::Disp32(v) => {
            bytes[len..len + 4].copy_from_slice(&v.to_le_bytes());
            len += 4;
            Some(len - 4)
        }
        // Relative to the instruction's end, which the displacement is.
        Displacement::Rip(from_start) => {
            let at = len;
            len += 4;
            let rel = i32::try_from(i64::from(from_start) - len as i64).ok()?;
            bytes[at..at + 4].copy_from_slice(&rel.to_le_bytes());
            Some(at)
        }
    };
    append_prefix(out, &bytes, len);
    Some(Encoded { len, displacement })
}

/// Appends the first `len` bytes of `bytes` (all of them when `len` is
/// larger). The whole array is copied and the excess cut off: a copy of a
/// length known when compiling is a few stores, where a copy of `len`
/// bytes calls `memcpy`, which cost more than the encoding of many an
/// instruction.
#[inline(always)]
fn append_prefix<const N: usize>(out: &mut Vec<u8>, bytes: &[u8; N], len: usize) {
    let end = out.len() + len.min(N);
    out.extend_from_slice(bytes);
    out.truncate(end);
}

/// Writes a function's instructions and raw bytes into one buffer: with
/// [`write`], or iced-x86's `Encoder` (built on first use) for what it does
/// not know, or for every instruction when asked to be the reference.
pub(super) struct Writer {
    bytes: Vec<u8>,
    iced: Option<Encoder>,
    reference: bool,
}

impl Writer {
    /// A writer appending to `bytes` (its length is the next
    /// instruction's address); `reference` encodes everything with
    /// iced-x86.
    pub(super) fn new(bytes: Vec<u8>, reference: bool) -> Writer {
        Writer {
            bytes,
            iced: None,
            reference,
        }
    }

    /// The bytes written so far.
    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends the first `len` bytes of `bytes` as they are.
    pub(super) fn raw<const N: usize>(&mut self, bytes: &[u8; N], len: usize) {
        append_prefix(&mut self.bytes, bytes, len);
    }

    /// Appends `ins`, placed at the current end.
    ///
    /// # Errors
    ///
    /// What iced-x86 reports for an instruction it cannot encode (only
    /// ever asked about instructions [`write`] does not know).
    pub(super) fn instruction(&mut self, ins: &Ins) -> Result<Encoded, IcedError> {
        if !self.reference {
            if let Some(e) = write(ins, &mut self.bytes) {
                return Ok(e);
            }
            FALLBACKS.fetch_add(1, Ordering::Relaxed);
        }
        self.with_iced(ins)
    }

    /// [`Writer::instruction`] through iced-x86's `Encoder`: out of line,
    /// so that the common path keeps a small frame.
    #[cold]
    #[inline(never)]
    fn with_iced(&mut self, ins: &Ins) -> Result<Encoded, IcedError> {
        let ip = self.bytes.len() as u64;
        let ins = &ins.to_iced(ip);
        let enc = match &mut self.iced {
            Some(enc) => enc,
            None => self.iced.insert(Encoder::try_new(64)?),
        };
        let len = enc.encode(ins, ip)?;
        let displacement = match enc.get_constant_offsets() {
            c if c.has_displacement() => Some(c.displacement_offset()),
            _ => None,
        };
        let mut b = enc.take_buffer();
        self.bytes.extend_from_slice(&b);
        b.clear();
        enc.set_buffer(b);
        Ok(Encoded { len, displacement })
    }

    /// The bytes written.
    pub(super) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests;
