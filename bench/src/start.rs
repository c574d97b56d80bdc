//! Fresh process → first call of a JIT-compiled function (BRIEF §8, the
//! first row): what a program that loads a module and asks for one
//! instantiation pays from `exec` to the call, beyond what linking the
//! library costs it anyway.
//!
//! Two clients do the same work — create a loader, load the collections
//! fixture, resolve `sum$f64` (instantiated on the miss) and call it: a C
//! program through the C ABI (`bench/clients/first_call.c`, linked to
//! `libsmfjit.so`) and a Rust program (`examples/first_call.rs`). Each has
//! a `--linked-only` mode that returns at once: the same binary, linked
//! and loaded the same way, doing nothing — the baseline.
//!
//! - **Instructions** are counted by callgrind (deterministic) over the
//!   whole process, both modes; the figure is the difference.
//! - **Wall time** is the median of fresh processes spawned and waited
//!   for, the two modes alternating; the figure is the ratio.
//!
//! The area builds what it runs: `cargo build --release --lib --example
//! first_call` in the repository, then the C client with the system `cc`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{Report, Row, Stats, fmt_duration};

/// Process spawns per mode for the wall-time figure.
const SPAWNS: usize = 200;
/// The target: instructions beyond the linked-only client.
const TARGET_INSTRUCTIONS: u64 = 600_000;
/// The target: wall time as a multiple of the linked-only client's.
const TARGET_WALL_RATIO: f64 = 1.3;
/// The soname `libsmfjit.so` is linked with (`smfjit::SONAME`; this package
/// does not depend on the facade).
const SONAME: &str = "libsmfjit.so.0";

/// The repository's root (the bench package is `bench/` inside it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

/// Runs the area.
pub fn run(report: &mut Report) {
    let root = root();
    let module = root.join("tests/fixtures/collections.smf");
    let clients = match build_clients(&root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("start: cannot build the clients: {e}");
            report
                .row(Row::new("start", "fresh process → first JIT call", "not measured").ratio(e));
            return;
        }
    };
    for (language, binary) in clients {
        measure_client(report, language, &binary, &module);
    }
}

/// Builds the Rust example and the C client; their paths by language.
fn build_clients(root: &Path) -> Result<Vec<(&'static str, PathBuf)>, String> {
    let cargo = Path::new(env!("CARGO"));
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--lib", "--example", "first_call"])
        .current_dir(root);
    // The toolchain's own rustc, not the rustup proxy on the path: the
    // proxy picks a toolchain from the directory it runs in, and some
    // dependencies' sources name one that is not installed.
    let rustc = cargo.with_file_name("rustc");
    if rustc.is_file() {
        build.env("RUSTC", rustc);
    }
    let status = build.status().map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build of the library and example failed".into());
    }
    let release = root.join("target/release");
    // The client records the library's soname and cargo writes only
    // `libsmfjit.so`: the client's folder, its run path, holds a link of
    // the soname's name (build.rs, src/soname.in) to the library.
    let client_dir = std::env::temp_dir().join(format!("smfjit-first-call-{}", std::process::id()));
    std::fs::create_dir_all(&client_dir).map_err(|e| format!("{}: {e}", client_dir.display()))?;
    let soname_link = client_dir.join(SONAME);
    let _ = std::fs::remove_file(&soname_link);
    std::os::unix::fs::symlink(release.join("libsmfjit.so"), &soname_link)
        .map_err(|e| format!("{}: {e}", soname_link.display()))?;
    let c_client = client_dir.join("first_call");
    let status = Command::new("cc")
        .arg("-O2")
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("bench/clients/first_call.c"))
        .arg("-L")
        .arg(&release)
        .arg("-lsmfjit")
        .arg(format!("-Wl,-rpath,{}", client_dir.display()))
        .arg("-o")
        .arg(&c_client)
        .status()
        .map_err(|e| format!("cc: {e}"))?;
    if !status.success() {
        return Err("cc could not build bench/clients/first_call.c".into());
    }
    Ok(vec![
        ("C", c_client),
        ("Rust", release.join("examples/first_call")),
    ])
}

fn measure_client(report: &mut Report, language: &str, binary: &Path, module: &Path) {
    let full = [module.as_os_str().to_owned()];
    let linked_only = ["--linked-only".into(), module.as_os_str().to_owned()];
    // A client that fails is a bug to see, not a figure to print.
    for args in [&full[..], &linked_only[..]] {
        let status = Command::new(binary)
            .args(args)
            .status()
            .expect("client runs");
        assert!(status.success(), "{} {args:?}: {status}", binary.display());
    }
    let what = format!("fresh process → first JIT call, {language} client (sum$f64)");
    match (
        instructions(binary, &full),
        instructions(binary, &linked_only),
    ) {
        (Ok(all), Ok(base)) => {
            let beyond = all.saturating_sub(base);
            report.row(
                Row::new(
                    "start",
                    format!("{what}: instructions"),
                    format!("{:.2} M", beyond as f64 / 1e6),
                )
                .baseline(format!("linked only {:.2} M", base as f64 / 1e6))
                .ratio(format!("{:.2} M in all", all as f64 / 1e6))
                .target("≤ 0.6 M beyond linked-only", beyond <= TARGET_INSTRUCTIONS),
            );
        }
        (Err(e), _) | (_, Err(e)) => {
            report.row(Row::new("start", format!("{what}: instructions"), "not measured").ratio(e));
        }
    }
    let (ours, base) = wall_times(binary, &full, &linked_only);
    let ratio = ours.median_ns() / base.median_ns();
    report.row(
        Row::new(
            "start",
            format!("{what}: wall time"),
            fmt_duration(ours.median),
        )
        .baseline(format!("linked only {}", fmt_duration(base.median)))
        .ratio(format!("{ratio:.2}×"))
        .target("≤ 1.3× linked-only", ratio <= TARGET_WALL_RATIO),
    );
}

/// Instructions callgrind counts over the whole run of `binary args`.
fn instructions(binary: &Path, args: &[std::ffi::OsString]) -> Result<u64, String> {
    let out_file = std::env::temp_dir().join(format!("smfjit-start-{}.cg", std::process::id()));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(binary)
        .args(args)
        .output()
        .map_err(|e| format!("valgrind is needed for instruction counts: {e}"))?;
    let _ = std::fs::remove_file(&out_file);
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find_map(|l| {
            l.split_once("Collected :")
                .map(|(_, n)| n.trim().to_owned())
        })
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no instruction count in callgrind's output: {stderr}"))
}

/// Median wall times of fresh processes in the two modes, alternating.
fn wall_times(
    binary: &Path,
    full: &[std::ffi::OsString],
    base: &[std::ffi::OsString],
) -> (Stats, Stats) {
    let spawn = |args: &[std::ffi::OsString]| -> Duration {
        let start = Instant::now();
        let status = Command::new(binary)
            .args(args)
            .status()
            .expect("client runs");
        let elapsed = start.elapsed();
        assert!(status.success());
        elapsed
    };
    for _ in 0..5 {
        spawn(full);
        spawn(base);
    }
    let (mut ours, mut theirs) = (Vec::with_capacity(SPAWNS), Vec::with_capacity(SPAWNS));
    for _ in 0..SPAWNS {
        ours.push(spawn(full));
        theirs.push(spawn(base));
    }
    (Stats::of(ours), Stats::of(theirs))
}
