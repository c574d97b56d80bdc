//! The collections template library, run in the reference interpreter for
//! every numeric type and a struct, against values computed in Rust.

// These tests call generated code and hand raw buffers to the interpreter.
#![allow(unsafe_code)]

mod common;

use common::{Elem, Rng, len, ptr, run, trap, unit, value};
use jit::TrapKind;
use jit::interp::Value;

fn symbol<T: Elem>(name: &str) -> String {
    format!("{name}${}", T::NAME)
}

/// Random arrays with the type's edge values mixed in.
fn sample<T: Elem>(seed: u64, n: usize) -> Vec<T> {
    let mut rng = Rng(seed | 1);
    let edges = T::edges();
    (0..n)
        .map(|k| {
            if k % 7 == 3 {
                edges[k % edges.len()]
            } else {
                T::from_bits(rng.next())
            }
        })
        .collect()
}

fn sum_is_left_to_right_and_wraps<T: Elem>() {
    let lib = common::collections();
    let sym = symbol::<T>("sum");
    for n in [0usize, 1, 2, 7, 64] {
        let mut xs = sample::<T>(n as u64 + 11, n);
        // Every prefix boundary: len-1, len (len+1 would read past the buffer).
        for take in [n.saturating_sub(1), n] {
            let want = xs[..take].iter().fold(T::small(0), |a, &x| a.add(x));
            let got = T::from_value(value(&lib, &sym, &[ptr(&mut xs), len(take)]));
            assert_eq!(got.bits(), want.bits(), "{sym} over {:?}", &xs[..take]);
        }
    }
    // Wrap-around (integers) or overflow to infinity (floats) at the maximum.
    let mut top = vec![T::edges()[1], T::small(1), T::small(1)];
    let want = top.iter().fold(T::small(0), |a, &x| a.add(x));
    let got = T::from_value(value(&lib, &sym, &[ptr(&mut top), len(3)]));
    assert_eq!(got.bits(), want.bits());
}

#[test]
fn sum_for_every_numeric_type() {
    for_each_num!(sum_is_left_to_right_and_wraps);
}

#[test]
fn sum_of_integers_wraps_past_the_maximum() {
    let lib = common::collections();
    let mut xs = [i32::MAX, 1];
    assert_eq!(
        value(&lib, "sum$i32", &[ptr(&mut xs), len(2)]),
        Value::I32(i32::MIN)
    );
    let mut us = [u8::MAX, 2, 0];
    assert_eq!(value(&lib, "sum$u8", &[ptr(&mut us), len(3)]), Value::U8(1));
    let mut ls = [i64::MIN, -1];
    assert_eq!(
        value(&lib, "sum$i64", &[ptr(&mut ls), len(2)]),
        Value::I64(i64::MAX)
    );
}

#[test]
fn sum_of_floats_propagates_nan_and_adds_in_order() {
    let lib = common::collections();
    let mut xs = [1.0f64, f64::NAN, 2.0];
    let Value::F64(v) = value(&lib, "sum$f64", &[ptr(&mut xs), len(3)]) else {
        panic!()
    };
    assert!(v.is_nan());
    // 1e16 + 1 + 1 in order loses both ones; any other order would not.
    let mut big = [1e16f64, 1.0, 1.0];
    assert_eq!(
        value(&lib, "sum$f64", &[ptr(&mut big), len(3)]),
        Value::F64(1e16)
    );
    let mut small = [1.0f64, 1.0, 1e16];
    assert_eq!(
        value(&lib, "sum$f64", &[ptr(&mut small), len(3)]),
        Value::F64(1e16 + 2.0)
    );
    let mut empty: [f32; 0] = [];
    assert_eq!(
        value(&lib, "sum$f32", &[ptr(&mut empty), len(0)]),
        Value::F32(0.0)
    );
}

