//! Lowering of the operations on shared memories and tables (§15 of the
//! IR's documentation).
//!
//! The code keeps no copy of a descriptor's fields: each operation embeds
//! the descriptor's address (what the resolver answered, fixed for the
//! code's life) and reads what it needs from it when it runs — the length
//! at every access, then the base — so a grow by any thread, or by a call
//! this code made, is seen by the next access, and no base outlives the
//! access it was read for. A memory access of `size` bytes at offset `o`
//! in a register:
//!
//! ```text
//! mov r10, descriptor
//! mov rax, o
//! add rax, size        ; the end; a carry means o + size wrapped (o < 0)
//! jb  out_of_bounds
//! cmp rax, [r10 + 8]   ; the length, read now
//! ja  out_of_bounds
//! mov r10, [r10]       ; the base
//! mov d, [r10 + o]
//! ```
//!
//! x86-64 keeps loads in order, so the length is read before the bytes it
//! covers: the `Acquire` of the descriptor's grow protocol, which made
//! those bytes accessible before it published the length. Lengths only
//! grow and the base never moves, so a length read earlier than a grow by
//! another thread only ever refuses an access that the grow would have
//! allowed, never the reverse. A constant offset folds its end into the
//! comparison (`cmp qword [r10 + 8], end`), and one that can never be in
//! bounds (negative, or ending past the largest memory) jumps to the trap.
//!
//! Table entries are checked as `index < length` and read or written as
//! 8-byte function addresses at `base + 8 × index`; `call_table` loads
//! the entry into the register `call_indirect` calls through and shares
//! its lowering, null check included. `mem_grow` and `table_grow` call
//! [`jit_shared::memory_grow`] and [`jit_shared::table_grow`] through the
//! constant pool with the descriptor and the delta as arguments; the
//! register allocator counts them as calls, so values live across them
//! are in callee-saved registers or spill slots.

use iced_x86::{Code, Register};
use jit_ir::ir::Op;
use jit_shared::limits::{MAX_MEMORY_PAGES, MAX_TABLE_ENTRIES, PAGE_SIZE, TABLE_ENTRY_SIZE};
use jit_shared::{
    MEMORY_BASE_OFFSET, MEMORY_LENGTH_OFFSET, Space, TABLE_BASE_OFFSET, TABLE_LENGTH_OFFSET,
};

use super::{Error, Lower, TRAP_OUT_OF_BOUNDS, Via};
use crate::asm::{Asm, SCRATCH_A, SCRATCH_B};
use crate::emit::Cc;
use crate::inst::{Imm, Ins, Mem};
use crate::moves::{Move, parallel};
use crate::regalloc::Loc;

/// The length's offset in both descriptors; the base is at offset 0.
const LENGTH: i32 = MEMORY_LENGTH_OFFSET as i32;

const _: () = {
    assert!(MEMORY_BASE_OFFSET == 0 && TABLE_BASE_OFFSET == 0);
    assert!(MEMORY_LENGTH_OFFSET == TABLE_LENGTH_OFFSET);
    assert!(MEMORY_LENGTH_OFFSET <= i32::MAX as usize);
    assert!(PAGE_SIZE.is_power_of_two());
    assert!(TABLE_ENTRY_SIZE == 8);
};

/// The largest length of any memory, in bytes: an access ending past it
/// is out of bounds whatever the memory.
const MAX_MEMORY_BYTES: u64 = MAX_MEMORY_PAGES * PAGE_SIZE;

