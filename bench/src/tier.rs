//! Tiered execution (BRIEF §11, issue 15): what interpreting first costs
//! and saves, and the measurements behind the default tier-up thresholds.
//!
//! Every loader here is a JIT loader with the collections fixture loaded
//! and a [`TierConfig`] of the policy named in the row; calls go through
//! the pointer `Loader::resolve` returned, as a client calls it (under
//! `interpreted` and `auto` that pointer is the instantiation's stub).
//! Results are compared across tiers before anything is timed. Calls that
//! take a few hundred nanoseconds or less are timed in batches of
//! [`BATCH`] and reported per call.
//!
//! The rows, in order:
//!
//! 1. **Load, 1,000 imports, `Now`, `auto` against `compiled`** (target:
//!    `auto` ≥ 3× faster to load). The headline: a module whose 1,000
//!    imports are all instantiations (`sum_k$f64` of a module offering
//!    1,000 templates), what a program binding generic imports at load
//!    meets. Then, labelled as mixed, the `jit` area's module of 1,000
//!    imports (the instantiable collections names and exports of a
//!    10,000-symbol module; `loader::ThousandImports`) loaded with
//!    `Binding::Now` into a fresh loader per sample, made and given its
//!    other modules untimed. Under `compiled` every instantiated import
//!    is compiled at load; under `auto` it is substituted, verified and
//!    given a stub. The `compiled` side is the `jit` area's `Now` row
//!    measured again by the same code. A labelled row gives the same
//!    module under `Binding::Lazy` (nothing instantiated at load): the
//!    part of the load that no tier policy changes.
//! 2. **The stub's overhead per interpreted call.** A call through the
//!    resolved pointer under `interpreted` (stub, interpreter entry,
//!    arguments read from the caller's registers, an interpreter with
//!    tiering and guarded native calls, the result written back) against
//!    `jit::interp::Interpreter::call` on the same instance (substituted
//!    from the same decoded library) with the same arguments, called from
//!    Rust. For `compare_asc$i64` (seven instructions, no loop) and
//!    `sum$i64` over 16 elements; the ratio column gives the difference
//!    and the ratio.
//! 3. **The interpreter against compiled code on the kernel suite** (target:
//!    within 30×) is the `backend` area's row `kernel suite geomean:
//!    interpreter within 30× of compiled`: one definition, measured once
//!    per run, not repeated here.
//! 4. **From threshold to patched slot.** Under `auto` with the default
//!    call threshold N (back-edges never), a fresh loader per sample is
//!    given N calls untimed; the timed call is the one that crosses the
//!    threshold: it compiles the instantiation, stores the entry in the
//!    slot the stub jumps through, and runs the compiled code. The
//!    baseline is a steady-state call of the same compiled instantiation
//!    through the same stub; the difference is the tier-up's own cost.
//!    Headline `sum$i64` over 16 elements; `compare_asc$i64` and `sum$i64`
//!    over 256 elements follow.
//! 5. **Break-even points behind the default thresholds.** Calls: the
//!    tier-up's cost (row 4's difference) over what one call saves
//!    (interpreted call through the stub minus compiled call through the
//!    stub), for the three functions of row 4: after that many calls,
//!    compiling has paid for itself. Back-edges: one interpreted and one
//!    compiled iteration of `sum$i64`'s loop (the difference of calls over
//!    256 and 16 elements, over 240), and the cost of entering compiled
//!    code mid-loop: a call over 256 elements with the back-edge threshold
//!    at 1 (fresh loader per sample, so the loop entry is compiled in the
//!    call) less an interpreted call over one element and a compiled call
//!    over 256. The loop entry's cost over what one iteration saves is the
//!    back-edge break-even. `loader::limits::DEFAULT_TIER_CALLS` and
//!    `DEFAULT_TIER_BACKEDGES` are chosen from these rows.

#![allow(unsafe_code)]

use std::time::Duration;

use jit::interp::{Interpreter, LibraryResolver, Value};
use loader::{Binding, Loader, LoaderConfig, Tier, TierConfig, TierPolicy};

