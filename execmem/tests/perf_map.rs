//! The perf map lists each published function as `START SIZE name` in
//! `/tmp/perf-PID.map` when enabled, and nothing when disabled.
#![cfg(target_os = "linux")]

use execmem::{Config, ExecMemory, PerfMap};

fn memory(perf_map: PerfMap) -> ExecMemory {
    ExecMemory::new(Config {
        perf_map,
        ..Config::default()
    })
    .expect("allocator")
}

/// A suffix unique to this run: the perf map of an earlier process with the
/// same id may still hold lines, so names must not repeat across runs.
fn run_suffix() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    format!("{:x}", since_epoch.as_nanos())
}

fn perf_map_text() -> String {
    std::fs::read_to_string(execmem::perf_map_path()).unwrap_or_default()
}

#[test]
fn enabled_perf_map_lists_every_published_function() {
    let memory = memory(PerfMap::Enabled);
    assert!(memory.perf_map_enabled());
    assert_eq!(
        execmem::perf_map_path(),
        std::path::PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()))
    );
    let run = run_suffix();
    let (sum_name, push_name, single_name) = (
        format!("sum$f32#{run}"),
        format!("Vec$i64::push#{run}"),
        format!("single#{run}"),
    );
    let mut batch = memory.batch();
    let sum = batch.reserve(&sum_name, 100, 16).expect("reserved");
    let push = batch.reserve(&push_name, 37, 16).expect("reserved");
    let code = batch.publish().expect("published");
    let single = memory
        .publish_function(&single_name, &[0xC3])
        .expect("published");

    let text = perf_map_text();
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        format!("{:x} 64 {sum_name}", sum.address()),
        format!("{:x} 25 {push_name}", push.address()),
        format!("{:x} 1 {single_name}", single.reservation().address()),
    ] {
        assert_eq!(
            lines.iter().filter(|line| **line == expected).count(),
            1,
            "{expected:?} appears once in {text}"
        );
    }
    assert_eq!(memory.stats().perf_map_failures, 0);
    drop(code);
}

#[test]
fn disabled_perf_map_lists_nothing() {
    let memory = memory(PerfMap::Disabled);
    assert!(!memory.perf_map_enabled());
    let name = format!("disabled#{}", run_suffix());
    let function = memory.publish_function(&name, &[0xC3]).expect("published");
    assert_eq!(function.bytes(), &[0xC3]);
    // Addresses are reused after release (the other test releases code
    // concurrently), so only the unique name tells this function apart.
    assert!(!perf_map_text().contains(&name));
}
