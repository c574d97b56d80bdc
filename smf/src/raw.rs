//! The on-disk records of SMF v1.1, byte for byte as BRIEF §3 lays them out.
//!
//! Every record is `#[repr(C)]` and built from alignment-1 little-endian
//! fields, so a record can be viewed in place at any offset of a mapped file
//! (through `zerocopy`, without `unsafe` here) and written out with
//! `as_bytes`. The compile-time assertions below pin each size and the offset
//! of every field the layout names.

use std::mem::{offset_of, size_of};

use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::limits::{
    HEADER_SIZE, RELOCATION_ENTRY_SIZE, SECTION_ENTRY_SIZE, SHARED_ENTRY_SIZE, SHARED_HEADER_SIZE,
    SYMBOL_ENTRY_SIZE,
};

/// The magic bytes at the start of the header.
pub const MAGIC: [u8; 4] = *b"SMF\0";
/// The major version this crate reads and writes.
pub const VERSION_MAJOR: u8 = 1;
/// The newest minor version this crate reads and writes (1 = with templates).
pub const VERSION_MINOR: u8 = 1;
/// `section_index` of an undefined or absolute symbol.
pub const SECTION_UNDEFINED: u16 = 0xFFFF;

/// Header `flags` bits.
pub mod header_flags {
    /// The module has an entry point and can run as a program.
    pub const EXECUTABLE: u32 = 0x1;
    /// The module may be replaced while loaded (hot reload).
    pub const RELOADABLE: u32 = 0x2;
    /// The module carries debug information.
    pub const DEBUG_INFO: u32 = 0x4;
    /// The code is position independent.
    pub const PIC: u32 = 0x8;
    /// A stub (a `#!` line or a native loader) precedes the SMF data.
    pub const HAS_STUB: u32 = 0x10;
    /// Every bit this version defines; other bits must be zero.
    pub const KNOWN: u32 = 0x1F;
}

/// Section `flags` bits.
pub mod section_flags {
    /// Readable when loaded.
    pub const READ: u32 = 0x1;
    /// Writable when loaded.
    pub const WRITE: u32 = 0x2;
    /// Executable when loaded.
    pub const EXEC: u32 = 0x4;
    /// The section's bytes in the file are compressed with the method the
    /// header names; `virtual_size` is their decompressed length.
    pub const COMPRESSED: u32 = 0x8;
    /// Every bit this version defines; other bits must be zero.
    pub const KNOWN: u32 = 0xF;
}

/// Symbol `flags` bits.
pub mod symbol_flags {
    /// Bits 0-1: the layout phase.
    pub const LAYOUT_PHASE_MASK: u8 = 0x3;
    /// The symbol anchors an event loop.
    pub const EVENT_LOOP_ANCHOR: u8 = 0x4;
    /// The symbol must stay at a fixed address.
    pub const PINNED: u8 = 0x8;
    /// The symbol is a generic template; `template_offset` locates its body.
    pub const GENERIC_TEMPLATE: u8 = 0x10;
    /// The symbol is a specialised (instantiated) generic.
    pub const SPECIALIZED: u8 = 0x20;
    /// Every bit this version defines; other bits must be zero.
    pub const KNOWN: u8 = 0x3F;
}

/// The 128-byte trailer header.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
#[allow(missing_docs)] // field names and meanings are those of BRIEF §3
pub struct RawHeader {
    pub magic: [u8; 4],
    pub version_major: u8,
    pub version_minor: u8,
    pub platform: u8,
    pub arch: u8,
    pub flags: U32,
    pub compression: u8,
    pub compression_level: u8,
    pub reserved0: [u8; 2],
    pub section_count: U32,
    pub reserved1: [u8; 4],
    pub section_table_offset: U64,
    pub symbol_table_offset: U64,
    pub symbol_count: U32,
    pub exported_count: U32,
    pub entry_point: U64,
    pub stub_size: U32,
    pub smf_data_offset: U32,
    pub module_hash: U64,
    pub source_hash: U64,
    pub app_type: u8,
    pub prefetch_hint: u8,
    pub window_width: U16,
    pub window_height: U16,
    pub prefetch_file_count: u8,
    pub reserved2: u8,
    pub smf_size: U64,
    pub reserved3: [u8; 32],
}

/// One 64-byte section table entry.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
#[allow(missing_docs)] // field names and meanings are those of BRIEF §3
pub struct RawSection {
    pub section_type: u8,
    pub reserved0: [u8; 3],
    pub flags: U32,
    pub offset: U64,
    pub size: U64,
    pub virtual_size: U64,
    pub alignment: U64,
    pub name: [u8; 16],
    pub reserved1: [u8; 8],
}

/// One 72-byte symbol table entry.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
#[allow(missing_docs)] // field names and meanings are those of BRIEF §3
pub struct RawSymbol {
    pub name_offset: U32,
    pub name_hash: U32,
    pub sym_type: u8,
    pub binding: u8,
    pub visibility: u8,
    pub flags: u8,
    pub reserved0: [u8; 4],
    pub value: U64,
    pub size: U64,
    pub type_id: U32,
    pub version: U32,
    pub template_param_count: u8,
    pub reserved1: [u8; 7],
    pub template_offset: U64,
    pub section_index: U16,
    pub reserved2: [u8; 14],
}

/// One 24-byte relocation entry, the content of a `Reloc` section.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
#[allow(missing_docs)] // field names and meanings are those of BRIEF §3
pub struct RawRelocation {
    pub offset: U64,
    pub symbol_index: U32,
    pub reloc_type: u8,
    pub reserved: u8,
    pub target_section: U16,
    pub addend: I64,
}

