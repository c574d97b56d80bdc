//! Executable-memory density and publication cost (BRIEF §8): 1,000
//! functions of about 100 bytes published in batches of several sizes and
//! one by one, under both strategies (mprotect, dual mapping), measuring the
//! share of executable bytes that are code, the protection changes per
//! function and the time to publish. The baseline column is the naive way:
//! mprotect, one function at a time. A last row prices GDB's JIT
//! interface: a batch of 100 functions published with its registration
//! (the in-memory ELF object and the descriptor's list) and without.

use std::time::Duration;

use ::execmem::{Config, ExecMemory, PerfMap, PublishedCode, Reservation, Strategy, Switch};

use crate::harness::{Report, Row, fmt_duration, measure_with_setup};

const FUNCTIONS: usize = 1000;
const RUNS: usize = 30;

/// Size of function `index`: 80 to 120 bytes, spread deterministically, so
/// the set averages about 100 bytes like small template instantiations.
fn function_len(index: usize) -> usize {
    80 + (index * 37) % 41
}

/// `mov eax, index ; nop … ; ret`, `len` bytes long: callable code whose
/// result identifies it.
fn function_code(index: usize, len: usize) -> Vec<u8> {
    let mut code = vec![0x90; len];
    code[0] = 0xB8;
    code[1..5].copy_from_slice(&(index as u32).to_le_bytes());
    code[len - 1] = 0xC3;
    code
}

/// How the thousand functions are published.
#[derive(Clone, Copy)]
enum Shape {
    Batches(usize),
    OneByOne,
}

impl Shape {
    fn label(self) -> String {
        match self {
            Self::Batches(size) if size == FUNCTIONS => "1 batch of 1000".to_owned(),
            Self::Batches(size) => format!("batches of {size}"),
            Self::OneByOne => "one by one".to_owned(),
        }
    }
}

/// Publishes all functions in `shape`; returns the handles (which keep the
/// code alive) and each function's reservation.
fn publish_all(memory: &ExecMemory, shape: Shape) -> Vec<(PublishedCode, Vec<Reservation>)> {
    let batch_size = match shape {
        Shape::Batches(size) => size,
        Shape::OneByOne => 1,
    };
    (0..FUNCTIONS)
        .step_by(batch_size)
        .map(|first| {
            let indices = first..(first + batch_size).min(FUNCTIONS);
            if let Shape::OneByOne = shape {
                let code = function_code(first, function_len(first));
                let function = memory
                    .publish_function("bench_fn", &code)
                    .expect("published");
                return (function.code().clone(), vec![function.reservation()]);
            }
            let mut batch = memory.batch();
            let reservations = indices
                .map(|index| {
                    let len = function_len(index);
                    let r = batch.reserve("bench_fn", len, 16).expect("reserved");
                    batch
                        .write(&r, 0, &function_code(index, len))
                        .expect("fits");
                    r
                })
                .collect();
            (batch.publish().expect("published"), reservations)
        })
        .collect()
}

/// What one shape achieves: density and protection changes while all 1,000
/// functions are alive, and the median time to publish them.
#[derive(Clone, Copy)]
struct Outcome {
    density: f64,
    changes_per_function: f64,
    per_function: Duration,
}

fn measure_shape(strategy: Strategy, shape: Shape) -> Outcome {
    let memory = ExecMemory::new(Config {
        perf_map: PerfMap::Disabled,
        strategy,
        ..Config::default()
    })
    .expect("allocator");
    assert_eq!(
        memory.strategy(),
        strategy,
        "strategy available on this kernel"
    );
    let published = publish_all(&memory, shape);
    let stats = memory.stats();
    // Every function must be real code: call each and check its answer.
    for (code, reservations) in &published {
        for r in reservations {
            let entry = code.entry(r).expect("own reservation");
            // SAFETY: the bytes are `mov eax, imm32; …; ret`, a valid
            // `extern "C" fn() -> u32`, and `code` is alive.
            let f: extern "C" fn() -> u32 = unsafe { std::mem::transmute(entry) };
            let index = f() as usize;
            assert_eq!(r.size(), function_len(index));
        }
    }
    drop(published);

    // Publication time only: the release of each run happens after its
    // clock stopped.
    let times = measure_with_setup(RUNS, || (), |_| publish_all(&memory, shape));
    Outcome {
        density: stats.density().expect("code is executable"),
        changes_per_function: stats
            .protection_changes_per_function()
            .expect("functions were published"),
        per_function: times.median / FUNCTIONS as u32,
    }
}

