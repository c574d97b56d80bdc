//! The `Shared` section (type 14): memories and tables a module defines or
//! imports. The writer's items read back as they were put in, and each rule
//! of the reader rejects its fault at the offset of the field at fault.

mod common;

use common::{put_u16, put_u32, put_u64, verdict};
use smf::limits::{MAX_MEMORY_PAGES, MAX_SHARED_ITEMS, MAX_TABLE_ENTRIES};
use smf::{
    Error, Linkage, Module, ModuleBuilder, SectionType, SharedItem, SharedKind, SymbolDef,
    raw::section_flags,
};

const SIGNATURE: &str = "fn(i64) -> i64";

/// Entry indices of `items()`.
const HEAP: usize = 0;
const BIG: usize = 1;
const DISPATCH: usize = 2;
const ENV: usize = 3;
const CALLBACKS: usize = 4;

/// One of each shape: memories with and without a maximum, a table, and an
/// imported memory and table (the two tables share their signature).
fn items() -> Vec<SharedItem> {
    vec![
        SharedItem::memory("heap", 1, Some(16)),
        SharedItem::memory("big", 2, None),
        SharedItem::table("dispatch", SIGNATURE, 4, Some(64)),
        SharedItem::import_memory("env"),
        SharedItem::import_table("callbacks", SIGNATURE),
    ]
}

/// A module with code and a symbol before its memories and tables, so the
/// string table holds a symbol name first.
fn builder_with(items: &[SharedItem]) -> ModuleBuilder {
    let mut b = ModuleBuilder::new();
    let text = b
        .add_section(SectionType::Code, ".text", 5, 16, &[0xC3; 16])
        .unwrap();
    b.add_symbol(SymbolDef::function("main", text, 0, 16))
        .unwrap();
    for item in items {
        b.add_shared_item(item.clone()).unwrap();
    }
    b
}

fn module() -> Vec<u8> {
    builder_with(&items()).build().unwrap()
}

/// Absolute file offsets of the `Shared` section's bytes and table entry.
struct Place {
    data: usize,
    record: usize,
    strings: usize,
}

impl Place {
    fn of(bytes: &[u8]) -> Self {
        let m = Module::parse(bytes).unwrap();
        let s = m.shared_section().unwrap();
        let base = m.base() as usize;
        let section_table = base + m.header().section_table_offset as usize;
        Self {
            data: base + s.offset() as usize,
            record: section_table + 64 * s.index() as usize,
            strings: base + m.string_table_offset() as usize,
        }
    }

    /// Absolute offset of entry `i`.
    fn entry(&self, i: usize) -> usize {
        self.data + 16 + 32 * i
    }
}

/// `bytes` after `patch`, with the module hash re-recorded so the rule
/// under test speaks, not the hash check.
fn patched(bytes: &[u8], patch: impl FnOnce(&mut Vec<u8>, &Place)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let place = Place::of(&b);
    patch(&mut b, &place);
    common::rehash(&mut b);
    b
}

/// The error the reader reports after `patch`.
fn error_after(bytes: &[u8], patch: impl FnOnce(&mut Vec<u8>, &Place)) -> Error {
    Module::parse(&patched(bytes, patch)).expect_err("the damage is rejected")
}

/// `(error code, absolute offset)` after `patch`, or `("ok", 0)`.
fn fault_after(bytes: &[u8], patch: impl FnOnce(&mut Vec<u8>, &Place)) -> (String, u64) {
    match Module::parse(&patched(bytes, patch)) {
        Ok(_) => ok(),
        Err(e) => (
            e.kind().code().into(),
            e.offset().expect("reader errors have offsets"),
        ),
    }
}

fn fault(code: &str, offset: usize) -> (String, u64) {
    (code.into(), offset as u64)
}

fn ok() -> (String, u64) {
    ("ok".into(), 0)
}

