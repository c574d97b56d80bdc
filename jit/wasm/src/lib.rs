//! The WebAssembly backend of the template IR: a set of concrete
//! instances — a root and the instantiations it calls, the set the x86-64
//! backend compiles for one miss — becomes one WebAssembly module that
//! follows the side-module convention of C compiled to WebAssembly, so
//! existing hosts can link it (`doc/formats/wasm-abi.md`).
//!
//! The pieces: [`abi`] fixes the contract (import and export names, how
//! each IR type is represented); `module` lays out the index spaces
//! (types, imported and defined functions, table slots of address-taken
//! functions) and writes the sections with `wasm-encoder`; `lower` turns
//! each function's CFG into structured control flow (a dispatch loop over
//! its blocks) and each operation into instructions that keep the IR's
//! semantics exactly; [`validate`] runs `wasmparser`'s validator on every
//! module before [`compile`] returns it. With the `run` feature, [`run`]
//! executes modules in process with the `wasmi` interpreter.
//!
//! The IR's shared memories and tables are regions of the one imported
//! linear memory, each described by a descriptor the host places there
//! and the module imports the address of ([`abi::Space`],
//! [`abi::descriptor`]); every access reads the descriptor, so all modules
//! of a host see one length.
//!
//! Instances must come from a library laid out for
//! [`Target::WASM32`](jit_ir::target::Target::WASM32)
//! ([`Library::with_target`](jit_ir::ir::Library::with_target)): the
//! backend trusts their field offsets and element sizes, which
//! instantiation computed with 4-byte pointers.

#![forbid(unsafe_code)]

pub mod abi;
mod error;
mod lower;
mod module;
#[cfg(feature = "run")]
pub mod run;
mod validate;

pub use error::Error;
pub use module::{Export, Import, ImportKind, Module, SharedImport};
pub use validate::{FEATURES, validate};

use jit_ir::instantiate::Instance;

/// Compiles `instances` into one module: each is exported under its
/// symbol; calls between them are direct, calls to other symbols and
/// natives are imports from `env`, and the functions whose address is
/// taken are placed in the imported table at `__table_base + k`.
///
/// # Errors
///
/// [`Error::DuplicateSymbol`], [`Error::ImportSignature`],
/// [`Error::Unsupported`] for a function that was not instantiated, and
/// [`Error::Invalid`] should the module not validate (a backend bug, never
/// handed out).
pub fn compile(instances: &[&Instance]) -> Result<Module, Error> {
    module::compile(instances)
}
