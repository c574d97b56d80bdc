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
mod prepared;
mod semantics;

use std::cell::RefCell;
use std::num::NonZeroU64;
use std::rc::Rc;
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
use prepared::{Code, Edge, Inst, Jump, NO_INDEX, R, WINDOW, Way};
use semantics::{
    address, canonical, cast, compare, const_value, element, element_at, f32_of, float_binary,
    int_binary, not_concrete,
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

    /// An identity no other resolver in the process shares, when this one
    /// is stable: every symbol [`Resolver::resolve`] has resolved to an
    /// interpreted function resolves to that function for as long as the
    /// resolver lives. The interpreter then remembers the callee of each
    /// call site (per thread) and stops asking. `None`, the default, asks
    /// at every call: a resolver that counts calls, or whose answers
    /// change, must say nothing here.
    fn stable_identity(&self) -> Option<NonZeroU64> {
        None
    }

    /// The address of the [`jit_shared::MemoryDescriptor`] of the shared
    /// memory `name`, valid for as long as the resolver lives. The
    /// default knows no memory.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unresolved`] when no memory has that name.
    fn memory(&self, name: &str) -> Result<u64, Error> {
        Err(Error::new(ErrorKind::Unresolved(format!(
            "memory `{name}`"
        ))))
    }

    /// The address of the [`jit_shared::TableDescriptor`] of the shared
    /// table `name`, valid for as long as the resolver lives. The default
    /// knows no table.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unresolved`] when no table has that name.
    fn table(&self, name: &str) -> Result<u64, Error> {
        Err(Error::new(ErrorKind::Unresolved(format!("table `{name}`"))))
    }
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
    /// The function's decoded code, which holds the function.
    code: Rc<Code>,
    /// The frame's first register in the run's register stack; its
    /// registers are the `code.regs` slots from there.
    base: usize,
    /// The next instruction of `code` to run.
    pc: usize,
    /// Register of the caller receiving the result.
    ret_to: Option<Reg>,
    /// Back-edge counts of this call, when tiering counts them.
    loops: Option<Box<LoopCounts>>,
}

/// Back-edges one call took, per header, and what tiering said of them.
struct LoopCounts {
    /// Back-edges per header, [`REFUSED`] set for headers without a loop
    /// entry.
    per_header: Vec<u32>,
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
            total: 0,
            hot: false,
            done: false,
        }
    }
}

thread_local! {
    /// The register stack, frame list and scratch buffer of this thread's
    /// last run.
    static SPARE_STACKS: RefCell<Stacks> = const {
        RefCell::new(Stacks {
            regs: Vec::new(),
            frames: Vec::new(),
            scratch: Vec::new(),
        })
    };
}

/// The buffers of one run, kept for the next run on the thread so that a
/// call allocates nothing once the thread has made one.
#[derive(Default)]
struct Stacks {
    regs: Vec<u64>,
    frames: Vec<Frame>,
    /// Call arguments and parallel branch moves.
    scratch: Vec<u64>,
}

impl Stacks {
    /// Pushes a frame for the function decoded as `code` above the top
    /// frame, its first registers holding the arguments in `scratch` and
    /// the others zero.
    ///
    /// (A method on the stacks, so that its few arguments all travel in
    /// registers: it runs at every call.)
    fn push_frame(&mut self, code: Rc<Code>, ret_to: Option<Reg>) -> Result<(), Error> {
        let n = code.regs;
        let args = self.scratch.as_slice();
        if n > limits::MAX_REGS || args.len() > n {
            return Err(malformed("defines too many registers"));
        }
        let base = self.frames.last().map_or(0, |f| f.base + f.code.regs);
        // The stack reaches a window's worth of slots past the top frame's
        // registers, so that the top frame's window is all there. It never
        // shrinks in a run (nor between runs on a thread): slots past the
        // top frame's registers are never read before a frame zeroes them.
        let end = base + n + WINDOW;
        if self.regs.len() < end {
            self.regs.resize(end, 0);
        }
        let regs = self
            .regs
            .get_mut(base..base + n)
            .ok_or_else(|| malformed("lost the registers of a frame"))?;
        let (params, rest) = regs.split_at_mut(args.len());
        params.copy_from_slice(args);
        rest.fill(0);
        // Grown first and then built in place: a pushed frame is built
        // aside (in case the list grows) and copied, which costs more than
        // the rest of the call.
        self.frames.extend(std::iter::once_with(move || Frame {
            code,
            base,
            pc: 0,
            ret_to,
            loops: None,
        }));
        Ok(())
    }
}

/// Register slots of a stack kept for the next run; a larger one (deep
/// recursion) is given back.
const SPARE_STACK_SLOTS: usize = 1 << 16;

