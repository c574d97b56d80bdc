//! Integer reductions split over several accumulators.
//!
//! A counted loop whose body is one block and whose other carried values
//! are integer reductions (`acc = acc op f(i)` with `op` one of add, mul,
//! and, or, xor, and `acc` read nowhere else in the body) is limited by
//! the latency of the chain through `acc`: one operation per element
//! however wide the machine. Integer arithmetic wraps, so these operations
//! are associative and commutative, and the reduction may be grouped
//! differently without changing its result. The loop gets a second body
//! that runs [`LANES`] iterations per trip, each into an accumulator of
//! its own, and combines them when fewer than [`LANES`] iterations remain;
//! the original body finishes the rest. With the counter stepping by `s`:
//!
//! ```text
//! head(i, acc):   i < n ? check : exit(...)          (unchanged)
//! check:          n - i > 3s ? wide(i, acc, id, id, id) : body
//! body:           the original body, back to head
//! wide(j, a0, a1, a2, a3):
//!                 the body for j, j+s, j+2s, j+3s, each into its own lane;
//!                 n - (j+4s) > 3s ? wide(...) : join
//! join:           acc = a0 op a1 op a2 op a3, back to head(j + 4s, acc)
//! ```
//!
//! The copies run the body's instructions for the same indices in the same
//! order as the loop did, so loads, stores, calls and traps happen exactly
//! as before; only the grouping of the reductions changes. A load or store
//! at `base[i]` (`base` from outside the loop) reads `base + k * s * size`
//! at `j` in copy `k`, a pointer made before the loop, so copies that read
//! `i` only that way need no counter of their own. Floats are left alone
//! (their operations do not reassociate), as is every loop of any other
//! shape. The header keeps its place and parameters, so an
//! on-stack-replacement entry at it still finds them.

use jit_ir::ir::{
    BinOp, Block, BlockCall, BlockId, CmpOp, Function, Inst, IntType, Literal, Op, Reg, Terminator,
    Type,
};
use jit_ir::verify::RegTypes;

/// Iterations per trip of the wide body, and accumulators per reduction.
pub(super) const LANES: usize = 4;

/// A reduction carried by the loop: the header parameter at `param`, the
/// body instruction at `inst` combining it with the element, and its
/// operation and type.
struct Reduction {
    param: usize,
    inst: usize,
    op: BinOp,
    ty: Type,
}

/// The loop found: header and body blocks, the counter's bound, the body
/// instruction stepping the counter and its step, and the reductions.
struct Counted {
    head: usize,
    body: usize,
    bound: Reg,
    step: usize,
    stride: i64,
    reductions: Vec<Reduction>,
}

/// `func` with its reduction loops split over [`LANES`] accumulators and
/// the types of the registers added, or `None` when it has no such loop
/// (then nothing was allocated).
pub(super) fn split_reductions(func: &Function, types: &RegTypes) -> Option<(Function, RegTypes)> {
    let mut found = Vec::new();
    for head in 0..func.blocks.len() {
        if let Some(l) = counted_loop(func, head) {
            found.push(l);
        }
    }
    if found.is_empty() {
        return None;
    }
    let mut out = Rewrite {
        func: func.clone(),
        types: RegTypes(types.0.clone()),
        next: types.0.len().max(func.reg_count()) as u32,
    };
    out.types.0.resize(out.next as usize, Type::I64);
    for l in &found {
        out.split(l);
    }
    Some((out.func, out.types))
}

/// The largest step a counted loop may take: its lanes' offsets
/// (`LANES` steps) stay far from overflowing.
const MAX_STRIDE: i128 = 1 << 24;

/// The value of `r` when a `const i64` of `func` defines it as a step
/// between 1 and [`MAX_STRIDE`].
fn stride_of(func: &Function, r: Reg) -> Option<i64> {
    func.blocks
        .iter()
        .flat_map(|b| &b.insts)
        .find_map(|i| match &i.op {
            Op::Const {
                ty: Type::I64,
                value: Literal::Int(v),
            } if i.result == Some(r) && (1..=MAX_STRIDE).contains(v) => Some(*v as i64),
            _ => None,
        })
}

