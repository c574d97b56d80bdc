//! Compressed sections (flag 0x8, header compression 1 = zstd): what the
//! writer compresses, that the reader hands out the decompressed contents,
//! and every rule a damaged or hostile compressed section breaks, with the
//! offset the error names.

mod common;

use common::{
    Layout, NOTE, assert_every_prefix_is_an_error, compressed_sample, layout, put_u64, rehash_at,
    sample, sample_builder, template_code, u64_at, verdict_after,
};
use smf::limits::MAX_DECOMPRESSED_SIZE;
use smf::raw::section_flags::COMPRESSED;
use smf::{Compression, ErrorKind, Module, ModuleBuilder, NoteSize, SectionId, SectionType};

// Section indices of the sample module.
const TEXT: usize = 0;
const BSS: usize = 3;
const NOTE_SDN: usize = 5;
const TEMPLATES: usize = 6;
const REL_TEXT: usize = 7;

/// The section flags of section `i`.
fn flags(b: &[u8], l: &Layout, i: usize) -> u32 {
    u32::from_le_bytes(b[l.section(i) + 4..l.section(i) + 8].try_into().unwrap())
}

/// A module whose one section (of a type this version does not define)
/// stores `stored`, marked compressed with `virtual_size` = `size`, in a
/// module whose header names zstd: a way to put any stream before the reader.
fn with_stream(stored: &[u8], size: u64) -> Vec<u8> {
    let mut bytes = {
        let mut b = ModuleBuilder::new();
        b.add_section_code(200, "vendor", 0, 1, stored).unwrap();
        b.build().unwrap()
    };
    let l = layout(&bytes);
    let rec = l.section(0);
    let f = flags(&bytes, &l, 0) | COMPRESSED;
    bytes[rec + 4..rec + 8].copy_from_slice(&f.to_le_bytes());
    put_u64(&mut bytes, rec + 24, size);
    bytes[l.header + 12] = 1;
    rehash_at(&mut bytes, &l);
    bytes
}

/// `bytes` with compressed section `i` holding a frame of `contents` in
/// place of its own (which must be at least as long).
fn with_contents(bytes: &[u8], i: usize, contents: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let l = layout(&b);
    let stream = zstd_frame(contents);
    let data_at = l.section_data(&b, i);
    assert!(stream.len() as u64 <= u64_at(&b, l.section(i) + 16));
    b[data_at..data_at + stream.len()].copy_from_slice(&stream);
    put_u64(&mut b, l.section(i) + 16, stream.len() as u64);
    put_u64(&mut b, l.section(i) + 24, contents.len() as u64);
    rehash_at(&mut b, &l);
    b
}

/// Checks that `parsed` failed with a `bad-compressed-section` error at
/// file offset `offset` whose text contains `text`.
#[track_caller]
fn assert_bad_compressed<T>(parsed: smf::Result<T>, offset: usize, text: &str) {
    let Err(err) = parsed else {
        panic!("parsed, expected an error containing '{text}'");
    };
    assert_eq!(err.kind().code(), "bad-compressed-section", "{err}");
    assert_eq!(err.offset(), Some(offset as u64), "{err}");
    assert!(err.to_string().contains(text), "{err}");
}

/// A zstd frame of `contents`, without the checksum the writer adds and
/// at the highest level, so it fits where the writer's frame was.
fn zstd_frame(contents: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(contents, 22).unwrap()
}

