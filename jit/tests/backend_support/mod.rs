//! Shared support of the backend tests: a JIT over a template library
//! that compiles instantiations on demand (callees first, cycles through
//! slots), calls them through the trap runtime, and compares outcomes
//! with the interpreter bit for bit.
#![allow(dead_code, unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use execmem::{Config, ExecMemory};
use jit::backend::{Backend, CallResolver, CallTarget, CompiledFunction, TrapRuntime};
use jit::instantiate::instantiate_symbol;
use jit::interp::{Interpreter, LibraryResolver, Value};
use jit::ir::{Callee, Function, Library, Signature};
use jit::verify::RegTypes;
use jit::{Error, ErrorKind, TrapKind};

/// The collections library's imports (libc's allocator and memcpy) as
/// the shared test resolver registers them.
pub fn natives() -> Vec<(&'static str, u64)> {
    let lib = crate::common::collections();
    let r = crate::common::resolver(&lib);
    ["malloc", "realloc", "free", "memcpy"]
        .into_iter()
        .map(|n| (n, jit::interp::Resolver::import(&r, n).expect("registered")))
        .collect()
}

/// The outcome of a call, comparable bit for bit: the result's type and
/// bits, or the trap.
pub type Outcome = Result<Option<(std::mem::Discriminant<Value>, u64)>, TrapKind>;

fn outcome(r: Result<Option<Value>, TrapKind>) -> Outcome {
    r.map(|v| v.map(|v| (std::mem::discriminant(&v), v.to_bits())))
}

/// The interpreter's outcome; errors other than traps fail the test.
pub fn interp_outcome(r: Result<Option<Value>, Error>) -> Outcome {
    outcome(match r {
        Ok(v) => Ok(v),
        Err(Error {
            kind: ErrorKind::Trap(t),
            ..
        }) => Err(t),
        Err(e) => panic!("interpreter failed: {e}"),
    })
}

/// Executable memory and the trap runtime, shared by a test's JITs.
pub struct Machine {
    pub memory: ExecMemory,
    pub runtime: TrapRuntime,
    pub backend: Backend,
}

impl Machine {
    pub fn new() -> Self {
        let memory = ExecMemory::new(Config::default()).expect("executable memory");
        let runtime = TrapRuntime::new(&memory).expect("trap runtime");
        let backend = Backend::new(runtime.options());
        Machine {
            memory,
            runtime,
            backend,
        }
    }

    /// Compiles one verified function whose callees `resolver` knows.
    pub fn compile(
        &self,
        f: &Function,
        types: &RegTypes,
        resolver: &mut dyn CallResolver,
    ) -> CompiledFunction {
        self.backend
            .compile(&self.memory, f, types, resolver)
            .unwrap_or_else(|e| panic!("compiling {}: {e}", f.name))
    }

    /// Calls compiled code with interpreter values.
    pub fn call(&self, entry: *const u8, sig: &Signature, args: &[Value]) -> Outcome {
        outcome(self.call_values(entry, sig, args))
    }

    /// Calls compiled code with interpreter values; the result as a value.
    pub fn call_values(
        &self,
        entry: *const u8,
        sig: &Signature,
        args: &[Value],
    ) -> Result<Option<Value>, TrapKind> {
        // SAFETY: the tests pass buffers large enough for every access
        // and call functions with their own signatures.
        unsafe { self.runtime.call(entry, sig, args) }
    }
}

enum State {
    Done(u64, Signature),
    /// Being compiled: calls go through this slot, filled when done.
    Compiling(Box<AtomicU64>),
}

/// Compiles a library's instantiations on first use, callees first.
pub struct Jit<'l> {
    pub lib: &'l Library,
    pub machine: std::rc::Rc<Machine>,
    natives: HashMap<String, u64>,
    states: RefCell<HashMap<String, State>>,
    keep: RefCell<Vec<CompiledFunction>>,
    // Boxed: compiled code holds each slot's address, which must not move.
    #[allow(clippy::vec_box)]
    slots: RefCell<Vec<Box<AtomicU64>>>,
}

impl<'l> Jit<'l> {
    pub fn new(lib: &'l Library) -> Self {
        Self::with_machine(lib, std::rc::Rc::new(Machine::new()))
    }

    /// A JIT publishing into an existing machine's memory.
    pub fn with_machine(lib: &'l Library, machine: std::rc::Rc<Machine>) -> Self {
        Jit {
            lib,
            machine,
            natives: natives()
                .into_iter()
                .map(|(n, a)| (n.to_owned(), a))
                .collect(),
            states: RefCell::default(),
            keep: RefCell::default(),
            slots: RefCell::default(),
        }
    }

