//! Register allocation: liveness over the block graph, one live interval
//! per virtual register, and linear scan (Poletto and Sarkar) with
//! spilling.
//!
//! Blocks are laid out in their IR order and every point of the function
//! gets a position: a block's start (where its parameters are defined),
//! each instruction, and the terminator. An interval runs from a value's
//! definition to its last use, stretched over every block it is live
//! into or out of, so one range covers loops without holes.
//!
//! Without holes, a loop's next value (a sum's new total, a partition's
//! new boundary) overlaps the value it replaces whenever that one is read
//! after the loop. So the scan lends a register: a value whose hint (the
//! parameter it is passed to, or that parameter's own hint) holds a
//! register it may share takes it when the holder is dead from the
//! value's start to its end, by the liveness sets, and ends no earlier
//! (see `Scan::lend`). The branch back then moves nothing.
//!
//! Register classes: general-purpose values get rdi, rsi, r8, r9, rdx,
//! rcx (caller-saved) or rbx, r12–r15 (callee-saved); rax, r10 and r11 are
//! never allocated, because the lowering stages operands and results in
//! them. A value whose interval touches a shift by a register count may
//! not live in rcx, one touching an integer division not in rdx (those
//! instructions need them). Floats get
//! xmm0–xmm13; xmm14 and xmm15 are scratch. A value live across a call is
//! given a callee-saved register, or a stack slot when it is a float
//! (System V preserves no xmm register). When no register is free, the
//! interval ending last is spilled to a stack slot for its whole life.
//!
//! Constants are not allocated at all: integer constants are folded into
//! instructions as immediates and float constants are read from the
//! function's constant pool, so they cost no register.

use iced_x86::Register;

use jit_ir::ir::{BinOp, Block, BlockCall, CmpOp, Function, Literal, Op, Reg, Terminator, Type};
use jit_ir::verify::RegTypes;
use jit_shared::Space;

/// Callee-saved registers the allocator hands out (saved in the prologue
/// when used).
pub(super) const CALLEE_SAVED: [Register; 5] = [
    Register::RBX,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];
/// The System V integer argument registers, in order.
pub(super) const INT_ARGS: [Register; 6] = [
    Register::RDI,
    Register::RSI,
    Register::RDX,
    Register::RCX,
    Register::R8,
    Register::R9,
];
/// Float registers the allocator hands out; xmm14 and xmm15 are scratch.
const XMM_ANY: [Register; 14] = [
    Register::XMM0,
    Register::XMM1,
    Register::XMM2,
    Register::XMM3,
    Register::XMM4,
    Register::XMM5,
    Register::XMM6,
    Register::XMM7,
    Register::XMM8,
    Register::XMM9,
    Register::XMM10,
    Register::XMM11,
    Register::XMM12,
    Register::XMM13,
];
/// General registers in preference order: caller-saved, then callee-saved;
/// and the same without rcx and/or rdx for values touching a shift or a
/// division.
const GPR_ANY: [Register; 11] = [
    Register::RDI,
    Register::RSI,
    Register::R8,
    Register::R9,
    Register::RDX,
    Register::RCX,
    Register::RBX,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];
const GPR_NO_RCX: [Register; 10] = [
    Register::RDI,
    Register::RSI,
    Register::R8,
    Register::R9,
    Register::RDX,
    Register::RBX,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];
const GPR_NO_RDX: [Register; 10] = [
    Register::RDI,
    Register::RSI,
    Register::R8,
    Register::R9,
    Register::RCX,
    Register::RBX,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];
const GPR_NO_RCX_RDX: [Register; 9] = [
    Register::RDI,
    Register::RSI,
    Register::R8,
    Register::R9,
    Register::RBX,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];

/// Where a virtual register lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loc {
    /// Never read (no location needed), or a comparison fused into its branch.
    None,
    /// A general-purpose register (its 64-bit name).
    Gpr(Register),
    /// An xmm register.
    Xmm(Register),
    /// A spill slot: 8 bytes at `[rsp + 8 * slot]`.
    Stack(u32),
    /// An integer, boolean or pointer constant in canonical form.
    Imm(u64),
    /// A float constant: its bits (an `f32` in the low half) and whether it is `f32`.
    FImm(u64, bool),
}

/// The allocation of one function.
pub(super) struct Allocation {
    /// Location of every virtual register.
    pub locs: Vec<Loc>,
    /// Number of spill slots.
    pub slots: u32,
    /// Callee-saved registers the function uses, to save in the prologue.
    pub saved: Vec<Register>,
    /// Whether the function calls anything (its stack must stay aligned).
    pub has_calls: bool,
    /// Registers whose comparison is consumed by the block's branch
    /// directly (flags, no `bool` materialised).
    pub fused: Vec<bool>,
    /// The memories and tables whose descriptor (and base) stay in a
    /// place of their own for the whole function (only in functions
    /// without calls).
    pub shared: Vec<Shared>,
    /// Whether the function has a narrow `add`, `sub`, `mul`, `shl` or
    /// `neg`, whose result the lowering leaves with raw upper bits.
    pub narrow: bool,
    /// The blocks a backward branch reaches.
    pub loop_tops: LoopTops,
}

/// The places of a memory's or table's descriptor address and base for a
/// whole function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Shared {
    /// Memory or table.
    pub space: Space,
    /// Its name.
    pub name: String,
    /// Where the descriptor's address is (a register, or a spill slot
    /// that is never written: the address is a constant, loaded where
    /// needed instead).
    pub descriptor: Loc,
    /// Where the base is, loaded in the prologue; `Loc::None` when the
    /// function only asks the size.
    pub base: Loc,
}