#[test]
fn items_read_back_as_written() {
    let bytes = module();
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.shared_items(), &items()[..]);
    let s = m.shared_section().unwrap();
    assert_eq!(s.name(), ".shared");
    assert_eq!(s.section_type(), Some(SectionType::Shared));
    assert_eq!(s.type_code(), 14);
    assert_eq!(s.flags(), section_flags::READ);
    assert_eq!(s.size(), 16 + 32 * 5);
    let heap = &m.shared_items()[HEAP];
    assert_eq!(
        (heap.kind, heap.linkage, heap.initial, heap.maximum),
        (SharedKind::Memory, Linkage::Define, 1, Some(16))
    );
    assert_eq!(heap.signature, None);
    let callbacks = &m.shared_items()[CALLBACKS];
    assert_eq!(
        (
            callbacks.kind,
            callbacks.linkage,
            callbacks.initial,
            callbacks.maximum
        ),
        (SharedKind::Table, Linkage::Import, 0, None)
    );
    assert_eq!(callbacks.signature.as_deref(), Some(SIGNATURE));
}

#[test]
fn the_section_is_byte_exact() {
    let bytes = module();
    let m = Module::parse(&bytes).unwrap();
    let strings = m.string_table();
    let string_at = |offset: u32| {
        let tail = &strings[offset as usize..];
        std::str::from_utf8(&tail[..tail.iter().position(|&b| b == 0).unwrap()]).unwrap()
    };
    let data = m.shared_section().unwrap().data();
    assert_eq!(&data[..4], b"SHRD");
    assert_eq!(u16::from_le_bytes([data[4], data[5]]), 1);
    assert_eq!(&data[6..8], &[0, 0]);
    assert_eq!(common::u32_at(data, 8), 5);
    assert_eq!(&data[12..16], &[0; 4]);
    let dispatch = &data[16 + 32 * DISPATCH..16 + 32 * (DISPATCH + 1)];
    assert_eq!(&dispatch[..4], &[2, 1, 1, 0], "table, define, has_maximum");
    assert_eq!(string_at(common::u32_at(dispatch, 4)), "dispatch");
    assert_eq!(common::u64_at(dispatch, 8), 4);
    assert_eq!(common::u64_at(dispatch, 16), 64);
    assert_eq!(string_at(common::u32_at(dispatch, 24)), SIGNATURE);
    assert_eq!(&dispatch[28..], &[0; 4]);
    let big = &data[16 + 32 * BIG..16 + 32 * (BIG + 1)];
    assert_eq!(&big[..4], &[1, 1, 0, 0], "memory, define, no maximum");
    assert_eq!(common::u64_at(big, 16), 0);
    assert_eq!(common::u32_at(big, 24), 0, "a memory has no signature");
    let env = &data[16 + 32 * ENV..16 + 32 * (ENV + 1)];
    assert_eq!(&env[..4], &[1, 0, 0, 0], "memory, import");
    assert_eq!(&env[8..24], &[0; 16], "an import records no sizes");
    // Names after the symbols', in order of first use; the shared signature once.
    assert_eq!(
        strings,
        b"\0main\0heap\0big\0dispatch\0fn(i64) -> i64\0env\0callbacks\0"
    );
}

#[test]
fn the_writer_is_deterministic_and_rebuilds_what_it_read() {
    let bytes = module();
    assert_eq!(bytes, module());
    let m = Module::parse(&bytes).unwrap();
    let rebuilt = ModuleBuilder::from_module(&m).unwrap().build().unwrap();
    assert_eq!(rebuilt, bytes);
    let renoted =
        smf::rewrite_note(&bytes, "# Instantiation To/From Metadata\n# END_NOTE\n").unwrap();
    assert_eq!(
        Module::parse(&renoted).unwrap().shared_items(),
        &items()[..]
    );
}

#[test]
fn a_module_without_symbols_still_writes_the_names() {
    let mut b = ModuleBuilder::new();
    b.add_shared_item(SharedItem::memory("heap", 0, None))
        .unwrap();
    let bytes = b.build().unwrap();
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.symbol_count(), 0);
    assert_eq!(m.string_table(), b"\0heap\0");
    assert_eq!(m.shared_items(), &[SharedItem::memory("heap", 0, None)]);
    // Offset 0 is the empty name: a table that names something starts with NUL.
    let start = Place::of(&bytes).strings;
    assert_eq!(
        fault_after(&bytes, |b, _| b[start] = b'x'),
        fault("bad-name", start)
    );
}

