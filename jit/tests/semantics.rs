//! The defined semantics of single operations, checked in the interpreter
//! on small functions written in the text form.

// These tests call generated code and hand raw buffers to the interpreter.
#![allow(unsafe_code)]

mod common;

use jit::interp::Value;
use jit::ir::{Library, TemplateName, Type};
use jit::{Error, ErrorKind, Location, TrapKind};

fn lib(text: &str) -> Library {
    let lib = jit::text::parse_library(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    jit::verify::verify_library(&lib).unwrap_or_else(|e| panic!("{e}\n{text}"));
    lib
}

/// `fn op<T: ...>(%a: T, %b: T) -> T` applying one binary operation.
fn binary(op: &str, constraint: &str) -> Library {
    lib(&format!(
        "fn op<T: {constraint}>(%a: T, %b: T) -> T {{\nentry:\n    %r = {op} T %a, %b\n    ret %r\n}}\n"
    ))
}

fn apply(l: &Library, ty: &str, a: Value, b: Value) -> Result<Option<Value>, Error> {
    common::run(l, &format!("op${ty}"), &[a, b])
}

fn ok(r: Result<Option<Value>, Error>) -> Value {
    match r {
        Ok(Some(v)) => v,
        other => panic!("{other:?}"),
    }
}

#[test]
fn integer_arithmetic_wraps() {
    let add = binary("add", "num");
    assert_eq!(
        ok(apply(&add, "i8", Value::I8(127), Value::I8(1))),
        Value::I8(-128)
    );
    assert_eq!(
        ok(apply(&add, "u16", Value::U16(65535), Value::U16(2))),
        Value::U16(1)
    );
    let sub = binary("sub", "num");
    assert_eq!(
        ok(apply(&sub, "u32", Value::U32(0), Value::U32(1))),
        Value::U32(u32::MAX)
    );
    assert_eq!(
        ok(apply(&sub, "i64", Value::I64(i64::MIN), Value::I64(1))),
        Value::I64(i64::MAX)
    );
    let mul = binary("mul", "num");
    assert_eq!(
        ok(apply(&mul, "i16", Value::I16(300), Value::I16(300))),
        Value::I16(300i16.wrapping_mul(300))
    );
    assert_eq!(
        ok(apply(
            &mul,
            "u64",
            Value::U64(u64::MAX),
            Value::U64(u64::MAX)
        )),
        Value::U64(1)
    );
}

#[test]
fn division_by_zero_traps_and_min_over_minus_one_wraps() {
    let div = binary("div", "num");
    let rem = binary("rem", "int");
    for ty in ["i8", "i32", "u8", "u64"] {
        let zero = match ty {
            "i8" => Value::I8(0),
            "i32" => Value::I32(0),
            "u8" => Value::U8(0),
            _ => Value::U64(0),
        };
        let one = match ty {
            "i8" => Value::I8(1),
            "i32" => Value::I32(1),
            "u8" => Value::U8(1),
            _ => Value::U64(1),
        };
        assert_eq!(
            common::trap(apply(&div, ty, one, zero)),
            TrapKind::DivideByZero
        );
        assert_eq!(
            common::trap(apply(&rem, ty, one, zero)),
            TrapKind::DivideByZero
        );
    }
    assert_eq!(
        ok(apply(&div, "i8", Value::I8(i8::MIN), Value::I8(-1))),
        Value::I8(i8::MIN)
    );
    assert_eq!(
        ok(apply(&div, "i64", Value::I64(i64::MIN), Value::I64(-1))),
        Value::I64(i64::MIN)
    );
    assert_eq!(
        ok(apply(&rem, "i64", Value::I64(i64::MIN), Value::I64(-1))),
        Value::I64(0)
    );
    assert_eq!(
        ok(apply(&div, "i32", Value::I32(-7), Value::I32(2))),
        Value::I32(-3)
    );
    assert_eq!(
        ok(apply(&rem, "i32", Value::I32(-7), Value::I32(2))),
        Value::I32(-1)
    );
    assert_eq!(
        ok(apply(&div, "u8", Value::U8(255), Value::U8(2))),
        Value::U8(127)
    );
    // Floats follow IEEE: no trap.
    assert_eq!(
        ok(apply(&div, "f64", Value::F64(1.0), Value::F64(0.0))),
        Value::F64(f64::INFINITY)
    );
}

#[test]
fn the_trap_names_the_instruction() {
    let div = binary("div", "num");
    let err = apply(&div, "i16", Value::I16(1), Value::I16(0)).expect_err("traps");
    assert_eq!(
        err.location,
        Location::Instruction {
            function: "op$i16".into(),
            block: 0,
            inst: Some(0)
        }
    );
    assert_eq!(
        err.to_string(),
        "trap: integer division by zero (in `op$i16`, block b0, instruction 0)"
    );
}

#[test]
fn shift_counts_are_masked_by_the_width() {
    let shl = binary("shl", "int");
    let shr = binary("shr", "int");
    assert_eq!(
        ok(apply(&shl, "i32", Value::I32(1), Value::I32(33))),
        Value::I32(2)
    );
    assert_eq!(
        ok(apply(&shl, "u8", Value::U8(1), Value::U8(9))),
        Value::U8(2)
    );
    assert_eq!(
        ok(apply(&shl, "u8", Value::U8(0x81), Value::U8(1))),
        Value::U8(2)
    );
    assert_eq!(
        ok(apply(&shr, "i8", Value::I8(-128), Value::I8(1))),
        Value::I8(-64)
    );
    assert_eq!(
        ok(apply(&shr, "u8", Value::U8(0x80), Value::U8(1))),
        Value::U8(0x40)
    );
    assert_eq!(
        ok(apply(&shr, "i64", Value::I64(-1), Value::I64(-1))),
        Value::I64(-1)
    );
    assert_eq!(
        ok(apply(
            &shr,
            "u64",
            Value::U64(u64::MAX),
            Value::U64(64 + 63)
        )),
        Value::U64(1)
    );
    assert_eq!(
        ok(apply(&shr, "i16", Value::I16(-2), Value::I16(16))),
        Value::I16(-2)
    );
}

/// `fn conv(%a: FROM) -> TO` with one cast or bitcast.
fn convert(op: &str, from: &str, to: &str, arg: Value) -> Value {
    let l = lib(&format!(
        "fn conv(%a: {from}) -> {to} {{\nentry:\n    %r = {op} {from} %a to {to}\n    ret %r\n}}\n"
    ));
    match common::run(&l, "conv", &[arg]) {
        Ok(Some(v)) => v,
        other => panic!("{op} {from} -> {to}: {other:?}"),
    }
}

#[test]
fn float_to_int_saturates_and_nan_is_zero() {
    assert_eq!(
        convert("cast", "f64", "i32", Value::F64(f64::NAN)),
        Value::I32(0)
    );
    assert_eq!(
        convert("cast", "f64", "i32", Value::F64(1e20)),
        Value::I32(i32::MAX)
    );
    assert_eq!(
        convert("cast", "f64", "i32", Value::F64(-1e20)),
        Value::I32(i32::MIN)
    );
    assert_eq!(convert("cast", "f32", "u8", Value::F32(-3.5)), Value::U8(0));
    assert_eq!(
        convert("cast", "f32", "u8", Value::F32(255.9)),
        Value::U8(255)
    );
    assert_eq!(
        convert("cast", "f64", "i64", Value::F64(-2.9)),
        Value::I64(-2)
    );
    assert_eq!(
        convert("cast", "f64", "u64", Value::F64(f64::INFINITY)),
        Value::U64(u64::MAX)
    );
    assert_eq!(
        convert("cast", "f32", "i16", Value::F32(f32::NEG_INFINITY)),
        Value::I16(i16::MIN)
    );
}

#[test]
fn integer_conversions_extend_by_the_source_signedness() {
    assert_eq!(
        convert("cast", "i8", "u32", Value::I8(-1)),
        Value::U32(u32::MAX)
    );
    assert_eq!(
        convert("cast", "u8", "i32", Value::U8(255)),
        Value::I32(255)
    );
    assert_eq!(
        convert("cast", "i64", "i8", Value::I64(0x1_80)),
        Value::I8(-128)
    );
    assert_eq!(
        convert("cast", "u64", "u16", Value::U64(0x1_0001)),
        Value::U16(1)
    );
    assert_eq!(
        convert("cast", "bool", "i32", Value::Bool(true)),
        Value::I32(1)
    );
    assert_eq!(
        convert("cast", "u64", "f32", Value::U64(u64::MAX)),
        Value::F32(u64::MAX as f32)
    );
    assert_eq!(
        convert("cast", "i64", "f64", Value::I64(i64::MIN)),
        Value::F64(i64::MIN as f64)
    );
    assert_eq!(
        convert("cast", "i32", "f32", Value::I32(16_777_217)),
        Value::F32(16_777_216.0)
    );
    assert_eq!(
        convert("cast", "f64", "f32", Value::F64(1e300)),
        Value::F32(f32::INFINITY)
    );
    assert_eq!(
        convert("cast", "f32", "f64", Value::F32(0.1)),
        Value::F64(f64::from(0.1f32))
    );
}

#[test]
fn bitcast_keeps_the_bits() {
    assert_eq!(
        convert("bitcast", "f32", "i32", Value::F32(-0.0)),
        Value::I32(i32::MIN)
    );
    let Value::F64(v) = convert("bitcast", "u64", "f64", Value::U64(0x7ff8_0000_0000_0001)) else {
        panic!()
    };
    assert_eq!(v.to_bits(), 0x7ff8_0000_0000_0001, "a NaN payload survives");
    assert_eq!(
        convert("bitcast", "i32", "f32", Value::I32(0x3f80_0000)),
        Value::F32(1.0)
    );
}

#[test]
fn float_comparisons_are_ordered_except_ne() {
    let l = lib(concat!(
        "fn cmp_all(%a: f64, %b: f64) -> i32 {\n",
        "entry:\n",
        "    %eq = cmp eq f64 %a, %b\n    %ne = cmp ne f64 %a, %b\n    %lt = cmp lt f64 %a, %b\n",
        "    %ge = cmp ge f64 %a, %b\n",
        "    %one = const i32 1\n    %two = const i32 2\n    %four = const i32 4\n    %eight = const i32 8\n",
        "    %zero = const i32 0\n",
        "    %a1 = select i32 %eq, %one, %zero\n    %a2 = select i32 %ne, %two, %zero\n",
        "    %a3 = select i32 %lt, %four, %zero\n    %a4 = select i32 %ge, %eight, %zero\n",
        "    %s1 = or i32 %a1, %a2\n    %s2 = or i32 %s1, %a3\n    %s3 = or i32 %s2, %a4\n",
        "    ret %s3\n}\n"
    ));
    let run = |a: f64, b: f64| common::value(&l, "cmp_all", &[Value::F64(a), Value::F64(b)]);
    assert_eq!(run(f64::NAN, 1.0), Value::I32(2), "only ne holds with NaN");
    assert_eq!(run(1.0, 1.0), Value::I32(1 | 8));
    assert_eq!(run(-0.0, 0.0), Value::I32(1 | 8), "-0 == +0");
    assert_eq!(run(1.0, 2.0), Value::I32(2 | 4));
}

#[test]
fn signedness_of_comparisons_comes_from_the_type() {
    let l = lib(
        "fn less<T: int>(%a: T, %b: T) -> bool {\nentry:\n    %r = cmp lt T %a, %b\n    ret %r\n}\n",
    );
    assert_eq!(
        common::value(&l, "less$i8", &[Value::I8(-1), Value::I8(0)]),
        Value::Bool(true)
    );
    assert_eq!(
        common::value(&l, "less$u8", &[Value::U8(255), Value::U8(0)]),
        Value::Bool(false)
    );
    assert_eq!(
        common::value(
            &l,
            "less$i64",
            &[Value::I64(i64::MIN), Value::I64(i64::MAX)]
        ),
        Value::Bool(true)
    );
    assert_eq!(
        common::value(&l, "less$u64", &[Value::U64(u64::MAX), Value::U64(1)]),
        Value::Bool(false)
    );
}

#[test]
fn constants_convert_to_their_type() {
    let l = lib(
        "fn k<T: num>() -> T {\nentry:\n    %r = const T 100\n    ret %r\n}\nfn h() -> f32 {\nentry:\n    %r = const f32 0.1\n    ret %r\n}\n",
    );
    assert_eq!(common::value(&l, "k$i8", &[]), Value::I8(100));
    assert_eq!(common::value(&l, "k$f32", &[]), Value::F32(100.0));
    assert_eq!(common::value(&l, "h", &[]), Value::F32(0.1));
    // 200 does not fit i8: instantiation (not execution) rejects it.
    let l = lib("fn k<T: num>() -> T {\nentry:\n    %r = const T 200\n    ret %r\n}\n");
    let err = jit::instantiate::instantiate(
        &l,
        &TemplateName::free("k"),
        &[Type::Int(jit::ir::IntType::I8)],
    )
    .expect_err("out of range");
    assert!(matches!(err.kind, ErrorKind::LiteralRange { .. }), "{err}");
    assert_eq!(common::value(&l, "k$u8", &[]), Value::U8(200));
}

#[test]
fn explicit_trap_carries_its_code_and_place() {
    let l = lib(
        "fn stop(%c: bool) -> i32 {\nentry:\n    cond_br %c, bad, good\nbad:\n    trap 42\ngood:\n    %z = const i32 7\n    ret %z\n}\n",
    );
    assert_eq!(
        common::value(&l, "stop", &[Value::Bool(false)]),
        Value::I32(7)
    );
    let err = common::run(&l, "stop", &[Value::Bool(true)]).expect_err("traps");
    assert_eq!(err.kind, ErrorKind::Trap(TrapKind::Explicit(42)));
    assert_eq!(
        err.location,
        Location::Instruction {
            function: "stop".into(),
            block: 1,
            inst: None
        }
    );
}

#[test]
fn null_access_traps_instead_of_crashing() {
    let l = lib("fn deref(%p: ptr<i32>) -> i32 {\nentry:\n    %v = load i32 %p\n    ret %v\n}\n");
    assert_eq!(
        common::trap(common::run(&l, "deref", &[Value::Ptr(0)])),
        TrapKind::NullPointer
    );
}

#[test]
fn call_through_a_null_function_pointer_traps() {
    let l = lib(
        "fn f(%p: fn(i64) -> i64) -> i64 {\nentry:\n    %one = const i64 1\n    %r = call_indirect %p(%one) : fn(i64) -> i64\n    ret %r\n}\n",
    );
    assert_eq!(
        common::trap(common::run(&l, "f", &[Value::Ptr(0)])),
        TrapKind::NullPointer
    );
}

#[test]
fn fuel_bounds_an_endless_loop() {
    let l = lib("fn spin() {\nentry:\n    br again\nagain:\n    br again\n}\n");
    let r = common::resolver(&l);
    let f = r.function("spin").expect("instantiates");
    // SAFETY: the function touches no memory.
    let err = unsafe {
        jit::interp::Interpreter::new(&r)
            .with_fuel(1000)
            .call(&f, &[])
    }
    .expect_err("runs out");
    assert_eq!(err.kind, ErrorKind::OutOfFuel);
}

#[test]
fn fuel_runs_out_at_the_exact_instruction_around_a_compare_and_branch() {
    // Units: const, const, br, cmp, cond_br, ret. The comparison and the
    // branch on it run as one step but are still charged and located one
    // by one.
    let l = lib(concat!(
        "fn count(%n: i64) -> i64 {\nentry:\n    %zero = const i64 0\n    %one = const i64 1\n",
        "    br loop(%zero)\nloop(%i: i64):\n    %more = cmp lt i64 %i, %n\n",
        "    cond_br %more, body, done\nbody:\n    %next = add i64 %i, %one\n",
        "    br loop(%next)\ndone:\n    ret %i\n}\n"
    ));
    let r = common::resolver(&l);
    let f = r.function("count").expect("instantiates");
    let run = |fuel: u64| {
        // SAFETY: the function touches no memory.
        unsafe {
            jit::interp::Interpreter::new(&r)
                .with_fuel(fuel)
                .call(&f, &[Value::I64(0)])
        }
    };
    let at = |block: u32, inst: Option<u32>| Location::Instruction {
        function: "count".to_owned(),
        block,
        inst,
    };
    for (fuel, place) in [(3, at(1, Some(0))), (4, at(1, None)), (5, at(3, None))] {
        let err = run(fuel).expect_err("runs out");
        assert_eq!(err.kind, ErrorKind::OutOfFuel, "fuel {fuel}");
        assert_eq!(err.location, place, "fuel {fuel}");
    }
    assert_eq!(run(6).expect("enough fuel"), Some(Value::I64(0)));
}

#[test]
fn fuel_runs_out_at_the_exact_instruction_around_a_load_add_and_an_add_branch() {
    // The load and the add of its value, and the last add and the branch
    // after it, run as one step each but are still charged and located
    // one by one.
    let l = lib(concat!(
        "fn sum(%xs: ptr<i64>, %n: i64) -> i64 {\nentry:\n    %zero = const i64 0\n",
        "    %one = const i64 1\n    br loop(%zero, %zero)\nloop(%i: i64, %acc: i64):\n",
        "    %more = cmp lt i64 %i, %n\n    cond_br %more, body, done\nbody:\n",
        "    %x = load i64 %xs[%i]\n    %next_acc = add i64 %acc, %x\n",
        "    %next = add i64 %i, %one\n    br loop(%next, %next_acc)\ndone:\n    ret %acc\n}\n"
    ));
    let r = common::resolver(&l);
    let f = r.function("sum").expect("instantiates");
    let xs = [5i64];
    let run = |fuel: u64| {
        // SAFETY: the function reads the one element of `xs`.
        unsafe {
            jit::interp::Interpreter::new(&r)
                .with_fuel(fuel)
                .call(&f, &[Value::Ptr(xs.as_ptr() as u64), Value::I64(1)])
        }
    };
    let at = |block: u32, inst: Option<u32>| Location::Instruction {
        function: "sum".to_owned(),
        block,
        inst,
    };
    // Every unit the call spends, in order.
    let units = [
        at(0, Some(0)),
        at(0, Some(1)),
        at(0, None),
        at(1, Some(0)),
        at(1, None),
        at(2, Some(0)),
        at(2, Some(1)),
        at(2, Some(2)),
        at(2, None),
        at(1, Some(0)),
        at(1, None),
        at(3, None),
    ];
    for (fuel, place) in (0u64..).zip(&units) {
        let err = run(fuel).expect_err("runs out");
        assert_eq!(err.kind, ErrorKind::OutOfFuel, "fuel {fuel}");
        assert_eq!(&err.location, place, "fuel {fuel}");
    }
    assert_eq!(run(12).expect("enough fuel"), Some(Value::I64(5)));
}

/// Tiering that counts back-edges and never asks for a loop entry.
#[derive(Default)]
struct CountBackEdges(std::cell::Cell<u64>);

impl jit::interp::Tiering for CountBackEdges {
    fn back_edge_threshold(&self) -> u32 {
        u32::MAX
    }

    fn loop_entry(
        &self,
        _: &std::sync::Arc<jit::ir::Function>,
        _: jit::ir::BlockId,
    ) -> jit::interp::LoopAnswer {
        jit::interp::LoopAnswer::Never
    }

    fn back_edges(&self, _: &std::sync::Arc<jit::ir::Function>, taken: u64) {
        self.0.set(self.0.get() + taken);
    }
}

#[test]
fn back_edges_passing_no_arguments_are_counted_and_forward_jumps_are_not() {
    // The loop keeps its counter in memory, so no branch passes an
    // argument: `skip -> loop` is the only back-edge.
    let l = lib(concat!(
        "fn tick(%p: ptr<i64>, %n: i64) -> i64 {\nentry:\n    %one = const i64 1\n    br loop\n",
        "loop:\n    %c = load i64 %p\n    %more = cmp lt i64 %c, %n\n    cond_br %more, body, done\n",
        "body:\n    %next = add i64 %c, %one\n    store i64 %next, %p\n    br skip\n",
        "skip:\n    br loop\ndone:\n    ret %c\n}\n"
    ));
    let r = common::resolver(&l);
    let f = r.function("tick").expect("instantiates");
    for n in [0i64, 1, 2, 7] {
        let counts = CountBackEdges::default();
        let mut counter = 0i64;
        // SAFETY: the function reads and writes the one `counter`.
        let got = unsafe {
            jit::interp::Interpreter::new(&r)
                .with_tiering(&counts)
                .call(&f, &[Value::Ptr(&raw mut counter as u64), Value::I64(n)])
        };
        assert_eq!(got.expect("runs"), Some(Value::I64(n)), "n = {n}");
        assert_eq!(counts.0.get(), n as u64, "back-edges for n = {n}");
    }
}

#[test]
fn a_loop_passing_values_round_its_parameters_keeps_the_old_ones_until_the_jump() {
    // `%sum` goes to `%b`, but `%keep` reads the old `%b` after `%sum` is
    // defined: the jump's parameters take their values only at the jump.
    let l = lib(concat!(
        "fn fib(%n: i64) -> i64 {\nentry:\n    %zero = const i64 0\n    %one = const i64 1\n",
        "    br loop(%zero, %zero, %one)\nloop(%i: i64, %a: i64, %b: i64):\n",
        "    %more = cmp lt i64 %i, %n\n    cond_br %more, body, done\nbody:\n",
        "    %sum = add i64 %a, %b\n    %keep = add i64 %b, %zero\n    %next_i = add i64 %i, %one\n",
        "    br loop(%next_i, %keep, %sum)\ndone:\n    ret %a\n}\n"
    ));
    for (n, fib) in [(0, 0), (1, 1), (2, 1), (10, 55), (50, 12_586_269_025)] {
        assert_eq!(
            common::value(&l, "fib", &[Value::I64(n)]),
            Value::I64(fib),
            "fib({n})"
        );
    }
}

#[test]
fn functions_with_more_registers_than_a_decoded_index_holds_run_too() {
    // 255 registers are the most the fast forms index; these functions
    // take the general path throughout, and their neighbours on the
    // register stack still see their own registers.
    for adds in [253u32, 254, 255, 300] {
        let mut text = String::from(
            "fn big() -> i64 {\nentry:\n    %one = const i64 1\n    %r0 = const i64 0\n",
        );
        for k in 0..adds {
            text += &format!("    %r{} = add i64 %r{k}, %one\n", k + 1);
        }
        text += &format!("    ret %r{adds}\n}}\n");
        text += "fn outer() -> i64 {\nentry:\n    %a = call big()\n    %b = call big()\n    %s = add i64 %a, %b\n    ret %s\n}\n";
        let l = lib(&text);
        let expected = 2 * i64::from(adds);
        assert_eq!(
            ok(common::run(&l, "outer", &[])),
            Value::I64(expected),
            "{adds} adds"
        );
    }
}

#[test]
fn unbounded_recursion_stops_at_the_call_depth() {
    let l = lib("fn down(%n: i64) -> i64 {\nentry:\n    %r = call down(%n)\n    ret %r\n}\n");
    let err = common::run(&l, "down", &[Value::I64(1)]).expect_err("too deep");
    assert_eq!(err.kind, ErrorKind::CallDepth(jit::limits::MAX_CALL_DEPTH));
}

#[test]
fn recursion_computes_through_frames() {
    let l = lib(concat!(
        "fn fib<T: int>(%n: T) -> T {\nentry:\n    %two = const T 2\n    %small = cmp lt T %n, %two\n",
        "    cond_br %small, base, step\nbase:\n    ret %n\nstep:\n    %one = const T 1\n",
        "    %a = sub T %n, %one\n    %b = sub T %n, %two\n    %fa = call fib<T>(%a)\n    %fb = call fib<T>(%b)\n",
        "    %s = add T %fa, %fb\n    ret %s\n}\n"
    ));
    assert_eq!(
        common::value(&l, "fib$u32", &[Value::U32(20)]),
        Value::U32(6765)
    );
    assert_eq!(
        common::value(&l, "fib$i8", &[Value::I8(12)]),
        Value::I8(144u8 as i8)
    );
}

/// Forwards to a library resolver, counting the symbols it resolves, and
/// says it is stable only when asked to.
struct CountResolves<'l> {
    inner: jit::interp::LibraryResolver<'l>,
    stable: bool,
    resolved: std::cell::Cell<u32>,
}