/// The memory or table an operation reads without calling, and whether it
/// touches bytes or entries (and so needs the base).
fn accessed(op: &Op) -> Option<(Space, &str, bool)> {
    Some(match op {
        Op::MemLoad { memory, .. } | Op::MemStore { memory, .. } => (Space::Memory, memory, true),
        Op::MemSize { memory } => (Space::Memory, memory, false),
        Op::TableGet { table, .. } | Op::TableSet { table, .. } => (Space::Table, table, true),
        Op::TableSize { table } => (Space::Table, table, false),
        _ => return None,
    })
}

fn index(r: Reg) -> usize {
    r.0 as usize
}

/// One bit set over virtual registers per block, in a single allocation.
#[derive(Default)]
struct Sets {
    words: usize,
    data: Vec<u64>,
}

impl Sets {
    /// Makes these empty sets over `regs` registers for `blocks` blocks,
    /// in the allocation they have.
    fn reset(&mut self, regs: usize, blocks: usize) {
        self.words = regs.div_ceil(64);
        refill(&mut self.data, self.words * blocks, 0);
    }
    fn row(&self, b: usize) -> &[u64] {
        self.data
            .get(b * self.words..(b + 1) * self.words)
            .unwrap_or(&[])
    }
    /// Every block's row, in block order.
    fn rows(&self) -> std::slice::ChunksExact<'_, u64> {
        self.data.chunks_exact(self.words.max(1))
    }
    fn row_mut(&mut self, b: usize) -> &mut [u64] {
        self.data
            .get_mut(b * self.words..(b + 1) * self.words)
            .unwrap_or(&mut [])
    }
}

fn set(row: &mut [u64], i: usize) {
    if let Some(w) = row.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

fn has(row: &[u64], i: usize) -> bool {
    row.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// Calls `f` with every member of `row`.
fn each(row: &[u64], mut f: impl FnMut(usize)) {
    for (k, &w) in row.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            f(k * 64 + w.trailing_zeros() as usize);
            w &= w - 1;
        }
    }
}

/// Successor block indices of a terminator.
pub(super) fn successors(term: &Terminator) -> [Option<usize>; 2] {
    match term {
        Terminator::Br(t) => [Some(t.block.0 as usize), None],
        Terminator::CondBr {
            then, otherwise, ..
        } => [
            Some(then.block.0 as usize),
            Some(otherwise.block.0 as usize),
        ],
        Terminator::Ret(_) | Terminator::Trap(_) => [None, None],
    }
}

/// Whether a comparison of type `ty` can feed a branch through flags alone
/// (float equality needs two flags, so it is materialised instead).
pub(super) fn fusable(op: CmpOp, ty: &Type) -> bool {
    !(ty.is_float() && matches!(op, CmpOp::Eq | CmpOp::Ne))
}

/// The canonical bits of a register-sized integer, boolean or pointer constant.
pub(super) fn const_bits(ty: &Type, value: Literal) -> Option<Loc> {
    Some(match (ty, value) {
        (Type::Int(t), Literal::Int(v)) => Loc::Imm(t.canonical(v as u64)),
        (Type::F32, Literal::Int(v)) => Loc::FImm(u64::from((v as f32).to_bits()), true),
        (Type::F32, Literal::Float(b)) => {
            Loc::FImm(u64::from((f64::from_bits(b) as f32).to_bits()), true)
        }
        (Type::F64, Literal::Int(v)) => Loc::FImm((v as f64).to_bits(), false),
        (Type::F64, Literal::Float(b)) => Loc::FImm(b, false),
        (Type::Bool, Literal::Bool(b)) => Loc::Imm(u64::from(b)),
        (t, Literal::Null) if t.is_pointer() => Loc::Imm(0),
        _ => return None,
    })
}

struct Interval {
    start: u32,
    end: u32,
    reg: u32,
    crosses_call: bool,
}

/// The working state of one allocation, kept per thread so that a
/// compilation reuses the previous one's buffers instead of making some
/// twenty of its own (what the allocation returns is still its own). Each
/// phase of [`Scratch::allocate`] clears the buffers it fills and reads
/// what the phases before it left.
#[derive(Default)]
struct Scratch {
    /// Reads of each register.
    uses: Vec<u32>,
    /// Each register's first position: its definition, then the start of
    /// the first block it is live into when that is earlier.
    start: Vec<u32>,
    /// Each register's last position: its last read (or the last consumer
    /// of a fused comparison it feeds), then the end of the last block it
    /// is live into or out of when that is later.
    end: Vec<u32>,
    /// Positions of calls, in order.
    calls: Vec<u32>,
    /// Positions of instructions that need rcx (shifts), in order.
    need_rcx: Vec<u32>,
    /// Positions of instructions that need rdx (division), in order.
    need_rdx: Vec<u32>,
    /// Each block's first position, where its parameters are defined.
    block_start: Vec<u32>,
    /// Each block's terminator's position.
    block_end: Vec<u32>,
    /// A register another value would like to share (branch argument and
    /// block parameter).
    hint: Vec<Option<u32>>,
    /// A fixed register a value would like (ABI argument positions).
    fixed: Vec<Option<Register>>,
    /// Per block, the registers read before it defines them (gen), grown
    /// by liveness into the registers live into it.
    live_in: Sets,
    /// Per block, the registers it defines (kill).
    kill: Sets,
    /// Per block, the registers live out of it.
    live_out: Sets,
    /// Each block's successors.
    succ: Vec<[Option<usize>; 2]>,
    /// Registers already stretched over liveness, three sets in one.
    seen: Vec<u64>,
    /// The intervals to allocate, by start.
    intervals: Vec<Interval>,
    /// (end, vreg) of the intervals the scan holds in registers.
    active: Vec<(u32, u32)>,
    /// Whether the function has narrow arithmetic that leaves raw upper
    /// bits (see [`Allocation::narrow`]).
    narrow: bool,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
    /// The vectors (locations, fused flags, saved registers) of
    /// allocations lowered and done with, for the next ones to fill.
    static SPARE_ALLOCATIONS: jit_shared::spare::Spares<(Vec<Loc>, Vec<bool>, Vec<Register>)> = const { std::cell::Cell::new(Vec::new()) };
}

