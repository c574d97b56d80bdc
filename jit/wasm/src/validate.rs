//! Validation of every module before it leaves the backend.

use wasmparser::{Validator, WasmFeatures};

use crate::Error;

/// What the emitted code relies on beyond WebAssembly 1.0 (MVP with
/// mutable globals): the sign-extension operators (narrow signed integers)
/// and the saturating float-to-int conversions (the IR's casts). Nothing
/// else is allowed, so a module that validates here runs on every engine
/// that implements those two long-standardised proposals (V8 and wasmi
/// among them).
pub const FEATURES: WasmFeatures = WasmFeatures::WASM1
    .union(WasmFeatures::SIGN_EXTENSION)
    .union(WasmFeatures::SATURATING_FLOAT_TO_INT);

/// Validates a whole module with [`FEATURES`].
///
/// # Errors
///
/// [`Error::Invalid`] with the validator's message and the byte offset it
/// points at.
pub fn validate(bytes: &[u8]) -> Result<(), Error> {
    Validator::new_with_features(FEATURES)
        .validate_all(bytes)
        .map(|_| ())
        .map_err(|source| Error::Invalid {
            offset: source.offset(),
            message: source.message().to_owned(),
            source,
        })
}
