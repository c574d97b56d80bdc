//! The pre-decoded form of a function the main loop runs: one flat array
//! of instructions and terminators per function, built once and cached.
//!
//! Decoding moves out of the hot loop everything that does not depend on
//! register values: the operand registers are checked against the register
//! count once, types become specialised opcodes (a 64-bit add, a signed
//! comparison, a load of a given width), constants are evaluated and branch
//! targets become instruction indices with their argument moves listed.
//!
//! Anything that could fail when it runs — an undefined register, a type
//! that is not concrete, a branch to a missing block, any call — decodes to
//! [`Inst::General`] or [`Inst::GeneralTerm`], which run the original
//! instruction exactly as the interpreter always did. So errors keep their
//! kinds, their order and their locations; the fast forms only exist where
//! they cannot fail in any way the general path would report differently.
//!
//! Block `b` occupies `block_starts[b]..` with one slot per instruction and
//! one for the terminator, so a program counter maps back to the original
//! block and instruction (for error locations) without a side table.

use std::cell::RefCell;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::rc::{self, Rc};
use std::sync::Arc;

use jit_ir::hash::BuildIntHasher;
use jit_ir::ir::{BinOp, BlockCall, Callee, CmpOp, Function, IntType, Op, Reg, Terminator, Type};

use crate::semantics::const_value;

/// A register index, checked against the function's register count.
pub(crate) type R = u8;

/// Registers the main loop sees of a frame whose function has fewer: every
/// index an [`R`] can hold, so indexing a window needs no bounds check.
/// Functions with more registers run entirely through the general path.
pub(crate) const WINDOW: usize = 1 << R::BITS;

/// How a loaded value becomes canonical (see the crate documentation).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Canon {
    /// Already canonical: 64-bit values and pointers.
    Raw,
    /// `f32`: the low 32 bits.
    Low32,
    /// Sign- or zero-extended from an integer type.
    Int(IntType),
    /// `bool`: the low bit.
    Bool,
}

impl Canon {
    fn of(ty: &Type) -> Canon {
        match ty {
            Type::Int(IntType::I64 | IntType::U64) => Canon::Raw,
            Type::Int(t) => Canon::Int(*t),
            Type::Bool => Canon::Bool,
            Type::F32 => Canon::Low32,
            _ => Canon::Raw,
        }
    }

    #[inline(always)]
    pub(crate) fn apply(self, raw: u64) -> u64 {
        match self {
            Canon::Raw => raw,
            Canon::Low32 => raw & 0xffff_ffff,
            Canon::Int(t) => t.canonical(raw),
            Canon::Bool => raw & 1,
        }
    }
}