#[test]
fn a_module_without_memories_or_tables_has_no_section() {
    let bytes = builder_with(&[]).build().unwrap();
    let m = Module::parse(&bytes).unwrap();
    assert!(m.shared_section().is_none());
    assert!(m.shared_items().is_empty());
}

#[test]
fn the_section_is_added_once_where_the_first_item_was() {
    let mut b = ModuleBuilder::new();
    b.add_shared_item(SharedItem::memory("a", 1, None)).unwrap();
    b.add_section(SectionType::Data, ".data", 3, 8, &[7; 8])
        .unwrap();
    b.add_shared_item(SharedItem::memory("b", 1, None)).unwrap();
    let bytes = b.build().unwrap();
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.shared_section().unwrap().index(), 0);
    assert_eq!(m.sections_of_type(SectionType::Shared).count(), 1);
    assert_eq!(m.shared_items().len(), 2);
}

#[test]
fn the_builder_refuses_raw_shared_sections_and_unwritable_names() {
    let mut b = ModuleBuilder::new();
    let err = b
        .add_section(SectionType::Shared, ".shared", 1, 8, b"SHRD")
        .unwrap_err();
    assert_eq!(err.kind().code(), "build");
    assert!(
        b.add_shared_item(SharedItem::memory("a\0b", 1, None))
            .is_err()
    );
    let long = "x".repeat(smf::limits::MAX_NAME_LEN + 1);
    assert!(
        b.add_shared_item(SharedItem::memory(&long, 1, None))
            .is_err()
    );
    assert!(
        b.add_shared_item(SharedItem::import_table("t", "fn()\0"))
            .is_err()
    );
}

/// What `build` says about `items`, which the reader rejects.
fn build_error(items: &[SharedItem]) -> String {
    let err = builder_with(items).build().unwrap_err();
    assert_eq!(err.kind().code(), "build");
    err.to_string()
}

#[test]
fn the_builder_reports_what_the_reader_would_reject() {
    let below = build_error(&[SharedItem::memory("heap", 5, Some(4))]);
    assert!(
        below
            .contains("memory 'heap' (entry 0) has a maximum below the initial size (4 < 5 pages)"),
        "{below}"
    );
    let twice = build_error(&[
        SharedItem::memory("x", 1, None),
        SharedItem::table("x", SIGNATURE, 1, None),
    ]);
    assert!(
        twice.contains("entry 1 is named 'x' like entry 0"),
        "{twice}"
    );
    let unsigned = build_error(&[SharedItem {
        signature: None,
        ..SharedItem::table("t", SIGNATURE, 1, None)
    }]);
    assert!(
        unsigned.contains("table 't' (entry 0) has no signature"),
        "{unsigned}"
    );
    let over = build_error(&[SharedItem::memory("m", MAX_MEMORY_PAGES + 1, None)]);
    assert!(
        over.contains(
            "initial size of memory 'm' (entry 0) in pages is 65537, beyond the limit of 65536"
        ),
        "{over}"
    );
}

#[test]
fn the_section_header_needs_its_magic_version_and_zero_reserved_bytes() {
    let bytes = module();
    let p = Place::of(&bytes);
    let err = error_after(&bytes, |b, p| {
        b[p.data..p.data + 4].copy_from_slice(b"SHRX")
    });
    assert_eq!(err.kind().code(), "bad-shared");
    assert_eq!(err.offset(), Some(p.data as u64));
    assert!(err.to_string().contains("expected \"SHRD\""), "{err}");
    assert_eq!(
        fault_after(&bytes, |b, p| put_u16(b, p.data + 4, 2)),
        fault("bad-shared", p.data + 4)
    );
    assert_eq!(
        fault_after(&bytes, |b, p| put_u16(b, p.data + 4, 0)),
        fault("bad-shared", p.data + 4)
    );
    for (byte, field) in [(6, 6), (7, 6), (12, 12), (15, 12)] {
        assert_eq!(
            fault_after(&bytes, |b, p| b[p.data + byte] = 1),
            fault("nonzero-reserved", p.data + field),
            "header byte {byte}"
        );
    }
}

