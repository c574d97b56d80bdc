//! The template libraries of the process, shared by content.
//!
//! A module's TemplateCode section becomes a library decoded on demand
//! (`jit::binary::decode_library_lazily`): each template is decoded the
//! first time it is looked up and verified the first time it is
//! instantiated. Every loader of the process that loads a module with the
//! same section bytes (at the same file offset, which errors name) gets the
//! same library, so what one loader decoded and verified is not decoded or
//! verified again in the process — also after that loader is gone: the
//! cache keeps the [`limits::CACHED_TEMPLATE_LIBRARIES`] libraries used
//! last, up to [`limits::CACHED_TEMPLATE_BYTES`] of sections, and forgets
//! the least recently used beyond that (a module still loaded keeps its own
//! library alive either way).

use std::sync::{Arc, Mutex, PoisonError};

use jit::ir::Library;

use crate::limits;

/// One cached library with what identifies it.
struct Entry {
    bytes: Arc<[u8]>,
    original_offset: u64,
    library: Arc<Library>,
}

/// The libraries used last, least recently used first.
static LIBRARIES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// The library of a TemplateCode section with these `bytes`, found at
/// `original_offset` of its file: the one already known to the process,
/// or a new one over `bytes` (the module's own copy, shared).
///
/// # Errors
///
/// The decoder's error when the section's framing is unsound (what it
/// can tell without decoding the entries), at its file offset.
pub(crate) fn library(bytes: &Arc<[u8]>, original_offset: u64) -> Result<Arc<Library>, jit::Error> {
    let mut entries = LIBRARIES.lock().unwrap_or_else(PoisonError::into_inner);
    let found = entries
        .iter()
        .position(|e| e.original_offset == original_offset && *e.bytes == **bytes);
    if let Some(k) = found {
        // Most recently used last.
        let entry = entries.remove(k);
        let library = Arc::clone(&entry.library);
        entries.push(entry);
        return Ok(library);
    }
    let bytes = Arc::clone(bytes);
    let library = Arc::new(jit::binary::decode_library_lazily(
        Arc::clone(&bytes),
        original_offset,
    )?);
    entries.push(Entry {
        bytes,
        original_offset,
        library: Arc::clone(&library),
    });
    let mut held: usize = entries.iter().map(|e| e.bytes.len()).sum();
    while entries.len() > limits::CACHED_TEMPLATE_LIBRARIES
        || (held > limits::CACHED_TEMPLATE_BYTES && entries.len() > 1)
    {
        let forgotten = entries.remove(0);
        held -= forgotten.bytes.len();
    }
    Ok(library)
}
