//! The module contract and validation: what every emitted module imports
//! and exports, that every instance set of the shipped library validates,
//! and that a module the validator rejects is an error, not a panic.

mod support;

use jit::interp::Value;
use jit::ir::{Constraint, IntType, Library, TemplateName, Type};
use jit::wasm::{Error, ImportKind, abi};
use support::{for_wasm32, module};
use wasmparser::{ElementKind, ExternalKind, Operator, Parser, Payload, TypeRef, ValType};

fn collections() -> Library {
    for_wasm32(jit::library::collections().expect("library"))
}

/// Every type argument list a template is exercised with: each scalar its
/// constraint admits, and a few pairs.
fn type_args(params: &[jit::ir::TypeParam]) -> Vec<Vec<Type>> {
    let mut scalars = Type::scalars();
    scalars.retain(|t| *t != Type::RawPtr);
    scalars.push(Type::Int(IntType::U8).ptr_to());
    match params {
        [] => vec![vec![]],
        [p] => scalars
            .into_iter()
            .chain([Type::RawPtr])
            .filter(|t| p.constraint.admits(t))
            .map(|t| vec![t])
            .collect(),
        _ => vec![
            vec![Type::Int(IntType::I8), Type::RawPtr],
            vec![Type::F32, Type::Int(IntType::U16)],
            vec![Type::Bool, Type::F64],
        ],
    }
}

#[test]
fn adds_two_numbers_in_a_module_that_runs() {
    let lib = for_wasm32(
        jit::text::parse_library(
            "fn add(%a: i32, %b: i32) -> i32 {\nb0:\n %c = add i32 %a, %b\n ret %c\n}",
        )
        .expect("parses"),
    );
    let m = module(&lib, &[(TemplateName::free("add"), vec![])]);
    let mut run = jit::wasm::run::Runner::new(&m).expect("instantiates");
    let got = run
        .call("add", &[Value::I32(5), Value::I32(3)])
        .expect("runs");
    assert_eq!(got, Some(Value::I32(8)));
}

#[test]
fn every_instance_set_of_the_library_validates() {
    let lib = collections();
    let mut checked = 0;
    for f in lib.functions() {
        for args in type_args(&f.type_params) {
            let m = module(&lib, &[(f.name.clone(), args.clone())]);
            jit::wasm::validate(m.bytes()).unwrap_or_else(|e| panic!("{} {args:?}: {e}", f.name));
            assert!(m.bytes().starts_with(b"\0asm"));
            checked += 1;
        }
    }
    assert!(checked >= 150, "only {checked} sets compiled");
    // Struct arguments too, where the template admits them.
    let pair = Type::Struct(Box::new(jit::ir::StructType {
        name: "Pair".into(),
        args: vec![Type::Int(IntType::I8), Type::F64],
    }));
    for name in ["swap", "reverse"] {
        assert!(Constraint::Any.admits(&pair));
        module(&lib, &[(TemplateName::free(name), vec![pair.clone()])]);
    }
}

