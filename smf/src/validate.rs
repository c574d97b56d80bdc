//! Every validation rule of SMF v1.1 (BRIEF §3), applied in a fixed order
//! before a [`crate::Module`] exists.
//!
//! The order: the header (magic first, then version, reserved bytes and
//! enumerated fields), the SMF base, the section and symbol tables and the
//! string table (bounds, alignment, overlap), each section, each symbol,
//! the compressed sections' contents (`validate/compressed.rs`), each
//! relocation, the `Shared` section (`validate/shared.rs`), the `note.sdn`
//! and `TemplateCode` sections, the entry point and last the module hash,
//! so a damaged file reports the most
//! specific fault rather than only a hash mismatch. Offsets inside the module
//! are relative to the SMF base; errors report absolute file offsets.

use std::ops::Range;

use zerocopy::FromBytes;

use crate::error::{Error, ErrorKind, Result};
use crate::hash::{fnv1a32, fnv1a64};
use crate::kinds::{
    AppType, Arch, Binding, Compression, Platform, RelocType, SectionType, SymbolType,
};
use crate::limits::{
    HEADER_SIZE, MAX_NAME_LEN, MAX_NOTE_SIZE, MAX_RELOCATIONS, MAX_SECTION_ALIGN, MAX_SECTIONS,
    MAX_SYMBOLS, MAX_TEMPLATE_CODE_SIZE, MAX_VIRTUAL_SIZE, RELOCATION_ENTRY_SIZE,
    SECTION_ENTRY_SIZE, SYMBOL_ENTRY_SIZE, TABLE_ALIGN,
};
use crate::raw::{
    MAGIC, RawHeader, RawRelocation, RawSection, RawSymbol, SECTION_UNDEFINED, VERSION_MAJOR,
    VERSION_MINOR, header_flags, section_flags, symbol_flags,
};
use crate::read::{Header, NoteText, Parts};

mod compressed;
mod shared;

pub(crate) use compressed::{
    Decompressed, contents, contents_len, is_compressed, may_be_compressed, stored,
};
pub(crate) use shared::SharedSection;

/// The name of the section holding the instantiation metadata.
pub const NOTE_SECTION_NAME: &str = "note.sdn";
/// The line that ends a `note.sdn` text.
pub const NOTE_TERMINATOR: &str = "# END_NOTE";
/// Magic bytes at the start of a `TemplateCode` section.
pub const TEMPLATE_CODE_MAGIC: [u8; 4] = *b"GTPL";
/// Size of the `TemplateCode` section header: magic, u16 version, u32 count.
pub const TEMPLATE_CODE_HEADER_SIZE: u64 = 10;

/// Turns base-relative offsets into absolute file offsets for errors.
#[derive(Clone, Copy)]
struct At {
    base: u64,
}

impl At {
    #[cold]
    fn err(self, kind: ErrorKind, rel: u64) -> Error {
        Error::at(kind, self.base.saturating_add(rel))
    }
}

fn usize_of(v: u64) -> usize {
    // Every value passed here was already bounded by the input's length.
    usize::try_from(v).unwrap_or(usize::MAX)
}

pub(crate) fn validate(file: &[u8]) -> Result<Parts<'_>> {
    let file_len = file.len() as u64;
    let header_at = file.len().checked_sub(HEADER_SIZE).ok_or_else(|| {
        Error::at(
            ErrorKind::Truncated {
                what: "the 128-byte header",
                needed: HEADER_SIZE as u64,
                available: file_len,
            },
            0,
        )
    })?;
    let raw = file
        .get(header_at..)
        .and_then(|b| RawHeader::ref_from_bytes(b).ok())
        .ok_or_else(|| Error::at(truncated_header(file_len), 0))?;
    let header = check_header(raw, header_at as u64)?;
    let base = find_base(&header, file_len, header_at as u64)?;
    let at = At { base };
    let data = file.get(usize_of(base)..header_at).unwrap_or(&[]);
    let data_len = data.len() as u64;

    let tables = check_tables(&header, data_len, at)?;
    let sections = view_table::<RawSection>(data, &tables.sections);
    let symbols = view_table::<RawSymbol>(data, &tables.symbols);
    let strings = data.get(usize_of(tables.strings.start)..).unwrap_or(&[]);

    let section_names = check_sections(sections, header.compression, &tables, at)?;
    let decompressed =
        compressed::decompress_sections(sections, &section_names, data, &tables, at)?;
    let layout = SectionLayout::new(sections, &tables);
    let template_code = find_template_code(sections, data, &decompressed, &tables, at)?;
    let symbol_names = check_symbols(
        &header,
        sections,
        symbols,
        strings,
        template_code,
        &tables,
        at,
    )?;
    check_relocations(sections, symbols.len() as u64, data, at)?;
    let shared = shared::find_shared(sections, data, strings, &tables, at)?;
    let note = find_note(sections, &section_names, data, &decompressed, &layout, at)?;
    check_entry_point(&header, sections, at)?;

    if header.module_hash != 0 {
        let computed = fnv1a64(data);
        if computed != header.module_hash {
            return Err(Error::at(
                ErrorKind::ModuleHashMismatch {
                    stored: header.module_hash,
                    computed,
                },
                header_at as u64 + 64,
            ));
        }
    }

    Ok(Parts {
        file,
        base: usize_of(base),
        data,
        header,
        sections,
        section_names,
        symbols,
        symbol_names,
        strings,
        strings_offset: tables.strings.start,
        note,
        template_code: template_code.map(|(i, _)| i),
        shared,
        decompressed,
    })
}

