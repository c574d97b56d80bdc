//! The validated, zero-copy view of an SMF module.
//!
//! [`Module::parse`] runs every check of BRIEF §3 (see `validate.rs`) and only
//! then returns a `Module`; holding one is proof that every offset, count and
//! name in it is sound, so the accessors here never fail. Tables, names,
//! section bytes and the `note.sdn` text are borrowed from the input bytes
//! (a memory map or a `Vec`), never copied — except the contents of
//! compressed sections, which the `Module` decompresses while validating
//! and owns. That is why a section's bytes borrow from the `Module` rather
//! than from the input: they live as long as the view does.

use zerocopy::FromBytes;

use crate::hash::fnv1a32;
use crate::kinds::{
    AppType, Arch, Binding, Compression, Platform, RelocType, SectionType, SymbolType,
};
use crate::raw::{RawRelocation, RawSection, RawSymbol, SECTION_UNDEFINED};
use crate::shared::SharedItem;

/// The header fields, decoded. Enumerated fields are known values: the reader
/// rejects any code this version does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // field names and meanings are those of BRIEF §3
pub struct Header {
    pub magic: [u8; 4],
    pub version_major: u8,
    pub version_minor: u8,
    pub platform: Platform,
    pub arch: Arch,
    pub flags: u32,
    pub compression: Compression,
    pub compression_level: u8,
    pub section_count: u32,
    pub section_table_offset: u64,
    pub symbol_table_offset: u64,
    pub symbol_count: u32,
    pub exported_count: u32,
    pub entry_point: u64,
    pub stub_size: u32,
    pub smf_data_offset: u32,
    pub module_hash: u64,
    pub source_hash: u64,
    pub app_type: AppType,
    pub prefetch_hint: u8,
    pub window_width: u16,
    pub window_height: u16,
    pub prefetch_file_count: u8,
    pub smf_size: u64,
}

/// The parts a successful validation produces; [`Module`] is a view over them.
#[derive(Debug)]
pub(crate) struct Parts<'a> {
    pub file: &'a [u8],
    pub base: usize,
    /// The SMF data from the base up to the header.
    pub data: &'a [u8],
    pub header: Header,
    pub sections: &'a [RawSection],
    pub section_names: Vec<&'a str>,
    pub symbols: &'a [RawSymbol],
    pub symbol_names: Vec<&'a str>,
    pub strings: &'a [u8],
    pub strings_offset: u64,
    pub note: Option<(u32, NoteText<'a>)>,
    pub template_code: Option<u32>,
    pub shared: Option<crate::validate::SharedSection>,
    /// The contents of the compressed sections, by section index (empty
    /// when there are none).
    pub decompressed: crate::validate::Decompressed,
}

/// Where the validated `note.sdn` text lies.
#[derive(Debug)]
pub(crate) enum NoteText<'a> {
    /// In the input: exactly the section's size, or up to the terminator.
    Stored(&'a str),
    /// The whole of the compressed section's decompressed contents.
    Decompressed,
}

/// A validated SMF module over borrowed bytes.
#[derive(Debug)]
pub struct Module<'a> {
    parts: Parts<'a>,
    /// Open-addressing table of symbol indices + 1 (0 = empty), keyed by
    /// `name_hash`; its length is a power of two at least twice the symbol
    /// count, so probes stay short.
    index: Vec<u32>,
}

impl<'a> Module<'a> {
    /// Validates `file` (a whole file: pure SMF, with a stub, or with SMF
    /// appended to other bytes) and returns the view.
    ///
    /// # Errors
    /// Any violation of the SMF v1.1 rules, with the absolute file offset of
    /// the fault. Platform and architecture are not compared with the host
    /// here; call [`Module::check_host`] before loading for execution.
    pub fn parse(file: &'a [u8]) -> crate::Result<Self> {
        let parts = crate::validate::validate(file)?;
        let index = build_index(&parts);
        Ok(Self { parts, index })
    }

    /// Checks that the module's platform and architecture can run on this host.
    ///
    /// # Errors
    /// [`crate::ErrorKind::HostMismatch`] naming the field that differs.
    pub fn check_host(&self) -> crate::Result<()> {
        crate::validate::check_host(&self.parts)
    }

