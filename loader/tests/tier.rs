//! Tiered execution (BRIEF §11) with the real fixtures: instantiations run
//! in the interpreter behind a real function pointer, move to compiled
//! code when hot (after a number of calls, or in the middle of a long loop)
//! and give the same results in every tier and every mix of tiers.

// These tests call the code the loader placed and read memory it mapped.
#![allow(unsafe_code)]

mod common;

use common::{call, call_at, fixture, len, ptr};
use jit::TrapKind;
use jit::interp::Value;
use jit::ir::{IntType, Signature, TemplateName, Type};
use jit::mangle::mangle;
use loader::{Loader, LoaderConfig, Tier, TierConfig, TierPolicy};

fn tiered(policy: TierPolicy, calls: u32, back_edges: u32) -> Loader {
    let config = LoaderConfig {
        tier: TierConfig {
            policy,
            calls,
            back_edges,
            background: false,
        },
        ..LoaderConfig::default()
    };
    let loader = Loader::with_jit(config).unwrap();
    loader.load(fixture("collections")).unwrap();
    loader
}

#[test]
fn an_interpreted_instantiation_is_a_real_function_pointer() {
    let loader = tiered(TierPolicy::Interpreted, 1, 1);
    let xs = [1.5f64, 2.25, 3.0];
    for k in 1..=3u64 {
        let got = call(
            &loader,
            "sum$f64",
            "fn(ptr<f64>, i64) -> f64",
            &[ptr(&xs), len(3)],
        );
        assert_eq!(got, Ok(Some(Value::F64(6.75))));
        let stats = loader.tier_stats("sum$f64").unwrap();
        assert_eq!(stats.tier, Tier::Interpreted);
        assert_eq!((stats.calls, stats.interpreted_calls), (k, k));
        assert_eq!(stats.tier_ups, 0);
        assert_eq!(stats.back_edges, 3 * k);
    }
}

#[test]
fn auto_compiles_after_the_threshold_and_the_pointer_follows() {
    let loader = tiered(TierPolicy::Auto, 2, u32::MAX);
    let entry = loader.resolve("max$i32").unwrap().as_ptr();
    let xs = [3i32, -9, 41, 7];
    let mut tiers = Vec::new();
    for _ in 0..5 {
        let before = loader.tier_stats("max$i32").unwrap().interpreted_calls;
        let got = call_at(entry, "fn(ptr<i32>, i64) -> i32", &[ptr(&xs), len(4)]);
        assert_eq!(got, Ok(Some(Value::I32(41))));
        let after = loader.tier_stats("max$i32").unwrap();
        tiers.push(if after.interpreted_calls > before {
            "interpreted"
        } else {
            "compiled"
        });
    }
    assert_eq!(
        tiers,
        [
            "interpreted",
            "interpreted",
            "compiled",
            "compiled",
            "compiled"
        ]
    );
    let stats = loader.tier_stats("max$i32").unwrap();
    assert_eq!(stats.tier, Tier::Compiled);
    assert_eq!((stats.calls, stats.tier_ups), (3, 1));
    assert_eq!(loader.resolve("max$i32").unwrap().as_ptr(), entry);
}

#[test]
fn a_long_interpreted_loop_finishes_in_compiled_code() {
    let loader = tiered(TierPolicy::Auto, 1000, 1000);
    let xs: Vec<i64> = (0..1_000_000).collect();
    let got = call(
        &loader,
        "sum$i64",
        "fn(ptr<i64>, i64) -> i64",
        &[ptr(&xs), len(xs.len())],
    );
    assert_eq!(got, Ok(Some(Value::I64(xs.iter().sum()))));
    let stats = loader.tier_stats("sum$i64").unwrap();
    assert_eq!(stats.interpreted_calls, 1);
    assert_eq!(stats.osr_entries, 1);
    assert_eq!(stats.back_edges, 1000);
    assert_eq!(
        stats.tier,
        Tier::Interpreted,
        "the call, not the function, moved"
    );
}

/// The configurations results are compared across: compiled (the
/// reference), interpreted, and auto at thresholds 1 and 2 for calls and
/// back-edges, so calls and loops cross tiers in the middle of a program.
const TIERS: [(&str, TierPolicy, u32); 4] = [
    ("compiled", TierPolicy::Compiled, 1),
    ("interpreted", TierPolicy::Interpreted, 1),
    ("auto 1", TierPolicy::Auto, 1),
    ("auto 2", TierPolicy::Auto, 2),
];

