//! What the host architecture asks of a JIT beyond page protections: making
//! the instruction stream see freshly written bytes, and the byte that fills
//! every executable byte no function occupies.

/// Byte used for padding between functions and after the last one, and for
/// the unwritten part of a reservation: `int3` on x86, so a stray jump into
/// padding traps instead of running whatever the bytes decode to.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
pub(crate) const TRAP_FILL: u8 = 0xCC;

/// Byte used for padding: on AArch64 the all-zero word is `udf #0`, a
/// permanently undefined instruction, so zero filling traps.
#[cfg(target_arch = "aarch64")]
pub(crate) const TRAP_FILL: u8 = 0x00;

#[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
compile_error!(
    "execmem implements instruction-cache maintenance for x86, x86-64 and AArch64 only; \
     add the architecture's sequence to arch.rs before publishing code on it"
);

/// Makes instruction fetch coherent with the data writes made to
/// `start .. start + len` before the range is published.
///
/// x86 and x86-64 keep instruction caches coherent with data writes in
/// hardware (the architecture snoops self- and cross-modifying code), so
/// there is nothing to flush. The remaining cross-modifying-code rule — a
/// core must not have prefetched the old bytes — holds because no core can
/// have fetched from the range before publication: it was not executable,
/// the `mprotect` that makes it executable shoots down TLBs on every core,
/// and the entry pointer only reaches other threads through the handle, after
/// the protection change, with release/acquire ordering.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
#[inline]
pub(crate) fn make_coherent(_start: usize, _len: usize) {}

/// Makes instruction fetch coherent with the data writes made to
/// `start .. start + len` before the range is published.
///
/// AArch64 has separate, non-coherent instruction and data caches: each data
/// cache line is cleaned to the point of unification, then each instruction
/// cache line is invalidated, each step completed by a `dsb ish`, and an
/// `isb` discards anything this core already fetched. `CTR_EL0.IDC` and
/// `CTR_EL0.DIC` tell when a step is unnecessary; its line sizes give the
/// stride.
#[cfg(target_arch = "aarch64")]
pub(crate) fn make_coherent(start: usize, len: usize) {
    use core::arch::asm;
    let end = start.saturating_add(len);
    let ctr: u64;
    // SAFETY: CTR_EL0 is readable from EL0 on Linux; reading it has no effect.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    let dcache_line = 4usize << ((ctr >> 16) & 0xF);
    let icache_line = 4usize << (ctr & 0xF);
    if ctr & (1 << 28) == 0 {
        for_each_line(start, end, dcache_line, |line| {
            // SAFETY: `line` lies in a mapping this crate owns and can read;
            // cleaning a cache line never changes memory contents.
            unsafe { asm!("dc cvau, {}", in(reg) line, options(nostack, preserves_flags)) };
        });
    }
    // SAFETY: barriers have no memory-safety effect.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
    if ctr & (1 << 29) == 0 {
        for_each_line(start, end, icache_line, |line| {
            // SAFETY: as above; invalidating instruction cache lines only
            // drops cached copies.
            unsafe { asm!("ic ivau, {}", in(reg) line, options(nostack, preserves_flags)) };
        });
        // SAFETY: barriers have no memory-safety effect.
        unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
    }
    // SAFETY: barriers have no memory-safety effect.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// Calls `maintain` with the address of every cache line of size
/// `line_size` (a power of two) overlapping `start .. end`.
#[cfg(target_arch = "aarch64")]
fn for_each_line(start: usize, end: usize, line_size: usize, mut maintain: impl FnMut(usize)) {
    let mut line = start & !(line_size - 1);
    while line < end {
        maintain(line);
        line += line_size;
    }
}
