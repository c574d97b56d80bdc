//! The template libraries of the process, shared by content.
//!
//! A module's TemplateCode section becomes a library decoded on demand
//! (`jit::binary::decode_library_lazily`): each template is decoded the
//! first time it is looked up and verified the first time it is
//! instantiated. Every loader of the process that loads a module with the
//! same section bytes (at the same file offset, which errors name) gets the
//! same library, so what one loader decoded and verified is never decoded
//! or verified again in the process. The cache holds its libraries weakly:
//! a library lives as long as a loaded module's templates refer to it.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use jit::ir::Library;

/// One cached library with what identifies it.
struct Entry {
    bytes: Arc<[u8]>,
    original_offset: u64,
    library: Weak<Library>,
}

/// Every library some loaded module still uses.
static LIBRARIES: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// The library of a TemplateCode section with these `bytes`, found at
/// `original_offset` of its file: the one already in use in the process,
/// or a new one over a copy of the bytes.
///
/// # Errors
///
/// The decoder's error when the section's framing is unsound (what it
/// can tell without decoding the entries), at its file offset.
pub(crate) fn library(bytes: &[u8], original_offset: u64) -> Result<Arc<Library>, jit::Error> {
    let mut entries = LIBRARIES.lock().unwrap_or_else(PoisonError::into_inner);
    entries.retain(|e| e.library.strong_count() > 0);
    let found = entries.iter().find_map(|e| {
        (e.original_offset == original_offset && *e.bytes == *bytes)
            .then(|| e.library.upgrade())
            .flatten()
    });
    if let Some(library) = found {
        return Ok(library);
    }
    let bytes: Arc<[u8]> = Arc::from(bytes);
    let library = Arc::new(jit::binary::decode_library_lazily(
        Arc::clone(&bytes),
        original_offset,
    )?);
    entries.push(Entry {
        bytes,
        original_offset,
        library: Arc::downgrade(&library),
    });
    Ok(library)
}