/// The magic bytes at the start of a `Shared` section.
pub const SHARED_MAGIC: [u8; 4] = *b"SHRD";
/// The version of the `Shared` section this crate reads and writes.
pub const SHARED_VERSION: u16 = 1;

/// The 16-byte header of a `Shared` section (section type 14).
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawSharedHeader {
    /// `SHRD`.
    pub magic: [u8; 4],
    /// [`SHARED_VERSION`].
    pub version: U16,
    /// Zero.
    pub reserved0: [u8; 2],
    /// Number of 32-byte entries that follow.
    pub count: U32,
    /// Zero.
    pub reserved1: [u8; 4],
}

/// One 32-byte entry of a `Shared` section: a memory or table the module
/// defines or imports.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawSharedEntry {
    /// 1 memory, 2 table ([`crate::SharedKind`]).
    pub kind: u8,
    /// 0 import, 1 define ([`crate::Linkage`]).
    pub linkage: u8,
    /// 1 when `maximum` holds a maximum, 0 when there is none.
    pub has_maximum: u8,
    /// Zero.
    pub reserved0: u8,
    /// Offset of the name in the string table.
    pub name_offset: U32,
    /// Initial size: pages of 64 KiB for a memory, entries for a table.
    pub initial: U64,
    /// Maximum size, in the unit of `initial`, when `has_maximum` is 1.
    pub maximum: U64,
    /// Offset of a table's function signature (IR text) in the string
    /// table; 0 for a memory.
    pub signature_offset: U32,
    /// Zero.
    pub reserved1: [u8; 4],
}

const _: () = {
    assert!(size_of::<RawHeader>() == HEADER_SIZE);
    assert!(offset_of!(RawHeader, flags) == 8);
    assert!(offset_of!(RawHeader, compression) == 12);
    assert!(offset_of!(RawHeader, section_count) == 16);
    assert!(offset_of!(RawHeader, section_table_offset) == 24);
    assert!(offset_of!(RawHeader, symbol_table_offset) == 32);
    assert!(offset_of!(RawHeader, symbol_count) == 40);
    assert!(offset_of!(RawHeader, exported_count) == 44);
    assert!(offset_of!(RawHeader, entry_point) == 48);
    assert!(offset_of!(RawHeader, stub_size) == 56);
    assert!(offset_of!(RawHeader, smf_data_offset) == 60);
    assert!(offset_of!(RawHeader, module_hash) == 64);
    assert!(offset_of!(RawHeader, source_hash) == 72);
    assert!(offset_of!(RawHeader, app_type) == 80);
    assert!(offset_of!(RawHeader, window_width) == 82);
    assert!(offset_of!(RawHeader, window_height) == 84);
    assert!(offset_of!(RawHeader, prefetch_file_count) == 86);
    assert!(offset_of!(RawHeader, smf_size) == 88);
    assert!(offset_of!(RawHeader, reserved3) == 96);

    assert!(size_of::<RawSection>() == SECTION_ENTRY_SIZE);
    assert!(offset_of!(RawSection, flags) == 4);
    assert!(offset_of!(RawSection, offset) == 8);
    assert!(offset_of!(RawSection, size) == 16);
    assert!(offset_of!(RawSection, virtual_size) == 24);
    assert!(offset_of!(RawSection, alignment) == 32);
    assert!(offset_of!(RawSection, name) == 40);
    assert!(offset_of!(RawSection, reserved1) == 56);

    assert!(size_of::<RawSymbol>() == SYMBOL_ENTRY_SIZE);
    assert!(offset_of!(RawSymbol, name_hash) == 4);
    assert!(offset_of!(RawSymbol, sym_type) == 8);
    assert!(offset_of!(RawSymbol, flags) == 11);
    assert!(offset_of!(RawSymbol, reserved0) == 12);
    assert!(offset_of!(RawSymbol, value) == 16);
    assert!(offset_of!(RawSymbol, size) == 24);
    assert!(offset_of!(RawSymbol, type_id) == 32);
    assert!(offset_of!(RawSymbol, version) == 36);
    assert!(offset_of!(RawSymbol, template_param_count) == 40);
    assert!(offset_of!(RawSymbol, template_offset) == 48);
    assert!(offset_of!(RawSymbol, section_index) == 56);
    assert!(offset_of!(RawSymbol, reserved2) == 58);

    assert!(size_of::<RawRelocation>() == RELOCATION_ENTRY_SIZE);
    assert!(offset_of!(RawRelocation, symbol_index) == 8);
    assert!(offset_of!(RawRelocation, reloc_type) == 12);
    assert!(offset_of!(RawRelocation, target_section) == 14);
    assert!(offset_of!(RawRelocation, addend) == 16);

    assert!(size_of::<RawSharedHeader>() == SHARED_HEADER_SIZE);
    assert!(offset_of!(RawSharedHeader, version) == 4);
    assert!(offset_of!(RawSharedHeader, reserved0) == 6);
    assert!(offset_of!(RawSharedHeader, count) == 8);
    assert!(offset_of!(RawSharedHeader, reserved1) == 12);

    assert!(size_of::<RawSharedEntry>() == SHARED_ENTRY_SIZE);
    assert!(offset_of!(RawSharedEntry, linkage) == 1);
    assert!(offset_of!(RawSharedEntry, has_maximum) == 2);
    assert!(offset_of!(RawSharedEntry, reserved0) == 3);
    assert!(offset_of!(RawSharedEntry, name_offset) == 4);
    assert!(offset_of!(RawSharedEntry, initial) == 8);
    assert!(offset_of!(RawSharedEntry, maximum) == 16);
    assert!(offset_of!(RawSharedEntry, signature_offset) == 24);
    assert!(offset_of!(RawSharedEntry, reserved1) == 28);
};
