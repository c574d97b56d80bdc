//! The reference interpreter: what every instantiation must compute.
//!
//! It runs concrete functions (the output of [`jit_ir::instantiate`]) over
//! real memory: pointers are host addresses, loads and stores touch host
//! buffers, and native functions are called directly. Calls leave the
//! function through a [`Resolver`], which maps a symbol to an interpreted
//! function or native code and function-pointer values back to functions.
//!
//! Function pointers: a pointer to native or compiled code is its real
//! address. A pointer to an interpreted function is a token the resolver
//! hands out (the [`LibraryResolver`] uses the address of the function's
//! shared allocation, so tokens are distinct and stable while it lives) and
//! maps back in [`Resolver::target_at`]. Tokens must not reach native code,
//! which could not call them; compiled code and the interpreter agree on
//! observable results, not on pointer values.
//!
//! Values live in 64-bit slots in a canonical form: integers sign- or
//! zero-extended from their width, `f32` as its bits in the low half,
//! `bool` as 0 or 1. Traps (division by zero, `trap`, null access) become
//! [`ErrorKind::Trap`] errors located at the instruction. Execution is
//! iterative, so interpreted recursion is bounded by
//! [`limits::MAX_CALL_DEPTH`] and not by the host stack.
//!
//! The crate is in three parts: this module runs frames, blocks and calls;
//! `semantics` gives each operation its meaning as a pure function of its
//! operands; `host` is the only place that touches memory or calls native
//! code, and the only code here that is `unsafe`. Its [`Interpreter::call`]
//! and [`Interpreter::call_symbol`] are the unsafe entry points: their
//! caller vouches for every address the program will use.

#![deny(unsafe_code)]

// The host memory accesses and native calls: the crate's only unsafe code.
#[allow(unsafe_code)]
mod host;
mod library_resolver;
mod semantics;

use std::sync::Arc;

pub use host::{FLOAT_ARGUMENT_REGISTERS, INT_ARGUMENT_REGISTERS};
pub use library_resolver::LibraryResolver;

use host::Host;
use jit_ir::error::check_limit;
use jit_ir::ir::{
    BinOp, BlockCall, BlockId, Callee, Function, Op, Reg, Signature, Terminator, Type, UnOp,
};
pub use jit_ir::value::Value;
use jit_ir::{Error, ErrorKind, Location, TrapKind, limits};
use semantics::{
    canonical, cast, compare, const_value, element, f32_of, float_binary, int_binary, not_concrete,
};

/// What a symbol or function pointer refers to.
#[derive(Clone, Debug)]
pub enum Target {
    /// A concrete function the interpreter runs.
    Interpreted(Arc<Function>),
    /// Native or compiled code at this address, called with the System V
    /// convention and the call site's signature.
    Native(u64),
}

/// How the interpreter reaches everything outside the running function.
pub trait Resolver {
    /// The function a concrete symbol (an instantiation's mangled name or
    /// another module's export) refers to; may instantiate on a miss.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unresolved`] or the instantiation's error.
    fn resolve(&self, symbol: &str) -> Result<Target, Error>;

    /// The address of a native import.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unresolved`] when the import is not available.
    fn import(&self, name: &str) -> Result<u64, Error>;

    /// The value of `func_addr @symbol`: a real address for native or
    /// compiled code, a token for an interpreted function.
    ///
    /// # Errors
    ///
    /// As [`Resolver::resolve`].
    fn address_of(&self, symbol: &str) -> Result<u64, Error>;

    /// What a function-pointer value refers to, `None` when unknown (the
    /// indirect call then fails instead of jumping anywhere).
    fn target_at(&self, address: u64) -> Option<Target>;
}

