//! Debuggers and profilers see generated code: a C program that sorts
//! through the C interface is run under `gdb` (GDB's JIT interface, with
//! `SMFJIT_DEBUG=1`), under `perf record` (the perf map, with
//! `SMFJIT_PERF_MAP=1`), and with `SMFJIT_JITDUMP=1`, whose file is read
//! back here record by record.

mod common;

use std::path::Path;
use std::process::Command;

use common::{command, compile_c, require_tool, root};

fn collections() -> std::path::PathBuf {
    root().join("tests/fixtures/collections.smf")
}

#[test]
fn gdb_stops_in_generated_code_and_backtraces_through_it_to_main() {
    check_gdb_backtrace("i32");
}

#[test]
fn gdb_stops_in_code_the_module_compiled_ahead_of_time_and_names_its_functions() {
    // `sort$i64` and its callees are in collections.smf's code section,
    // published as one reservation and named function by function.
    check_gdb_backtrace("i64");
}

/// Runs the program under `gdb -batch` with a pending breakpoint on
/// `insertion_sort$TYPE` and checks the backtrace from there.
fn check_gdb_backtrace(ty: &str) {
    require_tool("gdb", "Debian package `gdb`; .ci/run installs it");
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("debug_sort", dir.path());
    let insertion = format!("insertion_sort${ty}");
    let output = Command::new("gdb")
        .env_remove("LD_LIBRARY_PATH")
        .env("SMFJIT_DEBUG", "1")
        .args(["-nx", "-batch"])
        .args(["-ex", "set breakpoint pending on"])
        .args(["-ex", &format!("break {insertion}")])
        .args(["-ex", "run"])
        .args(["-ex", "bt"])
        .arg("--args")
        .arg(&program)
        .arg(collections())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let log = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("Breakpoint 1, ") && stdout.contains(&insertion),
        "the breakpoint is hit: {log}"
    );
    let frames: Vec<&str> = stdout.lines().filter(|l| l.starts_with('#')).collect();
    let position = |name: &str| {
        frames
            .iter()
            .position(|frame| frame.contains(&format!(" {name} (")))
            .unwrap_or_else(|| panic!("bt lists {name}: {log}"))
    };
    let quick = position(&format!("quicksort${ty}"));
    let sort = position(&format!("sort${ty}"));
    let main = position("main");
    assert_eq!(position(&insertion), 0, "{log}");
    assert!(0 < quick && quick < sort && sort < main, "{log}");
    assert!(
        !frames[..main].iter().any(|frame| frame.contains("?? ")),
        "no anonymous frame between the breakpoint and main: {log}"
    );
}

/// Why this process may not sample itself with perf, if the kernel says
/// so: `perf_event_paranoid` above 2 forbids unprivileged users any event.
fn perf_refused() -> Option<String> {
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").ok()?;
    let level: i32 = paranoid.trim().parse().ok()?;
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    (level > 2 && !root).then(|| format!("kernel.perf_event_paranoid is {level}"))
}

