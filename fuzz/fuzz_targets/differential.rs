//! Differential fuzzing of the backends against the interpreter: the input
//! drives the differential tests' program generator
//! (`jit/tests/generator`), and every function of the program it makes is
//! run three ways with the same arguments and buffer — interpreted (with
//! fuel), as x86-64 code and as WebAssembly in `wasmi`. Results must match
//! (bit for bit for x86-64; NaN equal to NaN for WebAssembly, whose NaN
//! payloads IEEE leaves open), traps must be the same, and the buffers
//! must end identical. A difference panics with the program's text.
//!
//! The generator's programs terminate by construction (loops have bounded
//! trip counts, calls go to earlier functions only), so the compiled code
//! needs no time-out; the interpreter's fuel is a second guard, and a
//! program that runs out of it is skipped.
//!
//! How the bytes drive the generator: the first byte chooses the seed's
//! low bits (one seed in eight gets a larger instruction budget) and the
//! number of functions; after that each random number the generator asks
//! for comes from the next byte, so a mutation of the input changes the
//! decision it covers and leaves the earlier ones alone, and a short input
//! already steers the first function. When the bytes run out the numbers
//! continue from the generator's own xorshift sequence, so every input
//! makes a whole program. A finding's input (the crash artifact) makes the
//! same program again; the panic prints its text.
#![no_main]
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use execmem::{Config, ExecMemory};
use jit::backend::{Backend, CallResolver, CallTarget, CompiledFunction, TrapRuntime};
use jit::instantiate::{Instance, instantiate_all, instantiate_symbol};
use jit::interp::{Interpreter, LibraryResolver, Value};
use jit::ir::{Callee, Library, Type};
use jit::target::Target;
use jit::wasm::run::Runner;
use jit::{Error, ErrorKind, TrapKind};
use libfuzzer_sys::fuzz_target;

#[path = "../../jit/tests/generator/mod.rs"]
mod generator;

use generator::{MEM, argument, program};

thread_local! {
    /// The input's bytes not yet handed out as random numbers.
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static CURSOR: Cell<usize> = const { Cell::new(0) };
}

/// The random numbers the generator file expects at the including crate's
/// root: one input byte per number while they last, then xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    // The generator file calls `next`, as on the tests' own `Rng`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let fallback = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        INPUT.with_borrow(|input| {
            let at = CURSOR.get();
            match input.get(at..) {
                Some(&[byte, ..]) => {
                    CURSOR.set(at + 1);
                    // The byte in every lane: each decision depends on this
                    // byte alone, and a literal drawn from it is a
                    // repeating pattern.
                    u64::from(byte).wrapping_mul(0x0101_0101_0101_0101)
                }
                _ => fallback,
            }
        })
    }
}

/// A number in `0..n` (`n` > 0).
pub fn below(rng: &mut Rng, n: u64) -> u64 {
    rng.next() % n
}

/// Executable memory, the trap runtime and the backend, made once per
/// process (as the differential test shares one machine across programs).
struct Machine {
    memory: ExecMemory,
    runtime: TrapRuntime,
    backend: Backend,
}

impl Machine {
    fn new() -> Machine {
        let memory = ExecMemory::new(Config::default()).expect("executable memory");
        let runtime = TrapRuntime::new(&memory).expect("trap runtime");
        let backend = Backend::new(runtime.options());
        Machine {
            memory,
            runtime,
            backend,
        }
    }
}

thread_local! {
    static MACHINE: Machine = Machine::new();
}

/// Entries of the functions compiled so far; the generator's calls only
/// reach earlier functions, which are compiled first.
struct Compiled(HashMap<String, u64>);

impl CallResolver for Compiled {
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, Error> {
        let name = match callee {
            Callee::Symbol(name) | Callee::Import(name) => name.clone(),
            Callee::Template { name, .. } => name.to_string(),
        };
        self.0
            .get(&name)
            .map(|&a| CallTarget::Direct(a))
            .ok_or_else(|| Error::new(ErrorKind::Unresolved(name)))
    }
}

