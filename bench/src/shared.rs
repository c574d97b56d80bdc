//! Shared memories in compiled code (BRIEF §12): what the bounds check of
//! every access costs, and what a grow costs.
//!
//! Rows:
//!
//! - `mem_load / load sum i64 ×4096, per element`: nanoseconds per
//!   element of the kernel suite's `sum` over 4,096 `i64` of a shared
//!   memory, through `mem_load` at a byte offset stepped by 8 (how a loop
//!   over a byte-addressed memory is written: the offset is the loop's
//!   counter), against the same loop through `load` of a plain buffer
//!   (`load i64 %xs[%i]`, null-checked). Every `mem_load` reads the length
//!   from the descriptor and compares the end of the access with it. Both
//!   compiled by the x86-64 backend and raced in alternation, best of five
//!   rounds; ratio, goal ≤ 1.3×.
//! - `  offset = i << 3`: the same, with the element index as the
//!   counter and the offset shifted from it in the loop.
//! - `mem_grow by one page (compiled / Rust)`: one compiled `mem_grow
//!   heap, 1` (a call into `jit_shared::memory_grow`: its lock, the
//!   `mprotect` of the page, the length published) against
//!   `SharedMemory::grow(1)` called from Rust on another memory, timed in
//!   batches of 10; both memories have no maximum, so every grow of the
//!   run succeeds.
//! - `mem_grow by 0 pages (the call alone)`: the same compiled call asked
//!   for no pages, which returns the size without the lock.

#![allow(unsafe_code)]

use std::hint::black_box;

use execmem::Strategy;
use jit::backend::{CompiledFunction, NoCallees, SharedResolver};
use jit::instantiate::instantiate;
use jit::ir::{Library, TemplateName};
use jit::shared::SharedMemory;

use crate::backend::Compiler;
use crate::harness::{Report, Row, Stats, measure};

/// Elements summed, as in the kernel suite's `sum`.
const N: usize = 4096;
/// Timed runs of each side per round.
const RUNS: usize = 2000;
/// Timed runs of grows.
const GROWS: usize = 2000;
/// Grows per timed run (the memories grow by about `GROWS × BATCH`
/// pages over the run, within the limit of 65,536).
const BATCH: usize = 10;

/// The kernel suite's `sum` over a shared memory (by offset, and by
/// index shifted into an offset) and over a pointer, one access each.
const TEMPLATES: &str = "
memory heap 1
memory grown 1

fn sum_shared(%n: i64) -> i64 {
entry:
    %zero = const i64 0
    %eight = const i64 8
    %three = const i64 3
    %end = shl i64 %n, %three
    br loop(%zero, %zero)
loop(%offset: i64, %acc: i64):
    %more = cmp lt i64 %offset, %end
    cond_br %more, body, done
body:
    %x = mem_load i64 heap, %offset
    %next_acc = add i64 %acc, %x
    %next_offset = add i64 %offset, %eight
    br loop(%next_offset, %next_acc)
done:
    ret %acc
}

fn sum_shared_index(%n: i64) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    %three = const i64 3
    br loop(%zero, %zero)
loop(%i: i64, %acc: i64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %offset = shl i64 %i, %three
    %x = mem_load i64 heap, %offset
    %next_acc = add i64 %acc, %x
    %next_i = add i64 %i, %one
    br loop(%next_i, %next_acc)
done:
    ret %acc
}

fn sum_plain(%xs: ptr<i64>, %n: i64) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    br loop(%zero, %zero)
loop(%i: i64, %acc: i64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = load i64 %xs[%i]
    %next_acc = add i64 %acc, %x
    %next_i = add i64 %i, %one
    br loop(%next_i, %next_acc)
done:
    ret %acc
}

fn grow(%pages: i64) -> i64 {
entry:
    %old = mem_grow grown, %pages
    ret %old
}
";

fn compile(
    compiler: &Compiler,
    lib: &Library,
    name: &str,
    resolver: &mut SharedResolver<NoCallees>,
) -> CompiledFunction {
    let inst = instantiate(lib, &TemplateName::free(name), &[])
        .unwrap_or_else(|e| panic!("instantiating {name}: {e}"));
    compiler
        .backend
        .compile(&compiler.memory, &inst.function, &inst.reg_types, resolver)
        .unwrap_or_else(|e| panic!("compiling {name}: {e}"))
}

/// Measures the sides in alternation, [`RUNS`] a round
/// (`harness::race`, as the kernel suite does).
fn race(sides: &mut [&mut dyn FnMut() -> i64]) -> Vec<Stats> {
    crate::harness::race(sides.len(), |k| measure(RUNS, &mut *sides[k]))
}