fn dot_matches_unfused_products<T: Elem>() {
    let lib = common::collections();
    let sym = symbol::<T>("dot");
    for n in [0usize, 1, 5, 33] {
        let mut a = sample::<T>(n as u64 + 3, n);
        let mut b = sample::<T>(n as u64 + 99, n);
        let want = a
            .iter()
            .zip(&b)
            .fold(T::small(0), |acc, (&x, &y)| acc.add(x.mul(y)));
        let got = T::from_value(value(&lib, &sym, &[ptr(&mut a), ptr(&mut b), len(n)]));
        assert_eq!(got.bits(), want.bits(), "{sym} n={n}");
    }
}

#[test]
fn dot_for_every_numeric_type() {
    for_each_num!(dot_matches_unfused_products);
}

#[test]
fn dot_rounds_each_product_before_adding() {
    // x*x = 1 + 2^-11 + 2^-24 rounds (ties to even) to 1 + 2^-11 in f32, so
    // the unfused sum is exactly 0; a fused multiply-add would give 2^-24.
    let lib = common::collections();
    let x = 1.0f32 + 2f32.powi(-12);
    let mut a = [x, 1.0];
    let mut b = [x, -(1.0 + 2f32.powi(-11))];
    assert_eq!(
        value(&lib, "dot$f32", &[ptr(&mut a), ptr(&mut b), len(2)]),
        Value::F32(0.0)
    );
}

fn extremes<T: Elem>() {
    let lib = common::collections();
    for n in [1usize, 2, 9, 40] {
        let mut xs = sample::<T>(n as u64 + 5, n);
        let want_max = xs
            .iter()
            .skip(1)
            .fold(xs[0], |best, &x| if x > best { x } else { best });
        let want_min = xs
            .iter()
            .skip(1)
            .fold(xs[0], |best, &x| if x < best { x } else { best });
        let got_max = T::from_value(value(&lib, &symbol::<T>("max"), &[ptr(&mut xs), len(n)]));
        let got_min = T::from_value(value(&lib, &symbol::<T>("min"), &[ptr(&mut xs), len(n)]));
        assert_eq!(got_max.bits(), want_max.bits());
        assert_eq!(got_min.bits(), want_min.bits());
    }
    let mut edges = T::edges();
    let got = T::from_value(value(&lib, &symbol::<T>("max"), &[ptr(&mut edges), len(2)]));
    assert_eq!(got.bits(), T::edges()[1].bits(), "max of MIN and MAX");
    let got = T::from_value(value(&lib, &symbol::<T>("min"), &[ptr(&mut edges), len(2)]));
    assert_eq!(got.bits(), T::edges()[0].bits(), "min of MIN and MAX");
    let mut none: Vec<T> = Vec::new();
    assert_eq!(
        trap(run(&lib, &symbol::<T>("max"), &[ptr(&mut none), len(0)])),
        TrapKind::Explicit(1)
    );
    assert_eq!(
        trap(run(&lib, &symbol::<T>("min"), &[ptr(&mut none), len(0)])),
        TrapKind::Explicit(1)
    );
}

#[test]
fn min_and_max_for_every_numeric_type() {
    for_each_num!(extremes);
}

#[test]
fn max_skips_nan_unless_it_comes_first() {
    let lib = common::collections();
    let mut xs = [1.0f64, f64::NAN, 3.0, 2.0];
    assert_eq!(
        value(&lib, "max$f64", &[ptr(&mut xs), len(4)]),
        Value::F64(3.0)
    );
    let mut lead = [f32::NAN, 1.0];
    let Value::F32(v) = value(&lib, "max$f32", &[ptr(&mut lead), len(2)]) else {
        panic!()
    };
    assert!(v.is_nan());
}

fn fill_stores_exactly_n<T: Elem>() {
    let lib = common::collections();
    let v = T::edges()[1];
    let mut xs = vec![T::small(3); 6];
    unit(
        &lib,
        &symbol::<T>("fill"),
        &[ptr(&mut xs), len(5), v.value()],
    );
    assert!(xs[..5].iter().all(|x| x.bits() == v.bits()));
    assert_eq!(xs[5].bits(), T::small(3).bits(), "element n is untouched");
    unit(
        &lib,
        &symbol::<T>("fill"),
        &[ptr(&mut xs), len(0), T::small(0).value()],
    );
    assert_eq!(xs[0].bits(), v.bits());
}

