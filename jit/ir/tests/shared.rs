//! Shared memories and tables in the IR: every operation reads, prints,
//! encodes and decodes back to itself; the verifier checks names, types,
//! signatures and sizes; instantiation substitutes the accessed type.

use jit_ir::binary::{decode_library, decode_library_lazily, encode_library};
use jit_ir::instantiate::instantiate;
use jit_ir::ir::{Item, Library, Linkage, Op, TemplateName, Type};
use jit_ir::text::{parse_library, print_library};
use jit_ir::verify::{verify_library, verify_template};
use jit_ir::{ErrorKind, Location};

/// Every declaration form and every operation on them.
const SHARED: &str = "
memory heap 1, 16
memory big 2
import memory other
table dispatch fn(i64) -> i64, 4, 64
import table handlers fn(i64) -> i64

fn load_at<T: num>(%off: i64) -> T {
entry:
    %v = mem_load T heap, %off
    ret %v
}

fn store_at<T: num>(%off: i64, %v: T) {
entry:
    mem_store T %v, heap, %off
    ret
}

fn grow_by(%pages: i64) -> i64 {
entry:
    %old = mem_grow big, %pages
    %size = mem_size other
    %sum = add i64 %old, %size
    ret %sum
}

fn tables(%i: i64, %x: i64) -> i64 {
entry:
    %f = table_get dispatch, %i
    table_set handlers, %i, %f
    %n = table_size dispatch
    %one = const i64 1
    %old = table_grow handlers, %one
    %r = call_table dispatch, %i(%x)
    %s = add i64 %r, %n
    %t = add i64 %s, %old
    ret %t
}
";

