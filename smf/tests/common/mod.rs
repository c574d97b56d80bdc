//! Test support: a sample module using every feature, and byte patching that
//! keeps `module_hash` consistent so a test reaches the rule it targets.
#![allow(dead_code)] // each test file uses a different subset

use smf::{
    ModuleBuilder, NoteSize, RelocType, SectionType, SymbolDef, SymbolType, raw::section_flags,
};

pub const NOTE: &str = "# Instantiation To/From Metadata\npossible |id, template, type_args, mangled_name, required_by, can_defer|\n  1, sum, f64, sum$f64, app, true\n# END_NOTE\n";

/// The `TemplateCode` payload of the sample: the IR encoding of the `sum`
/// and `dot` templates of `tests/fixtures/src/sample-templates.tir` (a root
/// test proves the bytes are that source's current encoding).
pub fn template_code() -> Vec<u8> {
    include_bytes!("../../../tests/fixtures/src/sample-templates.gtpl").to_vec()
}

/// Offset of each entry of a `GTPL` payload: after the 10-byte header,
/// each entry is a kind byte, a LEB128 length and that many bytes.
pub fn entry_offsets(code: &[u8]) -> Vec<u64> {
    let count = u32::from_le_bytes(code[6..10].try_into().unwrap());
    let mut at = 10usize;
    let mut offsets = Vec::new();
    for _ in 0..count {
        offsets.push(at as u64);
        let (mut len, mut shift, mut p) = (0usize, 0, at + 1);
        loop {
            let byte = code[p];
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            p += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        at = p + len;
    }
    assert_eq!(at, code.len(), "entries fill the payload");
    offsets
}

/// A module with code, data, rodata, bss, an unknown section type, a note,
/// template code, defined, imported and template symbols, and relocations.
pub fn sample_builder(note: NoteSize) -> ModuleBuilder {
    let mut b = ModuleBuilder::new();
    let rw = section_flags::READ | section_flags::WRITE;
    let code = b
        .add_section(
            SectionType::Code,
            ".text",
            section_flags::READ | section_flags::EXEC,
            16,
            &[0x90; 40],
        )
        .unwrap();
    let data = b
        .add_section(
            SectionType::Data,
            ".data",
            rw,
            8,
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
        )
        .unwrap();
    b.add_section(
        SectionType::RoData,
        ".rodata",
        section_flags::READ,
        4,
        b"hello\0",
    )
    .unwrap();
    let bss = b.add_bss(".bss", 4096, 64).unwrap();
    b.add_section_code(200, "vendor", 0, 1, b"kept").unwrap();
    b.set_note(NOTE, note).unwrap();
    b.set_template_code(&template_code()).unwrap();
    b.entry_point(code, 0);
    let main = b
        .add_symbol(SymbolDef::function("main", code, 0, 16))
        .unwrap();
    b.add_symbol(SymbolDef::function("sum$i32", code, 16, 24))
        .unwrap();
    b.add_symbol(SymbolDef {
        name: "counter".into(),
        sym_type: SymbolType::Data,
        section: Some(bss),
        value: 8,
        size: 8,
        ..SymbolDef::default()
    })
    .unwrap();
    let malloc = b
        .add_symbol(SymbolDef::import("malloc", SymbolType::Function))
        .unwrap();
    let entries = entry_offsets(&template_code());
    b.add_symbol(SymbolDef::template("sum", 1, entries[0]))
        .unwrap();
    b.add_symbol(SymbolDef::template("dot", 1, entries[1]))
        .unwrap();
    b.add_relocation(code, 4, malloc, RelocType::Plt32, -4);
    b.add_relocation(code, 32, main, RelocType::Abs64, 0);
    b.add_relocation(data, 8, main, RelocType::Abs64, 8);
    b
}

pub fn sample() -> Vec<u8> {
    sample_builder(NoteSize::Recorded).build().unwrap()
}

/// The sample with zstd at the default level: its note and template code
/// compressed, everything else stored.
pub fn compressed_sample() -> Vec<u8> {
    let mut b = sample_builder(NoteSize::Recorded);
    b.compress(smf::Compression::Zstd, None).unwrap();
    b.build().unwrap()
}

/// Absolute offsets of the records of a (possibly damaged) module, computed
/// from its raw header the way the reader does.
pub struct Layout {
    pub header: usize,
    pub base: usize,
    pub section_table: usize,
    pub symbol_table: usize,
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn layout(b: &[u8]) -> Layout {
    let header = b.len() - 128;
    let smf_size = u64_at(b, header + 88) as usize;
    let base = if smf_size != 0 {
        b.len() - smf_size
    } else {
        u32_at(b, header + 60) as usize
    };
    Layout {
        header,
        base,
        section_table: base + u64_at(b, header + 24) as usize,
        symbol_table: base + u64_at(b, header + 32) as usize,
    }
}

impl Layout {
    pub fn section(&self, i: usize) -> usize {
        self.section_table + 64 * i
    }
    pub fn symbol(&self, i: usize) -> usize {
        self.symbol_table + 72 * i
    }
    /// Absolute offset of the bytes of section `i`.
    pub fn section_data(&self, b: &[u8], i: usize) -> usize {
        self.base + u64_at(b, self.section(i) + 8) as usize
    }
}

/// Recomputes `module_hash` after a patch inside the SMF data.
pub fn rehash(b: &mut [u8]) {
    let l = layout(b);
    rehash_at(b, &l);
}

/// Recomputes `module_hash` over the data of layout `l` (taken before a
/// patch that may have damaged the fields the layout comes from).
pub fn rehash_at(b: &mut [u8], l: &Layout) {
    let h = smf::fnv1a64(&b[l.base..l.header]);
    put_u64(b, l.header + 64, h);
}

/// Applies `patch` to a copy of `bytes`, re-records the hash, and returns
/// the code of the error the reader reports (or "ok").
pub fn verdict_after(bytes: &[u8], patch: impl FnOnce(&mut Vec<u8>, &Layout)) -> String {
    let mut b = bytes.to_vec();
    let l = layout(&b);
    patch(&mut b, &l);
    if u64_at(&b, l.header + 64) != 0 {
        rehash_at(&mut b, &l);
    }
    verdict(&b)
}

pub fn verdict(b: &[u8]) -> String {
    match smf::Module::parse(b) {
        Ok(_) => "ok".into(),
        Err(e) => e.kind().code().into(),
    }
}

/// Checks that no proper prefix of the module `bytes` reads as a module.
pub fn assert_every_prefix_is_an_error(bytes: &[u8]) {
    for len in 0..bytes.len() {
        assert_ne!(verdict(&bytes[..len]), "ok", "prefix of {len} bytes");
    }
}

/// Index of the section called `name` in a valid module.
pub fn section_index(b: &[u8], name: &str) -> usize {
    smf::Module::parse(b)
        .unwrap()
        .section_by_name(name)
        .unwrap()
        .index() as usize
}
