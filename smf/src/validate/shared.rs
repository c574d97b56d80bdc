//! The rules of the `Shared` section (type 14): its `SHRD` header, its
//! exact size, and each memory or table it declares, decoded into a
//! [`SharedItem`] only once every field has passed.

use zerocopy::FromBytes;

use super::{At, Tables, check_string_table_start, only_section_of_type, table_string, usize_of};
use crate::error::{Error, ErrorKind, Result};
use crate::kinds::{Linkage, SectionType, SharedKind};
use crate::limits::{
    MAX_MEMORY_PAGES, MAX_SHARED_ITEMS, MAX_TABLE_ENTRIES, SHARED_ENTRY_SIZE, SHARED_HEADER_SIZE,
};
use crate::raw::{RawSection, RawSharedEntry, RawSharedHeader, SHARED_MAGIC, SHARED_VERSION};
use crate::shared::{SHARED_SECTION_NAME, SharedItem};

/// The `Shared` section's index and its memories and tables, decoded.
pub(crate) type SharedSection = (u32, Vec<SharedItem>);

/// Finds the one `Shared` section, if any, and decodes its items.
pub(super) fn find_shared(
    sections: &[RawSection],
    data: &[u8],
    strings: &[u8],
    tables: &Tables,
    at: At,
) -> Result<Option<SharedSection>> {
    let Some((index, s, rec)) = only_section_of_type(
        sections,
        SectionType::Shared,
        SHARED_SECTION_NAME,
        tables,
        at,
    )?
    else {
        return Ok(None);
    };
    let entries = shared_entries(s, rec, data, at)?;
    if !entries.is_empty() {
        check_string_table_start(strings, tables, at)?;
    }
    let entries_at = s.offset.get() + SHARED_HEADER_SIZE as u64;
    let mut items: Vec<SharedItem> = Vec::with_capacity(entries.len());
    for (i, raw) in entries.iter().enumerate() {
        let entry = SharedEntry {
            raw,
            index: i,
            offset: entries_at + (i * SHARED_ENTRY_SIZE) as u64,
            at,
        };
        let item = entry.decode(strings, tables)?;
        if let Some(first) = items.iter().position(|other| other.name == item.name) {
            return Err(entry.error(
                ErrorKind::BadShared {
                    problem: format!(
                        "entry {i} is named '{}' like entry {first} (memories and tables share one namespace)",
                        item.name
                    ),
                },
                4,
            ));
        }
        items.push(item);
    }
    Ok(Some((index, items)))
}

/// The entries of the `Shared` section `s` (its table entry at `rec`),
/// after checking its header and that its size is exactly the header and
/// `count` entries.
fn shared_entries<'a>(
    s: &RawSection,
    rec: u64,
    data: &'a [u8],
    at: At,
) -> Result<&'a [RawSharedEntry]> {
    let bad = |problem: String, field: u64| at.err(ErrorKind::BadShared { problem }, field);
    let (offset, size) = (s.offset.get(), s.size.get());
    let header_size = SHARED_HEADER_SIZE as u64;
    if size < header_size {
        return Err(bad(
            format!("section is {size} bytes, shorter than its {header_size}-byte header"),
            rec + 16,
        ));
    }
    // check_sections proved that offset + size lies inside the data.
    let bytes = data
        .get(usize_of(offset)..usize_of(offset + size))
        .unwrap_or(&[]);
    let Ok((header, entries)) = RawSharedHeader::ref_from_prefix(bytes) else {
        return Err(bad("section bytes lie outside the file".into(), offset));
    };
    if header.magic != SHARED_MAGIC {
        return Err(bad(
            format!("magic is {:02x?}, expected \"SHRD\"", header.magic),
            offset,
        ));
    }
    let version = header.version.get();
    if version != SHARED_VERSION {
        return Err(bad(
            format!(
                "version {version} is not supported (this reader understands {SHARED_VERSION})"
            ),
            offset + 4,
        ));
    }
    for (bytes, field, off) in [
        (&header.reserved0[..], "header bytes 6..8", 6),
        (&header.reserved1[..], "header bytes 12..16", 12),
    ] {
        if bytes.iter().any(|&b| b != 0) {
            return Err(at.err(
                ErrorKind::NonZeroReserved {
                    field: format!("{SHARED_SECTION_NAME} {field}"),
                },
                offset + off,
            ));
        }
    }
    let count = header.count.get();
    if count > MAX_SHARED_ITEMS {
        return Err(at.err(
            ErrorKind::LimitExceeded {
                what: format!("{SHARED_SECTION_NAME} entry count"),
                value: count.into(),
                limit: MAX_SHARED_ITEMS.into(),
            },
            offset + 8,
        ));
    }
    // count is at most MAX_SHARED_ITEMS, so this cannot overflow.
    let needed = header_size + u64::from(count) * SHARED_ENTRY_SIZE as u64;
    if size != needed {
        return Err(bad(
            format!(
                "count is {count}, so the section takes {header_size} + {SHARED_ENTRY_SIZE} × {count} = {needed} bytes, but it is {size} bytes"
            ),
            offset + 8,
        ));
    }
    Ok(<[RawSharedEntry]>::ref_from_bytes(entries).unwrap_or(&[]))
}