fn parse(text: &str) -> Library {
    parse_library(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn declarations_and_operations_round_trip() {
    let lib = parse(SHARED);
    verify_library(&lib).expect("verifies");
    let printed = print_library(&lib);
    assert_eq!(parse(&printed), lib, "text is a fixed point:\n{printed}");
    assert!(printed.contains("memory heap 1, 16"), "{printed}");
    assert!(printed.contains("import table handlers fn(i64) -> i64"));
    assert!(printed.contains("call_table dispatch, %0(%1) : fn(i64) -> i64"));
    let encoded = encode_library(&lib);
    let decoded = decode_library(&encoded.bytes).expect("decodes");
    assert_eq!(decoded.library, lib);
    assert_eq!(encode_library(&decoded.library), encoded);
    // Kind bytes 5 and 6 for memories and tables.
    for (item, &off) in lib.items().iter().zip(&encoded.offsets) {
        let kind = encoded.bytes[off];
        match item {
            Item::Memory(_) => assert_eq!(kind, 5),
            Item::Table(_) => assert_eq!(kind, 6),
            _ => {}
        }
    }
    let heap = lib.memory("heap").expect("declared");
    assert_eq!(
        heap.linkage,
        Linkage::Define {
            initial: 1,
            maximum: Some(16)
        }
    );
    assert_eq!(lib.memory("other").unwrap().linkage, Linkage::Import);
    assert!(lib.memory("dispatch").is_none(), "a table is not a memory");
    let sig = &lib.table("dispatch").unwrap().sig;
    assert_eq!(
        (sig.params.as_slice(), sig.ret.as_ref()),
        (&[Type::I64][..], Some(&Type::I64))
    );
    assert_eq!(lib.shared_items().len(), 5);
}

#[test]
fn a_lazily_decoded_library_verifies_what_a_template_uses() {
    let bytes = encode_library(&parse(SHARED)).bytes;
    let lib = decode_library_lazily(bytes.into(), 0).expect("frames");
    assert!(verify_template(&lib, &TemplateName::free("tables")).expect("verifies"));
    assert_eq!(lib.table("handlers").unwrap().linkage, Linkage::Import);
}

#[test]
fn instantiation_substitutes_the_accessed_type() {
    let lib = parse(SHARED);
    verify_library(&lib).unwrap();
    let inst =
        instantiate(&lib, &TemplateName::free("load_at"), &[Type::F32]).expect("instantiates");
    let op = &inst.function.blocks[0].insts[0].op;
    assert_eq!(
        *op,
        Op::MemLoad {
            ty: Type::F32,
            memory: "heap".into(),
            offset: jit_ir::ir::Reg(0)
        }
    );
    assert_eq!(inst.reg_types.get(jit_ir::ir::Reg(1)), Some(&Type::F32));
}

fn rejected(text: &str) -> jit_ir::Error {
    verify_library(&parse(text)).expect_err("the verifier must reject this")
}

#[test]
fn unknown_memories_and_tables_are_named() {
    let e = rejected(
        "fn f(%o: i64) -> i64 {\nentry:\n    %v = mem_load i64 nowhere, %o\n    ret %v\n}\n",
    );
    assert_eq!(
        e.kind,
        ErrorKind::Unknown {
            what: "memory",
            name: "nowhere".into()
        }
    );
    assert!(matches!(e.location, Location::Instruction { .. }), "{e}");
    // A table is not a memory, nor the reverse.
    let e = rejected(
        "table t fn(i64) -> i64, 1\nfn f() -> i64 {\nentry:\n    %n = mem_size t\n    ret %n\n}\n",
    );
    assert!(
        matches!(e.kind, ErrorKind::Unknown { what: "memory", .. }),
        "{e}"
    );
    let e = rejected("memory m 1\nfn f() -> i64 {\nentry:\n    %n = table_size m\n    ret %n\n}\n");
    assert!(
        matches!(e.kind, ErrorKind::Unknown { what: "table", .. }),
        "{e}"
    );
}

#[test]
fn operand_types_and_signatures_are_checked() {
    // The offset is an i64.
    let e = rejected(
        "memory m 1\nfn f(%o: i32) -> i32 {\nentry:\n    %v = mem_load i32 m, %o\n    ret %v\n}\n",
    );
    assert!(matches!(e.kind, ErrorKind::TypeMismatch { .. }), "{e}");
    // A struct is not a register type.
    let e = rejected(
        "struct P { a: i64 }\nmemory m 1\nfn f(%o: i64) {\nentry:\n    %v = mem_load P m, %o\n    ret\n}\n",
    );
    assert!(matches!(e.kind, ErrorKind::NotRegisterType(_)), "{e}");
    // A table holds functions of its own signature only.
    let e = rejected(
        "table t fn(i64) -> i64, 1\nfn g(%x: i32) -> i32 {\nentry:\n    ret %x\n}\n\
         fn f(%i: i64) {\nentry:\n    %g = func_addr g\n    table_set t, %i, %g\n    ret\n}\n",
    );
    assert!(matches!(e.kind, ErrorKind::TypeMismatch { .. }), "{e}");
    let e = rejected(
        "table t fn(i64) -> i64, 1\nfn f(%i: i64) -> i32 {\nentry:\n    \
         %r = call_table t, %i(%i) : fn(i64) -> i32\n    ret %r\n}\n",
    );
    assert!(matches!(e.kind, ErrorKind::SignatureMismatch { .. }), "{e}");
    // Arguments follow the table's signature.
    let e = rejected(
        "table t fn(i64) -> i64, 1\nfn f(%i: i64) -> i64 {\nentry:\n    \
         %r = call_table t, %i()\n    ret %r\n}\n",
    );
    assert!(matches!(e.kind, ErrorKind::ArgCount { .. }), "{e}");
}

#[test]
fn sizes_are_checked_against_each_other_and_the_limits() {
    let e = rejected("memory m 4, 2\n");
    assert_eq!(
        e.kind,
        ErrorKind::MaximumBelowInitial {
            name: "m".into(),
            initial: 4,
            maximum: 2
        }
    );
    assert_eq!(e.location, Location::Item("m".into()));
    let e = rejected("memory m 1, 65537\n");
    assert!(
        matches!(
            e.kind,
            ErrorKind::Limit {
                what: "memory pages",
                found: 65537,
                ..
            }
        ),
        "{e}"
    );
    let e = rejected("table t fn(), 2000000\n");
    assert!(
        matches!(
            e.kind,
            ErrorKind::Limit {
                what: "table entries",
                ..
            }
        ),
        "{e}"
    );
    verify_library(&parse("memory m 65536\ntable t fn(), 0, 1048576\n")).expect("at the limits");
    // One namespace for memories and tables.
    let e = parse_library("memory x 1\ntable x fn(), 1\n").expect_err("duplicate");
    assert_eq!(e.kind, ErrorKind::DuplicateItem("x".into()));
}

#[test]
fn a_wrong_linkage_byte_is_a_typed_error() {
    let lib = parse("memory m 1, 2\n");
    let mut bytes = encode_library(&lib).bytes;
    // The entry: kind, length, name (length byte, "m"), then the linkage tag.
    let tag_at = 10 + 1 + 1 + 2;
    assert_eq!(bytes[tag_at], 0x02);
    bytes[tag_at] = 0x07;
    let e = decode_library(&bytes).expect_err("bad tag");
    assert_eq!(
        e.kind,
        ErrorKind::BadTag {
            what: "linkage",
            tag: 7
        }
    );
    assert_eq!(e.location, Location::Offset(tag_at));
}
