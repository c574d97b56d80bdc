//! Lowering: every IR operation and terminator of an allocated function
//! to x86-64 instructions.
//!
//! Values keep the interpreter's canonical form in registers: integers
//! sign- or zero-extended to 64 bits from their width, `bool` as 0 or 1,
//! `f32` in the low lane of an xmm register. Operations run on 64 bits and
//! re-extend narrow results, so comparisons, division and conversions see
//! the same bits the interpreter does. Narrow arguments arriving from
//! outside are extended at entry (System V leaves their upper bits
//! unspecified); narrow results of calls are extended after the call.
//! Returned narrow values are canonical, which satisfies any caller.
//!
//! Traps branch to a stub per (kind, code) at the end of the function
//! that calls the embedder's trap handler with `edi` = kind (0 division by
//! zero, 1 explicit `trap`, 2 null pointer, 3 out of bounds) and `esi` =
//! code; the handler never returns.
//!
//! The operations on shared memories and tables are lowered in `shared`.

use iced_x86::{Code, Register};

use super::Error;
use super::asm::{Alu, Asm, Rm, SCRATCH_A, SCRATCH_B, Sse, XSCRATCH_A, XSCRATCH_B, r8, r16, r32};
use super::emit::{Cc, Fixed, Item, SiteKind};
use super::inst::{Imm, Ins, Mem};
use super::moves::{Move, parallel, single};
use super::regalloc::{Allocation, INT_ARGS, Loc};
use jit_ir::ir::{
    BinOp, BlockCall, Callee, CmpOp, Function, IntType, Op, Reg, Signature, Terminator, Type, UnOp,
};
use jit_shared::Space;

mod offsets;
mod shared;

/// Trap kind passed in `edi`: integer division or remainder by zero.
pub const TRAP_DIVIDE_BY_ZERO: u32 = 0;
/// Trap kind passed in `edi`: a `trap` terminator (its code in `esi`).
pub const TRAP_EXPLICIT: u32 = 1;
/// Trap kind passed in `edi`: a load, store or call through null.
pub const TRAP_NULL_POINTER: u32 = 2;
/// Trap kind passed in `edi`: a shared memory or table accessed past its length.
pub const TRAP_OUT_OF_BOUNDS: u32 = 3;

/// How each callee a function reaches is reached, numbered in the order
/// the lowering met them.
pub(super) struct Externals {
    pub kinds: Vec<SiteKind>,
}

/// What the lowering asks of the embedder.
pub(super) trait Environment {
    /// How calls reach `callee` (asked once per callee).
    fn callee(&mut self, callee: &Callee) -> Result<SiteKind, Error>;
    /// The address of the descriptor of the shared memory or table `name`
    /// (asked once per name).
    fn descriptor(&mut self, space: Space, name: &str) -> Result<u64, Error>;
}

struct Lower<'a> {
    f: &'a Function,
    alloc: &'a Allocation,
    asm: Asm,
    /// The label of block 0; block `b` has label `first_block + b`.
    first_block: u32,
    traps: Vec<(u32, u32, u32)>,
    framed: bool,
    frame_bytes: u32,
    handler: u32,
    /// Loads and stores trap on a null address by faulting (see
    /// [`super::Options::implicit_null_checks`]).
    implicit_null: bool,
    ext: Externals,
    /// The name of each callee in `ext`.
    callees: Vec<&'a str>,
    env: &'a mut dyn Environment,
    /// The descriptors asked for so far.
    descriptors: Vec<(Space, &'a str, u64)>,
    /// Per instruction, whether it is a shared-memory access whose
    /// offset is known not to wrap (`offsets`); empty without accesses.
    bounded: Vec<bool>,
    /// The instruction being lowered, counted over the blocks in order.
    position: usize,
    /// The fused comparison whose result the flags hold, and the
    /// condition that means true.
    flags: Option<(Reg, Cc)>,
    /// Fused comparisons of the current block: result, operation, type,
    /// operands — compared (again) at each consumer that needs the flags.
    deferred: Vec<(Reg, CmpOp, Order, Reg, Reg)>,
    /// Move lists reused by every parallel assignment of the function (a
    /// conditional branch needs one per edge), instead of a small
    /// allocation for each.
    moves: [Vec<Move>; 2],
    /// Per register, the narrow integer type whose canonical form it may
    /// not be in (see [`mark_raw`]).
    raw: Vec<Option<IntType>>,
}

/// Lowers an allocated function; returns its instructions, pool and callees.
pub(super) fn lower(
    f: &Function,
    alloc: &Allocation,
    options: &super::Options,
    env: &mut dyn Environment,
) -> Result<(Asm, Externals), Error> {
    // The function is verified; this keeps an unverified one from indexing
    // past the block table below.
    let targets_exist = f.blocks.iter().all(|b| {
        super::regalloc::successors(&b.term)
            .into_iter()
            .flatten()
            .all(|t| t < f.blocks.len())
    });
    if !targets_exist || f.blocks.is_empty() {
        return Err(Error::unsupported(
            &f.name.to_string(),
            "a branch targets a block that does not exist (the function was not verified)",
        ));
    }
    let mut asm = Asm::new(f.inst_count() * 6 + 32);
    let handler = asm.constant(options.trap_handler);
    let first_block = asm.label();
    for _ in 1..f.blocks.len() {
        asm.label();
    }
    let scratch = jit_shared::spare::take(&SCRATCH);
    let framed = alloc.has_calls || alloc.slots > 0 || !alloc.saved.is_empty();
    let pushes = alloc.saved.len() as u32;
    let mut frame_bytes = alloc.slots * 8;
    if !(pushes * 8 + frame_bytes).is_multiple_of(16) {
        frame_bytes += 8;
    }
    let mut l = Lower {
        f,
        alloc,
        asm,
        first_block,
        traps: scratch.traps,
        framed,
        frame_bytes,
        handler,
        implicit_null: options.implicit_null_checks,
        ext: Externals {
            kinds: super::emit::spare_kinds(),
        },
        callees: Vec::new(),
        env,
        descriptors: Vec::new(),
        bounded: offsets::bounded_offsets(f),
        position: 0,
        flags: None,
        deferred: scratch.deferred,
        moves: scratch.moves,
        raw: scratch.raw,
    };
    mark_raw(f, alloc.locs.len(), alloc.narrow, &mut l.raw);
    l.prologue();
    l.load_bases()?;
    for b in 0..f.blocks.len() {
        l.block(b)?;
    }
    l.trap_stubs();
    l.deferred.clear();
    jit_shared::spare::give(
        &SCRATCH,
        Scratch {
            traps: l.traps,
            deferred: l.deferred,
            moves: l.moves,
            raw: l.raw,
        },
    );
    Ok((l.asm, l.ext))
}

/// Whether `t` is narrower than a register (its canonical form is a sign
/// or zero extension of its low bits).
fn narrow(t: IntType) -> bool {
    !matches!(t, IntType::I64 | IntType::U64)
}

/// The narrow type whose result `op` leaves raw (upper bits as the 64-bit
/// operation left them): a narrow `add`, `sub`, `mul`, `shl` or `neg`.
pub(super) fn leaves_raw(op: &Op) -> Option<IntType> {
    match op {
        Op::Binary {
            op: BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Shl,
            ty: Type::Int(t),
            ..
        }
        | Op::Unary {
            op: UnOp::Neg,
            ty: Type::Int(t),
            ..
        } if narrow(*t) => Some(*t),
        _ => None,
    }
}

