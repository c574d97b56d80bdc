//! Loads and stores through a null address trap `NullPointer` in compiled
//! code exactly as in the interpreter, in every access form the backend
//! emits and for every scalar type, with implicit null checks (the access
//! faults on page 0 and the runtime's fault handler turns the fault into
//! the trap) and with explicit ones (a test and a branch), from the main
//! thread and from a spawned one. Non-null accesses in the same forms give
//! the interpreter's results and leave memory as it does.

mod backend_support;
mod common;

use std::rc::Rc;

use backend_support::{Jit, Machine, Oracle};
use jit::backend::{Backend, Options};
use jit::interp::Value;
use jit::ir::Library;

/// Makes a value of one type from an integer.
type Make = fn(i64) -> Value;

/// The types accessed, with an argument value of each.
const TYPES: [(&str, Make); 9] = [
    ("i8", |v| Value::I8(v as i8)),
    ("u8", |v| Value::U8(v as u8)),
    ("i16", |v| Value::I16(v as i16)),
    ("u16", |v| Value::U16(v as u16)),
    ("i32", |v| Value::I32(v as i32)),
    ("u32", |v| Value::U32(v as u32)),
    ("i64", Value::I64),
    ("f32", |v| Value::F32(v as f32)),
    ("f64", |v| Value::F64(v as f64)),
];

/// Per type `T`, loads and stores in each form:
/// - `load_T`/`store_T`: through the pointer alone;
/// - `load_at_T`/`store_at_T`: at a register index;
/// - `load_k_T`/`store_k_T`: at constant index 0 (an immediate);
/// - `load_far_T`: at a constant index too large for a displacement;
/// - `store_busy_T`: at a register index while twenty values are live,
///   so that the index and the value may have to be reloaded.
fn library() -> Library {
    let mut text = String::new();
    for (t, _) in TYPES {
        text.push_str(&format!(
            "fn load_{t}(%p: ptr<{t}>) -> {t} {{
entry:
    %v = load {t} %p
    ret %v
}}

fn load_at_{t}(%p: ptr<{t}>, %i: i64) -> {t} {{
entry:
    %v = load {t} %p[%i]
    ret %v
}}

fn load_k_{t}(%p: ptr<{t}>) -> {t} {{
entry:
    %k = const i64 0
    %v = load {t} %p[%k]
    ret %v
}}

fn load_far_{t}(%p: ptr<{t}>) -> {t} {{
entry:
    %k = const i64 1099511627776
    %v = load {t} %p[%k]
    ret %v
}}

fn store_{t}(%p: ptr<{t}>, %v: {t}) {{
entry:
    store {t} %v, %p
    ret
}}

fn store_at_{t}(%p: ptr<{t}>, %i: i64, %v: {t}) {{
entry:
    store {t} %v, %p[%i]
    ret
}}

fn store_k_{t}(%p: ptr<{t}>, %v: {t}) {{
entry:
    %k = const i64 0
    store {t} %v, %p[%k]
    ret
}}

"
        ));
        // Twenty sums live across the store.
        let mut busy = format!(
            "fn store_busy_{t}(%p: ptr<{t}>, %i: i64, %v: {t}, %a: i64) -> i64 {{\nentry:\n"
        );
        for k in 0..20 {
            busy.push_str(&format!(
                "    %c{k} = const i64 {k}\n    %s{k} = add i64 %a, %c{k}\n"
            ));
        }
        busy.push_str(&format!(
            "    store {t} %v, %p[%i]\n    %t0 = add i64 %s0, %s1\n"
        ));
        for k in 2..20 {
            busy.push_str(&format!("    %t{} = add i64 %t{}, %s{k}\n", k - 1, k - 2));
        }
        busy.push_str("    ret %t18\n}\n\n");
        text.push_str(&busy);
    }
    let lib = jit::text::parse_library(&text).unwrap_or_else(|e| panic!("parse: {e}"));
    jit::verify::verify_library(&lib).unwrap_or_else(|e| panic!("verify: {e}"));
    lib
}

/// A JIT over `lib` with implicit or explicit null checks.
fn jit(lib: &Library, implicit: bool) -> Jit<'_> {
    let mut machine = Machine::new();
    assert!(
        machine.runtime.catches_null_faults(),
        "the trap runtime installs the fault handler (page 0 is not mapped here)"
    );
    machine.backend = Backend::new(Options {
        implicit_null_checks: implicit,
        ..machine.runtime.options()
    });
    Jit::with_machine(lib, Rc::new(machine))
}

