//! A library decoded on demand answers as the whole library does, decodes
//! each entry at most once and only when it is used, and reports a
//! template that does not verify, or does not decode, when that template
//! is first instantiated while the others still instantiate.

use std::sync::Arc;

use jit_ir::binary::{decode_library_lazily, encode_library};
use jit_ir::instantiate::{instantiate, instantiate_symbol};
use jit_ir::ir::{Library, TemplateName, Type};
use jit_ir::{ErrorKind, Location, library};

fn lazily(lib: &Library, at: u64) -> Library {
    let bytes: Arc<[u8]> = encode_library(lib).bytes.into();
    decode_library_lazily(bytes, at).expect("the framing is sound")
}

fn parse(text: &str) -> Library {
    jit_ir::text::parse_library(text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_instantiation_equals_the_whole_librarys() {
    let whole = library::collections().unwrap();
    let lazy = lazily(&whole, 0);
    assert!(lazy.is_lazy());
    assert_eq!(lazy.len(), whole.len());
    let mut compared = 0;
    for f in whole.functions() {
        for args in [
            vec![Type::F64],
            vec![Type::Int(jit_ir::ir::IntType::I32)],
            vec![Type::Int(jit_ir::ir::IntType::U8), Type::F32],
        ] {
            let a = instantiate(&whole, &f.name, &args);
            let b = instantiate(&lazy, &f.name, &args);
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.function, b.function, "{}", a.symbol);
                    assert_eq!(a.reg_types, b.reg_types, "{}", a.symbol);
                    assert_eq!(a.dependencies, b.dependencies, "{}", a.symbol);
                    compared += 1;
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{}", f.name),
                (a, b) => panic!("{}: {a:?} against {b:?}", f.name),
            }
        }
    }
    assert!(compared > 20, "only {compared} instances compared");
}

#[test]
fn entries_are_decoded_once_and_only_when_used() {
    let whole = library::collections().unwrap();
    let lazy = lazily(&whole, 0);
    assert_eq!(lazy.decoded_count(), 0, "scanning decodes nothing");
    instantiate_symbol(&lazy, "sum$f64").unwrap();
    let after_sum = lazy.decoded_count();
    assert!(
        (1..=2).contains(&after_sum),
        "sum and at most what it names: {after_sum}"
    );
    for _ in 0..3 {
        instantiate_symbol(&lazy, "sum$f64").unwrap();
        instantiate_symbol(&lazy, "sum$i32").unwrap();
    }
    assert_eq!(lazy.decoded_count(), after_sum, "nothing is decoded twice");
    instantiate_symbol(&lazy, "quicksort$i64").unwrap();
    assert!(lazy.decoded_count() > after_sum);
    assert!(lazy.decoded_count() < lazy.len() as u64);
}

#[test]
fn a_template_that_does_not_verify_fails_at_its_first_use_and_others_still_instantiate() {
    // `bad` adds a bool, which `T: num` never is after substitution but the
    // generic check rejects outright.
    let text = "\
fn good<T: num>(%x: T) -> T {
entry:
    %y = add T %x, %x
    ret %y
}
fn bad<T: num>(%x: T) -> T {
entry:
    %b = const bool true
    %y = add T %x, %b
    ret %y
}
";
    let lib = parse(text);
    jit_ir::verify::verify_library(&lib).expect_err("the whole library does not verify");
    let lazy = lazily(&lib, 0);
    let ok = instantiate(&lazy, &TemplateName::free("good"), &[Type::F64]).unwrap();
    assert_eq!(ok.symbol, "good$f64");
    let e = instantiate(&lazy, &TemplateName::free("bad"), &[Type::F64]).unwrap_err();
    assert!(
        matches!(&e.location, Location::Instruction { function, .. } if function == "bad"),
        "{e}"
    );
    assert!(matches!(e.kind, ErrorKind::TypeMismatch { .. }), "{e}");
    // Asked again: the same error, remembered; the good one still works.
    assert_eq!(
        instantiate(&lazy, &TemplateName::free("bad"), &[Type::F64]).unwrap_err(),
        e
    );
    instantiate(&lazy, &TemplateName::free("good"), &[Type::F32]).unwrap();
}

#[test]
fn a_template_that_does_not_decode_fails_at_its_first_use_at_its_file_offset() {
    let text = "\
fn good<T: num>(%x: T) -> T {
entry:
    ret %x
}
fn broken<T: num>(%x: T) -> T {
entry:
    ret %x
}
";
    let encoded = encode_library(&parse(text));
    let mut bytes = encoded.bytes.clone();
    // The last byte of `broken`'s payload belongs to its terminator: make
    // it a byte that leaves the payload undecodable.
    let last = bytes.len() - 1;
    bytes[last] = 0xEE;
    let lazy = decode_library_lazily(bytes.into(), 0x400).expect("the framing is sound");
    instantiate(&lazy, &TemplateName::free("good"), &[Type::F64]).unwrap();
    let e = instantiate(&lazy, &TemplateName::free("broken"), &[Type::F64]).unwrap_err();
    // A decoder's error, located in the file, not the verifier's.
    let Location::Offset(at) = e.location else {
        panic!("{e}")
    };
    assert!(at >= 0x400 + encoded.offsets[1], "{e}");
    instantiate(
        &lazy,
        &TemplateName::free("good"),
        &[Type::Int(jit_ir::ir::IntType::I32)],
    )
    .unwrap();
}

#[test]
fn the_framing_is_checked_when_the_section_is_read() {
    let encoded = encode_library(&library::collections().unwrap());
    // Cut inside the last entry.
    let cut: Arc<[u8]> = encoded.bytes[..encoded.bytes.len() - 3].into();
    let e = decode_library_lazily(cut, 0x100).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Truncated(_)), "{e}");
    assert!(matches!(e.location, Location::Offset(at) if at > 0x100));
    // Two templates of one name.
    let twice = "fn f() {\nentry:\n    ret\n}\nfn g() {\nentry:\n    ret\n}\n";
    let mut encoded = encode_library(&parse(twice));
    let g = encoded.offsets[1];
    // The name of the second entry starts after its kind, length and the
    // name's own length byte.
    let name_at = g + 3;
    assert_eq!(encoded.bytes[name_at], b'g');
    encoded.bytes[name_at] = b'f';
    let e = decode_library_lazily(encoded.bytes.into(), 0).unwrap_err();
    assert_eq!(e.kind, ErrorKind::DuplicateItem("f".into()));
    assert_eq!(e.location, Location::Offset(g));
}

#[test]
fn verifying_the_whole_lazy_library_agrees_with_the_eager_one() {
    let good = library::collections().unwrap();
    let lazy = lazily(&good, 0);
    jit_ir::verify::verify_library(&lazy).unwrap();
    assert!(lazy.is_verified());
    assert_eq!(lazy.decoded_count(), lazy.len() as u64);
    let bad = parse(
        "fn f(%a: i64, %b: i64, %c: i64, %d: i64, %e: i64, %g: i64, %h: i64) {\nentry:\n    ret\n}\n",
    );
    let whole = jit_ir::verify::verify_library(&bad).unwrap_err();
    let lazy = jit_ir::verify::verify_library(&lazily(&bad, 0)).unwrap_err();
    assert_eq!(whole, lazy);
}
