//! Property: whatever module the writer builds, the reader gives back
//! exactly what was put in, also behind a stub, appended to other bytes and
//! with sections compressed.

use proptest::prelude::*;
use smf::{
    Binding, Compression, Module, ModuleBuilder, NoteSize, RelocType, SectionType, SharedItem,
    SymbolDef, SymbolType,
};

#[derive(Debug, Clone)]
struct SectionIn {
    kind: u8,
    name: String,
    align: u64,
    data: Vec<u8>,
    bss_size: u64,
    /// When the module is compressed: compress it (or not) whatever its type.
    compress: Option<bool>,
}

#[derive(Debug, Clone)]
struct SymbolIn {
    name: String,
    sym_type: SymbolType,
    binding: Binding,
    /// (section choice, value fraction, size fraction); None = undefined.
    place: Option<(usize, u8, u8)>,
}

#[derive(Debug, Clone)]
struct ModuleIn {
    sections: Vec<SectionIn>,
    symbols: Vec<SymbolIn>,
    relocs: Vec<(usize, u8, usize, u8, i64)>,
    note: Option<(String, bool)>,
    templates: Option<Vec<u8>>,
    shared: Vec<SharedItem>,
    stub: Vec<u8>,
    prefix: Vec<u8>,
    record_hash: bool,
    /// The zstd level, when sections are compressed.
    zstd_level: Option<u8>,
}

fn section() -> impl Strategy<Value = SectionIn> {
    (
        // 14 is the Shared section, which only `add_shared_item` writes.
        prop_oneof![Just(1u8), Just(2), Just(3), Just(4), Just(8), 15u8..=255],
        "[a-z.]{0,16}",
        0u32..7,
        // Repeated runs, so that some sections shrink when compressed.
        prop::collection::vec((any::<u8>(), 1usize..12), 0..16)
            .prop_map(|runs| runs.into_iter().flat_map(|(b, n)| vec![b; n]).collect()),
        0u64..10_000,
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(kind, name, align, data, bss_size, compress)| SectionIn {
            kind,
            name,
            align: 1 << align,
            data,
            bss_size,
            compress,
        })
}

fn symbol() -> impl Strategy<Value = SymbolIn> {
    (
        "[a-zA-Z_$0-9é]{0,24}",
        prop::sample::select(SymbolType::ALL.to_vec()),
        prop::sample::select(Binding::ALL.to_vec()),
        prop::option::of((any::<usize>(), any::<u8>(), any::<u8>())),
    )
        .prop_map(|(name, sym_type, binding, place)| SymbolIn {
            name,
            sym_type,
            binding,
            place,
        })
}

/// Valid memories and tables: names made unique by their index, sizes
/// within the limits, the maximum (when there is one) not below the initial.
fn shared_items() -> impl Strategy<Value = Vec<SharedItem>> {
    prop::collection::vec(
        (
            "[a-z_]{0,8}",
            0u8..4,
            0u64..=65_536,
            prop::option::of(0u64..=65_536),
            "fn\\([a-z0-9, ]{0,12}\\)( -> [a-z0-9]{1,4})?",
        ),
        0..6,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .enumerate()
            .map(|(i, (name, shape, initial, extra, signature))| {
                let name = format!("{name}{i}");
                let maximum = extra.map(|e| initial.max(e));
                match shape {
                    0 => SharedItem::memory(&name, initial, maximum),
                    1 => SharedItem::table(&name, &signature, initial, maximum),
                    2 => SharedItem::import_memory(&name),
                    _ => SharedItem::import_table(&name, &signature),
                }
            })
            .collect()
    })
}

fn module() -> impl Strategy<Value = ModuleIn> {
    (
        prop::collection::vec(section(), 0..8),
        prop::collection::vec(symbol(), 0..24),
        prop::collection::vec(
            (
                any::<usize>(),
                any::<u8>(),
                any::<usize>(),
                0u8..5,
                any::<i64>(),
            ),
            0..8,
        ),
        prop::option::of(("[ -~\n]{0,80}", any::<bool>())),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
        shared_items(),
        prop::collection::vec(any::<u8>(), 0..3)
            .prop_map(|v| if v.is_empty() { v } else { b"#!/x\n".to_vec() }),
        prop::collection::vec(any::<u8>(), 0..20),
        any::<bool>(),
    )
        .prop_map(
            |(sections, symbols, relocs, note, templates, shared, stub, prefix, record_hash)| {
                ModuleIn {
                    sections,
                    symbols,
                    relocs,
                    note,
                    templates,
                    shared,
                    stub,
                    prefix,
                    record_hash,
                    zstd_level: None,
                }
            },
        )
}

