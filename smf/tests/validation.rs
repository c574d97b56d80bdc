//! Each validation rule of SMF v1.1, at its boundaries (len−1, len, len+1).
//!
//! Every test damages one field of the sample module and re-records the
//! module hash, so the verdict is that rule's and not the hash check's.

mod common;

use common::{layout, put_u16, put_u32, put_u64, sample, u64_at, verdict, verdict_after};
use smf::{ErrorKind, Module, NoteSize, SectionType};

// Section and symbol indices of the sample module.
const TEXT: usize = 0;
const DATA: usize = 1;
const BSS: usize = 3;
const NOTE_SDN: usize = 5;
const TEMPLATES: usize = 6;
const REL_TEXT: usize = 7;
const SYM_MAIN: usize = 0;
const SYM_SUM_I32: usize = 1;
const SYM_DOT: usize = 5;

#[test]
fn sample_is_valid() {
    assert_eq!(verdict(&sample()), "ok");
}

#[test]
fn truncation_below_the_header_size() {
    let bytes = smf::ModuleBuilder::new().build().unwrap();
    assert_eq!(verdict(&bytes), "ok");
    assert_eq!(verdict(&bytes[1..]), "truncated");
    assert_eq!(verdict(&[]), "truncated");
    let err = Module::parse(&bytes[..127]).unwrap_err();
    assert_eq!(err.offset(), Some(0));
    assert!(
        err.to_string()
            .contains("needs 128 bytes but only 127 remain"),
        "{err}"
    );
}

#[test]
fn truncating_a_module_is_always_an_error_never_a_panic() {
    common::assert_every_prefix_is_an_error(&sample());
}

#[test]
fn magic_is_checked_first_and_shows_the_bytes_found() {
    let mut bytes = sample();
    let h = bytes.len() - 128;
    bytes[h..h + 4].copy_from_slice(b"ELF\x7f");
    bytes[h + 4] = 9; // a bad version too: magic wins
    let err = Module::parse(&bytes).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::BadMagic { found: *b"ELF\x7f" });
    assert_eq!(err.offset(), Some(h as u64));
    assert!(
        err.to_string()
            .starts_with("bad magic 45 4c 46 7f (expected"),
        "{err}"
    );
}

#[test]
fn versions_other_than_1_0_and_1_1_are_rejected() {
    let bytes = sample();
    let at = |major: u8, minor: u8| {
        verdict_after(&bytes, |b, l| {
            b[l.header + 4] = major;
            b[l.header + 5] = minor;
        })
    };
    assert_eq!(at(1, 0), "ok");
    assert_eq!(at(1, 1), "ok");
    assert_eq!(at(1, 2), "unsupported-version");
    assert_eq!(at(0, 1), "unsupported-version");
    assert_eq!(at(2, 0), "unsupported-version");
}

#[test]
fn undefined_enumerated_header_values_are_rejected() {
    let bytes = sample();
    for (offset, last_valid) in [(6usize, 5u8), (7, 7), (80, 4)] {
        assert_eq!(
            verdict_after(&bytes, |b, l| b[l.header + offset] = last_valid),
            "ok"
        );
        assert_eq!(
            verdict_after(&bytes, |b, l| b[l.header + offset] = last_valid + 1),
            "invalid-value"
        );
    }
    // Every defined flag but HAS_STUB, which must agree with stub_size.
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u32(b, l.header + 8, 0x0F)),
        "ok"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u32(b, l.header + 8, 0x20)),
        "invalid-value"
    );
}

#[test]
fn compression_is_none_or_zstd_lz4_is_refused_and_others_undefined() {
    let bytes = sample();
    for (code, expected) in [
        (0, "ok"),
        (1, "ok"),
        (2, "unsupported"),
        (3, "invalid-value"),
    ] {
        assert_eq!(
            verdict_after(&bytes, |b, l| b[l.header + 12] = code),
            expected,
            "compression {code}"
        );
    }
    let mut lz4 = bytes.clone();
    let h = lz4.len() - 128;
    lz4[h + 12] = 2;
    let err = Module::parse(&lz4).unwrap_err();
    assert_eq!(err.offset(), Some(h as u64 + 12));
    assert!(
        err.to_string()
            .contains("lz4-compressed sections (compression 2): this reader decompresses zstd (compression 1) only"),
        "{err}"
    );
}

