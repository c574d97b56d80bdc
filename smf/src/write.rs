//! The writer: builds byte-exact SMF files that the reader accepts.
//!
//! Layout of a built file, every offset relative to the SMF base (the end of
//! the optional stub): section bytes in the order added, each at a multiple
//! of its alignment; relocation sections (one per patched section, named
//! `rel.` + the target's name); zero padding to 8; the section table; the
//! symbol table; the string table (the empty name first, then each distinct
//! name once, in order of first use: symbols in table order, then each
//! memory or table's name and signature in section order); the 128-byte
//! header. The same calls always produce the same bytes.
//!
//! With [`ModuleBuilder::compress`], a section is stored as one zstd frame
//! (flag 0x8, its contents' length in `virtual_size`) when it is of a kind
//! worth compressing — by default the template code, the note and the
//! sections a loader never places in memory — and the frame is smaller
//! than its bytes; everything else is stored as it is.

use std::collections::HashMap;

use zerocopy::IntoBytes;
use zerocopy::little_endian::{I64, U16, U32, U64};

use crate::error::{Error, ErrorKind, Result};
use crate::hash::{fnv1a32, fnv1a64};
use crate::kinds::{
    AppType, Arch, Binding, Compression, Platform, RelocType, SectionType, SymbolType,
};
use crate::limits::{HEADER_SIZE, MAX_NAME_LEN, TABLE_ALIGN};
use crate::raw::{
    MAGIC, RawHeader, RawRelocation, RawSection, RawSharedEntry, RawSharedHeader, RawSymbol,
    SECTION_UNDEFINED, SHARED_MAGIC, SHARED_VERSION, VERSION_MAJOR, VERSION_MINOR, header_flags,
    section_flags,
};
use crate::shared::{SHARED_SECTION_NAME, SharedItem};
use crate::validate::{NOTE_SECTION_NAME, NOTE_TERMINATOR, TEMPLATE_CODE_MAGIC};

/// Handle of a section added to a [`ModuleBuilder`]; its index in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SectionId(pub u16);

/// Handle of a symbol added to a [`ModuleBuilder`]; its index in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymbolId(pub u32);

/// How the `note.sdn` section records its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoteSize {
    /// The real size (what writers should do).
    #[default]
    Recorded,
    /// Size 0: readers scan to the `# END_NOTE` line.
    Scanned,
}

/// A symbol to add: everything of a symbol entry except the derived fields
/// (`name_offset`, `name_hash`), with the section given by handle.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SymbolDef {
    /// The name.
    pub name: String,
    /// What it names.
    pub sym_type: SymbolType,
    /// Binding.
    pub binding: Binding,
    /// Visibility byte.
    pub visibility: u8,
    /// Flags (`raw::symbol_flags`).
    pub flags: u8,
    /// Defining section; `None` for undefined (imported) or absolute symbols.
    pub section: Option<SectionId>,
    /// Offset inside the section.
    pub value: u64,
    /// Size in bytes.
    pub size: u64,
    /// Type identifier.
    pub type_id: u32,
    /// Version.
    pub version: u32,
    /// Number of generic parameters (templates).
    pub template_param_count: u8,
    /// Offset of the template inside `TemplateCode` (templates).
    pub template_offset: u64,
}

impl SymbolDef {
    /// A global function defined at `value` in `section`.
    #[must_use]
    pub fn function(name: &str, section: SectionId, value: u64, size: u64) -> Self {
        Self {
            name: name.into(),
            sym_type: SymbolType::Function,
            binding: Binding::Global,
            section: Some(section),
            value,
            size,
            ..Self::default()
        }
    }

    /// An undefined global symbol the module imports.
    #[must_use]
    pub fn import(name: &str, sym_type: SymbolType) -> Self {
        Self {
            name: name.into(),
            sym_type,
            binding: Binding::Global,
            ..Self::default()
        }
    }