/// A value compared with NaN equal to every NaN of its type.
#[derive(Clone, Copy, Debug)]
struct Same(Value);

impl PartialEq for Same {
    fn eq(&self, other: &Same) -> bool {
        match (self.0, other.0) {
            (Value::F32(a), Value::F32(b)) if a.is_nan() && b.is_nan() => true,
            (Value::F64(a), Value::F64(b)) if a.is_nan() && b.is_nan() => true,
            (a, b) => {
                std::mem::discriminant(&a) == std::mem::discriminant(&b)
                    && a.to_bits() == b.to_bits()
            }
        }
    }
}

/// The outcome of a call, exactly: the result's kind and bits, or the trap.
type Exact = Result<Option<(std::mem::Discriminant<Value>, u64)>, TrapKind>;

fn exact(r: &Result<Option<Value>, TrapKind>) -> Exact {
    r.map(|v| v.map(|v| (std::mem::discriminant(&v), v.to_bits())))
}

fn same(r: &Result<Option<Value>, TrapKind>) -> Result<Option<Same>, TrapKind> {
    r.map(|v| v.map(Same))
}

/// Fuel for one interpreted call: far above what a generated function
/// runs (its loops have small bounded trip counts).
const FUEL: u64 = 1 << 22;

fn check(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    INPUT.with_borrow_mut(|input| {
        input.clear();
        input.extend_from_slice(rest);
    });
    CURSOR.set(0);
    let seed = u64::from(first >> 2) + 1;
    let count = usize::from(first & 3) + 1;
    let lib = program(seed, count);

    MACHINE.with(|machine| run(machine, &lib, seed, count));
}