#[test]
fn the_template_code_and_the_note_are_compressed_and_read_back_decompressed() {
    let plain = sample();
    let bytes = compressed_sample();
    assert!(
        bytes.len() < plain.len(),
        "{} < {}",
        bytes.len(),
        plain.len()
    );
    let (p, m) = (
        Module::parse(&plain).unwrap(),
        Module::parse(&bytes).unwrap(),
    );
    assert_eq!(m.header().compression, Compression::Zstd);
    assert_eq!(m.header().compression_level, smf::ZSTD_DEFAULT_LEVEL);
    assert!(m.has_compressed_sections() && !p.has_compressed_sections());
    let compressed: Vec<&str> = m
        .sections()
        .filter(|s| s.is_compressed())
        .map(|s| s.name())
        .collect();
    // Code, data and relocations stay stored; `vendor` (4 bytes) would grow.
    assert_eq!(compressed, ["note.sdn", "template.code"]);
    for (a, b) in p.sections().zip(m.sections()) {
        assert_eq!(a.data(), b.data(), "{}", a.name());
        if b.is_compressed() {
            assert_eq!(b.virtual_size(), a.size());
            assert!(b.size() < a.size() && b.stored_data().len() as u64 == b.size());
            assert_eq!(b.flags(), a.flags() | COMPRESSED);
            assert_ne!(b.stored_data(), b.data());
        } else {
            assert_eq!(b.stored_data(), b.data());
        }
    }
    assert_eq!(m.note_sdn(), Some(NOTE));
    assert_eq!(m.template_code(), Some(&template_code()[..]));
    for (a, b) in p.symbols().zip(m.symbols()) {
        assert_eq!(
            (a.name(), a.value(), a.size()),
            (b.name(), b.value(), b.size())
        );
    }
    assert_eq!(p.relocations().count(), m.relocations().count());
}

#[test]
fn the_level_is_recorded_and_must_be_one_zstd_has() {
    for level in [1u8, 19, 22] {
        let mut b = sample_builder(NoteSize::Recorded);
        b.compress(Compression::Zstd, Some(level)).unwrap();
        let bytes = b.build().unwrap();
        assert_eq!(
            Module::parse(&bytes).unwrap().header().compression_level,
            level
        );
    }
    let mut b = ModuleBuilder::new();
    for level in [0u8, 23] {
        let err = b.compress(Compression::Zstd, Some(level)).unwrap_err();
        assert!(err.to_string().contains("outside 1..=22"), "{err}");
    }
    let err = b.compress(Compression::Lz4, None).unwrap_err();
    assert_eq!(err.kind().code(), "unsupported");
    assert!(err.to_string().contains("lz4"), "{err}");
    // Asking for none again stores everything.
    let mut b = sample_builder(NoteSize::Recorded);
    b.compress(Compression::Zstd, None).unwrap();
    b.compress(Compression::None, None).unwrap();
    assert!(b.build().unwrap() == sample());
}

#[test]
fn compress_section_overrides_what_the_type_suggests() {
    let mut b = sample_builder(NoteSize::Recorded);
    b.compress(Compression::Zstd, Some(19)).unwrap();
    b.compress_section(SectionId(TEXT as u16), true).unwrap();
    b.compress_section(SectionId(NOTE_SDN as u16), false)
        .unwrap();
    let bytes = b.build().unwrap();
    let m = Module::parse(&bytes).unwrap();
    let text = m.section(TEXT as u32).unwrap();
    // Relocations patch the decompressed code, and the entry point lies in it.
    assert!(text.is_compressed() && text.data() == [0x90; 40]);
    assert_eq!(m.header().entry_point, text.offset());
    assert_eq!(m.relocations().count(), 3);
    assert!(!m.section(NOTE_SDN as u32).unwrap().is_compressed());
    assert!(m.section(TEMPLATES as u32).unwrap().is_compressed());

    let err = b.compress_section(SectionId(BSS as u16), true).unwrap_err();
    assert!(err.to_string().contains("never compressed"), "{err}");
    assert!(b.compress_section(SectionId(99), true).is_err());
    // The flag is the writer's to set.
    let err = ModuleBuilder::new()
        .add_section(SectionType::Debug, "dbg", COMPRESSED, 1, b"x")
        .unwrap_err();
    assert!(err.to_string().contains("compressed flag"), "{err}");
}