#[test]
fn the_size_is_exactly_the_header_and_count_entries() {
    let bytes = module();
    let p = Place::of(&bytes);
    let count = |n: u32| fault_after(&bytes, |b, p| put_u32(b, p.data + 8, n));
    assert_eq!(count(4), fault("bad-shared", p.data + 8));
    assert_eq!(count(5), ok());
    assert_eq!(count(6), fault("bad-shared", p.data + 8));
    let size = |n: u64| fault_after(&bytes, |b, p| put_u64(b, p.record + 16, n));
    assert_eq!(size(16 + 32 * 5 - 1), fault("bad-shared", p.data + 8));
    assert_eq!(size(16), fault("bad-shared", p.data + 8));
    // Shorter than the header: the section's size field is at fault.
    assert_eq!(size(15), fault("bad-shared", p.record + 16));
    assert_eq!(size(0), fault("bad-shared", p.record + 16));
    // An empty section (count 0) is valid.
    assert_eq!(
        fault_after(&bytes, |b, p| {
            put_u64(b, p.record + 16, 16);
            put_u32(b, p.data + 8, 0);
        }),
        ok()
    );
    let err = error_after(&bytes, |b, p| put_u32(b, p.data + 8, 4));
    assert!(
        err.to_string().contains(
            "count is 4, so the section takes 16 + 32 × 4 = 144 bytes, but it is 176 bytes"
        ),
        "{err}"
    );
}

#[test]
fn the_count_is_bounded_before_any_entry_is_read() {
    let bytes = module();
    let p = Place::of(&bytes);
    let count = |n: u32| fault_after(&bytes, |b, p| put_u32(b, p.data + 8, n));
    assert_eq!(count(MAX_SHARED_ITEMS), fault("bad-shared", p.data + 8));
    assert_eq!(
        count(MAX_SHARED_ITEMS + 1),
        fault("limit-exceeded", p.data + 8)
    );
    assert_eq!(count(u32::MAX), fault("limit-exceeded", p.data + 8));
}

#[test]
fn the_limit_of_items_is_reached_exactly() {
    let at_limit: Vec<_> = (0..MAX_SHARED_ITEMS)
        .map(|i| SharedItem::memory(&format!("m{i}"), 0, None))
        .collect();
    let bytes = builder_with(&at_limit).build().unwrap();
    assert_eq!(
        Module::parse(&bytes).unwrap().shared_items().len(),
        MAX_SHARED_ITEMS as usize
    );
    let mut over = at_limit;
    over.push(SharedItem::memory("one-more", 0, None));
    assert!(build_error(&over).contains("entry count is 257, beyond the limit of 256"));
}

#[test]
fn undefined_kinds_linkages_and_flags_are_rejected() {
    let bytes = module();
    let p = Place::of(&bytes);
    let e = p.entry(HEAP);
    let byte = |off: usize, v: u8| fault_after(&bytes, |b, p| b[p.entry(HEAP) + off] = v);
    assert_eq!(byte(0, 0), fault("invalid-value", e));
    assert_eq!(byte(0, 3), fault("invalid-value", e));
    assert_eq!(byte(1, 2), fault("invalid-value", e + 1));
    assert_eq!(byte(2, 2), fault("invalid-value", e + 2));
    assert_eq!(byte(3, 1), fault("nonzero-reserved", e + 3));
    for off in 28..32 {
        assert_eq!(
            byte(off, 1),
            fault("nonzero-reserved", e + 28),
            "byte {off}"
        );
    }
}

