//! The random program generator of the differential tests: small
//! modules of non-generic functions `g0`, `g1`, … built from a seed (see
//! `differential.rs` for what they contain), and arguments for them.
//!
//! Shared by file with the loader's tiered-execution tests, which run the
//! same programs in every tier; the including crate provides `Rng` and
//! `below` at its root.
#![allow(dead_code)]

use super::{Rng, below};
use jit::interp::Value;
use jit::ir::{
    BinOp, Block, BlockCall, BlockId, Callee, CmpOp, Function, Inst, IntType, Item, Library,
    Literal, Op, Reg, Signature, TemplateName, Terminator, Type, UnOp,
};

/// Bytes of the buffer every generated function receives first.
pub const MEM: usize = 512;

fn scalars() -> Vec<Type> {
    let mut t: Vec<Type> = IntType::ALL.iter().map(|&i| Type::Int(i)).collect();
    t.extend([Type::F32, Type::F64, Type::Bool]);
    t
}

struct Builder {
    params: Vec<(Reg, Type)>,
    insts: Vec<Inst>,
    term: Option<Terminator>,
}

struct Gen<'a> {
    rng: Rng,
    next: u32,
    blocks: Vec<Builder>,
    cur: usize,
    scopes: Vec<Vec<(Reg, Type)>>,
    mem: Reg,
    budget: i32,
    earlier: &'a [(String, Signature)],
}