/// Marks in `raw` the registers of `f` (of `n`; `any` when it has narrow
/// arithmetic at all) that may hold a narrow integer whose upper bits are
/// not its canonical extension: the results
/// of narrow `add`, `sub`, `mul`, `shl` and `neg`, which leave them as
/// the 64-bit operation did, and what is computed or passed on from such
/// a value without looking at the upper bits (`and`, `or`, `xor`,
/// `select`, block arguments), to a fixed point. Everything else is
/// canonical: loads, constants, parameters, call results, conversions.
/// An operation that reads the upper bits extends a raw operand first
/// ([`Lower::settle`]).
fn mark_raw(f: &Function, n: usize, any: bool, raw: &mut Vec<Option<IntType>>) {
    raw.clear();
    // Most functions compute nothing narrow (the allocation noticed):
    // then nothing is raw, and the list stays empty.
    if !any {
        return;
    }
    raw.resize(n, None);
    let get = |raw: &[Option<IntType>], r: Reg| raw.get(r.0 as usize).copied().flatten();
    let mut changed = true;
    while changed {
        changed = false;
        for block in &f.blocks {
            for inst in &block.insts {
                let Some(r) = inst.result else {
                    continue;
                };
                let t = leaves_raw(&inst.op).or_else(|| match &inst.op {
                    Op::Binary {
                        op: BinOp::And | BinOp::Or | BinOp::Xor,
                        lhs,
                        rhs,
                        ..
                    } => get(raw, *lhs).or(get(raw, *rhs)),
                    Op::Select {
                        if_true, if_false, ..
                    } => get(raw, *if_true).or(get(raw, *if_false)),
                    _ => None,
                });
                if let (Some(t), Some(slot)) = (t, raw.get_mut(r.0 as usize))
                    && slot.is_none()
                {
                    *slot = Some(t);
                    changed = true;
                }
            }
            for call in super::regalloc::block_calls(&block.term)
                .into_iter()
                .flatten()
            {
                let Some(target) = f.blocks.get(call.block.0 as usize) else {
                    continue;
                };
                for (a, (p, _)) in call.args.iter().zip(&target.params) {
                    if let (Some(t), Some(slot)) = (get(raw, *a), raw.get_mut(p.0 as usize))
                        && slot.is_none()
                    {
                        *slot = Some(t);
                        changed = true;
                    }
                }
            }
        }
    }
}

/// Whether `op` reads its operands' low bits only, so that a raw
/// operand needs no extension first: narrow arithmetic and bitwise
/// operations, `neg` and `not` (which extend their result), `select`, and
/// a store (which writes the low bytes).
fn reads_low_bits_only(op: &Op) -> bool {
    matches!(
        op,
        Op::Binary {
            op: BinOp::Add
                | BinOp::Sub
                | BinOp::Mul
                | BinOp::And
                | BinOp::Or
                | BinOp::Xor
                | BinOp::Shl,
            ..
        } | Op::Unary { .. }
            | Op::Select { .. }
            | Op::Store { .. }
    )
}

/// How a comparison orders its operands, from their type: as floats
/// (`f32` or not), as signed integers, or as unsigned ones (unsigned
/// integers, `bool`s and pointers). Copied where the comparison is
/// deferred, instead of its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Float(bool),
    Signed,
    Unsigned,
}

impl Order {
    fn of(ty: &Type) -> Order {
        match ty {
            Type::F32 => Order::Float(true),
            Type::F64 => Order::Float(false),
            Type::Int(t) if t.signed() => Order::Signed,
            _ => Order::Unsigned,
        }
    }
}

/// The working lists of a lowering, kept per thread so that the next
/// function reuses them instead of allocating its own.
#[derive(Default)]
struct Scratch {
    traps: Vec<(u32, u32, u32)>,
    deferred: Vec<(Reg, CmpOp, Order, Reg, Reg)>,
    moves: [Vec<Move>; 2],
    raw: Vec<Option<IntType>>,
}

thread_local! {
    static SCRATCH: jit_shared::spare::Spares<Scratch> = const { std::cell::Cell::new(Vec::new()) };
}

/// Where a call goes.
#[derive(Clone, Copy, Debug)]
enum Via {
    /// External callee `n`, linked later.
    External(u32),
    /// The function pointer at a location (null traps).
    Pointer(Loc),
    /// The function pointer already in `SCRATCH_A` (null traps).
    Loaded,
}

fn int_type(ty: &Type) -> Option<IntType> {
    match ty {
        Type::Int(t) => Some(*t),
        _ => None,
    }
}

fn mem(base: Register) -> Mem {
    Mem::base(base)
}

impl<'a> Lower<'a> {
    fn loc(&self, r: Reg) -> Loc {
        self.alloc
            .locs
            .get(r.0 as usize)
            .copied()
            .unwrap_or(Loc::None)
    }

    /// An error naming the function (its name is formatted only then).
    #[cold]
    fn unsupported(&self, what: impl Into<String>) -> Error {
        Error::unsupported(&self.f.name.to_string(), what)
    }

    /// The label of block `b` (blocks are numbered below `u32::MAX`).
    fn block_label(&self, b: usize) -> u32 {
        self.first_block + b as u32
    }

    fn trap_label(&mut self, kind: u32, code: u32) -> u32 {
        if let Some(&(_, _, l)) = self.traps.iter().find(|t| t.0 == kind && t.1 == code) {
            return l;
        }
        let l = self.asm.label();
        self.traps.push((kind, code, l));
        l
    }

    /// Sign- or zero-extends the low bits of `r` to its canonical form.
    fn canon(&mut self, r: Register, t: IntType) {
        let ins = match t {
            IntType::I8 => Ins::with2(Code::Movsx_r64_rm8, r, r8(r)),
            IntType::I16 => Ins::with2(Code::Movsx_r64_rm16, r, r16(r)),
            IntType::I32 => Ins::with2(Code::Movsxd_r64_rm32, r, r32(r)),
            IntType::U8 => Ins::with2(Code::Movzx_r32_rm8, r32(r), r8(r)),
            IntType::U16 => Ins::with2(Code::Movzx_r32_rm16, r32(r), r16(r)),
            IntType::U32 => Ins::with2(Code::Mov_r32_rm32, r32(r), r32(r)),
            IntType::I64 | IntType::U64 => return,
        };
        self.asm.push(ins);
    }

    /// Extends raw register `r` (see [`mark_raw`]) to its canonical form
    /// where it lives, before an operation that reads its upper bits.
    /// Between operations rax is free, and the extension leaves the flags
    /// alone.
    fn settle(&mut self, r: Reg) {
        let Some(t) = self.raw.get(r.0 as usize).copied().flatten() else {
            return;
        };
        match self.loc(r) {
            Loc::Gpr(x) => self.canon(x, t),
            place @ Loc::Stack(_) => {
                self.asm.load_gpr(Register::RAX, place);
                self.canon(Register::RAX, t);
                self.asm.store_gpr(place, Register::RAX);
            }
            _ => {}
        }
    }

    /// Canonical form of any register type held in a general register.
    fn canon_ty(&mut self, r: Register, ty: &Type) {
        match ty {
            Type::Int(t) => self.canon(r, *t),
            Type::Bool => self
                .asm
                .reg_imm(Code::And_rm32_imm8, r32(r), None, Imm::S8to32(1)),
            _ => {}
        }
    }

