//! Mangled names: the documented examples, rejection of malformed names,
//! and the round trip `demangle(mangle(t, args)) == (t, args)` over nested
//! generic types.

mod common;

use jit::ir::{IntType, StructType, TemplateName, Type};
use jit::mangle::{demangle, is_type_token, mangle};
use jit::text::parse_type_args;
use proptest::prelude::*;

fn pair(a: Type, b: Type) -> Type {
    Type::Struct(Box::new(StructType {
        name: "Pair".into(),
        args: vec![a, b],
    }))
}

#[test]
fn documented_examples() {
    let cases: Vec<(TemplateName, Vec<Type>, &str)> = vec![
        (TemplateName::free("sum"), vec![Type::F64], "sum$f64"),
        (TemplateName::free("sum"), vec![Type::F32], "sum$f32"),
        (
            TemplateName::free("max"),
            vec![Type::Int(IntType::U8)],
            "max$u8",
        ),
        (
            TemplateName::method("Vec", "push"),
            vec![Type::I64],
            "Vec$i64$push",
        ),
        (
            TemplateName::method("Pair", "first"),
            vec![Type::Int(IntType::I32), Type::F64],
            "Pair$i32$f64$first",
        ),
        (
            TemplateName::method("Vec", "push"),
            vec![pair(Type::Int(IntType::I32), Type::F64)],
            "Vec$Pair_2$i32$f64$push",
        ),
        (
            TemplateName::free("sort"),
            vec![Type::Int(IntType::U8).ptr_to()],
            "sort$ptr$u8",
        ),
        (TemplateName::free("helper"), vec![], "helper"),
        (TemplateName::method("Unit", "make"), vec![], "Unit$make"),
        (
            TemplateName::free("zip"),
            vec![pair(pair(Type::Bool, Type::RawPtr), Type::I64), Type::F32],
            "zip$Pair_2$Pair_2$bool$rawptr$i64$f32",
        ),
    ];
    for (t, args, name) in cases {
        assert_eq!(mangle(&t, &args).expect("mangles"), name);
        assert_eq!(demangle(name).expect("demangles"), (t, args), "{name}");
    }
}

#[test]
fn note_sdn_names_demangle_to_their_type_args() {
    // `possible` rows pair a mangled name with its template and type_args.
    for (mangled, template, type_args) in [
        ("sum$f32", "sum", "f32"),
        ("dot$i64", "dot", "i64"),
        ("Vec$i64$push", "Vec::push", "i64"),
        ("Vec$Pair_2$i32$f64$push", "Vec::push", "Pair<i32, f64>"),
        ("Pair$u8$ptr$i16$second", "Pair::second", "u8,ptr<i16>"),
    ] {
        let (t, args) = demangle(mangled).expect("demangles");
        assert_eq!(t.to_string(), template);
        assert_eq!(args, parse_type_args(type_args).expect("type args parse"));
    }
}

#[test]
fn malformed_names_are_rejected() {
    for bad in [
        "",
        "$f64",
        "sum$",
        "sum$$f64",
        "Vec$i64$push$again",
        "sum$Pair_02$i32$f64",
        "sum$ptr",
        "sum$Pair_2$i32",
        "i32$f64",
        "ptr$i8",
        "sum$f64$x-y",
        "su m$f64",
        "sum$Pair_99999999999999999999$i8",
    ] {
        let e = demangle(bad).expect_err(bad);
        assert!(
            matches!(e.kind, jit::ErrorKind::Demangle { .. }),
            "{bad}: {e}"
        );
    }
}

#[test]
fn unmangleable_arguments_are_refused() {
    let f = Type::Fn(Box::default());
    assert!(mangle(&TemplateName::free("sum"), &[f]).is_err());
    assert!(mangle(&TemplateName::free("sum"), &[Type::Param(0)]).is_err());
    assert!(
        mangle(&TemplateName::method("Vec", "get_2"), &[Type::I64]).is_err(),
        "reads as a struct token"
    );
    assert!(mangle(&TemplateName::free("i32"), &[Type::I64]).is_err());
}

#[test]
fn type_tokens() {
    for t in [
        "i8", "u64", "f32", "bool", "rawptr", "ptr", "Pair_2", "a_b_0", "Vec_1",
    ] {
        assert!(is_type_token(t), "{t}");
    }
    for t in ["push", "get_", "Pair_02", "_1", "len_x", "fn", "x_1a"] {
        assert!(!is_type_token(t), "{t}");
    }
}

const STRUCT_NAMES: [&str; 6] = ["Pair", "Vec", "Vec_2", "a_0", "_x", "Node9"];
const FUNCTION_NAMES: [&str; 5] = ["sum", "Vec", "f_1", "_", "x9"];
const METHOD_NAMES: [&str; 5] = ["push", "get", "len_x", "x_1a", "first"];

fn arb_type() -> impl Strategy<Value = Type> {
    common::scalar_type().prop_recursive(5, 40, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::ptr_to),
            (
                0usize..STRUCT_NAMES.len(),
                proptest::collection::vec(inner, 0..4)
            )
                .prop_map(|(k, args)| {
                    Type::Struct(Box::new(StructType {
                        name: STRUCT_NAMES[k].into(),
                        args,
                    }))
                }),
        ]
    })
}

fn arb_template() -> impl Strategy<Value = TemplateName> {
    prop_oneof![
        (0usize..FUNCTION_NAMES.len()).prop_map(|k| TemplateName::free(FUNCTION_NAMES[k])),
        (0usize..STRUCT_NAMES.len(), 0usize..METHOD_NAMES.len())
            .prop_map(|(s, m)| TemplateName::method(STRUCT_NAMES[s], METHOD_NAMES[m])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn demangle_inverts_mangle(t in arb_template(), args in proptest::collection::vec(arb_type(), 0..5)) {
        let name = mangle(&t, &args).expect("mangleable");
        prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$'));
        prop_assert_eq!(demangle(&name).expect("demangles"), (t, args));
    }

    #[test]
    fn distinct_instantiations_get_distinct_names(
        a in (arb_template(), proptest::collection::vec(arb_type(), 0..3)),
        b in (arb_template(), proptest::collection::vec(arb_type(), 0..3)),
    ) {
        let (na, nb) = (mangle(&a.0, &a.1).expect("a"), mangle(&b.0, &b.1).expect("b"));
        prop_assert_eq!(na == nb, a == b);
    }

    #[test]
    fn demangle_never_panics(s in "[a-zA-Z0-9_$]{0,40}") {
        if let Ok((t, args)) = demangle(&s) {
            // Whatever it accepts mangles back to the same text.
            prop_assert_eq!(mangle(&t, &args).expect("remangles"), s);
        }
    }
}

#[test]
fn template_names_read_back_from_their_text() {
    for name in [
        TemplateName::free("sum"),
        TemplateName::method("Vec", "push"),
        TemplateName::free("_x1"),
    ] {
        assert_eq!(
            name.to_string().parse::<TemplateName>().expect("parses"),
            name
        );
    }
    for bad in [
        "", "Vec::", "::push", "a::b::c", "sum$f64", "1x", "Vec:push",
    ] {
        assert!(bad.parse::<TemplateName>().is_err(), "{bad}");
    }
}
