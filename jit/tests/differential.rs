//! Differential testing of the backend against the interpreter on random
//! well-typed programs.
//!
//! Each program is a small module of non-generic functions `g0`, `g1`, …
//! built from a seed: arithmetic, bit operations, shifts, comparisons,
//! selects, casts and bitcasts over every scalar type with edge-value
//! constants; if/else diamonds merging through block parameters; loops with
//! bounded trip counts carrying values; loads and stores into a buffer
//! passed as the first argument (indices masked in bounds, element and
//! general `addr` forms); calls to earlier functions, directly and through
//! function pointers; explicit traps and whatever divisions by zero occur.
//! Every function is run compiled and interpreted with the same arguments
//! and buffer; results must match bit for bit, traps must be the same, and
//! the buffers must end identical.
//!
//! `SMFJIT_DIFF_PROGRAMS` sets the number of programs (default 3000);
//! `SMFJIT_DIFF_SEED` the first seed. A failure prints the program.

mod backend_support;
mod common;
mod generator;

use std::rc::Rc;

use backend_support::{Jit, Machine, Oracle, Rng, below};
use generator::{MEM, argument, env, program};
use jit::interp::Value;

fn check_program(machine: &Rc<Machine>, seed: u64) {
    let lib = program(seed, 3);
    let jit = Jit::with_machine(&lib, Rc::clone(machine));
    let oracle = Oracle::new(&lib);
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    for f in lib.functions() {
        let symbol = f.name.to_string();
        for round in 0..2 {
            let init: Vec<u8> = (0..MEM).map(|_| rng.next() as u8).collect();
            let (mut a, mut b) = (init.clone(), init);
            let rest: Vec<Value> = f
                .sig
                .params
                .iter()
                .skip(1)
                .map(|t| argument(t, &mut rng))
                .collect();
            let with = |buf: &mut Vec<u8>| {
                let mut v = vec![Value::Ptr(buf.as_mut_ptr() as usize as u64)];
                v.extend(&rest);
                v
            };
            let want = oracle.call(&symbol, &with(&mut a));
            let got = jit.call(&symbol, &with(&mut b));
            if got != want || a != b {
                panic!(
                    "seed {seed}, {symbol}, round {round}: compiled {got:?}, interpreted {want:?}, \
                     memory {}\nargs {rest:?}\n{}\n{}",
                    if a == b { "equal" } else { "differs" },
                    jit::text::print_library(&lib),
                    jit::backend::disassemble(
                        &jit.code_of(&symbol),
                        0,
                        jit::backend::Syntax::Intel
                    ),
                );
            }
        }
    }
}

#[test]
fn random_programs_agree_with_the_interpreter() {
    let machine = Rc::new(Machine::new());
    let count = env("SMFJIT_DIFF_PROGRAMS", 3000);
    let first = env("SMFJIT_DIFF_SEED", 1);
    for seed in first..first + count {
        if std::env::var_os("SMFJIT_DIFF_TRACE").is_some() {
            eprintln!("seed {seed}");
        }
        check_program(&machine, seed);
    }
}

#[test]
fn generated_programs_cover_every_operation() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 1..200 {
        for f in program(seed, 3).functions() {
            for b in &f.blocks {
                for i in &b.insts {
                    let name = format!("{:?}", i.op);
                    seen.insert(name.split([' ', '{', '(']).next().unwrap_or("").to_owned());
                }
                seen.insert(
                    format!("{:?}", b.term)
                        .split([' ', '('])
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                );
            }
        }
    }
    for op in [
        "Const",
        "Unary",
        "Binary",
        "Cmp",
        "Cast",
        "Bitcast",
        "Select",
        "Load",
        "Store",
        "Addr",
        "Call",
        "CallIndirect",
        "FuncAddr",
        "Br",
        "CondBr",
        "Ret",
        "Trap",
    ] {
        assert!(
            seen.contains(op),
            "no generated program uses {op}: {seen:?}"
        );
    }
}
