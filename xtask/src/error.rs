//! The one error type of the installer.

use std::io;
use std::path::PathBuf;

/// Why an installation failed, naming the file it was at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A built file the installation needs is not there.
    #[error("'{}' is missing: build it with `{command}`", path.display())]
    MissingArtifact {
        /// The file.
        path: PathBuf,
        /// The cargo command that builds it.
        command: String,
    },
    /// The prefix cannot be written into a pkg-config file, whose values
    /// are split at white space and must be text.
    #[error("the prefix '{}' {reason}: pkg-config cannot name it", path.display())]
    UnusablePrefix {
        /// The prefix.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file to install could not be read.
    #[error("cannot read '{}'", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A folder, file or link of the installation could not be made.
    #[error("cannot write '{}'", path.display())]
    Write {
        /// The folder, file or link.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}