/// What one call did: its result (a pointer into an argument buffer as the
/// buffer and offset) or trap, and the argument buffers afterwards.
#[derive(Debug, PartialEq)]
struct Outcome {
    result: Result<Option<Seen>, TrapKind>,
    buffers: Vec<Vec<u8>>,
}

#[derive(Debug, PartialEq)]
enum Seen {
    Bits(u64),
    Into { buffer: usize, offset: u64 },
    Elsewhere,
}

fn outcome(result: Result<Option<Value>, TrapKind>, buffers: Vec<Vec<u8>>) -> Outcome {
    let seen = |value: Value| match value {
        Value::Ptr(0) => Seen::Bits(0),
        Value::Ptr(address) => buffers
            .iter()
            .enumerate()
            .find_map(|(buffer, b)| {
                let start = b.as_ptr() as u64;
                (start..=start + b.len() as u64)
                    .contains(&address)
                    .then_some(Seen::Into {
                        buffer,
                        offset: address - start,
                    })
            })
            .unwrap_or(Seen::Elsewhere),
        other => Seen::Bits(other.to_bits()),
    };
    Outcome {
        result: result.map(|value| value.map(seen)),
        buffers,
    }
}

fn width(ty: &Type) -> usize {
    match ty {
        Type::Int(t) => t.bits() as usize / 8,
        Type::F32 => 4,
        Type::Bool => 1,
        _ => 8,
    }
}

/// A small number of type `ty`, as its canonical bits.
fn small(ty: &Type, k: u64) -> u64 {
    let v = (k * 7 % 23) as i64 - 11;
    match ty {
        Type::F32 => u64::from((v as f32).to_bits()),
        Type::F64 => (v as f64).to_bits(),
        Type::Bool => (v & 1) as u64,
        Type::Int(_) => Value::from_bits(ty, v as u64).to_bits(),
        _ => 0,
    }
}

/// Calls `symbol` (of signature `sig`) in `loader` on inputs made from
/// `round`: element buffers, zeroed structs, lengths and small numbers,
/// `compare_asc` of the element type for function pointers.
fn run_library_call(loader: &Loader, symbol: &str, sig: &Signature, round: u64) -> Outcome {
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    let mut args = Vec::new();
    for (k, ty) in sig.params.iter().enumerate() {
        let k = k as u64;
        args.push(match ty {
            Type::Ptr(inner) if matches!(**inner, Type::Struct(_)) => {
                buffers.push(vec![0; 64]);
                Value::Ptr(0)
            }
            Type::Ptr(inner) => {
                let w = width(inner);
                let bytes = (0..ELEMS as u64)
                    .flat_map(|e| small(inner, e + round * 5 + k).to_le_bytes()[..w].to_vec())
                    .collect();
                buffers.push(bytes);
                Value::Ptr(0)
            }
            Type::Int(IntType::I64) => Value::I64([ELEMS as i64, 3, 0][round as usize % 3]),
            Type::Fn(f) => {
                let name = TemplateName::free("compare_asc");
                let compare = mangle(&name, &f.params[..1]).unwrap();
                Value::Ptr(loader.resolve(&compare).unwrap().get() as u64)
            }
            other => Value::from_bits(other, small(other, 100 + k + round)),
        });
    }
    // Pointer arguments point at their buffers, now that none moves.
    let mut next = buffers.iter_mut();
    for (arg, ty) in args.iter_mut().zip(&sig.params) {
        if matches!(ty, Type::Ptr(_)) {
            *arg = Value::Ptr(next.next().unwrap().as_mut_ptr() as u64);
        }
    }
    let entry = loader.resolve(symbol).unwrap().as_ptr();
    let trap = loader::trap_runtime().unwrap();
    // SAFETY: `entry` has signature `sig`; every pointer argument is a
    // live buffer of ELEMS elements (or a zeroed struct) and lengths stay
    // within ELEMS.
    let result = unsafe { trap.call(entry, sig, &args) };
    outcome(result, buffers)
}

const ELEMS: usize = 17;

