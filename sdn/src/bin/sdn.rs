//! `sdn`: check, convert, format and query SDN files.
//!
//! `main` parses the arguments, `run` does the work and returns what went
//! wrong; `main` prints it as `error: 'FILE':LINE:COL: message` and exits
//! 1 (clap exits 2 on usage errors). A closed output pipe ends the program
//! quietly with status 0.
//!
//! Built only with the package's `cli` feature, which brings in the
//! dependencies used here and nowhere in the library (clap, anyhow,
//! serde_json, tempfile).

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sdn::{Dict, Value};

#[derive(Parser)]
#[command(
    name = "sdn",
    version,
    about = "Check, convert, format and query SDN (Simple Data Notation) files",
    after_help = "FILE may be '-' for standard input. Errors are printed as \
                  error: 'FILE':LINE:COL: message, with exit status 1."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that FILE is valid SDN; prints "'FILE': ok".
    Check {
        /// The SDN file.
        file: PathBuf,
    },
    /// Print FILE as JSON: a dict is an object (order kept), a named table
    /// {"fields": [...], "rows": [[...]]}, a typed table {"types": [...], "rows": [[...]]}.
    ToJson {
        /// The SDN file.
        file: PathBuf,
        /// One line instead of indented JSON.
        #[arg(long)]
        compact: bool,
    },
    /// Print a JSON file (an object at the top level) as SDN; objects of the
    /// table shape become tables.
    FromJson {
        /// The JSON file.
        file: PathBuf,
    },
    /// Print FILE in canonical form (comments are not kept).
    Fmt {
        /// The SDN file.
        file: PathBuf,
        /// Rewrite FILE in place instead of printing.
        #[arg(long, conflicts_with = "check")]
        write: bool,
        /// Print nothing; exit 1 if FILE is not in canonical form.
        #[arg(long)]
        check: bool,
    },
    /// Print the value at a dotted PATH such as server.port or users.0.name
    /// (indexes count from 0; table rows read as records). Scalars print as
    /// plain text, dicts, arrays and tables as JSON.
    Get {
        /// The SDN file.
        file: PathBuf,
        /// Keys and indexes joined by '.'.
        path: String,
    },
}

/// Why the command failed: an input problem (with its place in the file
/// when known) or anything else.
enum Failure {
    Input {
        file: String,
        location: Option<(usize, usize)>,
        message: String,
    },
    Other(anyhow::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Input {
                file,
                location: Some((line, column)),
                message,
            } => write!(f, "'{file}':{line}:{column}: {message}"),
            Failure::Input {
                file,
                location: None,
                message,
            } => write!(f, "'{file}': {message}"),
            Failure::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

fn sdn_failure(file: &Path, e: &sdn::Error) -> Failure {
    Failure::Input {
        file: file.display().to_string(),
        location: e.location().map(|l| (l.line, l.column)),
        message: e.message(),
    }
}

fn read(file: &Path) -> Result<String, Failure> {
    let mut text = String::new();
    let read = if file == Path::new("-") {
        io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(file).map(|t| text = t)
    };
    read.map(|()| text).map_err(|e| Failure::Input {
        file: file.display().to_string(),
        location: None,
        message: format!("cannot read: {e}"),
    })
}

fn parse(file: &Path, text: &str) -> Result<Dict, Failure> {
    sdn::parse(text).map_err(|e| sdn_failure(file, &e))
}

fn json(value: &Value, compact: bool) -> Result<String, Failure> {
    let text = if compact {
        serde_json::to_string(value)
    } else {
        serde_json::to_string_pretty(value)
    };
    Ok(text.context("cannot write JSON")?)
}

/// The text of a scalar as `get` prints it.
fn plain(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::String(s) => s.clone(),
        _ => return None,
    })
}

fn from_json(file: &Path, text: &str) -> Result<String, Failure> {
    let located = |e: serde_json::Error| {
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        Failure::Input {
            file: file.display().to_string(),
            location: (e.line() > 0).then_some((e.line(), e.column().max(1))),
            message: message.strip_suffix(&suffix).unwrap_or(&message).to_owned(),
        }
    };
    let value: Value = serde_json::from_str(text).map_err(located)?;
    let Value::Dict(dict) = value else {
        return Err(Failure::Input {
            file: file.display().to_string(),
            location: None,
            message: format!(
                "the top level is {}; it must be an object (an SDN document is a dict)",
                value.kind_name()
            ),
        });
    };
    sdn::write_document(&dict).map_err(|e| sdn_failure(file, &e))
}

/// What to print on standard output, if anything.
fn run(command: Command) -> Result<Option<String>, Failure> {
    match command {
        Command::Check { file } => {
            parse(&file, &read(&file)?)?;
            Ok(Some(format!("'{}': ok\n", file.display())))
        }
        Command::ToJson { file, compact } => {
            let doc = parse(&file, &read(&file)?)?;
            Ok(Some(json(&Value::Dict(doc), compact)? + "\n"))
        }
        Command::FromJson { file } => from_json(&file, &read(&file)?).map(Some),
        Command::Fmt { file, write, check } => {
            let text = read(&file)?;
            let canonical =
                sdn::write_document(&parse(&file, &text)?).map_err(|e| sdn_failure(&file, &e))?;
            if check {
                if canonical == text {
                    return Ok(None);
                }
                return Err(Failure::Input {
                    file: file.display().to_string(),
                    location: None,
                    message: format!(
                        "not in canonical form; run 'sdn fmt --write {}'",
                        file.display()
                    ),
                });
            }
            if write {
                if canonical != text {
                    replace_file(&file, &canonical)?;
                }
                return Ok(None);
            }
            Ok(Some(canonical))
        }
        Command::Get { file, path } => {
            let doc = parse(&file, &read(&file)?)?;
            let value = sdn::path::lookup(&doc, &path).map_err(|e| sdn_failure(&file, &e))?;
            let text = match plain(&value) {
                Some(text) => text,
                None => json(&value, false)?,
            };
            Ok(Some(text + "\n"))
        }
    }
}

/// Replaces `file` atomically: a temporary file in the same directory,
/// renamed over it, so a reader never sees half a file.
fn replace_file(file: &Path, text: &str) -> Result<(), Failure> {
    if file == Path::new("-") {
        return Err(anyhow::anyhow!("--write needs a file, not standard input").into());
    }
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temporary file in '{}'", dir.display()))?;
    temp.write_all(text.as_bytes())
        .with_context(|| format!("cannot write '{}'", temp.path().display()))?;
    temp.persist(file)
        .with_context(|| format!("cannot replace '{}'", file.display()))?;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(output) => {
            if let Some(text) = output {
                let mut out = io::stdout().lock();
                let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
                if let Err(e) = written {
                    // A reader that stops early (`sdn to-json f | head`) is not an error.
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        eprintln!("error: cannot write output: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}
