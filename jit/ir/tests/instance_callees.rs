//! The callees of an instance: each template call becomes the mangled
//! symbol of its instantiation, and the instance lists those symbols once
//! each, in first-use order, whether a call repeats, recurses into the
//! template itself or reaches the same instantiation by another spelling.

use jit_ir::instantiate::instantiate;
use jit_ir::ir::{Callee, IntType, Op, TemplateName, Type};

/// The callee symbols of an instance's calls and function addresses, in
/// instruction order.
fn called(f: &jit_ir::ir::Function) -> Vec<String> {
    f.blocks
        .iter()
        .flat_map(|b| &b.insts)
        .filter_map(|i| match &i.op {
            Op::Call {
                callee: Callee::Symbol(s),
                ..
            }
            | Op::FuncAddr {
                callee: Callee::Symbol(s),
                ..
            } => Some(s.clone()),
            _ => None,
        })
        .collect()
}

const TEXT: &str = "\
fn leaf<X: any>(%a: X) -> X {
entry:
    ret %a
}
fn pair<A: any, B: any>(%a: A, %b: B) -> A {
entry:
    %l = call leaf<A>(%a)
    %r = call leaf<B>(%b)
    %again = call leaf<A>(%l)
    %seven = const i32 7
    %fixed = call leaf<i32>(%seven)
    %self = call pair<A, B>(%again, %b)
    %swap = call pair<B, A>(%b, %a)
    %addr = func_addr pair<A, B>
    %self2 = call pair<A, B>(%self, %b)
    ret %self2
}
";

#[test]
fn repeated_recursive_and_respelled_callees_are_listed_once_in_first_use_order() {
    let lib = jit_ir::text::parse_library(TEXT).expect("parses");
    jit_ir::verify::verify_library(&lib).expect("verifies");
    let i32_ = Type::Int(IntType::I32);
    let i64_ = Type::Int(IntType::I64);
    let pair = TemplateName::free("pair");

    let same = instantiate(&lib, &pair, &[i32_.clone(), i32_.clone()]).expect("instantiates");
    assert_eq!(same.symbol, "pair$i32$i32");
    assert_eq!(
        called(&same.function),
        [
            "leaf$i32",
            "leaf$i32",
            "leaf$i32",
            "leaf$i32",
            "pair$i32$i32",
            "pair$i32$i32",
            "pair$i32$i32",
            "pair$i32$i32",
        ]
    );
    assert_eq!(same.dependencies, ["leaf$i32", "pair$i32$i32"]);

    let mixed = instantiate(&lib, &pair, &[i64_.clone(), i32_.clone()]).expect("instantiates");
    assert_eq!(
        called(&mixed.function),
        [
            "leaf$i64",
            "leaf$i32",
            "leaf$i64",
            "leaf$i32",
            "pair$i64$i32",
            "pair$i32$i64",
            "pair$i64$i32",
            "pair$i64$i32",
        ]
    );
    assert_eq!(
        mixed.dependencies,
        ["leaf$i64", "leaf$i32", "pair$i64$i32", "pair$i32$i64"]
    );

    // The unverified library takes the full verifier and lowers the same.
    let plain = jit_ir::text::parse_library(TEXT).expect("parses");
    let full = instantiate(&plain, &pair, &[i64_, i32_]).expect("instantiates");
    assert_eq!(full, mixed);
}

#[test]
fn quicksort_depends_on_insertion_sort_then_itself() {
    let lib = jit_ir::library::collections().expect("collections");
    let q = instantiate(
        &lib,
        &TemplateName::free("quicksort"),
        &[Type::Int(IntType::I32)],
    )
    .expect("instantiates");
    assert_eq!(q.dependencies, ["insertion_sort$i32", "quicksort$i32"]);
}