#[test]
fn fill_for_every_numeric_type() {
    for_each_num!(fill_stores_exactly_n);
}

fn reverse_in_place<T: Elem>() {
    let lib = common::collections();
    for n in [0usize, 1, 2, 3, 8, 17] {
        let mut xs = sample::<T>(n as u64 + 21, n + 1);
        let mut want = xs.clone();
        want[..n].reverse();
        unit(&lib, &symbol::<T>("reverse"), &[ptr(&mut xs), len(n)]);
        let bits: Vec<u64> = xs.iter().map(|x| x.bits()).collect();
        let want_bits: Vec<u64> = want.iter().map(|x| x.bits()).collect();
        assert_eq!(bits, want_bits, "reverse n={n}");
    }
}

#[test]
fn reverse_for_every_numeric_type() {
    for_each_num!(reverse_in_place);
}

/// Same layout as the IR's `Pair<i8, i64>`.
type SmallBig = CPair<i8, i64>;

#[test]
fn reverse_moves_whole_structs() {
    let lib = common::collections();
    let mut xs: Vec<SmallBig> = (0..7)
        .map(|k| SmallBig {
            first: k as i8 - 3,
            second: i64::MAX - k,
        })
        .collect();
    let mut want = xs.clone();
    want.reverse();
    unit(&lib, "reverse$Pair_2$i8$i64", &[ptr(&mut xs), len(7)]);
    assert_eq!(xs, want);
}

fn sorted<T: Elem>(xs: &[T]) -> Vec<u64> {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN in sort inputs"));
    v.iter().map(|x| x.bits()).collect()
}

fn sorts<T: Elem>() {
    let lib = common::collections();
    for name in ["insertion_sort", "quicksort", "sort"] {
        for n in [0usize, 1, 2, 8, 9, 10, 57, 300] {
            let mut xs = sample::<T>(n as u64 * 31 + 7, n);
            // Duplicates and already-sorted runs.
            if n > 4 {
                xs[1] = xs[3];
                xs[n - 1] = xs[0];
            }
            let want = sorted(&xs);
            unit(&lib, &symbol::<T>(name), &[ptr(&mut xs), len(n)]);
            // Ascending, and a permutation of the input (compared as bit
            // patterns, since -0.0 and 0.0 may come in either order).
            assert!(
                xs.windows(2).all(|w| w[0] <= w[1]),
                "{name}${} n={n}: {xs:?}",
                T::NAME
            );
            let mut got: Vec<u64> = xs.iter().map(|x| x.bits()).collect();
            let mut expected = want.clone();
            got.sort_unstable();
            expected.sort_unstable();
            assert_eq!(
                got,
                expected,
                "{name}${} n={n} is not a permutation",
                T::NAME
            );
        }
        // Sorted and reverse-sorted inputs.
        let mut asc: Vec<T> = (0..40).map(|k| T::small(k)).collect();
        let want = sorted(&asc);
        unit(&lib, &symbol::<T>(name), &[ptr(&mut asc), len(40)]);
        assert_eq!(asc.iter().map(|x| x.bits()).collect::<Vec<_>>(), want);
        let mut desc: Vec<T> = (0..40).rev().map(|k| T::small(k)).collect();
        unit(&lib, &symbol::<T>(name), &[ptr(&mut desc), len(40)]);
        assert_eq!(desc.iter().map(|x| x.bits()).collect::<Vec<_>>(), want);
    }
}

#[test]
fn sorts_for_every_numeric_type() {
    for_each_num!(sorts);
}

#[test]
fn sort_leaves_elements_past_n_alone() {
    let lib = common::collections();
    let mut xs = [5i32, 4, 3, 2, 1, -7];
    unit(&lib, "sort$i32", &[ptr(&mut xs), len(5)]);
    assert_eq!(xs, [1, 2, 3, 4, 5, -7]);
}

