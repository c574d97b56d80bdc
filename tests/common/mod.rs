//! Support shared by the integration tests that build and run C programs
//! against `libsmfjit.so`.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding libsmfjit.so: cargo builds the library's cdylib
/// next to the test executable in `deps` (and copies it one level up only
/// for `cargo build`).
pub fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .into_iter()
        .find(|dir| dir.join("libsmfjit.so").is_file())
        .unwrap_or(deps)
        .to_path_buf()
}

/// Compiles `tests/c/NAME.c` with the system `cc` (warnings are errors)
/// against `include/smfjit.h` and libsmfjit.so, into `dir`.
pub fn compile_c(name: &str, dir: &Path) -> PathBuf {
    let lib_dir = library_dir();
    assert!(
        lib_dir.join("libsmfjit.so").is_file(),
        "libsmfjit.so is not in {}",
        lib_dir.display()
    );
    let program = dir.join(name);
    let status = Command::new("cc")
        .arg(root().join(format!("tests/c/{name}.c")))
        .arg("-I")
        .arg(root().join("include"))
        .args(["-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&program)
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lsmfjit")
        .status()
        .expect("the system C compiler `cc` runs");
    assert!(status.success(), "cc failed on {name}.c: {status}");
    program
}

/// The variables `smfjit_loader_new` reads its tier configuration from.
const TIER_VARIABLES: [&str; 4] = [
    "SMFJIT_TIER",
    "SMFJIT_TIER_CALLS",
    "SMFJIT_TIER_BACKEDGES",
    "SMFJIT_TIER_BACKGROUND",
];

/// A command running `program` against the library it was linked with and
/// in the default configuration; a test adds the variables it means.
///
/// `LD_LIBRARY_PATH` goes: cargo puts `target/debug` in it ahead of `deps`,
/// and a `libsmfjit.so` there is whatever `cargo build` last left, which
/// would win over the run path `compile_c` linked the program with. The
/// tier variables go too, so the default run is the default whatever the
/// shell set.
pub fn command(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_remove("LD_LIBRARY_PATH");
    for name in TIER_VARIABLES {
        command.env_remove(name);
    }
    command
}

/// Runs `program` with `arg`, requires success and returns its stdout.
pub fn run(program: &Path, arg: &Path) -> String {
    run_with(program, arg, &[])
}

/// [`run`] with the environment variables `env` set.
pub fn run_with(program: &Path, arg: &Path, env: &[(&str, &str)]) -> String {
    succeed(command(program).envs(env.iter().copied()).arg(arg))
}

/// Runs `command`, requires success and returns its stdout.
pub fn succeed(command: &mut Command) -> String {
    let output = command.output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `%.17g` of a double, as C prints it (enough digits to round-trip).
pub fn c_double(x: f64) -> String {
    let output = Command::new("printf")
        .arg("%.17g")
        .arg(format!("{x:e}"))
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}