#[test]
fn every_reserved_header_byte_must_be_zero() {
    let bytes = sample();
    for offset in [14usize, 15, 20, 23, 87, 96, 127] {
        assert_eq!(
            verdict_after(&bytes, |b, l| b[l.header + offset] = 1),
            "nonzero-reserved",
            "header byte {offset}"
        );
    }
}

#[test]
fn reserved_bytes_of_sections_symbols_and_relocations_must_be_zero() {
    let bytes = sample();
    for off in [1usize, 3, 56, 63] {
        assert_eq!(
            verdict_after(&bytes, |b, l| b[l.section(TEXT) + off] = 1),
            "nonzero-reserved"
        );
    }
    for off in [12usize, 15, 41, 47, 58, 71] {
        assert_eq!(
            verdict_after(&bytes, |b, l| b[l.symbol(SYM_MAIN) + off] = 1),
            "nonzero-reserved"
        );
    }
    assert_eq!(
        verdict_after(&bytes, |b, l| {
            let rel = l.section_data(b, REL_TEXT);
            b[rel + 13] = 1;
        }),
        "nonzero-reserved"
    );
}

#[test]
fn smf_size_bounds() {
    let bytes = sample();
    let len = bytes.len() as u64;
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 88, len)),
        "ok"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 88, len + 1)),
        "bad-base"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 88, u64::MAX)),
        "bad-base"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 88, 127)),
        "bad-base"
    );
    // Smaller than the real size: the base moves into the module and the
    // tables no longer fit.
    assert_ne!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 88, len - 1)),
        "ok"
    );
}

#[test]
fn smf_data_offset_bounds_when_smf_size_is_unknown() {
    let empty = smf::ModuleBuilder::new().build().unwrap();
    let mut with_prefix = vec![0u8; 16];
    with_prefix.extend_from_slice(&empty);
    let h = with_prefix.len() - 128;
    put_u64(&mut with_prefix, h + 88, 0);
    put_u64(&mut with_prefix, h + 64, 0);
    for (offset, expect) in [(15u32, "ok"), (16, "ok"), (17, "bad-base")] {
        let mut b = with_prefix.clone();
        put_u32(&mut b, h + 60, offset);
        assert_eq!(verdict(&b), expect, "smf_data_offset {offset}");
    }
}

#[test]
fn stub_flag_and_sizes_must_agree() {
    let mut builder = common::sample_builder(NoteSize::Recorded);
    builder.stub(b"#!/bin/true\n");
    let bytes = builder.build().unwrap();
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u32(b, l.header + 8, 0)),
        "invalid-value"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u32(b, l.header + 56, 11)),
        "invalid-value"
    );
    let plain = sample();
    assert_eq!(
        verdict_after(&plain, |b, l| put_u32(b, l.header + 56, 4)),
        "invalid-value"
    );
}

#[test]
fn section_table_must_lie_inside_the_data_and_be_aligned() {
    let bytes = sample();
    let l = layout(&bytes);
    let count = u64::from(common::u32_at(&bytes, l.header + 16));
    let sto = u64_at(&bytes, l.header + 24);
    // Moving the table by 8 makes it overlap the symbol table.
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 24, sto + 8)),
        "overlap"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 24, sto + 4)),
        "misaligned"
    );
    let data_len = (l.header - l.base) as u64;
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(
            b,
            l.header + 24,
            ((data_len - count * 64) & !7) + 8
        )),
        "out-of-bounds"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 24, u64::MAX - 7)),
        "out-of-bounds"
    );
}

#[test]
fn symbol_table_bounds_at_the_header() {
    // A module whose symbol table ends exactly at the header would leave no
    // string table; with symbols that is an error about the names.
    let bytes = sample();
    let l = layout(&bytes);
    let count = u64::from(common::u32_at(&bytes, l.header + 40));
    let data_len = (l.header - l.base) as u64;
    let last_fit = (data_len - count * 72) & !7;
    assert_ne!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 32, last_fit)),
        "out-of-bounds"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 32, last_fit + 8)),
        "out-of-bounds"
    );
}

#[test]
fn counts_beyond_the_limits_are_rejected_before_any_allocation() {
    let bytes = sample();
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u32(b, l.header + 16, u32::MAX)),
        "limit-exceeded"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u32(b, l.header + 40, u32::MAX)),
        "limit-exceeded"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u32(
            b,
            l.header + 16,
            smf::limits::MAX_SECTIONS
        )),
        "out-of-bounds"
    );
}