impl jit::interp::Resolver for CountResolves<'_> {
    fn resolve(&self, symbol: &str) -> Result<jit::interp::Target, Error> {
        self.resolved.set(self.resolved.get() + 1);
        self.inner.resolve(symbol)
    }

    fn import(&self, name: &str) -> Result<u64, Error> {
        self.inner.import(name)
    }

    fn address_of(&self, symbol: &str) -> Result<u64, Error> {
        self.inner.address_of(symbol)
    }

    fn target_at(&self, address: u64) -> Option<jit::interp::Target> {
        self.inner.target_at(address)
    }

    fn stable_identity(&self) -> Option<std::num::NonZeroU64> {
        if self.stable {
            self.inner.stable_identity()
        } else {
            None
        }
    }
}

#[test]
fn a_symbol_called_again_from_outside_is_resolved_again_only_when_the_resolver_is_unstable() {
    let l = lib("fn twice(%x: i64) -> i64 {\nentry:\n    %r = add i64 %x, %x\n    ret %r\n}\n");
    for stable in [true, false] {
        let r = CountResolves {
            inner: common::resolver(&l),
            stable,
            resolved: std::cell::Cell::new(0),
        };
        for x in 0..3 {
            // SAFETY: the function touches no memory.
            let got =
                unsafe { jit::interp::Interpreter::new(&r).call_symbol("twice", &[Value::I64(x)]) };
            assert_eq!(got.expect("runs"), Some(Value::I64(2 * x)));
        }
        let expected = if stable { 1 } else { 3 };
        assert_eq!(r.resolved.get(), expected, "stable: {stable}");
    }
}

