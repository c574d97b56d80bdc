//! The arguments of `smf-inspect` (src/bin/smf-inspect): its subcommands
//! and their options, and the checks of combinations clap cannot express.
//! The items' own doc comments are the tool's help text, so the example
//! for all of them is here:
//!
//! ```
//! use clap::Parser;
//! use smfjit::cli::inspect::{Cli, ColorChoice, Command};
//!
//! let cli = Cli::parse_from(["smf-inspect", "symbols", "m.smf", "--json", "--color", "never"]);
//! assert!(matches!(cli.command, Command::Symbols { .. }));
//! assert!(cli.style.json);
//! assert_eq!(cli.style.color, ColorChoice::Never);
//! assert!(Cli::try_parse_from(["smf-inspect", "no-such-view", "m.smf"]).is_err());
//! ```

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// Look inside SMF module files.
#[derive(Debug, Parser)]
// No bare `about`: it would take the package's description, which speaks
// of the library; the doc comment above describes the tool.
#[command(name = "smf-inspect", version)]
pub struct Cli {
    /// What to look at.
    #[command(subcommand)]
    pub command: Command,
    /// How to print it.
    #[command(flatten)]
    pub style: Style,
}

/// The `clap` definition of `smf-inspect`, from which its help, manual
/// pages and shell completions are made.
///
/// ```
/// let command = smfjit::cli::inspect::command();
/// assert!(command.get_subcommands().any(|s| s.get_name() == "instantiate"));
/// ```
pub fn command() -> clap::Command {
    Cli::command()
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

/// When text output is colored.
// The variants go undocumented: clap would print their doc comments as
// help, repeating what `--color`'s own says, in every subcommand's help.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// The subcommands: each reads one SMF module file and prints one view of it.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the 128-byte header.
    Header {
        /// The SMF module.
        file: PathBuf,
    },
    /// List the section table.
    Sections {
        /// The SMF module.
        file: PathBuf,
    },
    /// List the symbol table.
    Symbols {
        /// The SMF module.
        file: PathBuf,
    },
    /// List every relocation.
    Relocs {
        /// The SMF module.
        file: PathBuf,
    },
    /// List the memories and tables the module defines or imports.
    Shared {
        /// The SMF module.
        file: PathBuf,
    },
    /// Dump a section's bytes (by name or index): a compressed section's
    /// decompressed, at offsets inside it.
    Hex {
        /// The SMF module.
        file: PathBuf,
        /// The section's name (e.g. `note.sdn`) or index.
        section: String,
    },
    /// Print the six tables of the note.sdn section.
    Notes {
        /// The SMF module.
        file: PathBuf,
    },
    /// Print the templates of the TemplateCode section as text IR.
    Templates {
        /// The SMF module.
        file: PathBuf,
    },
    /// Check everything (container, templates, symbols, note.sdn); list every problem.
    Verify {
        /// The SMF module.
        file: PathBuf,
    },
    /// Disassemble a precompiled function, naming its calls and relocations.
    Disasm {
        /// The SMF module.
        file: PathBuf,
        /// The function's symbol, e.g. `sort$i64`.
        symbol: String,
        /// Assembly syntax.
        #[arg(long, value_enum, default_value_t = SyntaxChoice::Intel)]
        syntax: SyntaxChoice,
    },
    /// Instantiate a generic symbol through the loader's JIT, as a program's
    /// miss would, in the tier --tier or SMFJIT_TIER chooses, and optionally
    /// call it, once or --repeat times, showing the tier each call started in.
    /// With --target wasm32, compile it and the instantiations it calls into
    /// one WebAssembly module instead: write it with -o, run it in process
    /// with --call, print its text format with --disasm.
    Instantiate {
        /// The SMF module offering the template.
        file: PathBuf,
        /// The mangled name, e.g. `sum$f64` or `Vec$i64$push`.
        symbol: String,
        /// The machine to compile for: x86-64 code through the loader, or
        /// one wasm32 module (doc/formats/wasm-abi.md).
        #[arg(long, value_enum, default_value_t = TargetChoice::X86_64)]
        target: TargetChoice,
        /// With --target wasm32: write the module to this file.
        #[arg(short = 'o', long = "output", value_name = "OUT.wasm")]
        output: Option<PathBuf>,
        /// Call it with these arguments, one per parameter: literals for
        /// scalars, `[1, 2, 3]` for `ptr<T>`, or `null`.
        #[arg(long, num_args = 0.., allow_negative_numbers = true)]
        call: Option<Vec<String>>,
        /// Make the call this many times, each with the same arguments,
        /// through the one resolved pointer (stops at the first trap).
        #[arg(long, value_name = "K", requires = "call", value_parser = clap::value_parser!(u32).range(1..))]
        repeat: Option<u32>,
        /// Where the instantiation runs.
        #[command(flatten)]
        tier: TierArgs,
        /// Load this module first (repeatable, in order): one defining a
        /// memory or table FILE imports, or whose exports it calls.
        #[arg(long = "load", value_name = "MODULE")]
        preload: Vec<PathBuf>,
        /// Disassemble the code the name resolved to (for a tiered
        /// instantiation, its interpreter thunk); with --target wasm32,
        /// print the module in the WebAssembly text format.
        #[arg(long)]
        disasm: bool,
        /// Assembly syntax for --disasm of x86-64 code (default: intel).
        #[arg(long, value_enum)]
        syntax: Option<SyntaxChoice>,
    },
}

