//! The WebAssembly backend (BRIEF §13), against the x86-64 backend on the
//! same templates, in one run.
//!
//! Rows:
//!
//! - `compile quicksort$i32 + insertion_sort$i32 → validated wasm module`:
//!   `jit::wasm::compile` of the two instances (instantiated beforehand
//!   from the collections fixture's templates laid out for wasm32), which
//!   includes validation with wasmparser; the baseline is the x86-64
//!   backend's time for the same pair as the `jit` area measures it
//!   (`loader::backend_alone_runs`, step `backend`: register allocation,
//!   lowering, encoding, no publication). Ratio: wasm / x86-64.
//! - `K: wasmi / native` for each kernel of the suite (`backend::
//!   kernel_suite`): the kernel's module run by wasmi in process (inputs
//!   copied into the module's memory once; sort copies its input in each
//!   run, as the native run copies it into its working buffer), against
//!   the x86-64 backend's code for the same instantiations, raced in
//!   alternation (`Kernel::race`, best of five rounds). Every runner's
//!   result is checked first (`Kernel::verify`). Ratio: how many times
//!   slower wasmi is.
//! - `K: node (V8) / native`: the same module in Node, timed by
//!   `bench/node/time_kernel.mjs` (spawned once per kernel: the inputs
//!   copied into the memory once, warm-up runs for V8's tiers, then each
//!   run timed with `process.hrtime.bigint()`; its median against the
//!   native median of the race above). The harness's digest of the work
//!   must equal the native code's. Each call crosses from JavaScript into
//!   the module, so search (a call per key) and push (a call per element)
//!   carry that boundary in their figures, as native code carries its
//!   calls. Without `node` on the PATH these rows say so instead of a
//!   figure.
//! - `kernel suite geomean: wasmi / native` and `… node (V8) / native`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use execmem::Strategy;
use jit::instantiate::Instance;
use jit::target::Target;

use crate::backend::{Compiler, Runner, kernel_suite};
use crate::harness::{Report, Row, Stats, fmt_duration, measure};
use crate::loader::{RUNS, backend_alone_runs, collections_library};

/// The pair the `jit` area's first-miss rows compile.
const PAIR: [&str; 2] = ["quicksort$i32", "insertion_sort$i32"];

fn compile_time(report: &mut Report) {
    let x86 = backend_alone_runs(&PAIR, RUNS, "backend").0;
    let lib = collections_library().with_target(Target::WASM32);
    jit::verify::verify_library(&lib).expect("verifies for wasm32");
    let instances: Vec<Instance> = PAIR
        .iter()
        .map(|s| jit::instantiate::instantiate_symbol(&lib, s).expect("instantiates"))
        .collect();
    let refs: Vec<&Instance> = instances.iter().collect();
    let bytes = jit::wasm::compile(&refs).expect("compiles").bytes().len();
    let wasm = measure(RUNS, || {
        jit::wasm::compile(&refs).map_or(0, |m| m.bytes().len())
    });
    report.row(
        Row::new(
            "wasm",
            format!(
                "compile {} + {} → validated wasm module ({bytes} bytes) / x86-64 backend",
                PAIR[0], PAIR[1]
            ),
            fmt_duration(wasm.median),
        )
        .baseline(fmt_duration(x86.median))
        .ratio(format!("{:.2}×", wasm.median_ns() / x86.median_ns())),
    );
}

/// What Node measured for one kernel.
struct NodeTiming {
    median: Duration,
    digest: u64,
    version: String,
}

