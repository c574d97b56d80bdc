//! The SMF v1.1 container: a validated zero-copy reader and a byte-exact writer.
//!
//! An SMF file is section data followed by a section table, a symbol table, a
//! string table and a 128-byte trailer header (BRIEF §3, and
//! `doc/formats/smf.md` for every rule this crate enforces). The pieces:
//!
//! - [`raw`]: the on-disk records, field for field, viewable in place;
//! - [`kinds`]: the enumerated fields with their codes and names;
//! - [`Module`]: the reader. [`Module::parse`] validates everything first and
//!   only then hands out a view whose accessors borrow from the input bytes
//!   (and from the contents of compressed sections, which it decompresses
//!   and owns);
//! - [`ModuleBuilder`]: the writer, producing files the reader accepts, with
//!   aligned sections, tables, `module_hash`, `smf_size`, an optional stub
//!   and optionally zstd-compressed sections;
//! - [`SharedItem`]: a memory or table the module defines or imports, kept
//!   in its `Shared` section (type 14);
//! - [`limits`]: every bound on counts and sizes; [`Error`]: the one error
//!   type, a kind plus the file offset of the fault.
//!
//! The crate never prints and never panics on input bytes.
//!
//! ```
//! use smf::{Module, ModuleBuilder, NoteSize, SectionType, SymbolDef};
//!
//! let mut builder = ModuleBuilder::new();
//! let text = builder.add_section(SectionType::Code, ".text", 0x5, 16, &[0xC3; 32])?;
//! builder.add_symbol(SymbolDef::function("sum$i32", text, 16, 16))?;
//! builder.set_note("# Instantiation To/From Metadata\n# END_NOTE\n", NoteSize::Recorded)?;
//! let bytes = builder.build()?;
//!
//! let module = Module::parse(&bytes)?; // every check runs here
//! let sum = module.symbol_by_name("sum$i32").expect("exported");
//! assert_eq!((sum.value(), sum.size()), (16, 16));
//! assert!(module.note_sdn().unwrap().ends_with("# END_NOTE\n"));
//! # Ok::<(), smf::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod compression;
mod error;
mod hash;
pub mod kinds;
pub mod limits;
pub mod raw;
mod read;
mod shared;
mod validate;
mod write;

pub use compression::{ZSTD_DEFAULT_LEVEL, ZSTD_LEVELS};
pub use error::{Error, ErrorKind, Result};
pub use hash::{fnv1a32, fnv1a64};
pub use kinds::{
    AppType, Arch, Binding, Compression, Linkage, Platform, RelocType, SectionType, SharedKind,
    SymbolType,
};
pub use read::{Header, Module, Relocation, Section, Symbol};
pub use shared::{SHARED_SECTION_NAME, SharedItem};
pub use validate::{
    NOTE_SECTION_NAME, NOTE_TERMINATOR, TEMPLATE_CODE_HEADER_SIZE, TEMPLATE_CODE_MAGIC,
};
pub use write::{ModuleBuilder, NoteSize, SectionId, SymbolDef, SymbolId, rewrite_note};