#[cold]
fn truncated_header(file_len: u64) -> ErrorKind {
    ErrorKind::Truncated {
        what: "the 128-byte header",
        needed: HEADER_SIZE as u64,
        available: file_len,
    }
}

fn view_table<'a, T: FromBytes + zerocopy::Immutable + zerocopy::KnownLayout>(
    data: &'a [u8],
    range: &Range<u64>,
) -> &'a [T] {
    // The range was bounds-checked and sized as a whole number of entries.
    data.get(usize_of(range.start)..usize_of(range.end))
        .and_then(|b| <[T]>::ref_from_bytes(b).ok())
        .unwrap_or(&[])
}

fn check_header(raw: &RawHeader, at: u64) -> Result<Header> {
    if raw.magic != MAGIC {
        return Err(Error::at(ErrorKind::BadMagic { found: raw.magic }, at));
    }
    if raw.version_major != VERSION_MAJOR || raw.version_minor > VERSION_MINOR {
        return Err(Error::at(
            ErrorKind::UnsupportedVersion {
                major: raw.version_major,
                minor: raw.version_minor,
            },
            at + 4,
        ));
    }
    let reserved: [(&[u8], &str, u64); 4] = [
        (&raw.reserved0, "header bytes 14..16", 14),
        (&raw.reserved1, "header bytes 20..24", 20),
        (std::slice::from_ref(&raw.reserved2), "header byte 87", 87),
        (&raw.reserved3, "header bytes 96..128", 96),
    ];
    for (bytes, field, off) in reserved {
        if bytes.iter().any(|&b| b != 0) {
            return Err(Error::at(
                ErrorKind::NonZeroReserved {
                    field: field.to_owned(),
                },
                at + off,
            ));
        }
    }
    let invalid = |field: &str, value: u64, off: u64| {
        Error::at(
            ErrorKind::InvalidValue {
                field: format!("header.{field}"),
                value,
            },
            at + off,
        )
    };
    let platform = Platform::from_code(raw.platform)
        .ok_or_else(|| invalid("platform", raw.platform.into(), 6))?;
    let arch = Arch::from_code(raw.arch).ok_or_else(|| invalid("arch", raw.arch.into(), 7))?;
    let flags = raw.flags.get();
    if flags & !header_flags::KNOWN != 0 {
        return Err(invalid("flags", flags.into(), 8));
    }
    let compression = Compression::from_code(raw.compression)
        .ok_or_else(|| invalid("compression", raw.compression.into(), 12))?;
    if compression == Compression::Lz4 {
        return Err(Error::at(
            ErrorKind::Unsupported {
                what: "lz4-compressed sections (compression 2): this reader decompresses zstd (compression 1) only".into(),
            },
            at + 12,
        ));
    }
    let app_type = AppType::from_code(raw.app_type)
        .ok_or_else(|| invalid("app_type", raw.app_type.into(), 80))?;
    let stub_size = raw.stub_size.get();
    let smf_data_offset = raw.smf_data_offset.get();
    let has_stub = flags & header_flags::HAS_STUB != 0;
    if has_stub != (stub_size != 0) {
        return Err(invalid(
            "stub_size (HAS_STUB flag disagrees)",
            stub_size.into(),
            56,
        ));
    }
    if has_stub && stub_size != smf_data_offset {
        return Err(invalid(
            "smf_data_offset (a stub module's data starts after the stub)",
            smf_data_offset.into(),
            60,
        ));
    }
    Ok(Header {
        magic: raw.magic,
        version_major: raw.version_major,
        version_minor: raw.version_minor,
        platform,
        arch,
        flags,
        compression,
        compression_level: raw.compression_level,
        section_count: raw.section_count.get(),
        section_table_offset: raw.section_table_offset.get(),
        symbol_table_offset: raw.symbol_table_offset.get(),
        symbol_count: raw.symbol_count.get(),
        exported_count: raw.exported_count.get(),
        entry_point: raw.entry_point.get(),
        stub_size,
        smf_data_offset,
        module_hash: raw.module_hash.get(),
        source_hash: raw.source_hash.get(),
        app_type,
        prefetch_hint: raw.prefetch_hint,
        window_width: raw.window_width.get(),
        window_height: raw.window_height.get(),
        prefetch_file_count: raw.prefetch_file_count,
        smf_size: raw.smf_size.get(),
    })
}