/// Runs the timing harness on `module` for `kernel`; the reason when
/// Node cannot be run or fails.
fn node_timing(
    dir: &Path,
    module: &[u8],
    kernel: &crate::backend::Kernel,
    runs: usize,
) -> Result<NodeTiming, String> {
    let stem = kernel.symbol().replace('$', "_");
    let path = dir.join(format!("{stem}.wasm"));
    std::fs::write(&path, module).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut files = Vec::new();
    if kernel.kind() != "push" {
        for (k, bytes) in kernel.buffers().iter().enumerate() {
            let file = dir.join(format!("{stem}.{k}.bin"));
            std::fs::write(&file, bytes)
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            files.push(file);
        }
    }
    let kind = match kernel.kind() {
        "push" => format!("push:{}", crate::backend::Kernel::PUSHES),
        other => other.to_owned(),
    };
    let harness = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node/time_kernel.mjs");
    let out = Command::new("node")
        .arg(harness)
        .arg(&path)
        .arg(kernel.symbol())
        .arg(kind)
        .arg(runs.to_string())
        .arg((runs / 2).max(50).to_string())
        .args(&files)
        .output()
        .map_err(|e| format!("node not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "node failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let j: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("node printed no JSON: {e}"))?;
    Ok(NodeTiming {
        median: Duration::from_nanos(j["median_ns"].as_u64().unwrap_or(0)),
        digest: j["digest"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .ok_or("node printed no digest")?,
        version: j["node"].as_str().unwrap_or("?").to_owned(),
    })
}

fn kernels(report: &mut Report) {
    let host = jit::library::collections().expect("library");
    let wasm_lib = host.clone().with_target(Target::WASM32);
    jit::verify::verify_library(&wasm_lib).expect("verifies for wasm32");
    let c = Compiler::new(Strategy::Mprotect);
    let dir = std::env::temp_dir().join(format!("smfjit-bench-wasm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let (mut wasmi_logs, mut node_logs, mut node_version) = (Vec::new(), Vec::new(), None);
    for mut kernel in kernel_suite() {
        let insts = kernel.instances(&host);
        let batch = c.batch(&insts);
        let entry = batch.function(&insts[0].symbol).expect("root").address();
        // SAFETY: the kernel's own instantiation, compiled; `batch` lives
        // until the end of this iteration.
        let native = unsafe { Runner::compiled(entry) };
        let (module, side) = kernel.in_wasm(&wasm_lib);
        let wasmi = Runner::Wasm(&side);
        kernel.verify(&[("native", native), ("wasmi", wasmi)]);
        let times: Vec<Stats> = kernel.race(&[native, wasmi]);
        let (native_t, wasmi_t) = (times[0], times[1]);
        let slower = wasmi_t.median_ns() / native_t.median_ns();
        wasmi_logs.push(slower.ln());
        report.row(
            Row::new(
                "wasm",
                format!("{}: wasmi / native", kernel.label),
                fmt_duration(wasmi_t.median),
            )
            .baseline(fmt_duration(native_t.median))
            .ratio(format!("{slower:.1}× slower")),
        );
        let digest = kernel.run(native);
        match node_timing(&dir, module.bytes(), &kernel, kernel.runs()) {
            Ok(t) => {
                assert_eq!(
                    t.digest, digest,
                    "{}: node computed something other than native code",
                    kernel.label
                );
                let slower = t.median.as_secs_f64() * 1e9 / native_t.median_ns();
                node_logs.push(slower.ln());
                node_version = Some(t.version);
                report.row(
                    Row::new(
                        "wasm",
                        format!("{}: node (V8) / native", kernel.label),
                        fmt_duration(t.median),
                    )
                    .baseline(fmt_duration(native_t.median))
                    .ratio(format!("{slower:.2}×")),
                );
            }
            Err(why) => report.row(Row::new(
                "wasm",
                format!("{}: node (V8) / native", kernel.label),
                format!("not measured ({why})"),
            )),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let geomean = |logs: &[f64]| (logs.iter().sum::<f64>() / logs.len() as f64).exp();
    report.row(Row::new(
        "wasm",
        "kernel suite geomean: wasmi / native",
        format!("{:.1}× slower", geomean(&wasmi_logs)),
    ));
    if let Some(version) = node_version {
        report.row(
            Row::new(
                "wasm",
                format!(
                    "kernel suite geomean: node {version} (V8) / native, {} of {} kernels",
                    node_logs.len(),
                    wasmi_logs.len()
                ),
                format!("{:.2}×", geomean(&node_logs)),
            )
            .ratio("hrtime per run, median"),
        );
    }
}

/// Runs both parts.
pub fn run(report: &mut Report) {
    compile_time(report);
    kernels(report);
}