/// Makes `buffer` `len` copies of `value`, in the allocation it has.
fn refill<T: Clone>(buffer: &mut Vec<T>, len: usize, value: T) {
    buffer.clear();
    buffer.resize(len, value);
}

/// Allocates every register of `func` (concrete and verified, with
/// `types` from the verifier).
pub(super) fn allocate(func: &Function, types: &RegTypes) -> Allocation {
    // Taken, not borrowed: nothing below can reenter, and a panic simply
    // leaves the thread a fresh scratch.
    let mut scratch = SCRATCH.take();
    let allocation = scratch.allocate(func, types);
    SCRATCH.set(scratch);
    allocation
}

/// Keeps an allocation that was lowered for the next [`allocate`] of this
/// thread to fill (its vectors are some hundred bytes each).
pub(super) fn recycle(allocation: Allocation) {
    jit_shared::spare::give(
        &SPARE_ALLOCATIONS,
        (allocation.locs, allocation.fused, allocation.saved),
    );
}

impl Scratch {
    /// [`allocate`] in these buffers, phase by phase.
    fn allocate(&mut self, func: &Function, types: &RegTypes) -> Allocation {
        let n = types.0.len().max(func.reg_count());
        let (mut locs, mut fused, saved) = jit_shared::spare::take(&SPARE_ALLOCATIONS);
        refill(&mut locs, n, Loc::None);
        refill(&mut fused, n, false);
        self.number(func, n, &mut locs);
        self.fuse_comparisons(&func.blocks, &mut fused);
        self.solve_liveness(&func.blocks, n);
        self.stretch_over_liveness();
        self.build_intervals(&locs, &fused);
        let hoisted = self.hoist_descriptors(func, n, &mut locs);
        let (slots, saved) = self.scan(func, types, &mut locs, &fused, saved);
        let place = |v: usize| locs.get(v).copied().unwrap_or(Loc::None);
        let shared = hoisted
            .into_iter()
            .enumerate()
            .map(|(k, (space, name, bytes))| Shared {
                space,
                name: name.to_owned(),
                descriptor: place(n + 2 * k),
                base: if bytes {
                    place(n + 2 * k + 1)
                } else {
                    Loc::None
                },
            })
            .collect();
        locs.truncate(n);
        let loop_tops = self.loop_tops(func, &fused);
        Allocation {
            locs,
            slots,
            saved,
            has_calls: !self.calls.is_empty(),
            fused,
            shared,
            narrow: self.narrow,
            loop_tops,
        }
    }