/// base = file length − `smf_size` when `smf_size` ≠ 0, else `smf_data_offset`.
fn find_base(header: &Header, file_len: u64, header_at: u64) -> Result<u64> {
    if header.smf_size != 0 {
        if header.smf_size < HEADER_SIZE as u64 || header.smf_size > file_len {
            return Err(Error::at(
                ErrorKind::BadBase {
                    field: "smf_size",
                    value: header.smf_size,
                    min: HEADER_SIZE as u64,
                    max: file_len,
                    file_len,
                },
                header_at + 88,
            ));
        }
        Ok(file_len - header.smf_size)
    } else {
        let base = u64::from(header.smf_data_offset);
        if base > header_at {
            return Err(Error::at(
                ErrorKind::BadBase {
                    field: "smf_data_offset",
                    value: base,
                    min: 0,
                    max: header_at,
                    file_len,
                },
                header_at + 60,
            ));
        }
        Ok(base)
    }
}

/// Base-relative ranges of the three tables.
pub(crate) struct Tables {
    sections: Range<u64>,
    symbols: Range<u64>,
    strings: Range<u64>,
}

fn check_tables(header: &Header, data_len: u64, at: At) -> Result<Tables> {
    let sections = table_range(
        "section table",
        header.section_table_offset,
        header.section_count,
        MAX_SECTIONS,
        SECTION_ENTRY_SIZE as u64,
        data_len,
        at,
    )?;
    let symbols = table_range(
        "symbol table",
        header.symbol_table_offset,
        header.symbol_count,
        MAX_SYMBOLS,
        SYMBOL_ENTRY_SIZE as u64,
        data_len,
        at,
    )?;
    let strings = symbols.end..data_len;
    let overlaps = |a: &Range<u64>, b: &Range<u64>| a.start < b.end && b.start < a.end;
    if !sections.is_empty() {
        for (other, name) in [
            (&symbols, "the symbol table"),
            (&strings, "the string table"),
        ] {
            if overlaps(&sections, other) {
                return Err(at.err(
                    ErrorKind::Overlap {
                        first: "the section table".into(),
                        second: name.into(),
                    },
                    sections.start,
                ));
            }
        }
    }
    Ok(Tables {
        sections,
        symbols,
        strings,
    })
}

fn table_range(
    what: &'static str,
    offset: u64,
    count: u32,
    max: u32,
    entry_size: u64,
    data_len: u64,
    at: At,
) -> Result<Range<u64>> {
    if count > max {
        return Err(at.err(
            ErrorKind::LimitExceeded {
                what: format!("{what} entry count"),
                value: count.into(),
                limit: max.into(),
            },
            data_len + if what == "section table" { 16 } else { 40 },
        ));
    }
    if !offset.is_multiple_of(TABLE_ALIGN) {
        return Err(at.err(
            ErrorKind::Misaligned {
                what: what.into(),
                offset,
                align: TABLE_ALIGN,
            },
            data_len + if what == "section table" { 24 } else { 32 },
        ));
    }
    let size = u64::from(count).checked_mul(entry_size).ok_or_else(|| {
        at.err(
            ErrorKind::CountOverflow {
                what,
                count: count.into(),
                entry_size,
            },
            data_len,
        )
    })?;
    within(
        || what.into(),
        offset,
        size,
        data_len,
        "the SMF data before the header",
        at,
    )
}

/// Checks `offset + size <= limit` without overflow and returns the range.
fn within(
    what: impl FnOnce() -> String,
    offset: u64,
    size: u64,
    limit: u64,
    region: &'static str,
    at: At,
) -> Result<Range<u64>> {
    match offset.checked_add(size) {
        Some(end) if end <= limit => Ok(offset..end),
        _ => Err(at.err(
            ErrorKind::OutOfBounds {
                what: what(),
                offset,
                size,
                within: region,
                limit,
            },
            offset.min(limit),
        )),
    }
}

