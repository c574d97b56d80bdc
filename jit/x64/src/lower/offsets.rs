//! Which shared-memory accesses have an offset known to lie in
//! `0..=2^62`: for them `offset + size` cannot wrap, and the bounds check
//! is one comparison of the end with the length instead of a carry test
//! and a comparison (see `shared`).
//!
//! A forward analysis of upper bounds over the function's registers,
//! optimistic (every register starts at 0, the function's parameters
//! unknown) and iterated to a fixed point. What it knows:
//!
//! - integer constants, and values of an unsigned type of 32 bits or
//!   less cast to 64 (canonical registers hold them zero-extended);
//! - `add`, `mul`, `shl` by a constant, `shr` and `and` of 64-bit values
//!   with bounds, as long as the result stays at most 2^62;
//! - after a `mem_load` or `mem_store` at offset `o` of `size` bytes, the
//!   rest of the block knows `o + size ≤` the largest memory (the check
//!   passed, or the block trapped), and so does the value `o` was
//!   computed from by a non-wrapping `add`, `mul` or `shl` by a constant;
//! - a block parameter is the largest of its arguments. When that grows
//!   it widens to the next of a few steps (2^32, 2^40, 2^52, 2^62, then
//!   unknown), so a loop counter converges in a couple of passes: a
//!   counter that starts at 0 and grows by a constant after an access at
//!   it (or at a multiple of it) stays below the largest memory.
//!
//! The fixed point is an invariant of every execution: each bound holds
//! on entry to its block, by induction over the branches taken.

use jit_ir::ir::{BinOp, Function, IntType, Literal, Op, Reg, Terminator, Type};
use jit_shared::limits::{MAX_MEMORY_PAGES, PAGE_SIZE};

/// The largest bound tracked; a value that may be larger is unknown.
const LIMIT: u64 = 1 << 62;
/// What a passed bounds check proves: `offset + size` is at most this.
const MAX_END: u64 = MAX_MEMORY_PAGES * PAGE_SIZE;
/// The bounds a growing block parameter widens to.
const STEPS: [u64; 4] = [1 << 32, 1 << 40, 1 << 52, LIMIT];

/// An upper bound, `None` when there is none below [`LIMIT`] (which
/// includes every negative value).
type Bound = Option<u64>;

/// For each instruction of `f` in block order, whether it is a
/// `mem_load` or `mem_store` whose offset is known to be at most 2^62.
/// Empty when `f` accesses no memory.
pub(super) fn bounded_offsets(f: &Function) -> Vec<bool> {
    let accesses = |op: &Op| matches!(op, Op::MemLoad { .. } | Op::MemStore { .. });
    if !f
        .blocks
        .iter()
        .flat_map(|b| &b.insts)
        .any(|i| accesses(&i.op))
    {
        return Vec::new();
    }
    let mut a = Analysis::new(f);
    // Each block parameter changes at most once per step and once more
    // to unknown, and the other bounds follow them within a pass per
    // block; past that many passes something is wrong, and nothing is
    // claimed.
    let params: usize = f.blocks.iter().map(|b| b.params.len()).sum();
    let most = params * (STEPS.len() + 2) + f.blocks.len() + 2;
    for _ in 0..most {
        if !a.pass(f) {
            return a.bounded;
        }
    }
    vec![false; f.inst_count()]
}

struct Analysis<'f> {
    /// Each register's bound where it is defined.
    bound: Vec<Bound>,
    /// Each register's defining operation, if an instruction defines it.
    def: Vec<Option<&'f Op>>,
    /// Bounds the current block learned from its accesses so far.
    learned: Vec<(Reg, u64)>,
    bounded: Vec<bool>,
}

impl<'f> Analysis<'f> {
    fn new(f: &'f Function) -> Self {
        let n = f.reg_count();
        let mut bound = vec![Some(0); n];
        let mut def = vec![None; n];
        for b in bound.iter_mut().take(f.sig.params.len()) {
            *b = None;
        }
        for inst in f.blocks.iter().flat_map(|b| &b.insts) {
            if let Some(slot) = inst.result.and_then(|r| def.get_mut(r.0 as usize)) {
                *slot = Some(&inst.op);
            }
        }
        Analysis {
            bound,
            def,
            learned: Vec::new(),
            bounded: vec![false; f.inst_count()],
        }
    }

    /// `r`'s bound at this point of the current block.
    fn get(&self, r: Reg) -> Bound {
        let at_def = self.bound.get(r.0 as usize).copied().flatten();
        let learned = self
            .learned
            .iter()
            .filter(|(l, _)| *l == r)
            .map(|&(_, b)| b)
            .min();
        match (at_def, learned) {
            (Some(d), Some(l)) => Some(d.min(l)),
            (d, l) => d.or(l),
        }
    }