    /// The whole input, stub and foreign prefix included.
    #[must_use]
    pub fn file(&self) -> &'a [u8] {
        self.parts.file
    }

    /// File offset of the SMF base, the origin of every offset in the module.
    #[must_use]
    pub fn base(&self) -> u64 {
        self.parts.base as u64
    }

    /// The decoded header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.parts.header
    }

    /// File offset of the header (file length − 128).
    #[must_use]
    pub fn header_offset(&self) -> u64 {
        (self.parts.base + self.parts.data.len()) as u64
    }

    /// Number of sections.
    #[must_use]
    pub fn section_count(&self) -> u32 {
        self.parts.header.section_count
    }

    /// The section at `index`, if there is one.
    #[must_use]
    pub fn section(&self, index: u32) -> Option<Section<'_>> {
        let i = usize::try_from(index).ok()?;
        Some(self.section_at(
            i,
            self.parts.sections.get(i)?,
            self.parts.section_names.get(i)?,
        ))
    }

    fn section_at<'s>(&'s self, i: usize, raw: &'s RawSection, name: &'s str) -> Section<'s> {
        let parts = &self.parts;
        Section {
            // Section counts are bounded by `limits::MAX_SECTIONS`.
            index: i as u32,
            raw,
            name,
            contents: crate::validate::contents(parts.sections, i, parts.data, &parts.decompressed),
            stored: crate::validate::stored(raw, parts.data),
        }
    }

    /// Every section, in table order.
    pub fn sections(&self) -> impl ExactSizeIterator<Item = Section<'_>> + '_ {
        self.parts
            .sections
            .iter()
            .zip(&self.parts.section_names)
            .enumerate()
            .map(|(i, (raw, name))| self.section_at(i, raw, name))
    }

    /// The first section called `name`.
    #[must_use]
    pub fn section_by_name(&self, name: &str) -> Option<Section<'_>> {
        self.sections().find(|s| s.name() == name)
    }

    /// Every section of type `section_type`, in table order.
    pub fn sections_of_type(
        &self,
        section_type: SectionType,
    ) -> impl Iterator<Item = Section<'_>> + '_ {
        self.sections()
            .filter(move |s| s.section_type() == Some(section_type))
    }

    /// Number of symbols.
    #[must_use]
    pub fn symbol_count(&self) -> u32 {
        self.parts.header.symbol_count
    }

    /// The symbol at `index`, if there is one.
    #[must_use]
    pub fn symbol(&self, index: u32) -> Option<Symbol<'a>> {
        let i = usize::try_from(index).ok()?;
        Some(Symbol {
            index,
            raw: self.parts.symbols.get(i)?,
            name: self.parts.symbol_names.get(i)?,
        })
    }

    /// Every symbol, in table order.
    pub fn symbols(&self) -> impl ExactSizeIterator<Item = Symbol<'a>> + '_ {
        self.parts
            .symbols
            .iter()
            .zip(&self.parts.symbol_names)
            .enumerate()
            .map(|(i, (raw, name))| Symbol {
                // Symbol counts are bounded by `limits::MAX_SYMBOLS`.
                index: i as u32,
                raw,
                name,
            })
    }

    /// The first symbol in table order called `name`, found through the
    /// FNV-1a name hash.
    #[must_use]
    pub fn symbol_by_name(&self, name: &str) -> Option<Symbol<'a>> {
        let mask = self.index.len().checked_sub(1)?;
        let hash = fnv1a32(name.as_bytes());
        let mut slot = hash as usize & mask;
        loop {
            let entry = *self.index.get(slot)?;
            let index = entry.checked_sub(1)?;
            let symbol = self.symbol(index)?;
            if symbol.name_hash() == hash && symbol.name() == name {
                return Some(symbol);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The string table: NUL-terminated names, offset 0 the empty name.
    #[must_use]
    pub fn string_table(&self) -> &'a [u8] {
        self.parts.strings
    }

    /// Offset of the string table relative to the SMF base.
    #[must_use]
    pub fn string_table_offset(&self) -> u64 {
        self.parts.strings_offset
    }

    /// Every relocation of every `Reloc` section, with the index of the
    /// section that holds it.
    pub fn relocations(&self) -> impl Iterator<Item = (u32, u64, Relocation)> + '_ {
        self.sections_of_type(SectionType::Reloc).flat_map(|s| {
            let section = s.index();
            s.relocations()
                .into_iter()
                .flatten()
                .enumerate()
                .map(move |(i, r)| (section, i as u64, r))
        })
    }

    /// The `note.sdn` text: exactly its size when sized, otherwise up to and
    /// including the `# END_NOTE` line; when compressed, all it decompresses to.
    #[must_use]
    pub fn note_sdn(&self) -> Option<&str> {
        match self.parts.note.as_ref()? {
            (_, NoteText::Stored(text)) => Some(text),
            // Validation proved the contents UTF-8. Checking again is one
            // pass over the text, far cheaper than parsing it (what callers
            // do next), and needs no unsafe code.
            (i, NoteText::Decompressed) => std::str::from_utf8(self.section(*i)?.data()).ok(),
        }
    }

    /// The `note.sdn` section.
    #[must_use]
    pub fn note_section(&self) -> Option<Section<'_>> {
        self.parts.note.as_ref().and_then(|(i, _)| self.section(*i))
    }

    /// The `TemplateCode` section, which starts with `GTPL`.
    #[must_use]
    pub fn template_code_section(&self) -> Option<Section<'_>> {
        self.parts.template_code.and_then(|i| self.section(i))
    }

    /// The memories and tables the module defines or imports, in the order
    /// of its `Shared` section (empty when it has none).
    #[must_use]
    pub fn shared_items(&self) -> &[SharedItem] {
        self.parts.shared.as_ref().map_or(&[], |(_, items)| items)
    }

    /// The `Shared` section, which starts with `SHRD`.
    #[must_use]
    pub fn shared_section(&self) -> Option<Section<'_>> {
        self.parts
            .shared
            .as_ref()
            .and_then(|(i, _)| self.section(*i))
    }

    /// The contents of the `TemplateCode` section (decompressed, when it is
    /// compressed).
    #[must_use]
    pub fn template_code(&self) -> Option<&[u8]> {
        self.template_code_section().map(|s| s.data())
    }

    /// Whether any section is compressed.
    #[must_use]
    pub fn has_compressed_sections(&self) -> bool {
        !self.parts.decompressed.is_empty()
    }

    /// The bytes the module holds in memory for its compressed sections'
    /// decompressed contents (0 without compressed sections): what it
    /// costs beyond the file's own bytes.
    #[must_use]
    pub fn decompressed_len(&self) -> u64 {
        self.parts
            .decompressed
            .iter()
            .flatten()
            .map(|d| d.len() as u64)
            .sum()
    }
}

