//! Register allocation: liveness over the block graph, one live interval
//! per virtual register, and linear scan (Poletto and Sarkar) with
//! spilling.
//!
//! Blocks are laid out in their IR order and every point of the function
//! gets a position: a block's start (where its parameters are defined),
//! each instruction, and the terminator. An interval runs from a value's
//! definition to its last use, stretched over every block it is live
//! into or out of, so one range covers loops without holes. One walk over
//! the function finds positions, uses and the uses that cross blocks;
//! liveness then walks back from those uses only, so values that never
//! leave their block cost nothing beyond the walk.
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

use crate::ir::{BinOp, CmpOp, Function, Literal, Op, Reg, Terminator, Type};
use crate::verify::RegTypes;

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

/// What the walk over the function learns about one virtual register.
#[derive(Clone, Copy)]
struct Value {
    /// Position of the definition (`u32::MAX`: not defined).
    def: u32,
    /// Position of the last use.
    last: u32,
    /// Number of uses.
    uses: u32,
    /// Block of the definition (`u32::MAX` until the walk reaches it).
    block: u32,
    /// Selects of its own block using it as their condition, plus one if
    /// the block's branch tests it: a comparison used by nothing else
    /// stays in the flags.
    consumers: u32,
    /// Position of the last of those consumers.
    consumed_at: u32,
    /// A value whose register this one would like to share (a branch
    /// argument and its block parameter; `u32::MAX`: none).
    hint: u32,
    /// The register an ABI position would like it in (argument of the
    /// function or of a call).
    fixed: Option<Register>,
}

impl Value {
    const UNSEEN: Value = Value {
        def: u32::MAX,
        last: 0,
        uses: 0,
        block: u32::MAX,
        consumers: 0,
        consumed_at: 0,
        hint: u32::MAX,
        fixed: None,
    };
}