impl Gen<'_> {
    fn chance(&mut self, percent: u64) -> bool {
        below(&mut self.rng, 100) < percent
    }

    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[below(&mut self.rng, xs.len() as u64) as usize].clone()
    }

    fn reg(&mut self) -> Reg {
        self.next += 1;
        Reg(self.next - 1)
    }

    fn emit(&mut self, op: Op, ty: Option<Type>) -> Option<Reg> {
        let result = ty.as_ref().map(|_| self.reg());
        self.blocks[self.cur].insts.push(Inst { result, op });
        if let (Some(r), Some(t)) = (result, ty) {
            self.scopes.last_mut().expect("scope").push((r, t));
        }
        self.budget -= 1;
        result
    }

    fn block(&mut self, params: Vec<(Reg, Type)>) -> usize {
        self.blocks.push(Builder {
            params,
            insts: Vec::new(),
            term: None,
        });
        self.blocks.len() - 1
    }

    fn literal(&mut self, ty: &Type) -> Literal {
        match ty {
            Type::Int(t) => {
                let edges = [t.min_value(), t.max_value(), 0, 1, -1, 2, 7, 31, 63, 64];
                let v = if self.chance(60) {
                    self.pick(&edges)
                } else {
                    i128::from(self.rng.next() as i64)
                };
                Literal::Int(v.clamp(t.min_value(), t.max_value()))
            }
            Type::F32 | Type::F64 => {
                let edges = [
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    0.0,
                    -0.0,
                    1.0,
                    -1.5,
                    0.1,
                    1e20,
                    -3e9,
                    4_294_967_296.5,
                    9.3e18,
                    1.9e19,
                    -129.9,
                    255.99,
                    f64::MIN_POSITIVE,
                    f64::from(f32::MAX),
                ];
                let v = if self.chance(70) {
                    self.pick(&edges)
                } else {
                    (self.rng.next() as i64 as f64) / 2f64.powi(below(&mut self.rng, 80) as i32)
                };
                Literal::Float(v.to_bits())
            }
            Type::Bool => Literal::Bool(self.chance(50)),
            _ => Literal::Null,
        }
    }

    fn constant(&mut self, ty: &Type) -> Reg {
        let value = self.literal(ty);
        self.emit(
            Op::Const {
                ty: ty.clone(),
                value,
            },
            Some(ty.clone()),
        )
        .expect("a constant has a result")
    }

    /// A visible value of type `ty`, or a fresh constant.
    fn value(&mut self, ty: &Type) -> Reg {
        let candidates: Vec<Reg> = self
            .scopes
            .iter()
            .flatten()
            .filter(|(_, t)| t == ty)
            .map(|(r, _)| *r)
            .collect();
        if !candidates.is_empty() && self.chance(85) {
            self.pick(&candidates)
        } else {
            self.constant(ty)
        }
    }

    fn any_type(&mut self) -> Type {
        self.pick(&scalars())
    }

    fn instruction(&mut self) {
        let ty = self.any_type();
        match below(&mut self.rng, 100) {
            0..=29 => {
                let ops: &[BinOp] = match ty {
                    Type::Int(_) => &[
                        BinOp::Add,
                        BinOp::Sub,
                        BinOp::Mul,
                        BinOp::Div,
                        BinOp::Rem,
                        BinOp::And,
                        BinOp::Or,
                        BinOp::Xor,
                        BinOp::Shl,
                        BinOp::Shr,
                    ],
                    Type::Bool => &[BinOp::And, BinOp::Or, BinOp::Xor],
                    _ => &[BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div],
                };
                let op = self.pick(ops);
                let (lhs, rhs) = (self.value(&ty), self.value(&ty));
                self.emit(
                    Op::Binary {
                        op,
                        ty: ty.clone(),
                        lhs,
                        rhs,
                    },
                    Some(ty),
                );
            }
            30..=35 => {
                let op = match ty {
                    Type::Bool => UnOp::Not,
                    Type::F32 | Type::F64 => UnOp::Neg,
                    _ => self.pick(&[UnOp::Neg, UnOp::Not]),
                };
                let arg = self.value(&ty);
                self.emit(
                    Op::Unary {
                        op,
                        ty: ty.clone(),
                        arg,
                    },
                    Some(ty),
                );
            }
            36..=47 => {
                let op = if ty == Type::Bool {
                    self.pick(&[CmpOp::Eq, CmpOp::Ne])
                } else {
                    self.pick(&[
                        CmpOp::Eq,
                        CmpOp::Ne,
                        CmpOp::Lt,
                        CmpOp::Le,
                        CmpOp::Gt,
                        CmpOp::Ge,
                    ])
                };
                let (lhs, rhs) = (self.value(&ty), self.value(&ty));
                self.emit(Op::Cmp { op, ty, lhs, rhs }, Some(Type::Bool));
            }
            48..=59 => {
                let to = self.pick(&scalars()[..10]);
                let from = if ty == Type::Bool || self.chance(80) {
                    ty
                } else {
                    Type::Bool
                };
                if from == Type::Bool && !matches!(to, Type::Int(_)) {
                    return;
                }
                let arg = self.value(&from);
                self.emit(
                    Op::Cast {
                        from,
                        to: to.clone(),
                        arg,
                    },
                    Some(to),
                );
            }
            60..=63 => {
                let pairs = [
                    (Type::F32, Type::Int(IntType::I32)),
                    (Type::F32, Type::Int(IntType::U32)),
                    (Type::F64, Type::Int(IntType::I64)),
                    (Type::F64, Type::Int(IntType::U64)),
                    (Type::Int(IntType::I8), Type::Int(IntType::U8)),
                    (Type::Int(IntType::U16), Type::Int(IntType::I16)),
                ];
                let (mut from, mut to) = self.pick(&pairs);
                if self.chance(50) {
                    std::mem::swap(&mut from, &mut to);
                }
                let arg = self.value(&from);
                self.emit(
                    Op::Bitcast {
                        from,
                        to: to.clone(),
                        arg,
                    },
                    Some(to),
                );
            }
            64..=71 => {
                let cond = self.value(&Type::Bool);
                let (if_true, if_false) = (self.value(&ty), self.value(&ty));
                self.emit(
                    Op::Select {
                        ty: ty.clone(),
                        cond,
                        if_true,
                        if_false,
                    },
                    Some(ty),
                );
            }
            72..=85 => self.memory(ty),
            86..=93 if !self.earlier.is_empty() => self.call(),
            _ => {
                self.constant(&ty);
            }
        }
    }

    /// A load or store of `ty` inside the buffer.
    fn memory(&mut self, ty: Type) {
        let size = ty.scalar_size().unwrap_or(1);
        let count = MEM as u64 / size;
        let typed = self
            .emit(
                Op::Cast {
                    from: Type::RawPtr,
                    to: ty.clone().ptr_to(),
                    arg: self.mem,
                },
                Some(ty.clone().ptr_to()),
            )
            .expect("cast result");
        // Keep the pointer out of the pool of values: its bits differ
        // between the two runs.
        self.scopes.last_mut().expect("scope").pop();
        let raw = self.value(&Type::I64);
        let half = self.chance(40);
        // base + index * scale + disp stays inside the buffer: the index
        // is masked, the displacement bounded.
        let (scale, disp, mask_value) = if !half {
            (size, 0, count - 1)
        } else if size == 1 && self.chance(50) {
            (3, i64::from(self.rng.next() as u8 % 64), 127)
        } else {
            (
                size,
                (below(&mut self.rng, count / 2) * size) as i64,
                count / 2 - 1,
            )
        };
        let mask = self.constant(&Type::I64);
        if let Some(Inst {
            op: Op::Const { value, .. },
            ..
        }) = self.blocks[self.cur].insts.last_mut()
        {
            *value = Literal::Int(i128::from(mask_value));
        }
        let index = self
            .emit(
                Op::Binary {
                    op: BinOp::And,
                    ty: Type::I64,
                    lhs: raw,
                    rhs: mask,
                },
                Some(Type::I64),
            )
            .expect("index");
        let (addr, index) = if half {
            let p = self
                .emit(
                    Op::Addr {
                        ty: ty.clone().ptr_to(),
                        base: typed,
                        index: Some(index),
                        scale,
                        disp,
                    },
                    Some(ty.clone().ptr_to()),
                )
                .expect("addr");
            self.scopes.last_mut().expect("scope").pop();
            (p, None)
        } else {
            (typed, Some(index))
        };
        if self.chance(55) {
            self.emit(
                Op::Load {
                    ty: ty.clone(),
                    addr,
                    index,
                },
                Some(ty),
            );
        } else {
            let value = self.value(&ty);
            self.emit(
                Op::Store {
                    ty,
                    addr,
                    index,
                    value,
                },
                None,
            );
        }
    }

    fn call(&mut self) {
        let (name, sig) = self.pick(self.earlier);
        let callee = Callee::Template {
            name: TemplateName::free(&name),
            type_args: Vec::new(),
        };
        let mut args = vec![self.mem];
        for p in sig.params.iter().skip(1) {
            args.push(self.value(p));
        }
        let ret = sig.ret.clone();
        if self.chance(30) {
            let target = self
                .emit(
                    Op::FuncAddr {
                        callee,
                        sig: sig.clone(),
                    },
                    Some(Type::Fn(Box::new(sig.clone()))),
                )
                .expect("function address");
            self.scopes.last_mut().expect("scope").pop();
            self.emit(Op::CallIndirect { sig, target, args }, ret);
        } else {
            self.emit(Op::Call { callee, sig, args }, ret);
        }
    }

    fn fill(&mut self, depth: u32) {
        let steps = 2 + below(&mut self.rng, 8);
        for _ in 0..steps {
            if self.budget <= 0 {
                return;
            }
            match below(&mut self.rng, 100) {
                0..=9 if depth < 2 => self.diamond(depth),
                10..=17 if depth < 2 => self.looped(depth),
                _ => self.instruction(),
            }
        }
    }

    fn diamond(&mut self, depth: u32) {
        let cond = self.value(&Type::Bool);
        let ty = self.any_type();
        let from = self.cur;
        let then_b = self.block(Vec::new());
        self.cur = then_b;
        self.scopes.push(Vec::new());
        self.fill(depth + 1);
        let then_end = self.cur;
        let trap = self.chance(6);
        let then_arg = self.value(&ty);
        self.scopes.pop();
        let else_b = self.block(Vec::new());
        self.cur = else_b;
        self.scopes.push(Vec::new());
        self.fill(depth + 1);
        let else_end = self.cur;
        let else_arg = self.value(&ty);
        self.scopes.pop();
        let param = self.reg();
        let join = self.block(vec![(param, ty.clone())]);
        let to_join = |arg| {
            Terminator::Br(BlockCall {
                block: BlockId(join as u32),
                args: vec![arg],
            })
        };
        self.blocks[then_end].term = Some(if trap {
            Terminator::Trap(below(&mut self.rng, 5) as u32)
        } else {
            to_join(then_arg)
        });
        self.blocks[else_end].term = Some(to_join(else_arg));
        self.blocks[from].term = Some(Terminator::CondBr {
            cond,
            then: BlockCall {
                block: BlockId(then_b as u32),
                args: Vec::new(),
            },
            otherwise: BlockCall {
                block: BlockId(else_b as u32),
                args: Vec::new(),
            },
        });
        self.cur = join;
        self.scopes.last_mut().expect("scope").push((param, ty));
    }

    fn looped(&mut self, depth: u32) {
        let ty = self.any_type();
        let zero = self.emit(
            Op::Const {
                ty: Type::I64,
                value: Literal::Int(0),
            },
            Some(Type::I64),
        );
        self.scopes.last_mut().expect("scope").pop();
        let init = self.value(&ty);
        let (i, acc) = (self.reg(), self.reg());
        let pre = self.cur;
        let header = self.block(vec![(i, Type::I64), (acc, ty.clone())]);
        self.blocks[pre].term = Some(Terminator::Br(BlockCall {
            block: BlockId(header as u32),
            args: vec![zero.expect("zero"), init],
        }));
        self.cur = header;
        let trips = i128::from(below(&mut self.rng, 5));
        let limit = self.emit(
            Op::Const {
                ty: Type::I64,
                value: Literal::Int(trips),
            },
            Some(Type::I64),
        );
        self.scopes.last_mut().expect("scope").pop();
        let more = self
            .emit(
                Op::Cmp {
                    op: CmpOp::Lt,
                    ty: Type::I64,
                    lhs: i,
                    rhs: limit.expect("limit"),
                },
                Some(Type::Bool),
            )
            .expect("cmp");
        self.scopes.last_mut().expect("scope").pop();
        self.scopes
            .last_mut()
            .expect("scope")
            .push((acc, ty.clone()));
        let body = self.block(Vec::new());
        self.cur = body;
        self.scopes.push(vec![(i, Type::I64)]);
        self.fill(depth + 1);
        let one = self.emit(
            Op::Const {
                ty: Type::I64,
                value: Literal::Int(1),
            },
            Some(Type::I64),
        );
        let next = self
            .emit(
                Op::Binary {
                    op: BinOp::Add,
                    ty: Type::I64,
                    lhs: i,
                    rhs: one.expect("one"),
                },
                Some(Type::I64),
            )
            .expect("next");
        let carried = self.value(&ty);
        self.scopes.pop();
        let body_end = self.cur;
        self.blocks[body_end].term = Some(Terminator::Br(BlockCall {
            block: BlockId(header as u32),
            args: vec![next, carried],
        }));
        let exit = self.block(Vec::new());
        self.blocks[header].term = Some(Terminator::CondBr {
            cond: more,
            then: BlockCall {
                block: BlockId(body as u32),
                args: Vec::new(),
            },
            otherwise: BlockCall {
                block: BlockId(exit as u32),
                args: Vec::new(),
            },
        });
        self.cur = exit;
    }
}

