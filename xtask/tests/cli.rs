//! `cargo xtask install` as its users run it: where it looks for the
//! artifacts (the target directory cargo reports, so `CARGO_TARGET_DIR`
//! counts), what it says when one is missing, and what it prints. Stand-in
//! files play the artifacts: the install of real ones is the root package's
//! `tests/install.rs`, where cargo builds them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// `xtask ARGS` with `target_dir` as the target directory and the current
/// folder.
fn xtask(target_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("CARGO", env!("CARGO"))
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(target_dir)
        .args(args)
        .output()
        .unwrap()
}

/// `xtask install --no-build --profile PROFILE --prefix PREFIX` in
/// `target_dir`.
fn install_built(target_dir: &Path, profile: &str, prefix: &str) -> Output {
    xtask(
        target_dir,
        &[
            "install",
            "--no-build",
            "--profile",
            profile,
            "--prefix",
            prefix,
        ],
    )
}

/// Stand-ins for the debug artifacts in `target_dir`, the tools executable.
fn stand_ins(target_dir: &Path) {
    let debug = target_dir.join("debug");
    std::fs::create_dir_all(&debug).unwrap();
    std::fs::write(debug.join("libsmfjit.so"), "library").unwrap();
    for tool in ["smf-inspect", "smf-build"] {
        let path = debug.join(tool);
        std::fs::write(&path, format!("#!/bin/sh\necho {tool}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn a_missing_artifact_is_named_with_the_command_that_builds_it() {
    let target = tempfile::tempdir().unwrap();
    let prefix = target.path().join("prefix");
    let t = target.path().display();
    for (profile, build) in [
        ("debug", "cargo build --locked -p smfjit"),
        ("release", "cargo build --release --locked -p smfjit"),
    ] {
        let output = install_built(target.path(), profile, prefix.to_str().unwrap());
        assert_eq!(output.status.code(), Some(1));
        assert_eq!(
            String::from_utf8(output.stderr).unwrap(),
            format!("error: '{t}/{profile}/libsmfjit.so' is missing: build it with `{build}`\n")
        );
        assert!(output.stdout.is_empty());
        assert!(!prefix.exists(), "nothing is installed");
    }
}

#[test]
fn a_tool_missing_beside_the_library_is_named() {
    let target = tempfile::tempdir().unwrap();
    stand_ins(target.path());
    std::fs::remove_file(target.path().join("debug/smf-build")).unwrap();
    let prefix = target.path().join("prefix");
    let output = install_built(target.path(), "debug", prefix.to_str().unwrap());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        format!(
            "error: '{}/debug/smf-build' is missing: build it with `cargo build --locked -p smfjit`\n",
            target.path().display()
        )
    );
}

#[test]
fn installs_the_profile_s_artifacts_from_the_target_directory_and_prints_each_file() {
    let target = tempfile::tempdir().unwrap();
    stand_ins(target.path());
    // A relative prefix, made absolute against the current folder: the
    // pkg-config file names it.
    let output = install_built(target.path(), "debug", "out");
    assert!(output.status.success(), "{output:?}");
    let prefix = target.path().join("out");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let p = prefix.display();
    let version = env!("CARGO_PKG_VERSION");
    // Each line names a file that is there, or a link and where it leads
    // (tests/install.rs pins the list); the last one counts them.
    let (mut files, mut links) = (0, 0);
    let (report, summary) = stdout.trim_end().rsplit_once('\n').unwrap();
    for line in report.lines() {
        if let Some(file) = line.strip_prefix("installed ") {
            assert!(Path::new(file).is_file(), "{line}");
            assert!(file.starts_with(&format!("{p}/")), "{line}");
            files += 1;
        } else {
            let (link, target) = line
                .strip_prefix("linked    ")
                .and_then(|link| link.split_once(" -> "))
                .unwrap_or_else(|| panic!("{line}"));
            assert_eq!(std::fs::read_link(link).unwrap(), Path::new(target));
            links += 1;
        }
    }
    assert_eq!(
        summary,
        format!("{files} files and {links} links installed under {p}")
    );
    assert_eq!(links, 2);

    // What the stand-ins hold, at the installed names, still executable.
    let lib = prefix.join("lib");
    assert_eq!(
        std::fs::read_to_string(lib.join("libsmfjit.so")).unwrap(),
        "library"
    );
    let tool = Command::new(prefix.join("bin/smf-build")).output().unwrap();
    assert_eq!(String::from_utf8(tool.stdout).unwrap(), "smf-build\n");
    let pc = std::fs::read_to_string(lib.join("pkgconfig/smfjit.pc")).unwrap();
    assert!(pc.starts_with(&format!("prefix={p}\n")), "{pc}");
    assert!(pc.contains(&format!("\nVersion: {version}\n")), "{pc}");
}