    /// A global generic template whose body is at `template_offset` in `TemplateCode`.
    #[must_use]
    pub fn template(name: &str, param_count: u8, template_offset: u64) -> Self {
        Self {
            name: name.into(),
            sym_type: SymbolType::Function,
            binding: Binding::Global,
            flags: crate::raw::symbol_flags::GENERIC_TEMPLATE,
            template_param_count: param_count,
            template_offset,
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone)]
struct SectionSpec {
    name: String,
    type_code: u8,
    flags: u32,
    alignment: u64,
    data: Vec<u8>,
    virtual_size: u64,
    record_size: bool,
    /// Whether to compress it when the builder compresses: `None` for what
    /// its type suggests ([`compressed_by_default`]).
    compress: Option<bool>,
}

#[derive(Debug, Clone, Copy)]
struct RelocSpec {
    target: SectionId,
    offset: u64,
    symbol: SymbolId,
    reloc_type: RelocType,
    addend: i64,
}

/// Builds an SMF module in memory. See the module documentation for the layout.
#[derive(Debug, Clone)]
pub struct ModuleBuilder {
    platform: Platform,
    arch: Arch,
    flags: u32,
    app_type: AppType,
    version_minor: u8,
    entry: Option<(SectionId, u64)>,
    source_hash: u64,
    prefetch_hint: u8,
    prefetch_file_count: u8,
    window: (u16, u16),
    record_module_hash: bool,
    record_smf_size: bool,
    /// The zstd level sections are compressed at, when they are.
    zstd_level: Option<u8>,
    stub: Vec<u8>,
    sections: Vec<SectionSpec>,
    symbols: Vec<SymbolDef>,
    relocations: Vec<RelocSpec>,
    /// The `Shared` section's place in the table (its bytes are encoded by
    /// `build`, once the string table offsets are known) and its items.
    shared_section: Option<SectionId>,
    shared_items: Vec<SharedItem>,
}

impl Default for ModuleBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ModuleBuilder {
    /// An empty x86-64 Linux library module that records its hash and size.
    #[must_use]
    pub fn new() -> Self {
        Self {
            platform: Platform::Linux,
            arch: Arch::X86_64,
            flags: 0,
            app_type: AppType::Cli,
            version_minor: VERSION_MINOR,
            entry: None,
            source_hash: 0,
            prefetch_hint: 0,
            prefetch_file_count: 0,
            window: (0, 0),
            record_module_hash: true,
            record_smf_size: true,
            zstd_level: None,
            stub: Vec::new(),
            sections: Vec::new(),
            symbols: Vec::new(),
            relocations: Vec::new(),
            shared_section: None,
            shared_items: Vec::new(),
        }
    }

    /// Sets the platform.
    pub fn platform(&mut self, platform: Platform) -> &mut Self {
        self.platform = platform;
        self
    }

    /// Sets the architecture.
    pub fn arch(&mut self, arch: Arch) -> &mut Self {
        self.arch = arch;
        self
    }

    /// Sets the header flags other than `HAS_STUB`, which follows the stub.
    pub fn flags(&mut self, flags: u32) -> &mut Self {
        self.flags = flags & !header_flags::HAS_STUB;
        self
    }

    /// Sets the application type.
    pub fn app_type(&mut self, app_type: AppType) -> &mut Self {
        self.app_type = app_type;
        self
    }

    /// Sets the minor version (0 = no templates, 1 = with templates; the default).
    pub fn version_minor(&mut self, minor: u8) -> &mut Self {
        self.version_minor = minor;
        self
    }

    /// Sets the entry point to `offset` inside the code section `section`.
    pub fn entry_point(&mut self, section: SectionId, offset: u64) -> &mut Self {
        self.entry = Some((section, offset));
        self
    }

    /// Sets `source_hash`.
    pub fn source_hash(&mut self, hash: u64) -> &mut Self {
        self.source_hash = hash;
        self
    }

    /// Sets the prefetch hint and file count.
    pub fn prefetch(&mut self, hint: u8, file_count: u8) -> &mut Self {
        self.prefetch_hint = hint;
        self.prefetch_file_count = file_count;
        self
    }

    /// Sets the window size of a GUI module.
    pub fn window(&mut self, width: u16, height: u16) -> &mut Self {
        self.window = (width, height);
        self
    }

    /// Whether to record `module_hash` (default yes; 0 means not recorded).
    pub fn record_module_hash(&mut self, yes: bool) -> &mut Self {
        self.record_module_hash = yes;
        self
    }

    /// Whether to record `smf_size` (default yes; needed to find the module
    /// when the file is later appended to another).
    pub fn record_smf_size(&mut self, yes: bool) -> &mut Self {
        self.record_smf_size = yes;
        self
    }

