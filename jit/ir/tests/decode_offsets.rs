//! A TemplateCode section decoded where it sits in its file reports errors
//! at file offsets, while item offsets stay relative to the section.

use jit_ir::binary::{decode_library, decode_library_at, encode_library};
use jit_ir::{ErrorKind, Location, library};

#[test]
fn errors_of_a_section_in_a_file_carry_file_offsets() {
    // An entry whose length runs past the section: found at section offset 11.
    let bytes = b"GTPL\x01\x00\x01\x00\x00\x00\x01\xff\xff\x7f";
    let here = decode_library(bytes).unwrap_err();
    let there = decode_library_at(bytes, 0x1000).unwrap_err();
    assert_eq!(here.kind, there.kind);
    let Location::Offset(at) = here.location else {
        panic!("{here}")
    };
    assert_eq!(there.location, Location::Offset(0x1000 + at));
    assert!(
        there
            .to_string()
            .ends_with(&format!("(at offset {:#x})", 0x1000 + at))
    );
}

#[test]
fn a_bad_magic_is_at_the_sections_first_byte() {
    let e = decode_library_at(b"GTPX\x01\x00\x00\x00\x00\x00", 0x240).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadMagic(*b"GTPX"));
    assert_eq!(e.location, Location::Offset(0x240));
}

#[test]
fn item_offsets_stay_relative_to_the_section() {
    let encoded = encode_library(&library::collections().unwrap());
    let a = decode_library(&encoded.bytes).unwrap();
    let b = decode_library_at(&encoded.bytes, 0x5000).unwrap();
    assert_eq!(a.offsets, b.offsets);
    assert_eq!(a.library, b.library);
}
