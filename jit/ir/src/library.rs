//! The template library shipped with the crate, in text form.

/// Source of the collections module (`templates/collections.tir`): `sum`,
/// `dot`, `min`, `max`, `fill`, `swap`, `reverse`, `insertion_sort`,
/// `quicksort`, `sort`, `quicksort_by`, `compare_asc`, `compare_desc`,
/// `sort_desc`, `binary_search`, `Vec<T>`, `Pair<T, U>`, `Option<T>` and
/// `checked_max`.
pub const COLLECTIONS: &str = include_str!("../templates/collections.tir");

/// The collections module parsed and verified.
///
/// # Errors
///
/// Never for the shipped text (a test pins it); the signature keeps parse
/// and verifier errors typed should the file be edited.
pub fn collections() -> Result<crate::ir::Library, crate::Error> {
    let lib = crate::text::parse_library(COLLECTIONS)?;
    crate::verify::verify_library(&lib)?;
    Ok(lib)
}
