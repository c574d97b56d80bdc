//! Implicit null checks: a load or store of generated code through a null
//! address traps by faulting, not by testing the address first.
//!
//! The IR traps `NullPointer` when the address a load or store computes is
//! 0. Page 0 is never mapped, so such an access faults with the faulting
//! address 0, and any other fault of the same instruction is an access the
//! explicit test would have let through as well (it tests for 0 only). A
//! `SIGSEGV` handler, installed once per process by the first
//! [`TrapRuntime`](super::TrapRuntime), recognises a fault at address 0
//! whose instruction lies in generated code ([`execmem::is_code`]) and
//! resumes the thread in the runtime's trap handler with the `NullPointer`
//! kind, exactly where the explicit test's branch would have led: the
//! trap reaches the innermost guarded call, or aborts with its message
//! outside one. Every other fault goes to the handler that was installed
//! before (a host's own, the standard library's stack-overflow report, or
//! the default action), so a host that handles `SIGSEGV` itself keeps
//! working.
//!
//! Page 0 must stay unmapped for this to hold. The kernel refuses it to
//! processes without `CAP_SYS_RAWIO` (`vm.mmap_min_addr`); a process that
//! may map it gets it mapped here with no access, and one that already has
//! it mapped keeps the explicit tests ([`install`] answers `false`).

use std::ffi::c_void;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_int, siginfo_t};

/// The trap handler a null fault resumes in.
static TRAP_HANDLER: AtomicUsize = AtomicUsize::new(0);
/// The disposition of `SIGSEGV` before ours, which every other fault
/// goes to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
/// Whether null faults are caught, decided once per process.
static INSTALLED: OnceLock<bool> = OnceLock::new();
/// The published code holding the trap handler, kept for the process's
/// life since the fault handler may resume in it at any time.
static KEPT: OnceLock<execmem::PublishedCode> = OnceLock::new();

/// Installs the fault handler (once per process; later calls return the
/// first answer) with `trap_handler`, found in `code`, as where null
/// faults resume. Whether null faults of generated code are now caught.
pub(crate) fn install(trap_handler: usize, code: &execmem::PublishedCode) -> bool {
    *INSTALLED.get_or_init(|| {
        if !page_zero_is_free() {
            return false;
        }
        let _ = KEPT.set(code.clone());
        TRAP_HANDLER.store(trap_handler, Ordering::Release);
        // SAFETY: sigaction with a null new action only reads the current
        // one into `previous`, a valid out-pointer.
        let previous = unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGSEGV, std::ptr::null(), &raw mut previous) != 0 {
                return false;
            }
            previous
        };
        let _ = PREVIOUS.set(previous);
        // SAFETY: `on_fault` has the SA_SIGINFO signature; the action is
        // fully initialised (zeroed, then an empty mask).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&raw mut action.sa_mask);
            libc::sigaction(libc::SIGSEGV, &raw const action, std::ptr::null_mut()) == 0
        }
    })
}

/// Whether an access to address 0 is sure to fault in this process: page
/// 0 cannot be mapped (`EPERM`), or it can and is now mapped here without
/// access, for good.
fn page_zero_is_free() -> bool {
    // SAFETY: an anonymous mapping that replaces nothing (MAP_FIXED_NOREPLACE).
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        let errno = std::io::Error::last_os_error().raw_os_error();
        // EEXIST: something is mapped there already.
        return matches!(errno, Some(libc::EPERM | libc::EACCES));
    }
    if page.is_null() {
        return true;
    }
    // A kernel that took the address as a hint mapped it elsewhere: what
    // lies at 0 is unknown.
    // SAFETY: the mapping just made, of that length.
    unsafe { libc::munmap(page, 4096) };
    false
}

/// The `SIGSEGV` handler.
extern "C" fn on_fault(signal: c_int, info: *mut siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler.
    unsafe {
        // A fault the kernel raised (`SEGV_MAPERR`, `SEGV_ACCERR`), not a
        // `SIGSEGV` sent by a process, whose address field means nothing.
        let from_kernel = (*info).si_code > 0;
        let address = (*info).si_addr() as usize;
        let context = context.cast::<libc::ucontext_t>();
        let registers = &mut (*context).uc_mcontext.gregs;
        let pc = registers[libc::REG_RIP as usize] as usize;
        let trap_handler = TRAP_HANDLER.load(Ordering::Acquire);
        if from_kernel && address == 0 && trap_handler != 0 && execmem::is_code(pc) {
            // Resume as if the faulting instruction called the trap
            // handler with (NullPointer, 0): below the red zone, with the
            // stack aligned as at a call's entry. The handler abandons the
            // generated frames, so nothing returns here.
            let sp = registers[libc::REG_RSP as usize] as u64;
            let sp = ((sp - 128) & !15) - 8;
            registers[libc::REG_RSP as usize] = sp as i64;
            registers[libc::REG_RDI as usize] = i64::from(super::TRAP_NULL_POINTER);
            registers[libc::REG_RSI as usize] = 0;
            registers[libc::REG_RIP as usize] = trap_handler as i64;
            return;
        }
        chain(signal, info, context.cast());
    }
}

/// Hands a fault that is not ours to the disposition installed before.
///
/// # Safety
///
/// The arguments are those the kernel gave [`on_fault`].
unsafe fn chain(signal: c_int, info: *mut siginfo_t, context: *mut c_void) {
    type Action = extern "C" fn(c_int, *mut siginfo_t, *mut c_void);
    type Handler = extern "C" fn(c_int);
    let Some(previous) = PREVIOUS.get() else {
        return;
    };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // The default action: restored, the instruction runs again and
        // faults as it would have without us (a fault cannot be ignored).
        // SAFETY: the disposition read at installation.
        unsafe { libc::sigaction(signal, previous, std::ptr::null_mut()) };
        return;
    }
    // SAFETY: the previous handler's address, of the signature its flags
    // declare; it is called as the kernel would have called it.
    unsafe {
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            std::mem::transmute::<usize, Action>(handler)(signal, info, context);
        } else {
            std::mem::transmute::<usize, Handler>(handler)(signal);
        }
    }
}