extern "C" fn descending_i32(a: i32, b: i32) -> i32 {
    b.cmp(&a) as i32
}

extern "C" fn by_magnitude_f64(a: f64, b: f64) -> i32 {
    a.abs().partial_cmp(&b.abs()).map_or(0, |o| o as i32)
}

#[test]
fn quicksort_by_calls_a_native_comparator() {
    let lib = common::collections();
    let native = descending_i32 as *const () as usize as u64;
    let r = common::resolver(&lib).with_native("descending_i32", native);
    let mut xs: Vec<i32> = sample::<i32>(77, 100);
    let mut want = xs.clone();
    want.sort_by(|a, b| b.cmp(a));
    // SAFETY: xs is live for the call and the comparator has the declared signature.
    let out = unsafe {
        jit::interp::Interpreter::new(&r).call_symbol(
            "quicksort_by$i32",
            &[ptr(&mut xs), len(100), Value::Ptr(native)],
        )
    };
    assert_eq!(out, Ok(None));
    assert_eq!(xs, want);

    let native = by_magnitude_f64 as *const () as usize as u64;
    let r = common::resolver(&lib).with_native("by_magnitude", native);
    let mut fs = [-3.0f64, 2.0, -1.0, 0.5, -0.25];
    // SAFETY: as above.
    let out = unsafe {
        jit::interp::Interpreter::new(&r).call_symbol(
            "quicksort_by$f64",
            &[ptr(&mut fs), len(5), Value::Ptr(native)],
        )
    };
    assert_eq!(out, Ok(None));
    assert_eq!(fs, [-0.25, 0.5, -1.0, 2.0, -3.0]);
}

#[test]
fn quicksort_by_calls_an_interpreted_comparator_through_its_token() {
    let lib = common::collections();
    let r = common::resolver(&lib);
    let token = jit::interp::Resolver::address_of(&r, "compare_asc$u16").expect("instantiates");
    let mut xs: Vec<u16> = sample::<u16>(5, 50);
    let mut want = xs.clone();
    want.sort();
    // SAFETY: xs is live for the call.
    let out = unsafe {
        jit::interp::Interpreter::new(&r).call_symbol(
            "quicksort_by$u16",
            &[ptr(&mut xs), len(50), Value::Ptr(token)],
        )
    };
    assert_eq!(out, Ok(None));
    assert_eq!(xs, want);
    // An address nobody handed out is refused, not jumped to.
    let mut ys = [2u16, 1];
    // SAFETY: ys is live; the bogus pointer is never called.
    let err = unsafe {
        jit::interp::Interpreter::new(&r).call_symbol(
            "quicksort_by$u16",
            &[ptr(&mut ys), len(2), Value::Ptr(token + 8)],
        )
    };
    assert!(
        matches!(err, Err(jit::Error { kind: jit::ErrorKind::UnknownFunctionPointer(a), .. }) if a == token + 8)
    );
}

fn sort_desc_through_func_addr<T: Elem>() {
    let lib = common::collections();
    let mut xs = sample::<T>(17, 30);
    let mut want = sorted(&xs);
    unit(&lib, &symbol::<T>("sort_desc"), &[ptr(&mut xs), len(30)]);
    assert!(xs.windows(2).all(|w| w[0] >= w[1]), "{xs:?}");
    let mut got: Vec<u64> = xs.iter().map(|x| x.bits()).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
}

#[test]
fn sort_desc_for_every_numeric_type() {
    for_each_num!(sort_desc_through_func_addr);
}