    /// In a function that calls nothing (so nothing it runs can grow a
    /// memory or table), gives each memory and table it reads two values
    /// of their own, live through the whole function: the descriptor's
    /// address and, when it accesses bytes or entries, the base, which the
    /// prologue loads once. They are numbered after the function's
    /// registers (`n + 2k` and `n + 2k + 1` for the `k`th) and allocated
    /// like any value, so under pressure they are the first spilled (they
    /// end last). The length is still read at every access. Returns each
    /// memory or table with whether it has a base.
    fn hoist_descriptors<'f>(
        &mut self,
        func: &'f Function,
        n: usize,
        locs: &mut Vec<Loc>,
    ) -> Vec<(Space, &'f str, bool)> {
        let mut hoisted: Vec<(Space, &'f str, bool)> = Vec::new();
        if !self.calls.is_empty() {
            return hoisted;
        }
        for inst in func.blocks.iter().flat_map(|b| &b.insts) {
            let Some((space, name, bytes)) = accessed(&inst.op) else {
                continue;
            };
            match hoisted.iter_mut().find(|h| h.0 == space && h.1 == name) {
                Some(h) => h.2 |= bytes,
                None => hoisted.push((space, name, bytes)),
            }
        }
        if hoisted.is_empty() {
            return hoisted;
        }
        let total = n + 2 * hoisted.len();
        locs.resize(total, Loc::None);
        self.hint.resize(total, None);
        self.fixed.resize(total, None);
        let end = self.block_end.last().copied().unwrap_or(0);
        for (k, &(_, _, bytes)) in hoisted.iter().enumerate() {
            self.intervals
                .extend((0..1 + usize::from(bytes)).map(|v| Interval {
                    start: 0,
                    end,
                    reg: (n + 2 * k + v) as u32,
                    crosses_call: false,
                }));
        }
        self.intervals.sort_unstable_by_key(|i| (i.start, i.reg));
        hoisted
    }

    /// Gives every point of the function a position (a block's start,
    /// each instruction, the terminator) and notes at each what the later
    /// phases need: definitions and reads, constants (which take no
    /// register), what the machine demands of the instruction, hints, and
    /// each block's gen and kill sets.
    fn number(&mut self, func: &Function, n: usize, locs: &mut [Loc]) {
        let nb = func.blocks.len();
        refill(&mut self.uses, n, 0);
        refill(&mut self.start, n, u32::MAX);
        refill(&mut self.end, n, 0);
        self.calls.clear();
        self.narrow = false;
        self.need_rcx.clear();
        self.need_rdx.clear();
        self.block_start.clear();
        self.block_end.clear();
        refill(&mut self.hint, n, None);
        refill(&mut self.fixed, n, None);
        self.live_in.reset(n, nb);
        self.kill.reset(n, nb);
        let mut ints = 0;
        for (i, ty) in func.sig.params.iter().enumerate() {
            self.start[i] = 0;
            if !ty.is_float() {
                self.fixed[i] = INT_ARGS.get(ints).copied();
                ints += 1;
            }
        }
        let mut pos = 0;
        for (b, block) in func.blocks.iter().enumerate() {
            pos = self.number_block(b, block, &func.blocks, pos, locs);
        }
    }

    /// [`Scratch::number`] for block `b` from position `pos`; returns the
    /// position after its terminator.
    fn number_block(
        &mut self,
        b: usize,
        block: &Block,
        blocks: &[Block],
        mut pos: u32,
        locs: &mut [Loc],
    ) -> u32 {
        let Scratch {
            uses,
            start: def,
            end: last,
            calls,
            need_rcx,
            need_rdx,
            block_start,
            block_end,
            hint,
            fixed,
            live_in: gen_,
            kill,
            narrow,
            ..
        } = self;
        let (g, k) = (gen_.row_mut(b), kill.row_mut(b));
        block_start.push(pos);
        for (r, _) in &block.params {
            if let Some(d) = def.get_mut(index(*r)) {
                *d = pos;
            }
            set(k, index(*r));
        }
        pos += 1;
        for inst in &block.insts {
            inst.op
                .for_each_use(|r| note_use(*r, pos, uses, last, g, k));
            if let Some(r) = inst.result {
                set(k, index(r));
                if let Some(d) = def.get_mut(index(r)) {
                    *d = pos;
                }
                if let Op::Const { ty, value } = &inst.op
                    && let Some(l) = const_bits(ty, *value)
                    && let Some(slot) = locs.get_mut(index(r))
                {
                    *slot = l;
                }
            }
            note_machine_needs(&inst.op, pos, need_rcx, need_rdx, calls, fixed, narrow);
            pos += 1;
        }
        block
            .term
            .for_each_use(|r| note_use(*r, pos, uses, last, g, k));
        hint_block_arguments(&block.term, blocks, hint);
        block_end.push(pos);
        pos + 1
    }

    /// Marks in `fused` the comparisons consumed only by selects of their
    /// own block and the branch ending it: those are not materialised. The
    /// lowering compares again at each consumer whose flags were clobbered
    /// since, so the comparison's operands stay live up to its last
    /// consumer.
    fn fuse_comparisons(&mut self, blocks: &[Block], fused: &mut [bool]) {
        for (bi, block) in blocks.iter().enumerate() {
            for (k, inst) in block.insts.iter().enumerate() {
                let (Some(r), Op::Cmp { op, ty, lhs, rhs }) = (inst.result, &inst.op) else {
                    continue;
                };
                if !fusable(*op, ty) {
                    continue;
                }
                let (consumed, last_at) =
                    consumers(block, k, r, self.block_start[bi], self.block_end[bi]);
                if consumed > 0
                    && self.uses.get(index(r)) == Some(&consumed)
                    && let Some(f) = fused.get_mut(index(r))
                {
                    *f = true;
                    for operand in [lhs, rhs] {
                        if let Some(l) = self.end.get_mut(index(*operand)) {
                            *l = (*l).max(last_at);
                        }
                    }
                }
            }
        }
    }

    /// Liveness: live-in = uses before definition ∪ (live-out − defs),
    /// iterated over the blocks in reverse until nothing changes.
    fn solve_liveness(&mut self, blocks: &[Block], n: usize) {
        let nb = blocks.len();
        let Scratch {
            live_in,
            kill,
            live_out,
            succ,
            ..
        } = self;
        live_out.reset(n, nb);
        let words = live_in.words;
        // Successors are read once per block here, not once per block and
        // iteration.
        succ.clear();
        succ.extend(
            blocks
                .iter()
                .map(|block| successors(&block.term).map(|s| s.filter(|&s| s < nb))),
        );
        let (live_in, kill, live_out) = (
            &mut live_in.data[..],
            &kill.data[..],
            &mut live_out.data[..],
        );
        if words == 1 {
            // Up to 64 registers, the common case: a block's sets are one
            // word each, and a step is a few bit operations.
            solve_one_word(succ, live_in, kill, live_out);
            return;
        }
        let mut changed = true;
        while changed {
            changed = false;
            for (b, out) in succ.iter().enumerate().rev() {
                for &s in out.iter().flatten() {
                    let (src, dst) = (s * words, b * words);
                    for w in 0..words {
                        let add = live_in[src + w] & !live_out[dst + w];
                        if add != 0 {
                            live_out[dst + w] |= add;
                            changed = true;
                        }
                    }
                }
                for w in 0..words {
                    let i = b * words + w;
                    let add = live_out[i] & !kill[i] & !live_in[i];
                    if add != 0 {
                        live_in[i] |= add;
                        changed = true;
                    }
                }
            }
        }
    }

    /// The loop tops of `func` (see [`LoopTops`]), from the successors
    /// liveness listed.
    fn loop_tops(&self, func: &Function, fused: &[bool]) -> LoopTops {
        let mut tops = LoopTops::default();
        for (b, out) in self.succ.iter().enumerate() {
            for &t in out.iter().flatten() {
                if t > b {
                    continue;
                }
                let repeated = matches!(func.blocks[b].term, Terminator::Br(_))
                    .then(|| repeated_test(func, fused, t))
                    .flatten();
                match repeated {
                    Some(test) => {
                        for s in [test.then.block.0 as usize, test.otherwise.block.0 as usize] {
                            if s <= b {
                                tops.mark(s);
                            }
                        }
                    }
                    None => tops.mark(t),
                }
            }
        }
        tops
    }

    /// Stretches each register's first and last positions over the blocks
    /// it is live into or out of, so that one range covers loops without
    /// holes. Positions grow with the block index, so a value starts at the
    /// first block it is live into and ends at the last block it is live
    /// out of (or into): each value is stretched once for each, found a
    /// word of values at a time, instead of once for every block it is
    /// live in.
    fn stretch_over_liveness(&mut self) {
        let Scratch {
            start,
            end,
            block_start,
            block_end,
            live_in,
            live_out,
            seen,
            ..
        } = self;
        let words = live_in.words;
        refill(seen, 3 * words, 0);
        let (seen_in, rest) = seen.split_at_mut(words);
        let (seen_in_last, seen_out_last) = rest.split_at_mut(words);
        for (row, &at) in live_in.rows().zip(block_start.iter()) {
            for (w, (seen, &x)) in seen_in.iter_mut().zip(row).enumerate() {
                let fresh = x & !*seen;
                *seen |= fresh;
                each(&[fresh], |v| {
                    if let Some(s) = start.get_mut(w * 64 + v) {
                        *s = (*s).min(at);
                    }
                });
            }
        }
        let blocks = live_in
            .rows()
            .zip(live_out.rows())
            .zip(block_start.iter().zip(block_end.iter()));
        for ((row_in, row_out), (&first, &last)) in blocks.rev() {
            let words = seen_in_last.iter_mut().zip(seen_out_last.iter_mut());
            for (w, ((seen_in, seen_out), (&x_in, &x_out))) in
                words.zip(row_in.iter().zip(row_out)).enumerate()
            {
                let (fresh_in, fresh_out) = (x_in & !*seen_in, x_out & !*seen_out);
                *seen_in |= fresh_in;
                *seen_out |= fresh_out;
                for (fresh, at) in [(fresh_in, first), (fresh_out, last)] {
                    each(&[fresh], |v| {
                        if let Some(e) = end.get_mut(w * 64 + v) {
                            *e = (*e).max(at);
                        }
                    });
                }
            }
        }
    }

    /// One interval, sorted by start, for each register that needs a
    /// location: read, defined, and neither a constant nor a fused
    /// comparison.
    fn build_intervals(&mut self, locs: &[Loc], fused: &[bool]) {
        let Scratch {
            uses,
            start,
            end,
            calls,
            intervals,
            ..
        } = self;
        intervals.clear();
        // One pass over the five per-register lists together (no index
        // checks); most functions call nothing, and then nothing crosses.
        let registers = uses.iter().zip(start.iter()).zip(end.iter());
        for (v, (((&used, &s), &e), (&loc, &fused))) in
            registers.zip(locs.iter().zip(fused)).enumerate()
        {
            if used == 0 || s == u32::MAX || loc != Loc::None || fused {
                continue;
            }
            let e = e.max(s);
            let crosses_call = !calls.is_empty() && {
                let k = calls.partition_point(|&c| c <= s);
                calls.get(k).is_some_and(|&c| c < e)
            };
            intervals.push(Interval {
                start: s,
                end: e,
                reg: v as u32,
                crosses_call,
            });
        }
        // Keys are distinct (one interval per register): unstable is stable.
        intervals.sort_unstable_by_key(|i| (i.start, i.reg));
    }

    /// The linear scan: each interval in order of start takes a free
    /// register it is allowed, its preferred one if it can; when none is
    /// free, whichever of it and the active intervals holding an allowed
    /// register ends last is spilled. Returns the number of spill slots
    /// and the callee-saved registers used, in register order (collected
    /// in `saved`, emptied first).
    fn scan(
        &mut self,
        func: &Function,
        types: &RegTypes,
        locs: &mut [Loc],
        fused: &[bool],
        mut saved: Vec<Register>,
    ) -> (u32, Vec<Register>) {
        let Scratch {
            need_rcx,
            need_rdx,
            hint,
            fixed,
            intervals,
            active,
            block_start,
            block_end,
            live_in,
            kill,
            live_out,
            ..
        } = self;
        active.clear();
        let liveness = Liveness {
            blocks: &func.blocks,
            block_start,
            block_end,
            live_in,
            kill,
            live_out,
            fused,
        };
        let mut scan = Scan {
            owner: [None; 32],
            lent: [0; 32],
            owner_end: [0; 32],
            active,
            expiry: u32::MAX,
            slots: 0,
            saved: {
                saved.clear();
                saved
            },
        };
        for iv in intervals.iter() {
            if scan.expiry <= iv.start {
                scan.expire(iv.start, locs);
            }
            let v = iv.reg as usize;
            let float = types.0.get(v).is_some_and(Type::is_float);
            let allowed = allowed(
                float,
                iv.crosses_call,
                touches(need_rcx, iv),
                touches(need_rdx, iv),
            );
            let wanted = preferred(hint, v, fixed[v], locs).filter(|r| allowed.contains(r));
            if let Some(r) = wanted
                && !scan.is_free(r, float)
                && scan.lend(r, float, iv, &liveness, locs)
            {
                continue;
            }
            let reg = wanted
                .filter(|r| scan.is_free(*r, float))
                .or_else(|| allowed.iter().copied().find(|r| scan.is_free(*r, float)))
                .or_else(|| scan.evict(allowed, iv.start, iv.end, locs));
            scan.place(iv, float, reg, locs);
        }
        let Scan {
            slots, mut saved, ..
        } = scan;
        saved.sort_by_key(|r| *r as u32);
        (slots, saved)
    }
}