/// Type arguments a template is run with: every scalar its constraint
/// admits for one parameter, a few pairs for two.
fn type_args(f: &jit::ir::Function) -> Vec<Vec<Type>> {
    let mut scalars = Type::scalars();
    scalars.retain(|t| *t != Type::RawPtr);
    match f.type_params.as_slice() {
        [p] => scalars
            .into_iter()
            .filter(|t| p.constraint.admits(t))
            .map(|t| vec![t])
            .collect(),
        [_, _] => vec![
            vec![Type::Int(IntType::I8), Type::F64],
            vec![Type::F32, Type::Int(IntType::U16)],
            vec![Type::Bool, Type::Int(IntType::I64)],
        ],
        _ => vec![vec![]],
    }
}

#[test]
fn every_library_function_gives_the_same_results_in_every_tier() {
    let lib = jit::library::collections().unwrap();
    let loaders: Vec<(&str, Loader)> = TIERS
        .iter()
        .map(|&(name, policy, n)| (name, tiered(policy, n, n)))
        .collect();
    let mut calls = 0;
    for template in lib.functions() {
        // Vectors own heap memory: `vectors_grow_alike_in_every_tier`.
        if template.name.owner.as_deref() == Some("Vec") {
            continue;
        }
        for args in type_args(template) {
            let Ok(instance) = jit::instantiate::instantiate(&lib, &template.name, &args) else {
                continue;
            };
            let (symbol, sig) = (&instance.symbol, &instance.function.sig);
            // The comparator passed for function pointers exists for numbers.
            let has_fn = sig.params.iter().any(|p| matches!(p, Type::Fn(_)));
            if has_fn && !args.iter().all(|a| jit::ir::Constraint::Num.admits(a)) {
                continue;
            }
            for round in 0..3 {
                let reference = run_library_call(&loaders[0].1, symbol, sig, round);
                for (name, loader) in &loaders[1..] {
                    let got = run_library_call(loader, symbol, sig, round);
                    assert_eq!(got, reference, "{symbol}, round {round}, tier {name}");
                }
                calls += 1;
            }
        }
    }
    assert!(calls > 300, "only {calls} calls");
    // The auto loaders crossed tiers: calls went both ways, loops moved.
    for (name, loader) in &loaders[2..] {
        let totals = loader.stats().instances.tiers;
        assert!(totals.tier_ups > 50, "{name}: {totals:?}");
        assert!(totals.osr_entries > 50, "{name}: {totals:?}");
        assert!(totals.interpreted_calls > 50, "{name}: {totals:?}");
        assert_eq!(totals.compile_failures, 0, "{name}: {totals:?}");
    }
}

/// Grows a vector of `T` through `push`, reads it back through `len`,
/// `get` and `at`, and frees it, all through resolved pointers.
fn vector_run(loader: &Loader, t: &str) -> Vec<u64> {
    let f = |method: &str| {
        loader
            .resolve(&format!("Vec${t}${method}"))
            .unwrap()
            .as_ptr()
    };
    let ty = jit::text::parse_type(t).unwrap();
    let vec_sig = format!("fn() -> ptr<Vec<{t}>>");
    let v = match call_at(f("new"), &vec_sig, &[]) {
        Ok(Some(v)) => v,
        other => panic!("Vec${t}$new: {other:?}"),
    };
    let mut seen = Vec::new();
    for k in 0..40u64 {
        let x = Value::from_bits(&ty, small(&ty, k));
        let push = format!("fn(ptr<Vec<{t}>>, {t})");
        assert_eq!(call_at(f("push"), &push, &[v, x]), Ok(None));
    }
    let length = call_at(f("len"), &format!("fn(ptr<Vec<{t}>>) -> i64"), &[v]);
    seen.push(length.unwrap().unwrap().to_bits());
    for i in [0i64, 1, 20, 39, 40, -1] {
        let get = format!("fn(ptr<Vec<{t}>>, i64) -> {t}");
        match call_at(f("get"), &get, &[v, Value::I64(i)]) {
            Ok(value) => seen.push(value.unwrap().to_bits()),
            Err(trap) => seen.push(u64::from(trap.to_string().len() as u32) << 32),
        }
    }
    assert_eq!(
        call_at(f("free"), &format!("fn(ptr<Vec<{t}>>)"), &[v]),
        Ok(None)
    );
    seen
}

