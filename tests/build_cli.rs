//! `smf-build` as a user runs it: good manifests build, bad ones give one
//! line naming the file and what is wrong.

use std::path::Path;
use std::process::{Command, Output};

fn build(manifest: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smf-build"))
        .arg(manifest)
        .arg("-o")
        .arg(out)
        .output()
        .expect("smf-build runs")
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const TEMPLATES: &str =
    "fn twice<T: int>(%x: T) -> T {\nentry:\n    %y = add T %x, %x\n    ret %y\n}\n";

fn error_of(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn builds_a_module_that_inspects_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.tir", TEMPLATES);
    let manifest = write(
        dir.path(),
        "m.sdn",
        "module:\n    name: m\nsources = [t.tir]\npossible |mangled_name, required_by, can_defer|\n    twice$u16, main, true\n",
    );
    let out_path = dir.path().join("m.smf");
    let out = build(&manifest, &out_path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&out_path).unwrap();
    let module = smf::Module::parse(&bytes).unwrap();
    assert!(module.symbol_by_name("twice").unwrap().is_template());
    let note = sdn::note::Note::parse(module.note_sdn().unwrap()).unwrap();
    let row = note.possible("twice$u16").unwrap();
    assert_eq!(
        (row.template.as_str(), row.type_args.0.as_slice()),
        ("twice", &["u16".to_owned()][..])
    );
    assert!(!dir.path().join("m.smf.partial").exists());
}

#[test]
fn manifest_errors_name_the_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "m.sdn",
        "module:\n    name: m\n    colour: blue\n",
    );
    let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
    assert!(
        err.starts_with(&format!("error: '{}':", manifest.display())),
        "{err}"
    );
    assert!(err.contains("colour"), "{err}");
    assert!(!dir.path().join("o.smf").exists());
}

#[test]
fn a_possible_row_that_does_not_instantiate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.tir", TEMPLATES);
    for (row, why) in [
        ("twice$f64, main, true", "does not satisfy `t: int`"),
        ("thrice$i32, main, true", "thrice"),
    ] {
        let manifest = write(
            dir.path(),
            "m.sdn",
            &format!(
                "module:\n    name: m\nsources = [t.tir]\npossible |mangled_name, required_by, can_defer|\n    {row}\n"
            ),
        );
        let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
        assert!(err.contains("possible row 1"), "{err}");
        assert!(err.to_lowercase().contains(why), "{err}");
    }
}

#[test]
fn source_errors_name_the_source() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.tir",
        "fn broken<T: num>(%x: T) -> T {\nentry:\n    ret %nope\n}\n",
    );
    let manifest = write(
        dir.path(),
        "m.sdn",
        "module:\n    name: m\nsources = [bad.tir]\n",
    );
    let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
    assert!(err.contains("bad.tir"), "{err}");
    let missing = write(
        dir.path(),
        "m2.sdn",
        "module:\n    name: m\nsources = [missing.tir]\n",
    );
    let err = error_of(&build(&missing, &dir.path().join("o.smf")));
    assert!(err.contains("missing.tir"), "{err}");
}

#[test]
fn ahead_of_time_compilation_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.tir", TEMPLATES);
    let manifest = write(
        dir.path(),
        "m.sdn",
        "module:\n    name: m\nsources = [t.tir]\ncompile = [twice$i32]\n",
    );
    let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
    assert!(err.contains("ahead-of-time"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_smf-build"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_smf-build"))
        .arg("m.sdn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