#[test]
fn a_section_that_would_not_shrink_is_stored() {
    let noise: Vec<u8> = (0u32..64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut b = ModuleBuilder::new();
    let id = b
        .add_section(SectionType::Debug, "noise", 0, 1, &noise)
        .unwrap();
    b.add_section(SectionType::Debug, "zeros", 0, 1, &[0; 64])
        .unwrap();
    b.compress(Compression::Zstd, None).unwrap();
    let bytes = b.build().unwrap();
    let m = Module::parse(&bytes).unwrap();
    assert!(!m.section(u32::from(id.0)).unwrap().is_compressed());
    assert!(m.section(1).unwrap().is_compressed());
    assert_eq!(m.section(0).unwrap().data(), &noise[..]);
}

#[test]
fn a_zero_tail_is_compressed_as_part_of_the_contents() {
    // A data section whose memory size is larger than its bytes: compressed,
    // its contents are the bytes and the zeros, and virtual_size their length.
    let pattern: Vec<u8> = (0..64).map(|i| i % 8).collect();
    let mut bytes = {
        let mut b = ModuleBuilder::new();
        b.add_section(SectionType::Data, ".data", 3, 8, &pattern)
            .unwrap();
        b.build().unwrap()
    };
    let l = layout(&bytes);
    put_u64(&mut bytes, l.section(0) + 24, 4096);
    rehash_at(&mut bytes, &l);
    let mut b = ModuleBuilder::from_module(&Module::parse(&bytes).unwrap()).unwrap();
    b.compress(Compression::Zstd, None).unwrap();
    b.compress_section(SectionId(0), true).unwrap();
    let built = b.build().unwrap();
    let m = Module::parse(&built).unwrap();
    let data = m.section(0).unwrap();
    assert!(data.is_compressed() && data.size() < 64);
    assert_eq!((data.virtual_size(), data.memory_size()), (4096, 4096));
    let mut want = pattern.clone();
    want.resize(4096, 0);
    assert_eq!(data.data(), &want[..]);
}

#[test]
fn rebuilding_and_rewriting_the_note_keep_the_compression() {
    let bytes = compressed_sample();
    let m = Module::parse(&bytes).unwrap();
    let rebuilt = ModuleBuilder::from_module(&m).unwrap().build().unwrap();
    assert!(
        rebuilt == bytes,
        "from_module(parse(bytes)).build() == bytes"
    );

    let note = "# Instantiation To/From Metadata\n# rewritten\n# END_NOTE\n";
    let rewritten = smf::rewrite_note(&bytes, note).unwrap();
    let r = Module::parse(&rewritten).unwrap();
    assert_eq!(r.note_sdn(), Some(note));
    assert_eq!(r.header().compression, Compression::Zstd);
    assert_eq!(r.template_code(), m.template_code());
    assert!(r.template_code_section().unwrap().is_compressed());
}

#[test]
fn compressed_flag_needs_the_header_to_name_zstd() {
    let bytes = compressed_sample();
    let l = layout(&bytes);
    let mut b = bytes.clone();
    b[l.header + 12] = 0;
    rehash_at(&mut b, &l);
    assert_bad_compressed(
        Module::parse(&b),
        l.section(NOTE_SDN) + 4,
        "compressed section 5 'note.sdn' is flagged compressed, but the header's compression is none",
    );
}

#[test]
fn bss_relocation_and_shared_sections_are_never_compressed() {
    let bytes = compressed_sample();
    for i in [BSS, REL_TEXT] {
        let mut b = bytes.clone();
        let l = layout(&b);
        let f = flags(&b, &l, i) | COMPRESSED;
        b[l.section(i) + 4..l.section(i) + 8].copy_from_slice(&f.to_le_bytes());
        if i == BSS {
            // Give it a size so the type is what fails.
            put_u64(&mut b, l.section(i) + 16, 0);
        }
        rehash_at(&mut b, &l);
        assert_bad_compressed(Module::parse(&b), l.section(i), "which is never compressed");
    }
    let mut b = ModuleBuilder::new();
    b.add_shared_item(smf::SharedItem::memory("heap", 1, None))
        .unwrap();
    let err = b.compress_section(SectionId(0), true).unwrap_err();
    assert!(err.to_string().contains("never compressed"), "{err}");
}

#[test]
fn a_compressed_section_records_both_sizes() {
    let bytes = compressed_sample();
    for (field, what) in [(16usize, "size 0"), (24, "virtual_size 0")] {
        let mut b = bytes.clone();
        let l = layout(&b);
        put_u64(&mut b, l.section(TEMPLATES) + field, 0);
        rehash_at(&mut b, &l);
        assert_bad_compressed(Module::parse(&b), l.section(TEMPLATES) + field, what);
    }
}

#[test]
fn a_size_other_than_the_recorded_one_is_an_error_at_the_data() {
    let bytes = compressed_sample();
    let l = layout(&bytes);
    let rec = l.section(TEMPLATES);
    let real = u64_at(&bytes, rec + 24);
    let data_at = l.section_data(&bytes, TEMPLATES);
    let at_size = |size: u64| {
        let mut b = bytes.clone();
        put_u64(&mut b, rec + 24, size);
        rehash_at(&mut b, &l);
        Module::parse(&b).map(|_| ())
    };
    assert_eq!(at_size(real), Ok(()));
    let too_small = format!(
        "declares {real} decompressed bytes, more than the {}",
        real - 1
    );
    assert_bad_compressed(at_size(real - 1), data_at, &too_small);
    let too_large = format!(
        "decompresses to {real} bytes, but its virtual_size records {}",
        real + 1
    );
    assert_bad_compressed(at_size(real + 1), data_at, &too_large);
    assert_bad_compressed(at_size(real * 2), data_at, "decompresses to");
}

#[test]
fn data_that_does_not_decompress_is_an_error_at_the_data() {
    let bytes = compressed_sample();
    let l = layout(&bytes);
    let data_at = l.section_data(&bytes, NOTE_SDN);
    // The frame's magic, a byte in the middle, the checksum at the end.
    let stored = u64_at(&bytes, l.section(NOTE_SDN) + 16) as usize;
    for at in [0, stored / 2, stored - 1] {
        let mut b = bytes.clone();
        b[data_at + at] ^= 0x55;
        rehash_at(&mut b, &l);
        assert_bad_compressed(Module::parse(&b), data_at, "'note.sdn'");
    }
    // Bytes that were never compressed.
    assert_bad_compressed(
        Module::parse(&with_stream(b"plain text, not zstd", 20)),
        0,
        "does not decompress as zstd into the 20 bytes",
    );
}

#[test]
fn any_damage_to_a_stream_is_an_error_or_leaves_the_contents_unchanged() {
    let bytes = compressed_sample();
    let l = layout(&bytes);
    let want = Module::parse(&bytes)
        .unwrap()
        .note_sdn()
        .unwrap()
        .to_owned();
    let data_at = l.section_data(&bytes, NOTE_SDN);
    let stored = u64_at(&bytes, l.section(NOTE_SDN) + 16) as usize;
    for at in data_at..data_at + stored {
        for x in [0x01u8, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[at] ^= x;
            rehash_at(&mut b, &l);
            if let Ok(m) = Module::parse(&b) {
                assert_eq!(m.note_sdn(), Some(want.as_str()), "byte {at} ^ {x:#x}");
            }
        }
    }
}

#[test]
fn a_stream_that_would_grow_past_its_virtual_size_is_cut_off() {
    // A megabyte of zeros is a few dozen bytes of zstd: declared, it is
    // refused before anything is allocated; undeclared (a streaming frame),
    // decompression stops at the buffer of virtual_size bytes.
    let zeros = vec![0u8; 1 << 20];
    let declared = zstd_frame(&zeros);
    assert!(declared.len() < 100);
    assert_bad_compressed(
        Module::parse(&with_stream(&declared, 4096)),
        0,
        "declares 1048576 decompressed bytes, more than the 4096",
    );

    let undeclared = zstd::stream::encode_all(&zeros[..], 3).unwrap();
    assert_eq!(zstd::decompressed_size(&undeclared), None);
    assert_bad_compressed(
        Module::parse(&with_stream(&undeclared, 4096)),
        0,
        "does not decompress as zstd into the 4096 bytes",
    );
    // The same stream with its real size is fine.
    let ok = Module::parse(&with_stream(&undeclared, 1 << 20))
        .unwrap()
        .section(0)
        .unwrap()
        .data()
        .len();
    assert_eq!(ok, 1 << 20);
}

#[test]
fn the_decompressed_sizes_together_are_bounded_before_decompressing() {
    let bytes = compressed_sample();
    let l = layout(&bytes);
    let templates = u64_at(&bytes, l.section(TEMPLATES) + 24);
    let at_note_size = |size: u64| {
        let mut b = bytes.clone();
        put_u64(&mut b, l.section(NOTE_SDN) + 24, size);
        rehash_at(&mut b, &l);
        Module::parse(&b).map(|_| ())
    };
    // Up to the limit, the sizes are allowed and the note's is merely wrong.
    let fits = at_note_size(MAX_DECOMPRESSED_SIZE - templates).unwrap_err();
    assert_eq!(fits.kind().code(), "bad-compressed-section");
    // One byte more, and nothing is decompressed: the error names the
    // virtual_size of the section that crosses the limit.
    let err = at_note_size(MAX_DECOMPRESSED_SIZE - templates + 1).unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::LimitExceeded {
            what: "the decompressed size of the compressed sections up to section 6".into(),
            value: MAX_DECOMPRESSED_SIZE + 1,
            limit: MAX_DECOMPRESSED_SIZE,
        }
    );
    assert_eq!(err.offset(), Some(l.section(TEMPLATES) as u64 + 24));
}

