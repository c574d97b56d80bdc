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
    let mut batch = memory.batch();
    let sum = batch.reserve("sum$f32", 100, 16).expect("reserved");
    let push = batch.reserve("Vec$i64::push", 37, 16).expect("reserved");
    let code = batch.publish().expect("published");
    let single = memory
        .publish_function("perf_map_single", &[0xC3])
        .expect("published");

    let text = perf_map_text();
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        format!("{:x} 64 sum$f32", sum.address()),
        format!("{:x} 25 Vec$i64::push", push.address()),
        format!("{:x} 1 perf_map_single", single.reservation().address()),
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
    let function = memory
        .publish_function("perf_map_disabled_function", &[0xC3])
        .expect("published");
    let address = format!("{:x} ", function.reservation().address());
    let text = perf_map_text();
    assert!(!text.contains("perf_map_disabled_function"));
    assert!(!text.lines().any(|line| line.starts_with(&address)));
}