fn searches<T: Elem>() {
    let lib = common::collections();
    let sym = symbol::<T>("binary_search");
    let mut xs: Vec<T> = [-5i8, -2, 0, 0, 0, 3, 9, 9, 100]
        .iter()
        .map(|&v| T::small(v))
        .collect();
    xs.sort_by(|a, b| a.partial_cmp(b).expect("ordered"));
    let n = xs.len();
    for (k, x) in xs.clone().iter().enumerate() {
        let first = xs.iter().position(|y| y == x).expect("present");
        assert_eq!(
            value(&lib, &sym, &[ptr(&mut xs), len(n), x.value()]),
            Value::I64(first as i64),
            "key at {k}"
        );
    }
    // Absent keys: below, between and above; and the n-1 / n boundaries.
    for key in [-6i8, 1, 50, 101] {
        assert_eq!(
            value(&lib, &sym, &[ptr(&mut xs), len(n), T::small(key).value()]),
            Value::I64(-1),
            "key {key}"
        );
    }
    let last = xs[n - 1];
    assert_eq!(
        value(&lib, &sym, &[ptr(&mut xs), len(n - 1), last.value()]),
        Value::I64(-1)
    );
    assert_eq!(
        value(&lib, &sym, &[ptr(&mut xs), len(n), last.value()]),
        Value::I64(n as i64 - 1)
    );
    assert_eq!(
        value(&lib, &sym, &[ptr(&mut xs), len(0), xs[0].value()]),
        Value::I64(-1)
    );
    // The type's extremes.
    let mut ext = vec![T::edges()[0], T::small(0), T::edges()[1]];
    assert_eq!(
        value(&lib, &sym, &[ptr(&mut ext), len(3), T::edges()[0].value()]),
        Value::I64(0)
    );
    assert_eq!(
        value(&lib, &sym, &[ptr(&mut ext), len(3), T::edges()[1].value()]),
        Value::I64(2)
    );
}

#[test]
fn binary_search_for_every_numeric_type() {
    for_each_num!(searches);
}

#[test]
fn binary_search_never_finds_nan() {
    let lib = common::collections();
    let mut xs = [1.0f64, 2.0, f64::INFINITY];
    assert_eq!(
        value(
            &lib,
            "binary_search$f64",
            &[ptr(&mut xs), len(3), Value::F64(f64::NAN)]
        ),
        Value::I64(-1)
    );
    assert_eq!(
        value(
            &lib,
            "binary_search$f64",
            &[ptr(&mut xs), len(3), Value::F64(f64::INFINITY)]
        ),
        Value::I64(2)
    );
}

fn vec_grows<T: Elem>() {
    let lib = common::collections();
    let new = format!("Vec${}$new", T::NAME);
    let push = format!("Vec${}$push", T::NAME);
    let get = format!("Vec${}$get", T::NAME);
    let length = format!("Vec${}$len", T::NAME);
    let free = format!("Vec${}$free", T::NAME);
    let v = value(&lib, &new, &[]);
    assert_eq!(value(&lib, &length, &[v]), Value::I64(0));
    let items = sample::<T>(41, 70);
    for (k, x) in items.iter().enumerate() {
        unit(&lib, &push, &[v, x.value()]);
        assert_eq!(value(&lib, &length, &[v]), Value::I64(k as i64 + 1));
    }
    for (k, x) in items.iter().enumerate() {
        assert_eq!(
            T::from_value(value(&lib, &get, &[v, Value::I64(k as i64)])).bits(),
            x.bits()
        );
    }
    assert_eq!(
        trap(run(&lib, &get, &[v, Value::I64(70)])),
        TrapKind::Explicit(2)
    );
    assert_eq!(
        trap(run(&lib, &get, &[v, Value::I64(-1)])),
        TrapKind::Explicit(2)
    );
    unit(&lib, &free, &[v]);
}

#[test]
fn vec_for_every_numeric_type() {
    for_each_num!(vec_grows);
}