#[test]
fn a_symbol_called_from_outside_is_never_taken_for_another_resolvers() {
    // Two resolvers, one symbol, two functions: calls alternating between
    // them on one thread each get their own resolver's function.
    let one = lib("fn f() -> i64 {\nentry:\n    %r = const i64 1\n    ret %r\n}\n");
    let two = lib("fn f() -> i64 {\nentry:\n    %r = const i64 2\n    ret %r\n}\n");
    let (r1, r2) = (common::resolver(&one), common::resolver(&two));
    for _ in 0..2 {
        for (r, want) in [(&r1, 1), (&r2, 2)] {
            // SAFETY: the function touches no memory.
            let got = unsafe { jit::interp::Interpreter::new(r).call_symbol("f", &[]) };
            assert_eq!(got.expect("runs"), Some(Value::I64(want)));
        }
    }
}

#[test]
fn a_function_dropped_everywhere_else_is_released_once_the_thread_decodes_others() {
    // The thread's decoded code holds each function it ran; one that
    // nothing else holds is released when the cache next grows.
    let l = lib("fn f() -> i64 {\nentry:\n    %r = const i64 7\n    ret %r\n}\n");
    let call = |f: &std::sync::Arc<jit::ir::Function>| {
        let r = common::resolver(&l);
        // SAFETY: the function touches no memory.
        let got = unsafe { jit::interp::Interpreter::new(&r).call(f, &[]) };
        assert_eq!(got.expect("runs"), Some(Value::I64(7)));
    };
    let first = {
        let r = common::resolver(&l);
        let f = r.function("f").expect("instantiates");
        call(&f);
        std::sync::Arc::downgrade(&f)
    };
    // Each resolver instantiates a function of its own.
    for _ in 0..200 {
        let r = common::resolver(&l);
        call(&r.function("f").expect("instantiates"));
    }
    assert!(
        first.upgrade().is_none(),
        "the first function is still held"
    );
}