    /// The entry and signature of `symbol`, compiling it on first use.
    pub fn entry(&self, symbol: &str) -> (u64, Signature) {
        if let Some(State::Done(e, s)) = self.states.borrow().get(symbol) {
            return (*e, s.clone());
        }
        let inst = instantiate_symbol(self.lib, symbol)
            .unwrap_or_else(|e| panic!("instantiating {symbol}: {e}"));
        self.states.borrow_mut().insert(
            symbol.to_owned(),
            State::Compiling(Box::new(AtomicU64::new(0))),
        );
        let code = self
            .machine
            .compile(&inst.function, &inst.reg_types, &mut &*self);
        let entry = code.address();
        let sig = inst.function.sig.clone();
        if let Some(State::Compiling(slot)) = self
            .states
            .borrow_mut()
            .insert(symbol.to_owned(), State::Done(entry, sig.clone()))
        {
            slot.store(entry, Ordering::Release);
            self.slots.borrow_mut().push(slot);
        }
        self.keep.borrow_mut().push(code);
        (entry, sig)
    }

    /// Runs `symbol` compiled.
    pub fn call(&self, symbol: &str, args: &[Value]) -> Outcome {
        outcome(self.call_values(symbol, args))
    }

    /// Runs `symbol` compiled; the result as a value.
    pub fn call_values(&self, symbol: &str, args: &[Value]) -> Result<Option<Value>, TrapKind> {
        let (entry, sig) = self.entry(symbol);
        self.machine
            .call_values(entry as usize as *const u8, &sig, args)
    }

    /// The disassembly of `symbol`'s instructions at 0x1000, its data
    /// (padding, constants, call slots) listed as data.
    pub fn listing_of(&self, symbol: &str) -> String {
        let (entry, _) = self.entry(symbol);
        let keep = self.keep.borrow();
        let function = keep
            .iter()
            .find(|c| c.address() == entry)
            .unwrap_or_else(|| panic!("{symbol} is compiled"));
        jit::backend::disassemble_function(
            function.bytes(),
            function.instruction_len(),
            0x1000,
            jit::backend::Syntax::Intel,
        )
    }

    /// The compiled bytes of `symbol` (compiling it if needed).
    pub fn code_of(&self, symbol: &str) -> Vec<u8> {
        let (entry, _) = self.entry(symbol);
        self.keep
            .borrow()
            .iter()
            .find(|c| c.address() == entry)
            .map(|c| c.bytes().to_vec())
            .unwrap_or_default()
    }
}

// Compiling is recursive (a callee is compiled while its caller is), so
// the resolver is a shared reference with interior state.
impl CallResolver for &Jit<'_> {
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, Error> {
        match callee {
            Callee::Import(name) => self
                .natives
                .get(name)
                .map(|&a| CallTarget::Direct(a))
                .ok_or_else(|| Error::new(ErrorKind::Unresolved(name.clone()))),
            Callee::Symbol(name) => {
                if let Some(&a) = self.natives.get(name) {
                    return Ok(CallTarget::Direct(a));
                }
                if let Some(State::Compiling(slot)) = self.states.borrow().get(name) {
                    return Ok(CallTarget::Slot(
                        slot.as_ref() as *const AtomicU64 as usize as u64
                    ));
                }
                Ok(CallTarget::Direct(self.entry(name).0))
            }
            Callee::Template { name, .. } => {
                Err(Error::new(ErrorKind::Unresolved(name.to_string())))
            }
        }
    }
}

/// A listing of `disassemble` as (address, mnemonic, operands), without
/// the data lines it cannot split.
pub fn instructions(listing: &str) -> Vec<(u64, String, String)> {
    listing
        .lines()
        .filter_map(|l| {
            let address = u64::from_str_radix(l.get(..16)?.trim(), 16).ok()?;
            let text = l.get(43..)?.trim();
            let (op, rest) = text.split_once(' ').unwrap_or((text, ""));
            Some((address, op.to_owned(), rest.trim().to_owned()))
        })
        .collect()
}

/// The interpreter over a library with libc as its natives.
pub struct Oracle<'l> {
    pub resolver: LibraryResolver<'l>,
}

impl<'l> Oracle<'l> {
    pub fn new(lib: &'l Library) -> Self {
        Oracle {
            resolver: crate::common::resolver(lib),
        }
    }

    /// Runs `symbol` interpreted.
    pub fn call(&self, symbol: &str, args: &[Value]) -> Outcome {
        // SAFETY: as for compiled calls.
        interp_outcome(unsafe { Interpreter::new(&self.resolver).call_symbol(symbol, args) })
    }

    /// The interpreter's function-pointer token for `symbol`.
    pub fn address_of(&self, symbol: &str) -> u64 {
        jit::interp::Resolver::address_of(&self.resolver, symbol)
            .unwrap_or_else(|e| panic!("{symbol}: {e}"))
    }
}

/// Runs `symbol` in the interpreter with libc as its natives.
pub fn interp(lib: &Library, symbol: &str, args: &[Value]) -> Outcome {
    Oracle::new(lib).call(symbol, args)
}

#[allow(unused_imports)] // each test file uses part of this
pub use crate::common::{Rng, below};