#[test]
fn the_module_imports_and_exports_by_the_contract() {
    let lib = collections();
    let push = (TemplateName::method("Vec", "push"), vec![Type::I64]);
    let sort = (TemplateName::free("sort_desc"), vec![Type::F64]);
    let vec = |m: &str| (TemplateName::method("Vec", m), vec![Type::I64]);
    let m = module(&lib, &[sort, push, vec("new"), vec("push_from")]);
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut elements = Vec::new();
    for payload in Parser::new(0).parse_all(m.bytes()) {
        match payload.expect("parses") {
            Payload::ImportSection(s) => {
                for i in s {
                    let i = i.expect("import");
                    imports.push((i.module.to_owned(), i.name.to_owned(), i.ty));
                }
            }
            Payload::ExportSection(s) => {
                for e in s {
                    let e = e.expect("export");
                    exports.push((e.name.to_owned(), e.kind));
                }
            }
            Payload::ElementSection(s) => {
                for e in s {
                    let e = e.expect("element");
                    let ElementKind::Active {
                        table_index,
                        offset_expr,
                    } = e.kind
                    else {
                        panic!("a passive or declared segment")
                    };
                    let offset: Vec<Operator> = offset_expr
                        .get_operators_reader()
                        .into_iter()
                        .map(|o| o.expect("operator"))
                        .collect();
                    let items: Vec<u32> = match e.items {
                        wasmparser::ElementItems::Functions(f) => {
                            f.into_iter().map(|i| i.expect("index")).collect()
                        }
                        _ => panic!("expressions instead of function indices"),
                    };
                    elements.push((table_index, offset, items));
                }
            }
            _ => {}
        }
    }
    // The memory, the table, the two bases, then the natives by name.
    let names: Vec<&str> = imports.iter().map(|(_, n, _)| n.as_str()).collect();
    assert!(imports.iter().all(|(module, _, _)| module == "env"));
    assert_eq!(
        &names[..4],
        [
            "memory",
            "__indirect_function_table",
            "__memory_base",
            "__table_base"
        ]
    );
    assert!(matches!(imports[0].2, TypeRef::Memory(m) if !m.memory64 && !m.shared));
    assert!(
        matches!(imports[1].2, TypeRef::Table(t) if t.element_type == wasmparser::RefType::FUNCREF)
    );
    for (_, _, ty) in &imports[2..4] {
        assert!(matches!(ty, TypeRef::Global(g) if g.content_type == ValType::I32 && !g.mutable));
    }
    let mut natives: Vec<&str> = names[4..].to_vec();
    natives.sort_unstable();
    assert_eq!(natives, ["malloc", "memcpy", "realloc"]);
    assert!(m.imports().iter().all(|i| i.kind == ImportKind::Native));
    // Every instance by its mangled name, and the trap code and kind.
    for symbol in [
        "sort_desc$f64",
        "quicksort_by$f64",
        "compare_desc$f64",
        "Vec$i64$push",
        "Vec$i64$reserve_one",
    ] {
        assert!(
            exports.contains(&(symbol.to_owned(), ExternalKind::Func)),
            "{symbol} not exported: {exports:?}"
        );
    }
    for global in [abi::TRAP_CODE, abi::TRAP_KIND] {
        assert!(exports.contains(&(global.to_owned(), ExternalKind::Global)));
    }
    // The one address-taken function at __table_base + 0.
    assert_eq!(m.table(), ["compare_desc$f64"]);
    let [(table, offset, items)] = elements.as_slice() else {
        panic!("one element segment expected: {elements:?}")
    };
    assert_eq!(table.unwrap_or(0), 0);
    assert!(
        matches!(
            offset.as_slice(),
            [Operator::GlobalGet { global_index: 1 }, Operator::End]
        ),
        "{offset:?}"
    );
    let position = m
        .exports()
        .iter()
        .position(|e| e.symbol == "compare_desc$f64")
        .expect("exported");
    assert_eq!(*items, [(m.imports().len() + position) as u32]);
}

/// Byte range of the code section's contents.
fn code_section(bytes: &[u8]) -> std::ops::Range<usize> {
    Parser::new(0)
        .parse_all(bytes)
        .find_map(|p| match p.expect("parses") {
            Payload::CodeSectionStart { range, .. } => Some(range),
            _ => None,
        })
        .expect("a code section")
}

#[test]
fn a_corrupted_code_section_is_reported_with_the_validators_offset() {
    let lib = collections();
    let m = module(
        &lib,
        &[(TemplateName::free("sum"), vec![Type::Int(IntType::I32)])],
    );
    let code = code_section(m.bytes());
    let mut bytes = m.into_bytes();
    // The last byte of the code section is the `end` of the last body; no
    // instruction has the opcode 0xff.
    assert_eq!(bytes[code.end - 1], 0x0b);
    bytes[code.end - 1] = 0xff;
    let err = jit::wasm::validate(&bytes).expect_err("the corrupted module is rejected");
    let Error::Invalid {
        offset, message, ..
    } = &err
    else {
        panic!("not a validation error: {err:?}")
    };
    assert!(
        code.contains(offset),
        "offset {offset:#x} outside {code:x?}"
    );
    assert!(!message.is_empty());
    assert!(err.to_string().contains(&format!("{offset:#x}")), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    // And a truncated module is an error too, never a panic (8 bytes
    // are the header alone, a valid empty module).
    for cut in [0, 4, 9, code.start, bytes.len() - 1] {
        assert!(jit::wasm::validate(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}
