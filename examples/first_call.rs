//! The Rust cold-start client of the `start` benchmark area: a fresh
//! process creates a loader, loads a module, resolves `sum$f64`
//! (instantiated on the miss) and calls it. With `--linked-only` it returns
//! at once, the baseline the benchmark counts beyond.
//!
//! `cargo run --release --example first_call -- tests/fixtures/collections.smf`

// Calling a JIT-compiled function through its pointer is unsafe: the
// signature is the caller's promise.
#![allow(unsafe_code)]

use std::process::ExitCode;

use smfjit::loader::{Loader, LoaderConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = match args.as_slice() {
        [flag, _] if flag == "--linked-only" => return ExitCode::SUCCESS,
        [path] => path,
        _ => {
            eprintln!("usage: first_call [--linked-only] MODULE.smf");
            return ExitCode::from(2);
        }
    };
    match first_call(path) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `sum$f64` of the module at `path` sums three numbers right.
fn first_call(path: &str) -> Result<bool, smfjit::loader::Error> {
    let loader = Loader::with_jit(LoaderConfig::default())?;
    loader.load(path)?;
    let sum = loader.resolve("sum$f64")?;
    // SAFETY: `sum$f64` is `sum<f64>`, whose signature is
    // `fn(ptr<f64>, i64) -> f64`: this C type.
    let sum: extern "C" fn(*const f64, i64) -> f64 = unsafe { std::mem::transmute(sum.as_ptr()) };
    Ok(sum([1.5, 2.25, 3.0].as_ptr(), 3) == 6.75)
}
