//! Timing helpers shared by every benchmark: repeated measurement, order
//! statistics and the printed comparison table.
//!
//! Written here rather than taken from criterion because every table row
//! compares two measurements taken in the same run (ours against the
//! alternative a user would pick), which needs medians and ratios side by side.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Order statistics of one measured operation.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Median time of one run.
    pub median: Duration,
    /// 99th percentile time of one run.
    pub p99: Duration,
}

impl Stats {
    /// Median in nanoseconds, as a float for ratios.
    pub fn median_ns(&self) -> f64 {
        self.median.as_secs_f64() * 1e9
    }

    /// Per-operation statistics of runs that each did `ops` operations (a
    /// clock read costs about as much as one warm lookup or one short
    /// call, so such operations are timed in batches).
    ///
    /// # Panics
    /// When `ops` is 0 or does not fit in a `u32`.
    pub fn per_op(self, ops: usize) -> Stats {
        let ops = u32::try_from(ops).expect("batch size fits in u32");
        assert!(ops > 0, "a batch has at least one operation");
        Stats {
            median: self.median / ops,
            p99: self.p99 / ops,
        }
    }
}

impl Stats {
    /// The order statistics of timed samples.
    ///
    /// # Panics
    /// When there are no samples.
    pub fn of(mut times: Vec<Duration>) -> Self {
        assert!(!times.is_empty(), "a measurement needs at least one run");
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        Stats {
            median: at(0.5),
            p99: at(0.99),
        }
    }
}

/// Measures `sides` contenders in alternation, five rounds each
/// (`measure_side(k)` measures contender `k` once), keeping each one's
/// round with the lowest median: load from other processes on a shared
/// machine then hits every side alike. One [`Stats`] per side, in order.
pub fn race(sides: usize, mut measure_side: impl FnMut(usize) -> Stats) -> Vec<Stats> {
    let mut best: Vec<Option<Stats>> = vec![None; sides];
    for _ in 0..5 {
        for (k, slot) in best.iter_mut().enumerate() {
            let s = measure_side(k);
            if slot.is_none_or(|old| s.median < old.median) {
                *slot = Some(s);
            }
        }
    }
    best.into_iter().map(|s| s.expect("measured")).collect()
}

/// Runs `op` a few times to warm up, then `runs` timed times, and returns the
/// order statistics. The result of `op` is passed through `black_box` so the
/// work cannot be optimised away.
pub fn measure<T>(runs: usize, mut op: impl FnMut() -> T) -> Stats {
    for _ in 0..runs.min(10) {
        black_box(op());
    }
    measure_with_setup(runs, || (), |_| op())
}

/// Times `op` on a fresh state from an untimed `setup`, `runs` times. Only
/// `op` is on the clock: dropping its result and the state is not.
pub fn measure_with_setup<S, T>(
    runs: usize,
    mut setup: impl FnMut() -> S,
    mut op: impl FnMut(&S) -> T,
) -> Stats {
    Stats::of(
        (0..runs)
            .map(|_| {
                let state = setup();
                let start = Instant::now();
                let out = black_box(op(&state));
                let elapsed = start.elapsed();
                drop(out);
                drop(state);
                elapsed
            })
            .collect(),
    )
}

/// How many times a profiling step repeats: `SMFJIT_BENCH_PROFILE_RUNS`,
/// or `default` when it is unset or not a number.
pub fn profile_runs(default: usize) -> usize {
    std::env::var("SMFJIT_BENCH_PROFILE_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// Formats a duration with a unit that keeps three significant digits.
/// Every execmem strategy, in the order the rows list them.
pub const STRATEGIES: [execmem::Strategy; 3] = [
    execmem::Strategy::Mprotect,
    execmem::Strategy::DualMapping,
    execmem::Strategy::FileWrite,
];

/// A strategy's name in row labels.
pub fn strategy_label(strategy: execmem::Strategy) -> &'static str {
    match strategy {
        execmem::Strategy::Mprotect => "mprotect",
        execmem::Strategy::DualMapping => "dual map",
        execmem::Strategy::FileWrite => "file write",
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// One row of the results table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// Benchmark area (`smf`, `sdn`, `execmem`, ...).
    pub area: String,
    /// What was measured.
    pub what: String,
    /// Our figure, already formatted.
    pub ours: String,
    /// The comparison figure (empty when there is none).
    pub baseline: String,
    /// Ratio or derived figure, already formatted.
    pub ratio: String,
    /// The §8 target this row is checked against (empty when none).
    pub target: String,
    /// Whether the target is met (`None` when there is no target).
    pub met: Option<bool>,
}

impl Row {
    /// A row with our figure only; add the rest with the builder methods.
    pub fn new(area: &str, what: impl Into<String>, ours: impl Into<String>) -> Self {
        Self {
            area: area.into(),
            what: what.into(),
            ours: ours.into(),
            baseline: String::new(),
            ratio: String::new(),
            target: String::new(),
            met: None,
        }
    }

    /// Sets the comparison figure.
    pub fn baseline(mut self, baseline: impl Into<String>) -> Self {
        self.baseline = baseline.into();
        self
    }

    /// Sets the ratio or derived figure.
    pub fn ratio(mut self, ratio: impl Into<String>) -> Self {
        self.ratio = ratio.into();
        self
    }

    /// Sets the target and whether it is met.
    pub fn target(mut self, target: impl Into<String>, met: bool) -> Self {
        self.target = target.into();
        self.met = Some(met);
        self
    }
}

/// The collected rows of one run, printed as a table and written as JSON.
#[derive(Debug, Default)]
pub struct Report {
    /// Rows in the order they were measured.
    pub rows: Vec<Row>,
}

impl Report {
    /// Adds a row.
    pub fn row(&mut self, row: Row) {
        println!(
            "  {:<10} {:<44} {:>14} {:>14} {:>12}",
            row.area, row.what, row.ours, row.baseline, row.ratio
        );
        self.rows.push(row);
    }

    /// Prints the whole table with a header.
    pub fn print(&self) {
        println!();
        println!(
            "| {:<8} | {:<44} | {:>14} | {:>14} | {:>12} | {:<22} | {:<4} |",
            "area", "what", "ours", "baseline", "ratio", "target", "met"
        );
        println!(
            "|{}|{}|{}|{}|{}|{}|{}|",
            "-".repeat(10),
            "-".repeat(46),
            "-".repeat(16),
            "-".repeat(16),
            "-".repeat(14),
            "-".repeat(24),
            "-".repeat(6)
        );
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            };
            println!(
                "| {:<8} | {:<44} | {:>14} | {:>14} | {:>12} | {:<22} | {:<4} |",
                r.area, r.what, r.ours, r.baseline, r.ratio, r.target, met
            );
        }
    }
}
