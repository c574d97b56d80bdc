//! Tiered execution (BRIEF §11) with the real fixtures: instantiations run
//! in the interpreter behind a real function pointer, move to compiled
//! code when hot (after a number of calls, or in the middle of a long loop)
//! and give the same results in every tier and every mix of tiers.

// These tests call the code the loader placed and read memory it mapped.
#![allow(unsafe_code)]

mod common;

use common::{fixture, len, ptr, signature};
use jit::TrapKind;
use jit::interp::Value;
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

/// Calls the function at `entry` through the process-wide trap runtime.
fn call_at(entry: *const u8, sig: &str, args: &[Value]) -> Result<Option<Value>, TrapKind> {
    let trap = loader::trap_runtime().unwrap();
    // SAFETY: `entry` is a resolved function of signature `sig`; pointer
    // arguments are live buffers the function reads within the length.
    unsafe { trap.call(entry, &signature(sig), args) }
}

fn call(
    loader: &Loader,
    symbol: &str,
    sig: &str,
    args: &[Value],
) -> Result<Option<Value>, TrapKind> {
    let entry = loader.resolve(symbol).unwrap().as_ptr();
    call_at(entry, sig, args)
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
