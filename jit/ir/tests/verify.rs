//! Every verifier rule rejects what it must, with a typed error naming the
//! template and the instruction.

use jit_ir::instantiate::{instantiate, instantiate_all, instantiate_symbol};
use jit_ir::ir::{Library, TemplateName, Type};
use jit_ir::{Error, ErrorKind, Location};

fn parse(text: &str) -> Library {
    jit_ir::text::parse_library(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn rejected(text: &str) -> Error {
    jit_ir::verify::verify_library(&parse(text)).expect_err("the verifier must reject this")
}

/// `bool` given for `T: num`.
fn bool_is_not_num() -> ErrorKind {
    ErrorKind::Constraint {
        ty: "bool".into(),
        param: "T".into(),
        constraint: "num",
    }
}

/// The operand a type mismatch is about.
fn mismatch_context(e: &Error) -> Option<&'static str> {
    match e.kind {
        ErrorKind::TypeMismatch { context, .. } => Some(context),
        _ => None,
    }
}

/// One type argument expected, two given.
fn type_arg_count(name: &str) -> ErrorKind {
    ErrorKind::TypeArgCount {
        name: name.into(),
        expected: 1,
        found: 2,
    }
}

fn at(function: &str, block: u32, inst: Option<u32>) -> Location {
    Location::Instruction {
        function: function.into(),
        block,
        inst,
    }
}

#[test]
fn operand_types_must_match() {
    let e = rejected(
        "fn f(%a: i32, %b: i64) -> i32 {\nentry:\n    %r = add i32 %a, %b\n    ret %r\n}\n",
    );
    assert!(
        matches!(&e.kind, ErrorKind::TypeMismatch { expected, found, .. } if expected == "i32" && found == "i64"),
        "{e}"
    );
    assert_eq!(e.location, at("f", 0, Some(0)));
    assert_eq!(
        e.to_string(),
        "type mismatch: the right operand expects i32, found i64 (in `f`, block b0, instruction 0)"
    );
}

#[test]
fn operations_need_their_constraint() {
    let e = rejected("fn f<T: num>(%a: T) -> T {\nentry:\n    %r = shl T %a, %a\n    ret %r\n}\n");
    assert_eq!(
        e.kind,
        ErrorKind::BadOperandType {
            op: "a shift",
            ty: "T".into()
        }
    );
    assert_eq!(e.location, at("f", 0, Some(0)));
    let e = rejected("fn f(%a: f64) -> f64 {\nentry:\n    %r = rem f64 %a, %a\n    ret %r\n}\n");
    assert_eq!(
        e.kind,
        ErrorKind::BadOperandType {
            op: "rem",
            ty: "f64".into()
        }
    );
    let e = rejected("fn f<T: any>(%a: T) -> T {\nentry:\n    %r = add T %a, %a\n    ret %r\n}\n");
    assert_eq!(
        e.kind,
        ErrorKind::BadOperandType {
            op: "arithmetic",
            ty: "T".into()
        }
    );
    let e =
        rejected("fn f(%a: bool) -> bool {\nentry:\n    %r = cmp lt bool %a, %a\n    ret %r\n}\n");
    assert_eq!(
        e.kind,
        ErrorKind::BadOperandType {
            op: "cmp",
            ty: "bool".into()
        }
    );
}

#[test]
fn definitions_must_dominate_uses() {
    let e = rejected(concat!(
        "fn f(%c: bool) -> i64 {\nentry:\n    cond_br %c, a, b\n",
        "a:\n    %x = const i64 1\n    br b\nb:\n    ret %x\n}\n"
    ));
    assert_eq!(e.kind, ErrorKind::NotDominated(1));
    assert_eq!(e.location, at("f", 2, None));
}

#[test]
fn control_flow_must_be_well_formed() {
    let e = rejected("fn f() {\nentry:\n    ret\nlost:\n    ret\n}\n");
    assert_eq!(e.kind, ErrorKind::UnreachableBlock(1));
    assert_eq!(e.location, at("f", 1, None));
    let e = rejected("fn f() {\nentry:\n    br entry\n}\n");
    assert_eq!(e.kind, ErrorKind::BadEntry("cannot be a branch target"));
    let e = rejected("fn f(%a: i64) {\nentry:\n    br next(%a, %a)\nnext(%x: i64):\n    ret\n}\n");
    assert!(
        matches!(
            e.kind,
            ErrorKind::ArgCount {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.location, at("f", 0, None));
    let e = rejected("fn f(%a: i64) -> i32 {\nentry:\n    ret %a\n}\n");
    assert_eq!(mismatch_context(&e), Some("the returned value"), "{e}");
    let e = rejected("fn f(%a: i64) -> i32 {\nentry:\n    ret\n}\n");
    assert_eq!(mismatch_context(&e), Some("ret"), "{e}");
    let e = rejected("fn f(%a: i64) {\nentry:\n    cond_br %a, x, x\nx:\n    ret\n}\n");
    assert_eq!(mismatch_context(&e), Some("the branch condition"), "{e}");
}

#[test]
fn calls_must_match_the_declared_signature() {
    let e = rejected(concat!(
        "fn g(%a: i64) -> i64 {\nentry:\n    ret %a\n}\n",
        "fn f(%a: i64) -> i32 {\nentry:\n    %r = call g(%a) : fn(i64) -> i32\n    ret %r\n}\n"
    ));
    assert!(
        matches!(&e.kind, ErrorKind::SignatureMismatch { callee, .. } if callee == "g"),
        "{e}"
    );
    assert_eq!(e.location, at("f", 0, Some(0)));
    let e = rejected(concat!(
        "fn g(%a: i64) -> i64 {\nentry:\n    ret %a\n}\n",
        "fn f(%a: i32) -> i64 {\nentry:\n    %r = call g(%a)\n    ret %r\n}\n"
    ));
    assert_eq!(mismatch_context(&e), Some("an argument"), "{e}");
    let e = rejected(concat!(
        "fn s<T: num>(%a: T) -> T {\nentry:\n    ret %a\n}\n",
        "fn f(%a: bool) -> bool {\nentry:\n    %r = call s<bool>(%a)\n    ret %r\n}\n"
    ));
    assert_eq!(e.kind, bool_is_not_num());
    let e = rejected(concat!(
        "fn s<T: num>(%a: T) -> T {\nentry:\n    ret %a\n}\n",
        "fn f<U: any>(%a: U) -> U {\nentry:\n    %r = call s<U>(%a)\n    ret %r\n}\n"
    ));
    assert!(
        matches!(e.kind, ErrorKind::Constraint { .. }),
        "a weaker constraint does not satisfy num: {e}"
    );
    let e = rejected(
        "fn f(%p: fn(i64) -> i64) -> i64 {\nentry:\n    %r = call_indirect %p(%p) : fn(i64) -> i64\n    ret %r\n}\n",
    );
    assert_eq!(mismatch_context(&e), Some("an argument"), "{e}");
}

/// A call to an instantiation by its symbol (what instantiation leaves of
/// a call to a template) is checked against the template's signature with
/// the symbol's type arguments substituted.
#[test]
fn calls_to_instantiation_symbols_match_the_substituted_signature() {
    let template =
        "fn s<T: num>(%p: ptr<T>, %n: i64) -> T {\nentry:\n    %r = load T %p\n    ret %r\n}\n";
    let call = |sig: &str| {
        format!(
            "{template}fn f(%p: ptr<i32>, %n: i64) -> i32 {{\nentry:\n    %r = call @s$i32(%p, %n){sig}\n    ret %r\n}}\n"
        )
    };
    let lib = parse(&call(" : fn(ptr<i32>, i64) -> i32"));
    jit_ir::verify::verify_library(&lib).expect("the substituted signature");
    for wrong in [
        " : fn(ptr<i64>, i64) -> i32",
        " : fn(ptr<i32>, i64) -> i64",
        " : fn(ptr<i32>) -> i32",
        " : fn(i32, i64) -> i32",
    ] {
        let text = call(wrong);
        let e = jit_ir::verify::verify_library(&parse(&text)).expect_err(wrong);
        assert!(
            matches!(&e.kind, ErrorKind::SignatureMismatch { callee, expected, .. }
                if callee == "s$i32" && expected == "(ptr<i32>, i64) -> i32"),
            "{wrong}: {e}"
        );
        assert_eq!(e.location, at("f", 0, Some(0)), "{wrong}");
    }
}

#[test]
fn signatures_must_fit_the_argument_registers() {
    let six =
        "fn f(%a: i64, %b: i64, %c: i64, %d: i64, %e: i64, %g: ptr<i8>) {\nentry:\n    ret\n}\n";
    jit_ir::verify::verify_library(&parse(six)).expect("six integer parameters fit");
    let seven = "fn f(%a: i64, %b: i64, %c: i64, %d: i64, %e: i64, %g: ptr<i8>, %h: bool) {\nentry:\n    ret\n}\n";
    let e = rejected(seven);
    assert_eq!(
        e.kind,
        ErrorKind::TooManyArgs {
            ints: 7,
            floats: 0,
            max_ints: 6,
            max_floats: 8
        }
    );
    assert_eq!(e.location, Location::Item("f".into()));
    let nine = "import fn wide(f64, f64, f64, f64, f64, f64, f64, f64, f32) -> f64\n";
    assert!(matches!(
        rejected(nine).kind,
        ErrorKind::TooManyArgs { floats: 9, .. }
    ));
}

#[test]
fn structs_never_live_in_registers() {
    let e = rejected(concat!(
        "struct P { a: i32 }\n",
        "fn f(%p: ptr<P>) {\nentry:\n    %v = load P %p\n    ret\n}\n"
    ));
    assert_eq!(e.kind, ErrorKind::NotRegisterType("P".into()));
    assert_eq!(e.location, at("f", 0, Some(0)));
}

#[test]
fn types_must_be_declared_and_applied_correctly() {
    let e = rejected("fn f(%p: ptr<Missing>) {\nentry:\n    ret\n}\n");
    assert_eq!(
        e.kind,
        ErrorKind::Unknown {
            what: "struct",
            name: "Missing".into()
        }
    );
    let e = rejected("struct P<T: num> { a: T }\nfn f(%p: ptr<P<i8, i8>>) {\nentry:\n    ret\n}\n");
    assert_eq!(e.kind, type_arg_count("P"));
    let e = rejected("struct P<T: num> { a: T }\nfn f(%p: ptr<P<bool>>) {\nentry:\n    ret\n}\n");
    assert!(matches!(e.kind, ErrorKind::Constraint { .. }), "{e}");
    let e = rejected("struct P { a: i32, a: i64 }\n");
    assert_eq!(
        e.kind,
        ErrorKind::Redefined {
            what: "field",
            name: "a".into()
        }
    );
    assert_eq!(e.location, Location::Item("P".into()));
}

#[test]
fn constants_must_suit_their_type() {
    let e = rejected("fn f() -> u8 {\nentry:\n    %r = const u8 256\n    ret %r\n}\n");
    assert_eq!(
        e.kind,
        ErrorKind::LiteralRange {
            value: "256".into(),
            ty: "u8".into()
        }
    );
    jit_ir::verify::verify_library(&parse(
        "fn f() -> u8 {\nentry:\n    %r = const u8 255\n    ret %r\n}\n",
    ))
    .expect("255 fits");
    let e = rejected("fn f() -> i8 {\nentry:\n    %r = const i8 -129\n    ret %r\n}\n");
    assert!(matches!(e.kind, ErrorKind::LiteralRange { .. }));
    let e = rejected("fn f() -> i32 {\nentry:\n    %r = const i32 1.5\n    ret %r\n}\n");
    assert!(matches!(e.kind, ErrorKind::LiteralRange { .. }));
    let e = rejected("fn f<T: int>() -> T {\nentry:\n    %r = const T 1.5\n    ret %r\n}\n");
    assert!(matches!(e.kind, ErrorKind::LiteralRange { .. }));
}

#[test]
fn method_names_must_stay_unambiguous_in_mangled_form() {
    let e = rejected(
        "struct S<T: any> { a: T }\nfn S::get_2<T: any>(%p: ptr<S<T>>) {\nentry:\n    ret\n}\n",
    );
    assert!(
        matches!(&e.kind, ErrorKind::BadItemName { name, .. } if name == "get_2"),
        "{e}"
    );
    let e = rejected(
        "struct S<T: any> { a: T }\nfn S::i32<T: any>(%p: ptr<S<T>>) {\nentry:\n    ret\n}\n",
    );
    assert!(matches!(e.kind, ErrorKind::BadItemName { .. }), "{e}");
    let e = rejected(
        "struct S<T: any> { a: T }\nfn S::get<T: num>(%p: ptr<S<T>>) {\nentry:\n    ret\n}\n",
    );
    assert!(
        matches!(e.kind, ErrorKind::BadItemName { .. }),
        "method parameters must match the struct's: {e}"
    );
}

#[test]
fn polymorphic_recursion_stops_at_the_depth_bound_with_the_chain() {
    let lib = parse(concat!(
        "fn grow<T: any>(%p: ptr<T>) {\nentry:\n",
        "    %q = cast ptr<T> %p to ptr<ptr<T>>\n    call grow<ptr<T>>(%q)\n    ret\n}\n"
    ));
    jit_ir::verify::verify_library(&lib).expect("generically fine");
    let first = instantiate(&lib, &TemplateName::free("grow"), &[Type::I64])
        .expect("one level instantiates");
    assert_eq!(first.dependencies, vec!["grow$ptr$i64".to_string()]);
    let e =
        instantiate_all(&lib, &TemplateName::free("grow"), &[Type::I64]).expect_err("never ends");
    let ErrorKind::InstantiationDepth { limit, chain } = &e.kind else {
        panic!("{e}")
    };
    assert_eq!(*limit, jit_ir::limits::MAX_INSTANTIATION_DEPTH);
    assert_eq!(chain.len(), limit + 1);
    assert_eq!(chain[0], "grow$i64");
    assert_eq!(chain[1], "grow$ptr$i64");
    assert_eq!(chain[2], "grow$ptr$ptr$i64");
    assert!(
        e.to_string()
            .contains("grow$i64 -> grow$ptr$i64 -> grow$ptr$ptr$i64"),
        "{e}"
    );
}

#[test]
fn monomorphic_recursion_instantiates_once() {
    let lib = jit_ir::library::collections().expect("library");
    let all = instantiate_all(&lib, &TemplateName::free("sort"), &[Type::F32]).expect("closure");
    let names: Vec<&str> = all.iter().map(|i| i.symbol.as_str()).collect();
    assert_eq!(names, ["sort$f32", "quicksort$f32", "insertion_sort$f32"]);
    let all = instantiate_all(
        &lib,
        &TemplateName::free("sort_desc"),
        &[Type::Int(jit_ir::ir::IntType::I8)],
    )
    .expect("closure");
    let names: Vec<&str> = all.iter().map(|i| i.symbol.as_str()).collect();
    assert_eq!(
        names,
        [
            "sort_desc$i8",
            "compare_desc$i8",
            "compare_asc$i8",
            "quicksort_by$i8"
        ]
    );
}

#[test]
fn a_struct_containing_itself_has_no_layout() {
    let lib = parse(
        "struct Node<T: any> { value: T, next: Node<T> }\nfn size<T: any>() -> i64 {\nentry:\n    %s = size_of Node<T>\n    ret %s\n}\n",
    );
    jit_ir::verify::verify_library(&lib).expect("generically fine");
    let e = instantiate_symbol(&lib, "size$i32").expect_err("infinite size");
    let ErrorKind::RecursiveStruct { chain } = &e.kind else {
        panic!("{e}")
    };
    assert_eq!(chain, &["Node<i32>".to_string(), "Node<i32>".to_string()]);
    // Through a pointer it is fine.
    let lib = parse(
        "struct Node<T: any> { value: T, next: ptr<Node<T>> }\nfn size<T: any>() -> i64 {\nentry:\n    %s = size_of Node<T>\n    ret %s\n}\n",
    );
    let inst = instantiate_symbol(&lib, "size$i8").expect("layout");
    assert!(jit_ir::text::print_function(&inst.function, None).contains("const i64 16"));
}

#[test]
fn instantiation_checks_type_arguments() {
    let lib = jit_ir::library::collections().expect("library");
    let e = instantiate_symbol(&lib, "sum$bool").expect_err("bool is not num");
    assert_eq!(e.kind, bool_is_not_num());
    assert_eq!(e.location, Location::Item("sum$bool".into()));
    let e = instantiate_symbol(&lib, "sum$i32$i64").expect_err("arity");
    assert_eq!(e.kind, type_arg_count("sum"));
    let e = instantiate_symbol(&lib, "nothing$i32").expect_err("missing");
    assert!(
        matches!(
            e.kind,
            ErrorKind::Unknown {
                what: "template",
                ..
            }
        ),
        "{e}"
    );
    let e = instantiate_symbol(&lib, "Vec$Nope_0$len").expect_err("missing struct");
    assert!(
        matches!(e.kind, ErrorKind::Unknown { what: "struct", .. }),
        "{e}"
    );
}

#[test]
fn instantiation_lowers_layouts_and_template_calls() {
    let lib = jit_ir::library::collections().expect("library");
    let inst = instantiate_symbol(&lib, "Vec$Pair_2$i8$i64$push_from").expect("instantiates");
    let text = jit_ir::text::print_function(&inst.function, None);
    assert!(
        text.contains("call @Vec$Pair_2$i8$i64$reserve_one("),
        "{text}"
    );
    assert!(
        text.contains("const i64 16"),
        "size_of Pair<i8, i64> is 16: {text}"
    );
    assert_eq!(inst.dependencies, ["Vec$Pair_2$i8$i64$reserve_one"]);
    let reserve = instantiate_symbol(&lib, "Vec$Pair_2$i8$i64$reserve_one").expect("instantiates");
    let text = jit_ir::text::print_function(&reserve.function, None);
    // Fields of Vec: data at 0, len at 8, cap at 16; elements scale by 16.
    assert!(text.contains("addr ptr<i64> %0, _, 0, 8"), "{text}");
    assert!(text.contains("addr ptr<i64> %0, _, 0, 16"), "{text}");
    assert!(text.contains(", 16, 0"), "{text}");
    assert!(
        !text.contains("field_addr") && !text.contains("elem_addr") && !text.contains("size_of"),
        "{text}"
    );
    // The concrete function verifies on its own, register types included.
    let types = jit_ir::verify::verify_function(&reserve.function, &lib).expect("verifies");
    assert_eq!(types, reserve.reg_types);
}