#[test]
fn arguments_must_match_the_signature() {
    let l = binary("add", "num");
    let err = apply(&l, "i32", Value::I64(1), Value::I32(2)).expect_err("wrong type");
    assert!(
        matches!(err.kind, ErrorKind::ArgumentType { index: 0, .. }),
        "{err}"
    );
}

extern "C" fn mixed(a: i8, x: f32, b: u16, y: f64, c: i64) -> f64 {
    f64::from(a) + f64::from(x) * 10.0 + f64::from(b) * 100.0 + y * 1000.0 + (c as f64) * 10000.0
}

extern "C" fn narrow(a: i32) -> i8 {
    a as i8
}

/// Calls `symbol` of `l` with the given natives registered.
fn call_with_natives(
    l: &Library,
    natives: &[(&str, u64)],
    symbol: &str,
    args: &[Value],
) -> Option<Value> {
    let r = natives.iter().fold(
        jit::interp::LibraryResolver::new(l),
        |r, &(name, address)| r.with_native(name, address),
    );
    // SAFETY: every registered native has exactly the signature its import
    // declares, and no pointers are passed.
    let out = unsafe { jit::interp::Interpreter::new(&r).call_symbol(symbol, args) };
    out.unwrap_or_else(|e| panic!("{symbol}: {e}"))
}

