//! `cranelift-jit` as the baseline of BRIEF §8: the same verified,
//! instantiated template IR compiled by Cranelift and by our backend.
//!
//! (a) Cold compile → callable pointer, from the same [`Instance`]s:
//! `quicksort$i32` with its callee `insertion_sort$i32` (54 IR
//! instructions, the `jit` area's cold miss) and the `mix` templates of the
//! `backend` area at 11, 50 and 200 instructions. Ours is
//! `Backend::compile_batch` (register allocation, lowering, encoding,
//! publication); Cranelift's is lowering our IR to CLIF with
//! `cranelift-frontend`, `define_function`, `finalize_definitions` and
//! `get_finalized_function`, at `opt_level` "speed" and "none", then "none"
//! with the single-pass register allocator, without unwind information,
//! and with the arena memory provider: the fastest of these is the
//! baseline of the target.
//!
//! (b) Run time of the kernel suite of the `backend` area under both
//! compilers' code (Cranelift at "speed"), every kernel's results first
//! checked bit for bit against our code, `rustc -O` and the interpreter.
//!
//! How the IR maps to CLIF. Registers are SSA values, block parameters
//! are Cranelift block parameters, and blocks are lowered in reverse
//! postorder (so a definition is always lowered before its uses, even when
//! a dominating block comes later in the function). `i8`/`u8`/`bool` are
//! `I8`, 16- and 32-bit integers `I16`/`I32`, pointers `I64`, and
//! signedness lives in the operations, as in the IR. Calls between
//! instantiations of one batch are calls between functions of the same
//! `JITModule`; `native` imports are imported symbols the `JITBuilder`
//! binds to the same libc addresses our backend calls.
//!
//! The checks our backend emits are all there, as Cranelift traps instead
//! of calls to a trap handler (no kernel input traps; the hot path is the
//! same test and branch either way): a null test of every load and store
//! address and of every indirect call target (`trapz`, user code 1), a
//! zero-divisor test before every integer `div`/`rem` (`trapz`,
//! `INTEGER_DIVISION_BY_ZERO`) with a divisor of −1 special-cased so that
//! `MIN / -1` wraps as the IR defines (Cranelift's `sdiv` would trap), and
//! `trap N` as `trap` with user code N + 2 (capped at 250).
//!
//! Settings are what a JIT user picks: the host ISA from
//! `cranelift-native`, the IR verifier off (the input is verified IR),
//! everything else at Cranelift's defaults. One `JITModule` per
//! configuration is kept across compilations, as a loader compiling one
//! miss at a time would keep it (each compilation still maps and protects
//! its own memory when finalized); a row also times a fresh module and ISA
//! per compilation.
//!
//! The lowering is tested against the interpreter on every scalar
//! operation (`cargo test --manifest-path bench/Cargo.toml`).
//! `SMFJIT_BENCH_SHOW_CLIF=1` prints the CLIF and machine code of the
//! kernels; `SMFJIT_BENCH_CRANELIFT_PROFILE` repeats one compilation for a
//! profiler.

#![allow(unsafe_code)]

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    self as clif, AbiParam, BlockArg, FuncRef, InstBuilder, MemFlagsData, TrapCode, types,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, default_libcall_names};
use execmem::Strategy;
use jit::instantiate::Instance;
use jit::interp::{Interpreter, Value};
use jit::ir::{
    BinOp, BlockCall, Callee, CmpOp, IntType, Library, Literal, Op, Reg, Signature, TemplateName,
    Terminator, Type, UnOp,
};

use crate::backend::{COMPILE_RUNS, Compiler, Imports, Runner, kernel_suite, natives};
use crate::harness::{Report, Row, Stats, fmt_duration, measure};

/// A Cranelift configuration: what a JIT user sets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// The `opt_level` flag: "speed" or "none".
    opt_level: &'static str,
    /// The `regalloc_algorithm` flag: "backtracking" or "single_pass".
    regalloc: &'static str,
    /// The `unwind_info` flag (Cranelift's default: on).
    unwind_info: bool,
    /// `cranelift-jit`'s arena memory provider (one reservation, no
    /// mapping per finalization) instead of its default system provider.
    arena: bool,
}

impl Settings {
    const SPEED: Settings = Settings {
        opt_level: "speed",
        regalloc: "backtracking",
        unwind_info: true,
        arena: false,
    };
    const NONE: Settings = Settings {
        opt_level: "none",
        ..Settings::SPEED
    };
    const NONE_SINGLE_PASS: Settings = Settings {
        regalloc: "single_pass",
        ..Settings::NONE
    };
    const NONE_SINGLE_PASS_NO_UNWIND: Settings = Settings {
        unwind_info: false,
        ..Settings::NONE_SINGLE_PASS
    };
    const NONE_SINGLE_PASS_NO_UNWIND_ARENA: Settings = Settings {
        arena: true,
        ..Settings::NONE_SINGLE_PASS_NO_UNWIND
    };

    fn label(self) -> String {
        let mut label = self.opt_level.to_owned();
        if self.regalloc != "backtracking" {
            label = format!("{label}+{}", self.regalloc);
        }
        if !self.unwind_info {
            label.push_str(", no unwind info");
        }
        if self.arena {
            label.push_str(", arena memory");
        }
        label
    }
}

/// Bytes of address space the arena memory provider reserves: room for
/// every compilation of a measurement (it never reuses memory).
const ARENA_RESERVE: usize = 1 << 30;

/// Null pointers trap with this user code, explicit traps with N + 2.
const NULL_TRAP: u8 = 1;

/// A `cranelift-jit` compiler for instantiated templates. One `JITModule`
/// (and its ISA) is kept across compilations, as a loader compiling one
/// miss at a time would keep it; every compilation declares its functions
/// anew (anonymously, so the same symbol can be compiled again) and
/// finalizes them, which maps and protects their memory.
pub(crate) struct Cranelift {
    module: JITModule,
    ctx: cranelift_codegen::Context,
    builder: FunctionBuilderContext,
    /// Print the CLIF and the machine code of every function compiled
    /// (`SMFJIT_BENCH_SHOW_CLIF` set).
    show: bool,
}

impl Cranelift {
    /// A module for the host with `settings`, the IR verifier off (the
    /// input is verified IR; a production JIT does not re-verify) and
    /// libc's allocation functions bound as imports.
    ///
    /// # Panics
    /// When the host is not supported or a flag is rejected.
    pub(crate) fn new(settings: Settings) -> Self {
        let flags = [
            ("opt_level", settings.opt_level),
            ("regalloc_algorithm", settings.regalloc),
            ("enable_verifier", "false"),
            (
                "unwind_info",
                if settings.unwind_info {
                    "true"
                } else {
                    "false"
                },
            ),
        ];
        let mut builder =
            JITBuilder::with_flags(&flags, default_libcall_names()).expect("host ISA");
        if settings.arena {
            let arena = cranelift_jit::ArenaMemoryProvider::new_with_size(ARENA_RESERVE)
                .expect("arena reservation");
            builder.memory_provider(Box::new(arena));
        }
        for (name, address) in natives() {
            builder.symbol(name, address as usize as *const u8);
        }
        let module = JITModule::new(builder);
        let ctx = module.make_context();
        Cranelift {
            module,
            ctx,
            builder: FunctionBuilderContext::new(),
            show: false,
        }
    }

