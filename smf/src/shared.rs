//! The memories and tables of a module: what its `Shared` section (type 14)
//! declares, as the writer takes it and the reader gives it back.
//!
//! A memory or table is defined by exactly one module, with its sizes, and
//! imported by name by others; memories and tables share one namespace. The
//! section's bytes are laid out in [`crate::raw::RawSharedHeader`] and
//! [`crate::raw::RawSharedEntry`]; its rules are in `doc/formats/smf.md`.

use crate::kinds::{Linkage, SharedKind};

/// The name the writer gives the `Shared` section (the reader finds it by type).
pub const SHARED_SECTION_NAME: &str = ".shared";

/// One memory or table a module defines or imports.
///
/// Sizes count 64 KiB pages for a memory and entries for a table. An import
/// records no sizes (`initial` 0, no `maximum`): the definition has them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SharedItem {
    /// Memory or table.
    pub kind: SharedKind,
    /// Defined here or imported.
    pub linkage: Linkage,
    /// The name, unique among the module's memories and tables.
    pub name: String,
    /// Initial size (0 for an import).
    pub initial: u64,
    /// Maximum size, when there is one (never for an import).
    pub maximum: Option<u64>,
    /// A table's function signature in IR text, e.g. `fn(i64) -> i64`;
    /// `None` for a memory.
    pub signature: Option<String>,
}

impl SharedItem {
    /// A memory this module defines, `initial` pages large, growable up to
    /// `maximum` pages (or up to the limit when there is no maximum).
    #[must_use]
    pub fn memory(name: &str, initial: u64, maximum: Option<u64>) -> Self {
        Self::define(SharedKind::Memory, name, initial, maximum, None)
    }

    /// A table of functions of type `signature` this module defines,
    /// `initial` entries large, growable up to `maximum` entries.
    #[must_use]
    pub fn table(name: &str, signature: &str, initial: u64, maximum: Option<u64>) -> Self {
        Self::define(SharedKind::Table, name, initial, maximum, Some(signature))
    }

    /// A memory another module defines, imported by name.
    #[must_use]
    pub fn import_memory(name: &str) -> Self {
        Self::import(SharedKind::Memory, name, None)
    }

    /// A table of functions of type `signature` another module defines,
    /// imported by name.
    #[must_use]
    pub fn import_table(name: &str, signature: &str) -> Self {
        Self::import(SharedKind::Table, name, Some(signature))
    }

    fn define(
        kind: SharedKind,
        name: &str,
        initial: u64,
        maximum: Option<u64>,
        signature: Option<&str>,
    ) -> Self {
        Self {
            kind,
            linkage: Linkage::Define,
            name: name.into(),
            initial,
            maximum,
            signature: signature.map(str::to_owned),
        }
    }

    fn import(kind: SharedKind, name: &str, signature: Option<&str>) -> Self {
        Self {
            linkage: Linkage::Import,
            ..Self::define(kind, name, 0, None, signature)
        }
    }
}
