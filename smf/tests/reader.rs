//! The reader on valid modules: every accessor returns what the writer put in.

mod common;

use common::{NOTE, layout, sample, sample_builder, template_code};
use smf::{Binding, Module, NoteSize, RelocType, Relocation, SectionType, SymbolDef, SymbolType};

#[test]
fn empty_module_is_exactly_one_header() {
    let bytes = smf::ModuleBuilder::new().build().unwrap();
    assert_eq!(bytes.len(), 128);
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.section_count(), 0);
    assert_eq!(m.symbol_count(), 0);
    assert_eq!(m.header().smf_size, 128);
    assert_eq!(m.base(), 0);
    assert!(m.note_sdn().is_none());
    assert!(m.template_code().is_none());
}

#[test]
fn reads_header_fields_the_writer_recorded() {
    let bytes = sample();
    let m = Module::parse(&bytes).unwrap();
    let h = m.header();
    assert_eq!(&h.magic, b"SMF\0");
    assert_eq!((h.version_major, h.version_minor), (1, 1));
    assert_eq!(h.platform, smf::Platform::Linux);
    assert_eq!(h.arch, smf::Arch::X86_64);
    assert_eq!(
        h.section_count, 9,
        "7 sections added plus 2 relocation sections"
    );
    assert_eq!(h.symbol_count, 6);
    assert_eq!(h.exported_count, 5, "every symbol but 'counter' is global");
    assert_eq!(h.smf_size, bytes.len() as u64);
    assert_eq!(h.module_hash, smf::fnv1a64(&bytes[..bytes.len() - 128]));
    assert_eq!(h.section_table_offset % 8, 0);
    assert_eq!(h.entry_point, m.section_by_name(".text").unwrap().offset());
    assert_eq!(m.header_offset(), bytes.len() as u64 - 128);
}

#[test]
fn sections_by_index_name_and_type_with_their_bytes() {
    let bytes = sample();
    let m = Module::parse(&bytes).unwrap();
    let names: Vec<_> = m.sections().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            ".text",
            ".data",
            ".rodata",
            ".bss",
            "vendor",
            "note.sdn",
            "template.code",
            "rel..text",
            "rel..data"
        ]
    );
    let text = m.section(0).unwrap();
    assert_eq!(text.section_type(), Some(SectionType::Code));
    assert_eq!(text.data(), &[0x90; 40]);
    assert_eq!(text.offset() % 16, 0);
    let rodata = m.section_by_name(".rodata").unwrap();
    assert_eq!(rodata.data(), b"hello\0");
    let bss = m.section_by_name(".bss").unwrap();
    assert_eq!(
        (bss.size(), bss.virtual_size(), bss.memory_size()),
        (0, 4096, 4096)
    );
    assert!(bss.data().is_empty());
    let vendor = m.section_by_name("vendor").unwrap();
    assert_eq!(
        (vendor.section_type(), vendor.type_code(), vendor.data()),
        (None, 200, &b"kept"[..])
    );
    assert_eq!(m.sections_of_type(SectionType::Reloc).count(), 2);
    assert!(m.section(9).is_none());
    assert!(m.section_by_name("missing").is_none());
}

#[test]
fn symbols_with_names_and_lookup_by_hash() {
    let bytes = sample();
    let m = Module::parse(&bytes).unwrap();
    let names: Vec<_> = m.symbols().map(|s| s.name()).collect();
    assert_eq!(
        names,
        ["main", "sum$i32", "counter", "malloc", "sum", "dot"]
    );
    let sum = m.symbol_by_name("sum$i32").unwrap();
    assert_eq!((sum.index(), sum.value(), sum.size()), (1, 16, 24));
    assert_eq!(sum.sym_type(), SymbolType::Function);
    assert_eq!(sum.binding(), Binding::Global);
    assert_eq!(sum.section_index(), Some(0));
    assert_eq!(sum.name_hash(), smf::fnv1a32(b"sum$i32"));
    let malloc = m.symbol_by_name("malloc").unwrap();
    assert!(!malloc.is_defined());
    let tmpl = m.symbol_by_name("dot").unwrap();
    assert!(tmpl.is_template());
    assert_eq!(
        (tmpl.template_offset(), tmpl.template_param_count()),
        (common::entry_offsets(&template_code())[1], 1)
    );
    assert!(m.symbol_by_name("sum$i64").is_none());
    assert!(m.symbol_by_name("").is_none());
    // Every name is found at its own index.
    for s in m.symbols() {
        assert_eq!(m.symbol_by_name(s.name()).unwrap().index(), s.index());
    }
}

#[test]
fn string_table_starts_with_the_empty_name_and_holds_each_name_once() {
    let bytes = sample();
    let m = Module::parse(&bytes).unwrap();
    let strings = m.string_table();
    assert_eq!(strings[0], 0);
    assert_eq!(strings, b"\0main\0sum$i32\0counter\0malloc\0sum\0dot\0");
    let l = layout(&bytes);
    assert_eq!(m.string_table_offset() as usize, l.symbol_table + 6 * 72);
}