#[test]
fn names_are_non_empty_strings_of_the_string_table() {
    let bytes = module();
    let p = Place::of(&bytes);
    let e = p.entry(BIG) + 4;
    let len = Module::parse(&bytes).unwrap().string_table().len() as u32;
    let name = |offset: u32| fault_after(&bytes, |b, p| put_u32(b, p.entry(BIG) + 4, offset));
    assert_eq!(name(0), fault("bad-name", e), "the empty name");
    assert_eq!(name(len - 1), fault("bad-name", e), "the final NUL: empty");
    assert_eq!(name(len), fault("bad-name", e));
    assert_eq!(name(len + 1), fault("bad-name", e));
    assert_eq!(name(u32::MAX), fault("bad-name", e));
    // "main" is the symbol's name: any string of the table will do.
    assert_eq!(name(1), ok());
    let err = error_after(&bytes, |b, p| put_u32(b, p.entry(BIG) + 4, 0));
    assert!(
        err.to_string()
            .starts_with(".shared entry 1 name at string offset 0x0 is empty"),
        "{err}"
    );
    // Not UTF-8: reported where the bytes are.
    let heap_name = p.strings + 6;
    assert_eq!(
        fault_after(&bytes, |b, _| b[heap_name] = 0xFF),
        fault("invalid-utf8", heap_name)
    );
}

#[test]
fn names_are_unique_across_memories_and_tables() {
    let bytes = module();
    let p = Place::of(&bytes);
    let dispatch_name = common::u32_at(&bytes, p.entry(DISPATCH) + 4);
    // The imported table takes the defined table's name: one namespace.
    let err = error_after(&bytes, |b, p| {
        put_u32(b, p.entry(CALLBACKS) + 4, dispatch_name)
    });
    assert_eq!(err.kind().code(), "bad-shared");
    assert_eq!(err.offset(), Some(p.entry(CALLBACKS) as u64 + 4));
    assert!(
        err.to_string()
            .contains("entry 4 is named 'dispatch' like entry 2"),
        "{err}"
    );
}

#[test]
fn a_maximum_below_the_initial_size_is_an_error() {
    let bytes = module();
    let p = Place::of(&bytes);
    // heap: initial 1, maximum 16.
    let initial = |v: u64| fault_after(&bytes, |b, p| put_u64(b, p.entry(HEAP) + 8, v));
    assert_eq!(initial(15), ok());
    assert_eq!(initial(16), ok());
    assert_eq!(initial(17), fault("bad-shared", p.entry(HEAP) + 16));
    let err = error_after(&bytes, |b, p| put_u64(b, p.entry(DISPATCH) + 16, 3));
    assert_eq!(
        err.to_string(),
        format!(
            ".shared: table 'dispatch' (entry 2) has a maximum below the initial size (3 < 4 entries) (at offset {:#x})",
            p.entry(DISPATCH) + 16
        )
    );
}

#[test]
fn sizes_beyond_the_limits_are_rejected() {
    let bytes = module();
    let p = Place::of(&bytes);
    let set = |entry: usize, off: usize, v: u64| {
        fault_after(&bytes, |b, p| put_u64(b, p.entry(entry) + off, v))
    };
    // heap's maximum, then big's initial size (it has no maximum).
    assert_eq!(set(HEAP, 16, MAX_MEMORY_PAGES), ok());
    assert_eq!(
        set(HEAP, 16, MAX_MEMORY_PAGES + 1),
        fault("limit-exceeded", p.entry(HEAP) + 16)
    );
    assert_eq!(set(BIG, 8, MAX_MEMORY_PAGES), ok());
    assert_eq!(
        set(BIG, 8, MAX_MEMORY_PAGES + 1),
        fault("limit-exceeded", p.entry(BIG) + 8)
    );
    assert_eq!(
        set(BIG, 8, u64::MAX),
        fault("limit-exceeded", p.entry(BIG) + 8)
    );
    assert_eq!(set(DISPATCH, 16, MAX_TABLE_ENTRIES), ok());
    assert_eq!(
        set(DISPATCH, 16, MAX_TABLE_ENTRIES + 1),
        fault("limit-exceeded", p.entry(DISPATCH) + 16)
    );
    // Both sizes past the limit: the initial size is reported first.
    assert_eq!(
        fault_after(&bytes, |b, p| {
            put_u64(b, p.entry(DISPATCH) + 8, MAX_TABLE_ENTRIES + 1);
            put_u64(b, p.entry(DISPATCH) + 16, MAX_TABLE_ENTRIES + 1);
        }),
        fault("limit-exceeded", p.entry(DISPATCH) + 8)
    );
}

