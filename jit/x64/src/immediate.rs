//! Instructions with an immediate operand, built field by field.
//!
//! iced-x86's checked constructors (`Instruction::with2(code, reg, imm)`
//! and the like) look the immediate's operand kind up in its encoder
//! tables, which builds them the first time: thousands of allocations on
//! a cold start, and a table look-up on every call after. The backend
//! knows each form's immediate kind, so it says it here; the encoder still
//! checks the kind against the form and refuses a mismatch.

use iced_x86::{Code, Instruction, MemoryOperand, OpKind, Register};

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

/// Sets operand `op` of `ins` to `imm`.
fn set_immediate(ins: &mut Instruction, op: u32, imm: Imm) {
    let kind = match imm {
        Imm::U8(v) => {
            ins.set_immediate8(v);
            OpKind::Immediate8
        }
        Imm::S8to32(v) => {
            ins.set_immediate8to32(i32::from(v));
            OpKind::Immediate8to32
        }
        Imm::S8to64(v) => {
            ins.set_immediate8to64(i64::from(v));
            OpKind::Immediate8to64
        }
        Imm::U32(v) => {
            ins.set_immediate32(v);
            OpKind::Immediate32
        }
        Imm::S32(v) => {
            ins.set_immediate32to64(i64::from(v));
            OpKind::Immediate32to64
        }
        Imm::U64(v) => {
            ins.set_immediate64(v);
            OpKind::Immediate64
        }
    };
    ins.set_op_kind(op, kind);
}

/// `code reg, [reg2,] imm`.
pub(super) fn reg_imm(code: Code, reg: Register, reg2: Option<Register>, imm: Imm) -> Instruction {
    let mut ins = Instruction::default();
    ins.set_code(code);
    ins.set_op0_kind(OpKind::Register);
    ins.set_op0_register(reg);
    let op = match reg2 {
        Some(r) => {
            ins.set_op1_kind(OpKind::Register);
            ins.set_op1_register(r);
            2
        }
        None => 1,
    };
    set_immediate(&mut ins, op, imm);
    ins
}

/// `code [mem], imm`.
pub(super) fn mem_imm(code: Code, mem: MemoryOperand, imm: Imm) -> Instruction {
    let mut ins = Instruction::default();
    ins.set_code(code);
    ins.set_op0_kind(OpKind::Memory);
    ins.set_memory_base(mem.base);
    ins.set_memory_index(mem.index);
    ins.set_memory_index_scale(mem.scale);
    ins.set_memory_displ_size(mem.displ_size);
    ins.set_memory_displacement64(mem.displacement as u64);
    set_immediate(&mut ins, 1, imm);
    ins
}
