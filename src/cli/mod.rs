//! The command lines of the tools, `smf-inspect` and `smf-build`: their
//! `clap` definitions, which the binaries parse with and `cargo xtask
//! install` makes the manual pages and shell completions from, so the
//! three cannot drift apart.
//!
//! They live in the library, behind the default-on `cli` feature, because
//! a binary's code cannot be a dependency of another package (the `xtask`
//! one); the feature keeps clap out of programs that only use the library
//! (`default-features = false`).

//!
//! Each module opens with an example; `xtask/src` shows the manual pages
//! and completions made from [`inspect::command`] and [`build::command`].

pub mod build;
pub mod inspect;