    /// Compresses the sections worth compressing with `method` at `level`
    /// (`None`: [`ZSTD_DEFAULT_LEVEL`](crate::ZSTD_DEFAULT_LEVEL)), which
    /// the header records; [`Compression::None`] stores every section as
    /// it is (the default). Which sections are worth it: the template code,
    /// the note and the types a loader never places in memory (debug, type
    /// information, version, source maps, types this version does not
    /// define), unless [`ModuleBuilder::compress_section`] says otherwise;
    /// each only when its compressed form is smaller.
    ///
    /// # Errors
    /// [`Compression::Lz4`], which this crate cannot write (or read), and a
    /// level outside [`ZSTD_LEVELS`](crate::ZSTD_LEVELS).
    pub fn compress(&mut self, method: Compression, level: Option<u8>) -> Result<&mut Self> {
        self.zstd_level = match method {
            Compression::None => None,
            Compression::Zstd => {
                let level = level.unwrap_or(crate::ZSTD_DEFAULT_LEVEL);
                if !crate::ZSTD_LEVELS.contains(&level) {
                    return Err(build_error(format!(
                        "zstd level {level} is outside {}..={}",
                        crate::ZSTD_LEVELS.start(),
                        crate::ZSTD_LEVELS.end()
                    )));
                }
                Some(level)
            }
            Compression::Lz4 => {
                return Err(Error::new(ErrorKind::Unsupported {
                    what: "lz4 compression: this writer compresses with zstd only".into(),
                }));
            }
        };
        Ok(self)
    }

    /// Whether to compress section `id` when the builder compresses (see
    /// [`ModuleBuilder::compress`]), whatever its type suggests: `true`
    /// compresses it (when that makes it smaller), `false` stores it as it is.
    ///
    /// # Errors
    /// A section that does not exist, and compressing a `Bss` section (no
    /// bytes) or the `Shared` section, which readers refuse compressed.
    pub fn compress_section(&mut self, id: SectionId, compress: bool) -> Result<&mut Self> {
        let spec = self
            .sections
            .get_mut(usize::from(id.0))
            .ok_or_else(|| build_error("compress_section names a section that does not exist"))?;
        if compress && !crate::validate::may_be_compressed(spec.type_code) {
            return Err(build_error(format!(
                "section '{}' is of a type that is never compressed",
                spec.name
            )));
        }
        spec.compress = Some(compress);
        Ok(self)
    }

    /// Puts `stub` (for example a `#!` line) before the SMF data.
    pub fn stub(&mut self, stub: &[u8]) -> &mut Self {
        self.stub = stub.to_vec();
        self
    }

    /// Adds a section with bytes in the file.
    ///
    /// # Errors
    /// A name longer than 16 bytes or containing NUL, an alignment that is
    /// not a power of two, or more than 65,535 sections.
    pub fn add_section(
        &mut self,
        section_type: SectionType,
        name: &str,
        flags: u32,
        alignment: u64,
        data: &[u8],
    ) -> Result<SectionId> {
        self.add_section_code(section_type.code(), name, flags, alignment, data)
    }

    /// Adds a section by numeric type code, including codes this version does
    /// not define (readers keep and ignore them).
    ///
    /// # Errors
    /// As [`ModuleBuilder::add_section`]; and the `Shared` type, whose
    /// bytes name strings of the table the builder lays out: use
    /// [`ModuleBuilder::add_shared_item`].
    pub fn add_section_code(
        &mut self,
        type_code: u8,
        name: &str,
        flags: u32,
        alignment: u64,
        data: &[u8],
    ) -> Result<SectionId> {
        if type_code == SectionType::Shared.code() {
            return Err(build_error(
                "the Shared section is built from the items given to add_shared_item",
            ));
        }
        self.push_section(SectionSpec {
            name: name.into(),
            type_code,
            flags,
            alignment,
            data: data.to_vec(),
            virtual_size: 0,
            record_size: true,
            compress: None,
        })
    }

    /// Adds a zero-initialised section of `size` bytes in memory and none in the file.
    ///
    /// # Errors
    /// As [`ModuleBuilder::add_section`].
    pub fn add_bss(&mut self, name: &str, size: u64, alignment: u64) -> Result<SectionId> {
        self.push_section(SectionSpec {
            name: name.into(),
            type_code: SectionType::Bss.code(),
            flags: section_flags::READ | section_flags::WRITE,
            alignment,
            data: Vec::new(),
            virtual_size: size,
            record_size: true,
            compress: None,
        })
    }