/// One decoded instruction or terminator. Register operands index the
/// frame's registers and were checked when decoding.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Inst {
    /// The original instruction `inst` of `block`, run by the general path
    /// (calls, rare operations, and anything that may fail).
    General {
        block: u32,
        inst: u32,
    },
    /// The call of a symbol at instruction `inst` of `block`, run by the
    /// general path unless `sites[site]` remembers its callee.
    Call {
        block: u32,
        inst: u32,
        site: u32,
    },
    /// `d = consts[k]`.
    Const {
        d: R,
        k: u32,
    },
    /// 64-bit wrapping operations (also `bool` and/or/xor, whose operands
    /// are 0 or 1).
    Add64 {
        d: R,
        a: R,
        b: R,
    },
    Sub64 {
        d: R,
        a: R,
        b: R,
    },
    Mul64 {
        d: R,
        a: R,
        b: R,
    },
    And {
        d: R,
        a: R,
        b: R,
    },
    Or {
        d: R,
        a: R,
        b: R,
    },
    Xor {
        d: R,
        a: R,
        b: R,
    },
    /// Any other integer operation, through `semantics::int_binary`
    /// (division traps on zero).
    Int {
        op: BinOp,
        t: IntType,
        d: R,
        a: R,
        b: R,
    },
    F64 {
        op: BinOp,
        d: R,
        a: R,
        b: R,
    },
    /// The two `f64` operations of a dot product's loop, without the
    /// operation's dispatch.
    F64Add {
        d: R,
        a: R,
        b: R,
    },
    F64Mul {
        d: R,
        a: R,
        b: R,
    },
    F32 {
        op: BinOp,
        d: R,
        a: R,
        b: R,
    },
    /// Comparisons by operand kind.
    CmpSigned {
        op: CmpOp,
        d: R,
        a: R,
        b: R,
    },
    CmpUnsigned {
        op: CmpOp,
        d: R,
        a: R,
        b: R,
    },
    CmpF64 {
        op: CmpOp,
        d: R,
        a: R,
        b: R,
    },
    CmpF32 {
        op: CmpOp,
        d: R,
        a: R,
        b: R,
    },
    /// An integer comparison whose result is the condition of the block's
    /// two-way branch, which comes next: compares, and takes the branch in
    /// the same step when the fuel allows (the branch keeps its own slot
    /// after this one for when it does not).
    CmpBr {
        /// Whether the integers compare as signed.
        signed: bool,
        op: CmpOp,
        d: R,
        a: R,
        b: R,
        then: Jump,
        otherwise: Jump,
    },
    /// A [`Inst::CmpBr`] of the commonest loop test, signed less-than,
    /// without the comparison's dispatch.
    LtBr {
        d: R,
        a: R,
        b: R,
        then: Jump,
        otherwise: Jump,
    },
    /// `d = canonical(a)` (a bitcast).
    Canonical {
        d: R,
        a: R,
        canon: Canon,
    },
    Select {
        d: R,
        c: R,
        t: R,
        f: R,
    },
    /// `d = canon(load(size bytes at a + i * size))`; `i` is `NO_INDEX`
    /// for none.
    Load {
        d: R,
        a: R,
        i: R,
        size: u8,
        canon: Canon,
    },
    /// `d = load(8 bytes at a + i * 8)`, a 64-bit element of an array.
    Load64 {
        d: R,
        a: R,
        i: R,
    },
    /// A [`Inst::Load64`] whose value the next instruction, a 64-bit add,
    /// adds to register `o` into `s`: runs both when the fuel allows (the
    /// add keeps its own slot after this one for when it does not).
    LoadAdd64 {
        d: R,
        a: R,
        i: R,
        s: R,
        o: R,
    },
    /// Stores the low `size` bytes of `v` at `a + i * size`.
    Store {
        a: R,
        i: R,
        v: R,
        size: u8,
    },
    /// `d = a + i * scale + disp` with `addrs[k] = (scale, disp)`.
    Addr {
        d: R,
        a: R,
        i: R,
        k: u32,
    },
    /// The terminator of `block`, run by the general path.
    GeneralTerm {
        block: u32,
    },
    Br {
        to: Jump,
    },
    /// A 64-bit add that is the last instruction of its block, and the
    /// block's branch to `to`, which comes next: adds, and takes the
    /// branch in the same step when the fuel allows (the branch keeps its
    /// own slot after this one for when it does not).
    AddBr {
        d: R,
        a: R,
        b: R,
        to: Jump,
    },
    CondBr {
        c: R,
        then: Jump,
        otherwise: Jump,
    },
    /// Returns register `r`, or nothing when `r` is `NO_INDEX`.
    Ret {
        r: R,
    },
}

/// The absent optional register of [`Inst::Load`], [`Inst::Store`],
/// [`Inst::Addr`] and [`Inst::Ret`].
pub(crate) const NO_INDEX: R = R::MAX;

/// Where a decoded branch leads, in one word so that a two-way branch
/// stays as small as the other instructions: see [`Way`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Jump(u32);

/// The kinds of [`Jump`]. A branch that moves nothing goes straight to its
/// target; one that moves arguments takes one of the function's edges.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Way {
    /// To the block laid out right after the branching one, whose first
    /// instruction follows the branch's slot. Its address is worked out
    /// from the branch's own, not loaded: the next instruction's operands
    /// then do not wait for a load of the target (the processor predicts
    /// which way the branch goes, not what a load returns).
    Next,
    /// To this instruction.
    To(usize),
    /// Back to this instruction, a loop header's first: a back-edge that
    /// tiering counts.
    Back(usize),
    /// Along this edge.
    Edge(usize),
}

