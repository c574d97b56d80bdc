//! Support shared by the integration tests that build and run C programs
//! against `libsmfjit.so`, as cargo built it or as `cargo xtask install`
//! installs it.
#![allow(dead_code)] // each test file uses a different subset

use std::ffi::OsString;
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
///
/// The program records the library's soname (`smfjit::SONAME`), and cargo
/// writes only `libsmfjit.so`: a link of the soname's name in `dir`, which
/// is also the program's run path, lets it find the library it was linked
/// with, as the links of an installed copy do.
pub fn compile_c(name: &str, dir: &Path) -> PathBuf {
    let lib_dir = library_dir();
    let library = lib_dir.join("libsmfjit.so");
    assert!(
        library.is_file(),
        "libsmfjit.so is not in {}",
        lib_dir.display()
    );
    soname_link(&library, dir);
    let program = dir.join(name);
    cc(
        &root().join(format!("tests/c/{name}.c")),
        &program,
        [
            "-I".into(),
            root().join("include").into(),
            "-L".into(),
            lib_dir.into(),
            format!("-Wl,-rpath,{}", dir.display()).into(),
            "-lsmfjit".into(),
        ],
    );
    program
}

/// Makes `dir/SONAME` a link to `library`, unless it is one already (a
/// test may compile several programs into one folder).
fn soname_link(library: &Path, dir: &Path) {
    let link = dir.join(smfjit::SONAME);
    match std::os::unix::fs::symlink(library, &link) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            assert_eq!(std::fs::read_link(&link).unwrap(), library);
        }
        Err(e) => panic!("cannot link {}: {e}", link.display()),
    }
}

/// Compiles the C program `source` into `program` with the system `cc`,
/// warnings as errors, with `flags` after the source file (where the
/// libraries to link must come).
pub fn cc(source: &Path, program: &Path, flags: impl IntoIterator<Item = OsString>) {
    let status = Command::new("cc")
        .arg(source)
        .args(["-Wall", "-Wextra", "-Werror", "-o"])
        .arg(program)
        .args(flags)
        .status()
        .expect("the system C compiler `cc` runs");
    assert!(
        status.success(),
        "cc failed on {}: {status}",
        source.display()
    );
}

/// Installs the artifacts cargo built for this test run under `prefix`,
/// through the installer `cargo xtask install` runs, and returns what it
/// reported, one line per file.
pub fn install(prefix: &Path) -> Vec<String> {
    let tools = Path::new(env!("CARGO_BIN_EXE_smf-inspect"))
        .parent()
        .unwrap();
    // The installer looks for every tool in one folder.
    assert_eq!(
        Path::new(env!("CARGO_BIN_EXE_smf-build")).parent(),
        Some(tools)
    );
    let artifacts = xtask::Artifacts {
        library: library_dir().join("libsmfjit.so"),
        header: root().join("include/smfjit.h"),
        tools: tools.to_owned(),
    };
    let package = xtask::Package {
        name: env!("CARGO_PKG_NAME").into(),
        version: env!("CARGO_PKG_VERSION").into(),
        description: env!("CARGO_PKG_DESCRIPTION").into(),
    };
    let mut report = Vec::new();
    xtask::install(&artifacts, &package, prefix, &mut |installed| {
        report.push(installed.to_string());
    })
    .unwrap();
    report
}

/// `pkg-config ARGS smfjit` with the pkg-config file installed under
/// `prefix` first in the search path; its output, trimmed.
pub fn pkg_config(prefix: &Path, args: &[&str]) -> String {
    require_tool(
        "pkg-config",
        "Debian package `pkg-config`; .ci/run installs it",
    );
    let output = Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .args(args)
        .arg("smfjit")
        .output()
        .unwrap();
    assert!(output.status.success(), "pkg-config {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Compiles `tests/c/NAME.c` into `dir` against the installation under
/// `prefix`, as its users would: `cc NAME.c $(pkg-config --cflags --libs
/// smfjit)`, with a run path to the installed library's folder, which the
/// dynamic linker does not search by itself.
pub fn compile_c_installed(name: &str, prefix: &Path, dir: &Path) -> PathBuf {
    let flags = pkg_config(prefix, &["--cflags", "--libs"]);
    let lib_dir = pkg_config(prefix, &["--variable=libdir"]);
    let program = dir.join(name);
    cc(
        &root().join(format!("tests/c/{name}.c")),
        &program,
        flags
            .split_whitespace()
            .map(OsString::from)
            .chain([format!("-Wl,-rpath,{lib_dir}").into()]),
    );
    program
}

/// Fails the test, saying what to install, unless `tool --version` runs: a
/// test needing a tool never passes by skipping its checks.
pub fn require_tool(tool: &str, install_hint: &str) {
    let runs = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(runs, "{tool} is required for this test ({install_hint})");
}

/// The variables `smfjit_loader_new` reads its configuration from.
const TIER_VARIABLES: [&str; 5] = [
    "SMFJIT_TIER",
    "SMFJIT_TIER_CALLS",
    "SMFJIT_TIER_BACKEDGES",
    "SMFJIT_TIER_BACKGROUND",
    "SMFJIT_CODE_MEMORY",
];

/// A command running `program` against the library it was linked with and
/// in the default configuration; a test adds the variables it means.
///
/// `LD_LIBRARY_PATH` goes: it is searched before the run path the program
/// was linked with (cargo puts its own folders in it, and a shell may add
/// one holding an installed `libsmfjit.so.0`), so the program could load
/// another build than the one under test. The tier variables go too, so
/// the default run is the default whatever the shell set.
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
