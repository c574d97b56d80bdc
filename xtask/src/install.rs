//! Writing the installation: where each file goes under the prefix, and
//! how it gets there.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::artifacts::LIBRARY;
use crate::{Artifacts, Error, completions, manual, pkg_config};

/// What cargo says of the root package, for the pkg-config file and the
/// library's file name.
#[derive(Debug, Clone)]
pub struct Package {
    /// The package's name, `smfjit`: the pkg-config module's name.
    pub name: String,
    /// Its version, e.g. `0.1.0`.
    pub version: String,
    /// Its one-line description.
    pub description: String,
}

/// One file or link the installation made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// A file, copied or generated.
    File(PathBuf),
    /// A symbolic link, with what it points to (relative to its folder).
    Link {
        /// The link.
        path: PathBuf,
        /// Its target.
        target: PathBuf,
    },
}

impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "installed {}", path.display()),
            Self::Link { path, target } => {
                write!(f, "linked    {} -> {}", path.display(), target.display())
            }
        }
    }
}

/// What an installation made, in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Files copied or generated.
    pub files: usize,
    /// Symbolic links made.
    pub links: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} files and {} links installed", self.files, self.links)
    }
}

/// The tools' command lines, in the order they are installed.
pub(crate) fn tools() -> impl Iterator<Item = clap::Command> {
    [
        smfjit::cli::inspect::command(),
        smfjit::cli::build::command(),
    ]
    .into_iter()
}

/// Installs `artifacts` under `prefix` (an absolute path), replacing what
/// an earlier installation left there, and calls `report` with each file
/// and link once it is in place:
///
/// - `lib/libsmfjit.so.VERSION`, with the links `lib/libsmfjit.so.MAJOR`
///   (the soname, which programs look for at run time) and
///   `lib/libsmfjit.so` (which `-lsmfjit` finds when linking);
/// - `include/smfjit.h` and `lib/pkgconfig/smfjit.pc`;
/// - `bin/smf-inspect` and `bin/smf-build`;
/// - `share/man/man1/`: a manual page for each tool and each subcommand;
/// - their completions for bash, zsh and fish, where each shell looks under
///   a prefix (`share/bash-completion/completions`,
///   `share/zsh/site-functions`, `share/fish/vendor_completions.d`).
///
/// # Errors
/// [`Error::UnusablePrefix`] when the prefix cannot be written into a
/// pkg-config file (checked before anything is written); otherwise the
/// first file that could not be read or written. What was installed before
/// it stays.
pub fn install(
    artifacts: &Artifacts,
    package: &Package,
    prefix: &Path,
    report: &mut dyn FnMut(&Installed),
) -> Result<Summary, Error> {
    let pc = pkg_config::file(package, prefix)?;
    let mut tree = Tree {
        prefix,
        report,
        summary: Summary::default(),
    };
    tree.library(artifacts, package)?;
    tree.copy(&artifacts.header, "include/smfjit.h")?;
    tree.write(&format!("lib/pkgconfig/{}.pc", package.name), pc.as_bytes())?;
    for command in tools() {
        let name = command.get_name().to_owned();
        tree.copy(&artifacts.tool(&command), &format!("bin/{name}"))?;
        for page in manual::pages(command.clone(), package) {
            tree.write(&format!("share/man/man1/{}", page.file_name), &page.roff)?;
        }
        for script in completions::scripts(command) {
            tree.write(&script.path, &script.text)?;
        }
    }
    Ok(tree.summary)
}

/// The installation under way: writes under the prefix, counts and reports.
struct Tree<'a> {
    prefix: &'a Path,
    report: &'a mut dyn FnMut(&Installed),
    summary: Summary,
}

impl Tree<'_> {
    /// The library under its versioned name, and the two links that lead
    /// to it, as ldconfig and a distribution's -dev package would make them.
    fn library(&mut self, artifacts: &Artifacts, package: &Package) -> Result<(), Error> {
        let file = format!("{LIBRARY}.{}", package.version);
        self.copy(&artifacts.library, &format!("lib/{file}"))?;
        self.link(&format!("lib/{}", smfjit::SONAME), &file)?;
        self.link(&format!("lib/{LIBRARY}"), smfjit::SONAME)
    }

    /// Installs a copy of `source` at `relative`, keeping its permissions
    /// (an executable stays one).
    fn copy(&mut self, source: &Path, relative: &str) -> Result<(), Error> {
        // Opened first, so a missing source is named as such, not as a
        // failed write.
        let mut from = File::open(source).map_err(|e| Error::Read {
            path: source.to_owned(),
            source: e,
        })?;
        let path = self.place(relative, |partial| {
            let mut to = File::create(partial)?;
            io::copy(&mut from, &mut to)?;
            to.set_permissions(from.metadata()?.permissions())
        })?;
        self.done(Installed::File(path));
        Ok(())
    }

    /// Installs a generated file at `relative`.
    fn write(&mut self, relative: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.place(relative, |partial| std::fs::write(partial, bytes))?;
        self.done(Installed::File(path));
        Ok(())
    }

    /// Makes `relative` a symbolic link to `target`, a name in its folder.
    fn link(&mut self, relative: &str, target: &str) -> Result<(), Error> {
        let path = self.place(relative, |partial| {
            std::os::unix::fs::symlink(target, partial)
        })?;
        self.done(Installed::Link {
            path,
            target: target.into(),
        });
        Ok(())
    }

    /// Makes `relative`, returning its path: `make` creates a partial file
    /// beside it, which is then renamed over it. The rename replaces a file
    /// atomically: a program running the installed library or tool keeps
    /// the old file it mapped, where writing into that file would change
    /// its code under it.
    fn place(
        &self,
        relative: &str,
        make: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<PathBuf, Error> {
        let path = self.prefix.join(relative);
        let folder = path.parent().expect("an installed path has a folder");
        std::fs::create_dir_all(folder).map_err(write_error(folder))?;
        let file_name = path.file_name().expect("an installed path names a file");
        let partial = folder.join(format!(".{}.partial", file_name.to_string_lossy()));
        // What an interrupted installation left.
        match std::fs::remove_file(&partial) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(write_error(&partial)(e));
            }
            _ => {}
        }
        make(&partial).map_err(write_error(&partial))?;
        std::fs::rename(&partial, &path).map_err(write_error(&path))?;
        Ok(path)
    }

    fn done(&mut self, installed: Installed) {
        match installed {
            Installed::File(_) => self.summary.files += 1,
            Installed::Link { .. } => self.summary.links += 1,
        }
        (self.report)(&installed);
    }
}

/// The error of a failed write of `path`.
fn write_error(path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Write { path, source }
}