#[test]
fn perf_report_names_the_generated_function_a_program_spins_in() {
    require_tool("perf", "Debian package `linux-perf`; .ci/run installs it");
    if let Some(reason) = perf_refused() {
        eprintln!("SKIPPED: perf events are refused: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("debug_sort", dir.path());
    // The perf map alone, then the jitdump through `perf inject --jit`.
    let perf_map = dir.path().join("perf.data");
    if !perf_record(&program, &perf_map, ("SMFJIT_PERF_MAP", "1"), dir.path()) {
        return;
    }
    check_report(&perf_map, "with the perf map");
    let jitdump = dir.path().join("jitdump.data");
    if !perf_record(&program, &jitdump, ("SMFJIT_JITDUMP", "1"), dir.path()) {
        return;
    }
    let injected = dir.path().join("injected.data");
    let inject = Command::new("perf")
        .args(["inject", "--jit", "-i"])
        .arg(&jitdump)
        .arg("-o")
        .arg(&injected)
        .output()
        .unwrap();
    assert!(
        inject.status.success(),
        "perf inject --jit: {}",
        String::from_utf8_lossy(&inject.stderr)
    );
    check_report(&injected, "with the jitdump injected");
}

/// Records `program` spinning in the generated sort with `variable` set;
/// false (after saying why) when the kernel refuses perf events.
fn perf_record(program: &Path, data: &Path, variable: (&str, &str), dir: &Path) -> bool {
    let record = Command::new("perf")
        .env_remove("LD_LIBRARY_PATH")
        .env(variable.0, variable.1)
        .env("JITDUMPDIR", dir)
        .args(["record", "-q", "-e", "cpu-clock", "-k", "1", "-o"])
        .arg(data)
        .arg(program)
        .arg(collections())
        .arg("spin")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&record.stderr);
    if !record.status.success() && stderr.contains("perf_event_paranoid") {
        eprintln!("SKIPPED: the kernel refuses perf events: {stderr}");
        return false;
    }
    assert!(record.status.success(), "perf record failed: {stderr}");
    true
}

fn check_report(data: &Path, how: &str) {
    let report = Command::new("perf")
        .args(["report", "--stdio", "--sort", "symbol", "-i"])
        .arg(data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.status.success(),
        "{how}: {}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(
        text.contains("insertion_sort$i32") && text.contains("quicksort$i32"),
        "perf report names the generated sort {how}: {text}"
    );
}

/// A little-endian reader over the jitdump file that fails the test on a
/// short read.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let slice = self
            .bytes
            .get(self.at..self.at + n)
            .unwrap_or_else(|| panic!("{n} bytes at {} past the end", self.at));
        self.at += n;
        slice
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().unwrap())
    }
}

#[test]
fn jitdump_file_has_the_header_and_a_code_load_record_per_function() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("debug_sort", dir.path());
    let dumps = dir.path().join("dumps");
    std::fs::create_dir(&dumps).unwrap();
    let output = command(&program)
        .env("SMFJIT_JITDUMP", "1")
        .env("JITDUMPDIR", &dumps)
        .arg(collections())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let files: Vec<_> = std::fs::read_dir(&dumps).unwrap().collect();
    assert_eq!(files.len(), 1, "one jit-PID.dump");
    let path = files[0].as_ref().unwrap().path();
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let pid: u32 = name
        .strip_prefix("jit-")
        .and_then(|n| n.strip_suffix(".dump"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name} is jit-PID.dump"));
    check_jitdump(&std::fs::read(&path).unwrap(), pid);
}

fn check_jitdump(bytes: &[u8], pid: u32) {
    let mut c = Cursor { bytes, at: 0 };
    assert_eq!(c.u32(), 0x4A69_5444, "magic");
    assert_eq!(c.u32(), 1, "version");
    assert_eq!(c.u32(), 40, "header size");
    assert_eq!(c.u32(), 62, "EM_X86_64");
    c.u32();
    assert_eq!(c.u32(), pid);
    let start = c.u64();
    assert_eq!(c.u64(), 0, "flags");
    let mut names = Vec::new();
    let mut last = start;
    let mut index = 0;
    while c.at < bytes.len() {
        let record = c.at;
        assert_eq!(c.u32(), 0, "JIT_CODE_LOAD");
        let total = c.u32() as usize;
        let stamp = c.u64();
        assert!(stamp >= last, "timestamps are monotonic");
        last = stamp;
        assert_eq!(c.u32(), pid);
        c.u32();
        let vma = c.u64();
        assert_eq!(c.u64(), vma, "code_addr is vma");
        let size = c.u64() as usize;
        assert_eq!(c.u64(), index, "code_index counts loads");
        index += 1;
        let name_len = bytes[c.at..].iter().position(|&b| b == 0).unwrap();
        names.push(String::from_utf8(c.take(name_len).to_vec()).unwrap());
        c.take(1);
        assert!(size > 0, "{} has code", names[names.len() - 1]);
        c.take(size);
        assert_eq!(c.at - record, total, "total_size covers the record");
    }
    for name in ["sort$i32", "quicksort$i32", "insertion_sort$i32"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
}
