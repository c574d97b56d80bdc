//! Every operation on every scalar type, on edge values, interpreted and as
//! WebAssembly: narrow-integer wrapping, masked shifts, division by zero
//! and `MIN / -1`, signed and unsigned comparisons, saturating float to
//! integer casts, NaN and infinities. Integer results are widened to `i64`
//! before they are returned, so a value whose `i32` form lost the
//! canonical sign- or zero-extension shows.

mod support;

use std::fmt::Write;

use jit::interp::{LibraryResolver, Value};
use jit::ir::{IntType, TemplateName, Type};
use jit::wasm::run::Runner;
use support::{compiled, for_wasm32, interpret};

fn ints() -> Vec<Type> {
    IntType::ALL.iter().map(|&t| Type::Int(t)).collect()
}

fn numeric() -> Vec<Type> {
    let mut t = ints();
    t.extend([Type::F32, Type::F64]);
    t
}

/// Edge values of `ty` as canonical slots.
fn edges(ty: &Type) -> Vec<Value> {
    match ty {
        Type::Int(t) => {
            let mut v: Vec<i128> = vec![
                t.min_value(),
                t.max_value(),
                t.min_value() + 1,
                t.max_value() - 1,
                0,
                1,
                2,
                7,
                8,
                9,
                31,
                33,
                63,
                65,
            ];
            if t.signed() {
                v.extend([-1, -2, -8, -100]);
            }
            v.into_iter()
                .map(|x| Value::from_bits(ty, x as u64))
                .collect()
        }
        Type::F32 | Type::F64 => [
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            0.5,
            -1.5,
            255.99,
            -129.9,
            65535.7,
            -32769.2,
            4_294_967_296.5,
            -3e9,
            9.3e18,
            1.9e19,
            -9.3e18,
            1e300,
            f64::from(f32::MAX),
            f64::MIN_POSITIVE,
        ]
        .into_iter()
        .map(|f| {
            if *ty == Type::F32 {
                Value::F32(f as f32)
            } else {
                Value::F64(f)
            }
        })
        .collect(),
        Type::Bool => vec![Value::Bool(false), Value::Bool(true)],
        _ => Vec::new(),
    }
}

/// The text returning `%r` of type `ty`: integers widened to `i64`.
fn ret(ty: &Type) -> (String, Type) {
    match ty {
        Type::Int(_) | Type::Bool => (format!(" %w = cast {ty} %r to i64\n ret %w\n"), Type::I64),
        _ => (" ret %r\n".to_owned(), ty.clone()),
    }
}

/// A function of the probe library: its name, parameter types and the
/// arguments it is called with.
struct Probe {
    name: String,
    params: Vec<Type>,
}

