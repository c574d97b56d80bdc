//! A library is laid out and verified for the target it is given: pointer
//! size and alignment reach struct layouts, `size_of` and the byte offsets
//! of instantiated code; argument limits reach the verifier.

use jit_ir::instantiate::instantiate;
use jit_ir::ir::{IntType, Library, Literal, Op, StructType, TemplateName, Type};
use jit_ir::layout::{Layout, layout_of, struct_layout};
use jit_ir::target::Target;
use jit_ir::{ErrorKind, library};

fn collections_for(target: Target) -> Library {
    let lib = library::collections()
        .expect("the shipped library verifies")
        .with_target(target);
    jit_ir::verify::verify_library(&lib).expect("the shipped library verifies for every target");
    lib
}

/// `Pair<i8, ptr<i64>>`.
fn pair_i8_ptr() -> StructType {
    StructType {
        name: "Pair".into(),
        args: vec![Type::Int(IntType::I8), Type::Int(IntType::I64).ptr_to()],
    }
}

#[test]
fn pair_of_i8_and_pointer_is_16_bytes_on_x86_64_and_8_on_wasm32() {
    let x64 = struct_layout(&collections_for(Target::X86_64_SYSV), &pair_i8_ptr()).unwrap();
    assert_eq!(x64.layout, Layout { size: 16, align: 8 });
    assert_eq!(x64.fields.iter().map(|f| f.0).collect::<Vec<_>>(), [0, 8]);

    let wasm = struct_layout(&collections_for(Target::WASM32), &pair_i8_ptr()).unwrap();
    assert_eq!(wasm.layout, Layout { size: 8, align: 4 });
    assert_eq!(wasm.fields.iter().map(|f| f.0).collect::<Vec<_>>(), [0, 4]);
}

#[test]
fn x86_64_is_the_default_target() {
    let lib = library::collections().unwrap();
    assert_eq!(*lib.target(), Target::X86_64_SYSV);
    assert_eq!(Target::default(), Target::X86_64_SYSV);
    let ptr = Type::Int(IntType::I64).ptr_to();
    assert_eq!(layout_of(&lib, &ptr).unwrap(), Layout { size: 8, align: 8 });
}

#[test]
fn every_pointer_type_takes_the_targets_size() {
    let lib = collections_for(Target::WASM32);
    let fn_ptr: Type = jit_ir::text::parse_type("fn(i64) -> i64").unwrap();
    for ty in [Type::RawPtr, Type::Int(IntType::U8).ptr_to(), fn_ptr] {
        assert_eq!(
            layout_of(&lib, &ty).unwrap(),
            Layout { size: 4, align: 4 },
            "{ty}"
        );
    }
    // Scalars do not depend on the target.
    assert_eq!(
        layout_of(&lib, &Type::F64).unwrap(),
        Layout { size: 8, align: 8 }
    );
}

/// The constant `size_of<Pair<i8, ptr<i64>>>` lowers to, in an instance
/// made for `target`.
fn size_of_pair_in(target: Target) -> i128 {
    let text = "fn size<T: any>() -> i64 {\nentry:\n    %s = size_of T\n    ret %s\n}\n";
    let lib = jit_ir::text::parse_library(&format!(
        "struct Pair<T: any, U: any> {{\n    first: T,\n    second: U,\n}}\n{text}"
    ))
    .unwrap()
    .with_target(target);
    jit_ir::verify::verify_library(&lib).unwrap();
    let inst = instantiate(
        &lib,
        &TemplateName::free("size"),
        &[Type::Struct(Box::new(pair_i8_ptr()))],
    )
    .unwrap();
    let consts: Vec<i128> = inst
        .function
        .blocks
        .iter()
        .flat_map(|b| &b.insts)
        .filter_map(|i| match i.op {
            Op::Const {
                value: Literal::Int(v),
                ..
            } => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(consts.len(), 1, "{consts:?}");
    consts[0]
}

#[test]
fn size_of_in_an_instance_is_the_targets_layout() {
    assert_eq!(size_of_pair_in(Target::X86_64_SYSV), 16);
    assert_eq!(size_of_pair_in(Target::WASM32), 8);
}

#[test]
fn argument_limits_come_from_the_target() {
    let seven = "fn f(%a: i64, %b: i64, %c: i64, %d: i64, %e: i64, %g: ptr<i8>, %h: bool) {\nentry:\n    ret\n}\n";
    let lib = jit_ir::text::parse_library(seven).unwrap();
    let e = jit_ir::verify::verify_library(&lib).expect_err("seven integer arguments on x86-64");
    assert_eq!(
        e.kind,
        ErrorKind::TooManyArgs {
            ints: 7,
            floats: 0,
            max_ints: 6,
            max_floats: 8
        }
    );
    assert!(!lib.is_verified());
    let wasm = lib.with_target(Target::WASM32);
    jit_ir::verify::verify_library(&wasm).expect("wasm32 passes any number of arguments");
    assert!(wasm.is_verified());
    // Verified for wasm32 is not verified for x86-64.
    let back = wasm.with_target(Target::X86_64_SYSV);
    assert!(!back.is_verified());
    assert_eq!(jit_ir::verify::verify_library(&back).unwrap_err(), e);
}