fn build_index(parts: &Parts<'_>) -> Vec<u32> {
    if parts.symbols.is_empty() {
        return Vec::new();
    }
    let len = (parts.symbols.len() * 2).next_power_of_two();
    let mask = len - 1;
    let mut index = vec![0u32; len];
    for (i, raw) in parts.symbols.iter().enumerate() {
        let mut slot = raw.name_hash.get() as usize & mask;
        while index[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        // The symbol count is bounded by `limits::MAX_SYMBOLS`, far below u32::MAX.
        index[slot] = i as u32 + 1;
    }
    index
}

/// One validated section.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    index: u32,
    raw: &'a RawSection,
    name: &'a str,
    /// What [`Section::data`] returns: the stored bytes, or the
    /// decompressed ones of a compressed section.
    contents: &'a [u8],
    /// The bytes in the file.
    stored: &'a [u8],
}

impl<'a> Section<'a> {
    /// Index in the section table.
    #[must_use]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The name (at most 16 bytes).
    #[must_use]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The type, or `None` for a type this version does not define (kept, ignored).
    #[must_use]
    pub fn section_type(&self) -> Option<SectionType> {
        SectionType::from_code(self.raw.section_type)
    }

    /// The numeric type code.
    #[must_use]
    pub fn type_code(&self) -> u8 {
        self.raw.section_type
    }

    /// Flags (`section_flags`).
    #[must_use]
    pub fn flags(&self) -> u32 {
        self.raw.flags.get()
    }

    /// Offset of the bytes relative to the SMF base.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.raw.offset.get()
    }

    /// Bytes in the file (for a compressed section, the compressed bytes).
    #[must_use]
    pub fn size(&self) -> u64 {
        self.raw.size.get()
    }

    /// `virtual_size` as stored (0 = same as `size`; for a compressed
    /// section, exactly the length of its decompressed contents).
    #[must_use]
    pub fn virtual_size(&self) -> u64 {
        self.raw.virtual_size.get()
    }

    /// Whether the section's bytes in the file are compressed (flag 0x8);
    /// [`Section::data`] gives them decompressed.
    #[must_use]
    pub fn is_compressed(&self) -> bool {
        crate::validate::is_compressed(self.raw)
    }

    /// Bytes the section occupies in memory: the larger of `size` and `virtual_size`.
    #[must_use]
    pub fn memory_size(&self) -> u64 {
        self.size().max(self.virtual_size())
    }

    /// Alignment in memory (a power of two).
    #[must_use]
    pub fn alignment(&self) -> u64 {
        self.raw.alignment.get()
    }

    /// The raw table entry.
    #[must_use]
    pub fn raw(&self) -> &'a RawSection {
        self.raw
    }

    /// The section's contents: its bytes in the file, or for a compressed
    /// section the bytes they decompress to (empty for `Bss`).
    #[must_use]
    pub fn data(&self) -> &'a [u8] {
        self.contents
    }

    /// The section's bytes as the file stores them: the same as
    /// [`Section::data`] unless the section is compressed.
    #[must_use]
    pub fn stored_data(&self) -> &'a [u8] {
        self.stored
    }

    /// The relocation entries, when this is a `Reloc` section.
    #[must_use]
    pub fn relocations(&self) -> Option<impl ExactSizeIterator<Item = Relocation> + use<'a>> {
        if self.section_type() != Some(SectionType::Reloc) {
            return None;
        }
        // Validation proved the size is a whole number of entries.
        let table = <[RawRelocation]>::ref_from_bytes(self.data()).unwrap_or(&[]);
        Some(table.iter().map(Relocation::from_raw))
    }
}