/// Renumbers registers canonically: parameters, then block by block each
/// block's parameters and its instructions' results.
fn canonical(params: usize, blocks: Vec<Builder>, regs: u32) -> Vec<Block> {
    let mut map = vec![u32::MAX; regs as usize];
    let mut n = 0u32;
    for m in map.iter_mut().take(params) {
        *m = n;
        n += 1;
    }
    for b in &blocks {
        for (r, _) in &b.params {
            map[r.0 as usize] = n;
            n += 1;
        }
        for i in &b.insts {
            if let Some(r) = i.result {
                map[r.0 as usize] = n;
                n += 1;
            }
        }
    }
    let m = |r: Reg| Reg(map[r.0 as usize]);
    let call = |c: BlockCall| BlockCall {
        block: c.block,
        args: c.args.into_iter().map(m).collect(),
    };
    blocks
        .into_iter()
        .map(|b| Block {
            params: b.params.into_iter().map(|(r, t)| (m(r), t)).collect(),
            insts: b
                .insts
                .into_iter()
                .map(|i| Inst {
                    result: i.result.map(m),
                    op: i.op.map_regs(|r| Ok::<_, ()>(m(r))).expect("total"),
                })
                .collect(),
            term: match b.term.expect("every block is terminated") {
                Terminator::Br(c) => Terminator::Br(call(c)),
                Terminator::CondBr {
                    cond,
                    then,
                    otherwise,
                } => Terminator::CondBr {
                    cond: m(cond),
                    then: call(then),
                    otherwise: call(otherwise),
                },
                Terminator::Ret(v) => Terminator::Ret(v.map(m)),
                Terminator::Trap(c) => Terminator::Trap(c),
            },
        })
        .collect()
}

