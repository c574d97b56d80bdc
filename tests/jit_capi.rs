//! A C program compiled with the system `cc` against libsmfjit.so gets
//! instantiation on miss from `smfjit_loader_new`: it loads the
//! collections fixture, resolves instantiations no module precompiled and
//! calls them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding libsmfjit.so (cargo builds the cdylib next to the
/// test executable in `deps`, and copies it one level up for `cargo build`).
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps, deps.parent().unwrap()]
        .into_iter()
        .find(|dir| dir.join("libsmfjit.so").is_file())
        .unwrap_or(deps)
        .to_path_buf()
}

/// `%.17g` of a double, as C prints it.
fn c_double(x: f64) -> String {
    let output = Command::new("printf")
        .arg("%.17g")
        .arg(format!("{x:e}"))
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

fn joined<T: ToString>(what: &str, xs: &[T]) -> String {
    let items: Vec<String> = xs.iter().map(ToString::to_string).collect();
    format!("{what}: {}", items.join(" "))
}

#[test]
fn a_c_program_calls_instantiations_made_on_miss() {
    let lib_dir = library_dir();
    assert!(
        lib_dir.join("libsmfjit.so").is_file(),
        "no libsmfjit.so in {}",
        lib_dir.display()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("jit_on_miss");
    let status = Command::new("cc")
        .arg(root.join("tests/c/jit_on_miss.c"))
        .arg("-I")
        .arg(root.join("include"))
        .args(["-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&program)
        .arg("-L")
        .arg(&lib_dir)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lsmfjit")
        .status()
        .expect("the system C compiler `cc` runs");
    assert!(status.success(), "cc failed: {status}");

    let output = Command::new(&program)
        .arg(root.join("tests/fixtures/collections.smf"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();

    let mut longs: Vec<i64> = (0..20).map(|k| (k * 7919 + 13) % 101 - 50).collect();
    longs[3] = i64::MIN;
    longs[11] = i64::MAX;
    longs.sort_unstable();
    let mut ints = [5i32, -3, i32::MAX, 0, i32::MIN, 5, 17];
    ints.sort_unstable();
    let expected = [
        "same pointer again: yes".to_owned(),
        format!("sum$f64 of 0: {}", c_double(0.0)),
        format!("sum$f64 of 3: {}", c_double(0.5 + 2.25 - 1.0)),
        format!("sum$f64 of 4: {}", c_double(9.75)),
        joined("sort$i64", &longs),
        joined("sort$i32", &ints),
        "sort$i32 of 1: 42".to_owned(),
    ];
    assert_eq!(lines[..expected.len()], expected, "{stdout}");
    assert_eq!(
        lines[expected.len()],
        "no_such_template$i64: NULL, symbol 'no_such_template$i64' is not defined by any \
         loaded module"
    );
    let refused = lines[expected.len() + 1];
    assert!(
        refused.starts_with("sum$bool: NULL, instantiating 'sum$bool' failed: "),
        "{refused}"
    );
    assert_eq!(lines.len(), expected.len() + 2, "{stdout}");
}
