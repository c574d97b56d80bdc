//! Integer reductions in counted loops, which the x86-64 backend splits
//! over several accumulators: the compiled code returns what the
//! interpreter returns, leaves memory as it does, and traps where it does,
//! for every length around the split's width and every reduction
//! operation and integer type.

// These tests call generated code and hand raw buffers to the interpreter.
#![allow(unsafe_code)]

mod backend_support;
mod common;

use backend_support::{Jit, Oracle, instructions};
use jit::interp::Value;
use jit::ir::Library;

use common::Rng;

fn library(text: &str) -> Library {
    let lib = jit::text::parse_library(text).unwrap_or_else(|e| panic!("parse: {e}"));
    jit::verify::verify_library(&lib).unwrap_or_else(|e| panic!("verify: {e}"));
    lib
}

/// `fn red<T>(%xs: ptr<T>, %n: i64) -> T` folding the elements with `op`
/// from `start`.
fn reduction(op: &str, start: i64) -> String {
    format!(
        "fn red<T: int>(%xs: ptr<T>, %n: i64) -> T {{
entry:
    %start = const T {start}
    %i0 = const i64 0
    %one = const i64 1
    br loop(%i0, %start)
loop(%i: i64, %acc: T):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = load T %xs[%i]
    %next = {op} T %acc, %x
    %i2 = add i64 %i, %one
    br loop(%i2, %next)
done:
    ret %acc
}}
"
    )
}

/// Loops of other shapes around a reduction: two reductions at once, the
/// counter read as a value, a store in the body, the accumulator on the
/// right, a bound that is a constant, a counter stepping by three, a body
/// that calls.
const SHAPES: &str = "
fn two(%xs: ptr<i32>, %ys: ptr<i64>, %n: i64) -> i64 {
entry:
    %zero = const i32 0
    %zero64 = const i64 0
    %one = const i64 1
    br loop(%zero64, %zero, %zero64)
loop(%i: i64, %s: i32, %h: i64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = load i32 %xs[%i]
    %y = load i64 %ys[%i]
    %s2 = add i32 %x, %s
    %h2 = xor i64 %h, %y
    %i2 = add i64 %i, %one
    br loop(%i2, %s2, %h2)
done:
    %w = cast i32 %s to i64
    %r = mul i64 %w, %h
    %t = add i64 %r, %i
    ret %t
}

fn counted(%xs: ptr<i64>, %out: ptr<i64>, %n: i64) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    %three = const i64 3
    br loop(%zero, %one)
loop(%i: i64, %acc: i64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = load i64 %xs[%i]
    %k = mul i64 %i, %three
    %v = sub i64 %x, %k
    store i64 %v, %out[%i]
    %i2 = add i64 %i, %one
    %w = add i64 %v, %i2
    %next = mul i64 %acc, %w
    br loop(%i2, %next)
done:
    ret %acc
}

fn divided(%xs: ptr<i32>, %out: ptr<i32>, %n: i64) -> i32 {
entry:
    %zero = const i32 0
    %zero64 = const i64 0
    %one = const i64 1
    %big = const i32 1000000
    br loop(%zero64, %zero)
loop(%i: i64, %acc: i32):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = load i32 %xs[%i]
    store i32 %x, %out[%i]
    %q = div i32 %big, %x
    %next = or i32 %acc, %q
    %i2 = add i64 %i, %one
    br loop(%i2, %next)
done:
    ret %acc
}

fn fixed(%xs: ptr<u16>) -> u16 {
entry:
    %zero = const u16 0
    %i0 = const i64 0
    %one = const i64 1
    %n = const i64 11
    br loop(%i0, %zero)
loop(%i: i64, %acc: u16):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = load u16 %xs[%i]
    %next = add u16 %acc, %x
    %i2 = add i64 %i, %one
    br loop(%i2, %next)
done:
    ret %acc
}

fn strided(%xs: ptr<i16>, %n: i64) -> i32 {
entry:
    %zero = const i32 0
    %zero64 = const i64 0
    %three = const i64 3
    br loop(%zero64, %zero, %zero)
loop(%i: i64, %s: i32, %p: i32):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = load i16 %xs[%i]
    %w = cast i16 %x to i32
    %s2 = add i32 %s, %w
    %k = cast i64 %i to i32
    %t = mul i32 %w, %k
    %p2 = xor i32 %p, %t
    %i2 = add i64 %i, %three
    br loop(%i2, %s2, %p2)
done:
    %r = sub i32 %s, %p
    ret %r
}

fn twice(%x: i64) -> i64 {
entry:
    %two = const i64 2
    %r = mul i64 %x, %two
    ret %r
}

fn calling(%xs: ptr<i64>, %n: i64) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    br loop(%zero, %zero)
loop(%i: i64, %acc: i64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = load i64 %xs[%i]
    %y = call twice(%x)
    %next = add i64 %acc, %y
    %i2 = add i64 %i, %one
    br loop(%i2, %next)
done:
    ret %acc
}
";

const INT_TYPES: [(&str, usize); 8] = [
    ("i8", 1),
    ("u8", 1),
    ("i16", 2),
    ("u16", 2),
    ("i32", 4),
    ("u32", 4),
    ("i64", 8),
    ("u64", 8),
];

/// Lengths around the split's width of four, and longer ones.
const LENGTHS: [usize; 14] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 16, 33, 100];

/// `n` random elements of `size` bytes in an 8-byte-aligned buffer.
fn buffer(n: usize, size: usize, rng: &mut Rng) -> Vec<u64> {
    let mut words = vec![0u64; (n * size).div_ceil(8) + 1];
    for w in &mut words {
        *w = rng.next();
    }
    words
}