    /// Adds the `note.sdn` section. The text must end with the `# END_NOTE`
    /// line, which writers always write even when the size is recorded.
    ///
    /// # Errors
    /// Text whose last line is not `# END_NOTE`, or a second note.
    pub fn set_note(&mut self, text: &str, size: NoteSize) -> Result<SectionId> {
        if self.sections.iter().any(|s| s.name == NOTE_SECTION_NAME) {
            return Err(build_error("the module already has a note.sdn section"));
        }
        check_note_text(text)?;
        self.push_section(SectionSpec {
            name: NOTE_SECTION_NAME.into(),
            type_code: SectionType::TemplateMeta.code(),
            flags: section_flags::READ,
            alignment: 1,
            data: text.as_bytes().to_vec(),
            virtual_size: 0,
            record_size: size == NoteSize::Recorded,
            compress: None,
        })
    }

    /// Adds the `TemplateCode` section; `bytes` must start with `GTPL`.
    ///
    /// # Errors
    /// Bytes without the `GTPL` magic, or a second `TemplateCode` section.
    pub fn set_template_code(&mut self, bytes: &[u8]) -> Result<SectionId> {
        if !bytes.starts_with(&TEMPLATE_CODE_MAGIC) {
            return Err(build_error("TemplateCode bytes must start with GTPL"));
        }
        if self
            .sections
            .iter()
            .any(|s| s.type_code == SectionType::TemplateCode.code())
        {
            return Err(build_error("the module already has a TemplateCode section"));
        }
        self.add_section(
            SectionType::TemplateCode,
            "template.code",
            section_flags::READ,
            8,
            bytes,
        )
    }

    /// Adds a memory or table the module defines or imports to its `Shared`
    /// section, which the first call adds to the section table (named
    /// `.shared`). Items keep the order of the calls.
    ///
    /// # Errors
    /// A name or signature longer than the name limit or containing NUL,
    /// or more than 65,535 sections. What the reader would reject (a
    /// duplicate name, a maximum below the initial size, sizes beyond
    /// the limits, a table without a signature) fails in
    /// [`ModuleBuilder::build`].
    pub fn add_shared_item(&mut self, item: SharedItem) -> Result<()> {
        check_name("memory or table name", &item.name)?;
        if let Some(signature) = &item.signature {
            check_name("table signature", signature)?;
        }
        self.shared_section()?;
        self.shared_items.push(item);
        Ok(())
    }

    /// The `Shared` section, added to the table when there is none yet.
    fn shared_section(&mut self) -> Result<SectionId> {
        if let Some(id) = self.shared_section {
            return Ok(id);
        }
        let id = self.push_section(SectionSpec {
            name: SHARED_SECTION_NAME.into(),
            type_code: SectionType::Shared.code(),
            flags: section_flags::READ,
            alignment: 8,
            data: Vec::new(),
            virtual_size: 0,
            record_size: true,
            compress: None,
        })?;
        self.shared_section = Some(id);
        Ok(id)
    }

    fn push_section(&mut self, spec: SectionSpec) -> Result<SectionId> {
        if spec.name.len() > 16 || spec.name.contains('\0') {
            return Err(build_error(format!(
                "section name '{}' must be at most 16 bytes with no NUL",
                spec.name.escape_debug()
            )));
        }
        if spec.flags & section_flags::COMPRESSED != 0 {
            return Err(build_error(format!(
                "section '{}' has the compressed flag, which the writer sets itself (see ModuleBuilder::compress)",
                spec.name
            )));
        }
        if !spec.alignment.is_power_of_two() {
            return Err(build_error(format!(
                "section '{}' alignment {} is not a power of two",
                spec.name, spec.alignment
            )));
        }
        let id = u16::try_from(self.sections.len())
            .ok()
            .filter(|&i| i < SECTION_UNDEFINED)
            .ok_or_else(|| build_error("too many sections"))?;
        self.sections.push(spec);
        Ok(SectionId(id))
    }

