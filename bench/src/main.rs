//! `smfjit-bench`: the side-by-side benchmarks of BRIEF §8, run on demand.
//!
//! `cargo run --release --manifest-path bench/Cargo.toml -- [AREA...] [--json FILE]`
//! runs the named areas (all when none is named), prints one table and
//! writes the rows as JSON (default `bench/results.json`).

mod backend;
mod concurrent;
mod cranelift;
mod execmem;
mod harness;
mod loader;
mod prefetch;
mod sdn;
mod shared;
mod smf;
mod start;
mod tier;
mod wasm;

use harness::Report;

/// A benchmark area's entry point: it measures and adds rows to the report.
type Area = fn(&mut Report);

/// Every benchmark area: its name on the command line and its entry point.
const AREAS: &[(&str, Area)] = &[
    ("start", start::run),
    ("smf", smf::run),
    ("execmem", execmem::run),
    ("sdn", sdn::run),
    ("loader", loader::run),
    ("jit", loader::run_jit),
    ("backend", backend::run),
    ("cranelift", cranelift::run),
    ("concurrent", concurrent::run),
    ("tier", tier::run),
    ("wasm", wasm::run),
    ("shared", shared::run),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let mut wanted = Vec::new();
    let mut json_path = String::from("bench/results.json");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => match args.next() {
                Some(p) => json_path = p,
                None => usage("--json needs a file name"),
            },
            "-h" | "--help" => usage(""),
            name if AREAS.iter().any(|(n, _)| *n == name) => wanted.push(arg),
            other => usage(&format!("unknown benchmark area '{other}'")),
        }
    }
    let mut report = Report::default();
    for (name, run) in AREAS {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            println!("== {name}");
            run(&mut report);
        }
    }
    report.print();
    let json = serde_json::to_string_pretty(&report.rows).expect("rows serialize");
    if let Err(e) = std::fs::write(&json_path, json + "\n") {
        eprintln!("error: cannot write '{json_path}': {e}");
        std::process::exit(1);
    }
    println!("\nresults written to {json_path}");
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    let names: Vec<&str> = AREAS.iter().map(|(n, _)| *n).collect();
    eprintln!(
        "usage: smfjit-bench [AREA...] [--json FILE]\nareas: {}",
        names.join(", ")
    );
    std::process::exit(2);
}