#[test]
fn vec_of_pointers_and_bools() {
    let lib = common::collections();
    let v = value(&lib, "Vec$bool$new", &[]);
    for k in 0..9 {
        unit(&lib, "Vec$bool$push", &[v, Value::Bool(k % 3 == 0)]);
    }
    assert_eq!(
        value(&lib, "Vec$bool$get", &[v, Value::I64(3)]),
        Value::Bool(true)
    );
    assert_eq!(
        value(&lib, "Vec$bool$get", &[v, Value::I64(4)]),
        Value::Bool(false)
    );
    unit(&lib, "Vec$bool$free", &[v]);
    let mut target = 5u32;
    let p = Value::Ptr(&mut target as *mut u32 as usize as u64);
    let v = value(&lib, "Vec$ptr$u32$new", &[]);
    unit(&lib, "Vec$ptr$u32$push", &[v, p]);
    assert_eq!(value(&lib, "Vec$ptr$u32$get", &[v, Value::I64(0)]), p);
    unit(&lib, "Vec$ptr$u32$free", &[v]);
}

/// Same layout as the IR's `Pair<i32, f64>`.
type IntFloat = CPair<i32, f64>;

#[test]
fn vec_of_structs_copies_through_push_from() {
    let lib = common::collections();
    let v = value(&lib, "Vec$Pair_2$i32$f64$new", &[]);
    let items: Vec<IntFloat> = (0..13)
        .map(|k| IntFloat {
            first: i32::MIN + k,
            second: f64::from(k) / 3.0,
        })
        .collect();
    for it in &items {
        let p = Value::Ptr(it as *const IntFloat as usize as u64);
        unit(&lib, "Vec$Pair_2$i32$f64$push_from", &[v, p]);
    }
    assert_eq!(value(&lib, "Vec$Pair_2$i32$f64$len", &[v]), Value::I64(13));
    for (k, it) in items.iter().enumerate() {
        let Value::Ptr(slot) = value(&lib, "Vec$Pair_2$i32$f64$at", &[v, Value::I64(k as i64)])
        else {
            panic!()
        };
        // The slot's fields, read through the Pair methods.
        assert_eq!(
            value(&lib, "Pair$i32$f64$first", &[Value::Ptr(slot)]),
            Value::I32(it.first)
        );
        assert_eq!(
            value(&lib, "Pair$i32$f64$second", &[Value::Ptr(slot)]),
            Value::F64(it.second)
        );
    }
    // A struct cannot travel in a register, so push by value does not instantiate.
    let err = jit::instantiate::instantiate_symbol(&lib, "Vec$Pair_2$i32$f64$push")
        .expect_err("struct by value");
    assert!(
        matches!(err.kind, jit::ErrorKind::NotRegisterType(_)),
        "{err}"
    );
    unit(&lib, "Vec$Pair_2$i32$f64$free", &[v]);
}

/// A Rust `repr(C)` twin of the IR's `Pair<A, B>`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct CPair<A, B> {
    first: A,
    second: B,
}

/// Writes a pair through `Pair::init` and reads it back both ways.
fn pair_round_trip<A: Elem, B: Elem>(a: A, b: B) {
    let lib = common::collections();
    let mut p = CPair {
        first: A::small(0),
        second: B::small(0),
    };
    let at = Value::Ptr(&mut p as *mut CPair<A, B> as usize as u64);
    let prefix = format!("Pair${}${}", A::NAME, B::NAME);
    unit(&lib, &format!("{prefix}$init"), &[at, a.value(), b.value()]);
    assert_eq!(
        (p.first.bits(), p.second.bits()),
        (a.bits(), b.bits()),
        "{prefix}"
    );
    let first = A::from_value(value(&lib, &format!("{prefix}$first"), &[at]));
    let second = B::from_value(value(&lib, &format!("{prefix}$second"), &[at]));
    assert_eq!(
        (first.bits(), second.bits()),
        (a.bits(), b.bits()),
        "{prefix}"
    );
}

#[test]
fn pair_fields_follow_c_layout() {
    pair_round_trip(-7i32, 2.5f64);
    pair_round_trip(u8::MAX, u64::MAX);
    pair_round_trip(f32::NAN, i16::MIN);
    pair_round_trip(i64::MIN, i8::MIN);
    pair_round_trip(1.0f64, f32::NEG_INFINITY);
}