    /// Lowers every instance of a batch to CLIF, compiles and finalizes
    /// them, and returns their entry points in batch order. Calls between
    /// members of the batch stay inside the module.
    ///
    /// # Errors
    /// An operation that is not lowered (one instantiation removes), an
    /// unresolved callee, or Cranelift's own errors.
    pub(crate) fn compile(&mut self, batch: &[&Instance]) -> Result<Vec<u64>, String> {
        let ids = self.declare(batch)?;
        for (inst, &id) in batch.iter().zip(&ids) {
            self.lower(inst, batch, &ids)?;
            if self.show {
                println!("{}\n{}", inst.symbol, self.ctx.func.display());
                self.ctx.set_disasm(true);
            }
            self.module
                .define_function(id, &mut self.ctx)
                .map_err(|e| format!("{}: {e:?}", inst.symbol))?;
            if let Some(code) = self.ctx.compiled_code().filter(|_| self.show) {
                println!("{}", code.vcode.as_deref().unwrap_or(""));
            }
            self.module.clear_context(&mut self.ctx);
        }
        self.module
            .finalize_definitions()
            .map_err(|e| e.to_string())?;
        Ok(ids
            .iter()
            .map(|&id| self.module.get_finalized_function(id) as usize as u64)
            .collect())
    }