#[test]
fn every_reduction_of_every_integer_type_matches_the_interpreter() {
    let mut rng = Rng(0x5EED_F4ED);
    for (op, start) in [("add", 7), ("mul", 3), ("and", 127), ("or", 0), ("xor", 5)] {
        let lib = library(&reduction(op, start));
        let jit = Jit::new(&lib);
        let oracle = Oracle::new(&lib);
        for (ty, size) in INT_TYPES {
            let symbol = format!("red${ty}");
            for n in LENGTHS {
                let mut xs = buffer(n, size, &mut rng);
                if op == "mul" {
                    // Odd factors, so that the product does not become 0.
                    for w in &mut xs {
                        *w |= 0x0101_0101_0101_0101;
                    }
                }
                let args = [common::ptr(&mut xs), common::len(n)];
                assert_eq!(
                    jit.call(&symbol, &args),
                    oracle.call(&symbol, &args),
                    "{op} over {n} {ty}"
                );
            }
        }
    }
}

/// Calls `symbol(xs, out, n)` compiled and interpreted, each with an
/// output buffer of `n + 1` elements filled with `fill`; returns each
/// outcome with the buffer it left.
fn with_output<X, T: Copy>(
    jit: &Jit<'_>,
    oracle: &Oracle<'_>,
    symbol: &str,
    xs: &mut [X],
    n: usize,
    fill: T,
) -> (
    (backend_support::Outcome, Vec<T>),
    (backend_support::Outcome, Vec<T>),
) {
    let mut run = |call: &dyn Fn(&[Value]) -> backend_support::Outcome| {
        let mut out = vec![fill; n + 1];
        let outcome = call(&[common::ptr(xs), common::ptr(&mut out), common::len(n)]);
        (outcome, out)
    };
    let compiled = run(&|args| jit.call(symbol, args));
    let interpreted = run(&|args| oracle.call(symbol, args));
    (compiled, interpreted)
}

#[test]
fn loops_of_other_shapes_match_the_interpreter_with_their_memory() {
    let lib = library(SHAPES);
    let jit = Jit::new(&lib);
    let oracle = Oracle::new(&lib);
    let mut rng = Rng(0xD1CE);
    for n in LENGTHS {
        let mut xs = buffer(n, 4, &mut rng);
        let mut ys = buffer(n, 8, &mut rng);
        let args = [common::ptr(&mut xs), common::ptr(&mut ys), common::len(n)];
        assert_eq!(
            jit.call("two", &args),
            oracle.call("two", &args),
            "two({n})"
        );

        let mut xs = buffer(n, 8, &mut rng);
        let (compiled, interpreted) = with_output(&jit, &oracle, "counted", &mut xs, n, 0u64);
        assert_eq!(compiled, interpreted, "counted({n})");

        let mut xs = buffer(n, 2, &mut rng);
        let args = [common::ptr(&mut xs), common::len(n)];
        assert_eq!(
            jit.call("strided", &args),
            oracle.call("strided", &args),
            "strided({n})"
        );

        let mut xs = buffer(n, 8, &mut rng);
        let args = [common::ptr(&mut xs), common::len(n)];
        assert_eq!(
            jit.call("calling", &args),
            oracle.call("calling", &args),
            "calling({n})"
        );
    }
    let mut xs = buffer(11, 2, &mut rng);
    assert_eq!(
        jit.call("fixed", &[common::ptr(&mut xs)]),
        oracle.call("fixed", &[common::ptr(&mut xs)]),
        "fixed"
    );
}

#[test]
fn a_trap_in_the_body_leaves_the_memory_the_interpreter_leaves() {
    // `divided` stores each element, then divides by it: a zero element
    // traps there, in a wide trip or the narrow loop, with
    // every earlier store done and no later one.
    let lib = library(SHAPES);
    let jit = Jit::new(&lib);
    let oracle = Oracle::new(&lib);
    for n in [5usize, 9, 16, 23] {
        for zero_at in 0..n {
            let mut xs: Vec<i32> = (0..n as i32).map(|k| k % 7 + 1).collect();
            xs[zero_at] = 0;
            let (compiled, interpreted) = with_output(&jit, &oracle, "divided", &mut xs, n, -1i32);
            assert_eq!(compiled, interpreted, "divided, zero at {zero_at} of {n}");
            assert!(compiled.0.is_err(), "divided traps");
        }
    }
    // A null array traps on its first element, as interpreted.
    for n in [1i64, 4, 9] {
        let args = [Value::Ptr(0), Value::I64(n)];
        let lib = library(&reduction("add", 0));
        let jit = Jit::new(&lib);
        assert_eq!(
            jit.call("red$i64", &args),
            Oracle::new(&lib).call("red$i64", &args),
            "null array of {n}"
        );
    }
}

#[test]
fn a_sum_runs_four_accumulators_per_trip() {
    // The wide loop of sum$i64 loads four elements and adds each into an
    // accumulator of its own.
    let lib = common::collections();
    let jit = Jit::new(&lib);
    let listing = jit.listing_of("sum$i64");
    let ops = instructions(&listing);
    let accumulating: std::collections::BTreeSet<&str> = ops
        .windows(2)
        .filter(|w| w[0].1 == "mov" && w[0].2.contains('[') && w[1].1 == "add")
        .filter_map(|w| w[1].2.split(',').next())
        .collect();
    assert!(
        accumulating.len() >= 4,
        "fewer than four accumulators:\n{listing}"
    );
}