fn function(name: &str, seed: u64, earlier: &[(String, Signature)]) -> Function {
    let mut rng = Rng(seed | 1);
    let mut sig = Signature {
        params: vec![Type::RawPtr],
        ret: None,
    };
    let (mut ints, mut floats) = (1, 0);
    for _ in 0..below(&mut rng, 5) {
        let t = scalars()[below(&mut rng, 11) as usize].clone();
        if t.is_float() && floats < 8 {
            floats += 1;
            sig.params.push(t);
        } else if !t.is_float() && ints < 6 {
            ints += 1;
            sig.params.push(t);
        }
    }
    if below(&mut rng, 8) != 0 {
        sig.ret = Some(scalars()[below(&mut rng, 11) as usize].clone());
    }
    let params: Vec<(Reg, Type)> = sig
        .params
        .iter()
        .enumerate()
        .map(|(i, t)| (Reg(i as u32), t.clone()))
        .collect();
    let mut g = Gen {
        rng,
        next: params.len() as u32,
        blocks: Vec::new(),
        cur: 0,
        scopes: vec![params.iter().skip(1).cloned().collect()],
        mem: Reg(0),
        // One program in eight is large enough to run out of registers.
        budget: if seed.is_multiple_of(8) { 240 } else { 60 },
        earlier,
    };
    g.block(Vec::new());
    g.fill(0);
    while g.budget > 0 && seed.is_multiple_of(8) {
        g.fill(0);
    }
    let ret = sig.ret.clone().map(|t| g.value(&t));
    let last = g.cur;
    g.blocks[last].term = Some(Terminator::Ret(ret));
    let next = g.next;
    Function {
        name: TemplateName::free(name),
        type_params: Vec::new(),
        sig,
        blocks: canonical(params.len(), g.blocks, next),
    }
}

