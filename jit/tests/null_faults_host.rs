//! A host that handles `SIGSEGV` itself, installed before the first trap
//! runtime, keeps working: faults that are not null accesses of generated
//! code reach its handler, while those are still `NullPointer` traps.
//! (Its own test binary: signal dispositions are the process's.)
#![allow(unsafe_code)]

mod backend_support;
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use backend_support::{Jit, Machine, Oracle};
use jit::TrapKind;
use jit::interp::Value;

/// The page the host's handler makes readable when it faults.
static HOST_PAGE: AtomicUsize = AtomicUsize::new(0);
/// Faults the host's handler resolved.
static HOST_FAULTS: AtomicUsize = AtomicUsize::new(0);

/// The host's handler: a fault on its page makes the page readable (a
/// lazily committed mapping, as allocators and runtimes have); anything
/// else gets the default action.
extern "C" fn host_handler(signal: i32, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel's siginfo; mprotect and sigaction are
    // async-signal-safe.
    unsafe {
        let address = (*info).si_addr() as usize;
        let page = HOST_PAGE.load(Ordering::SeqCst);
        if page != 0 && (page..page + 4096).contains(&address) {
            libc::mprotect(page as *mut libc::c_void, 4096, libc::PROT_READ);
            HOST_FAULTS.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(signal, &raw const default, std::ptr::null_mut());
    }
}

/// A fresh page without access, registered as the host's.
fn host_page() -> usize {
    // SAFETY: a new anonymous mapping.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    HOST_PAGE.store(page as usize, Ordering::SeqCst);
    page as usize
}

/// Reads the first word of `page` (faulting into the host's handler).
fn touch(page: usize) -> u64 {
    // SAFETY: the page is mapped; the host's handler makes it readable
    // when the read faults, and the read is then retried.
    unsafe { std::ptr::read_volatile(page as *const u64) }
}

const DEREF: &str = "
fn deref(%p: ptr<i64>, %i: i64) -> i64 {
entry:
    %v = load i64 %p[%i]
    ret %v
}
";

#[test]
fn a_host_sigsegv_handler_installed_first_keeps_working() {
    // SAFETY: installs a handler of the SA_SIGINFO signature.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = host_handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&raw mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGSEGV, &raw const action, std::ptr::null_mut()),
            0
        );
    }
    assert_eq!(touch(host_page()), 0, "the host's handler works alone");
    assert_eq!(HOST_FAULTS.load(Ordering::SeqCst), 1);

    // The first trap runtime installs the loader's handler over the host's.
    let lib = jit::text::parse_library(DEREF).expect("parses");
    jit::verify::verify_library(&lib).expect("verifies");
    let machine = Machine::new();
    assert!(machine.runtime.catches_null_faults());
    let jit = Jit::with_machine(&lib, std::rc::Rc::new(machine));
    let oracle = Oracle::new(&lib);
    let null = [Value::Ptr(0), Value::I64(0)];
    assert_eq!(oracle.call("deref", &null), Err(TrapKind::NullPointer));
    assert_eq!(jit.call("deref", &null), Err(TrapKind::NullPointer));

    // A fault outside generated code still reaches the host.
    assert_eq!(touch(host_page()), 0, "the host's handler works after ours");
    assert_eq!(HOST_FAULTS.load(Ordering::SeqCst), 2);
    // And a null access of generated code is still a trap, again.
    assert_eq!(jit.call("deref", &null), Err(TrapKind::NullPointer));
    let mut x = [3i64, 4];
    let p = Value::Ptr(x.as_mut_ptr() as usize as u64);
    assert_eq!(
        jit.call("deref", &[p, Value::I64(1)]),
        oracle.call("deref", &[p, Value::I64(1)])
    );
    assert_eq!(
        HOST_FAULTS.load(Ordering::SeqCst),
        2,
        "null traps are not the host's"
    );
}
