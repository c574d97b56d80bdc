//! The `sdn` tool, run as a user would, with exact output.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

const CONFIG: &str = "# service\nserver:\n    host: 0.0.0.0\n    port: 8080\nusers |id, name|\n    1, Alice Chen\n    2, \"Bob, Jr.\"\nxy: table{f64, f64} = [(1, 2.5)]\n";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn sdn(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sdn"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn check_reports_ok_or_the_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = file(&dir, "good.sdn", CONFIG);
    let run = sdn(&["check", &good], "");
    assert_eq!(
        (run.code, run.stdout, run.stderr),
        (0, format!("'{good}': ok\n"), String::new())
    );

    let bad = file(&dir, "bad.sdn", "a: 1\nb = {x: 1\n");
    let run = sdn(&["check", &bad], "");
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        format!(
            "error: '{bad}':2:5: unterminated inline dict; add the closing '}}' on the same line\n"
        )
    );
}

#[test]
fn to_json_uses_the_table_mapping() {
    let run = sdn(&["to-json", "--compact", "-"], CONFIG);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "{\"server\":{\"host\":\"0.0.0.0\",\"port\":8080},\
         \"users\":{\"fields\":[\"id\",\"name\"],\"rows\":[[1,\"Alice Chen\"],[2,\"Bob, Jr.\"]]},\
         \"xy\":{\"types\":[\"f64\",\"f64\"],\"rows\":[[1.0,2.5]]}}\n"
    );
    let pretty = sdn(&["to-json", "-"], "a = [1]\n");
    assert_eq!(pretty.stdout, "{\n  \"a\": [\n    1\n  ]\n}\n");
}

#[test]
fn from_json_writes_sdn_and_rebuilds_tables() {
    let json = sdn(&["to-json", "-"], CONFIG).stdout;
    let run = sdn(&["from-json", "-"], &json);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "server:\n    host: 0.0.0.0\n    port: 8080\nusers |id, name|\n    1, Alice Chen\n    2, \"Bob, Jr.\"\nxy: table{f64, f64}\n    1.0, 2.5\n"
    );
    let run = sdn(&["from-json", "-"], "{\"a\": [1,\n");
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "error: '-':2:1: EOF while parsing a value\n")
    );
    let run = sdn(&["from-json", "-"], "[1]");
    assert_eq!(
        run.stderr,
        "error: '-': the top level is an array; it must be an object (an SDN document is a dict)\n"
    );
    let run = sdn(&["from-json", "-"], "{\"n\": 18446744073709551615}");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: '-':1:26: integer 18446744073709551615 does not fit in a signed 64-bit integer\n"
    );
}

#[test]
fn fmt_prints_checks_and_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "c.sdn", CONFIG);
    let canonical = "server:\n    host: 0.0.0.0\n    port: 8080\nusers |id, name|\n    1, Alice Chen\n    2, \"Bob, Jr.\"\nxy: table{f64, f64}\n    1.0, 2.5\n";
    assert_eq!(sdn(&["fmt", &path], "").stdout, canonical);

    let run = sdn(&["fmt", "--check", &path], "");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        format!("error: '{path}': not in canonical form; run 'sdn fmt --write {path}'\n")
    );
    let run = sdn(&["fmt", "--write", &path], "");
    assert_eq!((run.code, run.stdout.as_str()), (0, ""));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), canonical);
    let run = sdn(&["fmt", "--check", &path], "");
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
}

#[test]
fn get_follows_dotted_paths() {
    let get = |path: &str| sdn(&["get", "-", path], CONFIG);
    assert_eq!(get("server.port").stdout, "8080\n");
    assert_eq!(get("server.host").stdout, "0.0.0.0\n");
    assert_eq!(get("users.1.name").stdout, "Bob, Jr.\n");
    assert_eq!(get("xy.0.0").stdout, "1.0\n");
    assert_eq!(
        get("users.0").stdout,
        "{\n  \"id\": 1,\n  \"name\": \"Alice Chen\"\n}\n"
    );
    let run = get("users.2.name");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: '-': no value at 'users.2.name': 'users' has 2 items; index 2 is out of range\n"
    );
}

#[test]
fn usage_errors_exit_2_and_missing_files_exit_1() {
    let run = sdn(&["bogus"], "");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("error: unrecognized subcommand 'bogus'"),
        "{}",
        run.stderr
    );
    assert_eq!(sdn(&["get", "-"], "").code, 2);
    assert_eq!(sdn(&["fmt", "--write", "--check", "-"], "").code, 2);
    let run = sdn(&["check", "/nonexistent/x.sdn"], "");
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "error: '/nonexistent/x.sdn': cannot read: No such file or directory (os error 2)\n"
    );
    let help = sdn(&["--help"], "");
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("to-json"));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = String::from("t |a, b|\n");
    for i in 0..100_000 {
        big.push_str(&format!("    {i}, row number {i}\n"));
    }
    let path = file(&dir, "big.sdn", &big);
    let mut child = Command::new(env!("CARGO_BIN_EXE_sdn"))
        .args(["to-json", &path])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is gone; the tool must finish quietly.
    let out = child.wait_with_output().unwrap();
    assert_eq!(first, *b"{");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8(out.stderr).unwrap(), "");
}