impl<'a> Lower<'a> {
    /// Lowers one operation on a shared memory or table.
    pub(super) fn shared(&mut self, op: &'a Op, dst: Loc) -> Result<(), Error> {
        match op {
            Op::MemLoad { ty, memory, offset } => {
                let size = self.access_size(ty)?;
                let descriptor = self.descriptor(Space::Memory, memory)?;
                let m = self.memory_access(descriptor, self.loc(*offset), size);
                self.load(ty, dst, m);
            }
            Op::MemStore {
                ty,
                memory,
                offset,
                value,
            } => {
                let size = self.access_size(ty)?;
                let descriptor = self.descriptor(Space::Memory, memory)?;
                let m = self.memory_access(descriptor, self.loc(*offset), size);
                // rax is free once the bounds are checked; the access may
                // use r11.
                self.store(ty, m, self.loc(*value), Register::RAX);
            }
            Op::MemSize { memory } => {
                let descriptor = self.descriptor(Space::Memory, memory)?;
                let d = self.length(descriptor, dst);
                self.asm.reg_imm(
                    Code::Shr_rm64_imm8,
                    d,
                    None,
                    Imm::U8(PAGE_SIZE.trailing_zeros() as u8),
                );
                self.asm.store_gpr(dst, d);
            }
            Op::TableSize { table } => {
                let descriptor = self.descriptor(Space::Table, table)?;
                let d = self.length(descriptor, dst);
                self.asm.store_gpr(dst, d);
            }
            Op::MemGrow { memory, delta } => {
                let descriptor = self.descriptor(Space::Memory, memory)?;
                self.grow(Space::Memory, descriptor, self.loc(*delta), dst);
            }
            Op::TableGrow { table, delta } => {
                let descriptor = self.descriptor(Space::Table, table)?;
                self.grow(Space::Table, descriptor, self.loc(*delta), dst);
            }
            Op::TableGet { table, index } => {
                let descriptor = self.descriptor(Space::Table, table)?;
                let entry = self.table_entry(descriptor, self.loc(*index));
                let d = Asm::dst_gpr(dst, Register::RAX);
                self.asm.push(Ins::with2(Code::Mov_r64_rm64, d, entry));
                self.asm.store_gpr(dst, d);
            }
            Op::TableSet {
                table,
                index,
                value,
            } => {
                let descriptor = self.descriptor(Space::Table, table)?;
                let entry = self.table_entry(descriptor, self.loc(*index));
                let v = self.asm.gpr(self.loc(*value), Register::RAX);
                self.asm.push(Ins::with2(Code::Mov_rm64_r64, entry, v));
            }
            Op::CallTable {
                table,
                sig,
                index,
                args,
            } => {
                let descriptor = self.descriptor(Space::Table, table)?;
                let entry = self.table_entry(descriptor, self.loc(*index));
                self.asm
                    .push(Ins::with2(Code::Mov_r64_rm64, SCRATCH_A, entry));
                self.call(sig, args, dst, Via::Loaded);
            }
            _ => return Err(self.unsupported("an operation on no shared memory or table")),
        }
        Ok(())
    }

    /// The bytes a `mem_load` or `mem_store` of `ty` accesses.
    fn access_size(&self, ty: &jit_ir::ir::Type) -> Result<u64, Error> {
        ty.scalar_size()
            .ok_or_else(|| self.unsupported(format!("a shared memory access of {ty}")))
    }

    /// The address of the descriptor of the memory or table `name`, asked
    /// of the environment once per function.
    fn descriptor(&mut self, space: Space, name: &'a str) -> Result<u64, Error> {
        if let Some(&(_, _, address)) = self
            .descriptors
            .iter()
            .find(|(s, n, _)| *s == space && *n == name)
        {
            return Ok(address);
        }
        let address = self.env.descriptor(space, name)?;
        self.descriptors.push((space, name, address));
        Ok(address)
    }

    /// Reads the length of the descriptor at `descriptor` into the
    /// register of `dst` (rax when it has none) and returns that register.
    fn length(&mut self, descriptor: u64, dst: Loc) -> Register {
        let d = Asm::dst_gpr(dst, Register::RAX);
        self.asm.mov_imm(SCRATCH_A, descriptor);
        self.asm.push(Ins::with2(
            Code::Mov_r64_rm64,
            d,
            Mem::base_disp(SCRATCH_A, LENGTH),
        ));
        d
    }

    /// Checks that `size` bytes at `offset` lie within the length of the
    /// memory at `descriptor` (trapping `OutOfBounds` otherwise), leaves
    /// the memory's base in r10 and returns the operand of the access
    /// relative to it. Clobbers rax; a spilled offset is read into r11,
    /// which the operand then uses.
    fn memory_access(&mut self, descriptor: u64, offset: Loc, size: u64) -> Mem {
        let out = self.trap_label(TRAP_OUT_OF_BOUNDS, 0);
        self.asm.mov_imm(SCRATCH_A, descriptor);
        let length = Mem::base_disp(SCRATCH_A, LENGTH);
        let access = match offset {
            Loc::Imm(o) => match o.checked_add(size).filter(|&e| e <= MAX_MEMORY_BYTES) {
                Some(end) => {
                    self.length_at_least(length, end, out);
                    match i32::try_from(o) {
                        Ok(disp) => Mem::base_disp(SCRATCH_A, disp),
                        Err(_) => {
                            self.asm.mov_imm(SCRATCH_B, o);
                            Mem::base_index(SCRATCH_A, SCRATCH_B, 1)
                        }
                    }
                }
                None => {
                    self.asm.jmp(out);
                    Mem::base(SCRATCH_A)
                }
            },
            _ => {
                let o = self.asm.gpr(offset, SCRATCH_B);
                self.asm.mov(Register::RAX, o);
                // Sizes are 1 to 8 bytes.
                self.asm.reg_imm(
                    Code::Add_rm64_imm8,
                    Register::RAX,
                    None,
                    Imm::S8to64(size as i8),
                );
                self.asm.jcc(Cc::B, out);
                self.asm
                    .push(Ins::with2(Code::Cmp_r64_rm64, Register::RAX, length));
                self.asm.jcc(Cc::A, out);
                Mem::base_index(SCRATCH_A, o, 1)
            }
        };
        self.base();
        access
    }