#[test]
fn section_data_must_end_before_the_section_table() {
    let bytes = sample();
    let l = layout(&bytes);
    let sto = u64_at(&bytes, l.header + 24);
    // The relocation section for .data is the last data before the table.
    let last = 8usize;
    let off = u64_at(&bytes, l.section(last) + 8);
    let room = sto - off;
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(
            b,
            l.section(last) + 16,
            room - room % 24
        )),
        "ok"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(last) + 16, room + 24)),
        "out-of-bounds"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(TEXT) + 8, u64::MAX - 8)),
        "out-of-bounds"
    );
}

#[test]
fn overlapping_sections_are_rejected() {
    let bytes = sample();
    let l = layout(&bytes);
    let data_off = u64_at(&bytes, l.section(DATA) + 8);
    // .text is 40 bytes at 0 and .data starts at 40: 40 touches, 41 overlaps.
    assert_eq!(data_off, 40);
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(TEXT) + 16, 40)),
        "ok"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(TEXT) + 16, 41)),
        "overlap"
    );
}

#[test]
fn alignment_must_be_a_power_of_two_and_the_offset_a_multiple() {
    let bytes = sample();
    for (align, expect) in [
        (0u64, "bad-alignment"),
        (1, "ok"),
        (3, "bad-alignment"),
        (16, "ok"),
        (48, "bad-alignment"),
    ] {
        assert_eq!(
            verdict_after(&bytes, |b, l| put_u64(b, l.section(TEXT) + 32, align)),
            expect,
            "alignment {align}"
        );
    }
    // .data sits at 40: aligned to 8, not to 16.
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(DATA) + 32, 8)),
        "ok"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(DATA) + 32, 16)),
        "misaligned"
    );
    let over = smf::limits::MAX_SECTION_ALIGN * 2;
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(TEXT) + 32, over)),
        "limit-exceeded"
    );
}

#[test]
fn section_names_must_be_utf8_and_nul_padded() {
    let bytes = sample();
    assert_eq!(
        verdict_after(&bytes, |b, l| b[l.section(TEXT) + 40] = 0xFF),
        "invalid-utf8"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| b[l.section(TEXT) + 40 + 10] = b'x'),
        "nonzero-reserved"
    );
    // A full 16-byte name needs no NUL.
    assert_eq!(
        verdict_after(&bytes, |b, l| b[l.section(TEXT) + 40..l.section(TEXT) + 56]
            .copy_from_slice(b"sixteen-byte-nam")),
        "ok"
    );
}

#[test]
fn bss_has_no_file_bytes_and_bounded_memory() {
    let bytes = sample();
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(BSS) + 16, 1)),
        "invalid-value"
    );
    let max = smf::limits::MAX_VIRTUAL_SIZE;
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(BSS) + 24, max)),
        "ok"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(BSS) + 24, max + 1)),
        "limit-exceeded"
    );
    // virtual_size, when set, may not be smaller than size.
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(TEXT) + 24, 40)),
        "ok"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(TEXT) + 24, 39)),
        "invalid-value"
    );
}

#[test]
fn symbol_names_must_lie_in_the_string_table() {
    let bytes = sample();
    let m = Module::parse(&bytes).unwrap();
    let len = m.string_table().len() as u32;
    drop(m);
    // The last byte is the final NUL: the empty name (hash must then match "").
    let empty_hash = smf::fnv1a32(b"");
    let set = |b: &mut Vec<u8>, l: &common::Layout, off: u32| {
        put_u32(b, l.symbol(SYM_MAIN), off);
        put_u32(b, l.symbol(SYM_MAIN) + 4, empty_hash);
    };
    assert_eq!(verdict_after(&bytes, |b, l| set(b, l, len - 1)), "ok");
    assert_eq!(verdict_after(&bytes, |b, l| set(b, l, len)), "bad-name");
    assert_eq!(verdict_after(&bytes, |b, l| set(b, l, len + 1)), "bad-name");
    assert_eq!(
        verdict_after(&bytes, |b, l| set(b, l, u32::MAX)),
        "bad-name"
    );
}

#[test]
fn last_name_without_terminating_nul_is_rejected() {
    let bytes = sample();
    assert_eq!(
        verdict_after(&bytes, |b, l| {
            let last = l.header - 1;
            b[last] = b'x';
        }),
        "bad-name"
    );
}

