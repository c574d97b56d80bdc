//! The text form: errors with line and column, literals that print and
//! parse back exactly, and the standalone type parsers.

use jit_ir::ir::{IntType, Item, Literal, Op, StructType, Type};
use jit_ir::text::{parse_library, parse_type, parse_type_args, print_library};
use jit_ir::{ErrorKind, Location};

fn error_at(text: &str) -> (ErrorKind, usize, usize) {
    let e = parse_library(text).expect_err("must not parse");
    match e.location {
        Location::Text { line, column } => (e.kind, line, column),
        ref other => panic!("no line/column: {other:?} for {e}"),
    }
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let (k, line, col) = error_at("fn f() {\nentry:\n    %x = frob i32 %a\n    ret\n}\n");
    assert_eq!(
        (k, line, col),
        (ErrorKind::Syntax("an instruction".into()), 3, 10)
    );
    let (k, line, col) = error_at("fn f() {\nentry:\n    %x const i32 1\n    ret\n}\n");
    assert_eq!((k, line, col), (ErrorKind::Syntax("`=`".into()), 3, 8));
    let (k, line, col) = error_at("\n\nstruct S { a: }\n");
    assert_eq!((k, line, col), (ErrorKind::Syntax("a type".into()), 3, 15));
    let (k, line, _) = error_at("fn f() {\nentry:\n    ret\n");
    assert_eq!((k, line), (ErrorKind::Syntax("a name".into()), 4));
    let (k, ..) = error_at("garbage");
    assert_eq!(
        k,
        ErrorKind::Syntax("`fn`, `struct`, `import`, `extern`, `memory` or `table`".into())
    );
    let (k, line, col) = error_at(
        "fn f() -> i64 {\nentry:\n    %x = const i64 99999999999999999999999\n    ret %x\n}\n",
    );
    assert_eq!(
        (k, line, col),
        (
            ErrorKind::Syntax("an integer that fits 64 bits".into()),
            3,
            20
        )
    );
}

#[test]
fn name_errors_point_at_the_instruction() {
    let (k, line, col) = error_at("fn f() {\nentry:\n    br nowhere\n}\n");
    assert_eq!(
        (k, line, col),
        (
            ErrorKind::Unknown {
                what: "label",
                name: "nowhere".into()
            },
            3,
            5
        )
    );
    let (k, line, _) = error_at("fn f() -> i32 {\nentry:\n    ret %ghost\n}\n");
    assert_eq!(
        (k, line),
        (
            ErrorKind::Unknown {
                what: "register",
                name: "%ghost".into()
            },
            3
        )
    );
    let (k, line, _) =
        error_at("fn f() {\nentry:\n    %a = const i32 1\n    %a = const i32 2\n    ret\n}\n");
    assert_eq!(
        (k, line),
        (
            ErrorKind::Redefined {
                what: "register",
                name: "%a".into()
            },
            4
        )
    );
    let (k, line, _) = error_at("fn f() {\nentry:\n    ret\nentry:\n    ret\n}\n");
    assert_eq!(
        (k, line),
        (
            ErrorKind::Redefined {
                what: "label",
                name: "entry".into()
            },
            4
        )
    );
    let (k, line, _) = error_at(
        "struct P { a: i32 }\nfn f(%p: ptr<P>) {\nentry:\n    %q = field_addr P %p, b\n    ret\n}\n",
    );
    assert_eq!(
        (k, line),
        (
            ErrorKind::Unknown {
                what: "field",
                name: "b".into()
            },
            4
        )
    );
    let (k, line, _) = error_at("fn f() {\nentry:\n    call missing()\n    ret\n}\n");
    assert_eq!(
        (k, line),
        (
            ErrorKind::Unknown {
                what: "callee",
                name: "missing".into()
            },
            3
        )
    );
    let (k, line, _) = error_at("fn f() {\nentry:\n    call @elsewhere()\n    ret\n}\n");
    assert_eq!(
        (k, line),
        (
            ErrorKind::Unknown {
                what: "callee",
                name: "@elsewhere".into()
            },
            3
        )
    );
    let (k, line, _) = error_at(
        "fn g() -> i32 {\nentry:\n    %r = const i32 1\n    ret %r\n}\nfn f() {\nentry:\n    call g()\n    ret\n}\n",
    );
    assert_eq!(
        (k, line),
        (
            ErrorKind::ResultMismatch("produces a value that must be named"),
            8
        )
    );
    let e = parse_library("fn f() {\nentry:\n    ret\n}\nfn f() {\nentry:\n    ret\n}\n")
        .expect_err("twice");
    assert_eq!(e.kind, ErrorKind::DuplicateItem("f".into()));
}

