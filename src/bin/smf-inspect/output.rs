//! Where output goes: colored text or JSON on stdout, with a closed pipe
//! treated as the end of the job rather than a failure.

use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};

use crate::cli::{ColorChoice, Style};

/// Text styles of the tool's output.
#[derive(Debug, Clone, Copy)]
pub enum Paint {
    /// Column headings and field names.
    Label,
    /// Names of sections and symbols.
    Name,
    /// Enumerated values (types, bindings).
    Kind,
    /// Numbers that are offsets or addresses.
    Offset,
}

impl Paint {
    fn ansi(self) -> &'static str {
        match self {
            Self::Label => "\x1b[1m",
            Self::Name => "\x1b[36m",
            Self::Kind => "\x1b[33m",
            Self::Offset => "\x1b[32m",
        }
    }
}

/// Buffered stdout with the color decision made once.
pub struct Out {
    inner: BufWriter<StdoutLock<'static>>,
    color: bool,
    json: bool,
}

impl Out {
    pub fn new(style: &Style) -> Self {
        let stdout = io::stdout();
        let color = match style.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            // https://no-color.org: set and not empty disables color.
            ColorChoice::Auto => {
                stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        Self {
            inner: BufWriter::new(stdout.lock()),
            color,
            json: style.json,
        }
    }

    /// Whether the user asked for JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// `text` in `paint` when coloring, plain otherwise.
    pub fn paint(&self, paint: Paint, text: impl std::fmt::Display) -> String {
        if self.color {
            format!("{}{text}\x1b[0m", paint.ansi())
        } else {
            text.to_string()
        }
    }

    /// Writes one line.
    pub fn line(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.inner, "{text}")
    }

    /// Writes a JSON value, pretty-printed, and a newline.
    pub fn write_json(&mut self, value: &serde_json::Value) -> anyhow::Result<()> {
        serde_json::to_writer_pretty(&mut self.inner, value)?;
        writeln!(self.inner)?;
        Ok(())
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Flushes buffered output at the end of a command.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()
    }
}

/// The command has printed its own verdict (for example `verify` listing
/// problems); `main` exits with status 1 without an error line.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("problems were reported")
    }
}

impl std::error::Error for Reported {}

/// Whether `e` is (or wraps) a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}
