//! The rules of compressed sections (flag 0x8): which sections may be
//! compressed, the bound on what they decompress to, and decompression
//! itself, which runs once the section table has passed and before
//! anything reads a section's contents.

use super::{At, Tables, entry_at, usize_of};
use crate::compression::{self, Failure};
use crate::error::{ErrorKind, Result};
use crate::kinds::{Compression, SectionType};
use crate::limits::{MAX_DECOMPRESSED_SIZE, SECTION_ENTRY_SIZE};
use crate::raw::{RawSection, section_flags};

/// The decompressed contents of each compressed section, by section index;
/// empty when the module compresses nothing.
pub(crate) type Decompressed = Vec<Option<Box<[u8]>>>;

/// Whether the section table marks `s` compressed.
pub(crate) fn is_compressed(s: &RawSection) -> bool {
    s.flags.get() & section_flags::COMPRESSED != 0
}

/// Bytes of `s`'s contents: what a compressed section decompresses to
/// (its `virtual_size`), the stored bytes of any other.
pub(crate) fn contents_len(s: &RawSection) -> u64 {
    if is_compressed(s) {
        s.virtual_size.get()
    } else {
        s.size.get()
    }
}

/// Whether a section of type `type_code` may be compressed: not `Bss`,
/// which has no bytes, nor `Reloc` and `Shared`, whose records' errors
/// name their place in the file, so they are stored as they are.
pub(crate) fn may_be_compressed(type_code: u8) -> bool {
    !matches!(
        SectionType::from_code(type_code),
        Some(SectionType::Bss | SectionType::Reloc | SectionType::Shared)
    )
}

/// The contents of section `index`: its decompressed bytes when it is
/// compressed, otherwise its bytes in `data` (empty for `Bss`, whose
/// bytes are not in the file).
pub(crate) fn contents<'d>(
    sections: &[RawSection],
    index: usize,
    data: &'d [u8],
    decompressed: &'d [Option<Box<[u8]>>],
) -> &'d [u8] {
    if let Some(Some(bytes)) = decompressed.get(index) {
        return bytes;
    }
    match sections.get(index) {
        Some(s) if SectionType::from_code(s.section_type) != Some(SectionType::Bss) => {
            stored(s, data)
        }
        _ => &[],
    }
}

/// The bytes of `s` in `data`, as the file stores them.
pub(crate) fn stored<'d>(s: &RawSection, data: &'d [u8]) -> &'d [u8] {
    // Validation proved offset + size lies inside the SMF data.
    let start = usize_of(s.offset.get());
    start
        .checked_add(usize_of(s.size.get()))
        .and_then(|end| data.get(start..end))
        .unwrap_or(&[])
}

/// The rules a compressed section's table entry must meet, before its
/// bytes are looked at: the header names the method, the section has bytes
/// to decompress and a type whose contents are read as bytes, and its
/// `virtual_size` records the decompressed length. (That a non-zero
/// `virtual_size` is at least `size` is a rule of every section.)
pub(super) fn check_entry(
    s: &RawSection,
    index: u32,
    name: &str,
    compression: Compression,
    rec: u64,
    at: At,
) -> Result<()> {
    let bad = |problem: String, field: u64| {
        at.err(
            ErrorKind::BadCompressedSection {
                section: index,
                name: name.into(),
                problem,
            },
            rec + field,
        )
    };
    if compression == Compression::None {
        return Err(bad(
            "is flagged compressed, but the header's compression is none".into(),
            4,
        ));
    }
    if let Some(kind) = SectionType::from_code(s.section_type)
        && !may_be_compressed(s.section_type)
    {
        return Err(bad(
            format!("has type {kind}, which is never compressed"),
            0,
        ));
    }
    if s.size.get() == 0 {
        return Err(bad("has no compressed bytes (size 0)".into(), 16));
    }
    if s.virtual_size.get() == 0 {
        return Err(bad(
            "does not record its decompressed size (virtual_size 0)".into(),
            24,
        ));
    }
    Ok(())
}

/// Decompresses every compressed section. Their recorded sizes are added
/// up first, against [`MAX_DECOMPRESSED_SIZE`], so nothing is allocated for
/// a module that would exceed it; each section then decompresses into a
/// buffer of exactly its `virtual_size`.
pub(super) fn decompress_sections(
    sections: &[RawSection],
    names: &[&str],
    data: &[u8],
    tables: &Tables,
    at: At,
) -> Result<Decompressed> {
    if !sections.iter().any(is_compressed) {
        return Ok(Vec::new());
    }
    let mut total = 0u64;
    for (i, s) in sections
        .iter()
        .enumerate()
        .filter(|(_, s)| is_compressed(s))
    {
        total = total.saturating_add(s.virtual_size.get());
        if total > MAX_DECOMPRESSED_SIZE {
            return Err(at.err(
                ErrorKind::LimitExceeded {
                    what: format!(
                        "the decompressed size of the compressed sections up to section {i}"
                    ),
                    value: total,
                    limit: MAX_DECOMPRESSED_SIZE,
                },
                entry_at(&tables.sections, i, SECTION_ENTRY_SIZE) + 24,
            ));
        }
    }
    let mut decompressed = Vec::with_capacity(sections.len());
    for (i, (s, name)) in sections.iter().zip(names).enumerate() {
        if !is_compressed(s) {
            decompressed.push(None);
            continue;
        }
        let size = s.virtual_size.get();
        let contents = compression::decompress(stored(s, data), usize_of(size)).map_err(|f| {
            let problem = match f {
                Failure::Larger { declared } => format!(
                    "declares {declared} decompressed bytes, more than the {size} its virtual_size records"
                ),
                Failure::Smaller { produced } => format!(
                    "decompresses to {produced} bytes, but its virtual_size records {size}"
                ),
                Failure::Corrupt { reason } => format!(
                    "does not decompress as zstd into the {size} bytes its virtual_size records: {reason}"
                ),
            };
            at.err(
                ErrorKind::BadCompressedSection {
                    // Section counts are bounded by `limits::MAX_SECTIONS`.
                    section: i as u32,
                    name: (*name).into(),
                    problem,
                },
                s.offset.get(),
            )
        })?;
        decompressed.push(Some(contents.into_boxed_slice()));
    }
    Ok(decompressed)
}
