//! Published code cannot be written: the API has no way (see the
//! `compile_fail` examples in the crate documentation), and the hardware
//! refuses a write forced through a raw pointer. The forced write runs in a
//! child process, which must die of `SIGSEGV`.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use std::os::unix::process::ExitStatusExt;

use execmem::Strategy;

fn force_write_into_published_code(strategy: Strategy) {
    let memory = common::memory_with(strategy);
    let function = memory.publish_function("ret", &[0xC3]).expect("published");
    let entry = function.entry().cast_mut();
    // SAFETY: none: this child process exists to attempt exactly this
    // forbidden write; the parent test passes only if it dies of SIGSEGV.
    unsafe { entry.write_volatile(0x90) };
    // Reaching this line means published code was writable.
    std::process::exit(3);
}

/// Runs `test` again in a child process told to force the write with
/// `strategy`, and checks the child died of `SIGSEGV`.
fn assert_child_faults(test: &str, strategy: Strategy) {
    if common::is_child() {
        force_write_into_published_code(strategy);
    }
    let child = common::rerun_in_child(test);
    assert_eq!(
        child.status.signal(),
        Some(libc::SIGSEGV),
        "child status {:?}",
        child.status
    );
}

#[test]
fn writing_published_code_faults() {
    assert_child_faults("writing_published_code_faults", Strategy::Mprotect);
}

/// Under dual mapping the entry pointer lies in the read-execute view; the
/// writable view's address is never handed out.
#[test]
fn writing_dual_mapped_code_through_its_entry_faults() {
    assert_child_faults(
        "writing_dual_mapped_code_through_its_entry_faults",
        Strategy::DualMapping,
    );
}

/// Under file writes the read-execute view is the only mapping of the code.
#[test]
fn writing_file_written_code_through_its_entry_faults() {
    assert_child_faults(
        "writing_file_written_code_through_its_entry_faults",
        Strategy::FileWrite,
    );
}
