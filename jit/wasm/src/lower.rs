//! One concrete function to one WebAssembly function body.
//!
//! **Registers.** Every IR register is a local of its own, and its number
//! is the local's index: the function's parameters are both (registers
//! `%0 … %n-1` are the WebAssembly parameters), and the rest are declared
//! in register order. Each instruction reads its operands with
//! `local.get`, computes on the operand stack and stores its result with
//! `local.set`. Two more locals follow: the dispatch index and an `i32`
//! scratch.
//!
//! **Control flow.** The CFG becomes a dispatch loop over the block
//! indices (a "relooper-lite": correct for every CFG the verifier accepts,
//! reducible or not):
//!
//! ```text
//! loop                        ;; branching to it dispatches on $pc
//!   block ;; B(n-1)
//!     …
//!       block ;; B0
//!         local.get $pc
//!         br_table 0 1 … n-1  ;; leaves B(i): lands on block i's code
//!       end
//!       <code of block 0>     ;; ends in br/return/unreachable
//!     …
//!   end
//!   <code of block n-1>
//! end
//! unreachable
//! ```
//!
//! A branch writes the target's parameters (all arguments are pushed
//! before any parameter is set: the IR's parallel copy), then either falls
//! through — when the target is the block whose code comes next — or sets
//! `$pc` and branches back to the loop. A function of one block needs no
//! loop at all.
//!
//! **Values.** Narrow integers live in `i32` in the interpreter's
//! canonical form (sign-extended for signed types, zero-extended for
//! unsigned ones, `bool` 0 or 1): operations that can leave it (`add`,
//! `sub`, `mul`, `neg`, `not`, `shl`, narrowing casts, signed division)
//! re-establish it with `extend8_s`/`extend16_s` or a mask.
//!
//! **Shared memories and tables** are regions of the linear memory that a
//! descriptor describes (base, length, maximum, version: `abi::descriptor`);
//! each operation reads the descriptor through its imported global, so a
//! grow by any module is seen by the next access of every other. Bounds
//! are checked before any byte is touched, and a failed check or a null
//! `call_table` entry sets `__trap_kind` and executes `unreachable`.

use std::borrow::Cow;

use jit_ir::instantiate::Instance;
use jit_ir::ir::{
    BinOp, BlockCall, Callee, CmpOp, Function, Inst, IntType, Literal, Op, Reg, Signature,
    Terminator, Type, UnOp,
};
use wasm_encoder::{BlockType, Instruction as I, MemArg, ValType};

use crate::Error;
use crate::abi::{
    GLOBAL_TABLE_BASE, Space, TABLE_ENTRY_SIZE, TRAP_KIND_EXPLICIT, TRAP_KIND_NULL_POINTER,
    TRAP_KIND_OUT_OF_BOUNDS, descriptor, mem_size, narrow, signed, val_type,
};
use crate::module::Plan;

/// Lowers the function of `inst` with the module's index spaces in `plan`.
pub(crate) fn function(inst: &Instance, plan: &Plan) -> Result<wasm_encoder::Function, Error> {
    let f = &*inst.function;
    let types = inst.reg_types.0.as_slice();
    if types.len() != f.reg_count() {
        return Err(Error::unsupported(
            &inst.symbol,
            "register types do not match the function",
        ));
    }
    let params = f.sig.params.len();
    let mut locals: Vec<ValType> = types.iter().skip(params).map(val_type).collect();
    let pc = local_index(&inst.symbol, types.len())?;
    locals.extend([ValType::I32, ValType::I32]);
    let mut out = wasm_encoder::Function::new_with_locals_types(locals);
    let mut lower = Lower {
        out: &mut out,
        plan,
        f,
        name: &inst.symbol,
        pc,
        scratch: pc + 1,
    };
    lower.body()?;
    Ok(out)
}

fn local_index(function: &str, n: usize) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::unsupported(function, "too many registers"))
}

struct Lower<'a> {
    out: &'a mut wasm_encoder::Function,
    plan: &'a Plan<'a>,
    f: &'a Function,
    name: &'a str,
    /// The dispatch index local.
    pc: u32,
    /// An `i32` scratch local.
    scratch: u32,
}

