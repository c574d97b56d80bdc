//! The lowering's instruction record: an operation (iced-x86's `Code`,
//! used as a name only) with its register, memory and immediate operands,
//! 24 bytes that the backend's encoder ([`super::encode`]) turns into
//! bytes.
//!
//! The lowering used to build an iced-x86 `Instruction` (40 bytes, set
//! through accessors that check every field) per instruction, and the
//! checked constructors with an immediate looked its operand kind up in
//! iced-x86's encoder tables, building them on a cold start. This record
//! holds exactly what the encoder reads, and says the immediate's kind
//! itself. iced-x86 stays the reference: [`Ins::to_iced`] gives the same
//! instruction to its `Encoder` (the tests compare the bytes, and an
//! operation the encoder has no form for falls back to it).

use iced_x86::{Code, Instruction, OpKind, Register};

/// The kind of an immediate operand, as the instruction's form takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ImmKind {
    /// `imm8`, as is (shift counts, bit numbers).
    U8,
    /// `imm8` sign-extended to 32 bits.
    S8to32,
    /// `imm8` sign-extended to 64 bits.
    S8to64,
    /// `imm32`, zero-extended by a 32-bit destination.
    U32,
    /// `imm32` sign-extended to 64 bits.
    S32,
    /// `imm64`.
    U64,
}

impl ImmKind {
    /// iced-x86's name for the kind.
    pub(super) fn op_kind(self) -> OpKind {
        match self {
            ImmKind::U8 => OpKind::Immediate8,
            ImmKind::S8to32 => OpKind::Immediate8to32,
            ImmKind::S8to64 => OpKind::Immediate8to64,
            ImmKind::U32 => OpKind::Immediate32,
            ImmKind::S32 => OpKind::Immediate32to64,
            ImmKind::U64 => OpKind::Immediate64,
        }
    }
}

/// An immediate operand of the kind the instruction's form takes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Imm {
    /// `imm8`, as is (shift counts, bit numbers).
    U8(u8),
    /// `imm8` sign-extended to 32 bits.
    S8to32(i8),
    /// `imm8` sign-extended to 64 bits.
    S8to64(i8),
    /// `imm32`, zero-extended by a 32-bit destination.
    U32(u32),
    /// `imm32` sign-extended to 64 bits.
    S32(i32),
    /// `imm64`.
    U64(u64),
}

impl Imm {
    /// The kind and the bits the encoder writes (the low 1, 4 or 8 bytes).
    fn split(self) -> (ImmKind, u64) {
        match self {
            Imm::U8(v) => (ImmKind::U8, u64::from(v)),
            Imm::S8to32(v) => (ImmKind::S8to32, v as u8 as u64),
            Imm::S8to64(v) => (ImmKind::S8to64, v as u8 as u64),
            Imm::U32(v) => (ImmKind::U32, u64::from(v)),
            Imm::S32(v) => (ImmKind::S32, v as u32 as u64),
            Imm::U64(v) => (ImmKind::U64, v),
        }
    }
}

/// A memory operand `[base + index * scale + disp]`, or `[rip + disp]`
/// with `disp` counted from the instruction's first byte (the encoder
/// makes it relative to the instruction's end, as the hardware reads it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Mem {
    pub base: Register,
    /// `Register::None` for none.
    pub index: Register,
    pub scale: u8,
    /// iced-x86's displacement size: 0 for none (a disp8 of 0 over rbp
    /// and r13, which need one), 1 for disp8 when the value fits, 8 for
    /// disp32 whatever the value.
    pub displ_size: u8,
    pub disp: i32,
}

impl Mem {
    /// `[base]`.
    pub(super) fn base(base: Register) -> Mem {
        Mem {
            base,
            index: Register::None,
            scale: 1,
            displ_size: 0,
            disp: 0,
        }
    }

    /// `[base + disp]`.
    pub(super) fn base_disp(base: Register, disp: i32) -> Mem {
        Mem {
            displ_size: 1,
            disp,
            ..Mem::base(base)
        }
    }

    /// `[base + index * scale]` (`scale` 1, 2, 4 or 8).
    pub(super) fn base_index(base: Register, index: Register, scale: u8) -> Mem {
        Mem {
            index,
            scale,
            ..Mem::base(base)
        }
    }

    /// `[index * scale]` without a base (`scale` 1, 2, 4 or 8), which
    /// x86-64 encodes with a 32-bit displacement of 0.
    pub(super) fn index_only(index: Register, scale: u8) -> Mem {
        Mem {
            base: Register::None,
            index,
            scale,
            displ_size: 8,
            disp: 0,
        }
    }

