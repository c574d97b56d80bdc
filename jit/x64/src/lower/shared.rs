//! Lowering of the operations on shared memories and tables (§15 of the
//! IR's documentation).
//!
//! The code keeps no copy of a descriptor's length: each operation embeds
//! the descriptor's address (what the resolver answered, fixed for the
//! code's life) and reads the length from it at every access, so a grow by
//! any thread, or by a call this code made, is seen by the next access. A
//! memory access of `size` bytes at offset `o` in a register, in a
//! function that calls something:
//!
//! ```text
//! mov r10, descriptor
//! mov rax, o
//! add rax, size        ; the end; a carry means o + size wrapped (o < 0)
//! jb  out_of_bounds
//! cmp rax, [r10 + 8]   ; the length, read now
//! ja  out_of_bounds
//! mov r10, [r10]       ; the base, read now
//! mov d, [r10 + o]
//! ```
//!
//! x86-64 keeps loads in order, so the length is read before the bytes it
//! covers: the `Acquire` of the descriptor's grow protocol, which made
//! those bytes accessible before it published the length. Lengths only
//! grow and the base never moves, so a length read earlier than a grow by
//! another thread only ever refuses an access that the grow would have
//! allowed, never the reverse.
//!
//! Three refinements keep the check cheap in loops:
//!
//! - In a function that calls nothing, nothing it runs can grow the
//!   memory, so the register allocator gives the descriptor's address and
//!   the base places of their own for the whole function
//!   (`regalloc::Shared`) and the prologue reads the base once
//!   ([`Lower::load_bases`]); the length is still read at every access,
//!   `cmp rax, [descriptor + 8]`.
//! - When the offset is known to be at most 2^62 (`offsets`: a loop
//!   counter stepped after an access at it, for one), the end cannot wrap
//!   and is computed without the carry test: `lea rax, [o + size]`, then
//!   the comparison, one branch in all.
//! - A constant offset folds its end into the comparison (`cmp qword
//!   [descriptor + 8], end`), and one that can never be in bounds
//!   (negative, or ending past the largest memory) jumps to the trap.
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
use crate::regalloc::{Allocation, Loc, Shared};

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

/// Where an access lies relative to the base, before the base's register
/// is known.
#[derive(Clone, Copy, Debug)]
enum At {
    /// A constant displacement.
    Disp(i32),
    /// A register scaled by 1 or 8.
    Index(Register, u8),
}

impl At {
    /// The memory operand of the access from `base`.
    fn from(self, base: Register) -> Mem {
        match self {
            At::Disp(disp) => Mem::base_disp(base, disp),
            At::Index(index, scale) => Mem::base_index(base, index, scale),
        }
    }
}

impl<'a> Lower<'a> {
    /// Lowers one operation on a shared memory or table.
    pub(super) fn shared(&mut self, op: &'a Op, dst: Loc) -> Result<(), Error> {
        match op {
            Op::MemLoad { ty, memory, offset } => {
                let size = self.access_size(ty)?;
                let m = self.memory_access(memory, self.loc(*offset), size)?;
                self.load(ty, dst, m);
            }
            Op::MemStore {
                ty,
                memory,
                offset,
                value,
            } => {
                let size = self.access_size(ty)?;
                let m = self.memory_access(memory, self.loc(*offset), size)?;
                // rax is free once the bounds are checked; the access may
                // use r11.
                self.store(ty, m, self.loc(*value), Register::RAX);
            }
            Op::MemSize { memory } => {
                let d = self.length(Space::Memory, memory, dst)?;
                self.asm.reg_imm(
                    Code::Shr_rm64_imm8,
                    d,
                    None,
                    Imm::U8(PAGE_SIZE.trailing_zeros() as u8),
                );
                self.asm.store_gpr(dst, d);
            }
            Op::TableSize { table } => {
                let d = self.length(Space::Table, table, dst)?;
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
                let entry = self.table_entry(table, self.loc(*index))?;
                let d = Asm::dst_gpr(dst, Register::RAX);
                self.asm.push(Ins::with2(Code::Mov_r64_rm64, d, entry));
                self.asm.store_gpr(dst, d);
            }
            Op::TableSet {
                table,
                index,
                value,
            } => {
                let entry = self.table_entry(table, self.loc(*index))?;
                let v = self.asm.gpr(self.loc(*value), Register::RAX);
                self.asm.push(Ins::with2(Code::Mov_rm64_r64, entry, v));
            }
            Op::CallTable {
                table,
                sig,
                index,
                args,
            } => {
                let entry = self.table_entry(table, self.loc(*index))?;
                self.asm
                    .push(Ins::with2(Code::Mov_r64_rm64, SCRATCH_A, entry));
                self.call(sig, args, dst, Via::Loaded);
            }
            _ => return Err(self.unsupported("an operation on no shared memory or table")),
        }
        Ok(())
    }

