//! Instantiating a template of a verified library checks the instance's
//! types but not again its control flow and the dominance of its uses
//! (`verify::verify_instance`). That is sound because instantiation keeps
//! the template's shape: the same blocks with the same parameter
//! registers, the same terminators, and every instruction with the same
//! result and operand registers. These tests pin that for every template
//! and type argument of the collections library, check that the full
//! verifier gives the instance the same register types, and that the type
//! rules which only a concrete type can fail still fail on the fast path
//! exactly as on the full one.

mod common;

use common::type_args;
use jit::instantiate::instantiate;
use jit::ir::{Function, Library, Reg, TemplateName, Type};
use jit::verify::{verify_function, verify_library};

/// One instruction's result and operand registers.
type InstShape = (Option<Reg>, Vec<Reg>);

/// A block's parameter registers, instructions, and terminator (operands
/// and targets) as text.
type BlockShape = (Vec<Reg>, Vec<InstShape>, String);

/// What instantiation must keep of a function.
fn shape(f: &Function) -> Vec<BlockShape> {
    f.blocks
        .iter()
        .map(|b| {
            let params = b.params.iter().map(|(r, _)| *r).collect();
            let insts = b
                .insts
                .iter()
                .map(|i| {
                    let mut uses = Vec::new();
                    i.op.for_each_use(|r| uses.push(*r));
                    (i.result, uses)
                })
                .collect();
            (params, insts, format!("{:?}", b.term))
        })
        .collect()
}

#[test]
fn instances_keep_their_templates_shape_and_get_the_full_verifiers_types() {
    let lib = common::collections();
    verify_library(&lib).expect("the collections library verifies");
    assert!(lib.is_verified());
    let mut checked = 0;
    for template in lib.functions() {
        for args in type_args(template) {
            let Ok(instance) = instantiate(&lib, &template.name, &args) else {
                continue;
            };
            let f = &instance.function;
            assert_eq!(shape(f), shape(template), "{}", instance.symbol);
            assert_eq!(f.sig.params.len(), template.sig.params.len());
            let full = verify_function(f, &lib).expect("the full verifier accepts it");
            assert_eq!(full, instance.reg_types, "{}", instance.symbol);
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} instances");
}

/// The same text parsed twice: one library verified, one not.
fn both(text: &str) -> (Library, Library) {
    let parse = || jit::text::parse_library(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let (verified, plain) = (parse(), parse());
    verify_library(&verified).expect("the template verifies generically");
    assert!(verified.is_verified() && !plain.is_verified());
    (verified, plain)
}

/// Type rules only a concrete type can break, caught alike with and
/// without the fast path: a constant out of the argument's range, a
/// bitcast between sizes, a type nested past the limit.
#[test]
fn concrete_type_errors_are_caught_on_the_fast_path() {
    let i = |name: &str| TemplateName::free(name);
    let int = |t| Type::Int(t);
    use jit::ir::IntType::{I8, I16, I64, U8};
    let deep = (0..40).fold(Type::Int(U8), |t, _| t.ptr_to());
    let cases: Vec<(&str, &str, Vec<Type>, bool)> = vec![
        (
            "fn big<T: int>() -> T {\nentry:\n    %r = const T 200\n    ret %r\n}\n",
            "big",
            vec![int(I8)],
            false,
        ),
        (
            "fn big<T: int>() -> T {\nentry:\n    %r = const T 200\n    ret %r\n}\n",
            "big",
            vec![int(I16)],
            true,
        ),
        (
            "fn bits<T: num>(%a: T) -> i64 {\nentry:\n    %r = bitcast T %a to i64\n    ret %r\n}\n",
            "bits",
            vec![Type::F32],
            false,
        ),
        (
            "fn bits<T: num>(%a: T) -> i64 {\nentry:\n    %r = bitcast T %a to i64\n    ret %r\n}\n",
            "bits",
            vec![Type::F64],
            true,
        ),
        (
            "fn id<T: any>(%a: T) -> T {\nentry:\n    ret %a\n}\n",
            "id",
            vec![deep],
            false,
        ),
        (
            "fn id<T: any>(%a: T) -> T {\nentry:\n    ret %a\n}\n",
            "id",
            vec![int(I64).ptr_to()],
            true,
        ),
    ];
    for (text, name, args, ok) in cases {
        let (verified, plain) = both(text);
        let fast = instantiate(&verified, &i(name), &args);
        let full = instantiate(&plain, &i(name), &args);
        assert_eq!(fast.is_ok(), ok, "{name} {args:?}: {fast:?}");
        match (fast, full) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("{name} {args:?}: fast path {a:?}, full verifier {b:?}"),
        }
    }
}

/// A library is marked only when the verifier accepts all of it.
#[test]
fn a_rejected_library_is_not_marked_verified() {
    let lib = jit::text::parse_library(
        "fn f(%a: i32, %b: i64) -> i32 {\nentry:\n    %r = add i32 %a, %b\n    ret %r\n}\n",
    )
    .expect("parses");
    assert!(verify_library(&lib).is_err());
    assert!(!lib.is_verified());
}