impl Jump {
    /// The bit that marks an edge index.
    const EDGE: u32 = 1 << 31;
    /// The bit that marks a back-edge without moves.
    const BACK: u32 = 1 << 30;
    /// The jump to the next block; instruction indices stay below it.
    const NEXT: u32 = Self::BACK - 1;

    /// Which way the branch goes.
    #[inline(always)]
    pub(crate) fn way(self) -> Way {
        let low = (self.0 & (Self::BACK - 1)) as usize;
        if self.0 & Self::EDGE != 0 {
            Way::Edge((self.0 & !Self::EDGE) as usize)
        } else if self.0 & Self::BACK != 0 {
            Way::Back(low)
        } else if self.0 == Self::NEXT {
            Way::Next
        } else {
            Way::To(low)
        }
    }
}

/// A checked branch: where it lands and the parameter moves it makes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edge {
    /// The target block.
    pub(crate) block: u32,
    /// The target block's first instruction.
    pub(crate) pc: u32,
    /// `moves[from..to]`: (argument, parameter) pairs.
    pub(crate) from: u32,
    pub(crate) to: u32,
    /// Some parameter written is an argument read by a later move: the
    /// arguments must all be read before any parameter is written.
    pub(crate) parallel: bool,
    /// The target is at or before the branching block: a loop back-edge,
    /// which tiering counts.
    pub(crate) back: bool,
}

impl Edge {
    /// A branch to `block`, whose first instruction is at `pc`, that moves
    /// nothing.
    pub(crate) fn plain(block: u32, pc: usize, back: bool) -> Edge {
        Edge {
            block,
            pc: u32::try_from(pc).unwrap_or(u32::MAX),
            from: 0,
            to: 0,
            parallel: false,
            back,
        }
    }
}

/// A function decoded for the main loop.
#[derive(Debug)]
pub(crate) struct Code {
    /// The function decoded, held by its code: a frame reaches it through
    /// the code, without touching the function's reference count (an
    /// atomic operation, dearer than the rest of a call).
    pub(crate) func: Arc<Function>,
    pub(crate) insts: Vec<Inst>,
    pub(crate) block_starts: Vec<u32>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) moves: Vec<(R, R)>,
    pub(crate) consts: Vec<u64>,
    pub(crate) addrs: Vec<(u64, i64)>,
    pub(crate) sites: Vec<CallSite>,
    /// The function's register count.
    pub(crate) regs: usize,
    /// While a block is decoded: the arguments of its jump that its
    /// instructions write to the target's parameters directly (see
    /// [`coalescing`]), whose moves the jump leaves out.
    written_ahead: Vec<Reg>,
}

impl Code {
    /// The block whose first instruction is at `pc`.
    pub(crate) fn block_at(&self, pc: usize) -> Option<u32> {
        let pc = u32::try_from(pc).ok()?;
        let b = self.block_starts.binary_search(&pc).ok()?;
        u32::try_from(b).ok()
    }

    /// The original block and instruction (`None`: the terminator) of the
    /// decoded instruction at `pc`.
    pub(crate) fn origin(&self, func: &Function, pc: usize) -> (usize, Option<usize>) {
        let pc = u32::try_from(pc).unwrap_or(u32::MAX);
        let block = self
            .block_starts
            .partition_point(|&s| s <= pc)
            .saturating_sub(1);
        let k = usize::try_from(pc - self.block_starts.get(block).copied().unwrap_or(0))
            .unwrap_or(usize::MAX);
        let insts = func.blocks.get(block).map_or(0, |b| b.insts.len());
        (block, (k < insts).then_some(k))
    }