#[test]
fn symbol_names_must_be_utf8_and_match_their_hash() {
    let bytes = sample();
    let m = Module::parse(&bytes).unwrap();
    let name_at = (m.base() + m.string_table_offset()) as usize
        + m.symbol(SYM_MAIN as u32).unwrap().name_offset() as usize;
    drop(m);
    assert_eq!(
        verdict_after(&bytes, |b, _| b[name_at] = 0xC3),
        "invalid-utf8"
    );
    assert_eq!(
        verdict_after(&bytes, |b, _| b[name_at] = b'M'),
        "name-hash-mismatch"
    );
    let err = {
        let mut b = bytes.clone();
        b[name_at] = b'M';
        common::rehash(&mut b);
        Module::parse(&b).unwrap_err()
    };
    assert!(err.to_string().contains("'Main'"), "{err}");
}

#[test]
fn undefined_symbol_fields_are_rejected() {
    let bytes = sample();
    let at = |off: usize, v: u8| verdict_after(&bytes, |b, l| b[l.symbol(SYM_MAIN) + off] = v);
    assert_eq!(at(8, 6), "ok");
    assert_eq!(at(8, 7), "invalid-value");
    assert_eq!(at(9, 3), "invalid-value");
    assert_eq!(at(11, 0x3F & !0x10), "ok");
    assert_eq!(at(11, 0x40), "invalid-value");
}

#[test]
fn defined_symbols_must_lie_inside_their_section() {
    let bytes = sample();
    // sum$i32 is 24 bytes at 16 in the 40-byte .text: it ends exactly at the end.
    let set =
        |value: u64| verdict_after(&bytes, |b, l| put_u64(b, l.symbol(SYM_SUM_I32) + 16, value));
    assert_eq!(set(15), "ok");
    assert_eq!(set(16), "ok");
    assert_eq!(set(17), "bad-symbol");
    assert_eq!(set(u64::MAX), "bad-symbol");
    let idx = |i: u16| verdict_after(&bytes, |b, l| put_u16(b, l.symbol(SYM_MAIN) + 56, i));
    assert_eq!(idx(8), "ok");
    assert_eq!(idx(9), "bad-symbol");
    assert_eq!(idx(0xFFFF), "ok");
}

#[test]
fn exported_count_must_equal_the_global_symbols() {
    let bytes = sample();
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u32(b, l.header + 44, 4)),
        "exported-count-mismatch"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u32(b, l.header + 44, 6)),
        "exported-count-mismatch"
    );
}

#[test]
fn template_offsets_must_lie_inside_template_code() {
    let bytes = sample();
    let size = common::template_code().len() as u64;
    let set = |v: u64| verdict_after(&bytes, |b, l| put_u64(b, l.symbol(SYM_DOT) + 48, v));
    assert_eq!(set(10), "ok");
    assert_eq!(set(9), "bad-symbol");
    assert_eq!(set(size - 1), "ok");
    assert_eq!(set(size), "bad-symbol");
    // A non-template may not carry a template offset.
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.symbol(SYM_MAIN) + 48, 10)),
        "bad-symbol"
    );
}

#[test]
fn template_code_needs_its_magic() {
    let bytes = sample();
    assert_eq!(
        verdict_after(&bytes, |b, l| {
            let at = l.section_data(b, TEMPLATES);
            b[at] = b'X';
        }),
        "bad-template-code"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(TEMPLATES) + 16, 9)),
        "bad-template-code"
    );
}

#[test]
fn relocations_must_stay_in_range() {
    let bytes = sample();
    let rel = |patch: &dyn Fn(&mut Vec<u8>, usize)| {
        verdict_after(&bytes, |b, l| {
            let at = l.section_data(b, REL_TEXT);
            patch(b, at);
        })
    };
    // The abs64 relocation (entry 1) patches 8 bytes of the 40-byte .text.
    assert_eq!(rel(&|b, at| put_u64(b, at + 24, 32)), "ok");
    assert_eq!(rel(&|b, at| put_u64(b, at + 24, 33)), "bad-relocation");
    assert_eq!(
        rel(&|b, at| put_u64(b, at + 24, u64::MAX)),
        "bad-relocation"
    );
    assert_eq!(rel(&|b, at| put_u32(b, at + 8, 5)), "ok");
    assert_eq!(rel(&|b, at| put_u32(b, at + 8, 6)), "bad-relocation");
    assert_eq!(rel(&|b, at| b[at + 12] = 4), "ok");
    assert_eq!(rel(&|b, at| b[at + 12] = 5), "bad-relocation");
    assert_eq!(rel(&|b, at| put_u16(b, at + 14, 1)), "ok");
    assert_eq!(
        rel(&|b, at| put_u16(b, at + 14, 3)),
        "bad-relocation",
        "bss is not patchable"
    );
    assert_eq!(rel(&|b, at| put_u16(b, at + 14, 9)), "bad-relocation");
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.section(REL_TEXT) + 16, 47)),
        "bad-relocation"
    );
}