#[test]
fn relocations_are_decoded_per_section() {
    let bytes = sample();
    let m = Module::parse(&bytes).unwrap();
    let all: Vec<_> = m.relocations().collect();
    assert_eq!(
        all,
        [
            (
                7,
                0,
                Relocation {
                    offset: 4,
                    symbol_index: 3,
                    reloc_type: RelocType::Plt32,
                    target_section: 0,
                    addend: -4
                }
            ),
            (
                7,
                1,
                Relocation {
                    offset: 32,
                    symbol_index: 0,
                    reloc_type: RelocType::Abs64,
                    target_section: 0,
                    addend: 0
                }
            ),
            (
                8,
                0,
                Relocation {
                    offset: 8,
                    symbol_index: 0,
                    reloc_type: RelocType::Abs64,
                    target_section: 1,
                    addend: 8
                }
            ),
        ]
    );
    assert!(m.section(0).unwrap().relocations().is_none());
}

#[test]
fn note_text_is_the_same_whether_sized_or_scanned() {
    for mode in [NoteSize::Recorded, NoteSize::Scanned] {
        let bytes = sample_builder(mode).build().unwrap();
        let m = Module::parse(&bytes).unwrap();
        assert_eq!(m.note_sdn(), Some(NOTE), "{mode:?}");
        let size = m.note_section().unwrap().size();
        assert_eq!(
            size,
            if mode == NoteSize::Recorded {
                NOTE.len() as u64
            } else {
                0
            }
        );
    }
}

#[test]
fn scanned_note_without_final_newline_ends_at_the_terminator() {
    let mut b = smf::ModuleBuilder::new();
    b.set_note("a: 1\n# END_NOTE", NoteSize::Scanned).unwrap();
    b.add_section(SectionType::Data, "d", 1, 8, &[7; 8])
        .unwrap();
    let bytes = b.build().unwrap();
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.note_sdn(), Some("a: 1\n# END_NOTE"));
}

#[test]
fn template_code_bytes() {
    let bytes = sample();
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.template_code(), Some(&template_code()[..]));
    assert_eq!(
        m.template_code_section().unwrap().section_type(),
        Some(SectionType::TemplateCode)
    );
}

#[test]
fn stub_module_has_its_base_after_the_stub() {
    let stub = b"#!/usr/bin/env smf-run\n";
    let mut b = sample_builder(NoteSize::Recorded);
    b.stub(stub);
    let bytes = b.build().unwrap();
    assert!(bytes.starts_with(stub));
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.base(), stub.len() as u64);
    let h = m.header();
    assert_eq!(
        (h.stub_size, h.smf_data_offset),
        (stub.len() as u32, stub.len() as u32)
    );
    assert_ne!(h.flags & smf::raw::header_flags::HAS_STUB, 0);
    assert_eq!(m.note_sdn(), Some(NOTE));
    assert_eq!(m.section(0).unwrap().data(), &[0x90; 40]);
}

#[test]
fn module_appended_to_another_file_is_found_by_smf_size() {
    let module = sample();
    for prefix_len in [0usize, 1, 7, 4096] {
        let mut file = vec![0x7f; prefix_len];
        file.extend_from_slice(&module);
        let m = Module::parse(&file).unwrap();
        assert_eq!(m.base(), prefix_len as u64);
        assert_eq!(m.symbol_by_name("main").unwrap().value(), 0);
        assert_eq!(m.note_sdn(), Some(NOTE));
    }
}

#[test]
fn stub_module_appended_to_another_file() {
    let mut b = sample_builder(NoteSize::Scanned);
    b.stub(b"#!/bin/sh\n");
    let module = b.build().unwrap();
    let mut file = b"ELF-ish prefix".to_vec();
    file.extend_from_slice(&module);
    let m = Module::parse(&file).unwrap();
    assert_eq!(m.base(), 14 + 10);
    assert_eq!(m.note_sdn(), Some(NOTE));
}

#[test]
fn without_smf_size_the_base_comes_from_smf_data_offset() {
    let mut b = sample_builder(NoteSize::Recorded);
    b.stub(b"#!x\n").record_smf_size(false);
    let bytes = b.build().unwrap();
    let m = Module::parse(&bytes).unwrap();
    assert_eq!((m.header().smf_size, m.base()), (0, 4));
}

#[test]
fn thousands_of_symbols_are_all_found_by_name() {
    let mut b = smf::ModuleBuilder::new();
    let code = b
        .add_section(SectionType::Code, ".text", 5, 16, &vec![0xC3; 5000 * 4])
        .unwrap();
    for i in 0..5000u64 {
        b.add_symbol(SymbolDef::function(&format!("f{i}$i64"), code, i * 4, 4))
            .unwrap();
    }
    let bytes = b.build().unwrap();
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.symbol_count(), 5000);
    for i in (0..5000u64).step_by(7) {
        let s = m.symbol_by_name(&format!("f{i}$i64")).unwrap();
        assert_eq!((s.index() as u64, s.value()), (i, i * 4));
    }
    assert!(m.symbol_by_name("f5000$i64").is_none());
}

