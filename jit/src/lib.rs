//! Template IR for generic code shipped in SMF modules.
//!
//! A module carries *templates*: generic functions (`sum<T: num>`) and
//! generic structs (`Vec<T>`) written in a typed, register-based IR of basic
//! blocks. This crate owns that IR end to end:
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
//! - [`interp`] is the reference interpreter that defines what every
//!   instantiation computes, running over real memory and calling native
//!   code through a [`interp::Resolver`];
//! - [`library`] is the template library shipped with the crate (`sum`,
//!   `dot`, sorting, searching, `Vec<T>`, `Pair<T, U>`, `Option<T>`), in
//!   text form under `templates/`.
//!
//! Limits on every input live in [`limits`]; every failure is an [`Error`]
//! of one type, carrying a byte offset, a line and column, or the function
//! and instruction it concerns. The format itself is specified in
//! `doc/formats/template-ir.md`.
//!
//! The x86-64 backend consumes the concrete, verified functions that
//! [`instantiate`] produces; the interpreter is its oracle.

#![deny(unsafe_code)]

pub mod backend;
pub mod binary;
pub mod error;
pub mod instantiate;
pub mod interp;
pub mod ir;
pub mod layout;
pub mod library;
pub mod limits;
pub mod mangle;
pub mod text;
pub mod verify;

pub use error::{Error, ErrorKind, Location, TrapKind};