/// One entry of the `Shared` section, with what its errors report: its
/// index and its base-relative offset, to which each field's offset is added.
struct SharedEntry<'a> {
    raw: &'a RawSharedEntry,
    index: usize,
    offset: u64,
    at: At,
}

impl SharedEntry<'_> {
    fn decode(&self, strings: &[u8], tables: &Tables) -> Result<SharedItem> {
        let (kind, linkage) = self.codes()?;
        let name = self.name(strings, tables)?;
        let item = Described {
            kind,
            linkage,
            name,
            index: self.index,
        };
        Ok(SharedItem {
            kind,
            linkage,
            name: name.to_owned(),
            initial: self.raw.initial.get(),
            signature: self.signature(&item, strings, tables)?,
            maximum: self.maximum(&item)?,
        })
    }

    #[cold]
    fn error(&self, kind: ErrorKind, field: u64) -> Error {
        self.at.err(kind, self.offset + field)
    }

    /// An error about the item `item` once it has a name to be called by.
    #[cold]
    fn bad(&self, item: &Described<'_>, problem: &str, field: u64) -> Error {
        self.error(
            ErrorKind::BadShared {
                problem: format!("{item} {problem}"),
            },
            field,
        )
    }

    /// Kind and linkage, after the enumerated and reserved bytes.
    fn codes(&self) -> Result<(SharedKind, Linkage)> {
        let raw = self.raw;
        let invalid = |field: &str, value: u8, off: u64| {
            self.error(
                ErrorKind::InvalidValue {
                    field: format!("{SHARED_SECTION_NAME} entry {} {field}", self.index),
                    value: value.into(),
                },
                off,
            )
        };
        let kind = SharedKind::from_code(raw.kind).ok_or_else(|| invalid("kind", raw.kind, 0))?;
        let linkage =
            Linkage::from_code(raw.linkage).ok_or_else(|| invalid("linkage", raw.linkage, 1))?;
        if raw.has_maximum > 1 {
            return Err(invalid("has_maximum", raw.has_maximum, 2));
        }
        for (nonzero, field, off) in [
            (raw.reserved0 != 0, "byte 3", 3),
            (raw.reserved1 != [0; 4], "bytes 28..32", 28),
        ] {
            if nonzero {
                return Err(self.error(
                    ErrorKind::NonZeroReserved {
                        field: format!("{SHARED_SECTION_NAME} entry {} {field}", self.index),
                    },
                    off,
                ));
            }
        }
        Ok((kind, linkage))
    }

    fn name<'s>(&self, strings: &'s [u8], tables: &Tables) -> Result<&'s str> {
        let name_offset = self.raw.name_offset.get();
        let what = format_args!("{SHARED_SECTION_NAME} entry {} name", self.index);
        let name = table_string(strings, name_offset, what, self.offset + 4, tables, self.at)?;
        if name.is_empty() {
            return Err(self.error(
                ErrorKind::BadName {
                    what: what.to_string(),
                    name_offset: name_offset.into(),
                    problem: "is empty (a memory or table needs a name)",
                },
                4,
            ));
        }
        Ok(name)
    }

    /// A table's signature, which it must have; a memory has none.
    fn signature(
        &self,
        item: &Described<'_>,
        strings: &[u8],
        tables: &Tables,
    ) -> Result<Option<String>> {
        let offset = self.raw.signature_offset.get();
        match item.kind {
            SharedKind::Memory if offset == 0 => Ok(None),
            SharedKind::Memory => Err(self.bad(
                item,
                &format!(
                    "has signature_offset {offset:#x}, but only a table has a signature (0 for a memory)"
                ),
                24,
            )),
            SharedKind::Table => {
                let signature = table_string(
                    strings,
                    offset,
                    format_args!("{SHARED_SECTION_NAME} entry {} signature", self.index),
                    self.offset + 24,
                    tables,
                    self.at,
                )?;
                if signature.is_empty() {
                    return Err(self.bad(
                        item,
                        "has no signature (a table names the function type of its entries)",
                        24,
                    ));
                }
                Ok(Some(signature.to_owned()))
            }
        }
    }

    /// The maximum, after checking both sizes: none recorded for an import;
    /// for a definition, within the limit of its kind and the maximum (when
    /// there is one) not below the initial size.
    fn maximum(&self, item: &Described<'_>) -> Result<Option<u64>> {
        let raw = self.raw;
        let (initial, maximum) = (raw.initial.get(), raw.maximum.get());
        if item.linkage == Linkage::Import {
            for (field, value, off) in [
                ("has_maximum", u64::from(raw.has_maximum), 2),
                ("initial", initial, 8),
                ("maximum", maximum, 16),
            ] {
                if value != 0 {
                    return Err(self.bad(
                        item,
                        &format!(
                            "records {field} {value}, but an import takes its sizes from the definition (0)"
                        ),
                        off,
                    ));
                }
            }
            return Ok(None);
        }
        let (limit, unit) = match item.kind {
            SharedKind::Memory => (MAX_MEMORY_PAGES, "pages"),
            SharedKind::Table => (MAX_TABLE_ENTRIES, "entries"),
        };
        let beyond = |field: &str, value: u64, off: u64| {
            self.error(
                ErrorKind::LimitExceeded {
                    what: format!("{field} size of {item} in {unit}"),
                    value,
                    limit,
                },
                off,
            )
        };
        if initial > limit {
            return Err(beyond("initial", initial, 8));
        }
        if raw.has_maximum == 0 {
            return match maximum {
                0 => Ok(None),
                _ => Err(self.bad(
                    item,
                    &format!("records maximum {maximum} but has_maximum is 0"),
                    16,
                )),
            };
        }
        if maximum > limit {
            return Err(beyond("maximum", maximum, 16));
        }
        if maximum < initial {
            return Err(self.bad(
                item,
                &format!("has a maximum below the initial size ({maximum} < {initial} {unit})"),
                16,
            ));
        }
        Ok(Some(maximum))
    }
}

/// How errors name a memory or table once its name is known, e.g.
/// `imported table 'dispatch' (entry 2)`.
struct Described<'a> {
    kind: SharedKind,
    linkage: Linkage,
    name: &'a str,
    index: usize,
}

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let imported = match self.linkage {
            Linkage::Import => "imported ",
            Linkage::Define => "",
        };
        write!(
            f,
            "{imported}{} '{}' (entry {})",
            self.kind, self.name, self.index
        )
    }
}
