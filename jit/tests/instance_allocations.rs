//! How many heap allocations an instantiation makes. A cold miss pays for
//! each one twice, allocating it and freeing it, so the count is pinned for
//! the pair a `quicksort$i32` miss instantiates and for a struct method;
//! what a concrete function must hold (its blocks, their instructions and
//! parameters, branch and call argument lists, boxed pointer types, the
//! register types) sets the floor, and anything beyond that is a
//! regression.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

mod common;

use jit::instantiate::{Instance, instantiate, instantiate_reusing, instantiate_symbol};
use jit::ir::{Library, Op, Signature, Terminator, Type};

/// The system allocator, counting the allocations of the thread that
/// asks for them (tests run on several threads at once).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a thread-local `Cell` with a constant initialiser, which
// never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc` or `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (and reallocations) `f` makes on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    (value, ALLOCATIONS.with(Cell::get) - before)
}

/// The collections library, verified (so instances get the instance check).
fn library() -> Library {
    let lib = common::collections();
    assert!(lib.is_verified());
    lib
}

/// Boxes a type owns: one per pointer level, a function signature's box
/// and parameter list, a struct's argument list.
fn boxes(ty: &Type) -> usize {
    match ty {
        Type::Ptr(inner) => 1 + boxes(inner),
        Type::Fn(sig) => 1 + signature_boxes(sig),
        Type::Struct(s) => {
            usize::from(!s.name.is_empty())
                + usize::from(!s.args.is_empty())
                + s.args.iter().map(boxes).sum::<usize>()
        }
        _ => 0,
    }
}

/// Boxes a signature owns: its parameter list and its types' boxes.
fn signature_boxes(sig: &Signature) -> usize {
    usize::from(!sig.params.is_empty())
        + sig
            .params
            .iter()
            .chain(sig.ret.iter())
            .map(boxes)
            .sum::<usize>()
}

/// The heap blocks an instance cannot do without, in two parts: the
/// strings and vectors whose buffers a spare instance lends (the symbol,
/// template name, type arguments and dependency list; the function's name,
/// block, instruction, block parameter, branch argument and signature
/// vectors; the register type vector), and the rest, built anew even over
/// a spare (the `Arc` around the function, boxed types, the vectors and
/// names inside instructions, the dependencies' names).
fn floor(instance: &Instance) -> (usize, usize) {
    let nonempty = |n: usize| usize::from(n > 0);
    let f = &instance.function;
    let reg_types = &instance.reg_types.0;
    let mut kept = nonempty(instance.symbol.len())
        + nonempty(instance.template.name.len())
        + nonempty(instance.type_args.len())
        + nonempty(instance.dependencies.len())
        + nonempty(f.name.name.len())
        + nonempty(f.blocks.len())
        + nonempty(f.sig.params.len())
        + nonempty(reg_types.len());
    let mut rebuilt = 1
        + instance.type_args.iter().map(boxes).sum::<usize>()
        + instance.dependencies.len()
        + f.sig
            .params
            .iter()
            .chain(f.sig.ret.iter())
            .map(boxes)
            .sum::<usize>()
        + reg_types.iter().map(boxes).sum::<usize>();
    for block in &f.blocks {
        kept += nonempty(block.insts.len()) + nonempty(block.params.len());
        kept += match &block.term {
            Terminator::Br(t) => nonempty(t.args.len()),
            Terminator::CondBr {
                then, otherwise, ..
            } => nonempty(then.args.len()) + nonempty(otherwise.args.len()),
            Terminator::Ret(_) | Terminator::Trap(_) => 0,
        };
        rebuilt += block.params.iter().map(|(_, t)| boxes(t)).sum::<usize>();
        for inst in &block.insts {
            rebuilt += match &inst.op {
                Op::Call { callee, sig, args } => {
                    let name = match callee {
                        jit::ir::Callee::Symbol(s) | jit::ir::Callee::Import(s) => s.len(),
                        jit::ir::Callee::Template { .. } => 0,
                    };
                    nonempty(name) + nonempty(args.len()) + signature_boxes(sig)
                }
                Op::Const { ty, .. }
                | Op::Unary { ty, .. }
                | Op::Binary { ty, .. }
                | Op::Cmp { ty, .. }
                | Op::Select { ty, .. }
                | Op::Load { ty, .. }
                | Op::Store { ty, .. }
                | Op::Addr { ty, .. } => boxes(ty),
                Op::Cast { from, to, .. } | Op::Bitcast { from, to, .. } => boxes(from) + boxes(to),
                other => panic!("an operation this test does not count: {other:?}"),
            };
        }
    }
    (kept, rebuilt)
}