#[test]
fn an_absent_maximum_records_zero() {
    let bytes = module();
    let p = Place::of(&bytes);
    assert_eq!(
        fault_after(&bytes, |b, p| put_u64(b, p.entry(BIG) + 16, 1)),
        fault("bad-shared", p.entry(BIG) + 16)
    );
    // Turning the maximum on makes the same bytes valid (2 <= 2).
    assert_eq!(
        fault_after(&bytes, |b, p| {
            b[p.entry(BIG) + 2] = 1;
            put_u64(b, p.entry(BIG) + 16, 2);
        }),
        ok()
    );
}

#[test]
fn an_import_records_no_sizes() {
    let bytes = module();
    let p = Place::of(&bytes);
    for entry in [ENV, CALLBACKS] {
        let e = p.entry(entry);
        assert_eq!(
            fault_after(&bytes, |b, p| put_u64(b, p.entry(entry) + 8, 1)),
            fault("bad-shared", e + 8)
        );
        assert_eq!(
            fault_after(&bytes, |b, p| put_u64(b, p.entry(entry) + 16, 1)),
            fault("bad-shared", e + 16)
        );
        assert_eq!(
            fault_after(&bytes, |b, p| b[p.entry(entry) + 2] = 1),
            fault("bad-shared", e + 2)
        );
    }
    let err = error_after(&bytes, |b, p| put_u64(b, p.entry(ENV) + 8, 1));
    assert!(
        err.to_string()
            .contains("imported memory 'env' (entry 3) records initial 1"),
        "{err}"
    );
}

#[test]
fn a_table_names_its_signature_and_a_memory_has_none() {
    let bytes = module();
    let p = Place::of(&bytes);
    let signature = common::u32_at(&bytes, p.entry(DISPATCH) + 24);
    let len = Module::parse(&bytes).unwrap().string_table().len() as u32;
    let table = |v: u32| fault_after(&bytes, |b, p| put_u32(b, p.entry(DISPATCH) + 24, v));
    let e = p.entry(DISPATCH) + 24;
    assert_eq!(table(0), fault("bad-shared", e), "no signature");
    assert_eq!(table(len - 1), fault("bad-shared", e), "an empty signature");
    assert_eq!(table(len), fault("bad-name", e));
    assert_eq!(table(u32::MAX), fault("bad-name", e));
    assert_eq!(
        fault_after(&bytes, |b, p| put_u32(b, p.entry(CALLBACKS) + 24, 0)),
        fault("bad-shared", p.entry(CALLBACKS) + 24),
        "an imported table names its signature too"
    );
    assert_eq!(
        fault_after(&bytes, |b, p| put_u32(b, p.entry(HEAP) + 24, signature)),
        fault("bad-shared", p.entry(HEAP) + 24)
    );
    let sig_at = p.strings + signature as usize;
    assert_eq!(
        fault_after(&bytes, |b, _| b[sig_at] = 0xC3),
        fault("invalid-utf8", sig_at)
    );
}

#[test]
fn a_module_has_at_most_one_shared_section() {
    // A second section with the same valid bytes, later in the table.
    let bytes = module();
    let shared = Module::parse(&bytes)
        .unwrap()
        .shared_section()
        .unwrap()
        .data()
        .to_vec();
    let mut b = builder_with(&items());
    let second = b
        .add_section(SectionType::RoData, "again", 1, 8, &shared)
        .unwrap();
    let twice = b.build().unwrap();
    let m = Module::parse(&twice).unwrap();
    assert_eq!(m.shared_items(), &items()[..], "the same string table");
    let record =
        m.base() as usize + m.header().section_table_offset as usize + 64 * usize::from(second.0);
    drop(m);
    let mut damaged = twice.clone();
    damaged[record] = SectionType::Shared.code();
    common::rehash(&mut damaged);
    let err = Module::parse(&damaged).unwrap_err();
    assert_eq!(err.kind().code(), "duplicate-section");
    assert_eq!(err.offset(), Some(record as u64));
    assert_eq!(verdict(&twice), "ok");
}