use crate::harness::{Report, Row, Stats, fmt_duration, measure, measure_with_setup};
use crate::loader::{
    ThousandImports, collections_library, importing_module, jit_loader, template_module,
};

/// Calls per timed batch of short calls.
const BATCH: usize = 100;
/// Timed batches of short calls.
const BATCH_RUNS: usize = 300;
/// Samples of measurements that make a fresh loader each.
const FRESH_RUNS: usize = 200;
/// Samples of loading the module of 1,000 imports (a few ms each, with a
/// 10,000-symbol module loaded untimed before each).
const LOAD_RUNS: usize = 60;

/// The input sizes of the loops (`sum$i64`, `max$i64`): their difference
/// gives the cost of one iteration.
const SHORT: usize = 16;
/// See [`SHORT`].
const LONG: usize = 256;

/// A function of the collections library and the arguments it is called
/// with.
#[derive(Clone, Copy)]
enum Case {
    /// `compare_asc$i64(2, 3)`: no loop, seven instructions.
    Compare,
    /// `sum$i64` or `max$i64` (`fn(ptr<i64>, i64) -> i64`, one loop) over
    /// the first n elements of the input.
    Fold(Fold, usize),
}

/// The loops of [`Case::Fold`].
#[derive(Clone, Copy)]
enum Fold {
    /// Four instructions per iteration: load, add, add, compare.
    Sum,
    /// Six: load, compare, select, add, compare, and the branch's block.
    Max,
}

impl Case {
    fn symbol(self) -> &'static str {
        match self {
            Case::Compare => "compare_asc$i64",
            Case::Fold(Fold::Sum, _) => "sum$i64",
            Case::Fold(Fold::Max, _) => "max$i64",
        }
    }

    fn label(self) -> String {
        match self {
            Case::Compare => "compare_asc$i64 (no loop)".to_owned(),
            Case::Fold(_, n) => format!("{} ×{n}", self.symbol()),
        }
    }

    /// The same function over an input whose loop takes one back-edge.
    fn one_back_edge(self) -> Case {
        match self {
            Case::Compare => Case::Compare,
            Case::Fold(Fold::Sum, _) => Case::Fold(Fold::Sum, 1),
            // `max` starts from the first element.
            Case::Fold(Fold::Max, _) => Case::Fold(Fold::Max, 2),
        }
    }

    /// Calls the code at `entry` (this case's function, compiled or its
    /// stub) with this case's arguments over `xs`.
    fn call(self, entry: usize, xs: &[i64]) -> i64 {
        match self {
            Case::Compare => {
                // SAFETY: `entry` is `compare_asc$i64`: fn(i64, i64) -> i32.
                let f: extern "C" fn(i64, i64) -> i32 = unsafe { std::mem::transmute(entry) };
                i64::from(f(std::hint::black_box(2), 3))
            }
            Case::Fold(_, n) => {
                assert!(n <= xs.len(), "the input holds {n} elements");
                // SAFETY: `entry` is `sum$i64` or `max$i64`:
                // fn(ptr<i64>, i64) -> i64, reading `n` elements of `xs`.
                let f: extern "C" fn(*const i64, i64) -> i64 =
                    unsafe { std::mem::transmute(entry) };
                f(std::hint::black_box(xs.as_ptr()), n as i64)
            }
        }
    }

    /// The same call made by the reference interpreter on `function`.
    fn interpret(self, interp: &Interpreter<'_>, function: &Direct, xs: &[i64]) -> i64 {
        let args = match self {
            Case::Compare => vec![Value::I64(2), Value::I64(3)],
            Case::Fold(_, n) => vec![
                Value::Ptr(xs.as_ptr() as usize as u64),
                Value::I64(n as i64),
            ],
        };
        // SAFETY: the pointer argument points to `xs`, which holds the
        // elements the call reads.
        match unsafe { interp.call(&function.0, &args) } {
            Ok(Some(Value::I64(v))) => v,
            Ok(Some(Value::I32(v))) => i64::from(v),
            other => panic!("{} returned {other:?}", self.symbol()),
        }
    }
}

