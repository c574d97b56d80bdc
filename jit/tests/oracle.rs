//! The interpreter against Rust's own arithmetic: every binary operation,
//! comparison and conversion on random operands of every numeric type.
//! Rust's `wrapping_*`, `as` and IEEE float operations implement exactly
//! the semantics the format defines, so they are an independent reference.

mod common;

use common::Scalar;
use jit::interp::Value;
use jit::ir::Library;
use jit::{ErrorKind, TrapKind};
use proptest::prelude::*;
use std::sync::OnceLock;

const TYPES: [&str; 10] = [
    "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64",
];
const INT_OPS: [&str; 10] = [
    "add", "sub", "mul", "div", "rem", "and", "or", "xor", "shl", "shr",
];
const FLOAT_OPS: [&str; 4] = ["add", "sub", "mul", "div"];
const CMPS: [&str; 6] = ["eq", "ne", "lt", "le", "gt", "ge"];

/// One template per operation and one function per conversion pair.
fn library() -> &'static Library {
    static LIB: OnceLock<Library> = OnceLock::new();
    LIB.get_or_init(|| {
        let mut text = String::new();
        for op in INT_OPS {
            let c = if FLOAT_OPS.contains(&op) { "num" } else { "int" };
            text += &format!("fn {op}_op<T: {c}>(%a: T, %b: T) -> T {{\nentry:\n    %r = {op} T %a, %b\n    ret %r\n}}\n");
        }
        for c in CMPS {
            text += &format!("fn {c}_cmp<T: num>(%a: T, %b: T) -> bool {{\nentry:\n    %r = cmp {c} T %a, %b\n    ret %r\n}}\n");
        }
        for from in TYPES {
            for to in TYPES {
                text += &format!(
                    "fn cast_{from}_{to}(%a: {from}) -> {to} {{\nentry:\n    %r = cast {from} %a to {to}\n    ret %r\n}}\n"
                );
            }
        }
        let lib = jit::text::parse_library(&text).expect("parses");
        jit::verify::verify_library(&lib).expect("verifies");
        lib
    })
}

fn eval(symbol: &str, args: &[Value]) -> Result<Value, TrapKind> {
    match common::run(library(), symbol, args) {
        Ok(Some(v)) => Ok(v),
        Err(jit::Error {
            kind: ErrorKind::Trap(t),
            ..
        }) => Err(t),
        other => panic!("{symbol}: {other:?}"),
    }
}

/// Bits of a value, NaNs collapsed to one pattern (payloads are checked
/// by the bitcast tests; here only NaN-ness matters).
fn bits(v: Value) -> u64 {
    match v {
        Value::F32(x) if x.is_nan() => u64::MAX,
        Value::F64(x) if x.is_nan() => u64::MAX,
        other => other.to_bits(),
    }
}

macro_rules! int_reference {
    ($t:ty, $a:expr, $b:expr, $op:expr) => {{
        let (a, b): ($t, $t) = ($a as $t, $b as $t);
        let r: Option<$t> = match $op {
            "add" => Some(a.wrapping_add(b)),
            "sub" => Some(a.wrapping_sub(b)),
            "mul" => Some(a.wrapping_mul(b)),
            "div" => (b != 0).then(|| a.wrapping_div(b)),
            "rem" => (b != 0).then(|| a.wrapping_rem(b)),
            "and" => Some(a & b),
            "or" => Some(a | b),
            "xor" => Some(a ^ b),
            "shl" => Some(a.wrapping_shl(b as u32)),
            _ => Some(a.wrapping_shr(b as u32)),
        };
        (a.value(), b.value(), r.map(Scalar::value))
    }};
}

fn int_case(ty: usize, op: &str, a: u64, b: u64) -> (Value, Value, Option<Value>) {
    match ty {
        0 => int_reference!(i8, a, b, op),
        1 => int_reference!(i16, a, b, op),
        2 => int_reference!(i32, a, b, op),
        3 => int_reference!(i64, a, b, op),
        4 => int_reference!(u8, a, b, op),
        5 => int_reference!(u16, a, b, op),
        6 => int_reference!(u32, a, b, op),
        _ => int_reference!(u64, a, b, op),
    }
}

/// Operands biased toward the interesting values: 0, ±1, the extremes.
fn operand() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(0x80),
        Just(0x7f),
        Just(0x8000),
        Just(0x8000_0000),
        Just(0x8000_0000_0000_0000),
        Just(0x7fff_ffff_ffff_ffff),
        0u64..70,
    ]
}

fn float_operand() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(0.0),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(1.5e10),
        Just(-2.5e19),
        Just(3e9),
        -300.0f64..300.0,
    ]
}

/// A value of type `TYPES[ty]` built from raw material.
fn typed(ty: usize, raw: u64, f: f64) -> Value {
    match ty {
        0 => Value::I8(raw as i8),
        1 => Value::I16(raw as i16),
        2 => Value::I32(raw as i32),
        3 => Value::I64(raw as i64),
        4 => Value::U8(raw as u8),
        5 => Value::U16(raw as u16),
        6 => Value::U32(raw as u32),
        7 => Value::U64(raw),
        8 => Value::F32(f as f32),
        _ => Value::F64(f),
    }
}