#[test]
fn module_hash_must_match_when_recorded() {
    let bytes = sample();
    let mut b = bytes.clone();
    b[0] ^= 1;
    let err = Module::parse(&b).unwrap_err();
    assert_eq!(err.kind().code(), "module-hash-mismatch");
    assert_eq!(err.offset(), Some(bytes.len() as u64 - 128 + 64));
    // A hash of 0 means "not recorded".
    let h = b.len() - 128;
    put_u64(&mut b, h + 64, 0);
    assert_eq!(verdict(&b), "ok");
}

#[test]
fn note_sdn_rules() {
    let bytes = common::sample_builder(NoteSize::Scanned).build().unwrap();
    // The scan is bounded by the next section: remove the terminator.
    let damaged = verdict_after(&bytes, |b, l| {
        let at = l.section_data(b, NOTE_SDN) + common::NOTE.len() - 4;
        b[at] = b'X';
    });
    assert_eq!(damaged, "bad-note");
    assert_eq!(
        verdict_after(&bytes, |b, l| b[l.section(NOTE_SDN)] =
            SectionType::Data.code()),
        "bad-note"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| {
            let at = l.section_data(b, NOTE_SDN);
            b[at] = 0xFF;
        }),
        "invalid-utf8"
    );
    // A second section named note.sdn.
    assert_eq!(
        verdict_after(&bytes, |b, l| {
            b[l.section(4)] = SectionType::TemplateMeta.code();
            b[l.section(4) + 40..l.section(4) + 48].copy_from_slice(b"note.sdn");
        }),
        "duplicate-section"
    );
    // A recorded size is exact: one byte short drops the final newline.
    let sized = sample();
    let m_len = common::NOTE.len() as u64;
    let shorter = {
        let mut b = sized.clone();
        let l = layout(&b);
        put_u64(&mut b, l.section(NOTE_SDN) + 16, m_len - 1);
        common::rehash(&mut b);
        b
    };
    assert_eq!(
        Module::parse(&shorter).unwrap().note_sdn(),
        Some(&common::NOTE[..common::NOTE.len() - 1])
    );
}

#[test]
fn terminator_must_be_a_whole_line() {
    for (text, ok) in [
        ("x\n# END_NOTE\n", true),
        ("x\r\n# END_NOTE\r\n", true),
        ("x # END_NOTE\n", false),
        ("x\n# END_NOTES\n", false),
        ("x\n # END_NOTE\n", false),
    ] {
        let mut b = smf::ModuleBuilder::new();
        // The builder insists on a terminator; write a valid one, then swap the text.
        b.set_note(
            &format!("{}\n# END_NOTE\n", "x".repeat(text.len() - 12)),
            NoteSize::Scanned,
        )
        .unwrap();
        b.add_section(SectionType::Data, "d", 1, 8, &[1; 8])
            .unwrap();
        let mut bytes = b.build().unwrap();
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        common::rehash(&mut bytes);
        assert_eq!(verdict(&bytes) == "ok", ok, "{text:?}");
    }
}

#[test]
fn entry_point_must_lie_in_code() {
    let bytes = sample();
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 48, 39)),
        "ok"
    );
    assert_eq!(
        verdict_after(&bytes, |b, l| put_u64(b, l.header + 48, 40)),
        "bad-entry-point"
    );
}

#[test]
fn errors_read_as_sentences_with_the_file_offset() {
    let bytes = sample();
    let mut b = bytes.clone();
    let l = layout(&b);
    put_u64(&mut b, l.symbol(SYM_SUM_I32) + 16, 17);
    common::rehash(&mut b);
    let err = Module::parse(&b).unwrap_err();
    assert_eq!(err.offset(), Some((l.symbol(SYM_SUM_I32) + 16) as u64));
    assert_eq!(
        err.to_string(),
        format!(
            "symbol 1 'sum$i32': value 0x11 + size 0x18 lies outside section 0 (0x28 bytes) (at offset {:#x})",
            l.symbol(SYM_SUM_I32) + 16
        )
    );
}
