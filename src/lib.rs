//! smfjit: a load-time template JIT instantiator inside a dynamic loader.
//!
//! This facade re-exports the workspace crates for programs that want one
//! dependency, and holds [`build`], the module builder behind `smf-build`.
#![forbid(unsafe_code)]

pub mod build;

pub use execmem;
pub use jit;
pub use loader;
pub use sdn;
pub use smf;