/// [`Scratch::solve_liveness`] for sets of one word per block: the same
/// equations, iterated over the blocks in reverse until nothing changes.
fn solve_one_word(
    succ: &[[Option<usize>; 2]],
    live_in: &mut [u64],
    kill: &[u64],
    live_out: &mut [u64],
) {
    // A pass that changes no live-in set computed every live-out set
    // from final live-in sets: then all are final.
    let blocks = succ
        .len()
        .min(live_in.len())
        .min(kill.len())
        .min(live_out.len());
    loop {
        let mut changed = false;
        for b in (0..blocks).rev() {
            let [first, second] = succ[b];
            let mut out = live_out[b];
            for s in [first, second].into_iter().flatten() {
                out |= live_in.get(s).copied().unwrap_or(0);
            }
            live_out[b] = out;
            let now_in = live_in[b] | (out & !kill[b]);
            changed |= now_in != live_in[b];
            live_in[b] = now_in;
        }
        if !changed {
            return;
        }
    }
}

/// Notes a read of `r` at `at` in a block whose sets are `gen_` and
/// `kill`: one use more, the last so far, and a read before definition
/// unless the block has defined `r` already.
fn note_use(r: Reg, at: u32, uses: &mut [u32], last: &mut [u32], gen_: &mut [u64], kill: &[u64]) {
    if let Some(u) = uses.get_mut(index(r)) {
        *u += 1;
    }
    if let Some(l) = last.get_mut(index(r)) {
        *l = (*l).max(at);
    }
    if !has(kill, index(r)) {
        set(gen_, index(r));
    }
}

