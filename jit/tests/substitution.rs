//! `Type::is_substitution_of` and `Signature::is_substitution_of` answer
//! exactly what comparing with `substitute` answers — the verifier relies
//! on it to check calls to instantiations without building substituted
//! signatures.

mod common;

use jit::ir::{IntType, Signature, StructType, Type};
use proptest::prelude::*;

/// Types over parameters `$0`–`$3` (one more than the widest argument
/// list below, so some parameters stay unsubstituted), with pointers,
/// structs and function types.
fn generic_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![common::scalar_type(), (0u32..4).prop_map(Type::Param)];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::ptr_to),
            (0usize..2, proptest::collection::vec(inner.clone(), 0..3)).prop_map(|(k, args)| {
                Type::Struct(Box::new(StructType {
                    name: ["Pair", "Vec"][k].into(),
                    args,
                }))
            }),
            (
                proptest::collection::vec(inner.clone(), 0..3),
                proptest::option::of(inner)
            )
                .prop_map(|(params, ret)| Type::Fn(Box::new(Signature { params, ret }))),
        ]
    })
}

fn signature() -> impl Strategy<Value = Signature> {
    (
        proptest::collection::vec(generic_type(), 0..4),
        proptest::option::of(generic_type()),
    )
        .prop_map(|(params, ret)| Signature { params, ret })
}

/// Type arguments: concrete or not (a parameter standing for another).
fn arguments() -> impl Strategy<Value = Vec<Type>> {
    proptest::collection::vec(generic_type(), 0..3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn a_substituted_type_is_recognised(g in generic_type(), args in arguments()) {
        prop_assert!(g.substitute(&args).is_substitution_of(&g, &args));
    }

    #[test]
    fn any_type_is_judged_as_comparing_with_substitute_would(
        t in generic_type(),
        g in generic_type(),
        args in arguments(),
    ) {
        prop_assert_eq!(t.is_substitution_of(&g, &args), t == g.substitute(&args));
    }

    #[test]
    fn a_substituted_signature_is_recognised(g in signature(), args in arguments()) {
        prop_assert!(g.substitute(&args).is_substitution_of(&g, &args));
    }

    #[test]
    fn any_signature_is_judged_as_comparing_with_substitute_would(
        s in signature(),
        g in signature(),
        args in arguments(),
    ) {
        prop_assert_eq!(s.is_substitution_of(&g, &args), s == g.substitute(&args));
    }
}

#[test]
fn mismatches_in_depth_arity_and_result_are_seen() {
    let p0 = Type::Param(0);
    let args = [Type::Int(IntType::I32)];
    let generic = Signature {
        params: vec![p0.clone().ptr_to(), Type::I64],
        ret: Some(p0.clone()),
    };
    let exact = generic.substitute(&args);
    assert!(exact.is_substitution_of(&generic, &args));
    let mut fewer = exact.clone();
    fewer.params.pop();
    assert!(!fewer.is_substitution_of(&generic, &args));
    let mut more = exact.clone();
    more.params.push(Type::I64);
    assert!(!more.is_substitution_of(&generic, &args));
    let mut no_result = exact.clone();
    no_result.ret = None;
    assert!(!no_result.is_substitution_of(&generic, &args));
    let mut shallow = exact.clone();
    shallow.params[0] = Type::Int(IntType::I32);
    assert!(!shallow.is_substitution_of(&generic, &args));
    // A parameter without an argument stays a parameter.
    assert!(Type::Param(1).is_substitution_of(&Type::Param(1), &args));
    assert!(!Type::Int(IntType::I32).is_substitution_of(&Type::Param(1), &args));
}