    /// Checks `index < length` of the table at `descriptor` (trapping
    /// `OutOfBounds` otherwise), leaves the table's base in r10 and
    /// returns the operand of the entry. A spilled index is read into r11,
    /// which the operand then uses.
    fn table_entry(&mut self, descriptor: u64, index: Loc) -> Mem {
        let out = self.trap_label(TRAP_OUT_OF_BOUNDS, 0);
        self.asm.mov_imm(SCRATCH_A, descriptor);
        let length = Mem::base_disp(SCRATCH_A, LENGTH);
        let entry = match index {
            // Below the limit, 8 × index fits a displacement.
            Loc::Imm(i) if i < MAX_TABLE_ENTRIES => {
                self.length_at_least(length, i + 1, out);
                Mem::base_disp(SCRATCH_A, (i * TABLE_ENTRY_SIZE) as i32)
            }
            Loc::Imm(_) => {
                self.asm.jmp(out);
                Mem::base(SCRATCH_A)
            }
            _ => {
                let x = self.asm.gpr(index, SCRATCH_B);
                self.asm.push(Ins::with2(Code::Cmp_r64_rm64, x, length));
                self.asm.jcc(Cc::Ae, out);
                Mem::base_index(SCRATCH_A, x, TABLE_ENTRY_SIZE as u8)
            }
        };
        self.base();
        entry
    }

    /// Jumps to `out` unless the length at `length` is at least `end`
    /// (at most [`MAX_MEMORY_BYTES`]).
    fn length_at_least(&mut self, length: Mem, end: u64, out: u32) {
        match (i8::try_from(end), i32::try_from(end)) {
            (Ok(e), _) => self
                .asm
                .push(Ins::with_imm(Code::Cmp_rm64_imm8, length, Imm::S8to64(e))),
            (_, Ok(e)) => self
                .asm
                .push(Ins::with_imm(Code::Cmp_rm64_imm32, length, Imm::S32(e))),
            _ => {
                self.asm.mov_imm(Register::RAX, end);
                self.asm
                    .push(Ins::with2(Code::Cmp_r64_rm64, Register::RAX, length));
                self.asm.jcc(Cc::A, out);
                return;
            }
        }
        self.asm.jcc(Cc::B, out);
    }

    /// Replaces the descriptor in r10 by the base it holds.
    fn base(&mut self) {
        self.asm.push(Ins::with2(
            Code::Mov_r64_rm64,
            SCRATCH_A,
            Mem::base(SCRATCH_A),
        ));
    }

    /// Calls the runtime's grow of `space` with the descriptor and `delta`;
    /// the old size (or -1) goes to `dst`.
    fn grow(&mut self, space: Space, descriptor: u64, delta: Loc, dst: Loc) {
        let function = match space {
            Space::Memory => jit_shared::memory_grow as *const () as usize as u64,
            Space::Table => jit_shared::table_grow as *const () as usize as u64,
        };
        let mut moves = self.take_moves(0);
        moves.push(Move {
            dst: Loc::Gpr(Register::RDI),
            src: Loc::Imm(descriptor),
            float: false,
        });
        moves.push(Move {
            dst: Loc::Gpr(Register::RSI),
            src: delta,
            float: false,
        });
        parallel(&mut self.asm, &mut moves);
        self.moves[0] = moves;
        let entry = self.asm.constant(function);
        self.asm
            .pool_op(Ins::with1(Code::Call_rm64, Mem::pool()), entry);
        self.asm.store_gpr(dst, Register::RAX);
    }
}