fn library() -> (String, Vec<Probe>) {
    let mut text = String::new();
    let mut probes = Vec::new();
    let mut add = |text: &mut String, name: String, params: Vec<Type>, body: String, out: &Type| {
        let list: Vec<String> = params
            .iter()
            .enumerate()
            .map(|(k, t)| format!("%p{k}: {t}"))
            .collect();
        let _ = write!(
            text,
            "fn {name}({}) -> {out} {{\nb0:\n{body}}}\n",
            list.join(", ")
        );
        probes.push(Probe { name, params });
    };
    let scalars: Vec<Type> = numeric().into_iter().chain([Type::Bool]).collect();
    for ty in &scalars {
        let binary: &[&str] = match ty {
            Type::Int(_) => &[
                "add", "sub", "mul", "div", "rem", "and", "or", "xor", "shl", "shr",
            ],
            Type::Bool => &["and", "or", "xor"],
            _ => &["add", "sub", "mul", "div"],
        };
        let (tail, out) = ret(ty);
        for op in binary {
            let body = format!(" %r = {op} {ty} %p0, %p1\n{tail}");
            add(
                &mut text,
                format!("{op}_{ty}"),
                vec![ty.clone(); 2],
                body,
                &out,
            );
        }
        let unary: &[&str] = match ty {
            Type::Int(_) => &["neg", "not"],
            Type::Bool => &["not"],
            _ => &["neg"],
        };
        for op in unary {
            let body = format!(" %r = {op} {ty} %p0\n{tail}");
            add(
                &mut text,
                format!("{op}_{ty}"),
                vec![ty.clone()],
                body,
                &out,
            );
        }
        let cmps: &[&str] = match ty {
            Type::Bool => &["eq", "ne"],
            _ => &["eq", "ne", "lt", "le", "gt", "ge"],
        };
        for op in cmps {
            let body = format!(" %r = cmp {op} {ty} %p0, %p1\n ret %r\n");
            add(
                &mut text,
                format!("cmp_{op}_{ty}"),
                vec![ty.clone(); 2],
                body,
                &Type::Bool,
            );
        }
        let body = format!(" %r = select {ty} %p0, %p1, %p2\n{tail}");
        let params = vec![Type::Bool, ty.clone(), ty.clone()];
        add(&mut text, format!("select_{ty}"), params, body, &out);
        for to in numeric() {
            if *ty == Type::Bool && !matches!(to, Type::Int(_)) {
                continue;
            }
            let (tail, out) = ret(&to);
            let body = format!(" %r = cast {ty} %p0 to {to}\n{tail}");
            add(
                &mut text,
                format!("cast_{ty}_{to}"),
                vec![ty.clone()],
                body,
                &out,
            );
        }
    }
    let same_size = [
        ("f32", "i32"),
        ("f32", "u32"),
        ("f64", "i64"),
        ("f64", "u64"),
        ("i8", "u8"),
        ("i16", "u16"),
        ("i32", "u32"),
    ];
    for (a, b) in same_size {
        for (from, to) in [(a, b), (b, a)] {
            let to_ty = jit::text::parse_type(to).expect("a type");
            let (tail, out) = ret(&to_ty);
            let body = format!(" %r = bitcast {from} %p0 to {to}\n{tail}");
            let from_ty = jit::text::parse_type(from).expect("a type");
            add(
                &mut text,
                format!("bitcast_{from}_{to}"),
                vec![from_ty],
                body,
                &out,
            );
        }
    }
    (text, probes)
}

/// Every combination of edge values for `params` (for three parameters,
/// the first takes each value with the others fixed pairs).
fn arguments(params: &[Type]) -> Vec<Vec<Value>> {
    match params {
        [a] => edges(a).into_iter().map(|v| vec![v]).collect(),
        [a, b] => edges(a)
            .into_iter()
            .flat_map(|x| edges(b).into_iter().map(move |y| vec![x, y]))
            .collect(),
        [c, a, b] => edges(c)
            .into_iter()
            .flat_map(|k| {
                edges(a)
                    .into_iter()
                    .zip(edges(b).into_iter().rev())
                    .map(move |(x, y)| vec![k, x, y])
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_operation_on_edge_values_agrees_with_the_interpreter() {
    let (text, probes) = library();
    let host = jit::text::parse_library(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    jit::verify::verify_library(&host).unwrap_or_else(|e| panic!("{e}"));
    let wasm = for_wasm32(host.clone());
    let roots: Vec<(TemplateName, Vec<Type>)> = probes
        .iter()
        .map(|p| (TemplateName::free(&p.name), Vec::new()))
        .collect();
    let mut run = Runner::new(&support::module(&wasm, &roots)).expect("instantiates");
    let oracle = LibraryResolver::new(&host);
    let mut calls = 0;
    let mut traps = 0;
    for p in &probes {
        for args in arguments(&p.params) {
            let want = interpret(&oracle, &p.name, &args);
            let got = compiled(run.call(&p.name, &args));
            assert_eq!(got, want, "{}({args:?})", p.name);
            traps += usize::from(want.is_err());
            calls += 1;
        }
    }
    assert!(calls > 20_000, "only {calls} calls");
    // Division and remainder by zero of every integer type.
    assert!(traps >= 8 * 2 * 14, "only {traps} traps");
}