#[test]
fn decompressed_contents_are_checked_like_stored_ones() {
    // A note that is not UTF-8 once decompressed: reported at the stream,
    // naming the byte in the decompressed text.
    let bytes = compressed_sample();
    let l = layout(&bytes);
    let mut text = NOTE.as_bytes().to_vec();
    text[3] = 0xFF;
    let err = Module::parse(&with_contents(&bytes, NOTE_SDN, &text)).unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::InvalidUtf8 {
            what: "note.sdn (decompressed byte 3)".into()
        }
    );
    assert_eq!(err.offset(), Some(l.section_data(&bytes, NOTE_SDN) as u64));

    // Template code whose decompressed bytes lack the magic, or are too
    // short for the template offsets.
    let mut code = template_code();
    code[0] = b'X';
    let err = Module::parse(&with_contents(&bytes, TEMPLATES, &code)).unwrap_err();
    assert!(err.to_string().contains("expected \"GTPL\""), "{err}");
    let dot = common::entry_offsets(&template_code())[1];
    let short = &template_code()[..dot as usize];
    let err = Module::parse(&with_contents(&bytes, TEMPLATES, short)).unwrap_err();
    assert_eq!(err.kind().code(), "bad-symbol");
    assert!(
        err.to_string()
            .contains(&format!("outside the TemplateCode entries (10..{dot:#x})")),
        "{err}"
    );
}