/// What a [`Tiering`] answers when a loop of an interpreted call is hot.
#[derive(Clone, Debug)]
pub enum LoopAnswer {
    /// Continue in compiled code: call `address` (a System V function
    /// taking one pointer) with a buffer holding the registers `transfer`
    /// lists, one 8-byte slot each (`jit_ir::osr`), and return its result
    /// from the interpreted call.
    Enter {
        /// The loop entry's address.
        address: u64,
        /// The registers to transfer, in slot order.
        transfer: Arc<[Reg]>,
    },
    /// No entry at this header (it lies inside an enclosing loop): ask at
    /// the other headers of the call.
    NotHere,
    /// Not yet (compilation in progress): ask again after another
    /// threshold of back-edges.
    Later,
    /// Never in this call (compilation failed or is not wanted).
    Never,
}

/// Counting of loop back-edges and on-stack replacement, for tiered
/// execution. A back-edge is a branch to a block at or before the branching
/// block (loop headers come before their bodies).
pub trait Tiering {
    /// Back-edges to one header in one call after which the loop is hot;
    /// `u32::MAX` counts without ever asking.
    fn back_edge_threshold(&self) -> u32;

    /// Asked when a loop of a call of `func` is hot, at a back-edge to
    /// `header`.
    fn loop_entry(&self, func: &Arc<Function>, header: BlockId) -> LoopAnswer;

    /// Back-edges one call of `func` took, told when the call leaves the
    /// interpreter (returns, traps or transfers to a loop entry).
    fn back_edges(&self, func: &Arc<Function>, taken: u64);
}

/// Calls native and compiled code for the interpreter (by default it calls
/// directly): a runtime whose compiled code reports traps by unwinding to
/// a guard gives the interpreter a guarded call, so a trap in a callee
/// comes back as a value instead of skipping the interpreter's frames.
pub trait NativeCalls {
    /// Calls `address` with the integer argument registers `ints` and the
    /// float registers `floats` (raw bits); returns rax and xmm0's low 64
    /// bits, or the trap the callee reported.
    ///
    /// # Safety
    ///
    /// `address` is a System V function reading at most these registers,
    /// and every pointer among them is valid for what it does (the
    /// contract of [`Interpreter::call`], under which the interpreter calls
    /// this).
    #[allow(unsafe_code)]
    unsafe fn call(
        &self,
        address: u64,
        ints: &[u64; host::INT_ARGUMENT_REGISTERS],
        floats: &[u64; host::FLOAT_ARGUMENT_REGISTERS],
    ) -> Result<[u64; 2], TrapKind>;
}

/// Runs concrete functions.
pub struct Interpreter<'r> {
    resolver: &'r dyn Resolver,
    fuel: Option<u64>,
    tiering: Option<&'r dyn Tiering>,
    natives: Option<&'r dyn NativeCalls>,
}

struct Frame {
    func: Arc<Function>,
    regs: Vec<u64>,
    block: usize,
    pc: usize,
    /// Register of the caller receiving the result.
    ret_to: Option<Reg>,
    /// Back-edge counts of this call, when tiering counts them.
    loops: Option<Box<LoopCounts>>,
}

/// Back-edges one call took, per header, and what tiering said of them.
struct LoopCounts {
    per_header: Vec<u32>,
    /// Headers without a loop entry.
    refused: Vec<bool>,
    total: u64,
    /// A loop reached the threshold: ask at every back-edge not refused.
    hot: bool,
    /// Stop asking in this call.
    done: bool,
}

impl LoopCounts {
    fn new(blocks: usize) -> Self {
        LoopCounts {
            per_header: vec![0; blocks],
            refused: vec![false; blocks],
            total: 0,
            hot: false,
            done: false,
        }
    }
}

fn at(func: &Function, block: usize, inst: Option<usize>) -> Location {
    Location::Instruction {
        function: func.name.to_string(),
        block: u32::try_from(block).unwrap_or(u32::MAX),
        inst: inst.map(|i| u32::try_from(i).unwrap_or(u32::MAX)),
    }
}

#[cold]
fn malformed(what: &'static str) -> Error {
    Error::new(ErrorKind::Malformed(what))
}