    fn prologue(&mut self) {
        self.asm.fixed(Fixed::endbr64());
        if self.framed {
            self.asm.fixed(Fixed::push(Register::RBP));
            self.asm.fixed(Fixed::mov(Register::RBP, Register::RSP));
            for &r in &self.alloc.saved {
                self.asm.fixed(Fixed::push(r));
            }
            if self.frame_bytes > 0 {
                self.asm.fixed(Fixed::rsp_adjust(false, self.frame_bytes));
            }
        }
        // Parameters: extend narrow integers in place, then move them all
        // from the argument registers to where the allocator put them.
        let (mut ni, mut nf) = (0usize, 0u32);
        let mut moves = self.take_moves(0);
        for (i, ty) in self.f.sig.params.iter().enumerate() {
            let dst = self.alloc.locs.get(i).copied().unwrap_or(Loc::None);
            if ty.is_float() {
                moves.push(Move {
                    dst,
                    src: Loc::Xmm(Register::XMM0 + nf),
                    float: true,
                });
                nf += 1;
            } else if let Some(&r) = INT_ARGS.get(ni) {
                if dst != Loc::None {
                    self.canon_ty(r, ty);
                }
                moves.push(Move {
                    dst,
                    src: Loc::Gpr(r),
                    float: false,
                });
                ni += 1;
            }
        }
        parallel(&mut self.asm, &mut moves);
        self.moves[0] = moves;
    }

    fn epilogue(&mut self) {
        if self.framed {
            if self.frame_bytes > 0 {
                self.asm.fixed(Fixed::rsp_adjust(true, self.frame_bytes));
            }
            for &r in self.alloc.saved.iter().rev() {
                self.asm.fixed(Fixed::pop(r));
            }
            self.asm.fixed(Fixed::pop(Register::RBP));
        }
        self.asm.fixed(Fixed::ret());
    }

    fn trap_stubs(&mut self) {
        let mut traps = std::mem::take(&mut self.traps);
        for &(kind, code, label) in &traps {
            self.asm.bind(label);
            if !self.framed {
                // A frameless function runs with rsp ≡ 8 (mod 16).
                self.asm
                    .reg_imm(Code::Sub_rm64_imm8, Register::RSP, None, Imm::S8to64(8));
            }
            self.asm
                .reg_imm(Code::Mov_r32_imm32, Register::EDI, None, Imm::U32(kind));
            self.asm
                .reg_imm(Code::Mov_r32_imm32, Register::ESI, None, Imm::U32(code));
            let call = Ins::with1(Code::Call_rm64, Mem::pool());
            self.asm.pool_op(call, self.handler);
            self.asm.fixed(Fixed::ud2());
        }
        traps.clear();
        self.traps = traps;
    }

    fn block(&mut self, b: usize) -> Result<(), Error> {
        let f = self.f;
        let Some(block) = f.blocks.get(b) else {
            return Ok(());
        };
        let label = self.block_label(b);
        if self.alloc.loop_tops.has(b) {
            self.asm.items.push(Item::Align);
        }
        self.asm.bind(label);
        self.deferred.clear();
        self.flags = None;
        for inst in &block.insts {
            let dst = inst.result.map_or(Loc::None, |r| self.loc(r));
            let fused = inst
                .result
                .is_some_and(|r| self.alloc.fused.get(r.0 as usize) == Some(&true));
            if !self.raw.is_empty() && !reads_low_bits_only(&inst.op) {
                inst.op.for_each_use(|r| self.settle(*r));
            }
            self.op(&inst.op, dst, inst.result, fused)?;
            self.position += 1;
        }
        self.terminator(b, &block.term)
    }

    /// Takes move list `k` (empty) for a parallel assignment; it is put
    /// back with its capacity when the assignment is emitted.
    fn take_moves(&mut self, k: usize) -> Vec<Move> {
        let mut moves = std::mem::take(&mut self.moves[k]);
        moves.clear();
        moves
    }

    /// The block-argument moves of edge `t`, in move list `k`.
    fn edge_moves(&mut self, t: &BlockCall, k: usize) -> Vec<Move> {
        let mut moves = self.take_moves(k);
        let Some(target) = self.f.blocks.get(t.block.0 as usize) else {
            return moves;
        };
        moves.extend(
            t.args
                .iter()
                .zip(&target.params)
                .map(|(a, (p, ty))| Move {
                    dst: self.loc(*p),
                    src: self.loc(*a),
                    float: ty.is_float(),
                })
                // A parameter sharing its argument's place moves nothing:
                // left out, the edge counts as one without moves, so a
                // conditional branch needs no jump around them.
                .filter(|m| m.dst != Loc::None && m.dst != m.src),
        );
        moves
    }

    fn jump_unless_next(&mut self, b: usize, target: u32) {
        if target as usize != b + 1 {
            let l = self.block_label(target as usize);
            self.asm.jmp(l);
        }
    }

    /// Sets the flags for a `bool` register about to be consumed: the
    /// flags already hold it, or its fused comparison is (re)done, or the
    /// materialised value is tested. `Err` with the value for a constant.
    fn condition(&mut self, cond: Reg) -> Result<Cc, bool> {
        if let Some((r, cc)) = self.flags
            && r == cond
        {
            return Ok(cc);
        }
        if let Some(&(r, op, order, lhs, rhs)) = self.deferred.iter().find(|d| d.0 == cond) {
            let cc = self.compare(op, order, self.loc(lhs), self.loc(rhs));
            self.flags = Some((r, cc));
            return Ok(cc);
        }
        self.flags = None;
        self.test_bool(self.loc(cond))
    }

    /// Sets the flags from a `bool` location; `Err` for a constant, whose
    /// value is returned instead.
    fn test_bool(&mut self, c: Loc) -> Result<Cc, bool> {
        match c {
            Loc::Imm(v) => Err(v != 0),
            Loc::Gpr(r) => {
                self.asm.push(Ins::with2(Code::Test_rm64_r64, r, r));
                Ok(Cc::Ne)
            }
            other => {
                let r = self.asm.gpr(other, SCRATCH_A);
                self.asm.push(Ins::with2(Code::Test_rm64_r64, r, r));
                Ok(Cc::Ne)
            }
        }
    }

    /// A jump to a block that only tests a comparison and branches (a
    /// loop header) is replaced by that test, so a loop's latch branches
    /// straight back into the body instead of jumping to the header first.
    /// Returns whether it did so.
    fn duplicate_test(&mut self, b: usize, target: usize) -> bool {
        let Some(super::regalloc::RepeatedTest {
            then,
            otherwise,
            op,
            ty,
            lhs,
            rhs,
        }) = super::regalloc::repeated_test(self.f, &self.alloc.fused, target)
        else {
            return false;
        };
        // The header's operands as the moves left them, possibly raw.
        self.settle(lhs);
        self.settle(rhs);
        let cc = self.compare(op, Order::of(ty), self.loc(lhs), self.loc(rhs));
        let (tl, el) = (
            self.block_label(then.block.0 as usize),
            self.block_label(otherwise.block.0 as usize),
        );
        if otherwise.block.0 as usize == b + 1 {
            self.asm.jcc(cc, tl);
        } else if then.block.0 as usize == b + 1 {
            self.asm.jcc(cc.negate(), el);
        } else {
            self.asm.jcc(cc, tl);
            self.asm.jmp(el);
        }
        true
    }

