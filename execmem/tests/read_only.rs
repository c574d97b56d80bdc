//! Published code cannot be written: the API has no way (see the
//! `compile_fail` examples in the crate documentation), and the hardware
//! refuses a write forced through a raw pointer. The forced write runs in a
//! child process, which must die of `SIGSEGV`.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use execmem::{Config, ExecMemory, PerfMap};

const CHILD: &str = "EXECMEM_TEST_WRITE_PUBLISHED";

fn force_write_into_published_code() {
    let memory = ExecMemory::new(Config {
        perf_map: PerfMap::Disabled,
        ..Config::default()
    })
    .expect("allocator");
    let function = memory.publish_function("ret", &[0xC3]).expect("published");
    let entry = function.entry().cast_mut();
    // SAFETY: none: this child process exists to attempt exactly this
    // forbidden write; the parent test passes only if it dies of SIGSEGV.
    unsafe { entry.write_volatile(0x90) };
    // Reaching this line means published code was writable.
    std::process::exit(3);
}

#[test]
fn writing_published_code_faults() {
    if std::env::var_os(CHILD).is_some() {
        force_write_into_published_code();
    }
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "writing_published_code_faults",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("child ran");
    assert_eq!(
        child.status.signal(),
        Some(libc::SIGSEGV),
        "child status {:?}",
        child.status
    );
}