#[test]
fn native_calls_pass_mixed_arguments_in_registers() {
    let l = lib(concat!(
        "import fn mixed(i8, f32, u16, f64, i64) -> f64\n",
        "import fn narrow(i32) -> i8\n",
        "fn go(%a: i8, %x: f32, %b: u16, %y: f64, %c: i64) -> f64 {\nentry:\n",
        "    %r = call native mixed(%a, %x, %b, %y, %c)\n    ret %r\n}\n",
        "fn trunc(%a: i32) -> i8 {\nentry:\n    %r = call native narrow(%a)\n    ret %r\n}\n",
    ));
    let natives = [
        ("mixed", mixed as *const () as usize as u64),
        ("narrow", narrow as *const () as usize as u64),
    ];
    let args = [
        Value::I8(-1),
        Value::F32(0.5),
        Value::U16(65535),
        Value::F64(-2.0),
        Value::I64(3),
    ];
    let want = Value::F64(mixed(-1, 0.5, 65535, -2.0, 3));
    assert_eq!(call_with_natives(&l, &natives, "go", &args), Some(want));
    assert_eq!(
        call_with_natives(&l, &natives, "trunc", &[Value::I32(0x1ff)]),
        Some(Value::I8(-1))
    );
}

extern "C" fn halve(x: f32, flip: bool) -> f32 {
    if flip { -x / 2.0 } else { x / 2.0 }
}