/// The working buffers of one allocation, kept per thread so that a
/// compilation reuses the previous one's allocations instead of making
/// some twenty of its own (what the function returns is still its own).
#[derive(Default)]
struct Scratch {
    values: Vec<Value>,
    /// (value, block) for every use of a value outside its own block.
    crossing: Vec<(u32, u32)>,
    /// Each block's predecessors, from `pred_at[b]` to `pred_at[b + 1]`.
    preds: Vec<u32>,
    pred_at: Vec<u32>,
    /// The value whose liveness last reached each block.
    mark: Vec<u32>,
    /// Blocks still to walk back from.
    work: Vec<u32>,
    /// (comparison, lhs, rhs) of comparisons that could stay in the flags.
    compares: Vec<(u32, u32, u32)>,
    calls: Vec<u32>,
    need_rcx: Vec<u32>,
    need_rdx: Vec<u32>,
    block_start: Vec<u32>,
    block_end: Vec<u32>,
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

/// Counts a use of `r` at `at` in block `b`, noting it for liveness when
/// `r` was defined in another block (or further down the
/// layout, which in SSA form is another block too).
fn note_use(values: &mut [Value], crossing: &mut Vec<(u32, u32)>, r: Reg, at: u32, b: u32) {
    if let Some(v) = values.get_mut(index(r)) {
        v.uses += 1;
        v.last = v.last.max(at);
        if v.block != b {
            crossing.push((r.0, b));
        }
    }
}

/// Notes that the select or branch at `at` in block `b` tests `cond`.
fn note_consumer(values: &mut [Value], cond: Reg, at: u32, b: u32) {
    if let Some(v) = values.get_mut(index(cond))
        && v.block == b
    {
        v.consumers += 1;
        v.consumed_at = at;
    }
}

/// [`allocate`] with the working buffers of `scratch`, which it hands back.
fn allocate_in(func: &Function, types: &RegTypes, scratch: Scratch) -> (Allocation, Scratch) {
    let n = types.0.len().max(func.reg_count());
    let blocks = &func.blocks;
    let nb = blocks.len();
    let mut locs = vec![Loc::None; n];
    let mut fused = vec![false; n];
    let mut values = filled(scratch.values, n, Value::UNSEEN);
    let mut crossing = emptied(scratch.crossing);
    let mut compares = emptied(scratch.compares);
    let mut calls = emptied(scratch.calls);
    // Positions of instructions that need rcx (shifts) or rdx (division).
    let (mut need_rcx, mut need_rdx) = (emptied(scratch.need_rcx), emptied(scratch.need_rdx));
    let mut block_start = emptied(scratch.block_start);
    let mut block_end = emptied(scratch.block_end);

    // One walk: positions, definitions, uses, constants, hints, and the
    // uses that cross blocks (all liveness needs, since in SSA form a use
    // in the defining block always follows the definition).
    let mut ints = 0;
    for (v, ty) in values.iter_mut().zip(&func.sig.params) {
        v.def = 0;
        v.block = 0;
        if !ty.is_float() {
            v.fixed = INT_ARGS.get(ints).copied();
            ints += 1;
        }
    }
    let mut pos = 0u32;
    for (b, block) in blocks.iter().enumerate() {
        let b32 = b as u32;
        block_start.push(pos);
        for (r, _) in &block.params {
            if let Some(v) = values.get_mut(index(*r)) {
                v.def = pos;
                v.block = b32;
            }
        }
        pos += 1;
        for inst in &block.insts {
            inst.op
                .for_each_use(|r| note_use(&mut values, &mut crossing, *r, pos, b32));
            match &inst.op {
                Op::Select { cond, .. } => note_consumer(&mut values, *cond, pos, b32),
                Op::Binary {
                    op,
                    ty: Type::Int(_),
                    ..
                } => match op {
                    BinOp::Shl | BinOp::Shr => need_rcx.push(pos),
                    BinOp::Div | BinOp::Rem => need_rdx.push(pos),
                    _ => {}
                },
                Op::Call { sig, args, .. } | Op::CallIndirect { sig, args, .. } => {
                    calls.push(pos);
                    let mut slot = 0;
                    for (a, t) in args.iter().zip(&sig.params) {
                        if !t.is_float() {
                            if let Some(v) = values.get_mut(index(*a))
                                && v.fixed.is_none()
                            {
                                v.fixed = INT_ARGS.get(slot).copied();
                            }
                            slot += 1;
                        }
                    }
                }
                _ => {}
            }
            if let Some(r) = inst.result {
                if let Some(v) = values.get_mut(index(r)) {
                    v.def = pos;
                    v.block = b32;
                }
                match &inst.op {
                    Op::Const { ty, value } => {
                        if let Some(l) = const_bits(ty, *value)
                            && let Some(slot) = locs.get_mut(index(r))
                        {
                            *slot = l;
                        }
                    }
                    Op::Cmp { op, ty, lhs, rhs } if fusable(*op, ty) => {
                        compares.push((r.0, lhs.0, rhs.0));
                    }
                    _ => {}
                }
            }
            pos += 1;
        }
        block
            .term
            .for_each_use(|r| note_use(&mut values, &mut crossing, *r, pos, b32));
        let targets: [Option<&crate::ir::BlockCall>; 2] = match &block.term {
            Terminator::Br(t) => [Some(t), None],
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            } => {
                note_consumer(&mut values, *cond, pos, b32);
                [Some(then), Some(otherwise)]
            }
            _ => [None, None],
        };
        for t in targets.into_iter().flatten() {
            let Some(target) = blocks.get(t.block.0 as usize) else {
                continue;
            };
            for (a, (p, _)) in t.args.iter().zip(&target.params) {
                if let Some(v) = values.get_mut(index(*a))
                    && v.hint == u32::MAX
                {
                    v.hint = p.0;
                }
                if let Some(v) = values.get_mut(index(*p))
                    && v.hint == u32::MAX
                {
                    v.hint = a.0;
                }
            }
        }
        block_end.push(pos);
        pos += 1;
    }