    fn terminator(&mut self, b: usize, term: &Terminator) -> Result<(), Error> {
        match term {
            Terminator::Br(t) => {
                let mut moves = self.edge_moves(t, 0);
                parallel(&mut self.asm, &mut moves);
                self.moves[0] = moves;
                if t.block.0 as usize != b + 1 && self.duplicate_test(b, t.block.0 as usize) {
                    return Ok(());
                }
                self.jump_unless_next(b, t.block.0);
            }
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            } => {
                let cc = self.condition(*cond);
                self.flags = None;
                let cc = match cc {
                    Ok(cc) => cc,
                    Err(v) => {
                        let t = if v { then } else { otherwise };
                        let mut moves = self.edge_moves(t, 0);
                        parallel(&mut self.asm, &mut moves);
                        self.moves[0] = moves;
                        self.jump_unless_next(b, t.block.0);
                        return Ok(());
                    }
                };
                let mut tm = self.edge_moves(then, 0);
                let mut em = self.edge_moves(otherwise, 1);
                let (tl, el) = (
                    self.block_label(then.block.0 as usize),
                    self.block_label(otherwise.block.0 as usize),
                );
                let next = |t: &BlockCall| t.block.0 as usize == b + 1;
                match (tm.is_empty(), em.is_empty()) {
                    (true, true) if next(then) => self.asm.jcc(cc.negate(), el),
                    (true, true) => {
                        self.asm.jcc(cc, tl);
                        self.jump_unless_next(b, otherwise.block.0);
                    }
                    (false, true) => {
                        self.asm.jcc(cc.negate(), el);
                        parallel(&mut self.asm, &mut tm);
                        self.jump_unless_next(b, then.block.0);
                    }
                    (true, false) => {
                        self.asm.jcc(cc, tl);
                        parallel(&mut self.asm, &mut em);
                        self.jump_unless_next(b, otherwise.block.0);
                    }
                    (false, false) => {
                        let other = self.asm.label();
                        self.asm.jcc(cc.negate(), other);
                        parallel(&mut self.asm, &mut tm);
                        self.asm.jmp(tl);
                        self.asm.bind(other);
                        parallel(&mut self.asm, &mut em);
                        self.jump_unless_next(b, otherwise.block.0);
                    }
                }
                self.moves = [tm, em];
            }
            Terminator::Ret(v) => {
                if let Some(r) = v {
                    self.settle(*r);
                }
                if let (Some(r), Some(ty)) = (v, &self.f.sig.ret) {
                    let src = self.loc(*r);
                    if ty.is_float() {
                        self.asm
                            .load_xmm(Register::XMM0, src, matches!(ty, Type::F32));
                    } else {
                        self.asm.load_gpr(Register::RAX, src);
                    }
                }
                self.epilogue();
            }
            Terminator::Trap(code) => {
                let l = self.trap_label(TRAP_EXPLICIT, *code);
                self.asm.jmp(l);
            }
        }
        Ok(())
    }

    fn op(&mut self, op: &'a Op, dst: Loc, result: Option<Reg>, fused: bool) -> Result<(), Error> {
        if !matches!(op, Op::Const { .. } | Op::Select { .. }) {
            self.flags = None;
        }
        match op {
            // Constants live in their uses (immediates, pool).
            Op::Const { .. } => {}
            Op::Unary { op, ty, arg } => self.unary(*op, ty, dst, self.loc(*arg))?,
            Op::Binary { op, ty, lhs, rhs } => {
                let (a, b) = (self.loc(*lhs), self.loc(*rhs));
                match ty {
                    Type::F32 | Type::F64 => self.float_binary(*op, ty, dst, a, b)?,
                    _ => self.int_binary(*op, ty, dst, a, b),
                }
            }
            Op::Cmp { op, ty, lhs, rhs } => match result {
                Some(r) if fused => self.deferred.push((r, *op, Order::of(ty), *lhs, *rhs)),
                _ => {
                    let cc = self.compare(*op, Order::of(ty), self.loc(*lhs), self.loc(*rhs));
                    self.materialise(cc, *op, ty, dst);
                }
            },
            Op::Cast { from, to, arg } => self.cast(from, to, dst, self.loc(*arg))?,
            Op::Bitcast { from, to, arg } => self.bitcast(from, to, dst, self.loc(*arg)),
            Op::Select {
                ty,
                cond,
                if_true,
                if_false,
            } => {
                let cc = self.condition(*cond);
                self.select(ty, dst, cc, self.loc(*if_true), self.loc(*if_false));
            }
            Op::Load { ty, addr, index } => {
                let m = self.address(ty, self.loc(*addr), index.map(|i| self.loc(i)))?;
                self.load(ty, dst, m);
            }
            Op::Store {
                ty,
                addr,
                index,
                value,
            } => {
                let m = self.address(ty, self.loc(*addr), index.map(|i| self.loc(i)))?;
                self.store(ty, m, self.loc(*value), SCRATCH_B);
            }
            Op::Addr {
                base,
                index,
                scale,
                disp,
                ..
            } => self.addr(
                dst,
                self.loc(*base),
                index.map(|i| self.loc(i)),
                *scale,
                *disp,
            ),
            Op::Call { callee, sig, args } => {
                let ext = self.external(callee)?;
                self.call(sig, args, dst, Via::External(ext));
            }
            Op::CallIndirect { sig, target, args } => {
                self.call(sig, args, dst, Via::Pointer(self.loc(*target)));
            }
            Op::FuncAddr { callee, .. } => {
                let ext = self.external(callee)?;
                let d = Asm::dst_gpr(dst, Register::RAX);
                self.asm.items.push(Item::AddrOf(d, ext));
                if let Some(SiteKind::Slot(_)) = self.ext.kinds.get(ext as usize) {
                    self.asm.push(Ins::with2(Code::Mov_r64_rm64, d, mem(d)));
                }
                self.asm.store_gpr(dst, d);
            }
            Op::ElemAddr { .. } | Op::FieldAddr { .. } | Op::SizeOf { .. } | Op::AlignOf { .. } => {
                return Err(self.unsupported("a layout-dependent operation was not instantiated"));
            }
            Op::MemLoad { .. }
            | Op::MemStore { .. }
            | Op::MemSize { .. }
            | Op::MemGrow { .. }
            | Op::TableGet { .. }
            | Op::TableSet { .. }
            | Op::TableSize { .. }
            | Op::TableGrow { .. }
            | Op::CallTable { .. } => self.shared(op, dst)?,
        }
        Ok(())
    }

    fn external(&mut self, callee: &'a Callee) -> Result<u32, Error> {
        let name = match callee {
            Callee::Symbol(s) | Callee::Import(s) => s,
            Callee::Template { name, .. } => {
                return Err(
                    self.unsupported(format!("the template call `{name}` was not instantiated"))
                );
            }
        };
        if let Some(i) = self.callees.iter().position(|n| n == name) {
            return Ok(i as u32);
        }
        let kind = self.env.callee(callee)?;
        self.callees.push(name);
        self.ext.kinds.push(kind);
        Ok((self.callees.len() - 1) as u32)
    }

    fn unary(&mut self, op: UnOp, ty: &Type, dst: Loc, arg: Loc) -> Result<(), Error> {
        match (op, ty) {
            (UnOp::Neg | UnOp::Not, Type::Int(_) | Type::Bool) => {
                let d = Asm::dst_gpr(dst, Register::RAX);
                self.asm.load_gpr(d, arg);
                match (op, ty) {
                    (UnOp::Not, Type::Bool) => {
                        self.asm
                            .reg_imm(Code::Xor_rm32_imm8, r32(d), None, Imm::S8to32(1))
                    }
                    (UnOp::Neg, Type::Int(_)) => {
                        self.asm.push(Ins::with1(Code::Neg_rm64, d));
                    }
                    (_, Type::Int(t)) => {
                        self.asm.push(Ins::with1(Code::Not_rm64, d));
                        self.canon(d, *t);
                    }
                    _ => return Err(self.unsupported(format!("`neg` of {ty}"))),
                }
                self.asm.store_gpr(dst, d);
            }
            (UnOp::Neg, Type::F32 | Type::F64) => {
                // A sign flip, NaN payloads included, like the interpreter.
                let f32 = matches!(ty, Type::F32);
                let x = self.asm.xmm(arg, XSCRATCH_A, f32);
                let d = match dst {
                    Loc::Xmm(r) => r,
                    _ => XSCRATCH_B,
                };
                if f32 {
                    self.asm
                        .push(Ins::with2(Code::Movd_rm32_xmm, Register::EAX, x));
                    self.asm.reg_imm(
                        Code::Xor_rm32_imm32,
                        Register::EAX,
                        None,
                        Imm::U32(0x8000_0000),
                    );
                    self.asm
                        .push(Ins::with2(Code::Movd_xmm_rm32, d, Register::EAX));
                } else {
                    self.asm
                        .push(Ins::with2(Code::Movq_rm64_xmm, Register::RAX, x));
                    self.asm
                        .reg_imm(Code::Btc_rm64_imm8, Register::RAX, None, Imm::U8(63));
                    self.asm
                        .push(Ins::with2(Code::Movq_xmm_rm64, d, Register::RAX));
                }
                self.asm.store_xmm(dst, d, f32);
            }
            _ => return Err(self.unsupported(format!("`{op:?}` of {ty}"))),
        }
        Ok(())
    }

    fn int_binary(&mut self, op: BinOp, ty: &Type, dst: Loc, lhs: Loc, rhs: Loc) {
        let t = int_type(ty);
        let alu = match op {
            BinOp::Add => Alu::Add,
            BinOp::Sub => Alu::Sub,
            BinOp::Mul => Alu::Imul,
            BinOp::And => Alu::And,
            BinOp::Or => Alu::Or,
            BinOp::Xor => Alu::Xor,
            BinOp::Div | BinOp::Rem => {
                return self.divide(op, t.unwrap_or(IntType::U64), dst, lhs, rhs);
            }
            BinOp::Shl | BinOp::Shr => {
                return self.shift(op, t.unwrap_or(IntType::U64), dst, lhs, rhs);
            }
        };
        let d = Asm::dst_gpr(dst, Register::RAX);
        let is_d = |l: Loc| matches!(l, Loc::Gpr(r) if r == d);
        let lea = match (alu, lhs, rhs) {
            (Alu::Add, Loc::Gpr(a), Loc::Gpr(b)) if a != d && b != d => {
                Some(Mem::base_index(a, b, 1))
            }
            (Alu::Add, Loc::Gpr(a), Loc::Imm(v)) if a != d => {
                i32::try_from(v as i64).ok().map(|v| Mem::base_disp(a, v))
            }
            (Alu::Sub, Loc::Gpr(a), Loc::Imm(v)) if a != d => (v as i64)
                .checked_neg()
                .and_then(|v| i32::try_from(v).ok())
                .map(|v| Mem::base_disp(a, v)),
            _ => None,
        };
        if let Some(m) = lea {
            // Three-address addition without a copy first.
            self.asm.push(Ins::with2(Code::Lea_r64_m, d, m));
        } else if is_d(rhs) && !is_d(lhs) {
            if matches!(alu, Alu::Sub) {
                self.asm.load_gpr(Register::RAX, lhs);
                self.asm.alu(alu, Register::RAX, Rm::Reg(d));
                self.asm.mov(d, Register::RAX);
            } else {
                let rm = self.asm.rm(lhs, SCRATCH_A);
                self.asm.alu(alu, d, rm);
            }
        } else {
            self.asm.load_gpr(d, lhs);
            let rm = self.asm.rm(rhs, SCRATCH_A);
            self.asm.alu(alu, d, rm);
        }
        // Narrow add, sub and mul leave the upper bits raw: whatever reads
        // them extends the value first (`settle`).
        self.asm.store_gpr(dst, d);
    }

    fn shift(&mut self, op: BinOp, t: IntType, dst: Loc, lhs: Loc, rhs: Loc) {
        let mask = t.bits() - 1;
        let d = Asm::dst_gpr(dst, Register::RAX);
        let (cl_code, imm_code) = match (op, t.signed()) {
            (BinOp::Shl, _) => (Code::Shl_rm64_CL, Code::Shl_rm64_imm8),
            (_, true) => (Code::Sar_rm64_CL, Code::Sar_rm64_imm8),
            (_, false) => (Code::Shr_rm64_CL, Code::Shr_rm64_imm8),
        };
        match (rhs, lhs) {
            // A left shift by 1 to 3 of a register is an address
            // computation: lea runs on more ports than shl, which loops
            // share with their branches, and needs no copy first.
            (Loc::Imm(c), Loc::Gpr(x))
                if op == BinOp::Shl && matches!((c as u32) & mask, 1..=3) =>
            {
                let m = match (c as u32) & mask {
                    1 => Mem::base_index(x, x, 1),
                    k => Mem::index_only(x, 1 << k),
                };
                self.asm.push(Ins::with2(Code::Lea_r64_m, d, m));
            }
            (Loc::Imm(c), _) => {
                self.asm.load_gpr(d, lhs);
                let c = (c as u32) & mask;
                if c != 0 {
                    self.asm.reg_imm(imm_code, d, None, Imm::U8(c as u8));
                }
            }
            _ => {
                self.asm.load_gpr(Register::RCX, rhs);
                if mask != 63 {
                    self.asm.reg_imm(
                        Code::And_rm32_imm8,
                        Register::ECX,
                        None,
                        Imm::S8to32(mask as i8),
                    );
                }
                self.asm.load_gpr(d, lhs);
                self.asm.push(Ins::with2(cl_code, d, Register::CL));
            }
        }
        // A left shift's upper bits stay raw, as an addition's do.
        self.asm.store_gpr(dst, d);
    }

    fn divide(&mut self, op: BinOp, t: IntType, dst: Loc, lhs: Loc, rhs: Loc) {
        let trap = self.trap_label(TRAP_DIVIDE_BY_ZERO, 0);
        if rhs == Loc::Imm(0) {
            self.asm.jmp(trap);
            return;
        }
        let divisor = self.asm.gpr(rhs, SCRATCH_A);
        if !matches!(rhs, Loc::Imm(_)) {
            self.asm
                .push(Ins::with2(Code::Test_rm64_r64, divisor, divisor));
            self.asm.jcc(Cc::E, trap);
        }
        let done = self.asm.label();
        // Only a 64-bit MIN / -1 overflows idiv; narrower operands are
        // sign-extended, so their quotient always fits 64 bits.
        let overflow = t == IntType::I64 && !matches!(rhs, Loc::Imm(v) if v != u64::MAX);
        if overflow {
            let normal = self.asm.label();
            self.asm
                .reg_imm(Code::Cmp_rm64_imm8, divisor, None, Imm::S8to64(-1));
            self.asm.jcc(Cc::Ne, normal);
            if op == BinOp::Div {
                self.asm.load_gpr(Register::RAX, lhs);
                self.asm.push(Ins::with1(Code::Neg_rm64, Register::RAX));
            } else {
                self.asm.mov_imm(Register::RDX, 0);
            }
            self.asm.jmp(done);
            self.asm.bind(normal);
        }
        self.asm.load_gpr(Register::RAX, lhs);
        if t.signed() {
            self.asm.fixed(Fixed::cqo());
            self.asm.push(Ins::with1(Code::Idiv_rm64, divisor));
        } else {
            self.asm.mov_imm(Register::RDX, 0);
            self.asm.push(Ins::with1(Code::Div_rm64, divisor));
        }
        self.asm.bind(done);
        let result = if op == BinOp::Div {
            Register::RAX
        } else {
            Register::RDX
        };
        let d = Asm::dst_gpr(dst, result);
        self.asm.mov(d, result);
        self.canon(d, t);
        self.asm.store_gpr(dst, d);
    }

    fn float_binary(
        &mut self,
        op: BinOp,
        ty: &Type,
        dst: Loc,
        lhs: Loc,
        rhs: Loc,
    ) -> Result<(), Error> {
        let f32 = matches!(ty, Type::F32);
        let sse = match op {
            BinOp::Add => Sse::Add,
            BinOp::Sub => Sse::Sub,
            BinOp::Mul => Sse::Mul,
            BinOp::Div => Sse::Div,
            _ => return Err(self.unsupported(format!("`{op:?}` of {ty}"))),
        };
        let d = match dst {
            Loc::Xmm(r) => r,
            _ => XSCRATCH_A,
        };
        // Operands keep their order (no commuting), so NaN payloads
        // propagate as in the interpreter.
        if matches!(rhs, Loc::Xmm(r) if r == d) && !matches!(lhs, Loc::Xmm(r) if r == d) {
            self.asm.load_xmm(XSCRATCH_B, lhs, f32);
            self.asm.sse(sse, f32, XSCRATCH_B, Rm::Reg(d));
            self.asm.load_xmm(d, Loc::Xmm(XSCRATCH_B), f32);
        } else {
            self.asm.load_xmm(d, lhs, f32);
            let rm = self.asm.xrm(rhs);
            self.asm.sse(sse, f32, d, rm);
        }
        self.asm.store_xmm(dst, d, f32);
        Ok(())
    }

    /// Sets the flags for `lhs op rhs`; returns the condition that holds
    /// when the comparison is true.
    fn compare(&mut self, op: CmpOp, order: Order, lhs: Loc, rhs: Loc) -> Cc {
        if let Order::Float(f32) = order {
            // ucomis sets CF and ZF on unordered, so only "above" forms
            // are false on NaN: a < b is tested as b > a.
            let (a, b, cc) = match op {
                CmpOp::Gt => (lhs, rhs, Cc::A),
                CmpOp::Ge => (lhs, rhs, Cc::Ae),
                CmpOp::Lt => (rhs, lhs, Cc::A),
                CmpOp::Le => (rhs, lhs, Cc::Ae),
                CmpOp::Eq => (lhs, rhs, Cc::E),
                CmpOp::Ne => (lhs, rhs, Cc::Ne),
            };
            let x = self.asm.xmm(a, XSCRATCH_A, f32);
            let rm = self.asm.xrm(b);
            self.asm.sse(Sse::Ucomi, f32, x, rm);
            return cc;
        }
        let signed = order == Order::Signed;
        let mut cc = match (op, signed) {
            (CmpOp::Eq, _) => Cc::E,
            (CmpOp::Ne, _) => Cc::Ne,
            (CmpOp::Lt, true) => Cc::L,
            (CmpOp::Le, true) => Cc::Le,
            (CmpOp::Gt, true) => Cc::G,
            (CmpOp::Ge, true) => Cc::Ge,
            (CmpOp::Lt, false) => Cc::B,
            (CmpOp::Le, false) => Cc::Be,
            (CmpOp::Gt, false) => Cc::A,
            (CmpOp::Ge, false) => Cc::Ae,
        };
        let (mut a, mut b) = (lhs, rhs);
        if matches!(a, Loc::Imm(_)) && !matches!(b, Loc::Imm(_)) {
            std::mem::swap(&mut a, &mut b);
            cc = cc.swap();
        }
        let x = self.asm.gpr(a, SCRATCH_A);
        if b == Loc::Imm(0) {
            // The same flags as a compare with 0 (CF and OF clear), in
            // three bytes.
            self.asm.push(Ins::with2(Code::Test_rm64_r64, x, x));
            return cc;
        }
        let rm = self.asm.rm(b, SCRATCH_B);
        self.asm.alu(Alu::Cmp, x, rm);
        cc
    }

    /// Turns flags into a `bool` register (0 or 1).
    fn materialise(&mut self, cc: Cc, op: CmpOp, ty: &Type, dst: Loc) {
        let d = Asm::dst_gpr(dst, Register::RAX);
        self.asm.push(Ins::with1(cc.setcc(), r8(d)));
        if ty.is_float() && matches!(op, CmpOp::Eq | CmpOp::Ne) {
            // Equal needs ZF and not PF; not-equal ZF clear or PF.
            let (extra, combine) = if op == CmpOp::Eq {
                (Cc::Np, Code::And_r8_rm8)
            } else {
                (Cc::P, Code::Or_r8_rm8)
            };
            self.asm.push(Ins::with1(extra.setcc(), Register::R11L));
            self.asm.push(Ins::with2(combine, r8(d), Register::R11L));
        }
        self.asm
            .push(Ins::with2(Code::Movzx_r32_rm8, r32(d), r8(d)));
        self.asm.store_gpr(dst, d);
    }

    /// `cc` holds when the condition is true (flags set), or the
    /// condition's constant value.
    fn select(&mut self, ty: &Type, dst: Loc, cc: Result<Cc, bool>, t: Loc, f: Loc) {
        let cc = match cc {
            Ok(cc) => cc,
            Err(v) => {
                let src = if v { t } else { f };
                single(&mut self.asm, dst, src, ty.is_float());
                return;
            }
        };
        if ty.is_float() {
            let f32 = matches!(ty, Type::F32);
            let d = match dst {
                Loc::Xmm(r) => r,
                _ => XSCRATCH_A,
            };
            let skip = self.asm.label();
            if t == Loc::Xmm(d) {
                self.asm.jcc(cc, skip);
                self.asm.load_xmm(d, f, f32);
            } else if f == Loc::Xmm(d) {
                self.asm.jcc(cc.negate(), skip);
                self.asm.load_xmm(d, t, f32);
            } else {
                self.asm.load_xmm(d, f, f32);
                self.asm.jcc(cc.negate(), skip);
                self.asm.load_xmm(d, t, f32);
            }
            self.asm.bind(skip);
            self.asm.store_xmm(dst, d, f32);
            return;
        }
        let d = Asm::dst_gpr(dst, Register::RAX);
        let (keep, other, cc) = if t == Loc::Gpr(d) {
            (t, f, cc.negate())
        } else {
            (f, t, cc)
        };
        self.asm.load_gpr(d, keep);
        let src = self.asm.gpr(other, SCRATCH_B);
        self.asm.push(Ins::with2(cc.cmov(), d, src));
        self.asm.store_gpr(dst, d);
    }

    /// The operand of an access of `ty` at `base + index * size_of(ty)`,
    /// trapping on a null address like the interpreter: with a test and a
    /// branch to the trap, or, under implicit null checks, by the access
    /// itself faulting on page 0 (`runtime`'s fault handler turns the
    /// fault into the trap). Leaves `SCRATCH_B` free unless the index is
    /// in it, in which case the address is computed into RAX, so that a
    /// store can load its value there.
    fn address(&mut self, ty: &Type, base: Loc, index: Option<Loc>) -> Result<Mem, Error> {
        let size = ty
            .scalar_size()
            .ok_or_else(|| self.unsupported(format!("memory access of {ty}")))?;
        let b = self.asm.gpr(base, SCRATCH_A);
        let m = match index {
            None => Mem::base(b),
            Some(Loc::Imm(i)) => {
                let disp = i.wrapping_mul(size) as i64;
                match i32::try_from(disp) {
                    Ok(disp) => Mem::base_disp(b, disp),
                    Err(_) => {
                        self.asm.mov_imm(Register::RAX, disp as u64);
                        self.asm
                            .push(Ins::with2(Code::Add_r64_rm64, Register::RAX, b));
                        Mem::base(Register::RAX)
                    }
                }
            }
            Some(i) => {
                let x = self.asm.gpr(i, SCRATCH_B);
                Mem::base_index(b, x, size as u8)
            }
        };
        if self.implicit_null && m.index != SCRATCH_B {
            return Ok(m);
        }
        // The address in a register: tested (explicit checks), or kept
        // out of SCRATCH_B.
        let a = if m.index == Register::None && m.disp == 0 {
            m.base
        } else {
            self.asm.push(Ins::with2(Code::Lea_r64_m, Register::RAX, m));
            Register::RAX
        };
        if !self.implicit_null {
            let null = self.trap_label(TRAP_NULL_POINTER, 0);
            self.asm.push(Ins::with2(Code::Test_rm64_r64, a, a));
            self.asm.jcc(Cc::E, null);
        }
        Ok(mem(a))
    }

    /// Loads `ty` from `m` into `dst`, extended to its canonical form.
    fn load(&mut self, ty: &Type, dst: Loc, m: Mem) {
        if ty.is_float() {
            let f32 = matches!(ty, Type::F32);
            let d = match dst {
                Loc::Xmm(r) => r,
                _ => XSCRATCH_A,
            };
            self.asm.sse(Sse::Mov, f32, d, Rm::Mem(m));
            self.asm.store_xmm(dst, d, f32);
            return;
        }
        let d = Asm::dst_gpr(dst, SCRATCH_B);
        let ins = match ty {
            Type::Int(IntType::I8) => Ins::with2(Code::Movsx_r64_rm8, d, m),
            Type::Int(IntType::I16) => Ins::with2(Code::Movsx_r64_rm16, d, m),
            Type::Int(IntType::I32) => Ins::with2(Code::Movsxd_r64_rm32, d, m),
            Type::Int(IntType::U8) | Type::Bool => Ins::with2(Code::Movzx_r32_rm8, r32(d), m),
            Type::Int(IntType::U16) => Ins::with2(Code::Movzx_r32_rm16, r32(d), m),
            Type::Int(IntType::U32) => Ins::with2(Code::Mov_r32_rm32, r32(d), m),
            _ => Ins::with2(Code::Mov_r64_rm64, d, m),
        };
        self.asm.push(ins);
        if *ty == Type::Bool {
            // The interpreter keeps bit 0 of a loaded byte.
            self.canon_ty(d, ty);
        }
        self.asm.store_gpr(dst, d);
    }

    /// Stores `value` of type `ty` to `m`, through `scratch` when it is
    /// not in a register (`m` must not use `scratch`).
    fn store(&mut self, ty: &Type, m: Mem, value: Loc, scratch: Register) {
        if ty.is_float() {
            let f32 = matches!(ty, Type::F32);
            let x = self.asm.xmm(value, XSCRATCH_A, f32);
            let code = if f32 {
                Code::Movss_xmmm32_xmm
            } else {
                Code::Movsd_xmmm64_xmm
            };
            self.asm.push(Ins::with2(code, m, x));
            return;
        }
        let v = self.asm.gpr(value, scratch);
        let ins = match ty.scalar_size() {
            Some(1) => Ins::with2(Code::Mov_rm8_r8, m, r8(v)),
            Some(2) => Ins::with2(Code::Mov_rm16_r16, m, r16(v)),
            Some(4) => Ins::with2(Code::Mov_rm32_r32, m, r32(v)),
            _ => Ins::with2(Code::Mov_rm64_r64, m, v),
        };
        self.asm.push(ins);
    }

    fn addr(&mut self, dst: Loc, base: Loc, index: Option<Loc>, scale: u64, disp: i64) {
        let d = Asm::dst_gpr(dst, Register::RAX);
        let b = self.asm.gpr(base, SCRATCH_A);
        let small_disp = i32::try_from(disp).ok();
        match (index, small_disp) {
            (None, Some(disp)) => {
                self.asm
                    .push(Ins::with2(Code::Lea_r64_m, d, Mem::base_disp(b, disp)));
            }
            (Some(i), Some(disp))
                if matches!(scale, 1 | 2 | 4 | 8) && !matches!(i, Loc::Imm(_)) =>
            {
                let x = self.asm.gpr(i, SCRATCH_B);
                self.asm.push(Ins::with2(
                    Code::Lea_r64_m,
                    d,
                    Mem::indexed(b, x, scale as u8, disp),
                ));
            }
            _ => {
                // Wrapping base + index * scale + disp in rax.
                match index {
                    Some(i) => {
                        self.asm.load_gpr(Register::RAX, i);
                        match i32::try_from(scale) {
                            Ok(s) => self.asm.reg_imm(
                                Code::Imul_r64_rm64_imm32,
                                Register::RAX,
                                Some(Register::RAX),
                                Imm::S32(s),
                            ),
                            Err(_) => {
                                self.asm.mov_imm(SCRATCH_B, scale);
                                self.asm.alu(Alu::Imul, Register::RAX, Rm::Reg(SCRATCH_B));
                            }
                        }
                        self.asm.alu(Alu::Add, Register::RAX, Rm::Reg(b));
                    }
                    None => self.asm.mov(Register::RAX, b),
                }
                match i32::try_from(disp) {
                    Ok(0) => {}
                    Ok(v) => self.asm.alu(Alu::Add, Register::RAX, Rm::Imm(v)),
                    Err(_) => {
                        self.asm.mov_imm(SCRATCH_B, disp as u64);
                        self.asm.alu(Alu::Add, Register::RAX, Rm::Reg(SCRATCH_B));
                    }
                }
                self.asm.mov(d, Register::RAX);
            }
        }
        self.asm.store_gpr(dst, d);
    }

    fn call(&mut self, sig: &Signature, args: &[Reg], dst: Loc, via: Via) {
        if let Via::Pointer(t) = via {
            self.asm.load_gpr(SCRATCH_A, t);
        }
        let (mut ni, mut nf) = (0usize, 0u32);
        let mut moves = self.take_moves(0);
        for (a, ty) in args.iter().zip(&sig.params) {
            let src = self.loc(*a);
            if ty.is_float() {
                moves.push(Move {
                    dst: Loc::Xmm(Register::XMM0 + nf),
                    src,
                    float: true,
                });
                nf += 1;
            } else if let Some(&r) = INT_ARGS.get(ni) {
                moves.push(Move {
                    dst: Loc::Gpr(r),
                    src,
                    float: false,
                });
                ni += 1;
            }
        }
        parallel(&mut self.asm, &mut moves);
        self.moves[0] = moves;
        match via {
            Via::Pointer(_) | Via::Loaded => {
                let null = self.trap_label(TRAP_NULL_POINTER, 0);
                self.asm
                    .push(Ins::with2(Code::Test_rm64_r64, SCRATCH_A, SCRATCH_A));
                self.asm.jcc(Cc::E, null);
                self.asm.push(Ins::with1(Code::Call_rm64, SCRATCH_A));
            }
            Via::External(ext) => self.asm.items.push(Item::Call(ext)),
        }
        match &sig.ret {
            Some(ty) if ty.is_float() => {
                self.asm
                    .store_xmm(dst, Register::XMM0, matches!(ty, Type::F32));
            }
            Some(ty) => {
                if dst != Loc::None {
                    self.canon_ty(Register::RAX, ty);
                }
                self.asm.store_gpr(dst, Register::RAX);
            }
            None => {}
        }
    }

    fn cast(&mut self, from: &Type, to: &Type, dst: Loc, arg: Loc) -> Result<(), Error> {
        match (from, to) {
            (Type::Int(_) | Type::Bool, Type::Int(t)) => {
                let d = Asm::dst_gpr(dst, Register::RAX);
                self.asm.load_gpr(d, arg);
                self.canon(d, *t);
                self.asm.store_gpr(dst, d);
            }
            (Type::Int(f), Type::F32 | Type::F64) => {
                self.int_to_float(*f, matches!(to, Type::F32), dst, arg)
            }
            (Type::F32 | Type::F64, Type::Int(t)) => {
                self.float_to_int(matches!(from, Type::F32), *t, dst, arg);
            }
            (Type::F32, Type::F32) | (Type::F64, Type::F64) => {
                single(&mut self.asm, dst, arg, true);
            }
            (Type::F32 | Type::F64, Type::F32 | Type::F64) => {
                let widen = matches!(from, Type::F32);
                let x = self.asm.xmm(arg, XSCRATCH_A, widen);
                let d = match dst {
                    Loc::Xmm(r) => r,
                    _ => XSCRATCH_B,
                };
                let code = if widen {
                    Code::Cvtss2sd_xmm_xmmm32
                } else {
                    Code::Cvtsd2ss_xmm_xmmm64
                };
                self.asm.push(Ins::with2(code, d, x));
                self.asm.store_xmm(dst, d, !widen);
            }
            (f, t) if f.is_pointer() || t.is_pointer() => {
                single(&mut self.asm, dst, arg, false);
            }
            (f, t) => return Err(self.unsupported(format!("a cast from {f} to {t}"))),
        }
        Ok(())
    }

    fn int_to_float(&mut self, from: IntType, f32: bool, dst: Loc, arg: Loc) {
        let d = match dst {
            Loc::Xmm(r) => r,
            _ => XSCRATCH_A,
        };
        let cvt = if f32 {
            Code::Cvtsi2ss_xmm_rm64
        } else {
            Code::Cvtsi2sd_xmm_rm64
        };
        let s = self.asm.gpr(arg, SCRATCH_A);
        // Clearing the destination breaks cvtsi2s*'s dependency on it.
        self.asm.push(Ins::with2(Code::Xorps_xmm_xmmm128, d, d));
        if from != IntType::U64 {
            self.asm.push(Ins::with2(cvt, d, s));
        } else {
            // Values with the top bit set: halve keeping the lost bit
            // sticky, convert, double — one correctly rounded result.
            let (big, done) = (self.asm.label(), self.asm.label());
            self.asm.push(Ins::with2(Code::Test_rm64_r64, s, s));
            self.asm.jcc(Cc::L, big);
            self.asm.push(Ins::with2(cvt, d, s));
            self.asm.jmp(done);
            self.asm.bind(big);
            self.asm.mov(Register::RAX, s);
            self.asm
                .reg_imm(Code::Shr_rm64_imm8, Register::RAX, None, Imm::U8(1));
            self.asm.mov(SCRATCH_B, s);
            self.asm
                .reg_imm(Code::And_rm32_imm8, r32(SCRATCH_B), None, Imm::S8to32(1));
            self.asm.alu(Alu::Or, Register::RAX, Rm::Reg(SCRATCH_B));
            self.asm.push(Ins::with2(cvt, d, Register::RAX));
            self.asm.sse(Sse::Add, f32, d, Rm::Reg(d));
            self.asm.bind(done);
        }
        self.asm.store_xmm(dst, d, f32);
    }

    /// Saturating float → integer like Rust's `as` (and the interpreter):
    /// NaN gives 0, out-of-range values the nearest bound, others truncate.
    fn float_to_int(&mut self, from_f32: bool, t: IntType, dst: Loc, arg: Loc) {
        let x = XSCRATCH_B;
        if from_f32 {
            let s = self.asm.xmm(arg, XSCRATCH_A, true);
            self.asm.push(Ins::with2(Code::Cvtss2sd_xmm_xmmm32, x, s));
        } else {
            self.asm.load_xmm(x, arg, false);
        }
        let done = self.asm.label();
        let bits = t.bits();
        let rax = Register::RAX;
        let max = t.max_value() as u64;
        let min = t.canonical(t.min_value() as u64);
        self.asm.mov_imm(rax, 0);
        self.asm.sse(Sse::Ucomi, false, x, Rm::Reg(x));
        self.asm.jcc(Cc::P, done);
        let bound = |l: &mut Self, value: f64| {
            let e = l.asm.constant(value.to_bits());
            l.asm.sse(Sse::Ucomi, false, x, Rm::Pool(e));
        };
        if t.signed() {
            self.asm.mov_imm(rax, max);
            bound(self, 2f64.powi(bits as i32 - 1));
            self.asm.jcc(Cc::Ae, done);
            self.asm.mov_imm(rax, min);
            bound(self, t.min_value() as f64);
            self.asm.jcc(Cc::Be, done);
            self.asm
                .push(Ins::with2(Code::Cvttsd2si_r64_xmmm64, rax, x));
        } else {
            bound(self, 0.0);
            self.asm.jcc(Cc::Be, done);
            self.asm.mov_imm(rax, max);
            bound(self, 2f64.powi(bits as i32));
            self.asm.jcc(Cc::Ae, done);
            if bits == 64 {
                let big = self.asm.label();
                let two63 = self.asm.constant(2f64.powi(63).to_bits());
                self.asm.sse(Sse::Ucomi, false, x, Rm::Pool(two63));
                self.asm.jcc(Cc::Ae, big);
                self.asm
                    .push(Ins::with2(Code::Cvttsd2si_r64_xmmm64, rax, x));
                self.asm.jmp(done);
                self.asm.bind(big);
                self.asm.sse(Sse::Sub, false, x, Rm::Pool(two63));
                self.asm
                    .push(Ins::with2(Code::Cvttsd2si_r64_xmmm64, rax, x));
                self.asm
                    .reg_imm(Code::Btc_rm64_imm8, rax, None, Imm::U8(63));
            } else {
                self.asm
                    .push(Ins::with2(Code::Cvttsd2si_r64_xmmm64, rax, x));
            }
        }
        self.asm.bind(done);
        self.asm.store_gpr(dst, rax);
    }

    fn bitcast(&mut self, from: &Type, to: &Type, dst: Loc, arg: Loc) {
        match (from.is_float(), to.is_float()) {
            (false, false) => {
                let d = Asm::dst_gpr(dst, Register::RAX);
                self.asm.load_gpr(d, arg);
                self.canon_ty(d, to);
                self.asm.store_gpr(dst, d);
            }
            (true, false) => {
                let x = self.asm.xmm(arg, XSCRATCH_A, matches!(from, Type::F32));
                let d = Asm::dst_gpr(dst, Register::RAX);
                if matches!(from, Type::F32) {
                    self.asm.push(Ins::with2(Code::Movd_rm32_xmm, r32(d), x));
                } else {
                    self.asm.push(Ins::with2(Code::Movq_rm64_xmm, d, x));
                }
                self.canon_ty(d, to);
                self.asm.store_gpr(dst, d);
            }
            (false, true) => {
                let s = self.asm.gpr(arg, SCRATCH_A);
                let d = match dst {
                    Loc::Xmm(r) => r,
                    _ => XSCRATCH_A,
                };
                if matches!(to, Type::F32) {
                    self.asm.push(Ins::with2(Code::Movd_xmm_rm32, d, r32(s)));
                } else {
                    self.asm.push(Ins::with2(Code::Movq_xmm_rm64, d, s));
                }
                self.asm.store_xmm(dst, d, matches!(to, Type::F32));
            }
            (true, true) => {
                single(&mut self.asm, dst, arg, true);
            }
        }
    }
}