    /// Decodes `func`.
    pub(crate) fn new(shared: &Arc<Function>) -> Code {
        let func: &Function = shared;
        let regs = func.reg_count();
        let mut block_starts = Vec::with_capacity(func.blocks.len());
        let mut next = 0usize;
        for b in &func.blocks {
            block_starts.push(u32::try_from(next).unwrap_or(u32::MAX));
            next = next.saturating_add(b.insts.len() + 1);
        }
        let mut code = Code {
            func: Arc::clone(shared),
            insts: Vec::with_capacity(next),
            block_starts,
            edges: Vec::new(),
            moves: Vec::new(),
            consts: Vec::new(),
            addrs: Vec::new(),
            sites: Vec::new(),
            regs,
            written_ahead: Vec::new(),
        };
        // Functions too large to index with u32, or with registers that
        // do not fit in an `R` other than `NO_INDEX`, run entirely through
        // the general path.
        let fits = u32::try_from(next).is_ok() && regs < WINDOW;
        let ahead = if fits {
            coalescing(func)
        } else {
            HashMap::default()
        };
        for b in 0..func.blocks.len() {
            // The general path passes every argument: a block whose jump
            // takes it decodes again without writing any ahead.
            let start = code.insts.len();
            if !code.block(func, b, fits, Some(&ahead)) {
                code.insts.truncate(start);
                code.block(func, b, fits, None);
            }
        }
        code.written_ahead.clear();
        code
    }

    /// Decodes block `b`, its instructions writing ahead where `ahead`
    /// says (see [`coalescing`]); `false` when some did and the jump then
    /// took the general path (the block must be decoded again without).
    fn block(
        &mut self,
        func: &Function,
        b: usize,
        fits: bool,
        ahead: Option<&HashMap<(usize, usize), Reg>>,
    ) -> bool {
        let b32 = u32::try_from(b).unwrap_or(u32::MAX);
        let Some(block) = func.blocks.get(b) else {
            return true;
        };
        self.written_ahead.clear();
        for (k, inst) in block.insts.iter().enumerate() {
            let general = Inst::General {
                block: b32,
                inst: u32::try_from(k).unwrap_or(u32::MAX),
            };
            let param = ahead.and_then(|ahead| ahead.get(&(b, k)));
            let early = param.and_then(|p| self.inst(Some(*p), &inst.op));
            if let (Some(_), Some(arg)) = (early, inst.result) {
                self.written_ahead.push(arg);
            }
            let decoded = match early {
                Some(decoded) => decoded,
                None if fits => self
                    .inst(inst.result, &inst.op)
                    .or_else(|| self.call(b32, k, &inst.op))
                    .unwrap_or(general),
                None => general,
            };
            self.fuse_load(decoded);
            self.insts.push(decoded);
        }
        let general = Inst::GeneralTerm { block: b32 };
        let decoded = if fits {
            self.term(func, b32, &block.term).unwrap_or(general)
        } else {
            general
        };
        if matches!(decoded, Inst::GeneralTerm { .. }) && !self.written_ahead.is_empty() {
            return false;
        }
        self.fuse(decoded);
        self.insts.push(decoded);
        true
    }

    /// Fuses the last instruction decoded, a 64-bit load, with `inst`, the
    /// instruction that follows it, when that adds the loaded value to
    /// another register. (A block's first instruction follows the previous
    /// block's terminator, which is never a load.)
    fn fuse_load(&mut self, inst: Inst) {
        let Inst::Add64 { d: s, a, b } = inst else {
            return;
        };
        let Some(last) = self.insts.last_mut() else {
            return;
        };
        let Inst::Load64 { d, a: base, i } = *last else {
            return;
        };
        // The add reads the register after the load wrote it, so `o` may
        // be `d` too.
        let o = match (a == d, b == d) {
            (true, _) => b,
            (false, true) => a,
            (false, false) => return,
        };
        *last = Inst::LoadAdd64 {
            d,
            a: base,
            i,
            s,
            o,
        };
    }