/// The bit of a header's count that marks it refused.
const REFUSED: u32 = 1 << 31;

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
        // A stable resolver's answer for the symbol called last from
        // outside is remembered, as a call site remembers its callee.
        let stable = self.resolver.stable_identity();
        if let Some(id) = stable
            && let Some(code) = prepared::entry(id, symbol)
        {
            return self.call_in(host, code, args);
        }
        match self.resolver.resolve(symbol)? {
            Target::Interpreted(f) => {
                let code = match stable {
                    Some(id) => prepared::remember_entry(id, symbol, &f),
                    None => prepared::code(&f),
                };
                self.call_in(host, code, args)
            }
            Target::Native(_) => Err(Error::new(ErrorKind::Unresolved(format!(
                "{symbol} (native code is not interpreted)"
            )))),
        }
    }

    /// [`Interpreter::call`] of the function decoded as `code`, once its
    /// contract is vouched for by `host`.
    fn call_in(&self, host: Host, code: Rc<Code>, args: &[Value]) -> Result<Option<Value>, Error> {
        let func = &code.func;
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
        // The common short argument lists need no allocation.
        let mut short = [0u64; 8];
        let long: Vec<u64>;
        let bits: &[u64] = match short.get_mut(..args.len()) {
            Some(bits) => {
                for (b, a) in bits.iter_mut().zip(args) {
                    *b = a.to_bits();
                }
                bits
            }
            None => {
                long = args.iter().map(Value::to_bits).collect();
                &long
            }
        };
        let ret = self
            .run(host, Rc::clone(&code), bits)
            .map_err(|fault| *fault)?;
        Ok(match (&code.func.sig.ret, ret) {
            (Some(t), Some(v)) => Some(Value::from_bits(t, v)),
            _ => None,
        })
    }

    /// Tells tiering how many back-edges a call that leaves took.
    fn leave(&self, frame: &Frame) {
        if let (Some(tiering), Some(loops)) = (self.tiering, &frame.loops)
            && loops.total > 0
        {
            tiering.back_edges(&frame.code.func, loops.total);
        }
    }

    /// Runs the function decoded as `code` to its end
    /// ([`Interpreter::run_frames`]) on this thread's spare stacks.
    ///
    /// Inlined with [`Interpreter::run_on`] into the one caller: the run's
    /// result is then read where it arrives, not copied on the way with
    /// wider loads than wrote it (which stall).
    #[inline(always)]
    fn run(&self, host: Host, code: Rc<Code>, args: &[u64]) -> Result<Option<u64>, Fault> {
        // The register stack and frame list of the last run on this thread
        // are used in place (a run nested in a run, through compiled code
        // calling an interpreted function, finds them held and takes fresh
        // ones, as does a run during thread teardown).
        let mut start = Some(code);
        let in_place = SPARE_STACKS.try_with(|spare| {
            let mut stacks = spare.try_borrow_mut().ok()?;
            let code = start.take()?;
            let result = self.run_on(host, code, args, &mut stacks);
            stacks.frames.clear();
            if stacks.regs.capacity() > SPARE_STACK_SLOTS {
                *stacks = Stacks::default();
            }
            Some(result)
        });
        if let Ok(Some(result)) = in_place {
            return result;
        }
        let code = start
            .take()
            .ok_or_else(|| Fault::new(malformed("lost the function it runs")))?;
        self.run_on(host, code, args, &mut Stacks::default())
    }

    #[inline(always)]
    fn run_on(
        &self,
        host: Host,
        code: Rc<Code>,
        args: &[u64],
        stacks: &mut Stacks,
    ) -> Result<Option<u64>, Fault> {
        // Room for a few calls' registers up front, so that shallow calls
        // do not grow the stack step by step.
        stacks
            .regs
            .reserve(code.regs.saturating_mul(4).clamp(64, 1 << 12));
        stacks.frames.reserve(8);
        stacks.scratch.clear();
        stacks.scratch.extend_from_slice(args);
        stacks.push_frame(code, None)?;
        // The frames left, the first one after a return, all frames after
        // an error, leave the interpreter here.
        let result = match self.fuel {
            Some(limit) => self.run_frames(host, stacks, Metered(limit)),
            None => self.run_frames(host, stacks, Unmetered),
        };
        for frame in &stacks.frames {
            self.leave(frame);
        }
        result
    }

    /// Runs the top frame until it calls an interpreted function (push a
    /// frame) or returns (pop one), until the first frame returns, and
    /// returns its result. The registers of all frames live in one stack,
    /// each frame's above its caller's.
    ///
    /// A frame whose registers fit a window runs in the loop inlined here,
    /// so that a call or a return switches frames without leaving this
    /// function (and saving and restoring its state); larger frames run
    /// through a call of their own.
    ///
    /// It is compiled once per kind of budget, so that a run without a
    /// limit counts nothing.
    #[inline(never)]
    fn run_frames<B: Budget>(
        &self,
        host: Host,
        stacks: &mut Stacks,
        mut fuel: B,
    ) -> Result<Option<u64>, Fault> {
        // Register slots of all live frames: bounded so that deep recursion
        // of a function with many registers cannot exhaust memory.
        let mut slots = stacks.frames.iter().map(|f| f.code.regs).sum::<usize>();
        loop {
            let Stacks {
                regs: stack,
                frames,
                scratch,
            } = &mut *stacks;
            let frame = frames
                .last_mut()
                .ok_or_else(|| malformed("left the interpreter without a frame"))?;
            let step = match stack.get_mut(frame.base..) {
                Some(regs) if frame.code.regs < WINDOW => match regs.first_chunk_mut::<WINDOW>() {
                    Some(window) => self.run_frame(host, frame, window, &mut fuel, scratch),
                    None => Err(malformed("lost the registers of a frame").into()),
                },
                Some(regs) => self.run_large_frame(host, frame, regs, &mut fuel, scratch),
                None => Err(malformed("lost the registers of a frame").into()),
            }?;
            match step {
                Exit::Call { code, ret_to, pc } => {
                    let at = || {
                        frames.last().map_or(Location::Nowhere, |f| {
                            let (block, inst) = f.code.origin(&f.code.func, pc);
                            at(&f.code.func, block, inst)
                        })
                    };
                    if frames.len() >= limits::MAX_CALL_DEPTH {
                        return Err(Error::new(ErrorKind::CallDepth(limits::MAX_CALL_DEPTH))
                            .or_at(at())
                            .into());
                    }
                    if code.func.sig.params.len() != scratch.len() {
                        return Err(
                            malformed("calls a function with a different parameter count")
                                .or_at(at())
                                .into(),
                        );
                    }
                    slots = slots.saturating_add(code.regs);
                    check_limit(
                        "interpreter stack size in registers",
                        slots,
                        limits::MAX_STACK_SLOTS,
                    )
                    .map_err(|e| e.or_at(at()))?;
                    stacks.push_frame(code, ret_to)?;
                }
                Exit::Return(value) => {
                    if frames.len() <= 1 {
                        return Ok(value);
                    }
                    // Dropped where it is: a frame moved out of the list is
                    // copied with wider loads than wrote it, which stall.
                    let done = frames
                        .last()
                        .ok_or_else(|| malformed("left the interpreter without a frame"))?;
                    self.leave(done);
                    slots = slots.saturating_sub(done.code.regs);
                    let ret_to = done.ret_to;
                    frames.truncate(frames.len() - 1);
                    let caller = frames
                        .last_mut()
                        .ok_or_else(|| malformed("left the interpreter without a frame"))?;
                    if let (Some(r), Some(v)) = (ret_to, value) {
                        let regs = stack
                            .get_mut(caller.base..caller.base + caller.code.regs)
                            .ok_or_else(|| malformed("lost the registers of a frame"))?;
                        set(regs, r, v)?;
                    }
                }
            }
        }
    }

    /// [`Interpreter::run_frame`] for a frame with more registers than a
    /// window holds, kept out of line: only the general path runs it.
    #[inline(never)]
    fn run_large_frame<B: Budget>(
        &self,
        host: Host,
        frame: &mut Frame,
        regs: &mut [u64],
        fuel: &mut B,
        scratch: &mut Vec<u64>,
    ) -> Result<Exit, Fault> {
        self.run_frame(host, frame, regs, fuel, scratch)
    }

    /// Runs one frame from where it stopped until it calls an interpreted
    /// function or returns. `regs` start with the frame's registers.
    #[inline(always)]
    fn run_frame<W: Registers + ?Sized, B: Budget>(
        &self,
        host: Host,
        frame: &mut Frame,
        regs: &mut W,
        fuel: &mut B,
        scratch: &mut Vec<u64>,
    ) -> Result<Exit, Fault> {
        // The program counter and the fuel stay in locals while the frame
        // runs (in registers, as `execute` is inlined here).
        let (mut pc, mut left) = (frame.pc, *fuel);
        let exit = self.execute(
            host,
            &frame.code,
            &mut frame.loops,
            regs,
            &mut pc,
            &mut left,
            scratch,
        );
        frame.pc = pc;
        *fuel = left;
        exit
    }

    /// The loop over decoded instructions: the fast forms inline, the
    /// general path (`step`, `jump`) for those decoding left as they were.
    /// Decoding checked every register operand against the frame's
    /// register count, `code.regs`; the general path sees only those.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn execute<W: Registers + ?Sized, B: Budget>(
        &self,
        host: Host,
        code: &Code,
        loops: &mut Option<Box<LoopCounts>>,
        regs: &mut W,
        pc: &mut usize,
        fuel: &mut B,
        scratch: &mut Vec<u64>,
    ) -> Result<Exit, Fault> {
        let func: &Function = &code.func;
        let insts: &[Inst] = &code.insts;
        loop {
            let here = *pc;
            let Some(inst) = insts.get(here) else {
                // Only a function without blocks has no first instruction.
                return Err(Error::new(ErrorKind::NoSuchBlock(
                    u32::try_from(func.blocks.len()).unwrap_or(u32::MAX),
                ))
                .into());
            };
            *pc = here + 1;
            // `fuel` is a local of `run_frame` (this is inlined there), so
            // it stays in a register.
            if !fuel.take() {
                return Err(located(func, code, here, Error::new(ErrorKind::OutOfFuel)).into());
            }
            // The branch taken, if this is one (a fused comparison branches
            // from the next slot).
            let mut branch = here;
            // Matching the place, not a copy, loads each operand in its arm.
            let target = match *inst {
                Inst::General { block, inst } => {
                    let regs = regs.defined(code.regs);
                    match self.general(host, func, (block, inst), here, regs, scratch)? {
                        Some(call) => return Ok(call),
                        None => continue,
                    }
                }
                Inst::Call { block, inst, site } => {
                    let regs = regs.defined(code.regs);
                    match self.call_site(
                        host,
                        func,
                        code,
                        (block, inst, site),
                        here,
                        regs,
                        scratch,
                    )? {
                        Some(call) => return Ok(call),
                        None => continue,
                    }
                }
                Inst::Const { d, k } => {
                    regs[d as usize] = code.consts[k as usize];
                    continue;
                }
                Inst::Add64 { d, a, b } => {
                    regs[d as usize] = regs[a as usize].wrapping_add(regs[b as usize]);
                    continue;
                }
                Inst::Sub64 { d, a, b } => {
                    regs[d as usize] = regs[a as usize].wrapping_sub(regs[b as usize]);
                    continue;
                }
                Inst::Mul64 { d, a, b } => {
                    regs[d as usize] = regs[a as usize].wrapping_mul(regs[b as usize]);
                    continue;
                }
                Inst::And { d, a, b } => {
                    regs[d as usize] = regs[a as usize] & regs[b as usize];
                    continue;
                }
                Inst::Or { d, a, b } => {
                    regs[d as usize] = regs[a as usize] | regs[b as usize];
                    continue;
                }
                Inst::Xor { d, a, b } => {
                    regs[d as usize] = regs[a as usize] ^ regs[b as usize];
                    continue;
                }
                Inst::Int { op, t, d, a, b } => {
                    regs[d as usize] = int_binary(op, t, regs[a as usize], regs[b as usize])
                        .map_err(|e| located(func, code, here, e))?;
                    continue;
                }
                Inst::F64 { op, d, a, b } => {
                    let (x, y) = (
                        f64::from_bits(regs[a as usize]),
                        f64::from_bits(regs[b as usize]),
                    );
                    regs[d as usize] = float_binary(op, x, y)
                        .ok_or_else(|| located(func, code, here, not_concrete(&Type::F64)))?
                        .to_bits();
                    continue;
                }
                Inst::F64Add { d, a, b } => {
                    let (x, y) = (
                        f64::from_bits(regs[a as usize]),
                        f64::from_bits(regs[b as usize]),
                    );
                    regs[d as usize] = (x + y).to_bits();
                    continue;
                }
                Inst::F64Mul { d, a, b } => {
                    let (x, y) = (
                        f64::from_bits(regs[a as usize]),
                        f64::from_bits(regs[b as usize]),
                    );
                    regs[d as usize] = (x * y).to_bits();
                    continue;
                }
                Inst::F32 { op, d, a, b } => {
                    let (x, y) = (f32_of(regs[a as usize]), f32_of(regs[b as usize]));
                    regs[d as usize] = u64::from(
                        float_binary(op, x, y)
                            .ok_or_else(|| located(func, code, here, not_concrete(&Type::F32)))?
                            .to_bits(),
                    );
                    continue;
                }
                Inst::CmpSigned { op, d, a, b } => {
                    let (x, y) = (regs[a as usize] as i64, regs[b as usize] as i64);
                    regs[d as usize] = u64::from(compare(op, x, y));
                    continue;
                }
                Inst::CmpUnsigned { op, d, a, b } => {
                    regs[d as usize] = u64::from(compare(op, regs[a as usize], regs[b as usize]));
                    continue;
                }
                Inst::CmpF64 { op, d, a, b } => {
                    let (x, y) = (
                        f64::from_bits(regs[a as usize]),
                        f64::from_bits(regs[b as usize]),
                    );
                    regs[d as usize] = u64::from(compare(op, x, y));
                    continue;
                }
                Inst::CmpF32 { op, d, a, b } => {
                    let (x, y) = (f32_of(regs[a as usize]), f32_of(regs[b as usize]));
                    regs[d as usize] = u64::from(compare(op, x, y));
                    continue;
                }
                Inst::CmpBr {
                    signed,
                    op,
                    d,
                    a,
                    b,
                    then,
                    otherwise,
                } => {
                    let (x, y) = (regs[a as usize], regs[b as usize]);
                    let taken = if signed {
                        compare(op, x as i64, y as i64)
                    } else {
                        compare(op, x, y)
                    };
                    regs[d as usize] = u64::from(taken);
                    if !fuel.take() {
                        continue;
                    }
                    branch = here + 1;
                    pick(taken, then, otherwise)
                }
                Inst::LtBr {
                    d,
                    a,
                    b,
                    then,
                    otherwise,
                } => {
                    let taken = (regs[a as usize] as i64) < (regs[b as usize] as i64);
                    regs[d as usize] = u64::from(taken);
                    if !fuel.take() {
                        continue;
                    }
                    branch = here + 1;
                    pick(taken, then, otherwise)
                }
                Inst::Canonical { d, a, canon } => {
                    regs[d as usize] = canon.apply(regs[a as usize]);
                    continue;
                }
                Inst::Select { d, c, t, f } => {
                    let pick = if regs[c as usize] != 0 { t } else { f };
                    regs[d as usize] = regs[pick as usize];
                    continue;
                }
                Inst::Load {
                    d,
                    a,
                    i,
                    size,
                    canon,
                } => {
                    let address = element_address(regs, a, i, size)
                        .map_err(|e| located(func, code, here, e))?;
                    regs[d as usize] = canon.apply(host.load(address, u64::from(size)));
                    continue;
                }
                Inst::Load64 { d, a, i } => {
                    let address = element_at(regs[a as usize], regs[i as usize], 8)
                        .map_err(|e| located(func, code, here, e))?;
                    regs[d as usize] = host.load(address, 8);
                    continue;
                }
                Inst::LoadAdd64 { d, a, i, s, o } => {
                    let address = element_at(regs[a as usize], regs[i as usize], 8)
                        .map_err(|e| located(func, code, here, e))?;
                    regs[d as usize] = host.load(address, 8);
                    if !fuel.take() {
                        continue;
                    }
                    regs[s as usize] = regs[o as usize].wrapping_add(regs[d as usize]);
                    *pc = here + 2;
                    continue;
                }
                Inst::Store { a, i, v, size } => {
                    let address = element_address(regs, a, i, size)
                        .map_err(|e| located(func, code, here, e))?;
                    host.store(address, u64::from(size), regs[v as usize]);
                    continue;
                }
                Inst::Addr { d, a, i, k } => {
                    let (scale, disp) = code.addrs[k as usize];
                    let index = if i == NO_INDEX { 0 } else { regs[i as usize] };
                    regs[d as usize] = address(regs[a as usize], index, scale, disp);
                    continue;
                }
                Inst::Br { to } => to,
                Inst::AddBr { d, a, b, to } => {
                    regs[d as usize] = regs[a as usize].wrapping_add(regs[b as usize]);
                    if !fuel.take() {
                        continue;
                    }
                    branch = here + 1;
                    to
                }
                Inst::CondBr { c, then, otherwise } => pick(regs[c as usize] != 0, then, otherwise),
                Inst::Ret { r } => {
                    let value = (r != NO_INDEX).then(|| regs[r as usize]);
                    return Ok(Exit::Return(value));
                }
                Inst::GeneralTerm { block } => {
                    let defined = regs.defined(code.regs);
                    match self.general_term(func, code, block, defined, scratch)? {
                        Branch::Exit(exit) => return Ok(exit),
                        Branch::To(edge) => {
                            if let Some(value) =
                                self.follow(host, code, loops, regs, pc, branch, &edge, scratch)?
                            {
                                return Ok(Exit::Return(value));
                            }
                            continue;
                        }
                    }
                }
            };
            let back;
            let edge = match target.way() {
                Way::Next => {
                    *pc = branch + 1;
                    continue;
                }
                Way::To(to) => {
                    *pc = to;
                    continue;
                }
                Way::Back(to) if self.tiering.is_none() => {
                    *pc = to;
                    continue;
                }
                Way::Back(to) => {
                    let header = code
                        .block_at(to)
                        .ok_or_else(|| malformed("decoded a jump into a block"))?;
                    back = Edge::plain(header, to, true);
                    &back
                }
                Way::Edge(e) => &code.edges[e],
            };
            if let Some(value) = self.follow(host, code, loops, regs, pc, branch, edge, scratch)? {
                return Ok(Exit::Return(value));
            }
        }
    }

    /// Takes `edge`, the branch of the decoded instruction at `branch`:
    /// passes its arguments, moves `pc` to its target and counts a
    /// back-edge for tiering. `Some`: the call continued in compiled code,
    /// which returned this.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn follow<W: Registers + ?Sized>(
        &self,
        host: Host,
        code: &Code,
        loops: &mut Option<Box<LoopCounts>>,
        regs: &mut W,
        pc: &mut usize,
        branch: usize,
        edge: &Edge,
        scratch: &mut Vec<u64>,
    ) -> Result<Option<Option<u64>>, Fault> {
        take(code, edge, regs, scratch);
        *pc = edge.pc as usize;
        match self.tiering {
            Some(tiering) if edge.back => self
                .back_edge(
                    host,
                    tiering,
                    &code.func,
                    loops,
                    edge.block as usize,
                    regs.defined(code.regs),
                )
                .map_err(|e| located(&code.func, code, branch, e).into()),
            _ => Ok(None),
        }
    }

    /// Runs instruction `(block, inst)` (decoded at `pc`) the general
    /// way; a call of an interpreted function leaves the frame to start
    /// the callee's.
    #[inline(never)]
    fn general(
        &self,
        host: Host,
        func: &Function,
        (block, inst): (u32, u32),
        pc: usize,
        regs: &mut [u64],
        scratch: &mut Vec<u64>,
    ) -> Result<Option<Exit>, Fault> {
        let (b, k) = (block as usize, inst as usize);
        let Some(inst) = func.blocks.get(b).and_then(|body| body.insts.get(k)) else {
            return Err(malformed("decoded an instruction it does not have").into());
        };
        match self
            .step(host, &inst.op, regs, scratch)
            .map_err(|e| e.or_at(at(func, b, Some(k))))?
        {
            Step::Value(v) => {
                if let Some(r) = inst.result {
                    set(regs, r, v)?;
                }
                Ok(None)
            }
            Step::Enter(callee) => Ok(Some(Exit::Call {
                code: prepared::code(&callee),
                ret_to: inst.result,
                pc,
            })),
        }
    }

    /// Runs the call of a symbol at `(block, inst)` (decoded at `pc`), with
    /// the callee its site remembers when the resolver is stable, else the
    /// general way (remembering the callee for the next time).
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn call_site(
        &self,
        host: Host,
        func: &Function,
        code: &Code,
        (block, inst, site): (u32, u32, u32),
        pc: usize,
        regs: &mut [u64],
        scratch: &mut Vec<u64>,
    ) -> Result<Option<Exit>, Fault> {
        let stable = self.resolver.stable_identity();
        let site = code.sites.get(site as usize);
        if let (Some(id), Some(site)) = (stable, site)
            && let Some(callee) = site.callee(id)
        {
            let (b, k) = (block as usize, inst as usize);
            let Some(inst) = func.blocks.get(b).and_then(|body| body.insts.get(k)) else {
                return Err(malformed("decoded an instruction it does not have").into());
            };
            let Op::Call { args, .. } = &inst.op else {
                return Err(malformed("decoded a call that is not one").into());
            };
            // What `step` does for the call, less the resolution the site
            // remembers and the signature check it passed then.
            read_args(regs, args, scratch).map_err(|e| e.or_at(at(func, b, Some(k))))?;
            return Ok(Some(Exit::Call {
                code: callee,
                ret_to: inst.result,
                pc,
            }));
        }
        let exit = self.general(host, func, (block, inst), pc, regs, scratch)?;
        if let (Some(id), Some(site), Some(Exit::Call { code, .. })) = (stable, site, &exit) {
            site.remember(id, code);
        }
        Ok(exit)
    }

    /// Runs the terminator of `block` the general way. A branch has
    /// passed its arguments already; the edge it returns moves nothing.
    #[inline(never)]
    fn general_term(
        &self,
        func: &Function,
        code: &Code,
        block: u32,
        regs: &mut [u64],
        scratch: &mut Vec<u64>,
    ) -> Result<Branch, Fault> {
        let b = block as usize;
        let Some(body) = func.blocks.get(b) else {
            return Err(malformed("decoded a terminator it does not have").into());
        };
        let here = || at(func, b, None);
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
                return Ok(Branch::Exit(Exit::Return(value)));
            }
            Terminator::Trap(code) => {
                return Err(Error::new(ErrorKind::Trap(TrapKind::Explicit(*code)))
                    .or_at(here())
                    .into());
            }
        };
        let k = Self::jump(func, regs, target, scratch).map_err(|e| e.or_at(here()))?;
        let Some(&start) = code.block_starts.get(k) else {
            return Err(malformed("decoded a block it does not have").into());
        };
        Ok(Branch::To(Edge::plain(
            target.block.0,
            start as usize,
            k <= b,
        )))
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
        // The count stays below the refused bit.
        if *count & !REFUSED < REFUSED - 1 {
            *count += 1;
        }
        if counts.done {
            return Ok(None);
        }
        let (taken, refused) = (*count & !REFUSED, *count & REFUSED != 0);
        let threshold = tiering.back_edge_threshold();
        if !counts.hot && taken >= threshold && threshold != u32::MAX {
            counts.hot = true;
        }
        if !counts.hot || refused {
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
                if let Some(count) = counts.per_header.get_mut(header) {
                    *count |= REFUSED;
                }
                Ok(None)
            }
            LoopAnswer::Later => {
                counts.hot = false;
                for count in &mut counts.per_header {
                    *count &= REFUSED;
                }
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

    /// Executes one operation; a call's arguments are left in `args`.
    fn step(&self, host: Host, op: &Op, regs: &[u64], args: &mut Vec<u64>) -> Result<Step, Error> {
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
                address(r(*base)?, i, *scale, *disp)
            }
            Op::ElemAddr { elem: ty, .. } | Op::SizeOf { ty } | Op::AlignOf { ty } => {
                return Err(not_concrete(ty));
            }
            Op::FieldAddr { strukt, .. } => {
                return Err(not_concrete(&Type::Struct(Box::new(strukt.clone()))));
            }
            Op::Call {
                callee,
                sig,
                args: operands,
            } => {
                read_args(regs, operands, args)?;
                let target = match callee {
                    Callee::Symbol(s) => self.resolver.resolve(s)?,
                    Callee::Import(s) => Target::Native(self.resolver.import(s)?),
                    Callee::Template { name, .. } => {
                        return Err(Error::new(ErrorKind::Unresolved(name.to_string())));
                    }
                };
                return self.enter(host, target, sig, args);
            }
            Op::CallIndirect {
                sig,
                target,
                args: operands,
            } => {
                let address = r(*target)?;
                // A call through a null function pointer traps like a null
                // load does, as compiled code does.
                if address == 0 {
                    return Err(Error::new(ErrorKind::Trap(TrapKind::NullPointer)));
                }
                read_args(regs, operands, args)?;
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
            Op::MemLoad { ty, memory, offset } => {
                let size = ty.scalar_size().ok_or_else(|| not_concrete(ty))?;
                let desc = self.resolver.memory(memory)?;
                canonical(ty, host.mem_load(desc, r(*offset)?, size)?)
            }
            Op::MemStore {
                ty,
                memory,
                offset,
                value,
            } => {
                let size = ty.scalar_size().ok_or_else(|| not_concrete(ty))?;
                let desc = self.resolver.memory(memory)?;
                host.mem_store(desc, r(*offset)?, size, r(*value)?)?;
                0
            }
            Op::MemSize { memory } => host.mem_size(self.resolver.memory(memory)?),
            Op::MemGrow { memory, delta } => {
                host.mem_grow(self.resolver.memory(memory)?, r(*delta)? as i64) as u64
            }
            Op::TableGet { table, index } => {
                host.table_get(self.resolver.table(table)?, r(*index)?)?
            }
            Op::TableSet {
                table,
                index,
                value,
            } => {
                host.table_set(self.resolver.table(table)?, r(*index)?, r(*value)?)?;
                0
            }
            Op::TableSize { table } => host.table_size(self.resolver.table(table)?),
            Op::TableGrow { table, delta } => {
                host.table_grow(self.resolver.table(table)?, r(*delta)? as i64) as u64
            }
            Op::CallTable {
                table,
                sig,
                index,
                args: operands,
            } => {
                let address = host.table_get(self.resolver.table(table)?, r(*index)?)?;
                if address == 0 {
                    return Err(Error::new(ErrorKind::Trap(TrapKind::NullPointer)));
                }
                read_args(regs, operands, args)?;
                let target = self
                    .resolver
                    .target_at(address)
                    .ok_or_else(|| Error::new(ErrorKind::UnknownFunctionPointer(address)))?;
                return self.enter(host, target, sig, args);
            }
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
        args: &[u64],
    ) -> Result<Step, Error> {
        match target {
            Target::Interpreted(f) => {
                if f.sig != *sig {
                    return Err(malformed(
                        "calls a function whose signature differs from the call site",
                    ));
                }
                Ok(Step::Enter(f))
            }
            Target::Native(address) => {
                let mut regs = host::NativeArgs::default();
                let (mut ni, mut nf) = (0, 0);
                for (t, &v) in sig.params.iter().zip(args) {
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
    /// A call of an interpreted function, with the arguments in the run's
    /// scratch buffer.
    Enter(Arc<Function>),
}

/// An error on its way out of the main loop, boxed: the loop's results
/// then fit in registers, where an [`Error`] of many words was copied
/// through memory at every call and return of the interpreted program.
type Fault = Box<Error>;

/// Why a frame stopped running.
enum Exit {
    /// It calls an interpreted function, with the arguments in the run's
    /// scratch buffer, from the instruction at `pc` (the location is only
    /// worked out if the call fails).
    Call {
        /// The callee's decoded code.
        code: Rc<Code>,
        ret_to: Option<Reg>,
        pc: usize,
    },
    /// It returned, with a value unless the function returns nothing.
    Return(Option<u64>),
}

/// Reads a call's arguments into `args`.
fn read_args(regs: &[u64], operands: &[Reg], args: &mut Vec<u64>) -> Result<(), Error> {
    args.clear();
    for &a in operands {
        args.push(slot(regs, a)?);
    }
    Ok(())
}

/// `error` located at the decoded instruction `pc` of `func`, unless it
/// already has a location.
#[cold]
fn located(func: &Function, code: &Code, pc: usize, error: Error) -> Error {
    let (block, inst) = code.origin(func, pc);
    error.or_at(at(func, block, inst))
}

/// The address of element `i` (none: `NO_INDEX`) of `size` bytes at
/// register `a`.
#[inline(always)]
fn element_address<W: Registers + ?Sized>(regs: &W, a: R, i: R, size: u8) -> Result<u64, Error> {
    let index = if i == NO_INDEX { 0 } else { regs[i as usize] };
    element_at(regs[a as usize], index, u64::from(size))
}

/// The target of a two-way branch: `then` when `taken`.
///
/// Chosen by a jump, not a conditional move: the next instruction's
/// address must not wait for the condition, which the processor predicts
/// well for loop tests (with a conditional move every later instruction of
/// the frame depends on the comparison and the loads before it).
#[inline(always)]
fn pick(taken: bool, then: Jump, otherwise: Jump) -> Jump {
    if taken {
        then
    } else {
        // Opaque to the optimiser, so the two ways cannot be merged into
        // a conditional move.
        std::hint::black_box(otherwise)
    }
}

/// Passes a decoded branch's arguments to its target's parameters.
#[inline(always)]
fn take<W: Registers + ?Sized>(code: &Code, edge: &Edge, regs: &mut W, scratch: &mut Vec<u64>) {
    let moves = &code.moves[edge.from as usize..edge.to as usize];
    if edge.parallel {
        scratch.clear();
        scratch.extend(moves.iter().map(|&(a, _)| regs[a as usize]));
        for (&(_, p), &v) in moves.iter().zip(scratch.iter()) {
            regs[p as usize] = v;
        }
    } else {
        for &(a, p) in moves {
            regs[p as usize] = regs[a as usize];
        }
    }
}

/// A frame's registers as the main loop indexes them: a window of
/// [`WINDOW`] slots, which a decoded register index cannot leave (so no
/// bounds check is made), or, for a function too large for one, the slice
/// from its first register (which only the general path uses).
trait Registers: std::ops::IndexMut<usize, Output = u64> {
    /// The first `n` registers, those the function defines, for the
    /// general path, whose errors name registers past them as undefined.
    fn defined(&mut self, n: usize) -> &mut [u64];
}

impl Registers for [u64; WINDOW] {
    #[inline(always)]
    fn defined(&mut self, n: usize) -> &mut [u64] {
        let n = n.min(WINDOW);
        &mut self[..n]
    }
}

impl Registers for [u64] {
    #[inline(always)]
    fn defined(&mut self, n: usize) -> &mut [u64] {
        let n = n.min(self.len());
        &mut self[..n]
    }
}

/// Where a general terminator leaves the frame's code.
enum Branch {
    /// To a block, along an edge without moves.
    To(Edge),
    /// Out of the frame.
    Exit(Exit),
}

/// The instruction budget of a run: one unit per instruction and per
/// terminator.
trait Budget: Copy {
    /// Takes one unit; `false` when none is left. The second instruction
    /// of a fused pair takes its own: without it the pair stops after its
    /// first instruction, and the second runs from its own slot and reports
    /// running out there.
    fn take(&mut self) -> bool;
}

/// A limited budget: the units left.
#[derive(Clone, Copy)]
struct Metered(u64);

impl Budget for Metered {
    #[inline(always)]
    fn take(&mut self) -> bool {
        match self.0.checked_sub(1) {
            Some(left) => {
                self.0 = left;
                true
            }
            None => false,
        }
    }
}

/// No limit: nothing to count.
#[derive(Clone, Copy)]
struct Unmetered;

impl Budget for Unmetered {
    #[inline(always)]
    fn take(&mut self) -> bool {
        true
    }
}