fn entry_at(table: &Range<u64>, index: usize, entry_size: usize) -> u64 {
    table.start + (index * entry_size) as u64
}

fn check_sections<'a>(
    sections: &'a [RawSection],
    compression: Compression,
    tables: &Tables,
    at: At,
) -> Result<Vec<&'a str>> {
    let mut names = Vec::with_capacity(sections.len());
    let mut extents = Vec::with_capacity(sections.len());
    for (i, s) in sections.iter().enumerate() {
        let rec = entry_at(&tables.sections, i, SECTION_ENTRY_SIZE);
        let index = i as u32;
        if s.reserved0 != [0; 3] || s.reserved1 != [0; 8] {
            let off = if s.reserved0 != [0; 3] { 1 } else { 56 };
            return Err(at.err(
                ErrorKind::NonZeroReserved {
                    field: format!("section {index}"),
                },
                rec + off,
            ));
        }
        let flags = s.flags.get();
        if flags & !section_flags::KNOWN != 0 {
            return Err(at.err(
                ErrorKind::InvalidValue {
                    field: format!("section {index} flags"),
                    value: flags.into(),
                },
                rec + 4,
            ));
        }
        let alignment = s.alignment.get();
        if !alignment.is_power_of_two() {
            return Err(at.err(
                ErrorKind::BadAlignment {
                    section: index,
                    alignment,
                },
                rec + 32,
            ));
        }
        if alignment > MAX_SECTION_ALIGN {
            return Err(at.err(
                ErrorKind::LimitExceeded {
                    what: format!("section {index} alignment"),
                    value: alignment,
                    limit: MAX_SECTION_ALIGN,
                },
                rec + 32,
            ));
        }
        names.push(section_name(&s.name, index, rec, at)?);

        let (offset, size, vsize) = (s.offset.get(), s.size.get(), s.virtual_size.get());
        if vsize > MAX_VIRTUAL_SIZE {
            return Err(at.err(
                ErrorKind::LimitExceeded {
                    what: format!("section {index} virtual_size"),
                    value: vsize,
                    limit: MAX_VIRTUAL_SIZE,
                },
                rec + 24,
            ));
        }
        if vsize != 0 && vsize < size {
            return Err(at.err(
                ErrorKind::InvalidValue {
                    field: format!("section {index} virtual_size (smaller than size {size})"),
                    value: vsize,
                },
                rec + 24,
            ));
        }
        if is_compressed(s) {
            compressed::check_entry(s, index, names[i], compression, rec, at)?;
        }
        if SectionType::from_code(s.section_type) == Some(SectionType::Bss) {
            // Bss has no bytes in the file: its memory size is virtual_size.
            if size != 0 {
                return Err(at.err(
                    ErrorKind::InvalidValue {
                        field: format!("section {index} size (a bss section has no file bytes)"),
                        value: size,
                    },
                    rec + 16,
                ));
            }
            continue;
        }
        let range = within(
            || format!("section {index} '{}' data", names[i]),
            offset,
            size,
            tables.sections.start,
            "the section data, which ends at the section table",
            at,
        )?;
        if offset % alignment != 0 {
            return Err(at.err(
                ErrorKind::Misaligned {
                    what: format!("section {index} '{}' data", names[i]),
                    offset,
                    align: alignment,
                },
                rec + 8,
            ));
        }
        if !range.is_empty() {
            extents.push((range, index));
        }
    }
    extents.sort_unstable_by_key(|(r, _)| (r.start, r.end));
    for pair in extents.windows(2) {
        let [(a, ai), (b, bi)] = pair else { continue };
        if b.start < a.end {
            return Err(at.err(
                ErrorKind::Overlap {
                    first: format!("section {bi} data"),
                    second: format!("section {ai} data"),
                },
                b.start,
            ));
        }
    }
    Ok(names)
}

fn section_name(raw: &[u8; 16], index: u32, rec: u64, at: At) -> Result<&str> {
    let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let (name, padding) = raw.split_at(len);
    if padding.iter().any(|&b| b != 0) {
        return Err(at.err(
            ErrorKind::NonZeroReserved {
                field: format!("section {index} name padding"),
            },
            rec + 40 + len as u64,
        ));
    }
    std::str::from_utf8(name).map_err(|_| {
        at.err(
            ErrorKind::InvalidUtf8 {
                what: format!("section {index} name"),
            },
            rec + 40,
        )
    })
}