fn constant_of(text: &str) -> Literal {
    let lib = parse_library(text).expect("parses");
    let Some(Item::Function(f)) = lib.items().first() else {
        panic!()
    };
    let Op::Const { value, .. } = f.blocks[0].insts[0].op else {
        panic!()
    };
    value
}

#[test]
fn float_literals_print_and_parse_back_bit_for_bit() {
    let cases = [
        0.0f64.to_bits(),
        (-0.0f64).to_bits(),
        0.1f64.to_bits(),
        1e300f64.to_bits(),
        f64::MIN_POSITIVE.to_bits(),
        1, // the smallest subnormal
        f64::MAX.to_bits(),
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        f64::NAN.to_bits(),
        0x7ff8_0000_0000_0001,
        0xfff0_0000_0000_0002,
    ];
    for bits in cases {
        let lit = jit_ir::text::literal_text(Literal::Float(bits));
        let text = format!("fn f() -> f64 {{\nentry:\n    %r = const f64 {lit}\n    ret %r\n}}\n");
        assert_eq!(constant_of(&text), Literal::Float(bits), "{lit}");
    }
    for (text, want) in [
        ("-5", Literal::Int(-5)),
        ("0xff", Literal::Int(255)),
        ("18446744073709551615", Literal::Int(u64::MAX.into())),
    ] {
        let src = format!("fn f() -> u64 {{\nentry:\n    %r = const u64 {text}\n    ret %r\n}}\n");
        assert_eq!(constant_of(&src), want, "{text}");
    }
}

#[test]
fn comments_blank_lines_and_trailing_commas_are_accepted() {
    let text = "# a library\n\nstruct P<T: num> {\n    a: T, # first\n    b: T,\n}\n\nimport fn free(rawptr,)\nextern fn @other$i64(i64) -> i64\n";
    let lib = parse_library(text).expect("parses");
    assert_eq!(lib.struct_def("P").map(|s| s.fields.len()), Some(2));
    assert!(lib.import("free").is_some());
    assert!(lib.extern_symbol("other$i64").is_some());
    let printed = print_library(&lib);
    assert_eq!(parse_library(&printed).expect("reparses"), lib);
}

#[test]
fn standalone_types_parse() {
    let pair = Type::Struct(Box::new(StructType {
        name: "Pair".into(),
        args: vec![Type::Int(IntType::I32), Type::F64],
    }));
    assert_eq!(parse_type("Pair<i32, f64>").expect("type"), pair);
    assert_eq!(
        parse_type(" ptr<ptr<u8>> ").expect("type"),
        Type::Int(IntType::U8).ptr_to().ptr_to()
    );
    assert_eq!(
        parse_type_args("i32,Pair<i32,f64>,fn(i64, f32) -> bool").expect("args"),
        vec![
            Type::Int(IntType::I32),
            pair,
            Type::Fn(Box::new(jit_ir::ir::Signature {
                params: vec![Type::I64, Type::F32],
                ret: Some(Type::Bool)
            })),
        ]
    );
    assert_eq!(parse_type_args("").expect("none"), vec![]);
    assert!(parse_type("ptr<i32").is_err());
    assert!(parse_type("i32 i32").is_err());
}

