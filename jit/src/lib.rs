//! The JIT family behind one name.
//!
//! Five crates do the work, each on its own layer:
//!
//! - `jit-ir`: the template IR (model, text, binary, verifier,
//!   instantiation, layouts for a target description, mangling, the
//!   shipped template library, the values and traps every executor
//!   shares), re-exported here at the top level (`jit::ir`, `jit::verify`,
//!   `jit::Error`, …);
//! - `jit-interp`: the reference interpreter, the oracle every backend
//!   agrees with, as [`interp`];
//! - `jit-x64`: the x86-64 backend with its trap runtime and the
//!   lazy-binding resolver trampoline, as [`backend`];
//! - `jit-wasm`: the WebAssembly backend (one validated module per set of
//!   instances; with the `wasm-run` feature, an in-process runner), as
//!   [`wasm`];
//! - `jit-shared`: the runtime object of shared memories and tables (one
//!   descriptor per memory or table, grown in place, every access checked
//!   against its length), as [`shared`].
//!
//! Users and tools write `jit::…` and need not know the split; a crate that
//! needs only the IR (a fuzz target, a tool that reads templates) depends
//! on `jit-ir` alone and builds no backend.

#![forbid(unsafe_code)]

pub use jit_interp as interp;
pub use jit_ir::*;
pub use jit_shared as shared;
pub use jit_wasm as wasm;
pub use jit_x64 as backend;
