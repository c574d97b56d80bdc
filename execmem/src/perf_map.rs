//! The perf map: one `START SIZE name` line (hexadecimal start and size) per
//! published function, appended to `/tmp/perf-PID.map`, which `perf report`
//! reads to name samples that land in generated code.
//!
//! One writer per process: every [`ExecMemory`](crate::ExecMemory) with the
//! map enabled shares one append-mode file behind one lock, and each
//! publication writes all of its lines with a single `write` so lines from
//! concurrent publications never interleave. A forked child notices that its
//! process id changed and opens its own file.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use crate::error::Error;
use crate::switch::Switch;

/// Environment variable that enables the perf map when set to `1` and the
/// configuration says [`PerfMap::Environment`].
pub const PERF_MAP_ENV: &str = "SMFJIT_PERF_MAP";

/// Whether published functions are announced in `/tmp/perf-PID.map`
/// ([`Switch::Environment`] follows [`PERF_MAP_ENV`]).
pub type PerfMap = Switch;

struct Writer {
    pid: u32,
    file: File,
}

static WRITER: Mutex<Option<Writer>> = Mutex::new(None);

/// Path of this process's perf map.
#[must_use]
pub fn path() -> PathBuf {
    path_for(std::process::id())
}

fn path_for(pid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/perf-{pid}.map"))
}

/// Runs `action` on the open writer of this process, opening it first.
fn with_writer<T>(action: impl FnOnce(&mut File) -> io::Result<T>) -> Result<T, Error> {
    // A panic while holding the lock can at worst have left a partial line;
    // the file handle itself stays usable.
    let mut guard = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    let writer = match guard.take() {
        Some(writer) if writer.pid == pid => guard.insert(writer),
        _ => {
            let path = path_for(pid);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| Error::PerfMap { path, source })?;
            guard.insert(Writer { pid, file })
        }
    };
    action(&mut writer.file).map_err(|source| Error::PerfMap {
        path: path(),
        source,
    })
}

/// Opens (or creates) this process's perf map so later appends cannot fail
/// on opening.
///
/// # Errors
///
/// [`Error::PerfMap`] when the file cannot be opened for appending.
pub(crate) fn open() -> Result<(), Error> {
    with_writer(|_| Ok(()))
}

/// Appends one line per `(address, len, name)` and flushes.
///
/// # Errors
///
/// [`Error::PerfMap`] when the file cannot be opened or written.
pub(crate) fn append<'a>(
    functions: impl Iterator<Item = (usize, usize, &'a str)>,
) -> Result<(), Error> {
    let mut text = String::new();
    for (address, len, name) in functions {
        push_line(&mut text, address, len, name);
    }
    with_writer(|file| {
        file.write_all(text.as_bytes())?;
        file.flush()
    })
}

/// Formats one perf-map line. Control characters would break the line
/// structure perf parses, so they become `?`; an empty name becomes
/// `jit_ADDRESS` so every line has three fields.
fn push_line(out: &mut String, address: usize, len: usize, name: &str) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{address:x} {len:x} ");
    if name.is_empty() {
        let _ = write!(out, "jit_{address:x}");
    } else {
        out.extend(name.chars().map(|c| if c.is_control() { '?' } else { c }));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_hex_start_size_and_name() {
        let mut text = String::new();
        push_line(&mut text, 0x7f00_1000, 0x64, "sum$f32");
        push_line(&mut text, 0x7f00_2000, 1, "");
        push_line(&mut text, 0x10, 0x20, "bad\nname\t");
        assert_eq!(
            text,
            "7f001000 64 sum$f32\n7f002000 1 jit_7f002000\n10 20 bad?name?\n"
        );
    }

    #[test]
    fn path_names_the_process() {
        assert_eq!(path_for(42), PathBuf::from("/tmp/perf-42.map"));
    }
}
