//! The arguments of `smf-build` (src/bin/smf-build.rs). The items' own
//! doc comments are the tool's help text, so the example for all of them
//! is here:
//!
//! ```
//! use clap::Parser;
//! use smfjit::cli::build::Cli;
//!
//! let cli = Cli::parse_from(["smf-build", "m.sdn", "-o", "m.smf", "--compress", "zstd:9"]);
//! assert_eq!(cli.compress.level, Some(9));
//! assert!(Cli::try_parse_from(["smf-build", "m.sdn"]).is_err()); // no -o
//! ```

use std::path::PathBuf;

use clap::{CommandFactory, Parser};

use crate::build::CompressionChoice;

/// Build an SMF module from an SDN manifest.
#[derive(Debug, Parser)]
// No bare `about`: as for smf-inspect, the doc comment describes the tool.
#[command(name = "smf-build", version)]
pub struct Cli {
    /// The manifest (SDN).
    pub manifest: PathBuf,
    /// Where to write the module.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Store the template code and the note compressed: `zstd` (level 3)
    /// or `zstd:LEVEL` (1 to 22); `none` stores every section as it is.
    /// Code and data stay uncompressed; lz4 is not supported.
    #[arg(long, value_name = "METHOD[:LEVEL]", default_value = "none")]
    pub compress: CompressionChoice,
}

/// The `clap` definition of `smf-build`, from which its help, manual page
/// and shell completions are made.
///
/// ```
/// let command = smfjit::cli::build::command();
/// assert_eq!(command.get_name(), "smf-build");
/// assert!(command.get_arguments().any(|a| a.get_id() == "compress"));
/// ```
pub fn command() -> clap::Command {
    Cli::command()
}