#[test]
fn first_symbol_of_a_duplicated_name_wins() {
    let mut b = smf::ModuleBuilder::new();
    let code = b
        .add_section(SectionType::Code, ".text", 5, 16, &[0; 32])
        .unwrap();
    b.add_symbol(SymbolDef::function("f", code, 0, 8)).unwrap();
    b.add_symbol(SymbolDef::function("f", code, 8, 8)).unwrap();
    let bytes = b.build().unwrap();
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.symbol_by_name("f").unwrap().value(), 0);
}

#[test]
fn host_check_accepts_this_host_and_any_platform() {
    let bytes = sample();
    Module::parse(&bytes).unwrap().check_host().unwrap();
    let mut b = smf::ModuleBuilder::new();
    b.platform(smf::Platform::Any);
    let bytes = b.build().unwrap();
    Module::parse(&bytes).unwrap().check_host().unwrap();
}

#[test]
fn host_check_rejects_another_arch_and_platform() {
    for (platform, arch, what) in [
        (smf::Platform::Linux, smf::Arch::Aarch64, "arch"),
        (smf::Platform::Windows, smf::Arch::X86_64, "platform"),
    ] {
        let mut b = smf::ModuleBuilder::new();
        b.platform(platform).arch(arch);
        let bytes = b.build().unwrap();
        let m = Module::parse(&bytes).expect("parsing does not compare with the host");
        let err = m.check_host().unwrap_err();
        match err.kind() {
            smf::ErrorKind::HostMismatch { what: w, .. } => assert_eq!(*w, what),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn writer_is_deterministic() {
    assert_eq!(sample(), sample());
}

#[test]
fn writer_rejects_what_the_reader_would() {
    let mut b = smf::ModuleBuilder::new();
    let code = b
        .add_section(SectionType::Code, ".text", 5, 16, &[0; 8])
        .unwrap();
    b.add_symbol(SymbolDef::function("f", code, 4, 8)).unwrap();
    let err = b.build().unwrap_err();
    assert_eq!(err.kind().code(), "build");
    assert!(err.to_string().contains("outside section 0"), "{err}");
    assert!(
        b.add_section(SectionType::Data, "seventeen-bytes!!", 1, 1, &[])
            .is_err()
    );
    assert!(b.add_section(SectionType::Data, "x", 1, 3, &[]).is_err());
    assert!(b.set_note("no terminator\n", NoteSize::Recorded).is_err());
    assert!(b.set_template_code(b"XXXX").is_err());
}

#[test]
fn rewrite_note_replaces_only_the_note_and_keeps_stub_and_prefix() {
    let new_note = "# Instantiation To/From Metadata\ninstantiations |id, template, type_args, mangled_name, from_file, from_loc, to_obj, status|\n  1, sum, f64, sum$f64, app, \"\", jit, jit_compiled\n# END_NOTE\n";
    let mut with_stub = sample_builder(NoteSize::Scanned);
    with_stub.stub(b"#!/bin/run\n");
    let module = with_stub.build().unwrap();
    let mut file = b"host binary bytes".to_vec();
    file.extend_from_slice(&module);

    let rewritten = smf::rewrite_note(&file, new_note).unwrap();
    assert!(rewritten.starts_with(b"host binary bytes#!/bin/run\n"));
    let (old, new) = (
        Module::parse(&file).unwrap(),
        Module::parse(&rewritten).unwrap(),
    );
    assert_eq!(new.note_sdn(), Some(new_note));
    assert_eq!(new.note_section().unwrap().size(), new_note.len() as u64);
    assert_eq!(new.base(), old.base());
    let sections = |m: &Module<'_>| -> Vec<(String, u8, u32, u64, Vec<u8>)> {
        m.sections()
            .filter(|s| s.name() != "note.sdn")
            .map(|s| {
                (
                    s.name().to_owned(),
                    s.type_code(),
                    s.flags(),
                    s.alignment(),
                    s.data().to_vec(),
                )
            })
            .collect()
    };
    assert_eq!(sections(&new), sections(&old));
    let symbols = |m: &Module<'_>| -> Vec<_> {
        m.symbols()
            .map(|s| (s.name().to_owned(), *s.raw()))
            .map(|(n, mut r)| {
                r.name_offset = Default::default();
                (n, zerocopy::IntoBytes::as_bytes(&r).to_vec())
            })
            .collect()
    };
    assert_eq!(symbols(&new), symbols(&old));
    assert_eq!(
        new.relocations().collect::<Vec<_>>(),
        old.relocations().collect::<Vec<_>>()
    );
    let (oh, nh) = (old.header(), new.header());
    assert_eq!(
        (nh.entry_point, nh.flags, nh.platform, nh.stub_size),
        (oh.entry_point, oh.flags, oh.platform, oh.stub_size)
    );
    assert_ne!(
        nh.module_hash, oh.module_hash,
        "the hash covers the new note"
    );
    // Writing the original note back gives back a module that reads the same.
    let again = smf::rewrite_note(&rewritten, NOTE).unwrap();
    assert_eq!(Module::parse(&again).unwrap().note_sdn(), Some(NOTE));
    assert!(smf::rewrite_note(&file, "no terminator\n").is_err());
}
