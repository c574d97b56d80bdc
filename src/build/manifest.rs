//! The manifest schema: what `smf-build` reads.

use serde::Deserialize;
use smf::{Arch, Platform};

/// A whole manifest (the format: `doc/formats/manifest.md`).
///
/// ```
/// use smfjit::build::Manifest;
///
/// let manifest: Manifest = smfjit::sdn::from_str(
///     "module:\n    name: demo\nsources = [demo.tir]\ncompile = [sum$i32]\n\
///      possible |mangled_name, required_by, can_defer|\n    sum$f64, app.main, true\n",
/// )?;
/// assert_eq!(manifest.module.name, "demo");
/// assert_eq!(manifest.possible[0].mangled_name, "sum$f64");
/// assert_eq!(manifest.module.arch()?, smfjit::smf::Arch::X86_64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Module metadata.
    pub module: ModuleInfo,
    /// Template sources in the text IR, relative to the manifest.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Manifests of other modules whose templates this module's templates
    /// call, relative to this manifest.
    #[serde(default)]
    pub uses: Vec<String>,
    /// Instantiations to compile ahead of time, by mangled name.
    #[serde(default)]
    pub compile: Vec<String>,
    /// Instantiations that may be needed at run time.
    #[serde(default)]
    pub possible: Vec<PossibleEntry>,
}

/// The `module:` block (example: [`Manifest`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleInfo {
    /// Module name.
    pub name: String,
    /// Platform name (`linux`, `any`, …); `linux` when absent.
    #[serde(default)]
    pub platform: Option<String>,
    /// Architecture name (`x86_64`, …); `x86_64` when absent.
    #[serde(default)]
    pub arch: Option<String>,
}

/// A row of the `possible` table (example: [`Manifest`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PossibleEntry {
    /// The instantiation's symbol name (`sum$f64`).
    pub mangled_name: String,
    /// What needs it.
    pub required_by: String,
    /// Whether it may be compiled lazily.
    pub can_defer: bool,
}

impl ModuleInfo {
    /// The platform, by name.
    ///
    /// # Errors
    /// A name SMF does not define, as a message.
    pub fn platform(&self) -> Result<Platform, String> {
        by_name(
            self.platform.as_deref(),
            Platform::Linux,
            Platform::ALL,
            "platform",
        )
    }

    /// The architecture, by name.
    ///
    /// # Errors
    /// A name SMF does not define, as a message.
    pub fn arch(&self) -> Result<Arch, String> {
        by_name(self.arch.as_deref(), Arch::X86_64, Arch::ALL, "arch")
    }
}

fn by_name<T: Copy + std::fmt::Display>(
    name: Option<&str>,
    default: T,
    all: &[T],
    what: &str,
) -> Result<T, String> {
    let Some(name) = name else {
        return Ok(default);
    };
    all.iter()
        .copied()
        .find(|v| v.to_string() == name)
        .ok_or_else(|| {
            format!(
                "unknown {what} '{name}' (one of: {})",
                all.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}