impl Lower<'_> {
    fn i(&mut self, i: I<'_>) {
        self.out.instruction(&i);
    }

    fn get(&mut self, r: Reg) {
        self.i(I::LocalGet(r.0));
    }

    fn unsupported(&self, what: impl Into<String>) -> Error {
        Error::unsupported(self.name, what)
    }

    fn body(&mut self) -> Result<(), Error> {
        let n = self.f.blocks.len();
        if n == 1 {
            self.block(0, 0)?;
        } else {
            let last = u32::try_from(n - 1).map_err(|_| self.unsupported("too many blocks"))?;
            self.i(I::Loop(BlockType::Empty));
            for _ in 0..n {
                self.i(I::Block(BlockType::Empty));
            }
            self.i(I::LocalGet(self.pc));
            self.i(I::BrTable(Cow::Owned((0..=last).collect()), last));
            for (k, depth) in (0..n).zip((0..=last).rev()) {
                self.i(I::End);
                self.block(k, depth)?;
            }
            self.i(I::End);
        }
        // Every block ends in a branch, return or trap: this is never
        // reached, but the function's end expects its result.
        self.i(I::Unreachable);
        self.i(I::End);
        Ok(())
    }

    /// The code of block `k`; the dispatch loop is `depth` labels out.
    fn block(&mut self, k: usize, depth: u32) -> Result<(), Error> {
        let f = self.f;
        let block = &f.blocks[k];
        for inst in &block.insts {
            self.inst(inst)?;
        }
        match &block.term {
            Terminator::Br(call) => self.jump(call, depth, k + 1),
            Terminator::CondBr {
                cond,
                then,
                otherwise,
            } => {
                self.get(*cond);
                self.i(I::If(BlockType::Empty));
                self.jump(then, depth + 1, k + 1);
                self.i(I::Else);
                self.jump(otherwise, depth + 1, k + 1);
                self.i(I::End);
            }
            Terminator::Ret(value) => {
                if let Some(v) = value {
                    self.get(*v);
                }
                self.i(I::Return);
            }
            Terminator::Trap(code) => self.trap(TRAP_KIND_EXPLICIT, Some(*code)),
        }
        Ok(())
    }

    /// Passes the arguments of `call` and continues at its block: by
    /// falling through when that block's code comes next, otherwise through
    /// the dispatch loop `depth` labels out.
    fn jump(&mut self, call: &BlockCall, depth: u32, next: usize) {
        let params = &self.f.blocks[call.block.0 as usize].params;
        for a in &call.args {
            self.get(*a);
        }
        for (p, _) in params.iter().rev() {
            self.i(I::LocalSet(p.0));
        }
        if call.block.0 as usize != next {
            self.i(I::I32Const(call.block.0 as i32));
            self.i(I::LocalSet(self.pc));
            self.i(I::Br(depth));
        }
    }

    fn inst(&mut self, inst: &Inst) -> Result<(), Error> {
        match &inst.op {
            Op::Const { ty, value } => self.constant(ty, *value)?,
            Op::Unary { op, ty, arg } => self.unary(*op, ty, *arg),
            Op::Binary { op, ty, lhs, rhs } => self.binary(*op, ty, *lhs, *rhs)?,
            Op::Cmp { op, ty, lhs, rhs } => self.compare(*op, ty, *lhs, *rhs),
            Op::Cast { from, to, arg } => {
                self.get(*arg);
                self.cast(from, to)?;
            }
            Op::Bitcast { from, to, arg } => {
                self.get(*arg);
                self.bitcast(from, to);
            }
            Op::Select {
                cond,
                if_true,
                if_false,
                ..
            } => {
                self.get(*if_true);
                self.get(*if_false);
                self.get(*cond);
                self.i(I::Select);
            }
            Op::Load { ty, addr, index } => {
                self.address(ty, *addr, *index);
                self.load(ty);
            }
            Op::Store {
                ty,
                addr,
                index,
                value,
            } => {
                self.address(ty, *addr, *index);
                self.get(*value);
                self.store(ty);
            }
            Op::Addr {
                base,
                index,
                scale,
                disp,
                ..
            } => {
                // Addresses wrap modulo 2^32: every term is reduced first,
                // which gives the same low 32 bits as the 64-bit sum.
                self.get(*base);
                if let Some(index) = index {
                    self.get(*index);
                    self.i(I::I32WrapI64);
                    if *scale != 1 {
                        self.i(I::I32Const(*scale as u32 as i32));
                        self.i(I::I32Mul);
                    }
                    self.i(I::I32Add);
                }
                if *disp != 0 {
                    self.i(I::I32Const(*disp as i32));
                    self.i(I::I32Add);
                }
            }
            Op::Call { callee, args, .. } => {
                let index = self.callee(callee)?;
                for a in args {
                    self.get(*a);
                }
                self.i(I::Call(index));
            }
            Op::CallIndirect { sig, target, args } => self.call_indirect(sig, args, target.0)?,
            Op::FuncAddr { callee, .. } => {
                let index = self.callee(callee)?;
                let slot = self
                    .plan
                    .table_slot(index)
                    .ok_or_else(|| self.unsupported("a function address without a table slot"))?;
                self.i(I::GlobalGet(GLOBAL_TABLE_BASE));
                if slot != 0 {
                    self.i(I::I32Const(slot as i32));
                    self.i(I::I32Add);
                }
            }
            op @ (Op::MemLoad { .. }
            | Op::MemStore { .. }
            | Op::MemSize { .. }
            | Op::MemGrow { .. }
            | Op::TableGet { .. }
            | Op::TableSet { .. }
            | Op::TableSize { .. }
            | Op::TableGrow { .. }
            | Op::CallTable { .. }) => self.shared(op)?,
            Op::ElemAddr { .. } | Op::FieldAddr { .. } | Op::SizeOf { .. } | Op::AlignOf { .. } => {
                return Err(self.unsupported("a layout-dependent operation (not instantiated)"));
            }
        }
        if let Some(r) = inst.result {
            self.i(I::LocalSet(r.0));
        }
        Ok(())
    }

    /// An operation on a shared memory or table.
    fn shared(&mut self, op: &Op) -> Result<(), Error> {
        let (space, name) =
            Space::of(op).ok_or_else(|| self.unsupported("not a shared memory or table"))?;
        let d = self
            .plan
            .descriptor(space, name)
            .ok_or_else(|| self.unsupported(format!("`{name}` has no descriptor import")))?;
        match op {
            Op::MemLoad { ty, offset, .. } => {
                self.element(d, *offset, mem_size(ty), 1);
                self.load(ty);
            }
            Op::MemStore {
                ty, offset, value, ..
            } => {
                self.element(d, *offset, mem_size(ty), 1);
                self.get(*value);
                self.store(ty);
            }
            // Entries are function-pointer values: `i32` table slots,
            // loaded and stored as pointers are.
            Op::TableGet { index, .. } => {
                self.element(d, *index, 1, TABLE_ENTRY_SIZE);
                self.load(&Type::RawPtr);
            }
            Op::TableSet { index, value, .. } => {
                self.element(d, *index, 1, TABLE_ENTRY_SIZE);
                self.get(*value);
                self.store(&Type::RawPtr);
            }
            Op::CallTable {
                sig, index, args, ..
            } => {
                self.element(d, *index, 1, TABLE_ENTRY_SIZE);
                self.load(&Type::RawPtr);
                self.i(I::LocalTee(self.scratch));
                self.i(I::I32Eqz);
                self.i(I::If(BlockType::Empty));
                self.trap(TRAP_KIND_NULL_POINTER, None);
                self.i(I::End);
                self.call_indirect(sig, args, self.scratch)?;
            }
            Op::MemSize { .. } | Op::TableSize { .. } => self.size(d, space),
            Op::MemGrow { delta, .. } | Op::TableGrow { delta, .. } => {
                self.grow(d, space, *delta);
            }
            _ => return Err(self.unsupported("not a shared memory or table")),
        }
        Ok(())
    }

    /// Sets `__trap_kind` (and `__trap_code` when given), then executes
    /// `unreachable`.
    fn trap(&mut self, kind: i32, code: Option<u32>) {
        self.i(I::I32Const(kind));
        self.i(I::GlobalSet(self.plan.trap_kind()));
        if let Some(code) = code {
            self.i(I::I32Const(code as i32));
            self.i(I::GlobalSet(self.plan.trap_code()));
        }
        self.i(I::Unreachable);
    }

    /// Calls the function-pointer value in local `target` with `args`.
    fn call_indirect(&mut self, sig: &Signature, args: &[Reg], target: u32) -> Result<(), Error> {
        for a in args {
            self.get(*a);
        }
        self.i(I::LocalGet(target));
        let type_index = self
            .plan
            .type_index(sig)
            .ok_or_else(|| self.unsupported("a signature without a type"))?;
        self.i(I::CallIndirect {
            type_index,
            table_index: 0,
        });
        Ok(())
    }

    /// Pushes the `u32` at `offset` of the descriptor at global `d`.
    fn field(&mut self, d: u32, offset: u32) {
        self.i(I::GlobalGet(d));
        self.i(I::I32Load(descriptor_arg(offset)));
    }

    /// Traps `OutOfBounds` unless `index + units <= length` (unsigned,
    /// without overflow; `index` is an `i64` register) for the descriptor
    /// at global `d`, then pushes the address `base + index * scale`.
    fn element(&mut self, d: u32, index: Reg, units: u32, scale: u32) {
        // The length is a `u32`, so an index above 2^32 - 1 is out of
        // bounds; below it, `index + units` cannot wrap (an index near
        // 2^64 would, which is what the first test is for).
        self.get(index);
        self.i(I::I64Const(i64::from(u32::MAX)));
        self.i(I::I64GtU);
        self.get(index);
        self.i(I::I64Const(i64::from(units)));
        self.i(I::I64Add);
        self.field(d, descriptor::LENGTH);
        self.i(I::I64ExtendI32U);
        self.i(I::I64GtU);
        self.i(I::I32Or);
        self.i(I::If(BlockType::Empty));
        self.trap(TRAP_KIND_OUT_OF_BOUNDS, None);
        self.i(I::End);
        // In bounds, so `base + index * scale` lies in the region the host
        // reserved and cannot wrap.
        self.field(d, descriptor::BASE);
        self.get(index);
        self.i(I::I32WrapI64);
        if scale != 1 {
            self.i(I::I32Const(scale as i32));
            self.i(I::I32Mul);
        }
        self.i(I::I32Add);
    }

    /// Turns the `u32` length on the stack into the `i64` size of `space`.
    fn size_of_length(&mut self, space: Space) {
        let shift = space.size_shift();
        if shift != 0 {
            self.i(I::I32Const(shift as i32));
            self.i(I::I32ShrU);
        }
        self.i(I::I64ExtendI32U);
    }

    /// Pushes the size (`mem_size`, `table_size`) of the descriptor at `d`.
    fn size(&mut self, d: u32, space: Space) {
        self.field(d, descriptor::LENGTH);
        self.size_of_length(space);
    }

    /// `mem_grow`/`table_grow` by the `i64` register `delta`: the old
    /// size, or -1 with nothing changed when `delta` is negative or the
    /// maximum would be passed. The host reserved (and zeroed) the maximum,
    /// so a grow only writes the descriptor: the new length, and the
    /// version plus one unless `delta` is 0.
    fn grow(&mut self, d: u32, space: Space, delta: Reg) {
        // A negative delta, as unsigned, is above any room left.
        self.get(delta);
        self.field(d, descriptor::MAXIMUM);
        self.field(d, descriptor::LENGTH);
        self.i(I::I32Sub);
        self.size_of_length(space);
        self.i(I::I64GtU);
        self.i(I::If(BlockType::Result(ValType::I64)));
        self.i(I::I64Const(-1));
        self.i(I::Else);
        self.size(d, space);
        self.i(I::GlobalGet(d));
        self.field(d, descriptor::LENGTH);
        self.get(delta);
        self.i(I::I32WrapI64);
        let shift = space.size_shift();
        if shift != 0 {
            self.i(I::I32Const(shift as i32));
            self.i(I::I32Shl);
        }
        self.i(I::I32Add);
        self.i(I::I32Store(descriptor_arg(descriptor::LENGTH)));
        self.i(I::GlobalGet(d));
        self.field(d, descriptor::VERSION);
        self.get(delta);
        self.i(I::I64Eqz);
        self.i(I::I32Eqz);
        self.i(I::I32Add);
        self.i(I::I32Store(descriptor_arg(descriptor::VERSION)));
        self.i(I::End);
    }

    fn callee(&self, callee: &Callee) -> Result<u32, Error> {
        self.plan
            .function_index(callee)
            .ok_or_else(|| self.unsupported(format!("the callee {callee:?} is not in the module")))
    }

    /// Brings the `i32` on the stack into the canonical form of `ty`.
    fn canonical(&mut self, ty: &Type) {
        match narrow(ty) {
            Some(IntType::I8) => self.i(I::I32Extend8S),
            Some(IntType::I16) => self.i(I::I32Extend16S),
            Some(t) => {
                self.i(I::I32Const(t.max_value() as i32));
                self.i(I::I32And);
            }
            None if *ty == Type::Bool => {
                self.i(I::I32Const(1));
                self.i(I::I32And);
            }
            None => {}
        }
    }

    fn constant(&mut self, ty: &Type, value: Literal) -> Result<(), Error> {
        // The same conversions as the interpreter's `const_value`.
        let i = match (ty, value) {
            (Type::Int(t), Literal::Int(v)) if t.bits() == 64 => I::I64Const(v as i64),
            (Type::Int(t), Literal::Int(v)) => I::I32Const(t.canonical(v as u64) as i32),
            (Type::F32, Literal::Int(v)) => I::F32Const(v as f32),
            (Type::F32, Literal::Float(b)) => I::F32Const(f64::from_bits(b) as f32),
            (Type::F64, Literal::Int(v)) => I::F64Const(v as f64),
            (Type::F64, Literal::Float(b)) => I::F64Const(f64::from_bits(b)),
            (Type::Bool, Literal::Bool(b)) => I::I32Const(i32::from(b)),
            (t, Literal::Null) if t.is_pointer() => I::I32Const(0),
            (t, v) => return Err(self.unsupported(format!("a constant {v:?} of type {t}"))),
        };
        self.i(i);
        Ok(())
    }

    fn unary(&mut self, op: UnOp, ty: &Type, arg: Reg) {
        match (op, val_type(ty)) {
            (UnOp::Neg, ValType::F32) => {
                self.get(arg);
                self.i(I::F32Neg);
            }
            (UnOp::Neg, ValType::F64) => {
                self.get(arg);
                self.i(I::F64Neg);
            }
            (UnOp::Neg, ValType::I64) => {
                self.i(I::I64Const(0));
                self.get(arg);
                self.i(I::I64Sub);
            }
            (UnOp::Neg, _) => {
                self.i(I::I32Const(0));
                self.get(arg);
                self.i(I::I32Sub);
                self.canonical(ty);
            }
            (UnOp::Not, ValType::I64) => {
                self.get(arg);
                self.i(I::I64Const(-1));
                self.i(I::I64Xor);
            }
            (UnOp::Not, _) => {
                self.get(arg);
                self.i(I::I32Const(-1));
                self.i(I::I32Xor);
                self.canonical(ty);
            }
        }
    }

    fn binary(&mut self, op: BinOp, ty: &Type, lhs: Reg, rhs: Reg) -> Result<(), Error> {
        let w = val_type(ty);
        let sign = signed(ty);
        if matches!(op, BinOp::Div) && sign && narrow(ty).is_none() {
            // MIN / -1 wraps to MIN in the IR but traps in WebAssembly;
            // x / -1 is -x for every x, so that divisor takes a negation.
            let (minus_one, zero, sub, div, eq) = match w {
                ValType::I64 => (
                    I::I64Const(-1),
                    I::I64Const(0),
                    I::I64Sub,
                    I::I64DivS,
                    I::I64Eq,
                ),
                _ => (
                    I::I32Const(-1),
                    I::I32Const(0),
                    I::I32Sub,
                    I::I32DivS,
                    I::I32Eq,
                ),
            };
            self.get(rhs);
            self.i(minus_one);
            self.i(eq);
            self.i(I::If(BlockType::Result(w)));
            self.i(zero);
            self.get(lhs);
            self.i(sub);
            self.i(I::Else);
            self.get(lhs);
            self.get(rhs);
            self.i(div);
            self.i(I::End);
            return Ok(());
        }
        self.get(lhs);
        self.get(rhs);
        if matches!(op, BinOp::Shl | BinOp::Shr)
            && let Some(t) = narrow(ty)
        {
            // 32- and 64-bit shifts mask their count in WebAssembly as in
            // the IR; narrow ones must mask to their own width.
            self.i(I::I32Const(t.bits() as i32 - 1));
            self.i(I::I32And);
        }
        let i = binary_instruction(op, w, sign)
            .ok_or_else(|| self.unsupported(format!("`{op:?}` on {ty}")))?;
        self.i(i);
        if matches!(
            op,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Shl | BinOp::Div
        ) {
            self.canonical(ty);
        }
        Ok(())
    }

    fn compare(&mut self, op: CmpOp, ty: &Type, lhs: Reg, rhs: Reg) {
        self.get(lhs);
        self.get(rhs);
        self.i(compare_instruction(op, val_type(ty), signed(ty)));
    }

    /// Converts the value of type `from` on the stack to `to`.
    fn cast(&mut self, from: &Type, to: &Type) -> Result<(), Error> {
        let (wf, wt) = (val_type(from), val_type(to));
        match (from, to) {
            (Type::Int(_) | Type::Bool, Type::Int(_)) => {
                match (wf, wt) {
                    (ValType::I64, ValType::I32) => self.i(I::I32WrapI64),
                    (ValType::I32, ValType::I64) if signed(from) => self.i(I::I64ExtendI32S),
                    (ValType::I32, ValType::I64) => self.i(I::I64ExtendI32U),
                    _ => {}
                }
                if wt == ValType::I32 {
                    self.canonical(to);
                }
            }
            (Type::Int(_), Type::F32 | Type::F64) => {
                let s = signed(from);
                self.i(match (wf, wt, s) {
                    (ValType::I64, ValType::F32, true) => I::F32ConvertI64S,
                    (ValType::I64, ValType::F32, false) => I::F32ConvertI64U,
                    (ValType::I64, _, true) => I::F64ConvertI64S,
                    (ValType::I64, _, false) => I::F64ConvertI64U,
                    (_, ValType::F32, true) => I::F32ConvertI32S,
                    (_, ValType::F32, false) => I::F32ConvertI32U,
                    (_, _, true) => I::F64ConvertI32S,
                    (_, _, false) => I::F64ConvertI32U,
                });
            }
            (Type::F32 | Type::F64, Type::Int(t)) => self.float_to_int(wf, *t),
            (Type::F32, Type::F64) => self.i(I::F64PromoteF32),
            (Type::F64, Type::F32) => self.i(I::F32DemoteF64),
            (Type::F32, Type::F32) | (Type::F64, Type::F64) => {}
            (f, t) if f.is_pointer() && t.is_pointer() => {}
            (f, Type::Int(_)) if f.is_pointer() => self.i(I::I64ExtendI32U),
            (Type::Int(_), t) if t.is_pointer() => self.i(I::I32WrapI64),
            (f, t) => return Err(self.unsupported(format!("a cast from {f} to {t}"))),
        }
        Ok(())
    }

    /// Saturating float-to-int: `trunc_sat` to 32 or 64 bits, then a
    /// clamp to a narrow type's range (NaN is already 0).
    fn float_to_int(&mut self, from: ValType, t: IntType) {
        let f64 = from == ValType::F64;
        let i = match (t.bits() == 64, f64, t.signed()) {
            (true, false, true) => I::I64TruncSatF32S,
            (true, false, false) => I::I64TruncSatF32U,
            (true, true, true) => I::I64TruncSatF64S,
            (true, true, false) => I::I64TruncSatF64U,
            (false, false, true) => I::I32TruncSatF32S,
            (false, false, false) => I::I32TruncSatF32U,
            (false, true, true) => I::I32TruncSatF64S,
            (false, true, false) => I::I32TruncSatF64U,
        };
        self.i(i);
        if t.bits() >= 32 {
            return;
        }
        let (max, min) = (t.max_value() as i32, t.min_value() as i32);
        let (lt, gt) = if t.signed() {
            (I::I32LtS, I::I32GtS)
        } else {
            (I::I32LtU, I::I32GtU)
        };
        // v = v < max ? v : max
        self.i(I::LocalTee(self.scratch));
        self.i(I::I32Const(max));
        self.i(I::LocalGet(self.scratch));
        self.i(I::I32Const(max));
        self.i(lt);
        self.i(I::Select);
        if t.signed() {
            // v = v > min ? v : min (an unsigned result is never below 0)
            self.i(I::LocalTee(self.scratch));
            self.i(I::I32Const(min));
            self.i(I::LocalGet(self.scratch));
            self.i(I::I32Const(min));
            self.i(gt);
            self.i(I::Select);
        }
    }

    fn bitcast(&mut self, from: &Type, to: &Type) {
        match (val_type(from), val_type(to)) {
            (ValType::F32, ValType::I32) => self.i(I::I32ReinterpretF32),
            (ValType::I32, ValType::F32) => self.i(I::F32ReinterpretI32),
            (ValType::F64, ValType::I64) => self.i(I::I64ReinterpretF64),
            (ValType::I64, ValType::F64) => self.i(I::F64ReinterpretI64),
            // Same width and class: only a narrow form changes.
            (ValType::I32, ValType::I32) => self.canonical(to),
            _ => {}
        }
    }

    /// Pushes `addr + index * size_of(ty)` (as `i32`).
    fn address(&mut self, ty: &Type, addr: Reg, index: Option<Reg>) {
        self.get(addr);
        if let Some(index) = index {
            self.get(index);
            self.i(I::I32WrapI64);
            let size = mem_size(ty);
            if size != 1 {
                self.i(I::I32Const(size as i32));
                self.i(I::I32Mul);
            }
            self.i(I::I32Add);
        }
    }

    fn load(&mut self, ty: &Type) {
        let m = mem_arg(ty);
        let i = match ty {
            Type::Int(IntType::I8) => I::I32Load8S(m),
            Type::Int(IntType::U8) | Type::Bool => I::I32Load8U(m),
            Type::Int(IntType::I16) => I::I32Load16S(m),
            Type::Int(IntType::U16) => I::I32Load16U(m),
            Type::Int(t) if t.bits() == 64 => I::I64Load(m),
            Type::F32 => I::F32Load(m),
            Type::F64 => I::F64Load(m),
            _ => I::I32Load(m),
        };
        self.i(i);
        if *ty == Type::Bool {
            // A byte other than 0 or 1 reads as its lowest bit, as in the
            // interpreter.
            self.canonical(ty);
        }
    }

    fn store(&mut self, ty: &Type) {
        let m = mem_arg(ty);
        let i = match (val_type(ty), mem_size(ty)) {
            (ValType::I32, 1) => I::I32Store8(m),
            (ValType::I32, 2) => I::I32Store16(m),
            (ValType::I64, _) => I::I64Store(m),
            (ValType::F32, _) => I::F32Store(m),
            (ValType::F64, _) => I::F64Store(m),
            _ => I::I32Store(m),
        };
        self.i(i);
    }
}

