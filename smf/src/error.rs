//! The one error type of the crate: what is wrong, and where in the file.

use std::fmt;

/// An SMF file could not be read, or a module could not be written.
///
/// Reader errors carry the absolute file offset of the byte or record at
/// fault, so `smf-inspect hex` can show it; writer errors have no offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    offset: Option<u64>,
}

impl Error {
    /// An error of `kind` at absolute file offset `offset`.
    #[cold]
    #[must_use]
    pub fn at(kind: ErrorKind, offset: u64) -> Self {
        Self {
            kind,
            offset: Some(offset),
        }
    }

    /// An error of `kind` with no place in a file (a writer error).
    #[cold]
    #[must_use]
    pub fn new(kind: ErrorKind) -> Self {
        Self { kind, offset: None }
    }

    /// What is wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Absolute file offset of the fault, when there is one.
    #[must_use]
    pub fn offset(&self) -> Option<u64> {
        self.offset
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "{} (at offset {offset:#x})", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for Error {}

/// The kinds of error, each with the facts a reader needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The data ends before a record or table it must hold.
    #[error("file is truncated: {what} needs {needed} bytes but only {available} remain")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The header does not start with `SMF\0`.
    #[error("bad magic {} (expected 53 4d 46 00, \"SMF\\0\")", hex_bytes(.found))]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// A version this reader does not understand.
    #[error("unsupported SMF version {major}.{minor} (this reader understands 1.0 and 1.1)")]
    UnsupportedVersion {
        /// `version_major` found.
        major: u8,
        /// `version_minor` found.
        minor: u8,
    },
    /// A module built for another platform or architecture than the host.
    #[error("module is for {what} '{found}', this host is '{host}'")]
    HostMismatch {
        /// `platform` or `arch`.
        what: &'static str,
        /// The module's value.
        found: &'static str,
        /// The host's value.
        host: &'static str,
    },
    /// A field holds a value this version does not define.
    #[error("{field} has the undefined value {value:#x}")]
    InvalidValue {
        /// The field, e.g. `header.arch` or `symbol 3 flags`.
        field: String,
        /// The value found.
        value: u64,
    },
    /// A reserved field is not zero.
    #[error("reserved bytes in {field} are not zero")]
    NonZeroReserved {
        /// The record and field.
        field: String,
    },
    /// A feature the file uses that this reader does not implement.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// A count times an entry size, or an offset plus a size, overflows.
    #[error("{what} overflows: {count} entries of {entry_size} bytes")]
    CountOverflow {
        /// The table.
        what: &'static str,
        /// The count found.
        count: u64,
        /// Size of one entry.
        entry_size: u64,
    },
    /// A count, size or length is beyond the limits in [`crate::limits`].
    #[error("{what} is {value}, beyond the limit of {limit}")]
    LimitExceeded {
        /// What was measured.
        what: String,
        /// The value found.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// The SMF base (from `smf_size` or `smf_data_offset`) lies outside the file.
    #[error(
        "{field} is {value} but must lie between {min} and {max}, so the SMF base is not inside the file of {file_len} bytes"
    )]
    BadBase {
        /// The field the base comes from: `smf_size` or `smf_data_offset`.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The smallest valid value.
        min: u64,
        /// The largest valid value.
        max: u64,
        /// File length.
        file_len: u64,
    },
    /// A table, section or record reaches past the bytes it must lie in.
    #[error(
        "{what} (offset {offset:#x}, size {size:#x}) extends past the end of {within} ({limit:#x})"
    )]
    OutOfBounds {
        /// What is out of bounds.
        what: String,
        /// Its offset, relative to the SMF base.
        offset: u64,
        /// Its size.
        size: u64,
        /// The region it must lie in.
        within: &'static str,
        /// The end of that region, relative to the SMF base.
        limit: u64,
    },
    /// Two regions of the file that must be disjoint overlap.
    #[error("{first} overlaps {second}")]
    Overlap {
        /// One region.
        first: String,
        /// The other.
        second: String,
    },
    /// An offset is not a multiple of the alignment it needs.
    #[error("{what} at {offset:#x} is not aligned to {align} bytes")]
    Misaligned {
        /// What is misaligned.
        what: String,
        /// The offset found, relative to the SMF base.
        offset: u64,
        /// The alignment needed.
        align: u64,
    },
    /// A section alignment that is not a power of two.
    #[error("section {section} alignment {alignment} is not a power of two")]
    BadAlignment {
        /// Section index.
        section: u32,
        /// The alignment found.
        alignment: u64,
    },
    /// A string offset outside the string table, a string with no
    /// terminating NUL, or an empty string where one is needed.
    #[error("{what} at string offset {name_offset:#x} {problem}")]
    BadName {
        /// Which string, e.g. `symbol 3 name`.
        what: String,
        /// The name's offset in the string table.
        name_offset: u64,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Text that must be UTF-8 is not.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which text.
        what: String,
    },
    /// A symbol's `name_hash` does not match its name.
    #[error(
        "symbol {index} '{name}' has name_hash {stored:#010x}, but its name hashes to {computed:#010x}"
    )]
    NameHashMismatch {
        /// Symbol index.
        index: u32,
        /// The name.
        name: String,
        /// The stored hash.
        stored: u32,
        /// The hash of the name.
        computed: u32,
    },
    /// The recorded `module_hash` does not match the bytes.
    #[error("module_hash is {stored:#018x}, but the module bytes hash to {computed:#018x}")]
    ModuleHashMismatch {
        /// The stored hash.
        stored: u64,
        /// The hash of the bytes.
        computed: u64,
    },
    /// `exported_count` does not equal the number of global symbols.
    #[error("exported_count is {stored}, but {counted} symbols are global")]
    ExportedCountMismatch {
        /// The stored count.
        stored: u32,
        /// The number of global symbols.
        counted: u32,
    },
    /// A symbol's section or value does not fit the module.
    #[error("symbol {index} '{name}': {problem}")]
    BadSymbol {
        /// Symbol index.
        index: u32,
        /// Its name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A relocation refers to something that does not exist or does not fit.
    #[error("relocation {index} of section {section}: {problem}")]
    BadRelocation {
        /// The relocation section's index.
        section: u32,
        /// The relocation's index within it.
        index: u64,
        /// What is wrong.
        problem: String,
    },
    /// A section that must appear at most once appears again.
    #[error("section '{name}' appears more than once")]
    DuplicateSection {
        /// Its name.
        name: String,
    },
    /// The `note.sdn` section is malformed.
    #[error("note.sdn: {problem}")]
    BadNote {
        /// What is wrong.
        problem: String,
    },
    /// The `TemplateCode` section is malformed.
    #[error("TemplateCode: {problem}")]
    BadTemplateCode {
        /// What is wrong.
        problem: String,
    },
    /// The `Shared` section, or one of its memories or tables, is malformed.
    #[error(".shared: {problem}")]
    BadShared {
        /// What is wrong.
        problem: String,
    },
    /// A compressed section is not allowed to be, or its bytes do not
    /// decompress to exactly the `virtual_size` it records.
    #[error("compressed section {section} '{name}' {problem}")]
    BadCompressedSection {
        /// Section index.
        section: u32,
        /// Its name.
        name: String,
        /// What is wrong, e.g. `decompresses to 10 bytes, but its virtual_size records 12`.
        problem: String,
    },
    /// The entry point lies in no code section.
    #[error("entry_point {entry:#x} is not inside a code section")]
    BadEntryPoint {
        /// The entry point found.
        entry: u64,
    },
    /// The writer was asked to build something the format cannot express.
    #[error("cannot build module: {reason}")]
    Build {
        /// Why.
        reason: String,
    },
}