/// Instantiates `symbol` over `spare`, and counts the allocations.
fn counted(lib: &Library, symbol: &str, spare: Option<Instance>) -> (Instance, usize) {
    let (name, args) = jit::mangle::demangle(symbol).expect("demangles");
    let (instance, count) = allocations(|| instantiate_reusing(lib, &name, &args, spare));
    let instance = instance.expect("instantiates");
    // Debug builds also run the full verifier on every instance to compare
    // it with the instance check; that is not part of a miss.
    let check = if cfg!(debug_assertions) {
        allocations(|| jit::verify::verify_function(&instance.function, lib)).1
    } else {
        0
    };
    (instance, count - check)
}

/// Afresh, an instantiation allocates exactly what its instance holds;
/// over the storage of the previous miss's instance, only what the
/// instance's instructions and types hold: for the `quicksort$i32` pair,
/// 76 allocations become 24.
#[test]
fn the_quicksort_pair_allocates_what_it_holds_and_over_a_spare_much_less() {
    let lib = library();
    let mut total = (0, 0);
    for symbol in ["quicksort$i32", "insertion_sort$i32"] {
        let (spare, fresh) = counted(&lib, symbol, None);
        let (kept, rebuilt) = floor(&spare);
        assert_eq!(fresh, kept + rebuilt, "{symbol} afresh");
        let (again, reusing) = counted(&lib, symbol, Some(spare));
        assert_eq!(floor(&again), (kept, rebuilt));
        assert_eq!(reusing, rebuilt, "{symbol} over a spare");
        total = (total.0 + fresh, total.1 + reusing);
    }
    assert_eq!(total, (76, 24));
}

/// Every instance of the collections library made over the storage of the
/// one before it (another template, another shape) equals the instance
/// made afresh, and so does every refusal.
#[test]
fn reusing_a_spare_instance_gives_the_same_instance_or_error() {
    let lib = library();
    let mut spare: Option<Instance> = None;
    let (mut made, mut refused) = (0, 0);
    for template in lib.functions() {
        let mut all = common::type_args(template);
        // A refused argument as well: `bool` for a `num` parameter.
        all.push(vec![Type::Bool; template.type_params.len()]);
        for args in all {
            let fresh = instantiate(&lib, &template.name, &args);
            let reused = instantiate_reusing(&lib, &template.name, &args, spare.take());
            match (&fresh, &reused) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{}", a.symbol);
                    made += 1;
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a.to_string(), b.to_string());
                    refused += 1;
                }
                _ => panic!("{}: {fresh:?} against {reused:?}", template.name),
            }
            spare = reused.ok();
        }
    }
    assert!(made > 100 && refused > 5, "{made} made, {refused} refused");
}

/// A spare whose function someone still holds lends only the rest of its
/// storage; the function it shares is left as it was.
#[test]
fn a_spare_with_a_shared_function_leaves_that_function_alone() {
    let lib = library();
    let spare = instantiate_symbol(&lib, "quicksort$i64").expect("instantiates");
    let held = std::sync::Arc::clone(&spare.function);
    let before = (*held).clone();
    let (name, args) = jit::mangle::demangle("insertion_sort$u8").expect("demangles");
    let reused = instantiate_reusing(&lib, &name, &args, Some(spare)).expect("instantiates");
    assert_eq!(*held, before);
    assert_eq!(
        reused,
        instantiate_symbol(&lib, "insertion_sort$u8").expect("instantiates")
    );
}