/// Notes what the machine demands of `op` at `at`: a shift by a register
/// needs rcx and an integer division rdx, and a call's integer arguments
/// would like the ABI's argument registers (unless they have one already).
/// Calls include `call_table` and the grows of shared memories and tables,
/// which call the runtime.
fn note_machine_needs(
    op: &Op,
    at: u32,
    need_rcx: &mut Vec<u32>,
    need_rdx: &mut Vec<u32>,
    calls: &mut Vec<u32>,
    fixed: &mut [Option<Register>],
    narrow: &mut bool,
) {
    if let Op::Binary {
        op,
        ty: Type::Int(_),
        ..
    } = op
    {
        match op {
            BinOp::Shl | BinOp::Shr => need_rcx.push(at),
            BinOp::Div | BinOp::Rem => need_rdx.push(at),
            _ => {}
        }
    }
    *narrow |= super::lower::leaves_raw(op).is_some();
    let mut want = |r: Reg, register: Option<Register>| {
        if let Some(f) = fixed.get_mut(index(r))
            && f.is_none()
        {
            *f = register;
        }
    };
    match op {
        Op::Call { sig, args, .. }
        | Op::CallIndirect { sig, args, .. }
        | Op::CallTable { sig, args, .. } => {
            calls.push(at);
            let mut slot = 0;
            for (a, t) in args.iter().zip(&sig.params) {
                if !t.is_float() {
                    want(*a, INT_ARGS.get(slot).copied());
                    slot += 1;
                }
            }
        }
        // Calls of the runtime's grow with (descriptor, delta).
        Op::MemGrow { delta, .. } | Op::TableGrow { delta, .. } => {
            calls.push(at);
            want(*delta, INT_ARGS.get(1).copied());
        }
        _ => {}
    }
}

/// The blocks a backward branch reaches, which the lowering aligns: the
/// target of a branch from a block at or after it, except that a jump
/// back to a header whose test it repeats (see [`RepeatedTest`]) goes to
/// the header's successors, so those are marked instead when they lie
/// back. One bit per block, the first 64 inline (no allocation for most
/// functions).
#[derive(Clone, Debug, Default)]
pub(super) struct LoopTops {
    first: u64,
    rest: Vec<u64>,
}

impl LoopTops {
    fn mark(&mut self, b: usize) {
        if b < 64 {
            self.first |= 1 << b;
            return;
        }
        let (w, bit) = ((b - 64) / 64, (b - 64) % 64);
        if self.rest.len() <= w {
            self.rest.resize(w + 1, 0);
        }
        self.rest[w] |= 1 << bit;
    }

    /// Whether block `b` starts a loop.
    pub(super) fn has(&self, b: usize) -> bool {
        if b < 64 {
            return self.first & (1 << b) != 0;
        }
        let (w, bit) = ((b - 64) / 64, (b - 64) % 64);
        self.rest.get(w).is_some_and(|x| x & (1 << bit) != 0)
    }
}

/// The test of a loop header a branch back to it may repeat: the header
/// computes nothing but constants and one comparison, fused into its
/// two-way branch, whose edges pass no arguments.
pub(super) struct RepeatedTest<'f> {
    pub then: &'f BlockCall,
    pub otherwise: &'f BlockCall,
    pub op: CmpOp,
    pub ty: &'f Type,
    pub lhs: Reg,
    pub rhs: Reg,
}

/// The test of block `target` of `f` when a branch to it may repeat it
/// (see [`RepeatedTest`]); `fused` is the allocation's.
pub(super) fn repeated_test<'f>(
    f: &'f Function,
    fused: &[bool],
    target: usize,
) -> Option<RepeatedTest<'f>> {
    let header = f.blocks.get(target)?;
    let Terminator::CondBr {
        cond,
        then,
        otherwise,
    } = &header.term
    else {
        return None;
    };
    let (last, consts) = header.insts.split_last()?;
    let Op::Cmp { op, ty, lhs, rhs } = &last.op else {
        return None;
    };
    let simple = last.result == Some(*cond)
        && fused.get(cond.0 as usize) == Some(&true)
        && then.args.is_empty()
        && otherwise.args.is_empty()
        && consts.iter().all(|i| matches!(i.op, Op::Const { .. }));
    simple.then_some(RepeatedTest {
        then,
        otherwise,
        op: *op,
        ty,
        lhs: *lhs,
        rhs: *rhs,
    })
}

