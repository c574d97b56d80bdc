//! The differential generator's random programs (shared with the x86-64
//! backend's and the tiers' tests) give the same results three ways —
//! interpreted, as x86-64 code and as WebAssembly: return values (NaN
//! equal to NaN), traps with their codes, and the buffer every function
//! receives, byte for byte.
//!
//! Each program's functions become one module, laid out for wasm32; the
//! buffer is copied into its memory before each call and compared after.
//! The interpreter and the x86-64 code each get their own host copy.
//! `SMFJIT_WASM_PROGRAMS` sets the number of programs (default 300),
//! `SMFJIT_WASM_SEED` the first seed. A failure prints the program.

mod support;
// The x86-64 side: the backend tests' JIT, which finds the shared test
// support as `crate::common`.
#[path = "../../tests/backend_support/mod.rs"]
mod backend_support;

use std::rc::Rc;

use backend_support::{Jit, Machine};
// `below` is used by the generator file through this crate's root.
#[allow(unused_imports)]
use support::common::{self, Rng, below};

#[path = "../../tests/generator/mod.rs"]
mod generator;

use generator::{MEM, argument, env, program};
use jit::interp::{LibraryResolver, Value};
use jit::ir::Type;
use jit::wasm::run::Runner;
use support::{compiled, for_wasm32, interpret, module, native};

fn check_program(machine: &Rc<Machine>, seed: u64) {
    let lib = program(seed, 3);
    let wasm = for_wasm32(lib.clone());
    let roots: Vec<_> = lib.functions().map(|f| (f.name.clone(), vec![])).collect();
    let m = module(&wasm, &roots);
    let mut run = Runner::new(&m).expect("instantiates");
    let oracle = LibraryResolver::new(&lib);
    let x86 = Jit::with_machine(&lib, Rc::clone(machine));
    let at = run.alloc(MEM as u32).expect("allocates");
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    for f in lib.functions() {
        let symbol = f.name.to_string();
        for round in 0..2 {
            let init: Vec<u8> = (0..MEM).map(|_| rng.next() as u8).collect();
            let mut host = init.clone();
            let mut for_x86 = init.clone();
            run.write(at, &init).expect("writes");
            let rest: Vec<Value> = f
                .sig
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
            let want = interpret(&oracle, &symbol, &with(host.as_mut_ptr() as usize as u64));
            let x86_got =
                native(x86.call_values(&symbol, &with(for_x86.as_mut_ptr() as usize as u64)));
            let got = compiled(run.call(&symbol, &with(u64::from(at))));
            let memory = run.read(at, MEM).expect("reads");
            let same = |m: &[u8]| {
                if m == host.as_slice() {
                    "equal"
                } else {
                    "differs"
                }
            };
            if got != want || x86_got != want || memory != host.as_slice() || for_x86 != host {
                panic!(
                    "seed {seed}, {symbol}, round {round}: interpreted {want:?}, \
                     x86-64 {x86_got:?} (memory {}), wasm {got:?} (memory {})\nargs {rest:?}\n{}",
                    same(&for_x86),
                    same(memory),
                    jit::text::print_library(&lib),
                );
            }
        }
    }
}

#[test]
fn random_programs_agree_with_the_interpreter() {
    let count = env("SMFJIT_WASM_PROGRAMS", 300);
    let first = env("SMFJIT_WASM_SEED", 1);
    let machine = Rc::new(Machine::new());
    for seed in first..first + count {
        check_program(&machine, seed);
    }
}
