//! smfjit: a load-time template JIT instantiator inside a dynamic loader.
//!
//! This facade re-exports the workspace crates for programs that want one
//! dependency, and holds [`build`], the module builder behind `smf-build`,
//! and (feature `cli`, on by default) `cli`, the command lines of the tools.
//! The same library, built as a cdylib, is `libsmfjit.so`, the C ABI of the
//! loader (`include/smfjit.h`), linked with the soname [`SONAME`].
#![forbid(unsafe_code)]

pub mod build;
#[cfg(feature = "cli")]
pub mod cli;

/// The soname `libsmfjit.so` is linked with (`libsmfjit.so.MAJOR`): the
/// file name a C program linked against the library looks for at run time,
/// so an installed copy needs a file or link of that name next to it.
pub const SONAME: &str = include!("soname.in");

pub use execmem;
pub use jit;
pub use loader;
pub use sdn;
pub use smf;
