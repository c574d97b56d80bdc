//! The subcommands. Each reads a validated module and prints one view of it.

mod call_args;
mod disasm;
mod header;
mod hex;
// Unsafe code: `instantiate --call` runs the code it compiled.
#[allow(unsafe_code)]
mod instantiate;
mod notes;
mod relocs;
mod sections;
mod shared;
mod symbols;
mod templates;
mod verify;
mod wasm;

use anyhow::Context;
use smf::Module;

use crate::cli::{Cli, Command, SyntaxChoice, TargetChoice};
use crate::output::Out;

/// Runs the subcommand the user asked for.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    let path = cli.command.file();
    let bytes = std::fs::read(path).context("cannot read the file")?;
    let module = Module::parse(&bytes)?;
    let mut out = Out::new(&cli.style);
    match &cli.command {
        Command::Header { .. } => header::print(&module, &mut out)?,
        Command::Sections { .. } => sections::print(&module, &mut out)?,
        Command::Symbols { .. } => symbols::print(&module, &mut out)?,
        Command::Relocs { .. } => relocs::print(&module, &mut out)?,
        Command::Shared { .. } => shared::print(&module, &mut out)?,
        Command::Hex { section, .. } => hex::print(&module, section, &mut out)?,
        Command::Notes { .. } => notes::print(&module, &mut out)?,
        Command::Templates { .. } => templates::print(&module, &mut out)?,
        Command::Verify { .. } => verify::print(&module, &mut out)?,
        Command::Instantiate {
            file,
            symbol,
            target,
            output,
            call,
            repeat,
            tier,
            disasm,
            syntax,
            preload,
        } => match target {
            TargetChoice::X86_64 => {
                let request = instantiate::Request {
                    symbol,
                    call: call.as_deref(),
                    repeat: repeat.unwrap_or(1),
                    tier: tier.config()?,
                    disasm: disasm.then(|| syntax.unwrap_or(SyntaxChoice::Intel).into()),
                    preload,
                };
                instantiate::print(&module, file, &request, &mut out)?;
            }
            TargetChoice::Wasm32 => {
                let request = wasm::Request {
                    symbol,
                    call: call.as_deref(),
                    output: output.as_deref(),
                    disasm: *disasm,
                    preload,
                };
                wasm::print(&module, &request, &mut out)?;
            }
        },
        Command::Disasm { symbol, syntax, .. } => {
            disasm::print(&module, symbol, (*syntax).into(), &mut out)?;
        }
    }
    out.finish()?;
    Ok(())
}

/// The names of the bits set in `flags`, from a table of (bit, name).
fn flag_names(flags: u64, table: &[(u64, &'static str)]) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// `flags` as hex followed by the names of its bits.
fn flags_text(flags: u64, table: &[(u64, &'static str)], width: usize) -> String {
    let names = flag_names(flags, table);
    if names.is_empty() {
        format!("{flags:#0width$x}", width = width + 2)
    } else {
        format!("{flags:#0width$x} ({})", names.join("|"), width = width + 2)
    }
}

const SECTION_FLAGS: &[(u64, &str)] = &[
    (0x1, "read"),
    (0x2, "write"),
    (0x4, "exec"),
    (0x8, "compressed"),
];

/// A section's name as printed: its name, or its index when it has none.
fn section_label(module: &Module<'_>, index: u32) -> String {
    match module.section(index) {
        Some(s) if !s.name().is_empty() => s.name().to_owned(),
        _ => format!("#{index}"),
    }
}
