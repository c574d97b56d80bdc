//! smfjit: a load-time template JIT instantiator inside a dynamic loader.
//!
//! This facade re-exports the workspace crates for programs that want one
//! dependency, and holds [`build`], the module builder behind `smf-build`,
//! and (feature `cli`, on by default) `cli`, the command lines of the tools.
//! The same library, built as a cdylib, is `libsmfjit.so`, the C ABI of the
//! loader (`include/smfjit.h`), linked with the soname [`SONAME`].
//!
//! | re-export | for | example |
//! |---|---|---|
//! | [`loader`] | loading SMF modules and resolving names, instantiating on a miss | below; [`loader::Loader`] |
//! | [`jit`] | the template IR, the interpreter, the x86-64 and WebAssembly backends | [`jit`]'s crate page |
//! | [`smf`] | reading, validating and writing SMF module files | [`smf::Module::parse`] |
//! | [`sdn`] | the SDN format and the typed `note.sdn` tables | [`sdn::parse`] |
//! | [`execmem`] | write-xor-execute memory for generated code | [`execmem::ExecMemory`] |
//! | [`build`] | building a module from a manifest, as `smf-build` does | [`build::build_module`] |
//! | `cli` | the tools' command lines, for completions and manual pages | `cargo xtask install` |
//!
//! # Example
//!
//! Load the bundled collections module and call `sum$f64`, which no module
//! contains: the loader instantiates the `sum` template for `f64` and
//! compiles it on this first resolution (`examples/call_from_rust.rs` is
//! the same as a program).
//!
//! ```
//! use smfjit::loader::{Loader, LoaderConfig};
//!
//! let loader = Loader::with_jit(LoaderConfig::default())?;
//! loader.load("tests/fixtures/collections.smf")?;
//! let sum = loader.resolve("sum$f64")?;
//! // SAFETY: `sum$f64` is compiled for `fn(ptr<f64>, i64) -> f64`, this C
//! // function type, and stays mapped while the loader lives.
//! let sum: extern "C" fn(*const f64, i64) -> f64 = unsafe { std::mem::transmute(sum.as_ptr()) };
//! assert_eq!(sum([1.5, 2.25, 3.0].as_ptr(), 3), 6.75);
//! # Ok::<(), smfjit::loader::Error>(())
//! ```
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

/// The README's Rust code, compiled and run as a doctest so that it cannot
/// drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