    /// The exact value of a constant register.
    fn constant(&self, r: Reg) -> Option<u64> {
        match self.def.get(r.0 as usize).copied().flatten()? {
            Op::Const {
                ty: Type::Int(t),
                value: Literal::Int(v),
            } => Some(t.canonical(*v as u64)),
            _ => None,
        }
    }

    /// One pass over the blocks in order; whether any bound changed.
    fn pass(&mut self, f: &Function) -> bool {
        let mut changed = false;
        let mut at = 0;
        for block in &f.blocks {
            self.learned.clear();
            for inst in &block.insts {
                if let Op::MemLoad { ty, offset, .. } | Op::MemStore { ty, offset, .. } = &inst.op {
                    let known = self.get(*offset).is_some();
                    if let Some(slot) = self.bounded.get_mut(at) {
                        *slot = known;
                    }
                    let size = ty.scalar_size().unwrap_or(1);
                    self.learn(*offset, MAX_END.saturating_sub(size));
                }
                if let Some(r) = inst.result {
                    let b = self.transfer(&inst.op);
                    if let Some(slot) = self.bound.get_mut(r.0 as usize)
                        && *slot != b
                    {
                        *slot = b;
                        changed = true;
                    }
                }
                at += 1;
            }
            let edges = match &block.term {
                Terminator::Br(t) => [Some(t), None],
                Terminator::CondBr {
                    then, otherwise, ..
                } => [Some(then), Some(otherwise)],
                Terminator::Ret(_) | Terminator::Trap(_) => [None, None],
            };
            for t in edges.into_iter().flatten() {
                let Some(target) = f.blocks.get(t.block.0 as usize) else {
                    continue;
                };
                for (arg, (param, _)) in t.args.iter().zip(&target.params) {
                    let incoming = self.get(*arg);
                    if let Some(slot) = self.bound.get_mut(param.0 as usize) {
                        let joined = widen(*slot, incoming);
                        if joined != *slot {
                            *slot = joined;
                            changed = true;
                        }
                    }
                }
            }
        }
        changed
    }

    /// Notes that `r` is at most `cap` from here to the end of the block,
    /// and what that says of the value it was computed from.
    fn learn(&mut self, r: Reg, cap: u64) {
        self.learned.push((r, cap));
        let Some(op) = self.def.get(r.0 as usize).copied().flatten() else {
            return;
        };
        let Op::Binary { op, ty, lhs, rhs } = op else {
            return;
        };
        if !is_64(ty) {
            return;
        }
        // Only when `r` was computed without wrapping: then its bound
        // bounds the operand too.
        let Some(x) = self.get(*lhs) else {
            return;
        };
        let Some(k) = self.constant(*rhs) else {
            return;
        };
        let operand = match op {
            BinOp::Add if x.checked_add(k).is_some_and(|s| s <= LIMIT) => cap.checked_sub(k),
            BinOp::Mul if k > 0 && x.checked_mul(k).is_some_and(|p| p <= LIMIT) => Some(cap / k),
            BinOp::Shl if k < 64 && x <= LIMIT >> k => Some(cap >> k),
            _ => None,
        };
        if let Some(b) = operand {
            self.learned.push((*lhs, b));
        }
    }

    /// The bound of what `op` defines, from its operands' bounds here.
    fn transfer(&self, op: &Op) -> Bound {
        let small = |v: u64| (v <= LIMIT).then_some(v);
        match op {
            Op::Const {
                ty: Type::Int(t),
                value: Literal::Int(v),
            } => small(t.canonical(*v as u64)),
            Op::Cast {
                from: Type::Int(from @ (IntType::U8 | IntType::U16 | IntType::U32)),
                to,
                ..
            } if is_64(to) => small(from.max_value() as u64),
            Op::Binary { op, ty, lhs, rhs } if is_64(ty) => {
                let (a, b) = (self.get(*lhs), self.get(*rhs));
                match op {
                    BinOp::Add => small(a?.checked_add(b?)?),
                    BinOp::Mul => small(a?.checked_mul(b?)?),
                    BinOp::Shl => {
                        let k = self.constant(*rhs)? & 63;
                        let a = a?;
                        (a <= LIMIT >> k).then_some(a << k)
                    }
                    BinOp::Shr => {
                        let k = self.constant(*rhs)? & 63;
                        match (a, ty) {
                            (Some(a), _) => Some(a >> k),
                            // A logical shift of any value by 2 or more.
                            (None, Type::Int(IntType::U64)) if k >= 2 => small(u64::MAX >> k),
                            _ => None,
                        }
                    }
                    BinOp::And => match (a, b) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (Some(c), None) | (None, Some(c)) => Some(c),
                        (None, None) => None,
                    },
                    _ => None,
                }
            }
            Op::Select {
                if_true, if_false, ..
            } => Some(self.get(*if_true)?.max(self.get(*if_false)?)),
            _ => None,
        }
    }
}

