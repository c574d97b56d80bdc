//! `smf-build MANIFEST.sdn -o OUT.smf [--compress zstd[:LEVEL]]`: builds an
//! SMF module from a manifest (format: `doc/formats/manifest.md`). Exit
//! status 1 for a build error, 2 for a usage error.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use smfjit::cli::build::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(bytes) => {
            eprintln!("wrote '{}' ({bytes} bytes)", cli.output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            // A build error already names its cause; others carry it in
            // their chain.
            if e.downcast_ref::<smfjit::build::BuildError>().is_some() {
                eprintln!("error: {e}");
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<usize> {
    let options = smfjit::build::Options {
        compression: cli.compress,
    };
    let bytes = smfjit::build::build_module_with(&cli.manifest, &options)?;
    write_atomically(&cli.output, &bytes)?;
    Ok(bytes.len())
}

/// Writes through a temporary file in the same folder and a rename, so a
/// reader never sees a half-written module.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension("smf.partial");
    std::fs::write(&tmp, bytes).with_context(|| format!("'{}'", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("'{}'", path.display()))?;
    Ok(())
}
