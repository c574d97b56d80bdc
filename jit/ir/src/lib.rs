//! Template IR for generic code shipped in SMF modules.
//!
//! A module carries *templates*: generic functions (`sum<T: num>`) and
//! generic structs (`Vec<T>`) written in a typed, register-based IR of basic
//! blocks. This crate owns that IR end to end, independent of any backend:
//!
//! - [`ir`] is the in-memory model (types, instructions, functions, a
//!   [`ir::Library`] of items);
//! - [`text`] parses the authoring syntax (nom) and prints it back;
//! - [`binary`] encodes and decodes the `GTPL` payload of a TemplateCode
//!   section, hardened against hostile bytes;
//! - [`verify`] checks a template or a concrete function against every rule
//!   of the format;
//! - [`instantiate`] substitutes type arguments, computes C struct layouts
//!   ([`layout`]), lowers field and element addressing to byte offsets and
//!   names the result with [`mangle`];
//! - [`target`] describes what a target changes in the IR's meaning
//!   (pointer size and alignment, argument limits): a library is verified
//!   and laid out for one, x86-64 System V unless told otherwise;
//! - [`value`] and [`TrapKind`] are what every executor shares: the values
//!   functions take and return and the ways they stop abnormally;
//! - [`library`] is the template library shipped with the crate (`sum`,
//!   `dot`, sorting, searching, `Vec<T>`, `Pair<T, U>`, `Option<T>`), in
//!   text form under `templates/`.
//!
//! Limits on every input live in [`limits`]; every failure is an [`Error`]
//! of one type, carrying a byte offset, a line and column, or the function
//! and instruction it concerns. The format itself is specified in
//! `doc/formats/template-ir.md`.
//!
//! The executors consume the concrete, verified functions that
//! [`instantiate`] produces: the reference interpreter (`jit-interp`) and
//! the x86-64 backend (`jit-x64`), which must agree with it.

#![forbid(unsafe_code)]

pub mod binary;
pub mod error;
pub mod hash;
pub mod instantiate;
pub mod ir;
pub mod layout;
pub mod library;
pub mod limits;
pub mod mangle;
pub mod osr;
pub mod target;
pub mod text;
pub mod value;
pub mod verify;

pub use error::{Error, ErrorKind, Location, TrapKind};