#[test]
fn vectors_grow_alike_in_every_tier() {
    for t in ["i8", "u16", "i32", "f32", "f64", "bool", "i64"] {
        let results: Vec<Vec<u64>> = TIERS
            .iter()
            .map(|&(_, policy, n)| vector_run(&tiered(policy, n, n), t))
            .collect();
        for (k, got) in results.iter().enumerate().skip(1) {
            assert_eq!(got, &results[0], "Vec<{t}> in tier {}", TIERS[k].0);
        }
    }
}

#[path = "../../jit/tests/common/rng.rs"]
mod rng;
use rng::{Rng, below};
#[path = "../../jit/tests/generator/mod.rs"]
mod generator;

/// Runs every function of a generated program twice in `loader`, in
/// order, on arguments drawn from `seed`.
fn run_program(loader: &Loader, lib: &jit::ir::Library, seed: u64) -> Vec<Outcome> {
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let trap = loader::trap_runtime().unwrap();
    let mut outcomes = Vec::new();
    for f in lib.functions() {
        let symbol = f.name.to_string();
        let entry = loader.resolve(&symbol).unwrap().as_ptr();
        for _ in 0..3 {
            let mut buffer: Vec<u8> = (0..generator::MEM).map(|_| rng.next() as u8).collect();
            let mut args = vec![Value::Ptr(buffer.as_mut_ptr() as u64)];
            args.extend(
                f.sig
                    .params
                    .iter()
                    .skip(1)
                    .map(|t| generator::argument(t, &mut rng)),
            );
            // SAFETY: `entry` has `f`'s signature; its first argument is
            // the buffer of MEM bytes the generated code stays inside.
            let result = unsafe { trap.call(entry, &f.sig, &args) };
            outcomes.push(outcome(result, vec![buffer]));
        }
    }
    outcomes
}

#[test]
fn generated_programs_give_the_same_results_in_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let programs = generator::env("SMFJIT_TIER_PROGRAMS", 150);
    let mut traps = 0;
    for seed in 1..=programs {
        let lib = generator::program(seed, 3);
        let path = common::module_of(
            dir.path(),
            &format!("p{seed}.smf"),
            &jit::text::print_library(&lib),
        );
        let mut reference = None;
        for &(name, policy, n) in &TIERS {
            let loader = Loader::with_jit(LoaderConfig {
                tier: TierConfig {
                    policy,
                    calls: n,
                    back_edges: n,
                    background: false,
                },
                ..LoaderConfig::default()
            })
            .unwrap();
            loader.load(&path).unwrap();
            let got = run_program(&loader, &lib, seed);
            match &reference {
                None => {
                    traps += got.iter().filter(|o| o.result.is_err()).count();
                    reference = Some(got);
                }
                Some(want) => assert_eq!(
                    &got,
                    want,
                    "seed {seed}, tier {name}\n{}",
                    jit::text::print_library(&lib)
                ),
            }
        }
    }
    assert!(traps > 0, "no generated call trapped");
}

#[test]
fn recursion_runs_interpreted_outside_and_compiled_inside() {
    let loader = tiered(TierPolicy::Auto, 1, u32::MAX);
    let mut xs: Vec<i32> = (0..500).map(|k| (k * 7919 + 13) % 1000 - 500).collect();
    let mut expected = xs.clone();
    expected.sort_unstable();
    let got = call(
        &loader,
        "quicksort$i32",
        "fn(ptr<i32>, i64)",
        &[Value::Ptr(xs.as_mut_ptr() as u64), len(xs.len())],
    );
    assert_eq!(got, Ok(None));
    assert_eq!(xs, expected);
    let stats = loader.tier_stats("quicksort$i32").unwrap();
    assert_eq!(stats.interpreted_calls, 1, "{stats:?}");
    assert_eq!(
        (stats.tier, stats.tier_ups),
        (Tier::Compiled, 1),
        "{stats:?}"
    );
}

#[test]
fn eight_threads_crossing_the_threshold_compile_once() {
    let loader = tiered(TierPolicy::Auto, 40, u32::MAX);
    let entry = loader.resolve("sum$i64").unwrap().get();
    let xs: Vec<i64> = (1..=100).collect();
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                start.wait();
                for _ in 0..25 {
                    let got = call_at(
                        entry as *const u8,
                        "fn(ptr<i64>, i64) -> i64",
                        &[ptr(&xs), len(xs.len())],
                    );
                    assert_eq!(got, Ok(Some(Value::I64(5050))));
                }
            });
        }
    });
    let stats = loader.tier_stats("sum$i64").unwrap();
    assert_eq!(
        (stats.tier, stats.tier_ups),
        (Tier::Compiled, 1),
        "{stats:?}"
    );
    assert_eq!(stats.compile_failures, 0);
    assert!(stats.interpreted_calls >= 40, "{stats:?}");
    assert_eq!(loader.stats().instances.tiers.tier_ups, 1);
}