    fn declare(&mut self, batch: &[&Instance]) -> Result<Vec<FuncId>, String> {
        batch
            .iter()
            .map(|inst| {
                let sig = signature(&self.module, &inst.function.sig);
                self.module
                    .declare_anonymous_function(&sig)
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Builds the CLIF of `inst` into the context (the first step of
    /// [`Cranelift::compile`], also timed alone).
    fn lower(
        &mut self,
        inst: &Instance,
        batch: &[&Instance],
        ids: &[FuncId],
    ) -> Result<(), String> {
        self.ctx.func.signature = signature(&self.module, &inst.function.sig);
        let b = FunctionBuilder::new(&mut self.ctx.func, &mut self.builder);
        Lowering {
            b,
            module: &mut self.module,
            inst,
            members: batch.iter().map(|i| i.symbol.as_str()).zip(ids).collect(),
            values: vec![None; inst.function.reg_count()],
            blocks: Vec::new(),
            refs: Vec::new(),
        }
        .function()
        .map_err(|e| format!("{}: {e}", inst.symbol))
    }

    /// Lowers `inst` alone and throws the CLIF away: the frontend's share
    /// of a compilation.
    fn lower_only(&mut self, inst: &Instance, batch: &[&Instance], ids: &[FuncId]) -> usize {
        self.lower(inst, batch, ids).expect("lowers");
        let size = self.ctx.func.dfg.num_insts();
        self.module.clear_context(&mut self.ctx);
        size
    }

    /// Releases the module's code.
    ///
    /// # Safety
    /// No pointer this compiler returned may be used afterwards.
    unsafe fn free(self) {
        // SAFETY: the caller promises the code is no longer used.
        unsafe { self.module.free_memory() };
    }
}

fn clif_type(ty: &Type) -> clif::Type {
    match ty {
        Type::Int(IntType::I8 | IntType::U8) | Type::Bool => types::I8,
        Type::Int(IntType::I16 | IntType::U16) => types::I16,
        Type::Int(IntType::I32 | IntType::U32) => types::I32,
        Type::F32 => types::F32,
        Type::F64 => types::F64,
        // 64-bit integers and every pointer; structs never live in
        // registers (the verifier rejects them there).
        _ => types::I64,
    }
}

fn signature(module: &JITModule, sig: &Signature) -> clif::Signature {
    let mut s = module.make_signature();
    s.params
        .extend(sig.params.iter().map(|t| AbiParam::new(clif_type(t))));
    s.returns
        .extend(sig.ret.iter().map(|t| AbiParam::new(clif_type(t))));
    s
}

fn int_cc(op: CmpOp, signed: bool) -> IntCC {
    match (op, signed) {
        (CmpOp::Eq, _) => IntCC::Equal,
        (CmpOp::Ne, _) => IntCC::NotEqual,
        (CmpOp::Lt, true) => IntCC::SignedLessThan,
        (CmpOp::Le, true) => IntCC::SignedLessThanOrEqual,
        (CmpOp::Gt, true) => IntCC::SignedGreaterThan,
        (CmpOp::Ge, true) => IntCC::SignedGreaterThanOrEqual,
        (CmpOp::Lt, false) => IntCC::UnsignedLessThan,
        (CmpOp::Le, false) => IntCC::UnsignedLessThanOrEqual,
        (CmpOp::Gt, false) => IntCC::UnsignedGreaterThan,
        (CmpOp::Ge, false) => IntCC::UnsignedGreaterThanOrEqual,
    }
}

/// IEEE comparisons: ordered except `ne`, which is true on NaN.
fn float_cc(op: CmpOp) -> FloatCC {
    match op {
        CmpOp::Eq => FloatCC::Equal,
        CmpOp::Ne => FloatCC::NotEqual,
        CmpOp::Lt => FloatCC::LessThan,
        CmpOp::Le => FloatCC::LessThanOrEqual,
        CmpOp::Gt => FloatCC::GreaterThan,
        CmpOp::Ge => FloatCC::GreaterThanOrEqual,
    }
}

/// The bits of an integer constant for a type of `bits` width, as
/// Cranelift wants narrow immediates: zero-extended.
fn imm(value: i128, bits: u32) -> i64 {
    let raw = value as u64;
    if bits >= 64 {
        raw as i64
    } else {
        (raw & ((1u64 << bits) - 1)) as i64
    }
}

/// The `k`th successor of a block.
fn successor(term: &Terminator, k: usize) -> Option<usize> {
    let target = match (term, k) {
        (Terminator::Br(t), 0) => t,
        (Terminator::CondBr { then, .. }, 0) => then,
        (Terminator::CondBr { otherwise, .. }, 1) => otherwise,
        _ => return None,
    };
    Some(target.block.0 as usize)
}

/// The blocks reachable from the entry in reverse postorder: every block
/// after the blocks that dominate it.
fn reverse_postorder(f: &jit::ir::Function) -> Vec<usize> {
    let mut seen = vec![false; f.blocks.len()];
    let mut post = Vec::with_capacity(f.blocks.len());
    // (block, index of the next successor to visit)
    let mut stack = vec![(0usize, 0usize)];
    seen[0] = true;
    while let Some(top) = stack.last_mut() {
        let (b, k) = *top;
        top.1 += 1;
        match successor(&f.blocks[b].term, k) {
            Some(s) if !seen[s] => {
                seen[s] = true;
                stack.push((s, 0));
            }
            Some(_) => {}
            None => {
                post.push(b);
                stack.pop();
            }
        }
    }
    post.reverse();
    post
}

/// The lowering of one instance into one CLIF function.
struct Lowering<'a, 'm> {
    b: FunctionBuilder<'a>,
    module: &'m mut JITModule,
    inst: &'m Instance,
    /// The batch: symbol → function.
    members: Vec<(&'m str, &'m FuncId)>,
    /// The CLIF value of every register, once lowered.
    values: Vec<Option<clif::Value>>,
    blocks: Vec<clif::Block>,
    /// Functions already imported into this one.
    refs: Vec<(FuncId, FuncRef)>,
}

impl Lowering<'_, '_> {
    fn function(mut self) -> Result<(), String> {
        let f = &*self.inst.function;
        for (k, block) in f.blocks.iter().enumerate() {
            let cb = self.b.create_block();
            if k == 0 {
                self.b.append_block_params_for_function_params(cb);
                for (i, &v) in self.b.block_params(cb).iter().enumerate() {
                    self.values[i] = Some(v);
                }
            }
            for (r, ty) in &block.params {
                let v = self.b.append_block_param(cb, clif_type(ty));
                self.values[r.0 as usize] = Some(v);
            }
            self.blocks.push(cb);
        }
        for k in reverse_postorder(f) {
            let block = &f.blocks[k];
            self.b.switch_to_block(self.blocks[k]);
            for inst in &block.insts {
                let v = self.op(&inst.op)?;
                if let (Some(r), Some(v)) = (inst.result, v) {
                    self.values[r.0 as usize] = Some(v);
                }
            }
            self.terminator(&block.term)?;
        }
        self.b.seal_all_blocks();
        self.b.finalize(self.module.target_config());
        Ok(())
    }

    fn v(&self, r: Reg) -> Result<clif::Value, String> {
        self.values
            .get(r.0 as usize)
            .copied()
            .flatten()
            .ok_or_else(|| format!("%{} used before it is lowered", r.0))
    }

    fn args(&self, call: &BlockCall) -> Result<Vec<BlockArg>, String> {
        call.args
            .iter()
            .map(|&r| self.v(r).map(BlockArg::Value))
            .collect()
    }

    fn terminator(&mut self, term: &Terminator) -> Result<(), String> {
        match term {
            Terminator::Br(t) => {
                let args = self.args(t)?;
                self.b.ins().jump(self.blocks[t.block.0 as usize], &args);
            }
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            } => {
                let c = self.v(*cond)?;
                let (ta, oa) = (self.args(then)?, self.args(otherwise)?);
                let (tb, ob) = (
                    self.blocks[then.block.0 as usize],
                    self.blocks[otherwise.block.0 as usize],
                );
                self.b.ins().brif(c, tb, &ta, ob, &oa);
            }
            Terminator::Ret(None) => {
                self.b.ins().return_(&[]);
            }
            Terminator::Ret(Some(r)) => {
                let v = self.v(*r)?;
                self.b.ins().return_(&[v]);
            }
            Terminator::Trap(code) => {
                let user = u8::try_from(code.saturating_add(2)).unwrap_or(250).min(250);
                self.b.ins().trap(TrapCode::unwrap_user(user));
            }
        }
        Ok(())
    }

    fn op(&mut self, op: &Op) -> Result<Option<clif::Value>, String> {
        let v = match op {
            Op::Const { ty, value } => self.constant(ty, *value)?,
            Op::Unary { op, ty, arg } => {
                let a = self.v(*arg)?;
                match (op, ty) {
                    (UnOp::Neg, t) if t.is_float() => self.b.ins().fneg(a),
                    (UnOp::Neg, _) => self.b.ins().ineg(a),
                    (UnOp::Not, Type::Bool) => self.b.ins().bxor_imm_u(a, 1),
                    (UnOp::Not, _) => self.b.ins().bnot(a),
                }
            }
            Op::Binary { op, ty, lhs, rhs } => {
                let (a, b) = (self.v(*lhs)?, self.v(*rhs)?);
                self.binary(*op, ty, a, b)?
            }
            Op::Cmp { op, ty, lhs, rhs } => {
                let (a, b) = (self.v(*lhs)?, self.v(*rhs)?);
                match ty {
                    t if t.is_float() => self.b.ins().fcmp(float_cc(*op), a, b),
                    Type::Int(t) => self.b.ins().icmp(int_cc(*op, t.signed()), a, b),
                    // bool, pointers: unsigned.
                    _ => self.b.ins().icmp(int_cc(*op, false), a, b),
                }
            }
            Op::Cast { from, to, arg } => {
                let a = self.v(*arg)?;
                self.cast(from, to, a)?
            }
            Op::Bitcast { from, to, arg } => {
                let a = self.v(*arg)?;
                if clif_type(from) == clif_type(to) {
                    a
                } else {
                    self.b.ins().bitcast(clif_type(to), MemFlagsData::new(), a)
                }
            }
            Op::Select {
                cond,
                if_true,
                if_false,
                ..
            } => {
                let (c, t, f) = (self.v(*cond)?, self.v(*if_true)?, self.v(*if_false)?);
                self.b.ins().select(c, t, f)
            }
            Op::Load { ty, addr, index } => {
                let a = self.address(ty, *addr, *index)?;
                let v = self.b.ins().load(clif_type(ty), MemFlagsData::new(), a, 0);
                if *ty == Type::Bool {
                    // The interpreter keeps bit 0 of a loaded byte.
                    self.b.ins().band_imm_u(v, 1)
                } else {
                    v
                }
            }
            Op::Store {
                ty,
                addr,
                index,
                value,
            } => {
                let a = self.address(ty, *addr, *index)?;
                let v = self.v(*value)?;
                self.b.ins().store(MemFlagsData::new(), v, a, 0);
                return Ok(None);
            }
            Op::Addr {
                base,
                index,
                scale,
                disp,
                ..
            } => {
                let mut a = self.v(*base)?;
                if let Some(i) = index {
                    let i = self.v(*i)?;
                    let scaled = self.scaled(i, *scale);
                    a = self.b.ins().iadd(a, scaled);
                }
                if *disp != 0 {
                    a = self.b.ins().iadd_imm_s(a, *disp);
                }
                a
            }
            Op::Call { callee, sig, args } => {
                let f = self.callee(callee, sig)?;
                let args = args
                    .iter()
                    .map(|&r| self.v(r))
                    .collect::<Result<Vec<_>, _>>()?;
                let call = self.b.ins().call(f, &args);
                return Ok(self.b.inst_results(call).first().copied());
            }
            Op::CallIndirect { sig, target, args } => {
                let t = self.v(*target)?;
                self.b.ins().trapz(t, TrapCode::unwrap_user(NULL_TRAP));
                let sig = signature(self.module, sig);
                let sig = self.b.import_signature(sig);
                let args = args
                    .iter()
                    .map(|&r| self.v(r))
                    .collect::<Result<Vec<_>, _>>()?;
                let call = self.b.ins().call_indirect(sig, t, &args);
                return Ok(self.b.inst_results(call).first().copied());
            }
            Op::FuncAddr { callee, sig } => {
                let f = self.callee(callee, sig)?;
                self.b.ins().func_addr(types::I64, f)
            }
            Op::SizeOf { .. } | Op::AlignOf { .. } | Op::ElemAddr { .. } | Op::FieldAddr { .. } => {
                return Err("a layout operation survived instantiation".to_owned());
            }
            // The comparison kernels use plain memory only: every other
            // operation is one on shared memories and tables.
            _ => {
                return Err("shared memories and tables are not compared".to_owned());
            }
        };
        Ok(Some(v))
    }

    fn constant(&mut self, ty: &Type, value: Literal) -> Result<clif::Value, String> {
        Ok(match (ty, value) {
            (Type::Int(t), Literal::Int(n)) => self.b.ins().iconst(clif_type(ty), imm(n, t.bits())),
            (Type::F32, Literal::Int(n)) => self.b.ins().f32const(n as f32),
            (Type::F64, Literal::Int(n)) => self.b.ins().f64const(n as f64),
            (Type::F32, Literal::Float(bits)) => self.b.ins().f32const(f64::from_bits(bits) as f32),
            (Type::F64, Literal::Float(bits)) => self.b.ins().f64const(f64::from_bits(bits)),
            (Type::Bool, Literal::Bool(v)) => self.b.ins().iconst(types::I8, i64::from(v)),
            (t, Literal::Null) if t.is_pointer() => self.b.ins().iconst(types::I64, 0),
            (t, v) => return Err(format!("constant {v:?} of type {t}")),
        })
    }

    fn binary(
        &mut self,
        op: BinOp,
        ty: &Type,
        a: clif::Value,
        b: clif::Value,
    ) -> Result<clif::Value, String> {
        let ins = self.b.ins();
        if ty.is_float() {
            return match op {
                BinOp::Add => Ok(ins.fadd(a, b)),
                BinOp::Sub => Ok(ins.fsub(a, b)),
                BinOp::Mul => Ok(ins.fmul(a, b)),
                BinOp::Div => Ok(ins.fdiv(a, b)),
                other => Err(format!("{other:?} on {ty}")),
            };
        }
        let signed = matches!(ty, Type::Int(t) if t.signed());
        Ok(match op {
            BinOp::Add => ins.iadd(a, b),
            BinOp::Sub => ins.isub(a, b),
            BinOp::Mul => ins.imul(a, b),
            BinOp::Div | BinOp::Rem => return Ok(self.divide(op, ty, signed, a, b)),
            BinOp::And => ins.band(a, b),
            BinOp::Or => ins.bor(a, b),
            BinOp::Xor => ins.bxor(a, b),
            // Cranelift masks the count by the width, as the IR does.
            BinOp::Shl => ins.ishl(a, b),
            BinOp::Shr if signed => ins.sshr(a, b),
            BinOp::Shr => ins.ushr(a, b),
        })
    }

    /// Integer `div`/`rem`: trap on a zero divisor; for signed types a
    /// divisor of −1 gives `-a` and 0 (so `MIN / -1` wraps, where
    /// Cranelift's `sdiv` traps).
    fn divide(
        &mut self,
        op: BinOp,
        ty: &Type,
        signed: bool,
        a: clif::Value,
        b: clif::Value,
    ) -> clif::Value {
        self.b.ins().trapz(b, TrapCode::INTEGER_DIVISION_BY_ZERO);
        let t = clif_type(ty);
        if !signed {
            return match op {
                BinOp::Div => self.b.ins().udiv(a, b),
                _ => self.b.ins().urem(a, b),
            };
        }
        let bits = t.bits();
        let minus_one = self.b.ins().iconst(t, imm(-1, bits));
        let is_minus_one = self.b.ins().icmp(IntCC::Equal, b, minus_one);
        let one = self.b.ins().iconst(t, 1);
        let safe = self.b.ins().select(is_minus_one, one, b);
        let (result, special) = match op {
            BinOp::Div => (self.b.ins().sdiv(a, safe), self.b.ins().ineg(a)),
            _ => (self.b.ins().srem(a, safe), self.b.ins().iconst(t, 0)),
        };
        self.b.ins().select(is_minus_one, special, result)
    }

    fn cast(&mut self, from: &Type, to: &Type, a: clif::Value) -> Result<clif::Value, String> {
        let (ft, tt) = (clif_type(from), clif_type(to));
        let ins = self.b.ins();
        Ok(match (from, to) {
            (Type::Int(_) | Type::Bool, Type::Int(_)) => {
                let source_signed = matches!(from, Type::Int(t) if t.signed());
                if tt.bits() > ft.bits() {
                    if source_signed {
                        ins.sextend(tt, a)
                    } else {
                        ins.uextend(tt, a)
                    }
                } else if tt.bits() < ft.bits() {
                    ins.ireduce(tt, a)
                } else {
                    a
                }
            }
            (Type::Int(f), t) if t.is_float() => {
                if *f == IntType::U64 {
                    ins.fcvt_from_uint(tt, a)
                } else {
                    // Every other integer fits an i64 exactly: one rounding.
                    let wide = match (f.signed(), ft.bits()) {
                        (_, 64) => a,
                        (true, _) => ins.sextend(types::I64, a),
                        (false, _) => ins.uextend(types::I64, a),
                    };
                    self.b.ins().fcvt_from_sint(tt, wide)
                }
            }
            (f, Type::Int(t)) if f.is_float() => self.saturate(*t, a),
            (Type::F32, Type::F64) => ins.fpromote(types::F64, a),
            (Type::F64, Type::F32) => ins.fdemote(types::F32, a),
            (f, t) if f == t => a,
            (f, t) if f.is_pointer() || t.is_pointer() => a,
            (f, t) => return Err(format!("cast from {f} to {t}")),
        })
    }

    /// Float → integer, saturating like Rust's `as` (NaN → 0): Cranelift's
    /// saturating conversions to 32 or 64 bits, clamped for 8 and 16.
    fn saturate(&mut self, t: IntType, a: clif::Value) -> clif::Value {
        let to = clif_type(&Type::Int(t));
        let ins = self.b.ins();
        match (t.bits(), t.signed()) {
            (32 | 64, true) => ins.fcvt_to_sint_sat(to, a),
            (32 | 64, false) => ins.fcvt_to_uint_sat(to, a),
            (_, signed) => {
                let (lo, hi) = (t.min_value() as i64, t.max_value() as i64);
                let wide = if signed {
                    ins.fcvt_to_sint_sat(types::I32, a)
                } else {
                    ins.fcvt_to_uint_sat(types::I32, a)
                };
                let hi = self.b.ins().iconst(types::I32, hi);
                let clamped = if signed {
                    let lo = self.b.ins().iconst(types::I32, imm(i128::from(lo), 32));
                    let up = self.b.ins().smin(wide, hi);
                    self.b.ins().smax(up, lo)
                } else {
                    self.b.ins().umin(wide, hi)
                };
                self.b.ins().ireduce(to, clamped)
            }
        }
    }

    fn scaled(&mut self, index: clif::Value, scale: u64) -> clif::Value {
        match scale {
            1 => index,
            s if s.is_power_of_two() => self
                .b
                .ins()
                .ishl_imm_u(index, i64::from(s.trailing_zeros())),
            s => self.b.ins().imul_imm_u(index, s as i64),
        }
    }

    /// `base + index * size_of(ty)`, trapping on null like our backend and
    /// the interpreter.
    fn address(&mut self, ty: &Type, base: Reg, index: Option<Reg>) -> Result<clif::Value, String> {
        let size = ty
            .scalar_size()
            .ok_or_else(|| format!("memory access of {ty}"))?;
        let mut a = self.v(base)?;
        if let Some(i) = index {
            let i = self.v(i)?;
            let scaled = self.scaled(i, size);
            a = self.b.ins().iadd(a, scaled);
        }
        self.b.ins().trapz(a, TrapCode::unwrap_user(NULL_TRAP));
        Ok(a)
    }

    /// The function a direct call or `func_addr` names: a member of the
    /// batch, or a libc import.
    fn callee(&mut self, callee: &Callee, sig: &Signature) -> Result<FuncRef, String> {
        let member = match callee {
            Callee::Symbol(s) => self.members.iter().find(|(m, _)| m == s),
            _ => None,
        };
        let id = match (member, callee) {
            (Some(&(_, &id)), _) => id,
            (None, Callee::Symbol(name) | Callee::Import(name))
                if natives().iter().any(|(n, _)| n == name) =>
            {
                let sig = signature(self.module, sig);
                self.module
                    .declare_function(name, Linkage::Import, &sig)
                    .map_err(|e| e.to_string())?
            }
            (None, other) => return Err(format!("unresolved callee {other:?}")),
        };
        if let Some(&(_, r)) = self.refs.iter().find(|(i, _)| *i == id) {
            return Ok(r);
        }
        let r = self.module.declare_func_in_func(id, self.b.func);
        self.refs.push((id, r));
        Ok(r)
    }
}

// ---- the measurements -----------------------------------------------------

/// How a cold case's root function is called to check it.
#[derive(Clone, Copy)]
enum Shape {
    /// `(ptr<i32>, i64)`, sorting in place.
    SortI32,
    /// `(ptr<i64>, i64) -> i64`.
    MixI64,
}

/// A function compiled cold: the `jit` area's miss or one of the
/// `backend` area's `mix` templates.
struct ColdCase {
    what: String,
    lib: Library,
    /// The root first, then what it calls.
    insts: Vec<Instance>,
    shape: Shape,
    /// Whether the §8 target (about 50 instructions) applies.
    target: bool,
}

impl ColdCase {
    /// What the root computes on fixed inputs: through the interpreter
    /// (`entry` `None`) or through compiled code.
    ///
    /// # Safety
    /// `entry` must be this case's root compiled for System V.
    unsafe fn outcome(&self, entry: Option<u64>) -> Vec<u64> {
        const LEN: usize = 300;
        let r = crate::backend::interpreter_resolver(&self.lib);
        let root = &self.insts[0].function;
        let interpret = |args: &[Value]| {
            // SAFETY: the pointer argument points to `LEN` live elements.
            unsafe { Interpreter::new(&r).call(root, args) }.expect("interprets")
        };
        let n = Value::I64(LEN as i64);
        match self.shape {
            Shape::SortI32 => {
                let mut xs: Vec<i32> = (0..LEN as i32).map(|i| (i * 7919) % 1009 - 500).collect();
                match entry {
                    Some(e) => {
                        // SAFETY: the root is `quicksort$i32` (the caller's promise).
                        let f: extern "C" fn(*mut i32, i64) =
                            unsafe { std::mem::transmute(e as usize) };
                        f(xs.as_mut_ptr(), LEN as i64);
                    }
                    None => {
                        interpret(&[Value::Ptr(xs.as_mut_ptr() as usize as u64), n]);
                    }
                }
                xs.iter().map(|&x| x as u64).collect()
            }
            Shape::MixI64 => {
                let xs: Vec<i64> = (0..LEN as i64).map(|i| i * 0x9E37_79B9 - 77).collect();
                let got = match entry {
                    Some(e) => {
                        // SAFETY: the root is `mix$i64` (the caller's promise).
                        let f: extern "C" fn(*const i64, i64) -> i64 =
                            unsafe { std::mem::transmute(e as usize) };
                        f(xs.as_ptr(), LEN as i64)
                    }
                    None => match interpret(&[Value::Ptr(xs.as_ptr() as usize as u64), n]) {
                        Some(Value::I64(v)) => v,
                        other => panic!("mix$i64 returned {other:?}"),
                    },
                };
                vec![got as u64]
            }
        }
    }
}

fn cold_cases() -> Vec<ColdCase> {
    let lib = jit::library::collections().expect("library");
    let pair = crate::backend::instances(
        &lib,
        TemplateName::free("quicksort"),
        &[Type::Int(IntType::I32)],
    );
    let names: Vec<&str> = pair.iter().map(|i| i.symbol.as_str()).collect();
    assert_eq!(names, ["quicksort$i32", "insertion_sort$i32"]);
    // Counted as the `jit` area counts them: terminators included.
    let count: usize = pair
        .iter()
        .map(|i| i.function.inst_count() + i.function.blocks.len())
        .sum();
    let mut cases = vec![ColdCase {
        what: format!("quicksort$i32 + insertion_sort$i32 ({count} IR insts)"),
        lib,
        insts: pair,
        shape: Shape::SortI32,
        target: true,
    }];
    for rounds in [1usize, 14, 64] {
        let lib = jit::text::parse_library(&crate::backend::mix_template(rounds)).expect("parses");
        jit::verify::verify_library(&lib).expect("verifies");
        let insts = crate::backend::instances(&lib, TemplateName::free("mix"), &[Type::I64]);
        let count = insts[0].function.inst_count();
        cases.push(ColdCase {
            what: format!("mix$i64 ({count} insts)"),
            lib,
            insts,
            shape: Shape::MixI64,
            target: rounds == 14,
        });
    }
    cases
}

/// Cranelift configurations compared for compile time, from its defaults
/// to the fastest settings a JIT user can choose.
const CONFIGS: [Settings; 5] = [
    Settings::SPEED,
    Settings::NONE,
    Settings::NONE_SINGLE_PASS,
    Settings::NONE_SINGLE_PASS_NO_UNWIND,
    Settings::NONE_SINGLE_PASS_NO_UNWIND_ARENA,
];

/// Cranelift's compile time for the `jit` area's miss (`quicksort$i32`
/// with `insertion_sort$i32`) in its fastest configuration of
/// [`CONFIGS`], each checked against the interpreter first: the label of
/// that configuration and its times.
pub(crate) fn fastest_on_the_miss() -> (String, Stats) {
    let case = cold_cases().swap_remove(0);
    let refs: Vec<&Instance> = case.insts.iter().collect();
    // SAFETY: no entry point: the interpreter.
    let want = unsafe { case.outcome(None) };
    CONFIGS
        .iter()
        .map(|&settings| {
            let mut cl = Cranelift::new(settings);
            let entry = cl.compile(&refs).expect("compiles")[0];
            // SAFETY: the root of this case, compiled by Cranelift.
            let got = unsafe { case.outcome(Some(entry)) };
            assert!(
                got == want,
                "cranelift-jit ({}) disagrees",
                settings.label()
            );
            let stats = measure(COMPILE_RUNS, || cl.compile(&refs).expect("compiles"));
            // SAFETY: the code compiled while measuring is never called.
            unsafe { cl.free() };
            (settings.label(), stats)
        })
        .min_by(|a, b| a.1.median.cmp(&b.1.median))
        .expect("configurations")
}

fn cold_compile(report: &mut Report) {
    let ours = Compiler::new(Strategy::Mprotect);
    let dual = Compiler::new(Strategy::DualMapping);
    let tested = Compiler::with_null_checks(Strategy::Mprotect, false);
    for case in cold_cases() {
        let ColdCase {
            what,
            insts,
            target,
            ..
        } = &case;
        let target = *target;
        let refs: Vec<&Instance> = insts.iter().collect();
        // SAFETY: no entry point: the interpreter.
        let want = unsafe { case.outcome(None) };
        let batch = ours.batch(insts);
        let entry = batch.function(&insts[0].symbol).expect("root").address();
        // SAFETY: the root of this case, compiled by our backend.
        let got = unsafe { case.outcome(Some(entry)) };
        assert!(
            got == want,
            "{what}: our backend disagrees with the interpreter"
        );
        let compile_ours = |c: &Compiler| {
            measure(COMPILE_RUNS, || {
                c.backend
                    .compile_batch(&c.memory, &refs, &mut Imports)
                    .expect("compiles")
            })
        };
        let mine = compile_ours(&ours);
        let mine_dual = compile_ours(&dual);
        let mine_tested = compile_ours(&tested);
        let mut theirs: Vec<(Settings, Stats)> = Vec::new();
        for settings in CONFIGS {
            let mut cl = Cranelift::new(settings);
            let entry = cl.compile(&refs).expect("compiles")[0];
            // SAFETY: the root of this case, compiled by Cranelift.
            let got = unsafe { case.outcome(Some(entry)) };
            assert!(
                got == want,
                "{what}: cranelift-jit ({}) disagrees with the interpreter",
                settings.label()
            );
            let stats = measure(COMPILE_RUNS, || cl.compile(&refs).expect("compiles"));
            // SAFETY: the code compiled while measuring is never called.
            unsafe { cl.free() };
            theirs.push((settings, stats));
        }
        report.row(
            Row::new(
                "cranelift",
                format!("cold compile → pointer, {what}: ours (mprotect)"),
                fmt_duration(mine.median),
            )
            .baseline(format!("p99 {}", fmt_duration(mine.p99)))
            .ratio(format!("dual {}", fmt_duration(mine_dual.median))),
        );
        report.row(
            Row::new(
                "cranelift",
                format!("  ours with explicit null tests, {what}"),
                fmt_duration(mine_tested.median),
            )
            .baseline(format!("implicit {}", fmt_duration(mine.median)))
            .ratio(format!(
                "{:.2}×",
                mine_tested.median_ns() / mine.median_ns()
            )),
        );
        for &(settings, stats) in &theirs {
            let faster = stats.median_ns() / mine.median_ns();
            report.row(
                Row::new(
                    "cranelift",
                    format!("  cranelift-jit opt_level {}", settings.label()),
                    fmt_duration(stats.median),
                )
                .baseline(format!("p99 {}", fmt_duration(stats.p99)))
                .ratio(format!("ours {faster:.1}× faster")),
            );
        }
        let (fastest, best) = theirs
            .iter()
            .min_by(|a, b| a.1.median.cmp(&b.1.median))
            .copied()
            .expect("configurations");
        let faster = best.median_ns() / mine.median_ns();
        let row = Row::new(
            "cranelift",
            format!("  ours vs fastest cranelift ({})", fastest.label()),
            format!("{faster:.1}× faster"),
        )
        .baseline(fmt_duration(best.median))
        .ratio(format!(
            "p99 {:.1}×",
            best.p99.as_secs_f64() / mine.p99.as_secs_f64()
        ));
        // The target is read on the whole re-miss, in the `jit` area.
        report.row(row);
        if target {
            // Our code in pages shared between publications (no mapping or
            // protection change per compilation); Cranelift's still maps
            // and protects.
            report.row(
                Row::new(
                    "cranelift",
                    format!(
                        "  ours (dual mapping) vs fastest cranelift ({})",
                        fastest.label()
                    ),
                    format!("{:.1}× faster", best.median_ns() / mine_dual.median_ns()),
                )
                .baseline(fmt_duration(best.median))
                .ratio(format!("ours {}", fmt_duration(mine_dual.median))),
            );
            frontend_share(report, &refs, &theirs);
        }
    }
    fresh_module(report);
}

/// How much of a Cranelift compilation is building the CLIF from our IR.
fn frontend_share(report: &mut Report, refs: &[&Instance], theirs: &[(Settings, Stats)]) {
    let mut cl = Cranelift::new(Settings::NONE);
    let ids = cl.declare(refs).expect("declares");
    let lower = measure(COMPILE_RUNS, || {
        refs.iter()
            .map(|i| cl.lower_only(i, refs, &ids))
            .sum::<usize>()
    });
    // SAFETY: nothing was finalized or called.
    unsafe { cl.free() };
    let none = theirs
        .iter()
        .find(|(s, _)| s.opt_level == "none" && s.regalloc == "backtracking")
        .map(|&(_, s)| s)
        .expect("measured at none");
    report.row(
        Row::new(
            "cranelift",
            "  of which: our IR → CLIF (cranelift-frontend)",
            fmt_duration(lower.median),
        )
        .ratio(format!(
            "{:.0}% of none",
            100.0 * lower.median_ns() / none.median_ns()
        )),
    );
}

/// One JITModule per compilation (a user who builds the ISA every time):
/// the cost of the module and ISA on top.
fn fresh_module(report: &mut Report) {
    let lib = jit::library::collections().expect("library");
    let insts = crate::backend::instances(
        &lib,
        TemplateName::free("quicksort"),
        &[Type::Int(IntType::I32)],
    );
    let refs: Vec<&Instance> = insts.iter().collect();
    let stats = measure(200, || {
        let mut cl = Cranelift::new(Settings::NONE_SINGLE_PASS);
        let entry = cl.compile(&refs).expect("compiles")[0];
        // SAFETY: the entry point is not called.
        unsafe { cl.free() };
        entry
    });
    report.row(
        Row::new(
            "cranelift",
            "  quicksort pair, fresh JITModule + ISA per compile (none+single_pass)",
            fmt_duration(stats.median),
        )
        .baseline(format!("p99 {}", fmt_duration(stats.p99))),
    );
}

fn kernels(report: &mut Report) {
    let lib = jit::library::collections().expect("library");
    let r = crate::backend::interpreter_resolver(&lib);
    let ours = Compiler::new(Strategy::Mprotect);
    let mut cl = Cranelift::new(Settings::SPEED);
    cl.show = std::env::var_os("SMFJIT_BENCH_SHOW_CLIF").is_some();
    let mut log_ratio = 0.0f64;
    let mut count = 0usize;
    for mut kernel in kernel_suite() {
        let insts = kernel.instances(&lib);
        let refs: Vec<&Instance> = insts.iter().collect();
        let batch = ours.batch(&insts);
        let entry = batch.function(&insts[0].symbol).expect("root").address();
        let theirs = cl.compile(&refs).expect("cranelift compiles")[0];
        // SAFETY: both are the kernel's own instantiation, compiled; `batch`
        // and `cl` outlive their use below.
        let (jit, clif) = unsafe { (Runner::compiled(entry), Runner::compiled(theirs)) };
        kernel.verify(&[
            ("our backend", jit),
            ("cranelift-jit", clif),
            ("the interpreter", Runner::Interpreter(&r)),
            ("rustc -O", Runner::Rust),
        ]);
        let times = kernel.race(&[jit, clif]);
        let ratio = times[0].median_ns() / times[1].median_ns();
        log_ratio += ratio.ln();
        count += 1;
        report.row(
            Row::new(
                "cranelift",
                format!("{}: ours / cranelift", kernel.label),
                fmt_duration(times[0].median),
            )
            .baseline(fmt_duration(times[1].median))
            .ratio(format!("{ratio:.2}×")),
        );
    }
    let geo = (log_ratio / count as f64).exp();
    report.row(
        Row::new(
            "cranelift",
            "kernel suite geomean: ours / cranelift-jit (speed)",
            format!("{geo:.2}×"),
        )
        .target("≤ 1.0× cranelift-jit", geo <= 1.0),
    );
    // SAFETY: every entry point of `cl` was last used above.
    unsafe { cl.free() };
}

/// Set to `ours`, `speed`, `none` or `single_pass` to compile the
/// quicksort pair `SMFJIT_BENCH_PROFILE_RUNS` times (default 20,000) with
/// that compiler and nothing else, under a profiler.
const PROFILE_ENV: &str = "SMFJIT_BENCH_CRANELIFT_PROFILE";

/// The profiling loop of [`PROFILE_ENV`].
fn profile(compiler: &str) {
    let runs = crate::harness::profile_runs(20_000);
    let case = cold_cases().swap_remove(0);
    let refs: Vec<&Instance> = case.insts.iter().collect();
    let stats = match compiler {
        "ours" => {
            let c = Compiler::new(Strategy::Mprotect);
            measure(runs, || {
                c.backend
                    .compile_batch(&c.memory, &refs, &mut Imports)
                    .expect("compiles")
            })
        }
        settings => {
            let settings = match settings {
                "speed" => Settings::SPEED,
                "none" => Settings::NONE,
                "single_pass" => Settings::NONE_SINGLE_PASS,
                "no_unwind" => Settings::NONE_SINGLE_PASS_NO_UNWIND,
                "arena" => Settings::NONE_SINGLE_PASS_NO_UNWIND_ARENA,
                other => panic!("{PROFILE_ENV}: unknown compiler '{other}'"),
            };
            let mut cl = Cranelift::new(settings);
            let stats = measure(runs, || cl.compile(&refs).expect("compiles"));
            // SAFETY: nothing compiled here is called.
            unsafe { cl.free() };
            stats
        }
    };
    println!(
        "{compiler}: {}, median {}",
        case.what,
        fmt_duration(stats.median)
    );
}

/// Runs both parts (or only the profiling loop when [`PROFILE_ENV`] is set).
pub fn run(report: &mut Report) {
    if let Ok(compiler) = std::env::var(PROFILE_ENV) {
        profile(&compiler);
        return;
    }
    cold_compile(report);
    kernels(report);
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit::interp::LibraryResolver;

    /// Every scalar type with a keyword, except `rawptr`.
    fn scalars() -> Vec<Type> {
        Type::scalars()
            .into_iter()
            .filter(|t| *t != Type::RawPtr)
            .collect()
    }

    fn numeric(t: &Type) -> bool {
        matches!(t, Type::Int(_)) || t.is_float()
    }

    /// Canonical bits of the values each type is tried with: zero, one,
    /// the edges, shift counts around the widths, and for floats signed
    /// zeros, NaN, infinities and values beyond every integer range.
    fn samples(t: &Type) -> Vec<u64> {
        match t {
            Type::Int(i) => {
                let mut v: Vec<i128> = vec![0, 1, 2, 7, 8, 9, 15, 16, 31, 33, 63, 65, -1, -8];
                v.extend([i.min_value(), i.max_value(), i.max_value() - 1]);
                v.retain(|x| (i.min_value()..=i.max_value()).contains(x));
                v.dedup();
                v.into_iter().map(|x| i.canonical(x as u64)).collect()
            }
            Type::Bool => vec![0, 1],
            Type::F32 | Type::F64 => {
                let fs = [
                    0.0,
                    -0.0,
                    1.0,
                    -1.5,
                    2.5,
                    255.5,
                    256.0,
                    -129.5,
                    65_536.7,
                    3e9,
                    -3e9,
                    1e19,
                    2e19,
                    -1e19,
                    1e300,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NAN,
                ];
                fs.iter()
                    .map(|&f| match t {
                        Type::F32 => u64::from((f as f32).to_bits()),
                        _ => f.to_bits(),
                    })
                    .collect()
            }
            other => panic!("no samples for {other}"),
        }
    }

    /// One function per operation and type: `(text, parameter types)`.
    fn operations() -> Vec<(String, Vec<Type>)> {
        let types = scalars();
        let mut out = Vec::new();
        let mut f = |params: &[Type], ret: &Type, body: String| {
            let names = ["%a", "%b", "%c"];
            let list: Vec<String> = params
                .iter()
                .zip(names)
                .map(|(t, n)| format!("{n}: {t}"))
                .collect();
            let name = format!("op{}", out.len());
            out.push((
                format!(
                    "fn {name}({}) -> {ret} {{\nentry:\n{body}    ret %r\n}}\n",
                    list.join(", ")
                ),
                params.to_vec(),
            ));
        };
        for t in &types {
            let ops: &[&str] = match t {
                Type::Bool => &["and", "or", "xor"],
                t if t.is_float() => &["add", "sub", "mul", "div"],
                _ => &[
                    "add", "sub", "mul", "div", "rem", "and", "or", "xor", "shl", "shr",
                ],
            };
            for op in ops {
                f(
                    &[t.clone(), t.clone()],
                    t,
                    format!("    %r = {op} {t} %a, %b\n"),
                );
            }
            let unary: &[&str] = match t {
                Type::Bool => &["not"],
                t if t.is_float() => &["neg"],
                _ => &["neg", "not"],
            };
            for op in unary {
                f(
                    std::slice::from_ref(t),
                    t,
                    format!("    %r = {op} {t} %a\n"),
                );
            }
            let cmps: &[&str] = if numeric(t) {
                &["eq", "ne", "lt", "le", "gt", "ge"]
            } else {
                &["eq", "ne"]
            };
            for op in cmps {
                let body = format!("    %r = cmp {op} {t} %a, %b\n");
                f(&[t.clone(), t.clone()], &Type::Bool, body);
            }
            let select = format!("    %r = select {t} %a, %b, %c\n");
            f(&[Type::Bool, t.clone(), t.clone()], t, select);
            let memory = format!(
                "    %i = const i64 1\n    store {t} %b, %a[%i]\n    %r = load {t} %a[%i]\n"
            );
            f(&[t.clone().ptr_to(), t.clone()], t, memory);
            // `bool` converts to integers only.
            let targets = types
                .iter()
                .filter(|to| numeric(to) && *to != t && (numeric(t) || !to.is_float()));
            for to in targets {
                f(
                    std::slice::from_ref(t),
                    to,
                    format!("    %r = cast {t} %a to {to}\n"),
                );
                if numeric(t)
                    && t.scalar_size() == to.scalar_size()
                    && t.is_float() != to.is_float()
                {
                    f(
                        std::slice::from_ref(t),
                        to,
                        format!("    %r = bitcast {t} %a to {to}\n"),
                    );
                }
            }
            let literals: &[&str] = match t {
                Type::Bool => &["true", "false"],
                Type::Int(i) if i.signed() => &["-1", "0", "1"],
                Type::Int(_) => &["0", "1", "255"],
                _ => &[
                    "1.5",
                    "-0.0",
                    "nan",
                    "-inf",
                    "1e300",
                    "3",
                    "0x7fffffffffffffff",
                ],
            };
            for lit in literals {
                f(&[], t, format!("    %r = const {t} {lit}\n"));
            }
        }
        out
    }

    /// Any function whose arguments fit the registers, as System V sees it.
    type Native<R> =
        extern "C" fn(u64, u64, u64, u64, u64, u64, f64, f64, f64, f64, f64, f64, f64, f64) -> R;

    /// Calls compiled code with System V's assignment of integer and float
    /// arguments to their own register sequences, as the interpreter calls
    /// native code, and returns the result in the interpreter's canonical
    /// form.
    ///
    /// # Safety
    /// `entry` must be a function with `sig`, whose arguments fit the
    /// registers, and `args` valid for it.
    unsafe fn call(entry: u64, sig: &Signature, args: &[u64]) -> u64 {
        let (mut ints, mut floats) = ([0u64; 6], [0f64; 8]);
        let (mut ni, mut nf) = (0, 0);
        for (t, &bits) in sig.params.iter().zip(args) {
            if t.is_float() {
                // An f32 travels in the low 32 bits of the register.
                floats[nf] = f64::from_bits(bits);
                nf += 1;
            } else {
                ints[ni] = bits;
                ni += 1;
            }
        }
        let [i0, i1, i2, i3, i4, i5] = ints;
        let [f0, f1, f2, f3, f4, f5, f6, f7] = floats;
        match &sig.ret {
            Some(t) if t.is_float() => {
                // SAFETY: unused registers are ignored by the callee (the caller's promise).
                let f: Native<f64> = unsafe { std::mem::transmute(entry as usize) };
                let v = f(i0, i1, i2, i3, i4, i5, f0, f1, f2, f3, f4, f5, f6, f7).to_bits();
                if *t == Type::F32 { v & 0xFFFF_FFFF } else { v }
            }
            Some(t) => {
                // SAFETY: as above.
                let f: Native<u64> = unsafe { std::mem::transmute(entry as usize) };
                let raw = f(i0, i1, i2, i3, i4, i5, f0, f1, f2, f3, f4, f5, f6, f7);
                if *t == Type::Bool {
                    assert!(raw & 0xFF <= 1, "a bool result is 0 or 1, got {raw:#x}");
                }
                Value::from_bits(t, raw).to_bits()
            }
            None => panic!("every tested function returns a value"),
        }
    }

    /// Every argument combination of the samples of `params`.
    fn combinations(params: &[Type], buffer: u64) -> Vec<Vec<u64>> {
        params.iter().fold(vec![Vec::new()], |acc, t| {
            let values = if t.is_pointer() {
                vec![buffer]
            } else {
                samples(t)
            };
            acc.iter()
                .flat_map(|prefix| {
                    values.iter().map(move |&v| {
                        let mut next = prefix.clone();
                        next.push(v);
                        next
                    })
                })
                .collect()
        })
    }

    #[test]
    fn lowering_agrees_with_the_interpreter_on_every_scalar_operation() {
        let functions = operations();
        let text: String = functions.iter().map(|(t, _)| t.as_str()).collect();
        let lib = jit::text::parse_library(&text).expect("parses");
        jit::verify::verify_library(&lib).expect("verifies");
        let r = LibraryResolver::new(&lib);
        let mut buffer = [0u64; 4];
        let address = buffer.as_mut_ptr() as usize as u64;
        let mut checked = 0usize;
        for settings in [Settings::SPEED, Settings::NONE_SINGLE_PASS] {
            let mut cl = Cranelift::new(settings);
            for (k, (source, params)) in functions.iter().enumerate() {
                let name = TemplateName::free(&format!("op{k}"));
                let inst = jit::instantiate::instantiate(&lib, &name, &[]).expect("instantiates");
                let entry = cl.compile(&[&inst]).expect("compiles")[0];
                for args in combinations(params, address) {
                    let values: Vec<Value> = params
                        .iter()
                        .zip(&args)
                        .map(|(t, &b)| Value::from_bits(t, b))
                        .collect();
                    // SAFETY: pointer arguments point to `buffer`, which
                    // has room for any scalar at index 1.
                    let want = match unsafe { Interpreter::new(&r).call(&inst.function, &values) } {
                        Ok(Some(v)) => v.to_bits(),
                        // A trap (division by zero): Cranelift stops there too.
                        Err(_) => continue,
                        Ok(None) => panic!("{source}: no result"),
                    };
                    // SAFETY: the function has this signature; it fits the registers.
                    let got = unsafe { call(entry, &inst.function.sig, &args) };
                    assert_eq!(
                        got,
                        want,
                        "{source}with arguments {values:?} ({}): cranelift {got:#x}, interpreter {want:#x}",
                        settings.label()
                    );
                    checked += 1;
                }
            }
            // SAFETY: the functions are not called again.
            unsafe { cl.free() };
        }
        assert!(checked > 10_000, "only {checked} calls checked");
    }

    /// `sort_desc` takes the address of `compare_desc` and sorts through
    /// `quicksort_by`, which calls it indirectly: `func_addr`,
    /// `call_indirect` and calls between members of one batch.
    #[test]
    fn function_pointers_sort_like_the_interpreter() {
        let lib = jit::library::collections().expect("library");
        let r = crate::backend::interpreter_resolver(&lib);
        let mut cl = Cranelift::new(Settings::SPEED);
        for ty in [Type::Int(IntType::I32), Type::Int(IntType::U8), Type::F64] {
            let insts = crate::backend::instances(
                &lib,
                TemplateName::free("sort_desc"),
                std::slice::from_ref(&ty),
            );
            let refs: Vec<&Instance> = insts.iter().collect();
            let entry = cl.compile(&refs).expect("compiles")[0];
            let size = ty.scalar_size().expect("scalar") as usize;
            for n in [0usize, 1, 8, 9, 40] {
                let values: Vec<u64> = (0..n as u64).map(|i| (i * 0x9E37) % 251).collect();
                let bytes = |v: &[u64]| -> Vec<u8> {
                    v.iter()
                        .flat_map(|&x| match ty {
                            Type::F64 => (x as f64 / 3.0).to_le_bytes()[..size].to_vec(),
                            _ => x.to_le_bytes()[..size].to_vec(),
                        })
                        .collect()
                };
                let (mut native, mut interpreted) = (bytes(&values), bytes(&values));
                let f: extern "C" fn(*mut u8, i64) =
                    // SAFETY: `sort_desc` has this signature.
                    unsafe { std::mem::transmute(entry as usize) };
                f(native.as_mut_ptr(), n as i64);
                let args = [
                    Value::Ptr(interpreted.as_mut_ptr() as usize as u64),
                    Value::I64(n as i64),
                ];
                // SAFETY: the buffer holds `n` elements.
                unsafe { Interpreter::new(&r).call(&insts[0].function, &args) }
                    .expect("interprets");
                assert_eq!(native, interpreted, "sort_desc over {n} {ty}");
                // The input is not in descending order, so both sorted.
                assert!(
                    n < 2 || native != bytes(&values),
                    "sort_desc over {n} {ty} moved nothing"
                );
            }
        }
        // SAFETY: the functions are not called again.
        unsafe { cl.free() };
    }
}