    /// A builder holding everything of `module`: its header fields, stub,
    /// every section in table order (bytes, flags, alignment, memory size;
    /// relocation sections as they are, since symbol and section indices are
    /// kept) and every symbol. Building it gives a module that reads back
    /// the same, laid out afresh; a terminator-scanned note is recorded
    /// with its size. A compressed module stays compressed with the method
    /// and level its header records, each section compressed if it was; a
    /// stored one may be compressed with [`ModuleBuilder::compress`].
    ///
    /// # Errors
    /// None for a module the reader accepted; the signature keeps the
    /// builder's checks typed.
    pub fn from_module(module: &crate::Module<'_>) -> Result<Self> {
        let h = module.header();
        let mut b = Self::new();
        b.platform(h.platform)
            .arch(h.arch)
            .flags(h.flags)
            .app_type(h.app_type)
            .version_minor(h.version_minor)
            .source_hash(h.source_hash)
            .prefetch(h.prefetch_hint, h.prefetch_file_count)
            .window(h.window_width, h.window_height)
            .record_module_hash(h.module_hash != 0)
            .record_smf_size(h.smf_size != 0);
        if h.compression == Compression::Zstd {
            // Any recorded level is kept: zstd reads 0 as its default and
            // clamps levels past its maximum.
            b.zstd_level = Some(h.compression_level);
        }
        if h.stub_size != 0 {
            let base = usize::try_from(module.base()).unwrap_or(usize::MAX);
            let stub_start = base.saturating_sub(h.stub_size as usize);
            b.stub(module.file().get(stub_start..base).unwrap_or(&[]));
        }
        for section in module.sections() {
            if section.section_type() == Some(SectionType::Shared) {
                // Its name offsets point into the old string table: the items
                // are encoded afresh against the new one, in the same place.
                b.shared_section()?;
                for item in module.shared_items() {
                    b.add_shared_item(item.clone())?;
                }
                continue;
            }
            let is_note = module.note_section().map(|n| n.index()) == Some(section.index());
            let data = if is_note {
                module.note_sdn().unwrap_or_default().as_bytes()
            } else {
                section.data()
            };
            b.push_section(SectionSpec {
                name: section.name().to_owned(),
                type_code: section.type_code(),
                flags: section.flags() & !section_flags::COMPRESSED,
                alignment: section.alignment(),
                data: data.to_vec(),
                // A compressed section's data is its whole contents, so
                // its virtual size says nothing more; a stored section's
                // (a Bss tail) is kept.
                virtual_size: if section.is_compressed() {
                    0
                } else {
                    section.virtual_size()
                },
                record_size: true,
                // A compressed module keeps its choices, section by section;
                // a stored one leaves them to `compress`, if it is called.
                compress: (h.compression != Compression::None).then(|| section.is_compressed()),
            })?;
            let entry = h.entry_point;
            let contents_end = section.offset() + section.data().len() as u64;
            if entry != 0
                && section.section_type() == Some(SectionType::Code)
                && (section.offset()..contents_end).contains(&entry)
            {
                b.entry_point(SectionId(section.index() as u16), entry - section.offset());
            }
        }
        for s in module.symbols() {
            b.add_symbol(SymbolDef {
                name: s.name().to_owned(),
                sym_type: s.sym_type(),
                binding: s.binding(),
                visibility: s.visibility(),
                flags: s.flags(),
                section: s.section_index().map(SectionId),
                value: s.value(),
                size: s.size(),
                type_id: s.type_id(),
                version: s.version(),
                template_param_count: s.template_param_count(),
                template_offset: s.template_offset(),
            })?;
        }
        Ok(b)
    }

    /// Replaces the text of the `note.sdn` section, keeping its place in the
    /// section table (so every section index stays valid), with its size
    /// recorded; adds the section when the module has none.
    ///
    /// # Errors
    /// Text whose last line is not `# END_NOTE`, or that contains NUL.
    pub fn replace_note(&mut self, text: &str) -> Result<()> {
        match self
            .sections
            .iter()
            .position(|s| s.name == NOTE_SECTION_NAME)
        {
            None => self.set_note(text, NoteSize::Recorded).map(|_| ()),
            Some(i) => {
                check_note_text(text)?;
                let spec = &mut self.sections[i];
                spec.data = text.as_bytes().to_vec();
                // The text is the whole note: never padded to an older
                // note's length.
                spec.virtual_size = 0;
                spec.record_size = true;
                Ok(())
            }
        }
    }

    /// Adds a symbol and returns its handle.
    ///
    /// # Errors
    /// A name longer than the limit or containing NUL.
    pub fn add_symbol(&mut self, symbol: SymbolDef) -> Result<SymbolId> {
        check_name("symbol name", &symbol.name)?;
        let id = u32::try_from(self.symbols.len()).map_err(|_| build_error("too many symbols"))?;
        self.symbols.push(symbol);
        Ok(SymbolId(id))
    }

    /// Adds a relocation patching `target` at `offset` with `symbol`.
    pub fn add_relocation(
        &mut self,
        target: SectionId,
        offset: u64,
        symbol: SymbolId,
        reloc_type: RelocType,
        addend: i64,
    ) -> &mut Self {
        self.relocations.push(RelocSpec {
            target,
            offset,
            symbol,
            reloc_type,
            addend,
        });
        self
    }