/// A module of `count` functions, each calling only earlier ones.
pub fn program(seed: u64, count: usize) -> Library {
    let mut earlier: Vec<(String, Signature)> = Vec::new();
    let mut items = Vec::new();
    for k in 0..count {
        let name = format!("g{k}");
        let f = function(
            &name,
            seed.wrapping_mul(31).wrapping_add(k as u64),
            &earlier,
        );
        earlier.push((name, f.sig.clone()));
        items.push(Item::Function(f));
    }
    let lib = Library::new(items).expect("distinct names");
    if let Err(e) = jit::verify::verify_library(&lib) {
        panic!(
            "seed {seed}: generated an invalid program: {e}\n{}",
            jit::text::print_library(&lib)
        );
    }
    lib
}

pub fn argument(ty: &Type, rng: &mut Rng) -> Value {
    let bits = match below(rng, 4) {
        0 => 0,
        1 => u64::MAX,
        2 => below(rng, 10),
        _ => rng.next(),
    };
    let bits = match ty {
        Type::F32 if bits == u64::MAX => u64::from(f32::NAN.to_bits()),
        Type::F32 => u64::from((bits as i64 as f32 / 7.0).to_bits()),
        Type::F64 if bits != u64::MAX => (bits as i64 as f64 / 3.0).to_bits(),
        _ => bits,
    };
    Value::from_bits(ty, bits)
}

/// A count from the environment variable `name` (how many programs a run
/// checks, its first seed), or `default` when it is unset or not a number.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