extern "C" fn is_big(x: u64) -> bool {
    x > 1000
}

#[test]
fn native_calls_return_f32_and_bool() {
    let l = lib(concat!(
        "import fn halve(f32, bool) -> f32\n",
        "import fn is_big(u64) -> bool\n",
        "fn h(%x: f32, %f: bool) -> f32 {\nentry:\n    %r = call native halve(%x, %f)\n    ret %r\n}\n",
        "fn b(%x: u64) -> bool {\nentry:\n    %r = call native is_big(%x)\n    ret %r\n}\n",
    ));
    let natives = [
        ("halve", halve as *const () as usize as u64),
        ("is_big", is_big as *const () as usize as u64),
    ];
    let call = |symbol: &str, args: &[Value]| call_with_natives(&l, &natives, symbol, args);
    assert_eq!(
        call("h", &[Value::F32(3.0), Value::Bool(true)]),
        Some(Value::F32(-1.5))
    );
    assert_eq!(
        call("h", &[Value::F32(f32::MAX), Value::Bool(false)]),
        Some(Value::F32(f32::MAX / 2.0))
    );
    assert_eq!(call("b", &[Value::U64(1001)]), Some(Value::Bool(true)));
    assert_eq!(call("b", &[Value::U64(1000)]), Some(Value::Bool(false)));
}