    /// Loads the base of every memory and table the allocator gave a
    /// place for the whole function (see `regalloc::Shared`), once, in
    /// the prologue; puts the descriptor addresses that have a register
    /// of their own there.
    pub(super) fn load_bases(&mut self) -> Result<(), Error> {
        let alloc: &'a Allocation = self.alloc;
        for h in &alloc.shared {
            let address = self.descriptor(h.space, &h.name)?;
            let d = match h.descriptor {
                Loc::Gpr(r) => r,
                _ => SCRATCH_A,
            };
            self.asm.mov_imm(d, address);
            match h.base {
                Loc::Gpr(b) => self
                    .asm
                    .push(Ins::with2(Code::Mov_r64_rm64, b, Mem::base(d))),
                Loc::Stack(_) => {
                    self.asm
                        .push(Ins::with2(Code::Mov_r64_rm64, SCRATCH_A, Mem::base(d)));
                    self.asm.store_gpr(h.base, SCRATCH_A);
                }
                _ => {}
            }
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

    /// Where the allocator keeps the descriptor and base of `name` for the
    /// whole function, if it does.
    fn hoisted(&self, space: Space, name: &str) -> Option<&'a Shared> {
        let alloc: &'a Allocation = self.alloc;
        alloc
            .shared
            .iter()
            .find(|h| h.space == space && h.name == name)
    }

    /// A register holding the descriptor's address: its own for the
    /// function, or r10 with the address loaded now.
    fn descriptor_register(&mut self, space: Space, name: &'a str) -> Result<Register, Error> {
        let address = self.descriptor(space, name)?;
        if let Some(Loc::Gpr(r)) = self.hoisted(space, name).map(|h| h.descriptor) {
            return Ok(r);
        }
        self.asm.mov_imm(SCRATCH_A, address);
        Ok(SCRATCH_A)
    }

    /// A register holding the base, once the bounds are checked: its own
    /// for the function, or r10 with the base read from its spill slot or
    /// from the descriptor in `descriptor`.
    fn base_register(&mut self, space: Space, name: &str, descriptor: Register) -> Register {
        match self.hoisted(space, name).map(|h| h.base) {
            Some(Loc::Gpr(b)) => b,
            Some(at @ Loc::Stack(_)) => {
                self.asm.load_gpr(SCRATCH_A, at);
                SCRATCH_A
            }
            _ => {
                self.asm.push(Ins::with2(
                    Code::Mov_r64_rm64,
                    SCRATCH_A,
                    Mem::base(descriptor),
                ));
                SCRATCH_A
            }
        }
    }

    /// Reads the length of `name` into the register of `dst` (rax when it
    /// has none) and returns that register.
    fn length(&mut self, space: Space, name: &'a str, dst: Loc) -> Result<Register, Error> {
        let descriptor = self.descriptor_register(space, name)?;
        let d = Asm::dst_gpr(dst, Register::RAX);
        self.asm.push(Ins::with2(
            Code::Mov_r64_rm64,
            d,
            Mem::base_disp(descriptor, LENGTH),
        ));
        Ok(d)
    }

    /// Checks that `size` bytes at `offset` lie within the length of the
    /// memory `name` (trapping `OutOfBounds` otherwise) and returns the
    /// operand of the access. Clobbers rax and r10; a spilled offset is
    /// read into r11, which the operand then uses.
    fn memory_access(&mut self, name: &'a str, offset: Loc, size: u64) -> Result<Mem, Error> {
        let out = self.trap_label(TRAP_OUT_OF_BOUNDS, 0);
        let descriptor = self.descriptor_register(Space::Memory, name)?;
        let length = Mem::base_disp(descriptor, LENGTH);
        let at = match offset {
            Loc::Imm(o) => match o.checked_add(size).filter(|&e| e <= MAX_MEMORY_BYTES) {
                Some(end) => {
                    self.length_at_least(length, end, out);
                    match i32::try_from(o) {
                        Ok(disp) => At::Disp(disp),
                        Err(_) => {
                            self.asm.mov_imm(SCRATCH_B, o);
                            At::Index(SCRATCH_B, 1)
                        }
                    }
                }
                None => {
                    self.asm.jmp(out);
                    At::Disp(0)
                }
            },
            _ => {
                let o = self.asm.gpr(offset, SCRATCH_B);
                // Sizes are 1 to 8 bytes.
                if self.bounded.get(self.position) == Some(&true) {
                    // The offset is at most 2^62: the end cannot wrap.
                    self.asm.push(Ins::with2(
                        Code::Lea_r64_m,
                        Register::RAX,
                        Mem::base_disp(o, size as i32),
                    ));
                } else {
                    self.asm.mov(Register::RAX, o);
                    self.asm.reg_imm(
                        Code::Add_rm64_imm8,
                        Register::RAX,
                        None,
                        Imm::S8to64(size as i8),
                    );
                    self.asm.jcc(Cc::B, out);
                }
                self.asm
                    .push(Ins::with2(Code::Cmp_r64_rm64, Register::RAX, length));
                self.asm.jcc(Cc::A, out);
                At::Index(o, 1)
            }
        };
        let base = self.base_register(Space::Memory, name, descriptor);
        Ok(at.from(base))
    }

    /// Checks `index < length` of the table `name` (trapping
    /// `OutOfBounds` otherwise) and returns the operand of the entry.
    /// Clobbers r10; a spilled index is read into r11, which the operand
    /// then uses.
    fn table_entry(&mut self, name: &'a str, index: Loc) -> Result<Mem, Error> {
        let out = self.trap_label(TRAP_OUT_OF_BOUNDS, 0);
        let descriptor = self.descriptor_register(Space::Table, name)?;
        let length = Mem::base_disp(descriptor, LENGTH);
        let at = match index {
            // Below the limit, 8 × index fits a displacement.
            Loc::Imm(i) if i < MAX_TABLE_ENTRIES => {
                self.length_at_least(length, i + 1, out);
                At::Disp((i * TABLE_ENTRY_SIZE) as i32)
            }
            Loc::Imm(_) => {
                self.asm.jmp(out);
                At::Disp(0)
            }
            _ => {
                let x = self.asm.gpr(index, SCRATCH_B);
                self.asm.push(Ins::with2(Code::Cmp_r64_rm64, x, length));
                self.asm.jcc(Cc::Ae, out);
                At::Index(x, TABLE_ENTRY_SIZE as u8)
            }
        };
        let base = self.base_register(Space::Table, name, descriptor);
        Ok(at.from(base))
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