fn row(
    what: String,
    ours: String,
    baseline: String,
    ratio: String,
    target: &str,
    met: Option<bool>,
) -> Row {
    Row {
        area: "execmem".to_owned(),
        what,
        ours,
        baseline,
        ratio,
        target: target.to_owned(),
        met,
    }
}

/// Functions in the batch the GDB row publishes.
const GDB_BATCH: usize = 100;

/// Median time to publish a batch of [`GDB_BATCH`] functions, each with a
/// name of its own as instantiations have, with GDB's JIT interface as
/// `gdb_jit` says. Releasing the batch (and withdrawing its object) is off
/// the clock.
fn publish_named_batch(gdb_jit: Switch) -> Duration {
    let memory = ExecMemory::new(Config {
        perf_map: PerfMap::Disabled,
        jitdump: Switch::Disabled,
        gdb_jit,
        ..Config::default()
    })
    .expect("allocator");
    let names: Vec<String> = (0..GDB_BATCH)
        .map(|index| format!("bench_fn${index}$i32"))
        .collect();
    let publish = || {
        let mut batch = memory.batch();
        for (index, name) in names.iter().enumerate() {
            let len = function_len(index);
            let r = batch.reserve(name, len, 16).expect("reserved");
            batch
                .write(&r, 0, &function_code(index, len))
                .expect("fits");
        }
        batch.publish().expect("published")
    };
    for _ in 0..10 {
        drop(publish());
    }
    measure_with_setup(RUNS * 10, || (), |_| publish()).median
}

/// The GDB row: publishing a batch of 100 with the interface on against off.
fn gdb_jit_row(report: &mut Report) {
    let off = publish_named_batch(Switch::Disabled);
    let on = publish_named_batch(Switch::Enabled);
    report.row(row(
        format!("publish batch of {GDB_BATCH}, GDB JIT interface on vs off"),
        fmt_duration(on),
        fmt_duration(off),
        format!(
            "{:+.1} µs per batch ({:.2}×)",
            (on.as_secs_f64() - off.as_secs_f64()) * 1e6,
            on.as_secs_f64() / off.as_secs_f64()
        ),
        "",
        None,
    ));
}

/// Rows for each strategy and shape against mprotect one by one, then the
/// GDB row. Density
/// counts the bytes of the 1,000 functions (80–120 bytes each) over the
/// executable bytes mapped while all are alive.
pub fn run(report: &mut Report) {
    let naive = measure_shape(Strategy::Mprotect, Shape::OneByOne);
    let shapes = [
        Shape::Batches(FUNCTIONS),
        Shape::Batches(100),
        Shape::Batches(10),
        Shape::OneByOne,
    ];
    for strategy in crate::harness::STRATEGIES {
        let name = crate::harness::strategy_label(strategy);
        for shape in shapes {
            let outcome = if matches!((strategy, shape), (Strategy::Mprotect, Shape::OneByOne)) {
                naive
            } else {
                measure_shape(strategy, shape)
            };
            let label = format!("{name}, {}", shape.label());
            report.row(row(
                format!("density, {label}"),
                format!("{:.1} %", outcome.density * 100.0),
                format!("{:.1} %", naive.density * 100.0),
                format!("{:.1}×", outcome.density / naive.density),
                "≥ 70 % code",
                Some(outcome.density >= 0.70),
            ));
            report.row(row(
                format!("prot. changes/fn, {label}"),
                format!("{:.3}", outcome.changes_per_function),
                format!("{:.3}", naive.changes_per_function),
                String::new(),
                "≤ 0.1 per function",
                Some(outcome.changes_per_function <= 0.1),
            ));
            report.row(row(
                format!("publish/fn, {label}"),
                fmt_duration(outcome.per_function),
                fmt_duration(naive.per_function),
                format!(
                    "{:.1}× faster",
                    naive.per_function.as_secs_f64() / outcome.per_function.as_secs_f64()
                ),
                "",
                None,
            ));
        }
    }
    gdb_jit_row(report);
}
