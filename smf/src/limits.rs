//! Every limit the reader and writer enforce, in one place.
//!
//! The limits bound what an untrusted file can make the reader allocate or
//! scan. They are generous for real modules and far below what would exhaust
//! memory; a file that exceeds one is rejected with [`ErrorKind::LimitExceeded`].
//!
//! [`ErrorKind::LimitExceeded`]: crate::ErrorKind::LimitExceeded

/// Size of the trailer header in bytes.
pub const HEADER_SIZE: usize = 128;
/// Size of one section table entry in bytes.
pub const SECTION_ENTRY_SIZE: usize = 64;
/// Size of one symbol table entry in bytes.
pub const SYMBOL_ENTRY_SIZE: usize = 72;
/// Size of one relocation entry in bytes.
pub const RELOCATION_ENTRY_SIZE: usize = 24;
/// Size of the header of a `Shared` section in bytes.
pub const SHARED_HEADER_SIZE: usize = 16;
/// Size of one `Shared` section entry in bytes.
pub const SHARED_ENTRY_SIZE: usize = 32;
/// Alignment of the section and symbol tables, relative to the SMF base.
pub const TABLE_ALIGN: u64 = 8;

/// Most sections one module may declare.
pub const MAX_SECTIONS: u32 = 4_096;
/// Most symbols one module may declare.
pub const MAX_SYMBOLS: u32 = 1 << 22;
/// Longest symbol name in bytes, excluding the terminating NUL.
pub const MAX_NAME_LEN: usize = 4_096;
/// Largest section alignment accepted (one large page).
pub const MAX_SECTION_ALIGN: u64 = 1 << 21;
/// Largest memory size (`virtual_size`) of one section; bounds the memory a
/// loader reserves for `Bss` on behalf of an untrusted file.
pub const MAX_VIRTUAL_SIZE: u64 = 1 << 30;
/// Largest `note.sdn` text in bytes, sized or terminator-scanned.
pub const MAX_NOTE_SIZE: u64 = 64 << 20;
/// Largest `TemplateCode` section in bytes.
pub const MAX_TEMPLATE_CODE_SIZE: u64 = 256 << 20;
/// Most bytes the compressed sections of one module may decompress to,
/// together. The reader adds up their `virtual_size`s before decompressing
/// any, so a small file cannot make it allocate more than this (a
/// decompression bomb is refused at the first section past the limit).
pub const MAX_DECOMPRESSED_SIZE: u64 = 256 << 20;
/// Most relocations in one relocation section.
pub const MAX_RELOCATIONS: u64 = 1 << 22;
/// Most memories and tables, defined and imported together, one module may
/// declare in its `Shared` section.
pub const MAX_SHARED_ITEMS: u32 = 256;
/// Largest initial or maximum size of a memory, in 64 KiB pages (4 GiB).
pub const MAX_MEMORY_PAGES: u64 = 65_536;
/// Largest initial or maximum size of a table, in entries.
pub const MAX_TABLE_ENTRIES: u64 = 1_048_576;
