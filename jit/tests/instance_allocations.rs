//! How many heap allocations an instantiation makes. A cold miss pays for
//! each one twice, allocating it and freeing it, so the count is pinned for
//! the pair a `quicksort$i32` miss instantiates and for a struct method;
//! what a concrete function must hold (its blocks, their instructions and
//! parameters, branch and call argument lists, boxed pointer types, the
//! register types) sets the floor, and anything beyond that is a
//! regression.

mod allocation_count;
mod common;

use allocation_count::allocations;
use jit::instantiate::{Instance, instantiate, instantiate_reusing, instantiate_symbol};
use jit::ir::{Library, Op, Signature, TemplateName, Terminator, Type};

/// The collections library, verified (so instances get the instance check).
fn library() -> Library {
    let lib = common::collections();
    assert!(lib.is_verified());
    lib
}

/// Boxes a type owns: one per pointer level, a function signature's box
/// and parameter list, a struct's box, name and argument list.
fn boxes(ty: &Type) -> usize {
    match ty {
        Type::Ptr(inner) => 1 + boxes(inner),
        Type::Fn(sig) => 1 + signature_boxes(sig),
        Type::Struct(s) => {
            1 + usize::from(!s.name.is_empty())
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

/// The heap blocks an instance cannot do without, in two parts: what a
/// spare instance of the same shape lends (the symbol, template name, type
/// arguments and dependency list; the function's name and signature; the
/// vectors of blocks, instructions, block parameters and branch arguments,
/// block parameter types; everything a call holds; the register type
/// vector and its types' boxes), and the rest, built anew even over such a
/// spare (the `Arc` around the function, other operations' boxed types,
/// the dependencies' names).
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
        + nonempty(reg_types.len())
        + reg_types.iter().map(boxes).sum::<usize>();
    kept += signature_boxes(&f.sig) - nonempty(f.sig.params.len());
    let mut rebuilt =
        1 + instance.type_args.iter().map(boxes).sum::<usize>() + instance.dependencies.len();
    for block in &f.blocks {
        kept += nonempty(block.insts.len()) + nonempty(block.params.len());
        kept += match &block.term {
            Terminator::Br(t) => nonempty(t.args.len()),
            Terminator::CondBr {
                then, otherwise, ..
            } => nonempty(then.args.len()) + nonempty(otherwise.args.len()),
            Terminator::Ret(_) | Terminator::Trap(_) => 0,
        };
        kept += block.params.iter().map(|(_, t)| boxes(t)).sum::<usize>();
        for inst in &block.insts {
            rebuilt += match &inst.op {
                Op::Call { callee, sig, args } => {
                    let name = match callee {
                        jit::ir::Callee::Symbol(s) | jit::ir::Callee::Import(s) => s.len(),
                        jit::ir::Callee::Template { .. } => 0,
                    };
                    kept += nonempty(name) + nonempty(args.len()) + signature_boxes(sig);
                    0
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
/// over the storage of the previous miss's instance, only the `Arc`,
/// other operations' boxes and the dependencies' names: for the
/// `quicksort$i32` pair, 76 allocations become 5.
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
    assert_eq!(total, (76, 5));
}

/// Every instance of the collections library made over the storage of the
/// last one made before it (another template, another shape) equals the
/// instance made afresh, and so does every refusal.
#[test]
fn reusing_a_spare_instance_gives_the_same_instance_or_error() {
    let lib = library();
    // The last template and arguments instantiated: the next instantiation
    // gets a spare made from them (its own, shared with nobody), even when
    // the one in between was refused.
    let mut last: Option<(TemplateName, Vec<Type>)> = None;
    let (mut made, mut refused) = (0, 0);
    for template in lib.functions() {
        let mut all = common::type_args(template);
        // A refused argument as well: `bool` for a `num` parameter.
        all.push(vec![Type::Bool; template.type_params.len()]);
        for args in all {
            let fresh = instantiate(&lib, &template.name, &args);
            let spare: Option<Instance> = last
                .as_ref()
                .map(|(name, args)| instantiate(&lib, name, args).expect("made before"));
            let reused = instantiate_reusing(&lib, &template.name, &args, spare);
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
            if reused.is_ok() {
                last = Some((template.name.clone(), args.clone()));
            }
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

/// `substitute_into` and `clone_into_place` give what `substitute` and
/// `clone` give, whatever `out` held before: pointers of more, fewer or
/// as many levels, structs, functions, scalars.
#[test]
fn substituting_into_a_type_equals_substituting() {
    use jit::ir::{IntType, StructType};
    let int = Type::Int(IntType::I32);
    let pair = |a: Type, b: Type| {
        Type::Struct(Box::new(StructType {
            name: "Pair".into(),
            args: vec![a, b],
        }))
    };
    let func = |params: Vec<Type>, ret: Option<Type>| Type::Fn(Box::new(Signature { params, ret }));
    let shapes = vec![
        Type::Bool,
        int.clone().ptr_to(),
        int.clone().ptr_to().ptr_to().ptr_to(),
        Type::F64.ptr_to().ptr_to(),
        pair(int.clone(), Type::RawPtr.ptr_to()),
        func(vec![int.clone().ptr_to()], Some(Type::F32)),
        Type::Param(0),
    ];
    let generics = vec![
        Type::Param(0),
        Type::Param(1).ptr_to(),
        Type::Param(0).ptr_to().ptr_to(),
        Type::Param(7).ptr_to(),
        pair(Type::Param(1), Type::Param(0).ptr_to()),
        func(vec![Type::Param(0)], Some(Type::Param(1).ptr_to())),
        Type::Int(IntType::U8).ptr_to(),
        Type::RawPtr,
    ];
    let arg_lists = vec![
        vec![int.clone(), Type::F64],
        vec![int.clone().ptr_to(), pair(Type::Bool, int.clone())],
        vec![Type::F32.ptr_to().ptr_to(), int.clone().ptr_to()],
    ];
    for generic in &generics {
        for args in &arg_lists {
            let expected = generic.substitute(args);
            for shape in &shapes {
                let mut out = shape.clone();
                generic.substitute_into(args, &mut out);
                assert_eq!(out, expected, "{generic:?} with {args:?} over {shape:?}");
                let mut copy = shape.clone();
                expected.clone_into_place(&mut copy);
                assert_eq!(copy, expected);
            }
            let sig = Signature {
                params: vec![generic.clone(), Type::Param(0)],
                ret: Some(generic.clone()),
            };
            for out_params in [0, 1, 2, 3] {
                let mut out = Signature {
                    params: shapes.iter().take(out_params).cloned().collect(),
                    ret: (out_params % 2 == 0).then(|| shapes[out_params].clone()),
                };
                sig.substitute_into(args, &mut out);
                assert_eq!(out, sig.substitute(args));
                let no_ret = Signature {
                    params: Vec::new(),
                    ret: None,
                };
                no_ret.substitute_into(args, &mut out);
                assert_eq!(out, no_ret);
            }
        }
    }
}