/// Start offsets of everything that may follow a section's bytes, sorted,
/// to bound a terminator-scanned `note.sdn`.
struct SectionLayout {
    starts: Vec<u64>,
}

impl SectionLayout {
    fn new(sections: &[RawSection], tables: &Tables) -> Self {
        let mut starts: Vec<u64> = sections
            .iter()
            .filter(|s| SectionType::from_code(s.section_type) != Some(SectionType::Bss))
            .map(|s| s.offset.get())
            .collect();
        starts.push(tables.sections.start);
        starts.sort_unstable();
        Self { starts }
    }

    /// The first start strictly after `offset`: where a section starting at
    /// `offset` must end at the latest.
    fn bound_after(&self, offset: u64) -> u64 {
        let i = self.starts.partition_point(|&s| s <= offset);
        self.starts.get(i).copied().unwrap_or(offset)
    }
}

type TemplateCode = (u32, u64);

/// The section of type `section_type`, with its index and the offset of its
/// table entry, for a section a module has at most one of (called `name`
/// in the error about a second one).
fn only_section_of_type<'a>(
    sections: &'a [RawSection],
    section_type: SectionType,
    name: &str,
    tables: &Tables,
    at: At,
) -> Result<Option<(u32, &'a RawSection, u64)>> {
    let mut found = None;
    for (i, s) in sections.iter().enumerate() {
        if SectionType::from_code(s.section_type) != Some(section_type) {
            continue;
        }
        let rec = entry_at(&tables.sections, i, SECTION_ENTRY_SIZE);
        if found.is_some() {
            return Err(at.err(ErrorKind::DuplicateSection { name: name.into() }, rec));
        }
        // Section counts are bounded by `limits::MAX_SECTIONS`.
        found = Some((i as u32, s, rec));
    }
    Ok(found)
}

/// The `TemplateCode` section's index and the length of its contents
/// (decompressed, when it is compressed), after checking its size and magic.
fn find_template_code(
    sections: &[RawSection],
    data: &[u8],
    decompressed: &[Option<Box<[u8]>>],
    tables: &Tables,
    at: At,
) -> Result<Option<TemplateCode>> {
    let Some((index, s, rec)) = only_section_of_type(
        sections,
        SectionType::TemplateCode,
        "TemplateCode",
        tables,
        at,
    )?
    else {
        return Ok(None);
    };
    let (offset, size) = (s.offset.get(), contents_len(s));
    if size > MAX_TEMPLATE_CODE_SIZE {
        return Err(at.err(
            ErrorKind::LimitExceeded {
                what: "TemplateCode size".into(),
                value: size,
                limit: MAX_TEMPLATE_CODE_SIZE,
            },
            // The field that records the size: virtual_size when compressed.
            rec + if is_compressed(s) { 24 } else { 16 },
        ));
    }
    if size < TEMPLATE_CODE_HEADER_SIZE {
        return Err(at.err(
            ErrorKind::BadTemplateCode {
                problem: format!("section is {size} bytes, shorter than its 10-byte header"),
            },
            offset,
        ));
    }
    let magic = contents(sections, usize_of(index.into()), data, decompressed).get(..4);
    if magic != Some(&TEMPLATE_CODE_MAGIC[..]) {
        return Err(at.err(
            ErrorKind::BadTemplateCode {
                problem: format!("magic is {:02x?}, expected \"GTPL\"", magic.unwrap_or(&[])),
            },
            offset,
        ));
    }
    Ok(Some((index, size)))
}

