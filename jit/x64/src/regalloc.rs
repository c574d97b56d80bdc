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

use jit_ir::ir::{BinOp, CmpOp, Function, Literal, Op, Reg, Terminator, Type};
use jit_ir::verify::RegTypes;

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
}

fn index(r: Reg) -> usize {
    r.0 as usize
}

/// One bit set over virtual registers per block, in a single allocation.
struct Sets {
    words: usize,
    data: Vec<u64>,
}

impl Sets {
    /// Empty sets over `regs` registers for `blocks` blocks, in `data`'s
    /// allocation.
    fn reuse(data: Vec<u64>, regs: usize, blocks: usize) -> Self {
        let words = regs.div_ceil(64);
        Sets {
            words,
            data: filled(data, words * blocks, 0),
        }
    }
    fn row(&self, b: usize) -> &[u64] {
        self.data
            .get(b * self.words..(b + 1) * self.words)
            .unwrap_or(&[])
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

/// The working buffers of one allocation, kept per thread so that a
/// compilation reuses the previous one's allocations instead of making
/// some twenty of its own (what the function returns is still its own).
#[derive(Default)]
struct Scratch {
    uses: Vec<u32>,
    def: Vec<u32>,
    last: Vec<u32>,
    calls: Vec<u32>,
    need_rcx: Vec<u32>,
    need_rdx: Vec<u32>,
    block_start: Vec<u32>,
    block_end: Vec<u32>,
    hint: Vec<Option<u32>>,
    fixed: Vec<Option<Register>>,
    gen_: Vec<u64>,
    kill: Vec<u64>,
    live_out: Vec<u64>,
    succ: Vec<[Option<usize>; 2]>,
    seen: Vec<u64>,
    intervals: Vec<Interval>,
    active: Vec<(u32, u32)>,
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = std::cell::Cell::new(Scratch::default());
}

/// `buffer` emptied and filled with `len` copies of `value`.
fn filled<T: Clone>(mut buffer: Vec<T>, len: usize, value: T) -> Vec<T> {
    buffer.clear();
    buffer.resize(len, value);
    buffer
}

/// `buffer` emptied.
fn emptied<T>(mut buffer: Vec<T>) -> Vec<T> {
    buffer.clear();
    buffer
}

/// Allocates every register of `func` (concrete and verified, with
/// `types` from the verifier).
pub(super) fn allocate(func: &Function, types: &RegTypes) -> Allocation {
    // Taken, not borrowed: nothing below can reenter, and a panic simply
    // leaves the thread a fresh scratch.
    let scratch = SCRATCH.take();
    let (allocation, scratch) = allocate_in(func, types, scratch);
    SCRATCH.set(scratch);
    allocation
}

/// [`allocate`] with the working buffers of `scratch`, which it hands back.
fn allocate_in(func: &Function, types: &RegTypes, scratch: Scratch) -> (Allocation, Scratch) {
    let n = types.0.len().max(func.reg_count());
    let blocks = &func.blocks;
    let mut locs = vec![Loc::None; n];
    let mut uses = filled(scratch.uses, n, 0u32);
    let mut def = filled(scratch.def, n, u32::MAX);
    let mut last = filled(scratch.last, n, 0u32);
    let mut fused = vec![false; n];
    let mut calls = emptied(scratch.calls);
    // Positions of instructions that need rcx (shifts) or rdx (division).
    let (mut need_rcx, mut need_rdx) = (emptied(scratch.need_rcx), emptied(scratch.need_rdx));
    let mut block_start = emptied(scratch.block_start);
    let mut block_end = emptied(scratch.block_end);
    // Hints: a register another value would like to share (branch argument
    // and block parameter), or a fixed register (ABI argument positions).
    let mut hint = filled(scratch.hint, n, None);
    let mut fixed = filled(scratch.fixed, n, None);

    // Positions, definitions, uses and constants; and for liveness, each
    // block's uses before definition (gen) and definitions (kill).
    let nb = blocks.len();
    let mut gen_ = Sets::reuse(scratch.gen_, n, nb);
    let mut kill = Sets::reuse(scratch.kill, n, nb);
    let mut pos = 0u32;
    let mut ints = 0;
    for (i, ty) in func.sig.params.iter().enumerate() {
        def[i] = 0;
        if !ty.is_float() {
            fixed[i] = INT_ARGS.get(ints).copied();
            ints += 1;
        }
    }
    let note_use = |r: Reg, at: u32, uses: &mut Vec<u32>, last: &mut Vec<u32>| {
        if let Some(u) = uses.get_mut(index(r)) {
            *u += 1;
        }
        if let Some(l) = last.get_mut(index(r)) {
            *l = (*l).max(at);
        }
    };
    for (b, block) in blocks.iter().enumerate() {
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
            inst.op.for_each_use(|r| {
                note_use(*r, pos, &mut uses, &mut last);
                if !has(k, index(*r)) {
                    set(g, index(*r));
                }
            });
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
            if let Op::Binary {
                op,
                ty: Type::Int(_),
                ..
            } = &inst.op
            {
                match op {
                    BinOp::Shl | BinOp::Shr => need_rcx.push(pos),
                    BinOp::Div | BinOp::Rem => need_rdx.push(pos),
                    _ => {}
                }
            }
            if let Op::Call { sig, args, .. } | Op::CallIndirect { sig, args, .. } = &inst.op {
                calls.push(pos);
                let mut slot = 0;
                for (a, t) in args.iter().zip(&sig.params) {
                    if !t.is_float() {
                        if let Some(f) = fixed.get_mut(index(*a))
                            && f.is_none()
                        {
                            *f = INT_ARGS.get(slot).copied();
                        }
                        slot += 1;
                    }
                }
            }
            pos += 1;
        }
        block.term.for_each_use(|r| {
            note_use(*r, pos, &mut uses, &mut last);
            if !has(k, index(*r)) {
                set(g, index(*r));
            }
        });
        let calls: [Option<&jit_ir::ir::BlockCall>; 2] = match &block.term {
            Terminator::Br(t) => [Some(t), None],
            Terminator::CondBr {
                then, otherwise, ..
            } => [Some(then), Some(otherwise)],
            _ => [None, None],
        };
        for t in calls.into_iter().flatten() {
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
        block_end.push(pos);
        pos += 1;
    }

    // A comparison consumed only by selects of its own block and the
    // branch ending it is not materialised: the lowering compares again at
    // each consumer whose flags were clobbered since, so the comparison's
    // operands stay live up to its last consumer.
    for (bi, block) in blocks.iter().enumerate() {
        for (k, inst) in block.insts.iter().enumerate() {
            let (Some(r), Op::Cmp { op, ty, lhs, rhs }) = (inst.result, &inst.op) else {
                continue;
            };
            if !fusable(*op, ty) {
                continue;
            }
            let mut consumed = 0;
            let mut last_at = 0;
            for (j, later) in block.insts.iter().enumerate().skip(k + 1) {
                if let Op::Select { cond, .. } = &later.op
                    && *cond == r
                {
                    consumed += 1;
                    last_at = block_start[bi] + 1 + j as u32;
                }
            }
            if matches!(&block.term, Terminator::CondBr { cond, .. } if *cond == r) {
                consumed += 1;
                last_at = block_end[bi];
            }
            if consumed > 0
                && uses.get(index(r)) == Some(&consumed)
                && let Some(f) = fused.get_mut(index(r))
            {
                *f = true;
                for operand in [lhs, rhs] {
                    if let Some(l) = last.get_mut(index(*operand)) {
                        *l = (*l).max(last_at);
                    }
                }
            }
        }
    }

    // Liveness: live-in = uses before definition ∪ (live-out − defs).
    let mut live_in = Sets {
        words: gen_.words,
        data: gen_.data,
    };
    let mut live_out = Sets::reuse(scratch.live_out, n, nb);
    let words = live_in.words;
    // Successors are read once per block here, not once per block and
    // iteration.
    let mut succ = emptied(scratch.succ);
    succ.extend(
        blocks
            .iter()
            .map(|block| successors(&block.term).map(|s| s.filter(|&s| s < nb))),
    );
    let mut changed = true;
    while changed {
        changed = false;
        for (b, out) in succ.iter().enumerate().rev() {
            for &s in out.iter().flatten() {
                let (src, dst) = (s * words, b * words);
                for w in 0..words {
                    let add = live_in.data[src + w] & !live_out.data[dst + w];
                    if add != 0 {
                        live_out.data[dst + w] |= add;
                        changed = true;
                    }
                }
            }
            for w in 0..words {
                let i = b * words + w;
                let add = live_out.data[i] & !kill.data[i] & !live_in.data[i];
                if add != 0 {
                    live_in.data[i] |= add;
                    changed = true;
                }
            }
        }
    }

    // Intervals. Positions grow with the block index, so a value starts
    // at the first block it is live into and ends at the last block it is
    // live out of (or into): each value is stretched once for each, found
    // a word of values at a time, instead of once for every block it is
    // live in.
    let (mut start, mut end) = (def, last);
    let mut seen = filled(scratch.seen, 3 * words, 0u64);
    let (seen_in, rest) = seen.split_at_mut(words);
    let (seen_in_last, seen_out_last) = rest.split_at_mut(words);
    for (b, &at) in block_start.iter().enumerate() {
        for (w, seen) in seen_in.iter_mut().enumerate() {
            let fresh = live_in.row(b).get(w).map_or(0, |x| x & !*seen);
            *seen |= fresh;
            each(&[fresh], |v| {
                if let Some(s) = start.get_mut(w * 64 + v) {
                    *s = (*s).min(at);
                }
            });
        }
    }
    for b in (0..nb).rev() {
        for w in 0..words {
            let row = |sets: &Sets, seen: &mut [u64]| {
                let fresh = sets.row(b).get(w).map_or(0, |x| x & !seen[w]);
                seen[w] |= fresh;
                fresh
            };
            let (fresh_in, fresh_out) =
                (row(&live_in, seen_in_last), row(&live_out, seen_out_last));
            for (fresh, at) in [(fresh_in, block_start[b]), (fresh_out, block_end[b])] {
                each(&[fresh], |v| {
                    if let Some(e) = end.get_mut(w * 64 + v) {
                        *e = (*e).max(at);
                    }
                });
            }
        }
    }
    let mut intervals = emptied(scratch.intervals);
    intervals.extend(
        (0..n)
            .filter(|&v| uses[v] > 0 && start[v] != u32::MAX && locs[v] == Loc::None && !fused[v])
            .map(|v| {
                let (s, e) = (start[v], end[v].max(start[v]));
                let k = calls.partition_point(|&c| c <= s);
                let crosses_call = calls.get(k).is_some_and(|&c| c < e);
                Interval {
                    start: s,
                    end: e,
                    reg: v as u32,
                    crosses_call,
                }
            }),
    );
    intervals.sort_by_key(|i| (i.start, i.reg));

    // Linear scan. `active` holds (end, vreg) of intervals in registers;
    // `owner` maps a register number (gpr 0–15, xmm 16–31) to its vreg.
    let mut owner: [Option<u32>; 32] = [None; 32];
    let mut active = emptied(scratch.active);
    let mut slots = 0u32;
    let mut saved = Vec::new();
    let key = |l: Loc| match l {
        Loc::Gpr(r) => Some(r as usize - Register::RAX as usize),
        Loc::Xmm(r) => Some(16 + r as usize - Register::XMM0 as usize),
        _ => None,
    };
    // No active interval ends before `expiry` (a lower bound: spilling
    // removes entries without raising it), so most intervals skip the scan
    // of the active list for expired ones.
    let mut expiry = u32::MAX;
    for iv in &intervals {
        if expiry <= iv.start {
            expiry = u32::MAX;
            active.retain(|&(e, v)| {
                if e <= iv.start {
                    if let Some(k) = key(locs[v as usize]) {
                        owner[k] = None;
                    }
                    false
                } else {
                    expiry = expiry.min(e);
                    true
                }
            });
        }
        let v = iv.reg as usize;
        let float = types.0.get(v).is_some_and(Type::is_float);
        let touches = |at: &[u32]| {
            let k = at.partition_point(|&p| p < iv.start);
            at.get(k).is_some_and(|&p| p <= iv.end)
        };
        let (no_rcx, no_rdx) = (touches(&need_rcx), touches(&need_rdx));
        let allowed: &[Register] = match (float, iv.crosses_call, no_rcx, no_rdx) {
            (true, true, ..) => &[],
            (true, false, ..) => &XMM_ANY,
            (false, true, ..) => &CALLEE_SAVED,
            (false, false, false, false) => &GPR_ANY,
            (false, false, true, false) => &GPR_NO_RCX,
            (false, false, false, true) => &GPR_NO_RDX,
            (false, false, true, true) => &GPR_NO_RCX_RDX,
        };
        let wrap = |r: Register| if float { Loc::Xmm(r) } else { Loc::Gpr(r) };
        let is_free = |r: Register, owner: &[Option<u32>; 32]| {
            key(wrap(r)).is_some_and(|k| owner[k].is_none())
        };
        let hinted = hint[v]
            .and_then(|h| locs.get(h as usize).copied())
            .and_then(|l| match l {
                Loc::Gpr(r) | Loc::Xmm(r) => Some(r),
                _ => None,
            })
            .or(fixed[v]);
        let choice = hinted
            .filter(|r| allowed.contains(r) && is_free(*r, &owner))
            .or_else(|| allowed.iter().copied().find(|r| is_free(*r, &owner)));
        let reg = match choice {
            Some(r) => Some(r),
            None => {
                // Spill whichever of the current interval and the active
                // ones holding an allowed register ends last.
                let victim = active
                    .iter()
                    .filter(|(_, w)| match locs[*w as usize] {
                        Loc::Gpr(r) | Loc::Xmm(r) => allowed.contains(&r),
                        _ => false,
                    })
                    .max_by_key(|(e, _)| *e)
                    .copied();
                match victim {
                    Some((e, w)) if e > iv.end => {
                        let (Loc::Gpr(r) | Loc::Xmm(r)) = locs[w as usize] else {
                            unreachable!("victims hold registers")
                        };
                        locs[w as usize] = Loc::Stack(slots);
                        slots += 1;
                        active.retain(|&(_, x)| x != w);
                        Some(r)
                    }
                    _ => None,
                }
            }
        };
        match reg {
            Some(r) => {
                locs[v] = wrap(r);
                if let Some(k) = key(locs[v]) {
                    owner[k] = Some(iv.reg);
                }
                active.push((iv.end, iv.reg));
                expiry = expiry.min(iv.end);
                if CALLEE_SAVED.contains(&r) && !float && !saved.contains(&r) {
                    saved.push(r);
                }
            }
            None => {
                locs[v] = Loc::Stack(slots);
                slots += 1;
            }
        }
    }
    saved.sort_by_key(|r| *r as u32);
    let allocation = Allocation {
        locs,
        slots,
        saved,
        has_calls: !calls.is_empty(),
        fused,
    };
    let scratch = Scratch {
        uses,
        def: start,
        last: end,
        calls,
        need_rcx,
        need_rdx,
        block_start,
        block_end,
        hint,
        fixed,
        gen_: live_in.data,
        kill: kill.data,
        live_out: live_out.data,
        succ,
        seen,
        intervals,
        active,
    };
    (allocation, scratch)
}