/// An instance of the collections library, for the interpreter alone.
struct Direct(std::sync::Arc<jit::ir::Function>);

/// A JIT loader with the collections loaded and tier `policy` at the given
/// thresholds, compiling in the call that crosses them.
fn tiered(policy: TierPolicy, calls: u32, back_edges: u32) -> Loader {
    jit_loader(LoaderConfig {
        tier: TierConfig {
            policy,
            calls,
            back_edges,
            background: false,
        },
        ..LoaderConfig::default()
    })
}

fn entry(loader: &Loader, case: Case) -> usize {
    loader.resolve(case.symbol()).expect("resolves").get()
}

fn tier_of(loader: &Loader, case: Case) -> Tier {
    loader
        .tier_stats(case.symbol())
        .expect("a tiered instantiation")
        .tier
}

/// Per-call statistics of calls timed in batches of [`BATCH`].
fn per_call(mut call: impl FnMut() -> i64) -> Stats {
    measure(BATCH_RUNS, || {
        (0..BATCH).fold(0i64, |acc, _| acc.wrapping_add(call()))
    })
    .per_op(BATCH)
}

/// `a − b` in nanoseconds, as a float (negative when noise says so).
fn minus(a: Duration, b: Duration) -> f64 {
    (a.as_secs_f64() - b.as_secs_f64()) * 1e9
}

/// Formats a derived time in nanoseconds (a difference or a quotient,
/// finer than a `Duration` or negative) as [`fmt_duration`] does.
fn fmt_ns(ns: f64) -> String {
    if ns.abs() < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 0.0 {
        format!("−{}", fmt_duration(Duration::from_secs_f64(-ns / 1e9)))
    } else {
        fmt_duration(Duration::from_secs_f64(ns / 1e9))
    }
}

/// The configuration of a loader with tier `policy` and default thresholds.
fn tier_config(policy: TierPolicy) -> LoaderConfig {
    LoaderConfig {
        tier: TierConfig {
            policy,
            ..TierConfig::default()
        },
        ..LoaderConfig::default()
    }
}