    /// Fuses the last instruction decoded with `term`, the terminator that
    /// follows it, when it compares integers for the branch or is a 64-bit
    /// add before a jump.
    fn fuse(&mut self, term: Inst) {
        let Some(last) = self.insts.last_mut() else {
            return;
        };
        if let (Inst::Br { to }, Inst::Add64 { d, a, b }) = (term, *last) {
            *last = Inst::AddBr { d, a, b, to };
            return;
        }
        let Inst::CondBr { c, then, otherwise } = term else {
            return;
        };
        let (signed, op, d, a, b) = match *last {
            Inst::CmpSigned { op, d, a, b } => (true, op, d, a, b),
            Inst::CmpUnsigned { op, d, a, b } => (false, op, d, a, b),
            _ => return,
        };
        if d == c && signed && op == CmpOp::Lt {
            *last = Inst::LtBr {
                d,
                a,
                b,
                then,
                otherwise,
            };
        } else if d == c {
            *last = Inst::CmpBr {
                signed,
                op,
                d,
                a,
                b,
                then,
                otherwise,
            };
        }
    }

    /// `r` as an index, when it names a register of the frame.
    fn reg(&self, r: Reg) -> Option<R> {
        R::try_from(r.0)
            .ok()
            .filter(|&i| usize::from(i) < self.regs)
    }

    fn opt_reg(&self, r: Option<Reg>) -> Option<R> {
        match r {
            Some(r) => self.reg(r),
            None => Some(NO_INDEX),
        }
    }

    /// The fast form of an instruction, `None` when it must take the
    /// general path.
    fn inst(&mut self, result: Option<Reg>, op: &Op) -> Option<Inst> {
        // A store defines nothing; every other fast form defines `d`.
        if let Op::Store {
            ty,
            addr,
            index,
            value,
        } = op
        {
            if result.is_some() {
                return None;
            }
            return Some(Inst::Store {
                a: self.reg(*addr)?,
                i: self.opt_reg(*index)?,
                v: self.reg(*value)?,
                size: u8::try_from(ty.scalar_size()?).ok()?,
            });
        }
        let d = self.reg(result?)?;
        Some(match op {
            Op::Const { ty, value } => {
                let v = const_value(ty, *value).ok()?;
                let k = u32::try_from(self.consts.len()).ok()?;
                self.consts.push(v);
                Inst::Const { d, k }
            }
            Op::Binary { op, ty, lhs, rhs } => {
                let (a, b) = (self.reg(*lhs)?, self.reg(*rhs)?);
                binary(*op, ty, d, a, b)?
            }
            Op::Cmp { op, ty, lhs, rhs } => {
                let (a, b) = (self.reg(*lhs)?, self.reg(*rhs)?);
                let op = *op;
                match ty {
                    Type::Int(t) if t.signed() => Inst::CmpSigned { op, d, a, b },
                    Type::F32 => Inst::CmpF32 { op, d, a, b },
                    Type::F64 => Inst::CmpF64 { op, d, a, b },
                    _ => Inst::CmpUnsigned { op, d, a, b },
                }
            }
            Op::Bitcast { to, arg, .. } => Inst::Canonical {
                d,
                a: self.reg(*arg)?,
                canon: Canon::of(to),
            },
            Op::Select {
                cond,
                if_true,
                if_false,
                ..
            } => Inst::Select {
                d,
                c: self.reg(*cond)?,
                t: self.reg(*if_true)?,
                f: self.reg(*if_false)?,
            },
            Op::Load { ty, addr, index } => {
                let (a, i) = (self.reg(*addr)?, self.opt_reg(*index)?);
                let size = u8::try_from(ty.scalar_size()?).ok()?;
                match (size, Canon::of(ty)) {
                    (8, Canon::Raw) if i != NO_INDEX => Inst::Load64 { d, a, i },
                    (size, canon) => Inst::Load {
                        d,
                        a,
                        i,
                        size,
                        canon,
                    },
                }
            }
            Op::Addr {
                base,
                index,
                scale,
                disp,
                ..
            } => {
                let (a, i) = (self.reg(*base)?, self.opt_reg(*index)?);
                let k = u32::try_from(self.addrs.len()).ok()?;
                self.addrs.push((*scale, *disp));
                Inst::Addr { d, a, i, k }
            }
            _ => return None,
        })
    }