#[test]
fn deeply_nested_types_are_refused() {
    let deep = format!("{}i8{}", "ptr<".repeat(100), ">".repeat(100));
    let e = parse_type(&deep).expect_err("too deep");
    assert!(matches!(e.kind, ErrorKind::Syntax(_)), "{e}");
}

#[test]
fn printing_keeps_field_indices_even_when_names_repeat() {
    // Duplicate field names are a verifier error, but the parser accepts
    // them and the printer must still round-trip: index 1 prints as `1`.
    let text = "struct S { a: i32, a: i64 }\nfn f(%p: ptr<S>) -> ptr<i64> {\nentry:\n    %q = field_addr S %p, 1\n    ret %q\n}\n";
    let lib = parse_library(text).expect("parses");
    let printed = print_library(&lib);
    assert!(printed.contains("field_addr S %0, 1"), "{printed}");
    assert_eq!(parse_library(&printed).expect("reparses"), lib);
    let named = parse_library("struct S { a: i32, b: i64 }\nfn f(%p: ptr<S>) -> ptr<i64> {\nentry:\n    %q = field_addr S %p, 1\n    ret %q\n}\n")
        .expect("parses");
    assert!(print_library(&named).contains("field_addr S %0, b"));
}

/// Found by the `ir_decode` fuzz target: a struct named like a type
/// parameter of the function that prints it (here an undeclared `T` from
/// another template's signature, recorded at a call) must read back as the
/// struct, not the parameter.
#[test]
fn a_struct_named_like_a_type_parameter_in_scope_prints_so_that_it_reads_back() {
    let text = "fn a<U: int>(%n: T) -> bool {\nentry:\n    %t = const bool true\n    ret %t\n}\n\n\
                fn b<T: int>(%n: T) -> bool {\nentry:\n    %r = call a<T>(%n)\n    ret %r\n}\n";
    let lib = jit_ir::text::parse_library(text).expect("parses");
    let printed = jit_ir::text::print_library(&lib);
    assert!(
        printed.contains("call a<T>(%0) : fn(struct T) -> bool"),
        "{printed}"
    );
    assert_eq!(
        jit_ir::text::parse_library(&printed).expect("reparses"),
        lib
    );
    // A declared struct shadowed by a type parameter, likewise.
    let text = "struct T { x: i64 }\n\nfn f<T: int>(%p: ptr<struct T>, %x: T) -> T {\nentry:\n    ret %x\n}\n";
    let lib = jit_ir::text::parse_library(text).expect("parses");
    let printed = jit_ir::text::print_library(&lib);
    assert!(printed.contains("%0: ptr<struct T>, %1: T"), "{printed}");
    assert_eq!(
        jit_ir::text::parse_library(&printed).expect("reparses"),
        lib
    );
}

/// Found next by the same target: `struct f64` parsed as a struct named
/// `f64` printed back as the scalar. A type keyword is no struct's name.
#[test]
fn struct_before_a_type_keyword_is_a_syntax_error() {
    for keyword in ["f64", "i8", "bool", "rawptr", "ptr", "fn", "struct"] {
        let text = format!("import fn f() -> struct {keyword}\n");
        let e = jit_ir::text::parse_library(&text).expect_err(keyword);
        assert!(
            matches!(e.kind, jit_ir::ErrorKind::Syntax(_)),
            "{keyword}: {e}"
        );
    }
    // A struct called like a keyword only in part is fine.
    let lib =
        jit_ir::text::parse_library("struct f64x { a: f64 }\nimport fn f() -> ptr<struct f64x>\n")
            .expect("parses");
    let ret = lib.import("f").and_then(|d| d.sig.ret.clone());
    let is_f64x =
        |t: &jit_ir::ir::Type| matches!(t, jit_ir::ir::Type::Struct(s) if s.name == "f64x");
    assert!(
        matches!(&ret, Some(jit_ir::ir::Type::Ptr(inner)) if is_f64x(inner)),
        "{ret:?}"
    );
}