fn check_symbols<'a>(
    header: &Header,
    sections: &[RawSection],
    symbols: &[RawSymbol],
    strings: &'a [u8],
    template_code: Option<TemplateCode>,
    tables: &Tables,
    at: At,
) -> Result<Vec<&'a str>> {
    if !symbols.is_empty() {
        check_string_table_start(strings, tables, at)?;
    }
    let mut names = Vec::with_capacity(symbols.len());
    let mut globals = 0u32;
    for (i, s) in symbols.iter().enumerate() {
        let index = i as u32;
        let rec = entry_at(&tables.symbols, i, SYMBOL_ENTRY_SIZE);
        if s.reserved0 != [0; 4] || s.reserved1 != [0; 7] || s.reserved2 != [0; 14] {
            return Err(at.err(
                ErrorKind::NonZeroReserved {
                    field: format!("symbol {index}"),
                },
                rec + 12,
            ));
        }
        let name = table_string(
            strings,
            s.name_offset.get(),
            format_args!("symbol {index} name"),
            rec,
            tables,
            at,
        )?;
        let computed = fnv1a32(name.as_bytes());
        if computed != s.name_hash.get() {
            return Err(at.err(
                ErrorKind::NameHashMismatch {
                    index,
                    name: name.into(),
                    stored: s.name_hash.get(),
                    computed,
                },
                rec + 4,
            ));
        }
        let invalid = |field: &str, value: u64, off: u64| {
            at.err(
                ErrorKind::InvalidValue {
                    field: format!("symbol {index} {field}"),
                    value,
                },
                rec + off,
            )
        };
        if SymbolType::from_code(s.sym_type).is_none() {
            return Err(invalid("sym_type", s.sym_type.into(), 8));
        }
        let binding =
            Binding::from_code(s.binding).ok_or_else(|| invalid("binding", s.binding.into(), 9))?;
        if s.flags & !symbol_flags::KNOWN != 0 {
            return Err(invalid("flags", s.flags.into(), 11));
        }
        if binding == Binding::Global {
            globals += 1;
        }
        let bad = |problem: String, off: u64| {
            at.err(
                ErrorKind::BadSymbol {
                    index,
                    name: name.into(),
                    problem,
                },
                rec + off,
            )
        };
        let section_index = s.section_index.get();
        if section_index != SECTION_UNDEFINED {
            let section = sections.get(usize::from(section_index)).ok_or_else(|| {
                bad(
                    format!(
                        "section_index {section_index} is out of range ({} sections)",
                        sections.len()
                    ),
                    56,
                )
            })?;
            let memory = section.size.get().max(section.virtual_size.get());
            let (value, size) = (s.value.get(), s.size.get());
            if value.checked_add(size).is_none_or(|end| end > memory) {
                return Err(bad(
                    format!(
                        "value {value:#x} + size {size:#x} lies outside section {section_index} ({memory:#x} bytes)"
                    ),
                    16,
                ));
            }
        }
        let template_offset = s.template_offset.get();
        if s.flags & symbol_flags::GENERIC_TEMPLATE != 0 {
            let Some((_, code_size)) = template_code else {
                return Err(bad(
                    "is a generic template but the module has no TemplateCode section".into(),
                    11,
                ));
            };
            if template_offset < TEMPLATE_CODE_HEADER_SIZE || template_offset >= code_size {
                return Err(bad(
                    format!(
                        "template_offset {template_offset:#x} is outside the TemplateCode entries (10..{code_size:#x})"
                    ),
                    48,
                ));
            }
        } else if template_offset != 0 {
            return Err(bad(
                "template_offset is set but the symbol is not a generic template".into(),
                48,
            ));
        }
        names.push(name);
    }
    if globals != header.exported_count {
        return Err(at.err(
            ErrorKind::ExportedCountMismatch {
                stored: header.exported_count,
                counted: globals,
            },
            tables.strings.end + 44,
        ));
    }
    Ok(names)
}

/// Offset 0 of the string table is the empty name, so a table that names
/// anything must start with a NUL byte.
fn check_string_table_start(strings: &[u8], tables: &Tables, at: At) -> Result<()> {
    if strings.first() == Some(&0) {
        return Ok(());
    }
    Err(at.err(
        ErrorKind::BadName {
            what: "the string table".into(),
            name_offset: 0,
            problem: "does not start with the empty name (a NUL byte)",
        },
        tables.strings.start,
    ))
}

/// The NUL-terminated UTF-8 string at `offset` in the string table. `what`
/// names the string for errors; a bad offset is reported at `field`, the
/// base-relative offset of the field that holds it.
fn table_string<'a>(
    strings: &'a [u8],
    offset: u32,
    what: std::fmt::Arguments<'_>,
    field: u64,
    tables: &Tables,
    at: At,
) -> Result<&'a str> {
    let bad = |problem: &'static str| {
        at.err(
            ErrorKind::BadName {
                what: what.to_string(),
                name_offset: offset.into(),
                problem,
            },
            field,
        )
    };
    let start = usize::try_from(offset).map_err(|_| bad("is outside the string table"))?;
    let tail = strings
        .get(start..)
        .ok_or_else(|| bad("is outside the string table"))?;
    if tail.is_empty() {
        return Err(bad("is outside the string table"));
    }
    let window = tail.get(..=MAX_NAME_LEN).unwrap_or(tail);
    let len = window.iter().position(|&b| b == 0).ok_or_else(|| {
        if window.len() > MAX_NAME_LEN {
            bad("is longer than the 4096-byte limit")
        } else {
            bad("has no terminating NUL inside the string table")
        }
    })?;
    std::str::from_utf8(&window[..len]).map_err(|_| {
        at.err(
            ErrorKind::InvalidUtf8 {
                what: what.to_string(),
            },
            tables.strings.start + u64::from(offset),
        )
    })
}

