//! `smf-inspect`: look inside SMF module files.
//!
//! `main` only parses the arguments, runs the subcommand and turns its error
//! into the one-line message and exit status of BRIEF §7: 1 for a problem
//! with the file, 2 for a usage error (clap's own exit status), 0 when the
//! reader of our output went away (a closed pipe is not an error).

mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;
// The arguments are the library's, where `cargo xtask install` also reads
// them for the manual pages and completions.
use smfjit::cli::inspect as cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(usage) = cli.check() {
        usage.exit();
    }
    match commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.is::<output::Reported>() => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: '{}': {e:#}", cli.command.file().display());
            ExitCode::from(1)
        }
    }
}
