//! The built files an installation takes, and where cargo leaves them.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use crate::Error;

/// The file name cargo gives the C library.
pub(crate) const LIBRARY: &str = "libsmfjit.so";

/// The cargo profile whose artifacts are installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Unoptimized, with debug information (`cargo build`).
    Debug,
    /// Optimized (`cargo build --release`).
    Release,
}

impl Profile {
    /// The arguments of the cargo command that builds what is installed:
    /// the root package, whose default features include the tools.
    pub fn build_args(self) -> &'static [&'static str] {
        match self {
            Self::Debug => &["build", "--locked", "-p", "smfjit"],
            Self::Release => &["build", "--release", "--locked", "-p", "smfjit"],
        }
    }

    /// The folder of the target directory cargo writes this profile's
    /// artifacts to.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Release => "release",
        }
    }

    /// [`Self::build_args`] as a command line to show.
    fn build_command(self) -> String {
        format!("cargo {}", self.build_args().join(" "))
    }
}

/// The files an installation takes.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The C library, `libsmfjit.so`, as cargo built it.
    pub library: PathBuf,
    /// The C header, `include/smfjit.h`.
    pub header: PathBuf,
    /// The folder holding the tools' executables, each under its command
    /// name (`smf-inspect`, `smf-build`).
    pub tools: PathBuf,
}

impl Artifacts {
    /// The artifacts of `profile` in the target directory `target_dir`, as
    /// `cargo build` leaves them, with the header of the workspace at
    /// `workspace_root`.
    ///
    /// # Errors
    /// [`Error::MissingArtifact`] for the first built file that is not
    /// there, with the command that builds it.
    pub fn locate(
        workspace_root: &Path,
        target_dir: &Path,
        profile: Profile,
    ) -> Result<Self, Error> {
        let dir = target_dir.join(profile.dir_name());
        let artifacts = Self {
            library: dir.join(LIBRARY),
            header: workspace_root.join("include/smfjit.h"),
            tools: dir,
        };
        let built = std::iter::once(artifacts.library.clone())
            .chain(crate::install::tools().map(|command| artifacts.tool(&command)));
        for path in built {
            if !path.is_file() {
                return Err(Error::MissingArtifact {
                    path,
                    command: profile.build_command(),
                });
            }
        }
        Ok(artifacts)
    }

    /// The executable of the tool `command` describes.
    pub(crate) fn tool(&self, command: &clap::Command) -> PathBuf {
        self.tools.join(command.get_name())
    }
}