    /// A call of a symbol, with a site to remember its callee.
    fn call(&mut self, block: u32, inst: usize, op: &Op) -> Option<Inst> {
        let Op::Call {
            callee: Callee::Symbol(_),
            ..
        } = op
        else {
            return None;
        };
        let site = u32::try_from(self.sites.len()).ok()?;
        self.sites.push(CallSite::default());
        Some(Inst::Call {
            block,
            inst: u32::try_from(inst).ok()?,
            site,
        })
    }

    /// The fast form of a terminator, `None` when it must take the general
    /// path.
    fn term(&mut self, func: &Function, from: u32, term: &Terminator) -> Option<Inst> {
        Some(match term {
            Terminator::Br(t) => Inst::Br {
                to: self.edge(func, from, t)?,
            },
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            } => Inst::CondBr {
                c: self.reg(*cond)?,
                then: self.edge(func, from, then)?,
                otherwise: self.edge(func, from, otherwise)?,
            },
            Terminator::Ret(r) => Inst::Ret {
                r: self.opt_reg(*r)?,
            },
            Terminator::Trap(_) => return None,
        })
    }

    /// Decodes a branch whose target exists and whose arguments and
    /// parameters are all registers of the frame: a plain jump goes
    /// straight to its target, any other is recorded as an edge.
    fn edge(&mut self, func: &Function, from_block: u32, t: &BlockCall) -> Option<Jump> {
        let block = usize::try_from(t.block.0).ok()?;
        let target = func.blocks.get(block)?;
        if target.params.len() != t.args.len() {
            return None;
        }
        let pc = *self.block_starts.get(block)?;
        let back = t.block.0 <= from_block;
        let from = u32::try_from(self.moves.len()).ok()?;
        for (arg, (param, _)) in t.args.iter().zip(&target.params) {
            let pair = (self.reg(*arg)?, self.reg(*param)?);
            if !self.written_ahead.contains(arg) {
                self.moves.push(pair);
            }
        }
        if self.moves.len() == from as usize && pc < Jump::NEXT {
            return Some(if back {
                Jump(Jump::BACK | pc)
            } else if block == from_block as usize + 1 {
                Jump(Jump::NEXT)
            } else {
                Jump(pc)
            });
        }
        let to = u32::try_from(self.moves.len()).ok()?;
        let moves = self.moves.get(from as usize..)?;
        let parallel = moves
            .iter()
            .enumerate()
            .any(|(k, &(_, p))| moves.iter().skip(k + 1).any(|&(a, _)| a == p));
        let e = u32::try_from(self.edges.len())
            .ok()
            .filter(|&e| e < Jump::EDGE)?;
        self.edges.push(Edge {
            block: t.block.0,
            pc,
            from,
            to,
            parallel,
            back,
        });
        Some(Jump(Jump::EDGE | e))
    }
}