impl ErrorKind {
    /// A short stable identifier of the kind, used by tests and tools.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Truncated { .. } => "truncated",
            Self::BadMagic { .. } => "bad-magic",
            Self::UnsupportedVersion { .. } => "unsupported-version",
            Self::HostMismatch { .. } => "host-mismatch",
            Self::InvalidValue { .. } => "invalid-value",
            Self::NonZeroReserved { .. } => "nonzero-reserved",
            Self::Unsupported { .. } => "unsupported",
            Self::CountOverflow { .. } => "count-overflow",
            Self::LimitExceeded { .. } => "limit-exceeded",
            Self::BadBase { .. } => "bad-base",
            Self::OutOfBounds { .. } => "out-of-bounds",
            Self::Overlap { .. } => "overlap",
            Self::Misaligned { .. } => "misaligned",
            Self::BadAlignment { .. } => "bad-alignment",
            Self::BadName { .. } => "bad-name",
            Self::InvalidUtf8 { .. } => "invalid-utf8",
            Self::NameHashMismatch { .. } => "name-hash-mismatch",
            Self::ModuleHashMismatch { .. } => "module-hash-mismatch",
            Self::ExportedCountMismatch { .. } => "exported-count-mismatch",
            Self::BadSymbol { .. } => "bad-symbol",
            Self::BadRelocation { .. } => "bad-relocation",
            Self::DuplicateSection { .. } => "duplicate-section",
            Self::BadNote { .. } => "bad-note",
            Self::BadTemplateCode { .. } => "bad-template-code",
            Self::BadShared { .. } => "bad-shared",
            Self::BadCompressedSection { .. } => "bad-compressed-section",
            Self::BadEntryPoint { .. } => "bad-entry-point",
            Self::Build { .. } => "build",
        }
    }
}

/// Bytes as space-separated hex pairs, for messages.
fn hex_bytes(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(" ")
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