fn slot(regs: &[u64], r: Reg) -> Result<u64, Error> {
    usize::try_from(r.0)
        .ok()
        .and_then(|i| regs.get(i))
        .copied()
        .ok_or_else(|| Error::new(ErrorKind::UndefinedRegister(r.0)))
}

fn set(regs: &mut [u64], r: Reg, v: u64) -> Result<(), Error> {
    let s = usize::try_from(r.0)
        .ok()
        .and_then(|i| regs.get_mut(i))
        .ok_or_else(|| Error::new(ErrorKind::UndefinedRegister(r.0)))?;
    *s = v;
    Ok(())
}

impl<'r> Interpreter<'r> {
    /// An interpreter reaching the outside through `resolver`, without an
    /// instruction budget.
    pub fn new(resolver: &'r dyn Resolver) -> Self {
        Interpreter {
            resolver,
            fuel: None,
            tiering: None,
            natives: None,
        }
    }

    /// Counts back-edges per loop header and asks `tiering` for a loop
    /// entry when one is hot.
    #[must_use]
    pub fn with_tiering(mut self, tiering: &'r dyn Tiering) -> Self {
        self.tiering = Some(tiering);
        self
    }

    /// Calls native and compiled code through `natives`.
    #[must_use]
    pub fn with_native_calls(mut self, natives: &'r dyn NativeCalls) -> Self {
        self.natives = Some(natives);
        self
    }