    /// `[base + index * scale + disp]` (`scale` 1, 2, 4 or 8).
    pub(super) fn indexed(base: Register, index: Register, scale: u8, disp: i32) -> Mem {
        Mem {
            base,
            index,
            scale,
            displ_size: 1,
            disp,
        }
    }

    /// `[rip + pool entry]`: its displacement is patched when the pool's
    /// place is known.
    pub(super) fn pool() -> Mem {
        Mem::base_disp(Register::RIP, 0)
    }
}

/// One operand of an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operand {
    None,
    Reg(Register),
    /// The instruction's memory operand, [`Ins::mem`].
    Mem,
    /// The instruction's immediate, [`Ins::imm`], of this kind.
    Imm(ImmKind),
}

/// A register or memory operand, what the constructors take.
#[derive(Clone, Copy, Debug)]
pub(super) enum Arg {
    Reg(Register),
    Mem(Mem),
}

impl From<Register> for Arg {
    fn from(r: Register) -> Arg {
        Arg::Reg(r)
    }
}

impl From<Mem> for Arg {
    fn from(m: Mem) -> Arg {
        Arg::Mem(m)
    }
}

/// One instruction: at most one memory operand and one immediate, as in
/// every form the backend emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ins {
    pub code: Code,
    pub ops: [Operand; 3],
    pub mem: Mem,
    /// The immediate's bits (see [`Imm`]).
    pub imm: u64,
}

impl Ins {
    /// `code` without operands.
    pub(super) fn with(code: Code) -> Ins {
        Ins {
            code,
            ops: [Operand::None; 3],
            mem: Mem::base(Register::None),
            imm: 0,
        }
    }

    /// Sets operand `n` to `arg`.
    fn arg(mut self, n: usize, arg: Arg) -> Ins {
        let op = match arg {
            Arg::Reg(r) => Operand::Reg(r),
            Arg::Mem(m) => {
                self.mem = m;
                Operand::Mem
            }
        };
        if let Some(slot) = self.ops.get_mut(n) {
            *slot = op;
        }
        self
    }

    /// Sets operand `n` to `imm`.
    fn immediate(mut self, n: usize, imm: Imm) -> Ins {
        let (kind, bits) = imm.split();
        if let Some(slot) = self.ops.get_mut(n) {
            *slot = Operand::Imm(kind);
        }
        self.imm = bits;
        self
    }

    /// `code a`.
    pub(super) fn with1(code: Code, a: impl Into<Arg>) -> Ins {
        Ins::with(code).arg(0, a.into())
    }

    /// `code a, b`.
    pub(super) fn with2(code: Code, a: impl Into<Arg>, b: impl Into<Arg>) -> Ins {
        Ins::with(code).arg(0, a.into()).arg(1, b.into())
    }

    /// `code a, imm`.
    pub(super) fn with_imm(code: Code, a: impl Into<Arg>, imm: Imm) -> Ins {
        Ins::with(code).arg(0, a.into()).immediate(1, imm)
    }

    /// `code a, b, imm`.
    pub(super) fn with2_imm(code: Code, a: impl Into<Arg>, b: impl Into<Arg>, imm: Imm) -> Ins {
        Ins::with2(code, a, b).immediate(2, imm)
    }

    /// The same instruction as iced-x86 builds it, placed at `ip` (which
    /// a rip-relative operand's target depends on): what its `Encoder`
    /// takes, for the reference encoding and the fallback.
    pub(super) fn to_iced(self, ip: u64) -> Instruction {
        let mut ins = Instruction::default();
        ins.set_code(self.code);
        for (n, op) in (0u32..).zip(self.ops) {
            match op {
                Operand::None => {}
                Operand::Reg(r) => {
                    ins.set_op_kind(n, OpKind::Register);
                    // Only fails for an operand number past 4.
                    let _ = ins.try_set_op_register(n, r);
                }
                Operand::Mem => {
                    let m = self.mem;
                    ins.set_op_kind(n, OpKind::Memory);
                    ins.set_memory_base(m.base);
                    ins.set_memory_index(m.index);
                    ins.set_memory_index_scale(u32::from(m.scale));
                    ins.set_memory_displ_size(u32::from(m.displ_size));
                    let disp = i64::from(m.disp) as u64;
                    ins.set_memory_displacement64(if m.base == Register::RIP {
                        ip.wrapping_add(disp)
                    } else {
                        disp
                    });
                }
                Operand::Imm(kind) => {
                    ins.set_op_kind(n, kind.op_kind());
                    let v = self.imm;
                    match kind {
                        ImmKind::U8 => ins.set_immediate8(v as u8),
                        ImmKind::S8to32 => ins.set_immediate8to32(i32::from(v as u8 as i8)),
                        ImmKind::S8to64 => ins.set_immediate8to64(i64::from(v as u8 as i8)),
                        ImmKind::U32 => ins.set_immediate32(v as u32),
                        ImmKind::S32 => ins.set_immediate32to64(i64::from(v as u32 as i32)),
                        ImmKind::U64 => ins.set_immediate64(v),
                    }
                }
            }
        }
        ins
    }