#[test]
fn truncating_or_damaging_a_compressed_module_never_panics() {
    let bytes = compressed_sample();
    assert_every_prefix_is_an_error(&bytes);
    for at in 0..bytes.len() {
        let _ = verdict_after(&bytes, |b, _| b[at] ^= 0xA5);
    }
}

#[test]
fn a_shorter_note_written_into_a_compressed_module_is_exactly_that_note() {
    // A long note, which compresses well, replaced by a shorter one that
    // still compresses: the new note is stored whole and nothing more.
    let row = "    sum$f64, an.application.entry.point.with.a.long.name, true\n";
    let long = format!(
        "# Instantiation To/From Metadata\npossible |mangled_name, required_by, can_defer|\n{}# END_NOTE\n",
        row.repeat(40)
    );
    let bytes = compressed_sample();
    let first = smf::rewrite_note(&bytes, &long).unwrap();
    assert!(
        Module::parse(&first)
            .unwrap()
            .section_by_name("note.sdn")
            .unwrap()
            .is_compressed()
    );
    let short = format!(
        "# Instantiation To/From Metadata\npossible |mangled_name, required_by, can_defer|\n{}# END_NOTE\n",
        row.repeat(20)
    );
    let second = smf::rewrite_note(&first, &short).unwrap();
    let m = Module::parse(&second).unwrap();
    let note = m.section_by_name("note.sdn").unwrap();
    assert!(note.is_compressed(), "the shorter note still compresses");
    assert_eq!(m.note_sdn(), Some(short.as_str()));
    assert_eq!(note.virtual_size(), short.len() as u64);
}