/// The branches of a terminator with their block arguments, without a
/// list.
pub(super) fn block_calls(term: &Terminator) -> [Option<&BlockCall>; 2] {
    match term {
        Terminator::Br(t) => [Some(t), None],
        Terminator::CondBr {
            then, otherwise, ..
        } => [Some(then), Some(otherwise)],
        _ => [None, None],
    }
}

/// Hints each argument of a branch in `term` and the block parameter it
/// becomes at each other, so that they may share a register and the
/// branch need not move it.
fn hint_block_arguments(term: &Terminator, blocks: &[Block], hint: &mut [Option<u32>]) {
    for t in block_calls(term).into_iter().flatten() {
        let Some(target) = blocks.get(t.block.0 as usize) else {
            continue;
        };
        for (a, (p, _)) in t.args.iter().zip(&target.params) {
            if let Some(h) = hint.get_mut(index(*a)) {
                h.get_or_insert(p.0);
            }
            if let Some(h) = hint.get_mut(index(*p)) {
                h.get_or_insert(a.0);
            }
        }
    }
}

/// How many of the selects after instruction `k` of `block` and its
/// branch read comparison `r`, and the position of the last of them
/// (`block` starting at `start` and branching at `end`).
fn consumers(block: &Block, k: usize, r: Reg, start: u32, end: u32) -> (u32, u32) {
    let mut consumed = 0;
    let mut last_at = 0;
    for (j, later) in block.insts.iter().enumerate().skip(k + 1) {
        if let Op::Select { cond, .. } = &later.op
            && *cond == r
        {
            consumed += 1;
            last_at = start + 1 + j as u32;
        }
    }
    if matches!(&block.term, Terminator::CondBr { cond, .. } if *cond == r) {
        consumed += 1;
        last_at = end;
    }
    (consumed, last_at)
}

/// Whether one of the sorted positions `at` lies in `iv`.
fn touches(at: &[u32], iv: &Interval) -> bool {
    let k = at.partition_point(|&p| p < iv.start);
    at.get(k).is_some_and(|&p| p <= iv.end)
}

/// The registers an interval may take: an xmm register for a float, but
/// none across a call (System V preserves no xmm register); a callee-saved
/// one across a call; otherwise any general register, except rcx or rdx
/// when it touches an instruction that needs them.
fn allowed(float: bool, crosses_call: bool, no_rcx: bool, no_rdx: bool) -> &'static [Register] {
    match (float, crosses_call, no_rcx, no_rdx) {
        (true, true, ..) => &[],
        (true, false, ..) => &XMM_ANY,
        (false, true, ..) => &CALLEE_SAVED,
        (false, false, false, false) => &GPR_ANY,
        (false, false, true, false) => &GPR_NO_RCX,
        (false, false, false, true) => &GPR_NO_RDX,
        (false, false, true, true) => &GPR_NO_RCX_RDX,
    }
}

/// The register value `v` would like: the one its hint holds by now, or
/// when the hint has no place yet the one the hint's own hint holds (a
/// branch argument, through the parameter it becomes, to the value that
/// parameter is passed on as), else its fixed one.
fn preferred(
    hint: &[Option<u32>],
    v: usize,
    fixed: Option<Register>,
    locs: &[Loc],
) -> Option<Register> {
    let held = |h: u32| match locs.get(h as usize) {
        Some(Loc::Gpr(r) | Loc::Xmm(r)) => Some(*r),
        _ => None,
    };
    let first = hint.get(v).copied().flatten();
    first
        .and_then(held)
        .or_else(|| {
            first
                .and_then(|h| hint.get(h as usize).copied().flatten())
                .filter(|&h| h as usize != v)
                .and_then(held)
        })
        .or(fixed)
}

/// `r` as a location: an xmm register for a float.
fn in_register(r: Register, float: bool) -> Loc {
    if float { Loc::Xmm(r) } else { Loc::Gpr(r) }
}

/// The index of a register location in [`Scan::owner`].
fn owner_key(l: Loc) -> Option<usize> {
    match l {
        Loc::Gpr(r) => Some(r as usize - Register::RAX as usize),
        Loc::Xmm(r) => Some(16 + r as usize - Register::XMM0 as usize),
        _ => None,
    }
}

/// What the scan reads of liveness to tell whether a value is dead over a
/// stretch of positions.
struct Liveness<'a> {
    blocks: &'a [Block],
    block_start: &'a [u32],
    block_end: &'a [u32],
    live_in: &'a Sets,
    kill: &'a Sets,
    live_out: &'a Sets,
    fused: &'a [bool],
}