pub fn run(report: &mut Report) {
    let lib = jit::text::parse_library(TEMPLATES).expect("parses");
    jit::verify::verify_library(&lib).expect("verifies");
    // Without a maximum: every grow of the run succeeds.
    let heap = SharedMemory::new("heap", 1, None).expect("memory");
    let grown = SharedMemory::new("grown", 1, None).expect("memory");
    let from_rust = SharedMemory::new("from_rust", 1, None).expect("memory");
    let compiler = Compiler::new(Strategy::Mprotect);
    let mut resolver = SharedResolver::new(NoCallees)
        .with_memory("heap", heap.descriptor_address())
        .with_memory("grown", grown.descriptor_address());
    let [shared, index, plain, grow] = ["sum_shared", "sum_shared_index", "sum_plain", "grow"]
        .map(|n| compile(&compiler, &lib, n, &mut resolver));

    let xs: Vec<i64> = (0..N as i64)
        .map(|i| i * 7919 % 1_000_003 - 500_000)
        .collect();
    let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
    heap.write(0, &bytes).expect("within the first page");
    let want = xs.iter().fold(0i64, |a, &x| a.wrapping_add(x));
    // SAFETY: `sum_shared` and `sum_shared_index` are `fn(i64) -> i64`
    // and read within `heap`, which outlives these calls; `sum_plain` is
    // `fn(ptr<i64>, i64) -> i64` and reads `xs`; `grow` is `fn(i64) ->
    // i64` on `grown`. None traps: every access is in bounds.
    let (sum_shared, sum_index, sum_plain, grow_by) = unsafe {
        (
            std::mem::transmute::<usize, extern "C" fn(i64) -> i64>(shared.address() as usize),
            std::mem::transmute::<usize, extern "C" fn(i64) -> i64>(index.address() as usize),
            std::mem::transmute::<usize, extern "C" fn(*const i64, i64) -> i64>(
                plain.address() as usize
            ),
            std::mem::transmute::<usize, extern "C" fn(i64) -> i64>(grow.address() as usize),
        )
    };
    assert_eq!(sum_shared(N as i64), want, "mem_load sum");
    assert_eq!(sum_index(N as i64), want, "mem_load sum by index");
    assert_eq!(sum_plain(xs.as_ptr(), N as i64), want, "load sum");

    let stats = race(&mut [
        &mut || sum_shared(black_box(N as i64)),
        &mut || sum_index(black_box(N as i64)),
        &mut || sum_plain(black_box(xs.as_ptr()), N as i64),
    ]);
    // Per element, in fractions of a nanosecond (a `Duration` divided by
    // the count would round them away).
    let per_element = |s: &Stats| s.median_ns() / N as f64;
    let plain = per_element(&stats[2]);
    for (what, s) in [
        (
            format!("mem_load / load sum i64 ×{N}, per element"),
            &stats[0],
        ),
        ("  offset = i << 3 in the loop".to_owned(), &stats[1]),
    ] {
        let checked = per_element(s);
        let ratio = checked / plain;
        report.row(
            Row::new("shared", what, format!("{checked:.3} ns"))
                .baseline(format!("{plain:.3} ns"))
                .ratio(format!("{ratio:.2}×"))
                .target("≤ 1.3×", ratio <= 1.3),
        );
    }

    // Grows are timed in batches: a clock read costs a tenth of one.
    let before = grown.size_pages();
    let compiled = measure(GROWS, || {
        (0..BATCH).fold(0, |a, _| a ^ grow_by(black_box(1)))
    });
    let rust = measure(GROWS, || {
        (0..BATCH).fold(0, |a, _| a ^ from_rust.grow(black_box(1)))
    });
    let timed = (GROWS + GROWS.min(10)) * BATCH;
    assert_eq!(
        grown.size_pages() - before,
        timed as u64,
        "every grow succeeded"
    );
    let per_grow = |s: &Stats| s.median_ns() / BATCH as f64;
    let (compiled, rust) = (per_grow(&compiled), per_grow(&rust));
    report.row(
        Row::new(
            "shared",
            "mem_grow by one page (compiled / Rust)",
            format!("{compiled:.1} ns"),
        )
        .baseline(format!("{rust:.1} ns"))
        .ratio(format!("{:.2}×", compiled / rust)),
    );
    let call = measure(RUNS, || {
        (0..BATCH).fold(0, |a, _| a ^ grow_by(black_box(0)))
    });
    report.row(Row::new(
        "shared",
        "mem_grow by 0 pages (the call alone)",
        format!("{:.1} ns", per_grow(&call)),
    ));
}