    // A comparison consumed only by selects of its own block and the
    // branch ending it is not materialised: the lowering compares again at
    // each consumer whose flags were clobbered since, so the comparison's
    // operands stay live up to its last consumer (in the same block, so
    // which values cross blocks does not change).
    for &(r, lhs, rhs) in &compares {
        let Some(&v) = values.get(r as usize) else {
            continue;
        };
        if v.consumers > 0
            && v.uses == v.consumers
            && let Some(f) = fused.get_mut(r as usize)
        {
            *f = true;
            for operand in [lhs, rhs] {
                if let Some(o) = values.get_mut(operand as usize) {
                    o.last = o.last.max(v.consumed_at);
                }
            }
        }
    }

    // Liveness, for the values that cross blocks only (a value used only
    // in its own block is never live into or out of one, so its interval
    // is its definition to its last use): from each block using the value
    // outside its definition's block, walk predecessors back to that
    // block. Every block reached is live-in (the interval covers its
    // start) and every predecessor live-out (its end) — the same sets the
    // iterative dataflow solution gives, found in work proportional to
    // the blocks each value is live in rather than to the block count
    // times the number of iterations.
    let mut pred_at = filled(scratch.pred_at, nb + 1, 0u32);
    for block in blocks {
        for s in successors(&block.term).into_iter().flatten() {
            if let Some(c) = pred_at.get_mut(s + 1) {
                *c += 1;
            }
        }
    }
    for b in 0..nb {
        pred_at[b + 1] += pred_at[b];
    }
    let mut preds = filled(scratch.preds, pred_at[nb] as usize, 0u32);
    // `work` first serves as each block's next free predecessor entry.
    let mut work = filled(scratch.work, nb, 0u32);
    work.copy_from_slice(&pred_at[..nb]);
    for (b, block) in blocks.iter().enumerate() {
        for s in successors(&block.term).into_iter().flatten() {
            if let Some(at) = work.get_mut(s)
                && let Some(p) = preds.get_mut(*at as usize)
            {
                *p = b as u32;
                *at += 1;
            }
        }
    }
    work.clear();
    // Grouped by value, so a block marked for the value is not walked
    // again from another use of it.
    crossing.sort_unstable();
    let mut mark = filled(scratch.mark, nb, u32::MAX);
    for &(r, b) in &crossing {
        let Some(v) = values.get_mut(r as usize) else {
            continue;
        };
        let b = b as usize;
        if mark.get(b) == Some(&r) {
            continue;
        }
        work.push(b as u32);
        mark[b] = r;
        while let Some(x) = work.pop() {
            let x = x as usize;
            v.def = v.def.min(block_start[x]);
            v.last = v.last.max(block_start[x]);
            for &p in preds
                .get(pred_at[x] as usize..pred_at[x + 1] as usize)
                .unwrap_or(&[])
            {
                let p = p as usize;
                v.last = v.last.max(block_end[p]);
                if p as u32 != v.block && mark[p] != r {
                    mark[p] = r;
                    work.push(p as u32);
                }
            }
        }
    }
    let mut intervals = emptied(scratch.intervals);
    intervals.extend(
        values
            .iter()
            .zip(locs.iter().zip(&fused))
            .enumerate()
            .filter(|(_, (v, (l, f)))| v.uses > 0 && v.def != u32::MAX && **l == Loc::None && !**f)
            .map(|(r, (v, _))| {
                let (s, e) = (v.def, v.last.max(v.def));
                let k = calls.partition_point(|&c| c <= s);
                let crosses_call = calls.get(k).is_some_and(|&c| c < e);
                Interval {
                    start: s,
                    end: e,
                    reg: r as u32,
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
        let hinted = values
            .get(v)
            .and_then(|x| locs.get(x.hint as usize).copied())
            .and_then(|l| match l {
                Loc::Gpr(r) | Loc::Xmm(r) => Some(r),
                _ => None,
            })
            .or(values.get(v).and_then(|x| x.fixed));
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
        values,
        crossing,
        preds,
        pred_at,
        mark,
        work,
        compares,
        calls,
        need_rcx,
        need_rdx,
        block_start,
        block_end,
        intervals,
        active,
    };
    (allocation, scratch)
}
