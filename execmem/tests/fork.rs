//! A forked child keeps running inherited code and publishes into fresh
//! memory, never into the memory-file region it shares with its parent.
//! One test in its own binary: forking a process with other test threads
//! running could leave their locks held in the child.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod common;

use execmem::Strategy;

/// `mov eax, value ; ret`
fn returns(value: u8) -> [u8; 6] {
    [0xB8, value, 0, 0, 0, 0xC3]
}

fn call(entry: *const u8) -> i32 {
    // SAFETY: every caller passes the entry of `returns(..)` code, which
    // implements `extern "C" fn() -> i32`, while that code is alive.
    let f: extern "C" fn() -> i32 = unsafe { std::mem::transmute(entry) };
    f()
}

#[test]
fn forked_child_publishes_into_its_own_region() {
    for strategy in common::STRATEGIES {
        let memory = common::memory_with(strategy);
        let before = memory
            .publish_function("before", &returns(1))
            .expect("published");
        // SAFETY: fork in a process whose only other thread (the test
        // harness's main thread) is blocked waiting for this test; the
        // child only publishes, calls and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let child = memory
                .publish_function("child", &returns(2))
                .expect("published");
            let fresh = !before.code().contains(child.reservation().address());
            let ok = fresh && call(child.entry()) == 2 && call(before.entry()) == 1;
            // SAFETY: leaves the child at once, skipping the harness.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let parent = memory
            .publish_function("parent", &returns(3))
            .expect("published");
        let mut status = 0;
        // SAFETY: waits for the child created above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child status {status:#x} under {strategy:?}"
        );
        // The parent's code is intact after the child published.
        assert_eq!(call(parent.entry()), 3);
        assert_eq!(call(before.entry()), 1);
        if memory.strategy() != Strategy::Mprotect {
            // The parent still fills the region it opened before the fork.
            assert!(before.code().contains(parent.reservation().address()));
        }
    }
}
