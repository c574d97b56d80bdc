//! Warm resolution under concurrency: resolves per second with one and
//! two threads asking the same loader at once, against `dlsym` on a shared
//! object with as many symbols asked the same way.
//!
//! The loader and the shared object are the `loader` area's: a module
//! exporting 10,000 functions, the same names compiled into a shared
//! object, and 1,024 instantiated names (`const$N`, published by a trivial
//! instantiator). Every thread resolves the same 1,024 shuffled names
//! round after round; the threads start together at a barrier and the
//! time is from the first one's start to the last one's finish. The figure is the
//! median over several such runs; "scaling" is the two-thread throughput
//! over the one-thread throughput (2.0 would be perfect on the machine's
//! two cores, which other processes share).

use std::ffi::CString;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use loader::{Loader, LoaderConfig};

use crate::harness::{Report, Row, Stats};
use crate::loader::{BATCH, Constants, many_names, name, shuffled};

/// Passes over the names per thread in one run.
const ROUNDS: usize = 300;
/// Runs per figure.
const REPEATS: usize = 9;

/// Resolves per second of `threads` threads each resolving every name of
/// `names` `ROUNDS` times (the median of `REPEATS` runs).
fn throughput<N: Sync>(threads: usize, names: &[N], resolve: &(dyn Fn(&N) -> usize + Sync)) -> f64 {
    let times: Vec<Duration> = (0..REPEATS)
        .map(|_| {
            let start = Barrier::new(threads);
            // Each worker times itself: the main thread may not be
            // scheduled while the workers hold both cores, so its clock
            // would start late.
            let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            let t0 = Instant::now();
                            let sum = (0..ROUNDS)
                                .flat_map(|_| names.iter())
                                .map(resolve)
                                .fold(0usize, usize::wrapping_add);
                            std::hint::black_box(sum);
                            (t0, Instant::now())
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .map(|w| w.join().expect("worker finishes"))
                    .collect()
            });
            let first = spans.iter().map(|s| s.0).min().expect("a worker");
            let last = spans.iter().map(|s| s.1).max().expect("a worker");
            last - first
        })
        .collect();
    let median = Stats::of(times).median;
    (threads * ROUNDS * names.len()) as f64 / median.as_secs_f64()
}

fn per_second(rate: f64) -> String {
    format!("{:.1} M/s", rate / 1e6)
}

/// One kind of name at 1 and 2 threads, ours against `dlsym`.
fn compare(
    report: &mut Report,
    what: &str,
    ours: &(dyn Fn(&String) -> usize + Sync),
    names: &[String],
    dlsym: (f64, f64),
) {
    let one = throughput(1, names, ours);
    let two = throughput(2, names, ours);
    for (threads, rate, theirs) in [(1, one, dlsym.0), (2, two, dlsym.1)] {
        report.row(
            Row::new(
                "concurrent",
                format!("warm resolve, {what}, {threads} thread(s)"),
                per_second(rate),
            )
            .baseline(format!("dlsym {}", per_second(theirs)))
            .ratio(format!("{:.1}× dlsym", rate / theirs)),
        );
    }
    report.row(
        Row::new(
            "concurrent",
            format!("  scaling 2 threads / 1, {what}"),
            format!("{:.2}×", two / one),
        )
        .baseline(format!("dlsym {:.2}×", dlsym.1 / dlsym.0)),
    );
}

/// Runs the concurrent resolve benchmark.
pub fn run(report: &mut Report) {
    let (dir, module_path, so) = many_names("concurrent");

    let loader = Loader::new(LoaderConfig::default()).expect("loader");
    loader.load(&module_path).expect("load");
    loader.set_instantiator(Constants);
    let exported: Vec<String> = shuffled().into_iter().map(name).collect();
    let instantiated: Vec<String> = (1..=BATCH).map(|i| format!("const${i}")).collect();
    for n in exported.iter().chain(&instantiated) {
        loader.resolve(n).expect("resolves");
    }

    let so_c = CString::new(so.to_str().expect("UTF-8 path")).expect("no NUL");
    // SAFETY: the library was just compiled from trivial C functions; it has
    // no initialisers beyond the C runtime's.
    let handle = unsafe { libc::dlopen(so_c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen failed");
    // A raw pointer is not `Sync`; `dlsym` on one handle is thread-safe.
    let handle = handle as usize;
    let c_names: Vec<CString> = exported
        .iter()
        .map(|n| CString::new(n.as_str()).expect("no NUL"))
        .collect();
    // SAFETY: `handle` is open until the end of this function and every
    // name is NUL-terminated.
    let dlsym =
        |c: &CString| unsafe { libc::dlsym(handle as *mut libc::c_void, c.as_ptr()) } as usize;
    assert!(
        c_names.iter().all(|c| dlsym(c) != 0),
        "dlsym finds every name"
    );
    let theirs = (
        throughput(1, &c_names, &dlsym),
        throughput(2, &c_names, &dlsym),
    );

    let resolve = |n: &String| loader.resolve(n).map_or(0, |a| a.get());
    compare(report, "exported name", &resolve, &exported, theirs);
    compare(report, "instantiated name", &resolve, &instantiated, theirs);

    // What two threads can gain on this machine at this moment (other
    // processes share the cores): work of similar size touching nothing
    // shared, FNV-1a of each name.
    let fnv = |n: &String| {
        n.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }) as usize
    };
    let (one, two) = (
        throughput(1, &exported, &fnv),
        throughput(2, &exported, &fnv),
    );
    report.row(
        Row::new(
            "concurrent",
            "  for comparison: scaling of unshared work (FNV-1a of each name)",
            format!("{:.2}×", two / one),
        )
        .baseline(format!("1 thread {}", per_second(one))),
    );

    // SAFETY: nothing resolved from the library is used after this.
    unsafe { libc::dlclose(handle as *mut libc::c_void) };
    let _ = std::fs::remove_dir_all(&dir);
}