    /// The record of an iced-x86 instruction placed at `ip`, `None` when
    /// it has something the record cannot hold (prefixes, a second memory
    /// operand or immediate, a displacement or rip-relative target past
    /// 32 bits): for the tests that compare the encoder with iced-x86's.
    #[cfg(test)]
    pub(super) fn from_iced(ins: &Instruction, ip: u64) -> Option<Ins> {
        if ins.has_lock_prefix()
            || ins.has_rep_prefix()
            || ins.has_repne_prefix()
            || ins.segment_prefix() != Register::None
            || ins.op_count() > 3
        {
            return None;
        }
        let mut out = Ins::with(ins.code());
        let (mut mems, mut imms) = (0, 0);
        for n in 0..ins.op_count() {
            let op = match ins.op_kind(n) {
                OpKind::Register => Operand::Reg(ins.op_register(n)),
                OpKind::Memory => {
                    mems += 1;
                    let base = ins.memory_base();
                    let d = ins.memory_displacement64();
                    let disp = if base == Register::RIP {
                        d.wrapping_sub(ip)
                    } else {
                        d
                    };
                    out.mem = Mem {
                        base,
                        index: ins.memory_index(),
                        scale: u8::try_from(ins.memory_index_scale()).ok()?,
                        displ_size: u8::try_from(ins.memory_displ_size()).ok()?,
                        disp: i32::try_from(disp as i64).ok()?,
                    };
                    Operand::Mem
                }
                kind => {
                    imms += 1;
                    let (k, v) = match kind {
                        OpKind::Immediate8 => (ImmKind::U8, u64::from(ins.immediate8())),
                        OpKind::Immediate8to32 => (ImmKind::S8to32, u64::from(ins.immediate8())),
                        OpKind::Immediate8to64 => (ImmKind::S8to64, u64::from(ins.immediate8())),
                        OpKind::Immediate32 => (ImmKind::U32, u64::from(ins.immediate32())),
                        OpKind::Immediate32to64 => (ImmKind::S32, u64::from(ins.immediate32())),
                        OpKind::Immediate64 => (ImmKind::U64, ins.immediate64()),
                        _ => return None,
                    };
                    out.imm = v;
                    Operand::Imm(k)
                }
            };
            *out.ops.get_mut(n as usize)? = op;
        }
        (mems <= 1 && imms <= 1).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{Imm, Ins, Mem};
    use iced_x86::{Code, Register};

    #[test]
    fn the_record_is_smaller_than_iced_x86s() {
        assert_eq!(std::mem::size_of::<Ins>(), 24);
        assert!(std::mem::size_of::<Ins>() < std::mem::size_of::<iced_x86::Instruction>());
    }

    #[test]
    fn records_go_to_iced_x86_and_back_unchanged() {
        let ip = 0x1000;
        for ins in [
            Ins::with2(
                Code::Mov_r64_rm64,
                Register::RAX,
                Mem::base_disp(Register::RSP, 8),
            ),
            Ins::with2(
                Code::Lea_r64_m,
                Register::R9,
                Mem::indexed(Register::R13, Register::RCX, 8, -4),
            ),
            Ins::with1(Code::Call_rm64, Mem::base_disp(Register::RIP, 0x40)),
            Ins::with_imm(Code::Cmp_rm64_imm8, Register::RDX, Imm::S8to64(-1)),
            Ins::with_imm(Code::Mov_rm64_imm32, Mem::base(Register::RBX), Imm::S32(-7)),
            Ins::with2_imm(
                Code::Imul_r64_rm64_imm32,
                Register::RAX,
                Register::RAX,
                Imm::S32(i32::MIN),
            ),
            Ins::with_imm(Code::Mov_r64_imm64, Register::R15, Imm::U64(u64::MAX - 1)),
            Ins::with_imm(Code::Mov_r32_imm32, Register::ESI, Imm::U32(u32::MAX)),
        ] {
            assert_eq!(Ins::from_iced(&ins.to_iced(ip), ip), Some(ins), "{ins:?}");
        }
    }
}