    /// Lays out and returns the file's bytes, after checking that the reader
    /// accepts them.
    ///
    /// # Errors
    /// A symbol, relocation or entry point that does not fit its section, or
    /// any other inconsistency the reader would reject.
    pub fn build(&self) -> Result<Vec<u8>> {
        let mut strings = StringTable::default();
        let (raw_symbols, exported) = self.raw_symbols(&mut strings)?;
        let mut sections = self.sections.clone();
        if let Some(id) = self.shared_section {
            sections[usize::from(id.0)].data = self.shared_section_bytes(&mut strings)?;
        }
        sections.extend(self.relocation_sections()?);
        if let Some(level) = self.zstd_level {
            for s in &mut sections {
                compress_if_smaller(s, level)?;
            }
        }
        let section_count =
            u32::try_from(sections.len()).map_err(|_| build_error("too many sections"))?;

        let mut out = self.stub.clone();
        let base = out.len();
        let mut entries = Vec::with_capacity(sections.len());
        for s in &sections {
            let is_bss = s.type_code == SectionType::Bss.code();
            let offset = if is_bss {
                0
            } else {
                pad_to(&mut out, base, s.alignment);
                let offset = (out.len() - base) as u64;
                out.extend_from_slice(&s.data);
                offset
            };
            let mut name = [0u8; 16];
            name[..s.name.len()].copy_from_slice(s.name.as_bytes());
            let size = if s.record_size {
                s.data.len() as u64
            } else {
                0
            };
            entries.push(RawSection {
                section_type: s.type_code,
                flags: U32::new(s.flags),
                offset: U64::new(offset),
                size: U64::new(size),
                virtual_size: U64::new(s.virtual_size),
                alignment: U64::new(s.alignment),
                name,
                ..RawSection::default()
            });
        }
        pad_to(&mut out, base, TABLE_ALIGN);
        let section_table_offset = (out.len() - base) as u64;
        out.extend_from_slice(entries.as_bytes());

        let symbol_table_offset = (out.len() - base) as u64;
        out.extend_from_slice(raw_symbols.as_bytes());
        // A module that names nothing has no string table at all.
        if !self.symbols.is_empty() || !self.shared_items.is_empty() {
            out.extend_from_slice(&strings.bytes);
        }

        let entry_point = match self.entry {
            None => 0,
            Some((section, offset)) => entries
                .get(usize::from(section.0))
                .map(|e| e.offset.get() + offset)
                .ok_or_else(|| build_error("entry point names a section that does not exist"))?,
        };
        let stub_size =
            u32::try_from(self.stub.len()).map_err(|_| build_error("stub is larger than 4 GiB"))?;
        let smf_size = (out.len() - base + HEADER_SIZE) as u64;
        let header = RawHeader {
            magic: MAGIC,
            version_major: VERSION_MAJOR,
            version_minor: self.version_minor,
            platform: self.platform.code(),
            arch: self.arch.code(),
            flags: U32::new(
                self.flags
                    | if self.stub.is_empty() {
                        0
                    } else {
                        header_flags::HAS_STUB
                    },
            ),
            section_count: U32::new(section_count),
            section_table_offset: U64::new(section_table_offset),
            symbol_table_offset: U64::new(symbol_table_offset),
            symbol_count: U32::new(raw_symbols.len() as u32),
            exported_count: U32::new(exported),
            entry_point: U64::new(entry_point),
            stub_size: U32::new(stub_size),
            smf_data_offset: U32::new(stub_size),
            module_hash: U64::new(if self.record_module_hash {
                fnv1a64(&out[base..])
            } else {
                0
            }),
            source_hash: U64::new(self.source_hash),
            app_type: self.app_type.code(),
            prefetch_hint: self.prefetch_hint,
            window_width: U16::new(self.window.0),
            window_height: U16::new(self.window.1),
            prefetch_file_count: self.prefetch_file_count,
            smf_size: U64::new(if self.record_smf_size { smf_size } else { 0 }),
            compression: if self.zstd_level.is_some() {
                Compression::Zstd.code()
            } else {
                Compression::None.code()
            },
            compression_level: self.zstd_level.unwrap_or(0),
            ..RawHeader::default()
        };
        out.extend_from_slice(header.as_bytes());

        crate::Module::parse(&out)
            .map_err(|e| build_error(format!("the result would not validate: {e}")))?;
        Ok(out)
    }