/// Every form and type with null and non-null addresses: the compiled
/// outcome and the memory it leaves equal the interpreter's.
fn every_access_agrees(implicit: bool) {
    let lib = library();
    let jit = jit(&lib, implicit);
    let oracle = Oracle::new(&lib);
    let null = Value::Ptr(0);
    let mode = if implicit { "implicit" } else { "explicit" };
    for (t, value) in TYPES {
        let v = value(-7);
        // Eight-byte slots whatever the type: every index used stays inside.
        let mut ours = [0u64; 4];
        let mut theirs = [0u64; 4];
        let at = |buf: &mut [u64; 4]| Value::Ptr(buf.as_mut_ptr() as usize as u64);
        let cases: Vec<(String, Vec<Value>, Vec<Value>)> = vec![
            (format!("load_{t}"), vec![null], vec![null]),
            (
                format!("load_{t}"),
                vec![at(&mut ours)],
                vec![at(&mut theirs)],
            ),
            (
                format!("load_at_{t}"),
                vec![null, Value::I64(0)],
                vec![null, Value::I64(0)],
            ),
            // base + index * size wrapping to 0 is a null access too.
            (
                format!("load_at_{t}"),
                vec![Value::Ptr(16u64.wrapping_neg()), Value::I64(16 / size(t))],
                vec![Value::Ptr(16u64.wrapping_neg()), Value::I64(16 / size(t))],
            ),
            (
                format!("load_at_{t}"),
                vec![at(&mut ours), Value::I64(1)],
                vec![at(&mut theirs), Value::I64(1)],
            ),
            (format!("load_k_{t}"), vec![null], vec![null]),
            (
                format!("load_far_{t}"),
                vec![far_base(t)],
                vec![far_base(t)],
            ),
            (format!("store_{t}"), vec![null, v], vec![null, v]),
            (
                format!("store_{t}"),
                vec![at(&mut ours), v],
                vec![at(&mut theirs), v],
            ),
            (
                format!("store_at_{t}"),
                vec![null, Value::I64(0), v],
                vec![null, Value::I64(0), v],
            ),
            (
                format!("store_at_{t}"),
                vec![at(&mut ours), Value::I64(2), v],
                vec![at(&mut theirs), Value::I64(2), v],
            ),
            (format!("store_k_{t}"), vec![null, v], vec![null, v]),
            (
                format!("store_busy_{t}"),
                vec![null, Value::I64(0), v, Value::I64(5)],
                vec![null, Value::I64(0), v, Value::I64(5)],
            ),
            (
                format!("store_busy_{t}"),
                vec![at(&mut ours), Value::I64(3), v, Value::I64(5)],
                vec![at(&mut theirs), Value::I64(3), v, Value::I64(5)],
            ),
        ];
        for (symbol, compiled_args, interpreted_args) in cases {
            let want = oracle.call(&symbol, &interpreted_args);
            let got = jit.call(&symbol, &compiled_args);
            assert_eq!(got, want, "{mode}: {symbol}{compiled_args:?}");
            assert_eq!(ours, theirs, "{mode}: memory after {symbol}");
        }
    }
}

/// The size of the scalar type `t`.
fn size(t: &str) -> i64 {
    match t {
        "i8" | "u8" => 1,
        "i16" | "u16" => 2,
        "i32" | "u32" | "f32" => 4,
        _ => 8,
    }
}

/// The base that `load_far_T`'s constant index (2^40 elements) takes
/// to address 0.
fn far_base(t: &str) -> Value {
    Value::Ptr(((size(t) as u64) << 40).wrapping_neg())
}

#[test]
fn implicit_null_checks_trap_as_the_interpreter_does() {
    every_access_agrees(true);
}

#[test]
fn explicit_null_checks_trap_as_the_interpreter_does() {
    every_access_agrees(false);
}

#[test]
fn implicit_null_checks_trap_in_a_spawned_thread() {
    std::thread::spawn(|| every_access_agrees(true))
        .join()
        .expect("the spawned thread's checks pass");
}

#[test]
fn the_implicit_form_folds_the_address_into_the_access() {
    let lib = library();
    let with = jit(&lib, true).code_of("load_at_i64");
    let without = jit(&lib, false).code_of("load_at_i64");
    let listing =
        |code: &[u8]| jit::backend::disassemble(code, 0x1000, jit::backend::Syntax::Intel);
    let (with, without) = (listing(&with), listing(&without));
    assert!(!with.contains("test"), "no test of the address:\n{with}");
    assert!(with.contains("*8]"), "an indexed operand:\n{with}");
    assert!(without.contains("test"), "the explicit test:\n{without}");
}