/// What `instantiate` compiles for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetChoice {
    /// x86-64 code, through the loader's JIT as a program's miss.
    #[value(name = "x86-64")]
    X86_64,
    /// One WebAssembly module of the symbol and what it calls.
    Wasm32,
}

/// Where `instantiate` runs the instantiation (BRIEF §11). Without
/// `--tier` the loader reads `SMFJIT_TIER`, `SMFJIT_TIER_CALLS`,
/// `SMFJIT_TIER_BACKEDGES` and `SMFJIT_TIER_BACKGROUND`, as a program's
/// loader does; with it, the command line alone decides.
#[derive(Debug, Args)]
pub struct TierArgs {
    /// Compiled on the miss, always interpreted, or interpreted until hot
    /// (default: $SMFJIT_TIER, else compiled).
    #[arg(long, value_enum)]
    pub tier: Option<TierChoice>,
    /// With `--tier auto`: calls that run interpreted before the next one
    /// compiles.
    #[arg(long, value_name = "N", requires = "tier", value_parser = clap::value_parser!(u32).range(1..))]
    pub calls: Option<u32>,
    /// With `--tier auto`: loop back-edges in one interpreted call after
    /// which the call continues in compiled code.
    #[arg(long, value_name = "N", requires = "tier", value_parser = clap::value_parser!(u32).range(1..))]
    pub backedges: Option<u32>,
}

impl TierArgs {
    /// The tier configuration the command line sets, `None` when it sets
    /// none (the environment decides).
    ///
    /// # Errors
    /// A threshold given with a tier other than `auto`, where nothing
    /// would read it: a usage error, as clap reports its own.
    pub fn config(&self) -> Result<Option<loader::TierConfig>, clap::Error> {
        let Some(tier) = self.tier else {
            return Ok(None);
        };
        if tier != TierChoice::Auto && (self.calls.is_some() || self.backedges.is_some()) {
            return Err(instantiate_conflict(
                "--calls and --backedges are thresholds of `--tier auto`",
            ));
        }
        let defaults = loader::TierConfig::default();
        Ok(Some(loader::TierConfig {
            policy: tier.into(),
            calls: self.calls.unwrap_or(defaults.calls),
            back_edges: self.backedges.unwrap_or(defaults.back_edges),
            background: false,
        }))
    }
}

/// The tier `--tier` names (`loader::TierPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TierChoice {
    /// Compiled on the miss.
    Compiled,
    /// Always run by the interpreter, behind a real function pointer.
    Interpreted,
    /// Interpreted until hot, then compiled.
    Auto,
}

impl From<TierChoice> for loader::TierPolicy {
    fn from(t: TierChoice) -> Self {
        match t {
            TierChoice::Compiled => Self::Compiled,
            TierChoice::Interpreted => Self::Interpreted,
            TierChoice::Auto => Self::Auto,
        }
    }
}

/// The assembly syntax of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyntaxChoice {
    /// Intel's, as the processor manuals write it.
    Intel,
    /// The GNU assembler's (AT&T operand order).
    Gas,
    /// NASM's.
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

/// A usage error of `instantiate`: two arguments that do not go together.
fn instantiate_conflict(message: &str) -> clap::Error {
    let mut cli = Cli::command();
    cli.build();
    let instantiate = cli
        .find_subcommand_mut("instantiate")
        .expect("instantiate is a subcommand");
    instantiate.error(clap::error::ErrorKind::ArgumentConflict, message)
}

impl Cli {
    /// Checks what clap cannot: combinations of arguments that are each
    /// valid alone.
    ///
    /// # Errors
    /// The usage error, to report and exit with as clap does.
    pub fn check(&self) -> Result<(), clap::Error> {
        let Command::Instantiate {
            target,
            output,
            repeat,
            tier,
            syntax,
            ..
        } = &self.command
        else {
            return Ok(());
        };
        match target {
            TargetChoice::X86_64 if output.is_some() => Err(instantiate_conflict(
                "-o writes a WebAssembly module: add --target wasm32",
            )),
            TargetChoice::X86_64 => tier.config().map(drop),
            // Tiers and repeated calls are the loader's; a module run in
            // process has neither.
            TargetChoice::Wasm32 if tier.tier.is_some() => Err(instantiate_conflict(
                "--tier, --calls and --backedges choose how the loader runs x86-64 code; \
                 --target wasm32 compiles a WebAssembly module instead",
            )),
            TargetChoice::Wasm32 if repeat.is_some() => Err(instantiate_conflict(
                "--repeat counts calls through the loader's tiers; \
                 --target wasm32 calls the module once",
            )),
            TargetChoice::Wasm32 if syntax.is_some() => Err(instantiate_conflict(
                "--syntax is for x86-64 listings; --disasm with --target wasm32 \
                 prints the WebAssembly text format",
            )),
            TargetChoice::Wasm32 => Ok(()),
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
            | Self::Shared { file }
            | Self::Notes { file }
            | Self::Templates { file }
            | Self::Verify { file }
            | Self::Hex { file, .. }
            | Self::Disasm { file, .. }
            | Self::Instantiate { file, .. } => file,
        }
    }
}