/// A module of [`module`], stored or compressed at a low zstd level.
fn maybe_compressed_module() -> impl Strategy<Value = ModuleIn> {
    (module(), prop::option::of(1u8..=4)).prop_map(|(m, zstd_level)| ModuleIn { zstd_level, ..m })
}

/// What a built module must read back as.
struct Expected {
    sections: Vec<(String, u8, Vec<u8>, u64)>,
    symbols: Vec<(String, SymbolType, Binding, Option<u16>, u64, u64)>,
    relocs: Vec<(u16, u64, u32, RelocType, i64)>,
    note: Option<String>,
    templates: Option<Vec<u8>>,
    shared: Vec<SharedItem>,
}

fn build(m: &ModuleIn) -> (Vec<u8>, Expected) {
    let mut b = ModuleBuilder::new();
    b.record_module_hash(m.record_hash).stub(&m.stub);
    if let Some(level) = m.zstd_level {
        b.compress(Compression::Zstd, Some(level)).unwrap();
    }
    let mut exp = Expected {
        sections: vec![],
        symbols: vec![],
        relocs: vec![],
        note: None,
        templates: None,
        shared: Vec::new(),
    };
    for s in &m.sections {
        let id = if s.kind == SectionType::Bss.code() {
            b.add_bss(&s.name, s.bss_size, s.align).unwrap()
        } else {
            b.add_section_code(s.kind, &s.name, 0, s.align, &s.data)
                .unwrap()
        };
        if let Some(compress) = s.compress.filter(|_| s.kind != SectionType::Bss.code()) {
            b.compress_section(id, compress).unwrap();
        }
        let (data, mem) = if s.kind == 4 {
            (vec![], s.bss_size)
        } else {
            (s.data.clone(), s.data.len() as u64)
        };
        exp.sections.push((s.name.clone(), s.kind, data, mem));
        assert_eq!(id.0 as usize, exp.sections.len() - 1);
    }
    if let Some((text, scanned)) = &m.note {
        let text = format!("{text}\n# END_NOTE\n");
        b.set_note(
            &text,
            if *scanned {
                NoteSize::Scanned
            } else {
                NoteSize::Recorded
            },
        )
        .unwrap();
        // A scanned note records size 0: its section has no bytes of its own,
        // the text comes from the terminator scan.
        let data = if *scanned {
            Vec::new()
        } else {
            text.clone().into_bytes()
        };
        exp.sections
            .push(("note.sdn".into(), 13, data.clone(), data.len() as u64));
        exp.note = Some(text);
    }
    if let Some(body) = &m.templates {
        let mut bytes = b"GTPL\x01\x00\x00\x00\x00\x00".to_vec();
        bytes.extend_from_slice(body);
        b.set_template_code(&bytes).unwrap();
        exp.sections.push((
            "template.code".into(),
            12,
            bytes.clone(),
            bytes.len() as u64,
        ));
        exp.templates = Some(bytes);
    }
    if !m.shared.is_empty() {
        for item in &m.shared {
            b.add_shared_item(item.clone()).unwrap();
        }
        // The section's bytes come from the layout of the string table;
        // `check` compares the items instead.
        exp.sections.push((".shared".into(), 14, Vec::new(), 0));
        exp.shared = m.shared.clone();
    }
    let n_user = m.sections.len();
    for s in &m.symbols {
        let mut def = SymbolDef {
            name: s.name.clone(),
            sym_type: s.sym_type,
            binding: s.binding,
            ..SymbolDef::default()
        };
        if let Some((which, v, z)) = s.place.filter(|_| n_user > 0) {
            let idx = which % n_user;
            let mem = exp.sections[idx].3;
            let value = mem * u64::from(v) / 255;
            let size = (mem - value) * u64::from(z) / 255;
            def.section = Some(smf::SectionId(idx as u16));
            def.value = value;
            def.size = size;
        }
        exp.symbols.push((
            s.name.clone(),
            s.sym_type,
            s.binding,
            def.section.map(|s| s.0),
            def.value,
            def.size,
        ));
        b.add_symbol(def).unwrap();
    }
    let patchable: Vec<usize> = (0..n_user)
        .filter(|&i| matches!(m.sections[i].kind, 1..=3))
        .collect();
    if !exp.symbols.is_empty() {
        for &(which, at, sym, kind, addend) in &m.relocs {
            let kind = RelocType::from_code(kind).unwrap();
            let Some(&target) = patchable.get(which % patchable.len().max(1)) else {
                continue;
            };
            let size = exp.sections[target].3;
            if size < kind.width() {
                continue;
            }
            let offset = (size - kind.width()) * u64::from(at) / 255;
            let sym = (sym % exp.symbols.len()) as u32;
            b.add_relocation(
                smf::SectionId(target as u16),
                offset,
                smf::SymbolId(sym),
                kind,
                addend,
            );
            exp.relocs.push((target as u16, offset, sym, kind, addend));
        }
    }
    (b.build().unwrap(), exp)
}