/// One validated symbol.
#[derive(Debug, Clone, Copy)]
pub struct Symbol<'a> {
    index: u32,
    raw: &'a RawSymbol,
    name: &'a str,
}

impl<'a> Symbol<'a> {
    /// Index in the symbol table.
    #[must_use]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The name.
    #[must_use]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Offset of the name in the string table.
    #[must_use]
    pub fn name_offset(&self) -> u32 {
        self.raw.name_offset.get()
    }

    /// FNV-1a 32-bit hash of the name (validated to match).
    #[must_use]
    pub fn name_hash(&self) -> u32 {
        self.raw.name_hash.get()
    }

    /// What the symbol names.
    #[must_use]
    pub fn sym_type(&self) -> SymbolType {
        // Validation rejected undefined codes, so the fallback is never taken.
        SymbolType::from_code(self.raw.sym_type).unwrap_or(SymbolType::None)
    }

    /// Binding.
    #[must_use]
    pub fn binding(&self) -> Binding {
        // Validation rejected undefined codes, so the fallback is never taken.
        Binding::from_code(self.raw.binding).unwrap_or(Binding::Local)
    }

    /// Visibility byte, as stored.
    #[must_use]
    pub fn visibility(&self) -> u8 {
        self.raw.visibility
    }

    /// Flags (`symbol_flags`).
    #[must_use]
    pub fn flags(&self) -> u8 {
        self.raw.flags
    }

    /// Offset inside its section.
    #[must_use]
    pub fn value(&self) -> u64 {
        self.raw.value.get()
    }

    /// Size in bytes.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.raw.size.get()
    }

    /// Type identifier.
    #[must_use]
    pub fn type_id(&self) -> u32 {
        self.raw.type_id.get()
    }

    /// Version.
    #[must_use]
    pub fn version(&self) -> u32 {
        self.raw.version.get()
    }

    /// Number of generic parameters of a template.
    #[must_use]
    pub fn template_param_count(&self) -> u8 {
        self.raw.template_param_count
    }

    /// Offset of the template inside `TemplateCode` (templates only).
    #[must_use]
    pub fn template_offset(&self) -> u64 {
        self.raw.template_offset.get()
    }

    /// Index of the defining section, or `None` when undefined or absolute.
    #[must_use]
    pub fn section_index(&self) -> Option<u16> {
        let index = self.raw.section_index.get();
        (index != SECTION_UNDEFINED).then_some(index)
    }

    /// Whether the symbol is defined in this module (has a section).
    #[must_use]
    pub fn is_defined(&self) -> bool {
        self.section_index().is_some()
    }

    /// Whether the symbol is a generic template.
    #[must_use]
    pub fn is_template(&self) -> bool {
        self.flags() & crate::raw::symbol_flags::GENERIC_TEMPLATE != 0
    }

    /// The raw table entry.
    #[must_use]
    pub fn raw(&self) -> &'a RawSymbol {
        self.raw
    }
}

/// One relocation entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocation {
    /// Offset of the patched bytes inside the target section.
    pub offset: u64,
    /// Index of the symbol `S`.
    pub symbol_index: u32,
    /// How to compute and store the value.
    pub reloc_type: RelocType,
    /// Index of the section patched.
    pub target_section: u16,
    /// The addend `A`.
    pub addend: i64,
}

impl Relocation {
    fn from_raw(raw: &RawRelocation) -> Self {
        Self {
            offset: raw.offset.get(),
            symbol_index: raw.symbol_index.get(),
            // Validation rejected undefined codes, so the fallback is never taken.
            reloc_type: RelocType::from_code(raw.reloc_type).unwrap_or(RelocType::None),
            target_section: raw.target_section.get(),
            addend: raw.addend.get(),
        }
    }
}