fn is_64(ty: &Type) -> bool {
    matches!(ty, Type::Int(IntType::I64 | IntType::U64))
}

/// A block parameter's bound joined with an incoming one: unchanged when
/// it already covers it, else the next step above both.
fn widen(old: Bound, incoming: Bound) -> Bound {
    let (old, incoming) = (old?, incoming?);
    if incoming <= old {
        return Some(old);
    }
    STEPS.iter().copied().find(|&s| s >= incoming)
}

#[cfg(test)]
mod tests {
    use super::bounded_offsets;

    fn analyse(text: &str) -> Vec<bool> {
        let lib = jit_ir::text::parse_library(text).expect("parses");
        jit_ir::verify::verify_library(&lib).expect("verifies");
        let f = lib.functions().next().expect("a function");
        bounded_offsets(f)
    }

    const PREFIX: &str = "memory heap 1\n";

    #[test]
    fn a_counter_stepped_after_an_access_at_it_is_bounded() {
        let marks = analyse(&format!(
            "{PREFIX}fn f(%n: i64) -> i64 {{\nentry:\n    %zero = const i64 0\n    %eight = const i64 8\n    \
             br loop(%zero, %zero)\nloop(%o: i64, %acc: i64):\n    %more = cmp lt i64 %o, %n\n    \
             cond_br %more, body, done\nbody:\n    %x = mem_load i64 heap, %o\n    \
             %s = add i64 %acc, %x\n    %next = add i64 %o, %eight\n    br loop(%next, %s)\n\
             done:\n    ret %acc\n}}\n"
        ));
        assert_eq!(marks, [false, false, false, true, false, false]);
    }

    #[test]
    fn an_index_shifted_into_an_offset_is_bounded() {
        let marks = analyse(&format!(
            "{PREFIX}fn f(%n: i64) -> i64 {{\nentry:\n    %zero = const i64 0\n    %one = const i64 1\n    \
             %three = const i64 3\n    br loop(%zero, %zero)\nloop(%i: i64, %acc: i64):\n    \
             %more = cmp lt i64 %i, %n\n    cond_br %more, body, done\nbody:\n    \
             %o = shl i64 %i, %three\n    %x = mem_load i64 heap, %o\n    %s = add i64 %acc, %x\n    \
             %next = add i64 %i, %one\n    br loop(%next, %s)\ndone:\n    ret %acc\n}}\n"
        ));
        assert_eq!(marks.iter().filter(|&&m| m).count(), 1, "{marks:?}");
        assert!(marks[5], "{marks:?}");
    }

    #[test]
    fn parameters_and_counters_that_never_meet_a_check_are_not() {
        // A parameter: anything, negative included.
        let marks = analyse(&format!(
            "{PREFIX}fn f(%o: i64) -> i64 {{\nentry:\n    %x = mem_load i64 heap, %o\n    \
             %y = mem_load i64 heap, %o\n    %s = add i64 %x, %y\n    ret %s\n}}\n"
        ));
        // The second access follows a passed check of the same offset.
        assert_eq!(marks, [false, true, false]);
        // A counter stepped without an access at it grows without bound,
        // and a subtraction may go negative.
        let marks = analyse(&format!(
            "{PREFIX}fn f(%n: i64, %p: i64) -> i64 {{\nentry:\n    %zero = const i64 0\n    \
             %one = const i64 1\n    br loop(%zero)\nloop(%i: i64):\n    %more = cmp lt i64 %i, %n\n    \
             cond_br %more, body, done\nbody:\n    %next = add i64 %i, %one\n    br loop(%next)\n\
             done:\n    %x = mem_load i64 heap, %i\n    %d = sub i64 %zero, %one\n    \
             %y = mem_load i64 heap, %d\n    %s = add i64 %x, %y\n    ret %s\n}}\n"
        ));
        assert!(!marks.iter().any(|&m| m), "{marks:?}");
    }

    #[test]
    fn functions_without_accesses_cost_nothing() {
        assert!(analyse("fn f(%a: i64) -> i64 {\nentry:\n    ret %a\n}\n").is_empty());
    }
}