impl Liveness<'_> {
    /// Whether value `x` (already defined at `from`) is dead at every
    /// position after `from` up to `to`: not live out of any block there,
    /// not live into or defined in any block after the first, and neither
    /// read nor defined in the first after `from` (a fused comparison
    /// reads its operands again at the branch).
    fn dead_over(&self, x: usize, from: u32, to: u32) -> bool {
        let words = self.live_in.words;
        if x >= words * 64 || x >= self.fused.len() {
            return false;
        }
        let first = self.block_start.partition_point(|&s| s <= from) - 1;
        for b in first..self.block_start.len() {
            if self.block_start[b] > to {
                break;
            }
            if has(self.live_out.row(b), x)
                || (b > first && (has(self.live_in.row(b), x) || has(self.kill.row(b), x)))
            {
                return false;
            }
        }
        self.last_touch_in(first, x) <= from
    }

    /// The last position at which block `b` reads or defines `x` (0 when
    /// it does neither).
    fn last_touch_in(&self, b: usize, x: usize) -> u32 {
        let block = &self.blocks[b];
        let end = self.block_end[b];
        let mut last = 0;
        for (j, inst) in block.insts.iter().enumerate() {
            let mut touches = inst.result.is_some_and(|r| index(r) == x);
            inst.op.for_each_use(|r| touches |= index(*r) == x);
            if touches {
                let fused = inst
                    .result
                    .is_some_and(|r| self.fused.get(index(r)) == Some(&true));
                let at = if fused {
                    end
                } else {
                    self.block_start[b] + 1 + j as u32
                };
                last = last.max(at);
            }
        }
        let mut read_at_end = false;
        block.term.for_each_use(|r| read_at_end |= index(*r) == x);
        if read_at_end { end } else { last }
    }
}

/// The registers during the linear scan.
struct Scan<'s> {
    /// The virtual register each register holds (gpr 0–15, xmm 16–31).
    owner: [Option<u32>; 32],
    /// Per register, the end of the last interval that shares it with its
    /// owner (see [`Scan::lend`]); the owner is not evicted before then.
    lent: [u32; 32],
    /// Per register, where its owner's interval ends.
    owner_end: [u32; 32],
    /// (end, vreg) of the intervals in registers.
    active: &'s mut Vec<(u32, u32)>,
    /// No active interval ends before `expiry` (a lower bound: spilling
    /// removes entries without raising it), so most intervals skip the
    /// scan of the active list for expired ones.
    expiry: u32,
    /// Spill slots handed out.
    slots: u32,
    /// Callee-saved general registers handed out.
    saved: Vec<Register>,
}

impl Scan<'_> {
    /// Frees the registers of the active intervals ending by `at`.
    fn expire(&mut self, at: u32, locs: &[Loc]) {
        let (owner, expiry) = (&mut self.owner, &mut self.expiry);
        *expiry = u32::MAX;
        self.active.retain(|&(e, v)| {
            if e <= at {
                if let Some(k) = owner_key(locs[v as usize]) {
                    owner[k] = None;
                }
                false
            } else {
                *expiry = (*expiry).min(e);
                true
            }
        });
    }

    fn is_free(&self, r: Register, float: bool) -> bool {
        owner_key(in_register(r, float)).is_some_and(|k| self.owner[k].is_none())
    }

    /// A new spill slot.
    fn spill_slot(&mut self) -> Loc {
        self.slots += 1;
        Loc::Stack(self.slots - 1)
    }

    /// Spills the active interval holding an `allowed` register that ends
    /// last, when it ends after `end` (the current interval's, which starts
    /// at `start`), and returns its register. A register lent to an
    /// interval still live at `start` is not taken.
    fn evict(
        &mut self,
        allowed: &[Register],
        start: u32,
        end: u32,
        locs: &mut [Loc],
    ) -> Option<Register> {
        let lent = &self.lent;
        let victim = self
            .active
            .iter()
            .filter(|(_, w)| match locs[*w as usize] {
                Loc::Gpr(r) | Loc::Xmm(r) => {
                    allowed.contains(&r)
                        && owner_key(locs[*w as usize]).is_some_and(|k| lent[k] <= start)
                }
                _ => false,
            })
            .max_by_key(|(e, _)| *e)
            .copied();
        match victim {
            Some((e, w)) if e > end => {
                let (Loc::Gpr(r) | Loc::Xmm(r)) = locs[w as usize] else {
                    unreachable!("victims hold registers")
                };
                locs[w as usize] = self.spill_slot();
                self.active.retain(|&(_, x)| x != w);
                Some(r)
            }
            _ => None,
        }
    }

    /// Lets `iv` share register `r` with the interval that holds it when
    /// their values are never live at the same point: the holder ends no
    /// earlier than `iv` (so nothing else takes the register meanwhile), no
    /// other interval shares it past `iv`'s start, and the holder is dead
    /// from `iv`'s start to its end. Intervals have no holes, so this is
    /// what lets a loop's next value take the register of the value it
    /// replaces although the old one is read again after the loop.
    /// Returns whether `iv` got `r`.
    fn lend(
        &mut self,
        r: Register,
        float: bool,
        iv: &Interval,
        liveness: &Liveness<'_>,
        locs: &mut [Loc],
    ) -> bool {
        let Some(k) = owner_key(in_register(r, float)) else {
            return false;
        };
        let Some(holder) = self.owner[k] else {
            return false;
        };
        let lendable = self.lent[k] <= iv.start
            && self.owner_end[k] >= iv.end
            && liveness.dead_over(holder as usize, iv.start, iv.end);
        if lendable {
            self.lent[k] = iv.end;
            locs[iv.reg as usize] = in_register(r, float);
        }
        lendable
    }

    /// Gives `iv`'s register its location: `reg`, or a spill slot
    /// without one.
    fn place(&mut self, iv: &Interval, float: bool, reg: Option<Register>, locs: &mut [Loc]) {
        let v = iv.reg as usize;
        let Some(r) = reg else {
            locs[v] = self.spill_slot();
            return;
        };
        locs[v] = in_register(r, float);
        if let Some(k) = owner_key(locs[v]) {
            self.owner[k] = Some(iv.reg);
            self.owner_end[k] = iv.end;
        }
        self.active.push((iv.end, iv.reg));
        self.expiry = self.expiry.min(iv.end);
        if CALLEE_SAVED.contains(&r) && !float && !self.saved.contains(&r) {
            self.saved.push(r);
        }
    }
}