/// Natural alignment as the hint; accesses need not be aligned.
fn mem_arg(ty: &Type) -> MemArg {
    MemArg {
        offset: 0,
        align: mem_size(ty).trailing_zeros(),
        memory_index: 0,
    }
}

/// A `u32` field of a descriptor (4-byte aligned: the host places
/// descriptors so).
fn descriptor_arg(offset: u32) -> MemArg {
    MemArg {
        offset: u64::from(offset),
        align: 2,
        memory_index: 0,
    }
}

/// The instruction computing `op` on two operands of value type `w`.
fn binary_instruction(op: BinOp, w: ValType, signed: bool) -> Option<I<'static>> {
    Some(match (w, op, signed) {
        (ValType::I32, BinOp::Add, _) => I::I32Add,
        (ValType::I32, BinOp::Sub, _) => I::I32Sub,
        (ValType::I32, BinOp::Mul, _) => I::I32Mul,
        (ValType::I32, BinOp::Div, true) => I::I32DivS,
        (ValType::I32, BinOp::Div, false) => I::I32DivU,
        (ValType::I32, BinOp::Rem, true) => I::I32RemS,
        (ValType::I32, BinOp::Rem, false) => I::I32RemU,
        (ValType::I32, BinOp::And, _) => I::I32And,
        (ValType::I32, BinOp::Or, _) => I::I32Or,
        (ValType::I32, BinOp::Xor, _) => I::I32Xor,
        (ValType::I32, BinOp::Shl, _) => I::I32Shl,
        (ValType::I32, BinOp::Shr, true) => I::I32ShrS,
        (ValType::I32, BinOp::Shr, false) => I::I32ShrU,
        (ValType::I64, BinOp::Add, _) => I::I64Add,
        (ValType::I64, BinOp::Sub, _) => I::I64Sub,
        (ValType::I64, BinOp::Mul, _) => I::I64Mul,
        (ValType::I64, BinOp::Div, true) => I::I64DivS,
        (ValType::I64, BinOp::Div, false) => I::I64DivU,
        (ValType::I64, BinOp::Rem, true) => I::I64RemS,
        (ValType::I64, BinOp::Rem, false) => I::I64RemU,
        (ValType::I64, BinOp::And, _) => I::I64And,
        (ValType::I64, BinOp::Or, _) => I::I64Or,
        (ValType::I64, BinOp::Xor, _) => I::I64Xor,
        (ValType::I64, BinOp::Shl, _) => I::I64Shl,
        (ValType::I64, BinOp::Shr, true) => I::I64ShrS,
        (ValType::I64, BinOp::Shr, false) => I::I64ShrU,
        (ValType::F32, BinOp::Add, _) => I::F32Add,
        (ValType::F32, BinOp::Sub, _) => I::F32Sub,
        (ValType::F32, BinOp::Mul, _) => I::F32Mul,
        (ValType::F32, BinOp::Div, _) => I::F32Div,
        (ValType::F64, BinOp::Add, _) => I::F64Add,
        (ValType::F64, BinOp::Sub, _) => I::F64Sub,
        (ValType::F64, BinOp::Mul, _) => I::F64Mul,
        (ValType::F64, BinOp::Div, _) => I::F64Div,
        _ => return None,
    })
}