fn run(machine: &Machine, lib: &Library, seed: u64, count: usize) {
    let show = || jit::text::print_library(lib);
    // x86-64: every function compiled, callees first.
    let mut entries = Compiled(HashMap::new());
    let mut keep: Vec<CompiledFunction> = Vec::new();
    for f in lib.functions() {
        let symbol = f.name.to_string();
        let inst = instantiate_symbol(lib, &symbol)
            .unwrap_or_else(|e| panic!("instantiating {symbol}: {e}\n{}", show()));
        let code = machine
            .backend
            .compile(
                &machine.memory,
                &inst.function,
                &inst.reg_types,
                &mut entries,
            )
            .unwrap_or_else(|e| panic!("compiling {symbol}: {e}\n{}", show()));
        entries.0.insert(symbol, code.address());
        keep.push(code);
    }
    // WebAssembly: one module of every function, laid out for wasm32.
    let wasm = lib.clone().with_target(Target::WASM32);
    jit::verify::verify_library(&wasm).unwrap_or_else(|e| panic!("wasm32 layout: {e}\n{}", show()));
    let mut seen = std::collections::HashSet::new();
    let mut set: Vec<Instance> = Vec::new();
    for f in wasm.functions() {
        let all = instantiate_all(&wasm, &f.name, &[])
            .unwrap_or_else(|e| panic!("instantiating {} for wasm32: {e}\n{}", f.name, show()));
        set.extend(all.into_iter().filter(|i| seen.insert(i.symbol.clone())));
    }
    let refs: Vec<&Instance> = set.iter().collect();
    let module =
        jit::wasm::compile(&refs).unwrap_or_else(|e| panic!("wasm module: {e}\n{}", show()));
    let mut runner = Runner::new(&module).unwrap_or_else(|e| panic!("wasm runner: {e}"));
    let at = runner.alloc(MEM as u32).expect("allocates the buffer");

    let oracle = LibraryResolver::new(lib);
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    for f in lib.functions() {
        let symbol = f.name.to_string();
        let sig = &f.sig;
        // Two rounds, as in the differential test: other arguments and
        // buffer contents for the same compiled code.
        for round in 0..2 {
            let init: Vec<u8> = (0..MEM).map(|_| rng.next() as u8).collect();
            let rest: Vec<Value> = sig
                .params
                .iter()
                .skip(1)
                .map(|t: &Type| argument(t, &mut rng))
                .collect();
            let with = |p: u64| {
                [Value::Ptr(p)]
                    .into_iter()
                    .chain(rest.iter().copied())
                    .collect::<Vec<_>>()
            };
            let (mut host, mut for_x86) = (init.clone(), init.clone());
            // SAFETY: the buffer is MEM bytes and generated functions mask
            // every index into it.
            let want = unsafe {
                Interpreter::new(&oracle)
                    .with_fuel(FUEL)
                    .call_symbol(&symbol, &with(host.as_mut_ptr() as usize as u64))
            };
            let want = match want {
                Ok(v) => Ok(v),
                Err(Error {
                    kind: ErrorKind::Trap(t),
                    ..
                }) => Err(t),
                Err(Error {
                    kind: ErrorKind::OutOfFuel,
                    ..
                }) => return,
                Err(e) => panic!("interpreter: {e}\n{}", show()),
            };
            let entry = entries.0[&symbol];
            // SAFETY: as for the interpreter; the function is called with its
            // own signature, and generated programs terminate.
            let x86 = unsafe {
                machine.runtime.call(
                    entry as usize as *const u8,
                    sig,
                    &with(for_x86.as_mut_ptr() as usize as u64),
                )
            };
            runner.write(at, &init).expect("writes the buffer");
            let wasm_got = match runner.call(&symbol, &with(u64::from(at))) {
                Ok(v) => Ok(v),
                Err(jit::wasm::Error::Trap(t)) => Err(t),
                Err(e) => panic!("wasm: {e}\n{}", show()),
            };
            let memory = runner.read(at, MEM).expect("reads the buffer");
            if exact(&x86) != exact(&want)
                || same(&wasm_got) != same(&want)
                || for_x86 != host
                || memory != host.as_slice()
            {
                let eq = |m: &[u8]| {
                    if m == host.as_slice() {
                        "equal"
                    } else {
                        "differs"
                    }
                };
                panic!(
                    "program (seed {seed}, {count} functions), {symbol}, round {round}: interpreted {want:?}, \
                     x86-64 {x86:?} (memory {}), wasm {wasm_got:?} (memory {})\nargs {rest:?}\n{}",
                    eq(&for_x86),
                    eq(memory),
                    show(),
                );
            }
        }
    }
    drop(keep);
}

/// Bytes of stack of the thread that runs the programs: wasmi's executor
/// hands each instruction to the next through a call, which an
/// instrumented build does not turn into a jump, so a long loop takes
/// stack in proportion to the instructions it runs (the main thread's 8 MiB
/// overflowed within minutes). The pages are only reserved.
const WORKER_STACK: usize = 4 << 30;

/// One input to the worker, and what came of it (a panic's payload).
type Job = (Vec<u8>, std::sync::mpsc::Sender<std::thread::Result<()>>);

/// Runs `check` on one long-lived thread with a large stack (its JIT and
/// runners are per-thread, so they are kept across inputs), passing a
/// panic back to the fuzzing thread as its own.
fn on_worker(data: &[u8]) {
    static WORKER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (send, receive) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("differential".into())
            .stack_size(WORKER_STACK)
            .spawn(move || {
                for (data, done) in receive {
                    let outcome = std::panic::catch_unwind(|| check(&data));
                    let _ = done.send(outcome);
                }
            })
            .expect("the worker thread starts");
        std::sync::Mutex::new(send)
    });
    let (done, outcome) = std::sync::mpsc::channel();
    worker
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send((data.to_vec(), done))
        .expect("the worker runs");
    if let Err(payload) = outcome.recv().expect("the worker answers") {
        std::panic::resume_unwind(payload);
    }
}

fuzz_target!(|data: &[u8]| on_worker(data));