fn check_relocations(
    sections: &[RawSection],
    symbol_count: u64,
    data: &[u8],
    at: At,
) -> Result<()> {
    for (si, s) in sections.iter().enumerate() {
        if SectionType::from_code(s.section_type) != Some(SectionType::Reloc) {
            continue;
        }
        let section = si as u32;
        let (offset, size) = (s.offset.get(), s.size.get());
        let entry = RELOCATION_ENTRY_SIZE as u64;
        if size % entry != 0 {
            return Err(at.err(
                ErrorKind::BadRelocation {
                    section,
                    index: size / entry,
                    problem: format!(
                        "section size {size} is not a whole number of 24-byte entries"
                    ),
                },
                offset + size - size % entry,
            ));
        }
        if size / entry > MAX_RELOCATIONS {
            return Err(at.err(
                ErrorKind::LimitExceeded {
                    what: format!("relocation count of section {section}"),
                    value: size / entry,
                    limit: MAX_RELOCATIONS,
                },
                offset,
            ));
        }
        let bytes = data
            .get(usize_of(offset)..usize_of(offset + size))
            .unwrap_or(&[]);
        let table = <[RawRelocation]>::ref_from_bytes(bytes).unwrap_or(&[]);
        for (ri, r) in table.iter().enumerate() {
            let rec = offset + ri as u64 * entry;
            let bad = |problem: String, off: u64| {
                at.err(
                    ErrorKind::BadRelocation {
                        section,
                        index: ri as u64,
                        problem,
                    },
                    rec + off,
                )
            };
            if r.reserved != 0 {
                return Err(at.err(
                    ErrorKind::NonZeroReserved {
                        field: format!("relocation {ri} of section {section}"),
                    },
                    rec + 13,
                ));
            }
            let kind = RelocType::from_code(r.reloc_type)
                .ok_or_else(|| bad(format!("type {} is undefined", r.reloc_type), 12))?;
            let symbol = r.symbol_index.get();
            if u64::from(symbol) >= symbol_count {
                return Err(bad(
                    format!("symbol_index {symbol} is out of range ({symbol_count} symbols)"),
                    8,
                ));
            }
            let target = r.target_section.get();
            let target_section = sections.get(usize::from(target)).ok_or_else(|| {
                bad(
                    format!(
                        "target_section {target} is out of range ({} sections)",
                        sections.len()
                    ),
                    14,
                )
            })?;
            let patched = match SectionType::from_code(target_section.section_type) {
                Some(SectionType::Code | SectionType::Data | SectionType::RoData) => {
                    contents_len(target_section)
                }
                _ => {
                    return Err(bad(
                        format!("target_section {target} is not a code or data section"),
                        14,
                    ));
                }
            };
            let at_offset = r.offset.get();
            if at_offset
                .checked_add(kind.width())
                .is_none_or(|end| end > patched)
            {
                return Err(bad(
                    format!(
                        "offset {at_offset:#x} + {} bytes lies outside section {target} ({patched:#x} bytes)",
                        kind.width()
                    ),
                    0,
                ));
            }
        }
    }
    Ok(())
}

