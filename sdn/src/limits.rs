//! Every bound the parser and serializer enforce, in one place.
//!
//! SDN input is untrusted text. These limits keep a hostile document from
//! exhausting the stack (nesting) or memory (size, columns) before a clear
//! error is reported.

/// Largest document accepted, in bytes (64 MiB). A `note.sdn` section with
/// ten thousand rows is about one megabyte.
pub const MAX_INPUT_BYTES: usize = 64 << 20;

/// Deepest nesting of blocks, inline arrays and inline dicts together.
/// Parsing, conversion, serde and serialization all recurse once per level,
/// so this also bounds their stack use.
pub const MAX_DEPTH: usize = 128;

/// Most columns a table header may declare.
pub const MAX_TABLE_COLUMNS: usize = 1024;