#[test]
fn nested_pair_field_addresses_match_rust() {
    #[repr(C)]
    struct Outer {
        first: SmallBig,
        second: f32,
    }
    let lib = common::collections();
    let mut o = Outer {
        first: SmallBig {
            first: 1,
            second: 2,
        },
        second: 3.0,
    };
    let base = &mut o as *mut Outer as usize as u64;
    let first = value(
        &lib,
        "Pair$Pair_2$i8$i64$f32$first_ptr",
        &[Value::Ptr(base)],
    );
    let second = value(
        &lib,
        "Pair$Pair_2$i8$i64$f32$second_ptr",
        &[Value::Ptr(base)],
    );
    assert_eq!(
        first,
        Value::Ptr(base + std::mem::offset_of!(Outer, first) as u64)
    );
    assert_eq!(
        second,
        Value::Ptr(base + std::mem::offset_of!(Outer, second) as u64)
    );
    assert_eq!(value(&lib, "Pair$i8$i64$second", &[first]), Value::I64(2));
    assert_eq!(
        value(&lib, "Pair$Pair_2$i8$i64$f32$second", &[Value::Ptr(base)]),
        Value::F32(3.0)
    );
}

#[test]
fn option_some_none_and_unwrap_or() {
    #[repr(C)]
    struct OptF64 {
        present: bool,
        value: f64,
    }
    let lib = common::collections();
    let mut o = OptF64 {
        present: true,
        value: 0.0,
    };
    let at = Value::Ptr(&mut o as *mut OptF64 as usize as u64);
    unit(&lib, "Option$f64$none", &[at]);
    assert!(!o.present);
    assert_eq!(value(&lib, "Option$f64$is_some", &[at]), Value::Bool(false));
    assert_eq!(
        value(&lib, "Option$f64$unwrap_or", &[at, Value::F64(-1.0)]),
        Value::F64(-1.0)
    );
    unit(&lib, "Option$f64$some", &[at, Value::F64(f64::MAX)]);
    assert!(o.present);
    assert_eq!(o.value, f64::MAX);
    assert_eq!(
        value(&lib, "Option$f64$unwrap_or", &[at, Value::F64(-1.0)]),
        Value::F64(f64::MAX)
    );
}

fn checked_max_reports_empty<T: Elem>() {
    // Option<T> is { bool, T } with T at its own alignment: read it raw.
    let lib = common::collections();
    let mut out = [0u8; 16];
    let at = ptr(&mut out);
    let mut xs = sample::<T>(9, 12);
    unit(
        &lib,
        &symbol::<T>("checked_max"),
        &[ptr(&mut xs), len(0), at],
    );
    assert_eq!(
        value(&lib, &format!("Option${}$is_some", T::NAME), &[at]),
        Value::Bool(false)
    );
    unit(
        &lib,
        &symbol::<T>("checked_max"),
        &[ptr(&mut xs), len(12), at],
    );
    assert_eq!(
        value(&lib, &format!("Option${}$is_some", T::NAME), &[at]),
        Value::Bool(true)
    );
    let want = T::from_value(value(&lib, &symbol::<T>("max"), &[ptr(&mut xs), len(12)]));
    let got = T::from_value(value(
        &lib,
        &format!("Option${}$unwrap_or", T::NAME),
        &[at, T::small(0).value()],
    ));
    assert_eq!(got.bits(), want.bits());
}

#[test]
fn checked_max_for_every_numeric_type() {
    for_each_num!(checked_max_reports_empty);
}

#[test]
fn option_of_a_struct_is_laid_out_like_c() {
    let lib = common::collections();
    let layout = jit::layout::layout_of(
        &lib,
        &jit::text::parse_type("Option<Pair<i8, i64>>").expect("type"),
    )
    .expect("layout");
    #[repr(C)]
    struct OptPair {
        present: bool,
        value: SmallBig,
    }
    assert_eq!(layout.size, std::mem::size_of::<OptPair>() as u64);
    assert_eq!(layout.align, std::mem::align_of::<OptPair>() as u64);
}