fn find_note<'a>(
    sections: &[RawSection],
    names: &[&str],
    data: &'a [u8],
    decompressed: &[Option<Box<[u8]>>],
    layout: &SectionLayout,
    at: At,
) -> Result<Option<(u32, NoteText<'a>)>> {
    let mut found = None;
    for (i, (s, name)) in sections.iter().zip(names).enumerate() {
        if *name != NOTE_SECTION_NAME {
            continue;
        }
        let offset = s.offset.get();
        if found.is_some() {
            return Err(at.err(
                ErrorKind::DuplicateSection {
                    name: (*name).into(),
                },
                offset,
            ));
        }
        if SectionType::from_code(s.section_type) != Some(SectionType::TemplateMeta) {
            return Err(at.err(
                ErrorKind::BadNote {
                    problem: format!(
                        "section {i} is named note.sdn but has type {}, not template_meta (13)",
                        s.section_type
                    ),
                },
                offset,
            ));
        }
        let size = contents_len(s);
        if is_compressed(s) {
            // The text is the whole of the decompressed contents (their
            // length is recorded), so there is nothing to scan for; an
            // error inside it can only point at the compressed bytes.
            if size > MAX_NOTE_SIZE {
                return Err(note_too_large(size, offset, at));
            }
            let bytes = contents(sections, i, data, decompressed);
            std::str::from_utf8(bytes).map_err(|e| {
                at.err(
                    ErrorKind::InvalidUtf8 {
                        what: format!("note.sdn (decompressed byte {})", e.valid_up_to()),
                    },
                    offset,
                )
            })?;
            found = Some((i as u32, NoteText::Decompressed));
            continue;
        }
        let bytes = if size != 0 {
            if size > MAX_NOTE_SIZE {
                return Err(note_too_large(size, offset, at));
            }
            data.get(usize_of(offset)..usize_of(offset + size))
                .unwrap_or(&[])
        } else {
            scan_note(data, offset, layout.bound_after(offset), at)?
        };
        let text = std::str::from_utf8(bytes).map_err(|e| {
            at.err(
                ErrorKind::InvalidUtf8 {
                    what: "note.sdn".into(),
                },
                offset + e.valid_up_to() as u64,
            )
        })?;
        found = Some((i as u32, NoteText::Stored(text)));
    }
    Ok(found)
}

#[cold]
fn note_too_large(size: u64, offset: u64, at: At) -> Error {
    at.err(
        ErrorKind::LimitExceeded {
            what: "note.sdn size".into(),
            value: size,
            limit: MAX_NOTE_SIZE,
        },
        offset,
    )
}

/// Finds the `# END_NOTE` line of a zero-sized `note.sdn` between `offset`
/// and `bound`, and returns the text up to the end of that line.
fn scan_note(data: &[u8], offset: u64, bound: u64, at: At) -> Result<&[u8]> {
    let limit = bound.min(offset.saturating_add(MAX_NOTE_SIZE));
    let region = data.get(usize_of(offset)..usize_of(limit)).unwrap_or(&[]);
    let term = NOTE_TERMINATOR.as_bytes();
    let mut start = 0usize;
    while let Some(rest) = region.get(start..).filter(|r| !r.is_empty()) {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(n) => (&rest[..n], start + n + 1),
            None => (rest, region.len()),
        };
        // A NUL byte ends the text: what follows is alignment padding.
        if let Some(nul) = line.iter().position(|&b| b == 0) {
            if &line[..nul] == term {
                return Ok(&region[..start + nul]);
            }
            break;
        }
        if line.strip_suffix(b"\r").unwrap_or(line) == term {
            return Ok(&region[..next]);
        }
        start = next;
    }
    Err(at.err(
        ErrorKind::BadNote {
            problem: format!(
                "size is 0 but no '# END_NOTE' line ends the text before offset {:#x}, where the section's space ends",
                at.base + limit
            ),
        },
        offset,
    ))
}

fn check_entry_point(header: &Header, sections: &[RawSection], at: At) -> Result<()> {
    let entry = header.entry_point;
    if entry == 0 {
        return Ok(());
    }
    let inside = sections.iter().any(|s| {
        SectionType::from_code(s.section_type) == Some(SectionType::Code)
            && entry >= s.offset.get()
            && entry - s.offset.get() < contents_len(s)
    });
    if inside {
        Ok(())
    } else {
        Err(at.err(ErrorKind::BadEntryPoint { entry }, entry))
    }
}

pub(crate) fn check_host(parts: &Parts<'_>) -> Result<()> {
    let header_at = (parts.base + parts.data.len()) as u64;
    let host_platform = if cfg!(target_os = "linux") {
        Platform::Linux
    } else if cfg!(target_os = "windows") {
        Platform::Windows
    } else if cfg!(target_os = "macos") {
        Platform::MacOs
    } else if cfg!(target_os = "freebsd") {
        Platform::FreeBsd
    } else {
        Platform::None
    };
    let host_arch = if cfg!(target_arch = "x86_64") {
        Arch::X86_64
    } else if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else {
        Arch::X86
    };
    let h = &parts.header;
    if h.platform != Platform::Any && h.platform != host_platform {
        return Err(Error::at(
            ErrorKind::HostMismatch {
                what: "platform",
                found: h.platform.name(),
                host: host_platform.name(),
            },
            header_at + 6,
        ));
    }
    if h.arch != host_arch {
        return Err(Error::at(
            ErrorKind::HostMismatch {
                what: "arch",
                found: h.arch.name(),
                host: host_arch.name(),
            },
            header_at + 7,
        ));
    }
    Ok(())
}
