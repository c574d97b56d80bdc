//! What happens where the kernel refuses executable memory, simulated in a
//! child process each (the restrictions cannot be lifted again):
//!
//! - Memory-Deny-Write-Execute (`PR_SET_MDWE`, Linux 6.3+) refuses to make
//!   a once-writable mapping executable — the same rule as PaX MPROTECT and
//!   SELinux without `execmem`. Publishing with `mprotect` must fail with a
//!   clear error and leave nothing mapped; dual mapping and file writes,
//!   whose executable views never were writable, keep working.
//! - A seccomp filter refusing `memfd_create` stands for kernels and
//!   sandboxes without memory files: asking for dual mapping or file
//!   writes must fall back to `mprotect`.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use execmem::{Error, Stats, Strategy};

/// Runs `body` in a child process (this test binary re-run on `test` alone)
/// and checks that it succeeded; in the child, runs `body` and exits.
fn in_child(test: &str, body: fn()) {
    if common::is_child() {
        body();
        return;
    }
    let child = common::rerun_in_child(test);
    assert!(
        child.status.success(),
        "child failed ({:?}):\n{}{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
}

/// `mov eax, 42 ; ret`
const RETURN_42: [u8; 6] = [0xB8, 42, 0, 0, 0, 0xC3];

fn call(entry: *const u8) -> i32 {
    // SAFETY: every caller passes the entry of RETURN_42, which implements
    // `extern "C" fn() -> i32`, while its code is alive.
    let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(entry) };
    f()
}

#[test]
fn memory_deny_write_execute_refuses_mprotect_but_not_memory_files() {
    in_child(
        "memory_deny_write_execute_refuses_mprotect_but_not_memory_files",
        || {
            // SAFETY: plain prctl; it only restricts this process.
            let status =
                unsafe { libc::prctl(libc::PR_SET_MDWE, libc::PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) };
            assert_eq!(
                status,
                0,
                "PR_SET_MDWE: {}",
                std::io::Error::last_os_error()
            );

            let memory = common::memory_with(Strategy::Mprotect);
            let mut batch = memory.batch();
            let r = batch
                .reserve("refused", RETURN_42.len(), 16)
                .expect("staging works");
            batch.write(&r, 0, &RETURN_42).expect("fits");
            match batch.publish() {
                Err(Error::Protect {
                    address,
                    len,
                    source,
                }) => {
                    assert_eq!(address, r.address());
                    assert_eq!(len, memory.page_size());
                    assert_eq!(source.raw_os_error(), Some(libc::EACCES));
                }
                other => panic!("publication must be refused, got {other:?}"),
            }
            // Nothing is left mapped, nothing counts as published.
            assert_eq!(memory.stats(), Stats::default());
            assert_eq!(memory.protection_of(r.address()), None);
            let error = memory
                .publish_function("refused", &RETURN_42)
                .expect_err("refused");
            assert!(error.to_string().contains("read-execute"), "{error}");

            for strategy in [Strategy::DualMapping, Strategy::FileWrite] {
                let memory = common::memory_with(strategy);
                assert_eq!(memory.strategy(), strategy);
                let function = memory
                    .publish_function("memory file", &RETURN_42)
                    .expect("a memory file's view needs no exec gain");
                assert_eq!(call(function.entry()), 42);
            }
        },
    );
}

#[test]
fn without_memory_files_both_file_strategies_fall_back_to_mprotect() {
    in_child(
        "without_memory_files_both_file_strategies_fall_back_to_mprotect",
        || {
            refuse_memfd_create();
            // SAFETY: a plain system call with a valid string.
            let fd = unsafe { libc::memfd_create(c"probe".as_ptr(), libc::MFD_CLOEXEC) };
            assert_eq!(fd, -1, "the filter refuses memory files");

            for strategy in [Strategy::DualMapping, Strategy::FileWrite] {
                let memory = common::memory_with(strategy);
                assert_eq!(memory.strategy(), Strategy::Mprotect);
                let function = memory
                    .publish_function("fallback", &RETURN_42)
                    .expect("mprotect works");
                assert_eq!(call(function.entry()), 42);
                assert_eq!(memory.stats().protection_changes, 1);
            }
        },
    );
}

/// Installs a seccomp filter on this thread that fails `memfd_create` with
/// `EPERM` and allows everything else.
fn refuse_memfd_create() {
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    // Offsets in `struct seccomp_data`: nr at 0, arch at 4.
    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut filter = [
        statement(load, 4),
        jump(AUDIT_ARCH_X86_64, 1, 0),
        statement(ret, libc::SECCOMP_RET_ALLOW),
        statement(load, 0),
        jump(libc::SYS_memfd_create as u32, 0, 1),
        statement(ret, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        statement(ret, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: plain prctl calls; the program points at a live filter for
    // the duration of the call, and the kernel copies it.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}