/// Row 1, the headline: a module whose 1,000 imports are all generic
/// instantiations (`sum_0$f64` … `sum_999$f64`, from a module offering the
/// 1,000 templates `sum_k`, each the collections' `sum`), loaded with
/// `Binding::Now` into a fresh loader per sample (made, with the template
/// module loaded and the importer's file validated, untimed): under
/// `compiled` the 1,000 instantiations are compiled at load, under `auto`
/// substituted, verified and given stubs.
fn load_with_generic_imports(report: &mut Report) {
    let dir =
        std::env::temp_dir().join(format!("smfjit-bench-tier-generic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let templates = dir.join("templates.smf");
    std::fs::write(&templates, template_module(1000, true)).expect("write module");
    let names: Vec<String> = (0..1000).map(|k| format!("sum_{k}$f64")).collect();
    let importer = dir.join("importer.smf");
    std::fs::write(&importer, importing_module(&names)).expect("write module");
    let setup = |policy| {
        let l = jit_loader(tier_config(policy));
        l.load(&templates).expect("templates load");
        l.cache().get(&importer).expect("importer validates");
        l
    };
    let load = |l: &Loader| {
        l.load_with_binding(&importer, Binding::Now)
            .expect("importer loads")
            .imports()
            .len()
    };
    // `SMFJIT_BENCH_PROFILE=tier-load` repeats the load under `auto` alone,
    // for a profiler (`SMFJIT_BENCH_PROFILE_RUNS` times, default 50);
    // `tier-load-compiled` the same under `compiled`.
    let profiled = match std::env::var(crate::loader::PROFILE_ENV).as_deref() {
        Ok("tier-load") => Some(TierPolicy::Auto),
        Ok("tier-load-compiled") => Some(TierPolicy::Compiled),
        _ => None,
    };
    if let Some(policy) = profiled {
        // The load alone is `profiled_load`, for `--toggle-collect`.
        #[inline(never)]
        fn profiled_load(load: impl Fn(&Loader) -> usize, l: &Loader) -> usize {
            load(l)
        }
        let runs = crate::harness::profile_runs(50);
        for _ in 0..runs {
            let l = setup(policy);
            std::hint::black_box(profiled_load(load, &l));
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::process::exit(0);
    }
    let (compiled, auto) = (setup(TierPolicy::Compiled), setup(TierPolicy::Auto));
    assert_eq!((load(&compiled), load(&auto)), (1000, 1000));
    assert_eq!(compiled.stats().instances.instantiations, 1000);
    assert_eq!(auto.stats().instances.tiers.tiered, 1000);
    assert_eq!(auto.stats().instances.tiers.tier_ups, 0, "nothing compiled");
    let compiled = measure_with_setup(LOAD_RUNS, || setup(TierPolicy::Compiled), load);
    let auto = measure_with_setup(LOAD_RUNS, || setup(TierPolicy::Auto), load);
    let faster = compiled.median_ns() / auto.median_ns();
    report.row(
        Row::new(
            "tier",
            "load, 1,000 imports, every one an instantiation (sum_k$f64), Now, tier auto (fresh loader)",
            fmt_duration(auto.median),
        )
        .baseline(format!("compiled {}", fmt_duration(compiled.median)))
        .ratio(format!("{faster:.1}× faster"))
        .target("auto ≥ 3× faster to load", faster >= 3.0),
    );
    report.row(
        Row::new("tier", "  p99 auto / compiled", fmt_duration(auto.p99))
            .baseline(fmt_duration(compiled.p99)),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Row 1, the mixed case: the `jit` area's module of 1,000 imports, most
/// of them exports, `auto` against `compiled`.
fn load_with_imports(report: &mut Report) {
    let imports = ThousandImports::new("tier");
    let config = tier_config;
    // What each policy does at load: the instantiated imports and their
    // callees compiled, or the same instances given stubs.
    let at_load = |policy| {
        let l = imports.loader(config(policy));
        imports.load(&l, Binding::Now);
        l.stats().instances
    };
    let (compiled, auto) = (at_load(TierPolicy::Compiled), at_load(TierPolicy::Auto));
    assert!(compiled.instantiations >= imports.instantiated as u64);
    assert_eq!(compiled.tiers.tiered, 0);
    // Tiered instances are built when first called: their callees are
    // not instantiated at load.
    assert_eq!(auto.tiers.tiered, imports.instantiated as u64);
    assert_eq!(auto.tiers.tier_ups, 0, "nothing compiled at load");
    let load = |policy| {
        measure_with_setup(
            LOAD_RUNS,
            || imports.loader(config(policy)),
            |l| imports.load(l, Binding::Now),
        )
    };
    let compiled = load(TierPolicy::Compiled);
    let auto = load(TierPolicy::Auto);
    // What binding costs without instantiating anything at load.
    let lazy = measure_with_setup(
        LOAD_RUNS,
        || imports.loader(config(TierPolicy::Compiled)),
        |l| imports.load(l, Binding::Lazy),
    );
    let faster = compiled.median_ns() / auto.median_ns();
    report.row(
        Row::new(
            "tier",
            format!(
                "  mixed: 1,000 imports ({} instantiations, the rest exports), Now, tier auto",
                imports.instantiated
            ),
            fmt_duration(auto.median),
        )
        .baseline(format!("compiled {}", fmt_duration(compiled.median)))
        .ratio(format!("{faster:.1}× faster")),
    );
    report.row(
        Row::new(
            "tier",
            "  for comparison: the same module, Lazy (nothing instantiated at load)",
            fmt_duration(lazy.median),
        )
        .baseline(format!("auto {}", fmt_duration(auto.median)))
        .ratio(format!(
            "{:.0}% of auto",
            100.0 * lazy.median_ns() / auto.median_ns()
        )),
    );
}

/// What rows 2, 4 and 5 measure of one case.
struct Calls {
    /// A call through the stub under `interpreted`.
    interpreted: Stats,
    /// A call through the stub once `auto` switched it to compiled code.
    compiled: Stats,
    /// The call that crosses the call threshold, in a fresh loader.
    threshold: Stats,
}

impl Calls {
    /// The tier-up's own cost: the threshold call less a compiled call.
    fn tier_up_ns(&self) -> f64 {
        minus(self.threshold.median, self.compiled.median)
    }

    /// Calls after which compiling has paid for itself.
    fn break_even(&self) -> f64 {
        self.tier_up_ns() / minus(self.interpreted.median, self.compiled.median)
    }
}

/// Measures one case in every tier; `calls` is the threshold of `auto`.
fn calls_of(case: Case, calls: u32, xs: &[i64]) -> Calls {
    let interpreted = tiered(TierPolicy::Interpreted, calls, u32::MAX);
    let at = entry(&interpreted, case);
    let want = case.call(at, xs);
    let stub_interpreted = per_call(|| case.call(at, xs));
    assert_eq!(tier_of(&interpreted, case), Tier::Interpreted);

    let hot = tiered(TierPolicy::Auto, 1, u32::MAX);
    let hot_at = entry(&hot, case);
    for _ in 0..2 {
        assert_eq!(case.call(hot_at, xs), want, "{}", case.label());
    }
    assert_eq!(tier_of(&hot, case), Tier::Compiled);
    let compiled = per_call(|| case.call(hot_at, xs));

    // A fresh loader per sample, `calls` calls made: the timed call
    // crosses the threshold.
    let primed = || {
        let l = tiered(TierPolicy::Auto, calls, u32::MAX);
        let at = entry(&l, case);
        for _ in 0..calls {
            case.call(at, xs);
        }
        (l, at)
    };
    let (l, at) = primed();
    assert_eq!(tier_of(&l, case), Tier::Interpreted);
    assert_eq!(case.call(at, xs), want);
    assert_eq!(tier_of(&l, case), Tier::Compiled, "the call compiled it");
    let threshold = measure_with_setup(FRESH_RUNS, primed, |(_, at)| case.call(*at, xs));
    Calls {
        interpreted: stub_interpreted,
        compiled,
        threshold,
    }
}

/// Row 2: the stub's overhead per interpreted call.
fn stub_overhead(report: &mut Report, case: Case, through_stub: Stats, xs: &[i64]) {
    let lib = collections_library();
    jit::verify::verify_library(&lib).expect("verifies");
    let instance = jit::instantiate::instantiate_symbol(&lib, case.symbol()).expect("instantiates");
    let function = Direct(instance.function);
    let resolver = LibraryResolver::new(&lib);
    let interp = Interpreter::new(&resolver);
    let direct = per_call(|| case.interpret(&interp, &function, xs));
    let extra = minus(through_stub.median, direct.median);
    report.row(
        Row::new(
            "tier",
            format!(
                "interpreted call through the resolved pointer, {}",
                case.label()
            ),
            fmt_duration(through_stub.median),
        )
        .baseline(format!("interpreter {}", fmt_duration(direct.median)))
        .ratio(format!(
            "+{} ({:.2}×)",
            fmt_ns(extra),
            through_stub.median_ns() / direct.median_ns()
        )),
    );
}

/// Runs the tier rows.
pub fn run(report: &mut Report) {
    let defaults = TierConfig::default();
    let xs: Vec<i64> = (0..LONG as i64).map(|i| i * 7 - 500).collect();
    load_with_generic_imports(report);
    load_with_imports(report);

    let (sum, max) = (Fold::Sum, Fold::Max);
    let cases = [
        Case::Fold(sum, SHORT),
        Case::Compare,
        Case::Fold(sum, LONG),
        Case::Fold(max, SHORT),
        Case::Fold(max, LONG),
    ];
    let measured: Vec<Calls> = cases
        .iter()
        .map(|&case| calls_of(case, defaults.calls, &xs))
        .collect();

    // The small function first: the overhead shows most there.
    for k in [1, 0] {
        stub_overhead(report, cases[k], measured[k].interpreted, &xs);
    }

    for (k, (case, calls)) in cases.iter().zip(&measured).enumerate() {
        let indent = if k == 0 { "" } else { "  " };
        report.row(
            Row::new(
                "tier",
                format!(
                    "{indent}call crossing calls={} (compile, patch slot, run), {}, fresh loader",
                    defaults.calls,
                    case.label()
                ),
                fmt_duration(calls.threshold.median),
            )
            .baseline(format!("compiled {}", fmt_duration(calls.compiled.median)))
            .ratio(format!("tier-up {}", fmt_ns(calls.tier_up_ns()))),
        );
    }

    for (case, calls) in cases.iter().zip(&measured) {
        report.row(
            Row::new(
                "tier",
                format!(
                    "break-even calls, {}: tier-up / (interpreted − compiled call)",
                    case.label()
                ),
                format!("{:.1} calls", calls.break_even()),
            )
            .baseline(format!(
                "{} − {}",
                fmt_duration(calls.interpreted.median),
                fmt_duration(calls.compiled.median)
            ))
            .ratio(format!("tier-up {}", fmt_ns(calls.tier_up_ns()))),
        );
    }

    back_edges(report, sum, (&measured[0], &measured[2]), &xs);
    back_edges(report, max, (&measured[3], &measured[4]), &xs);
    report.row(Row::new(
        "tier",
        "defaults (loader::limits): calls / back-edges",
        format!("{} / {}", defaults.calls, defaults.back_edges),
    ));
}

/// Row 5, back-edges: an iteration of `fold`'s loop interpreted and
/// compiled (from the calls over [`SHORT`] and [`LONG`] elements), and
/// entering compiled code mid-loop.
fn back_edges(report: &mut Report, fold: Fold, (short, long): (&Calls, &Calls), xs: &[i64]) {
    let iterations = (LONG - SHORT) as f64;
    let interpreted_iteration =
        minus(long.interpreted.median, short.interpreted.median) / iterations;
    let compiled_iteration = minus(long.compiled.median, short.compiled.median) / iterations;

    let case = Case::Fold(fold, LONG);
    let one = case.one_back_edge();
    let interpreted = tiered(TierPolicy::Interpreted, 1, u32::MAX);
    let one_at = entry(&interpreted, one);
    let interpreted_one = per_call(|| one.call(one_at, xs));
    let want = case.call(entry(&interpreted, case), xs);

    // A fresh loader per sample: the loop entry is compiled in the call.
    let fresh = || {
        let l = tiered(TierPolicy::Auto, u32::MAX, 1);
        let at = entry(&l, case);
        (l, at)
    };
    let (l, at) = fresh();
    assert_eq!(case.call(at, xs), want, "{}", case.label());
    let stats = l.tier_stats(case.symbol()).expect("tiered");
    assert_eq!((stats.osr_entries, stats.back_edges), (1, 1));
    let osr = measure_with_setup(FRESH_RUNS, fresh, |(_, at)| case.call(*at, xs));
    let entry_ns = minus(osr.median, interpreted_one.median) - long.compiled.median_ns();
    let break_even = entry_ns / (interpreted_iteration - compiled_iteration);

    let symbol = case.symbol();
    report.row(
        Row::new(
            "tier",
            format!("{symbol} loop: one iteration interpreted / compiled"),
            fmt_ns(interpreted_iteration),
        )
        .baseline(fmt_ns(compiled_iteration))
        .ratio(format!(
            "{:.0}×",
            interpreted_iteration / compiled_iteration
        )),
    );
    report.row(
        Row::new(
            "tier",
            format!(
                "  call of {} entering compiled code at back-edge 1, fresh loader",
                case.label()
            ),
            fmt_duration(osr.median),
        )
        .baseline(format!(
            "{} + {}",
            fmt_duration(interpreted_one.median),
            fmt_duration(long.compiled.median)
        ))
        .ratio(format!("loop entry {}", fmt_ns(entry_ns))),
    );
    report.row(
        Row::new(
            "tier",
            format!(
                "break-even back-edges, {symbol} loop: loop entry / (interpreted − compiled iteration)"
            ),
            format!("{break_even:.0} back-edges"),
        )
        .ratio(format!("loop entry {}", fmt_ns(entry_ns))),
    );
}
