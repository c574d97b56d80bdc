//! `cargo xtask`: the repository's tasks that cargo has no command for.
//!
//! `install` puts the C library (`libsmfjit.so` with its soname links), its
//! header and pkg-config file, the tools (`smf-inspect`, `smf-build`), their
//! manual pages and their shell completions under a prefix. This library
//! holds the installation: [`Artifacts`] names the built files to take
//! ([`Artifacts::locate`] finds them in cargo's target directory) and
//! [`install`] writes the tree, reporting each file to its caller. The
//! binary (src/main.rs) asks cargo where its target directory is, builds
//! the artifacts and prints the report; the root package's tests call
//! [`install`] with the artifacts cargo built for them.
//!
//! The manual pages and completions are made from the tools' own clap
//! definitions (`smfjit::cli`), so they describe the tools as built.
#![forbid(unsafe_code)]

mod artifacts;
mod completions;
mod error;
mod install;
mod manual;
mod pkg_config;

pub use artifacts::{Artifacts, Profile};
pub use error::Error;
pub use install::{Installed, Package, Summary, install};