/// Where a block's instructions may write the parameters of the block its
/// jump passes their results to, so that the jump moves nothing: the
/// instruction `(block, inst)` writes the parameter instead of its result.
///
/// A result qualifies when it is defined once, by an instruction of a
/// block that ends in an unconditional jump, and used once, as an argument
/// of that jump; and when its parameter is defined only as the target's
/// parameter, is not an argument of the jump, and is not read by the
/// instructions after the definition. The result register is then never
/// written, and nothing reads it. (Only the fast forms write ahead: the
/// decoder falls back to the result when an instruction takes the general
/// path, and to every move when the jump does.)
///
/// A loop's latch then passes its values to the header without a round
/// trip through memory (stored by the definition, loaded by the move and
/// stored again), which each iteration of a loop would wait on.
fn coalescing(func: &Function) -> HashMap<(usize, usize), Reg> {
    let mut uses: HashMap<Reg, u32> = HashMap::new();
    let mut defs: HashMap<Reg, u32> = HashMap::new();
    let mut params: HashMap<Reg, u32> = HashMap::new();
    for block in &func.blocks {
        for (r, _) in &block.params {
            *params.entry(*r).or_default() += 1;
        }
        for inst in &block.insts {
            inst.op.for_each_use(|r| *uses.entry(*r).or_default() += 1);
            if let Some(r) = inst.result {
                *defs.entry(r).or_default() += 1;
            }
        }
        block
            .term
            .for_each_use(|r| *uses.entry(*r).or_default() += 1);
    }
    let count = |map: &HashMap<Reg, u32>, r: &Reg| map.get(r).copied().unwrap_or(0);
    let fixed = func.sig.params.len();
    let mut ahead = HashMap::new();
    for (b, block) in func.blocks.iter().enumerate() {
        let Terminator::Br(t) = &block.term else {
            continue;
        };
        let Some(target) = usize::try_from(t.block.0)
            .ok()
            .and_then(|k| func.blocks.get(k))
        else {
            continue;
        };
        if target.params.len() != t.args.len() {
            continue;
        }
        for (arg, (param, _)) in t.args.iter().zip(&target.params) {
            let registers = [arg, param].map(|r| usize::try_from(r.0).unwrap_or(usize::MAX));
            if arg == param
                || registers.iter().any(|&r| r < fixed)
                || (count(&uses, arg), count(&defs, arg), count(&params, arg)) != (1, 1, 0)
                || (count(&defs, param), count(&params, param)) != (0, 1)
                || t.args.contains(param)
            {
                continue;
            }
            let Some(k) = block.insts.iter().position(|i| i.result == Some(*arg)) else {
                continue;
            };
            let mut read_later = false;
            for later in block.insts.iter().skip(k + 1) {
                later.op.for_each_use(|r| read_later |= r == param);
            }
            if !read_later {
                ahead.insert((b, k), *param);
            }
        }
    }
    ahead
}

/// The decoded code of the interpreted function a call site reached last,
/// under the resolver that resolved it. Only a resolver with a
/// [`stable_identity`](crate::Resolver::stable_identity) is remembered:
/// its answer for the symbol cannot change while it lives, and the
/// identity is never another resolver's, so a hit is what resolving again
/// would return. The weak reference keeps the code alive no longer than
/// the thread's cache does (nor makes a cycle of a recursive function's
/// code); a callee whose code is gone is looked up again.
#[derive(Debug, Default)]
pub(crate) struct CallSite(RefCell<Option<Remembered>>);

#[derive(Debug)]
struct Remembered {
    resolver: NonZeroU64,
    code: rc::Weak<Code>,
}

impl CallSite {
    /// The code of the callee remembered under resolver `id`.
    #[inline]
    pub(crate) fn callee(&self, id: NonZeroU64) -> Option<Rc<Code>> {
        match &*self.0.borrow() {
            Some(known) if known.resolver == id => known.code.upgrade(),
            _ => None,
        }
    }

    /// Remembers the code of the callee that resolver `id` resolved the
    /// site's symbol to.
    pub(crate) fn remember(&self, id: NonZeroU64, code: &Rc<Code>) {
        *self.0.borrow_mut() = Some(Remembered {
            resolver: id,
            code: Rc::downgrade(code),
        });
    }
}

/// The symbol last called from outside the interpreter on this thread,
/// with the call site that remembers its callee.
#[derive(Default)]
struct Entry {
    symbol: String,
    site: CallSite,
}

thread_local! {
    // One entry: a host calling one function in a loop asks the resolver
    // once, and a host alternating between functions asks as it did.
    static ENTRY: RefCell<Entry> = RefCell::default();
}

/// The code of the callee `symbol` resolved to, under resolver `id`, when
/// it was last called from outside the interpreter on this thread (as
/// [`CallSite::callee`]).
pub(crate) fn entry(id: NonZeroU64, symbol: &str) -> Option<Rc<Code>> {
    ENTRY
        .try_with(|entry| {
            let entry = entry.try_borrow().ok()?;
            if entry.symbol == symbol {
                entry.site.callee(id)
            } else {
                None
            }
        })
        .ok()
        .flatten()
}