/// The comparison `op` on two operands of value type `w`; integers
/// compare signed when the IR type is, pointers and `bool` unsigned.
fn compare_instruction(op: CmpOp, w: ValType, signed: bool) -> I<'static> {
    match (w, op, signed) {
        (ValType::I64, CmpOp::Eq, _) => I::I64Eq,
        (ValType::I64, CmpOp::Ne, _) => I::I64Ne,
        (ValType::I64, CmpOp::Lt, true) => I::I64LtS,
        (ValType::I64, CmpOp::Lt, false) => I::I64LtU,
        (ValType::I64, CmpOp::Le, true) => I::I64LeS,
        (ValType::I64, CmpOp::Le, false) => I::I64LeU,
        (ValType::I64, CmpOp::Gt, true) => I::I64GtS,
        (ValType::I64, CmpOp::Gt, false) => I::I64GtU,
        (ValType::I64, CmpOp::Ge, true) => I::I64GeS,
        (ValType::I64, CmpOp::Ge, false) => I::I64GeU,
        (ValType::F32, CmpOp::Eq, _) => I::F32Eq,
        (ValType::F32, CmpOp::Ne, _) => I::F32Ne,
        (ValType::F32, CmpOp::Lt, _) => I::F32Lt,
        (ValType::F32, CmpOp::Le, _) => I::F32Le,
        (ValType::F32, CmpOp::Gt, _) => I::F32Gt,
        (ValType::F32, CmpOp::Ge, _) => I::F32Ge,
        (ValType::F64, CmpOp::Eq, _) => I::F64Eq,
        (ValType::F64, CmpOp::Ne, _) => I::F64Ne,
        (ValType::F64, CmpOp::Lt, _) => I::F64Lt,
        (ValType::F64, CmpOp::Le, _) => I::F64Le,
        (ValType::F64, CmpOp::Gt, _) => I::F64Gt,
        (ValType::F64, CmpOp::Ge, _) => I::F64Ge,
        (_, CmpOp::Eq, _) => I::I32Eq,
        (_, CmpOp::Ne, _) => I::I32Ne,
        (_, CmpOp::Lt, true) => I::I32LtS,
        (_, CmpOp::Lt, false) => I::I32LtU,
        (_, CmpOp::Le, true) => I::I32LeS,
        (_, CmpOp::Le, false) => I::I32LeU,
        (_, CmpOp::Gt, true) => I::I32GtS,
        (_, CmpOp::Gt, false) => I::I32GtU,
        (_, CmpOp::Ge, true) => I::I32GeS,
        (_, CmpOp::Ge, false) => I::I32GeU,
    }
}