/// The counted loop headed by block `head`, when it has the shape the
/// module describes.
fn counted_loop(func: &Function, head: usize) -> Option<Counted> {
    let h = &func.blocks[head];
    // The cheap tests first: most blocks fail one of these.
    if h.params.len() < 2 || h.insts.len() != 1 || !matches!(h.term, Terminator::CondBr { .. }) {
        return None;
    }
    let (&(i, ref ity), rest) = h.params.split_first()?;
    if !matches!(ity, Type::Int(IntType::I64)) {
        return None;
    }
    let Op::Cmp {
        op: CmpOp::Lt,
        ty: Type::I64,
        lhs,
        rhs: bound,
    } = &h.insts[0].op
    else {
        return None;
    };
    let cond = h.insts[0].result?;
    let Terminator::CondBr {
        cond: c,
        then,
        otherwise,
    } = &h.term
    else {
        return None;
    };
    let body = then.block.0 as usize;
    if *lhs != i || *c != cond || !then.args.is_empty() || otherwise.block.0 as usize == body {
        return None;
    }
    let b = func.blocks.get(body)?;
    if body == head || !b.params.is_empty() {
        return None;
    }
    let Terminator::Br(back) = &b.term else {
        return None;
    };
    if back.block.0 as usize != head || back.args.len() != h.params.len() {
        return None;
    }
    // The bound is defined outside the loop.
    let defined_in = |blk: &Block, r: Reg| {
        blk.params.iter().any(|p| p.0 == r) || blk.insts.iter().any(|x| x.result == Some(r))
    };
    if defined_in(h, *bound) || defined_in(b, *bound) {
        return None;
    }
    // The counter steps by a positive constant in the body.
    let step = b
        .insts
        .iter()
        .position(|x| x.result == Some(back.args[0]))?;
    let stride = match &b.insts[step].op {
        Op::Binary {
            op: BinOp::Add,
            ty: Type::I64,
            lhs,
            rhs,
        } if *lhs == i => stride_of(func, *rhs)?,
        _ => return None,
    };
    let mut reductions = Vec::with_capacity(rest.len());
    for (k, &(acc, ref ty)) in rest.iter().enumerate() {
        if !matches!(ty, Type::Int(_)) || cond == acc {
            return None;
        }
        let inst = b
            .insts
            .iter()
            .position(|x| x.result == Some(back.args[k + 1]))?;
        let Op::Binary {
            op,
            ty: oty,
            lhs,
            rhs,
        } = &b.insts[inst].op
        else {
            return None;
        };
        let associative = matches!(
            op,
            BinOp::Add | BinOp::Mul | BinOp::And | BinOp::Or | BinOp::Xor
        );
        if !associative || oty != ty || (*lhs == acc) == (*rhs == acc) {
            return None;
        }
        // Its result only goes back to the header: a lane's partial value
        // must not be read as the whole.
        let result = back.args[k + 1];
        let mut result_reads = 0;
        for x in &b.insts {
            x.op.for_each_use(|r| result_reads += usize::from(*r == result));
        }
        b.term
            .for_each_use(|r| result_reads += usize::from(*r == result));
        if result_reads != 1 {
            return None;
        }
        // The accumulator is read by its own operation only, in the body
        // and the header.
        let mut reads = 0;
        for x in &b.insts {
            x.op.for_each_use(|r| reads += usize::from(*r == acc));
        }
        b.term.for_each_use(|r| reads += usize::from(*r == acc));
        h.insts[0]
            .op
            .for_each_use(|r| reads += usize::from(*r == acc));
        if reads != 1 {
            return None;
        }
        reductions.push(Reduction {
            param: k + 1,
            inst,
            op: *op,
            ty: ty.clone(),
        });
    }
    Some(Counted {
        head,
        body,
        bound: *bound,
        step,
        stride,
        reductions,
    })
}

/// The function being rewritten, with the types of its registers and the
/// next free register.
struct Rewrite {
    func: Function,
    types: RegTypes,
    next: u32,
}

impl Rewrite {
    /// A fresh register of type `ty`.
    fn reg(&mut self, ty: Type) -> Reg {
        let r = Reg(self.next);
        self.next += 1;
        self.types.0.push(ty);
        r
    }

    /// A fresh register holding `value` of type `ty`, defined in `insts`.
    fn constant(&mut self, insts: &mut Vec<Inst>, ty: Type, value: i128) -> Reg {
        let r = self.reg(ty.clone());
        insts.push(Inst {
            result: Some(r),
            op: Op::Const {
                ty,
                value: Literal::Int(value),
            },
        });
        r
    }

