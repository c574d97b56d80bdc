//! Command-line arguments.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Look inside SMF module files.
#[derive(Debug, Parser)]
#[command(name = "smf-inspect", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub style: Style,
}

/// Output options shared by every subcommand.
#[derive(Debug, Args)]
pub struct Style {
    /// Print JSON (keys are the field names of the SMF specification).
    #[arg(long, global = true)]
    pub json: bool,
    /// When to color text output; `auto` colors a terminal unless NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the 128-byte header.
    Header { file: PathBuf },
    /// List the section table.
    Sections { file: PathBuf },
    /// List the symbol table.
    Symbols { file: PathBuf },
    /// List every relocation.
    Relocs { file: PathBuf },
    /// Dump a section's bytes (by name or index).
    Hex { file: PathBuf, section: String },
    /// Print the six tables of the note.sdn section.
    Notes { file: PathBuf },
    /// Print the templates of the TemplateCode section as text IR.
    Templates { file: PathBuf },
    /// Check everything (container, templates, symbols, note.sdn); list every problem.
    Verify { file: PathBuf },
    /// Disassemble a precompiled function, naming its calls and relocations.
    Disasm {
        file: PathBuf,
        symbol: String,
        /// Assembly syntax.
        #[arg(long, value_enum, default_value_t = SyntaxChoice::Intel)]
        syntax: SyntaxChoice,
    },
    /// Instantiate a generic symbol through the loader's JIT, as a program's
    /// miss would, and optionally call it.
    Instantiate {
        file: PathBuf,
        /// The mangled name, e.g. `sum$f64` or `Vec$i64$push`.
        symbol: String,
        /// Call it with these arguments, one per parameter: literals for
        /// scalars, `[1, 2, 3]` for `ptr<T>`, or `null`.
        #[arg(long, num_args = 0.., allow_negative_numbers = true)]
        call: Option<Vec<String>>,
        /// Disassemble the code the name resolved to.
        #[arg(long)]
        disasm: bool,
        /// Assembly syntax for --disasm.
        #[arg(long, value_enum, default_value_t = SyntaxChoice::Intel)]
        syntax: SyntaxChoice,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyntaxChoice {
    Intel,
    Gas,
    Nasm,
}

impl From<SyntaxChoice> for jit::backend::Syntax {
    fn from(s: SyntaxChoice) -> Self {
        match s {
            SyntaxChoice::Intel => Self::Intel,
            SyntaxChoice::Gas => Self::Gas,
            SyntaxChoice::Nasm => Self::Nasm,
        }
    }
}

impl Command {
    /// The module file the subcommand reads.
    pub fn file(&self) -> &Path {
        match self {
            Self::Header { file }
            | Self::Sections { file }
            | Self::Symbols { file }
            | Self::Relocs { file }
            | Self::Notes { file }
            | Self::Templates { file }
            | Self::Verify { file }
            | Self::Hex { file, .. }
            | Self::Disasm { file, .. }
            | Self::Instantiate { file, .. } => file,
        }
    }
}