#[test]
fn a_compile_that_fails_leaves_the_instantiation_interpreted() {
    let dir = tempfile::tempdir().unwrap();
    let ext = common::Spec::new()
        .function("ext", common::returns(7))
        .write(dir.path(), "ext.smf");
    let templates = common::module_of(
        dir.path(),
        "maybe.smf",
        "\
extern fn @ext() -> i32
fn maybe<T: int>(%x: T) -> i32 {
entry:
    %zero = const T 0
    %positive = cmp gt T %x, %zero
    cond_br %positive, yes, no
yes:
    %r = call @ext()
    ret %r
no:
    %m = const i32 -1
    ret %m
}
",
    );
    let loader = Loader::with_jit(LoaderConfig {
        tier: TierConfig {
            policy: TierPolicy::Auto,
            calls: 1,
            back_edges: 1,
            background: false,
        },
        ..LoaderConfig::default()
    })
    .unwrap();
    let provider = loader.load(&ext).unwrap();
    loader.load(&templates).unwrap();
    let entry = loader.resolve("maybe$i32").unwrap().as_ptr();
    assert_eq!(
        call_at(entry, "fn(i32) -> i32", &[Value::I32(5)]),
        Ok(Some(Value::I32(7)))
    );
    // `ext` is gone: compiling `maybe$i32` cannot bind its call any more.
    loader.unload(provider.id()).unwrap();
    for _ in 0..3 {
        let got = call_at(entry, "fn(i32) -> i32", &[Value::I32(-5)]);
        assert_eq!(got, Ok(Some(Value::I32(-1))));
    }
    let stats = loader.tier_stats("maybe$i32").unwrap();
    assert_eq!(stats.tier, Tier::Interpreted, "{stats:?}");
    assert_eq!(
        (stats.tier_ups, stats.compile_failures),
        (0, 1),
        "{stats:?}"
    );
    assert!(stats.last_failure.unwrap().contains("ext"));
    assert_eq!(stats.interpreted_calls, 4);
}

#[test]
fn a_trap_in_an_interpreted_call_is_the_trap_compiled_code_raises() {
    for &(name, policy, n) in &TIERS {
        let loader = tiered(policy, n, n);
        let empty: [i32; 0] = [];
        // `max` of nothing traps explicitly, in every tier alike.
        let got = call(
            &loader,
            "max$i32",
            "fn(ptr<i32>, i64) -> i32",
            &[ptr(&empty), len(0)],
        );
        let compiled = call(
            &tiered(TierPolicy::Compiled, 1, 1),
            "max$i32",
            "fn(ptr<i32>, i64) -> i32",
            &[ptr(&empty), len(0)],
        );
        assert!(compiled.is_err(), "{compiled:?}");
        assert_eq!(got, compiled, "tier {name}");
    }
}

#[test]
fn a_background_compile_lets_the_interpreter_serve_meanwhile() {
    let loader = Loader::with_jit(LoaderConfig {
        tier: TierConfig {
            policy: TierPolicy::Auto,
            calls: 1,
            back_edges: u32::MAX,
            background: true,
        },
        ..LoaderConfig::default()
    })
    .unwrap();
    loader.load(fixture("collections")).unwrap();
    let entry = loader.resolve("dot$f32").unwrap().as_ptr();
    let (a, b) = ([1.0f32, 2.0, 3.0], [4.0f32, 5.0, 6.0]);
    let sig = "fn(ptr<f32>, ptr<f32>, i64) -> f32";
    // Every call is right whichever tier runs it; the compile finishes on
    // its own thread (bounded wait: a liveness check, not a timing one).
    for _ in 0..100_000 {
        let got = call_at(entry, sig, &[ptr(&a), ptr(&b), len(3)]);
        assert_eq!(got, Ok(Some(Value::F32(32.0))));
        if loader.tier_stats("dot$f32").unwrap().tier == Tier::Compiled {
            break;
        }
        std::thread::yield_now();
    }
    let stats = loader.tier_stats("dot$f32").unwrap();
    assert_eq!(
        (stats.tier, stats.tier_ups),
        (Tier::Compiled, 1),
        "{stats:?}"
    );
    assert_eq!(
        call_at(entry, sig, &[ptr(&a), ptr(&b), len(3)]),
        Ok(Some(Value::F32(32.0)))
    );
}