    /// Limits the number of instructions and terminators one call runs.
    #[must_use]
    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.fuel = Some(fuel);
        self
    }

    /// [`Interpreter::call_symbol`] once its contract is vouched for by `host`.
    fn call_symbol_in(
        &self,
        host: Host,
        symbol: &str,
        args: &[Value],
    ) -> Result<Option<Value>, Error> {
        match self.resolver.resolve(symbol)? {
            Target::Interpreted(f) => self.call_in(host, &f, args),
            Target::Native(_) => Err(Error::new(ErrorKind::Unresolved(format!(
                "{symbol} (native code is not interpreted)"
            )))),
        }
    }

    /// [`Interpreter::call`] once its contract is vouched for by `host`.
    fn call_in(
        &self,
        host: Host,
        func: &Arc<Function>,
        args: &[Value],
    ) -> Result<Option<Value>, Error> {
        if args.len() != func.sig.params.len() {
            return Err(Error::new(ErrorKind::ArgCount {
                what: func.name.to_string(),
                expected: func.sig.params.len(),
                found: args.len(),
            }));
        }
        for (index, (a, t)) in args.iter().zip(&func.sig.params).enumerate() {
            if !a.fits(t) {
                return Err(Error::new(ErrorKind::ArgumentType {
                    index,
                    expected: t.to_string(),
                    found: format!("{a:?}"),
                }));
            }
        }
        let bits: Vec<u64> = args.iter().map(Value::to_bits).collect();
        let ret = self.run(host, Arc::clone(func), &bits)?;
        Ok(match (&func.sig.ret, ret) {
            (Some(t), Some(v)) => Some(Value::from_bits(t, v)),
            _ => None,
        })
    }

    fn frame(func: Arc<Function>, args: &[u64], ret_to: Option<Reg>) -> Result<Frame, Error> {
        let n = func.reg_count();
        if n > limits::MAX_REGS || args.len() > n {
            return Err(malformed("defines too many registers"));
        }
        let mut regs = vec![0u64; n];
        regs.get_mut(..args.len())
            .ok_or_else(|| malformed("has fewer registers than parameters"))?
            .copy_from_slice(args);
        Ok(Frame {
            func,
            regs,
            block: 0,
            pc: 0,
            ret_to,
            loops: None,
        })
    }

    /// Tells tiering how many back-edges a call that leaves took.
    fn leave(&self, frame: &Frame) {
        if let (Some(tiering), Some(loops)) = (self.tiering, &frame.loops)
            && loops.total > 0
        {
            tiering.back_edges(&frame.func, loops.total);
        }
    }

    /// The main loop: runs the top frame until it calls an interpreted
    /// function (push a frame) or returns (pop one).
    fn run(&self, host: Host, func: Arc<Function>, args: &[u64]) -> Result<Option<u64>, Error> {
        let mut frames = vec![Self::frame(func, args, None)?];
        // Register slots of all live frames: bounded so that deep recursion
        // of a function with many registers cannot exhaust memory.
        let mut slots = frames.iter().map(|f| f.regs.len()).sum::<usize>();
        let mut fuel = self.fuel;
        let mut scratch = Vec::new();
        loop {
            let frame = frames
                .last_mut()
                .ok_or_else(|| malformed("left the interpreter without a frame"))?;
            let step = self.run_frame(host, frame, &mut fuel, &mut scratch);
            let step = match step {
                Ok(step) => step,
                Err(error) => {
                    for frame in &frames {
                        self.leave(frame);
                    }
                    return Err(error);
                }
            };
            match step {
                Exit::Call {
                    callee,
                    args,
                    ret_to,
                    block,
                    inst,
                } => {
                    let at = || {
                        frames
                            .last()
                            .map_or(Location::Nowhere, |f| at(&f.func, block, Some(inst)))
                    };
                    if frames.len() >= limits::MAX_CALL_DEPTH {
                        return Err(
                            Error::new(ErrorKind::CallDepth(limits::MAX_CALL_DEPTH)).or_at(at())
                        );
                    }
                    if callee.sig.params.len() != args.len() {
                        return Err(
                            malformed("calls a function with a different parameter count")
                                .or_at(at()),
                        );
                    }
                    slots = slots.saturating_add(callee.reg_count());
                    check_limit(
                        "interpreter stack size in registers",
                        slots,
                        limits::MAX_STACK_SLOTS,
                    )
                    .map_err(|e| e.or_at(at()))?;
                    frames.push(Self::frame(callee, &args, ret_to)?);
                }
                Exit::Return(value) => {
                    let done = frames
                        .pop()
                        .ok_or_else(|| malformed("left the interpreter without a frame"))?;
                    self.leave(&done);
                    slots = slots.saturating_sub(done.regs.len());
                    let Some(caller) = frames.last_mut() else {
                        return Ok(value);
                    };
                    if let (Some(r), Some(v)) = (done.ret_to, value) {
                        set(&mut caller.regs, r, v)?;
                    }
                }
            }
        }
    }

    /// Runs one frame from where it stopped until it calls an interpreted
    /// function or returns. Borrowing the frame's fields apart keeps the
    /// function shared without touching its reference count per block.
    fn run_frame(
        &self,
        host: Host,
        frame: &mut Frame,
        fuel: &mut Option<u64>,
        scratch: &mut Vec<u64>,
    ) -> Result<Exit, Error> {
        let Frame {
            func: shared,
            regs,
            block,
            pc,
            loops,
            ..
        } = frame;
        let func: &Function = shared;
        loop {
            let b = *block;
            let body = func.blocks.get(b).ok_or_else(|| {
                Error::new(ErrorKind::NoSuchBlock(u32::try_from(b).unwrap_or(u32::MAX)))
            })?;
            for (k, inst) in body.insts.iter().enumerate().skip(*pc) {
                burn(fuel).map_err(|e| e.or_at(at(func, b, Some(k))))?;
                let outcome = self.step(host, &inst.op, regs);
                match outcome.map_err(|e| e.or_at(at(func, b, Some(k))))? {
                    Step::Value(v) => {
                        if let Some(r) = inst.result {
                            set(regs, r, v)?;
                        }
                    }
                    Step::Enter(callee, args) => {
                        *pc = k + 1;
                        return Ok(Exit::Call {
                            callee,
                            args,
                            ret_to: inst.result,
                            block: b,
                            inst: k,
                        });
                    }
                }
            }
            let here = || at(func, b, None);
            burn(fuel).map_err(|e| e.or_at(here()))?;
            let target = match &body.term {
                Terminator::Br(t) => t,
                Terminator::CondBr {
                    cond,
                    then,
                    otherwise,
                } => {
                    if slot(regs, *cond).map_err(|e| e.or_at(here()))? != 0 {
                        then
                    } else {
                        otherwise
                    }
                }
                Terminator::Ret(v) => {
                    let value = v
                        .map(|r| slot(regs, r))
                        .transpose()
                        .map_err(|e| e.or_at(here()))?;
                    return Ok(Exit::Return(value));
                }
                Terminator::Trap(code) => {
                    return Err(
                        Error::new(ErrorKind::Trap(TrapKind::Explicit(*code))).or_at(here())
                    );
                }
            };
            *block = Self::jump(func, regs, target, scratch).map_err(|e| e.or_at(here()))?;
            *pc = 0;
            if *block <= b
                && let Some(tiering) = self.tiering
                && let Some(value) = self
                    .back_edge(host, tiering, shared, loops, *block, regs)
                    .map_err(|e| e.or_at(here()))?
            {
                return Ok(Exit::Return(value));
            }
        }
    }

    /// Counts a back-edge to `header`; when the loop is hot and tiering
    /// has an entry for it, runs the rest of the call there and returns
    /// its result (`Some`: the call is over).
    fn back_edge(
        &self,
        host: Host,
        tiering: &dyn Tiering,
        func: &Arc<Function>,
        loops: &mut Option<Box<LoopCounts>>,
        header: usize,
        regs: &[u64],
    ) -> Result<Option<Option<u64>>, Error> {
        let counts = loops.get_or_insert_with(|| Box::new(LoopCounts::new(func.blocks.len())));
        counts.total += 1;
        let Some(count) = counts.per_header.get_mut(header) else {
            return Ok(None);
        };
        *count = count.saturating_add(1);
        if counts.done {
            return Ok(None);
        }
        let threshold = tiering.back_edge_threshold();
        if !counts.hot && *count >= threshold && threshold != u32::MAX {
            counts.hot = true;
        }
        if !counts.hot || counts.refused[header] {
            return Ok(None);
        }
        let id = BlockId(u32::try_from(header).unwrap_or(u32::MAX));
        match tiering.loop_entry(func, id) {
            LoopAnswer::Enter { address, transfer } => {
                let buffer = transfer
                    .iter()
                    .map(|r| slot(regs, *r))
                    .collect::<Result<Vec<u64>, _>>()?;
                let mut args = host::NativeArgs::default();
                args.ints[0] = buffer.as_ptr() as u64;
                let float_ret = func.sig.ret.as_ref().is_some_and(Type::is_float);
                let raw = self.native(host, address, &args, float_ret)?;
                // The buffer lives until the entry has returned.
                drop(buffer);
                counts.done = true;
                Ok(Some(func.sig.ret.as_ref().map(|t| canonical(t, raw))))
            }
            LoopAnswer::NotHere => {
                counts.refused[header] = true;
                Ok(None)
            }
            LoopAnswer::Later => {
                counts.hot = false;
                counts.per_header.fill(0);
                Ok(None)
            }
            LoopAnswer::Never => {
                counts.done = true;
                Ok(None)
            }
        }
    }

    /// Calls native or compiled code, through [`NativeCalls`] when given.
    fn native(
        &self,
        host: Host,
        address: u64,
        args: &host::NativeArgs,
        float_ret: bool,
    ) -> Result<u64, Error> {
        match self.natives {
            Some(natives) => host.call_through(natives, address, args, float_ret),
            None => host.call_native(address, args, float_ret),
        }
    }

    /// Passes a branch's arguments to its target's parameters and returns
    /// the target block.
    fn jump(
        func: &Function,
        regs: &mut [u64],
        t: &BlockCall,
        scratch: &mut Vec<u64>,
    ) -> Result<usize, Error> {
        let k = usize::try_from(t.block.0).unwrap_or(usize::MAX);
        let target = func
            .blocks
            .get(k)
            .ok_or_else(|| Error::new(ErrorKind::NoSuchBlock(t.block.0)))?;
        if target.params.len() != t.args.len() {
            return Err(malformed("branches with the wrong argument count"));
        }
        // Read every argument before writing any parameter: a loop may
        // pass its parameters along in a different order.
        scratch.clear();
        for r in &t.args {
            scratch.push(slot(regs, *r)?);
        }
        for ((r, _), v) in target.params.iter().zip(scratch.iter()) {
            set(regs, *r, *v)?;
        }
        Ok(k)
    }

    /// Executes one operation.
    fn step(&self, host: Host, op: &Op, regs: &[u64]) -> Result<Step, Error> {
        let r = |reg: Reg| slot(regs, reg);
        let v = match op {
            Op::Const { ty, value } => const_value(ty, *value)?,
            Op::Unary { op, ty, arg } => {
                let a = r(*arg)?;
                match (op, ty) {
                    (UnOp::Neg, Type::Int(t)) => t.canonical(a.wrapping_neg()),
                    (UnOp::Neg, Type::F32) => a ^ 0x8000_0000,
                    (UnOp::Neg, Type::F64) => a ^ (1 << 63),
                    (UnOp::Not, Type::Int(t)) => t.canonical(!a),
                    (UnOp::Not, Type::Bool) => a ^ 1,
                    (_, t) => return Err(not_concrete(t)),
                }
            }
            Op::Binary { op, ty, lhs, rhs } => {
                let (a, b) = (r(*lhs)?, r(*rhs)?);
                match ty {
                    Type::Int(t) => int_binary(*op, *t, a, b)?,
                    Type::F32 => u64::from(
                        float_binary(*op, f32_of(a), f32_of(b))
                            .ok_or_else(|| not_concrete(ty))?
                            .to_bits(),
                    ),
                    Type::F64 => float_binary(*op, f64::from_bits(a), f64::from_bits(b))
                        .ok_or_else(|| not_concrete(ty))?
                        .to_bits(),
                    Type::Bool => match op {
                        BinOp::And => a & b,
                        BinOp::Or => a | b,
                        BinOp::Xor => a ^ b,
                        _ => return Err(not_concrete(ty)),
                    },
                    t => return Err(not_concrete(t)),
                }
            }
            Op::Cmp { op, ty, lhs, rhs } => {
                let (a, b) = (r(*lhs)?, r(*rhs)?);
                u64::from(match ty {
                    Type::Int(t) if t.signed() => compare(*op, a as i64, b as i64),
                    Type::F32 => compare(*op, f32_of(a), f32_of(b)),
                    Type::F64 => compare(*op, f64::from_bits(a), f64::from_bits(b)),
                    _ => compare(*op, a, b),
                })
            }
            Op::Cast { from, to, arg } => cast(from, to, r(*arg)?)?,
            Op::Bitcast { to, arg, .. } => canonical(to, r(*arg)?),
            Op::Select {
                cond,
                if_true,
                if_false,
                ..
            } => {
                if r(*cond)? != 0 {
                    r(*if_true)?
                } else {
                    r(*if_false)?
                }
            }
            Op::Load { ty, addr, index } => {
                let (address, size) = element(ty, r(*addr)?, index.map(r).transpose()?)?;
                canonical(ty, host.load(address, size))
            }
            Op::Store {
                ty,
                addr,
                index,
                value,
            } => {
                let (address, size) = element(ty, r(*addr)?, index.map(r).transpose()?)?;
                host.store(address, size, r(*value)?);
                0
            }
            Op::Addr {
                base,
                index,
                scale,
                disp,
                ..
            } => {
                let i = index.map(r).transpose()?.unwrap_or(0);
                r(*base)?
                    .wrapping_add(i.wrapping_mul(*scale))
                    .wrapping_add(*disp as u64)
            }
            Op::ElemAddr { elem: ty, .. } | Op::SizeOf { ty } | Op::AlignOf { ty } => {
                return Err(not_concrete(ty));
            }
            Op::FieldAddr { strukt, .. } => {
                return Err(not_concrete(&Type::Struct(strukt.clone())));
            }
            Op::Call { callee, sig, args } => {
                let args = args.iter().map(|a| r(*a)).collect::<Result<Vec<_>, _>>()?;
                let target = match callee {
                    Callee::Symbol(s) => self.resolver.resolve(s)?,
                    Callee::Import(s) => Target::Native(self.resolver.import(s)?),
                    Callee::Template { name, .. } => {
                        return Err(Error::new(ErrorKind::Unresolved(name.to_string())));
                    }
                };
                return self.enter(host, target, sig, args);
            }
            Op::CallIndirect { sig, target, args } => {
                let address = r(*target)?;
                // A call through a null function pointer traps like a null
                // load does, as compiled code does.
                if address == 0 {
                    return Err(Error::new(ErrorKind::Trap(TrapKind::NullPointer)));
                }
                let args = args.iter().map(|a| r(*a)).collect::<Result<Vec<_>, _>>()?;
                let target = self
                    .resolver
                    .target_at(address)
                    .ok_or_else(|| Error::new(ErrorKind::UnknownFunctionPointer(address)))?;
                return self.enter(host, target, sig, args);
            }
            Op::FuncAddr { callee, .. } => match callee {
                Callee::Symbol(s) => self.resolver.address_of(s)?,
                Callee::Import(s) => self.resolver.import(s)?,
                Callee::Template { name, .. } => {
                    return Err(Error::new(ErrorKind::Unresolved(name.to_string())));
                }
            },
        };
        Ok(Step::Value(v))
    }

    /// Starts a call: a new frame for interpreted code, a direct call for
    /// native code.
    fn enter(
        &self,
        host: Host,
        target: Target,
        sig: &Signature,
        args: Vec<u64>,
    ) -> Result<Step, Error> {
        match target {
            Target::Interpreted(f) => {
                if f.sig != *sig {
                    return Err(malformed(
                        "calls a function whose signature differs from the call site",
                    ));
                }
                Ok(Step::Enter(f, args))
            }
            Target::Native(address) => {
                let mut regs = host::NativeArgs::default();
                let (mut ni, mut nf) = (0, 0);
                for (t, v) in sig.params.iter().zip(args) {
                    let slot = if t.is_float() {
                        nf += 1;
                        regs.floats.get_mut(nf - 1)
                    } else {
                        ni += 1;
                        regs.ints.get_mut(ni - 1)
                    };
                    *slot.ok_or_else(|| {
                        Error::new(ErrorKind::TooManyArgs {
                            ints: ni,
                            floats: nf,
                            max_ints: host::INT_ARGUMENT_REGISTERS,
                            max_floats: host::FLOAT_ARGUMENT_REGISTERS,
                        })
                    })? = v;
                }
                let float_ret = sig.ret.as_ref().is_some_and(Type::is_float);
                let raw = self.native(host, address, &regs, float_ret)?;
                Ok(Step::Value(
                    sig.ret.as_ref().map_or(0, |t| canonical(t, raw)),
                ))
            }
        }
    }
}

enum Step {
    Value(u64),
    Enter(Arc<Function>, Vec<u64>),
}

/// Why a frame stopped running.
enum Exit {
    /// It calls an interpreted function from instruction `inst` of `block`
    /// (the location is only formatted if the call fails).
    Call {
        callee: Arc<Function>,
        args: Vec<u64>,
        ret_to: Option<Reg>,
        block: usize,
        inst: usize,
    },
    /// It returned, with a value unless the function returns nothing.
    Return(Option<u64>),
}

/// Spends one unit of fuel, if the run is metered.
fn burn(fuel: &mut Option<u64>) -> Result<(), Error> {
    match fuel {
        Some(0) => Err(Error::new(ErrorKind::OutOfFuel)),
        Some(f) => {
            *f -= 1;
            Ok(())
        }
        None => Ok(()),
    }
}