    /// The symbol table entries, with their names added to `strings`, and
    /// the number of global symbols.
    fn raw_symbols(&self, strings: &mut StringTable) -> Result<(Vec<RawSymbol>, u32)> {
        let mut exported = 0u32;
        let mut raw_symbols = Vec::with_capacity(self.symbols.len());
        for sym in &self.symbols {
            if sym.binding == Binding::Global {
                exported += 1;
            }
            raw_symbols.push(RawSymbol {
                name_offset: U32::new(strings.add(&sym.name)?),
                name_hash: U32::new(fnv1a32(sym.name.as_bytes())),
                sym_type: sym.sym_type.code(),
                binding: sym.binding.code(),
                visibility: sym.visibility,
                flags: sym.flags,
                value: U64::new(sym.value),
                size: U64::new(sym.size),
                type_id: U32::new(sym.type_id),
                version: U32::new(sym.version),
                template_param_count: sym.template_param_count,
                template_offset: U64::new(sym.template_offset),
                section_index: U16::new(sym.section.map_or(SECTION_UNDEFINED, |s| s.0)),
                ..RawSymbol::default()
            });
        }
        Ok((raw_symbols, exported))
    }

    /// The bytes of the `Shared` section: the `SHRD` header and one entry
    /// per item, with names and signatures added to `strings`.
    fn shared_section_bytes(&self, strings: &mut StringTable) -> Result<Vec<u8>> {
        let count = u32::try_from(self.shared_items.len())
            .map_err(|_| build_error("too many memories and tables"))?;
        let header = RawSharedHeader {
            magic: SHARED_MAGIC,
            version: U16::new(SHARED_VERSION),
            count: U32::new(count),
            ..RawSharedHeader::default()
        };
        let mut bytes = header.as_bytes().to_vec();
        for item in &self.shared_items {
            let name_offset = strings.add(&item.name)?;
            let signature_offset = match &item.signature {
                Some(signature) => strings.add(signature)?,
                None => 0,
            };
            let entry = RawSharedEntry {
                kind: item.kind.code(),
                linkage: item.linkage.code(),
                has_maximum: u8::from(item.maximum.is_some()),
                name_offset: U32::new(name_offset),
                initial: U64::new(item.initial),
                maximum: U64::new(item.maximum.unwrap_or(0)),
                signature_offset: U32::new(signature_offset),
                ..RawSharedEntry::default()
            };
            bytes.extend_from_slice(entry.as_bytes());
        }
        Ok(bytes)
    }