#[test]
fn the_environment_sets_the_tier_and_bad_values_are_errors() {
    // Parsed from explicit values: the process environment is shared by
    // the tests running in parallel.
    assert_eq!("auto".parse::<TierPolicy>(), Ok(TierPolicy::Auto));
    assert_eq!(
        "interpreted".parse::<TierPolicy>(),
        Ok(TierPolicy::Interpreted)
    );
    assert_eq!("compiled".parse::<TierPolicy>(), Ok(TierPolicy::Compiled));
    let error = "fast".parse::<TierPolicy>().unwrap_err();
    assert!(error.contains("fast") && error.contains("auto"), "{error}");
    let default = LoaderConfig::default().tier;
    assert_eq!(default.policy, TierPolicy::Compiled);
    assert!(default.calls >= 1 && default.back_edges >= 1);
}

#[test]
fn a_template_refusing_its_type_argument_fails_with_the_reason_in_every_tier() {
    for &(name, policy, n) in &TIERS {
        let loader = tiered(policy, n, n);
        // sum<T: num> does not take bool: the miss checks the template and
        // the arguments before any instance is built.
        let error = loader.resolve("sum$bool").unwrap_err();
        let loader::Error::InstantiationFailed {
            source: loader::InstantiationError::Instantiate(refusal),
            ..
        } = &error
        else {
            panic!("tier {name}: expected a refused instantiation, got {error:?}");
        };
        assert!(
            matches!(refusal.kind, jit::ErrorKind::Constraint { .. }),
            "tier {name}: {error}"
        );
        assert!(
            error.to_string().contains("sum$bool"),
            "tier {name}: {error}"
        );
        // Nothing was made for it.
        assert!(loader.tier_stats("sum$bool").is_none());
    }
}

#[test]
fn a_tiered_instance_is_built_at_its_first_call() {
    let loader = tiered(TierPolicy::Interpreted, 1, 1);
    let entry = loader.resolve("min$u16").unwrap().as_ptr();
    let before = loader.stats().instances;
    assert_eq!((before.tiers.tiered, before.tiers.calls), (1, 0));
    let xs = [9u16, 3, 7];
    let got = call_at(entry, "fn(ptr<u16>, i64) -> u16", &[ptr(&xs), len(3)]);
    assert_eq!(got, Ok(Some(Value::U16(3))));
    assert_eq!(loader.tier_stats("min$u16").unwrap().interpreted_calls, 1);
}

#[test]
fn address_info_names_a_tiered_stub_and_the_code_it_was_compiled_to() {
    let loader = tiered(TierPolicy::Auto, 1, u32::MAX);
    let entry = loader.resolve("max$i32").unwrap().as_ptr() as usize;
    let xs = [3i32, -9, 41, 7];
    let stub = loader.address_info(entry).unwrap();
    assert_eq!(stub.owner, loader::AddressOwner::Instance);
    assert_eq!(stub.symbol.as_deref(), Some("max$i32"));
    assert_eq!(stub.symbol_address, Some(entry));
    assert!(
        loader
            .tier_stats("max$i32")
            .unwrap()
            .compiled_entry
            .is_none()
    );
    for _ in 0..2 {
        let got = call_at(
            entry as *const u8,
            "fn(ptr<i32>, i64) -> i32",
            &[ptr(&xs), len(4)],
        );
        assert_eq!(got, Ok(Some(Value::I32(41))));
    }
    let compiled = loader
        .tier_stats("max$i32")
        .unwrap()
        .compiled_entry
        .unwrap();
    assert_ne!(compiled, entry);
    for address in [compiled, compiled + 3] {
        let info = loader.address_info(address).unwrap();
        assert_eq!(info.owner, loader::AddressOwner::TierCode);
        assert_eq!(info.symbol.as_deref(), Some("max$i32"));
        assert_eq!(info.symbol_address, Some(compiled));
        assert_eq!(
            info.module.unwrap().path(),
            fixture("collections").as_path()
        );
    }
}