/// Remembers `callee`, which resolver `id` resolved `symbol` to for a call
/// from outside the interpreter, and returns its code.
pub(crate) fn remember_entry(id: NonZeroU64, symbol: &str, callee: &Arc<Function>) -> Rc<Code> {
    let code = code(callee);
    // During thread teardown the entry may be gone: nothing is remembered.
    let _ = ENTRY.try_with(|entry| {
        if let Ok(mut entry) = entry.try_borrow_mut() {
            entry.symbol.clear();
            entry.symbol.push_str(symbol);
            entry.site.remember(id, &code);
        }
    });
    code
}

/// The fast form of a binary operation on checked registers.
fn binary(op: BinOp, ty: &Type, d: R, a: R, b: R) -> Option<Inst> {
    Some(match (ty, op) {
        (Type::Int(IntType::I64 | IntType::U64), BinOp::Add) => Inst::Add64 { d, a, b },
        (Type::Int(IntType::I64 | IntType::U64), BinOp::Sub) => Inst::Sub64 { d, a, b },
        (Type::Int(IntType::I64 | IntType::U64), BinOp::Mul) => Inst::Mul64 { d, a, b },
        (Type::Int(IntType::I64 | IntType::U64) | Type::Bool, BinOp::And) => Inst::And { d, a, b },
        (Type::Int(IntType::I64 | IntType::U64) | Type::Bool, BinOp::Or) => Inst::Or { d, a, b },
        (Type::Int(IntType::I64 | IntType::U64) | Type::Bool, BinOp::Xor) => Inst::Xor { d, a, b },
        (Type::Int(t), op) => Inst::Int { op, t: *t, d, a, b },
        (Type::F64, BinOp::Add) => Inst::F64Add { d, a, b },
        (Type::F64, BinOp::Mul) => Inst::F64Mul { d, a, b },
        (Type::F64, BinOp::Sub | BinOp::Div) => Inst::F64 { op, d, a, b },
        (Type::F32, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div) => Inst::F32 { op, d, a, b },
        _ => return None,
    })
}

/// Decoded functions of this thread, by the address of their shared
/// allocation. Each entry's code holds its function, so the address cannot
/// be reused by another function while the entry exists: finding the
/// address means finding the same function. An entry whose function only
/// the cache holds (and whose code no frame is running) is swept out when
/// the cache next grows: functions dropped elsewhere are kept until then.
struct Cache {
    map: HashMap<usize, Rc<Code>, BuildIntHasher>,
    /// Size at which entries of dropped functions are swept out.
    sweep_at: usize,
}

/// Entries kept before the first sweep.
const FIRST_SWEEP: usize = 64;

thread_local! {
    // Per thread rather than shared: the interpreter runs on many threads
    // at once under tiered execution, and decoding is cheap next to a lock
    // every call would take.
    static CACHE: RefCell<Cache> = RefCell::new(Cache {
        map: HashMap::default(),
        sweep_at: FIRST_SWEEP,
    });
}

/// The decoded form of `func`, decoded on this thread's first call of it.
///
/// Shared by reference counts that are not atomic, as a thread's decoded
/// code never leaves it: a call takes and drops one without a locked
/// instruction.
pub(crate) fn code(func: &Arc<Function>) -> Rc<Code> {
    let key = Arc::as_ptr(func) as usize;
    let cached = CACHE.try_with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(code) = cache.map.get(&key) {
            return Rc::clone(code);
        }
        if cache.map.len() >= cache.sweep_at {
            cache
                .map
                .retain(|_, code| Arc::strong_count(&code.func) > 1 || Rc::strong_count(code) > 1);
            cache.sweep_at = (cache.map.len() * 2).max(FIRST_SWEEP);
        }
        let code = Rc::new(Code::new(func));
        cache.map.insert(key, Rc::clone(&code));
        code
    });
    // During thread teardown the cache may be gone: decode without it.
    cached.unwrap_or_else(|_| Rc::new(Code::new(func)))
}