/// The expectation after a rebuild, where a scanned note's size is recorded.
fn exp_recorded(mut exp: Expected) -> Expected {
    if let Some(text) = &exp.note {
        for s in &mut exp.sections {
            if s.0 == "note.sdn" {
                s.2 = text.clone().into_bytes();
                s.3 = s.2.len() as u64;
            }
        }
    }
    exp
}

fn check(file: &[u8], exp: &Expected) {
    let m = Module::parse(file).unwrap();
    let sections: Vec<_> = m.sections().collect();
    assert!(sections.len() >= exp.sections.len());
    for (s, (name, kind, data, _)) in sections.iter().zip(&exp.sections) {
        let data = if *kind == SectionType::Shared.code() {
            s.data()
        } else if s.is_compressed() && s.name() == "note.sdn" {
            // A compressed note records its size, even when asked to scan.
            m.note_sdn().unwrap().as_bytes()
        } else {
            &data[..]
        };
        assert_eq!(
            (s.name(), s.type_code(), s.data()),
            (name.as_str(), *kind, data)
        );
        assert_eq!(s.offset() % s.alignment(), 0);
    }
    assert_eq!(m.symbol_count() as usize, exp.symbols.len());
    for (s, (name, t, bind, sec, value, size)) in m.symbols().zip(&exp.symbols) {
        assert_eq!(
            (
                s.name(),
                s.sym_type(),
                s.binding(),
                s.section_index(),
                s.value(),
                s.size()
            ),
            (name.as_str(), *t, *bind, *sec, *value, *size)
        );
        let found = m.symbol_by_name(name).unwrap();
        assert!(found.index() <= s.index() && found.name() == s.name());
    }
    let mut relocs: Vec<_> = m
        .relocations()
        .map(|(_, _, r)| {
            (
                r.target_section,
                r.offset,
                r.symbol_index,
                r.reloc_type,
                r.addend,
            )
        })
        .collect();
    let mut want = exp.relocs.clone();
    relocs.sort_by_key(|r| (r.0, r.1, r.2, r.3.code(), r.4));
    want.sort_by_key(|r| (r.0, r.1, r.2, r.3.code(), r.4));
    assert_eq!(relocs, want);
    assert_eq!(m.note_sdn(), exp.note.as_deref());
    assert_eq!(m.template_code(), exp.templates.as_deref());
    assert_eq!(m.shared_items(), &exp.shared[..]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn write_then_read_gives_back_the_module(m in maybe_compressed_module()) {
        let (bytes, exp) = build(&m);
        check(&bytes, &exp);
        let mut appended = m.prefix.clone();
        appended.extend_from_slice(&bytes);
        check(&appended, &exp);
        prop_assert_eq!(Module::parse(&appended).unwrap().base(), (m.prefix.len() + m.stub.len()) as u64);
        // Rebuilding from the parsed module reproduces the file exactly
        // (a scanned note comes back with its size recorded instead).
        let rebuilt = ModuleBuilder::from_module(&Module::parse(&bytes).unwrap()).unwrap().build().unwrap();
        if !matches!(m.note, Some((_, true))) {
            prop_assert!(rebuilt == bytes, "from_module(parse(bytes)).build() != bytes");
        }
        check(&rebuilt, &exp_recorded(exp));
    }

    #[test]
    fn reader_never_panics_on_damaged_modules(m in maybe_compressed_module(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let (mut bytes, _) = build(&m);
        for (at, x) in flips {
            let i = at % bytes.len();
            bytes[i] ^= x | 1;
        }
        let _ = Module::parse(&bytes);
    }
}