#[test]
fn a_missing_import_is_an_error_not_a_jump() {
    let l =
        lib("import fn gone(i64)\nfn g(%x: i64) {\nentry:\n    call native gone(%x)\n    ret\n}\n");
    let err = common::run(&l, "g", &[Value::I64(1)]).expect_err("unresolved");
    assert_eq!(err.kind, ErrorKind::Unresolved("gone".into()));
    assert_eq!(
        err.location,
        Location::Instruction {
            function: "g".into(),
            block: 0,
            inst: Some(0)
        }
    );
}

#[test]
fn deep_recursion_of_a_large_frame_stops_at_the_stack_bound() {
    // 2,000 registers per frame: the slot bound (2^24) is reached after
    // about 8,400 frames, before the 10,000-frame depth limit.
    let mut text = String::from("fn big(%n: i64) -> i64 {\nentry:\n");
    for k in 0..2000 {
        text += &format!("    %c{k} = const i64 {k}\n");
    }
    text += "    %r = call big(%n)\n    ret %r\n}\n";
    let l = lib(&text);
    let err = common::run(&l, "big", &[Value::I64(0)]).expect_err("too much stack");
    assert!(
        matches!(err.kind, ErrorKind::Limit { what: "interpreter stack size in registers", limit, .. } if limit == 1 << 24),
        "{err}"
    );
    assert_eq!(
        err.location,
        Location::Instruction {
            function: "big".into(),
            block: 0,
            inst: Some(2000)
        }
    );
}