    /// Appends `insts` computing whether `bound - at` exceeds `last`
    /// (`LANES - 1` steps: a whole wide trip remains), and returns that
    /// `bool`. As a signed difference, `bound - at` is the distance left,
    /// or negative when the counter has passed the bound or the distance
    /// does not fit; then the narrow loop runs, as it may.
    fn room(&mut self, insts: &mut Vec<Inst>, at: Reg, bound: Reg, last: Reg) -> Reg {
        let left = self.reg(Type::I64);
        insts.push(Inst {
            result: Some(left),
            op: Op::Binary {
                op: BinOp::Sub,
                ty: Type::I64,
                lhs: bound,
                rhs: at,
            },
        });
        let more = self.reg(Type::Bool);
        insts.push(Inst {
            result: Some(more),
            op: Op::Cmp {
                op: CmpOp::Gt,
                ty: Type::I64,
                lhs: left,
                rhs: last,
            },
        });
        more
    }

    /// Adds the check, wide body and join blocks for loop `l`.
    fn split(&mut self, l: &Counted) {
        let base = self.func.blocks.len() as u32;
        let (check, wide, join) = (BlockId(base), BlockId(base + 1), BlockId(base + 2));
        let head = self.func.blocks[l.head].clone();
        let body = self.func.blocks[l.body].clone();
        let counter = head.params[0].0;

        // check: enough iterations left for a wide trip?
        let mut check_insts = Vec::new();
        let stride = i128::from(l.stride);
        let last = self.constant(&mut check_insts, Type::I64, (LANES as i128 - 1) * stride);
        let offsets: Vec<Reg> = (1..=LANES)
            .map(|lane| self.constant(&mut check_insts, Type::I64, lane as i128 * stride))
            .collect();
        let room = self.room(&mut check_insts, counter, l.bound, last);
        let mut start = vec![counter];
        for red in &l.reductions {
            let identity = identity(red.op, &red.ty);
            let id = self.constant(&mut check_insts, red.ty.clone(), identity);
            start.push(head.params[red.param].0);
            start.extend(std::iter::repeat_n(id, LANES - 1));
        }
        // wide(j, lanes...): the body once per lane.
        let j = self.reg(Type::I64);
        let mut params = vec![(j, Type::I64)];
        let mut lanes: Vec<Vec<Reg>> = Vec::with_capacity(l.reductions.len());
        for red in &l.reductions {
            let ls: Vec<Reg> = (0..LANES).map(|_| self.reg(red.ty.clone())).collect();
            params.extend(ls.iter().map(|&r| (r, red.ty.clone())));
            lanes.push(ls);
        }
        let mut insts = Vec::with_capacity(body.insts.len() * LANES + 4);
        let mut out: Vec<Vec<Reg>> = vec![Vec::with_capacity(LANES); l.reductions.len()];
        // Each lane's counter is j plus a constant, not the previous lane's
        // plus one: no chain of additions through the lanes. The body's
        // own step is left out where only the back edge reads it.
        let step_result = body.insts[l.step].result;
        let step_read = step_result.is_some_and(|s| {
            let mut reads = 0;
            for x in &body.insts {
                x.op.for_each_use(|r| reads += usize::from(*r == s));
            }
            reads > 0
        });
        let counter_of = |rw: &mut Self, insts: &mut Vec<Inst>, lane: usize| {
            if lane == 0 {
                return j;
            }
            let r = rw.reg(Type::I64);
            insts.push(Inst {
                result: Some(r),
                op: Op::Binary {
                    op: BinOp::Add,
                    ty: Type::I64,
                    lhs: j,
                    rhs: offsets[lane - 1],
                },
            });
            r
        };
        // A load or store at `base[i]` with `base` from outside the loop
        // reads `base + lane * size` at `j` instead: that pointer is made
        // once, before the loop, and the lane needs no counter of its own
        // unless the body reads `i` otherwise.
        let outside = |r: Reg| {
            let defined_in = |blk: &Block| {
                blk.params.iter().any(|p| p.0 == r) || blk.insts.iter().any(|x| x.result == Some(r))
            };
            !defined_in(&head) && !defined_in(&body)
        };
        let indexed = |op: &Op| match op {
            Op::Load {
                ty,
                addr,
                index: Some(ix),
            }
            | Op::Store {
                ty,
                addr,
                index: Some(ix),
                ..
            } if *ix == counter && outside(*addr) => ty.scalar_size().map(|size| (*addr, size)),
            _ => None,
        };
        let counter_needed = body.insts.iter().enumerate().any(|(n, x)| {
            if n == l.step && !step_read {
                return false;
            }
            let mut reads = 0;
            x.op.for_each_use(|r| reads += usize::from(*r == counter));
            let as_index = usize::from(indexed(&x.op).is_some());
            reads > as_index
        });
        let mut moved: Vec<(Reg, u64, usize, Reg)> = Vec::new();
        for lane in 0..LANES {
            let at = if counter_needed {
                counter_of(self, &mut insts, lane)
            } else {
                j
            };
            let mut map: Vec<(Reg, Reg)> = vec![(counter, at)];
            map.extend(
                l.reductions
                    .iter()
                    .zip(&lanes)
                    .map(|(red, ls)| (head.params[red.param].0, ls[lane])),
            );
            for (n, inst) in body.insts.iter().enumerate() {
                if n == l.step && !step_read {
                    continue;
                }
                let result = inst.result.map(|r| {
                    let ty = self.types.0.get(r.0 as usize).cloned().unwrap_or(Type::I64);
                    let fresh = self.reg(ty);
                    map.push((r, fresh));
                    fresh
                });
                let mut op = inst.op.clone();
                if lane > 0
                    && let Some((addr, size)) = indexed(&op)
                {
                    let moved_base = match moved
                        .iter()
                        .find(|m| m.0 == addr && m.1 == size && m.2 == lane)
                    {
                        Some(m) => m.3,
                        None => {
                            let ty = self.types.0.get(addr.0 as usize).cloned();
                            let p = self.reg(ty.clone().unwrap_or(Type::I64));
                            check_insts.push(Inst {
                                result: Some(p),
                                op: Op::Addr {
                                    ty: ty.unwrap_or(Type::I64),
                                    base: addr,
                                    index: None,
                                    scale: 0,
                                    disp: lane as i64 * l.stride * size as i64,
                                },
                            });
                            moved.push((addr, size, lane, p));
                            p
                        }
                    };
                    match &mut op {
                        Op::Load { addr, index, .. } | Op::Store { addr, index, .. } => {
                            *addr = moved_base;
                            *index = Some(j);
                        }
                        _ => {}
                    }
                }
                let op = op
                    .map_regs(|r| {
                        Ok::<Reg, ()>(map.iter().rev().find(|m| m.0 == r).map_or(r, |m| m.1))
                    })
                    .unwrap_or_else(|()| unreachable!("renaming cannot fail"));
                insts.push(Inst { result, op });
                if let Some(k) = l.reductions.iter().position(|red| red.inst == n)
                    && let Some(r) = result
                {
                    out[k].push(r);
                }
            }
        }
        let at = counter_of(self, &mut insts, LANES);
        let again = self.room(&mut insts, at, l.bound, last);
        let mut back = vec![at];
        for o in &out {
            back.extend(o.iter().copied());
        }
        let check_block = Block {
            params: Vec::new(),
            insts: check_insts,
            term: Terminator::CondBr {
                cond: room,
                then: BlockCall {
                    block: wide,
                    args: start,
                },
                otherwise: BlockCall {
                    block: BlockId(l.body as u32),
                    args: Vec::new(),
                },
            },
        };

        let wide_block = Block {
            params,
            insts,
            term: Terminator::CondBr {
                cond: again,
                then: BlockCall {
                    block: wide,
                    args: back,
                },
                otherwise: BlockCall {
                    block: join,
                    args: Vec::new(),
                },
            },
        };

        // join: fold the lanes, back to the header.
        let mut join_insts = Vec::new();
        let mut args = vec![at];
        for (k, red) in l.reductions.iter().enumerate() {
            let mut acc = out[k][0];
            for &lane in &out[k][1..] {
                let r = self.reg(red.ty.clone());
                join_insts.push(Inst {
                    result: Some(r),
                    op: Op::Binary {
                        op: red.op,
                        ty: red.ty.clone(),
                        lhs: acc,
                        rhs: lane,
                    },
                });
                acc = r;
            }
            args.push(acc);
        }
        let join_block = Block {
            params: Vec::new(),
            insts: join_insts,
            term: Terminator::Br(BlockCall {
                block: BlockId(l.head as u32),
                args,
            }),
        };

        if let Terminator::CondBr { then, .. } = &mut self.func.blocks[l.head].term {
            then.block = check;
        }
        self.func
            .blocks
            .extend([check_block, wide_block, join_block]);
    }
}

/// The value of type `ty` that `op` leaves the other operand unchanged
/// with (all ones for `and`: -1, or the largest unsigned value).
fn identity(op: BinOp, ty: &Type) -> i128 {
    match (op, ty) {
        (BinOp::Mul, _) => 1,
        (BinOp::And, Type::Int(t)) if !t.signed() => (1i128 << t.bits()) - 1,
        (BinOp::And, _) => -1,
        _ => 0,
    }
}