    /// One `Reloc` section per patched section, in order of the targets.
    fn relocation_sections(&self) -> Result<Vec<SectionSpec>> {
        let mut by_target: Vec<(SectionId, Vec<RawRelocation>)> = Vec::new();
        for r in &self.relocations {
            if usize::from(r.target.0) >= self.sections.len() {
                return Err(build_error(
                    "relocation targets a section that does not exist",
                ));
            }
            let raw = RawRelocation {
                offset: U64::new(r.offset),
                symbol_index: U32::new(r.symbol.0),
                reloc_type: r.reloc_type.code(),
                reserved: 0,
                target_section: U16::new(r.target.0),
                addend: I64::new(r.addend),
            };
            match by_target.iter_mut().find(|(t, _)| *t == r.target) {
                Some((_, list)) => list.push(raw),
                None => by_target.push((r.target, vec![raw])),
            }
        }
        by_target.sort_by_key(|(t, _)| t.0);
        Ok(by_target
            .into_iter()
            .map(|(target, list)| {
                let target_name = &self.sections[usize::from(target.0)].name;
                let mut name = format!("rel.{target_name}");
                while name.len() > 16 {
                    name.pop();
                }
                SectionSpec {
                    name,
                    type_code: SectionType::Reloc.code(),
                    flags: section_flags::READ,
                    alignment: 8,
                    data: list.as_bytes().to_vec(),
                    virtual_size: 0,
                    record_size: true,
                    compress: Some(false),
                }
            })
            .collect())
    }
}

/// Whether the writer compresses a section of type `type_code` unless told
/// otherwise: the template code and the note, which a loader reads as bytes
/// and keeps; and the types a loader never places in memory. Not `Code`,
/// `Data` and `RoData`: the loader copies them into place at load, so
/// compressed they would cost a decompressed copy held for as long as the
/// module is, beside the loaded one, where stored they cost clean pages of
/// the file that the kernel can drop. (`Bss`, `Reloc` and `Shared` are
/// never compressed at all.)
fn compressed_by_default(type_code: u8) -> bool {
    !matches!(
        SectionType::from_code(type_code),
        Some(SectionType::Code | SectionType::Data | SectionType::RoData)
    )
}

/// Replaces `s`'s bytes by one zstd frame at `level` when `s` is to be
/// compressed and the frame is smaller than its bytes. The frame holds the
/// section's contents in memory: its bytes, then zeros up to its
/// `virtual_size`, whose value becomes their exact length.
fn compress_if_smaller(s: &mut SectionSpec, level: u8) -> Result<()> {
    let wanted = s
        .compress
        .unwrap_or_else(|| compressed_by_default(s.type_code));
    // Contents beyond what a reader decompresses are not made in memory
    // here: the section is stored, and a reader's limit reports it.
    if !wanted
        || !crate::validate::may_be_compressed(s.type_code)
        || s.data.is_empty()
        || s.virtual_size > crate::limits::MAX_DECOMPRESSED_SIZE
    {
        return Ok(());
    }
    let mut contents = std::borrow::Cow::Borrowed(s.data.as_slice());
    let zeros = usize::try_from(s.virtual_size)
        .unwrap_or(usize::MAX)
        .saturating_sub(s.data.len());
    if zeros > 0 {
        contents.to_mut().resize(s.data.len() + zeros, 0);
    }
    let stream = crate::compression::compress(&contents, level)
        .map_err(|e| build_error(format!("section '{}' cannot be compressed: {e}", s.name)))?;
    if stream.len() >= s.data.len() {
        return Ok(());
    }
    s.virtual_size = contents.len() as u64;
    s.data = stream;
    s.flags |= section_flags::COMPRESSED;
    s.record_size = true;
    Ok(())
}

/// A string the string table can hold: NUL-terminated, so without NUL,
/// and within the name limit the reader enforces.
fn check_name(what: &str, name: &str) -> Result<()> {
    if name.len() > MAX_NAME_LEN || name.contains('\0') {
        return Err(build_error(format!(
            "{what} of {} bytes is too long or contains NUL",
            name.len()
        )));
    }
    Ok(())
}

/// Writers end a note with the `# END_NOTE` line and put no NUL in it.
fn check_note_text(text: &str) -> Result<()> {
    let last = text
        .trim_end_matches(['\n', '\r'])
        .rsplit('\n')
        .next()
        .unwrap_or("");
    if last.trim_end_matches('\r') != NOTE_TERMINATOR || text.contains('\0') {
        return Err(build_error(
            "note.sdn text must end with the line '# END_NOTE' and contain no NUL",
        ));
    }
    Ok(())
}

/// The bytes of `file` (an SMF module, possibly behind a stub or appended
/// to other bytes) with its `note.sdn` text replaced by `note`: the module
/// is laid out afresh, every other record kept, and whatever preceded it
/// in the file kept as it was.
///
/// # Errors
/// A file the reader rejects, or note text the writer refuses.
pub fn rewrite_note(file: &[u8], note: &str) -> Result<Vec<u8>> {
    let module = crate::Module::parse(file)?;
    let mut builder = ModuleBuilder::from_module(&module)?;
    builder.replace_note(note)?;
    let base = usize::try_from(module.base()).unwrap_or(usize::MAX);
    let prefix_end = base.saturating_sub(module.header().stub_size as usize);
    let mut out = file.get(..prefix_end).unwrap_or(&[]).to_vec();
    out.extend_from_slice(&builder.build()?);
    Ok(out)
}

fn pad_to(out: &mut Vec<u8>, base: usize, align: u64) {
    let align = usize::try_from(align).unwrap_or(1).max(1);
    let rem = (out.len() - base) % align;
    if rem != 0 {
        out.resize(out.len() + (align - rem), 0);
    }
}

#[cold]
fn build_error(reason: impl Into<String>) -> Error {
    Error::new(ErrorKind::Build {
        reason: reason.into(),
    })
}

/// The string table under construction: the empty name at 0, each distinct
/// name stored once.
struct StringTable {
    bytes: Vec<u8>,
    offsets: HashMap<String, u32>,
}

impl Default for StringTable {
    fn default() -> Self {
        Self {
            bytes: vec![0],
            offsets: HashMap::from([(String::new(), 0)]),
        }
    }
}

impl StringTable {
    fn add(&mut self, name: &str) -> Result<u32> {
        if let Some(&offset) = self.offsets.get(name) {
            return Ok(offset);
        }
        let offset = u32::try_from(self.bytes.len())
            .map_err(|_| build_error("string table exceeds 4 GiB"))?;
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.offsets.insert(name.to_owned(), offset);
        Ok(offset)
    }
}