macro_rules! cast_from {
    ($x:expr, $to:expr) => {
        match $to {
            0 => Value::I8($x as i8),
            1 => Value::I16($x as i16),
            2 => Value::I32($x as i32),
            3 => Value::I64($x as i64),
            4 => Value::U8($x as u8),
            5 => Value::U16($x as u16),
            6 => Value::U32($x as u32),
            7 => Value::U64($x as u64),
            8 => Value::F32($x as f32),
            _ => Value::F64($x as f64),
        }
    };
}

/// Rust's `as`, which the format's `cast` follows.
fn cast_reference(v: Value, to: usize) -> Value {
    match v {
        Value::I8(x) => cast_from!(x, to),
        Value::I16(x) => cast_from!(x, to),
        Value::I32(x) => cast_from!(x, to),
        Value::I64(x) => cast_from!(x, to),
        Value::U8(x) => cast_from!(x, to),
        Value::U16(x) => cast_from!(x, to),
        Value::U32(x) => cast_from!(x, to),
        Value::U64(x) => cast_from!(x, to),
        Value::F32(x) => cast_from!(x, to),
        Value::F64(x) => cast_from!(x, to),
        other => panic!("not numeric: {other:?}"),
    }
}

fn compare_reference(c: &str, a: Value, b: Value) -> bool {
    fn cmp<T: PartialOrd>(c: &str, a: T, b: T) -> bool {
        match c {
            "eq" => a == b,
            "ne" => a != b,
            "lt" => a < b,
            "le" => a <= b,
            "gt" => a > b,
            _ => a >= b,
        }
    }
    match (a, b) {
        (Value::I8(a), Value::I8(b)) => cmp(c, a, b),
        (Value::I16(a), Value::I16(b)) => cmp(c, a, b),
        (Value::I32(a), Value::I32(b)) => cmp(c, a, b),
        (Value::I64(a), Value::I64(b)) => cmp(c, a, b),
        (Value::U8(a), Value::U8(b)) => cmp(c, a, b),
        (Value::U16(a), Value::U16(b)) => cmp(c, a, b),
        (Value::U32(a), Value::U32(b)) => cmp(c, a, b),
        (Value::U64(a), Value::U64(b)) => cmp(c, a, b),
        (Value::F32(a), Value::F32(b)) => cmp(c, a, b),
        (Value::F64(a), Value::F64(b)) => cmp(c, a, b),
        other => panic!("mismatched operands {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn integer_operations_match_rust(ty in 0usize..8, op in 0usize..INT_OPS.len(), a in operand(), b in operand()) {
        let op = INT_OPS[op];
        let (va, vb, want) = int_case(ty, op, a, b);
        let got = eval(&format!("{op}_op${}", TYPES[ty]), &[va, vb]);
        match want {
            Some(w) => prop_assert_eq!(got, Ok(w), "{} {:?} {:?}", op, va, vb),
            None => prop_assert_eq!(got, Err(TrapKind::DivideByZero)),
        }
    }

    #[test]
    fn float_operations_match_ieee(wide in any::<bool>(), op in 0usize..FLOAT_OPS.len(), a in float_operand(), b in float_operand()) {
        let op = FLOAT_OPS[op];
        let (va, vb, want) = if wide {
            let r = match op { "add" => a + b, "sub" => a - b, "mul" => a * b, _ => a / b };
            (Value::F64(a), Value::F64(b), Value::F64(r))
        } else {
            let (a, b) = (a as f32, b as f32);
            let r = match op { "add" => a + b, "sub" => a - b, "mul" => a * b, _ => a / b };
            (Value::F32(a), Value::F32(b), Value::F32(r))
        };
        let ty = if wide { "f64" } else { "f32" };
        let got = eval(&format!("{op}_op${ty}"), &[va, vb]).expect("floats never trap");
        prop_assert_eq!(bits(got), bits(want), "{} {:?} {:?}", op, va, vb);
    }

    #[test]
    fn comparisons_match_rust(ty in 0usize..10, c in 0usize..CMPS.len(), a in operand(), b in operand(), fa in float_operand(), fb in float_operand(), same in any::<bool>()) {
        let c = CMPS[c];
        let va = typed(ty, a, fa);
        let vb = if same { va } else { typed(ty, b, fb) };
        let got = eval(&format!("{c}_cmp${}", TYPES[ty]), &[va, vb]);
        prop_assert_eq!(got, Ok(Value::Bool(compare_reference(c, va, vb))), "{} {:?} {:?}", c, va, vb);
    }

    #[test]
    fn conversions_match_rust_as(from in 0usize..10, to in 0usize..10, raw in operand(), f in float_operand()) {
        let v = typed(from, raw, f);
        let got = eval(&format!("cast_{}_{}", TYPES[from], TYPES[to]), &[v]).expect("casts never trap");
        prop_assert_eq!(bits(got), bits(cast_reference(v, to)), "{:?} as {}", v, TYPES[to]);
    }
}
