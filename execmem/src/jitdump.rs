//! The jitdump file of the Linux kernel's perf tool
//! (`tools/perf/Documentation/jitdump-specification.txt`): `jit-PID.dump`
//! in `$JITDUMPDIR` or the current directory, a header, then one
//! `JIT_CODE_LOAD` record per published function carrying its name,
//! address and bytes. The file's first page is mapped executable once, so
//! `perf record` sees an `mmap` event naming it; `perf inject --jit` then
//! finds the file and turns each record into a small ELF object that
//! `perf report` attributes samples to. Timestamps are `CLOCK_MONOTONIC`,
//! the clock `perf record -k 1` stamps samples with.
//!
//! One writer per process, as for the perf map: every allocator with the
//! jitdump enabled appends to one file behind one lock, each publication
//! with a single `write`. A forked child opens its own file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use crate::debug_object::{MACHINE, symbol_name};
use crate::error::Error;

/// Environment variable that enables the jitdump when set to `1` and the
/// configuration says [`Switch::Environment`](crate::Switch).
pub const JITDUMP_ENV: &str = "SMFJIT_JITDUMP";

/// The header's magic number, `JiTD` (written little-endian).
pub(crate) const MAGIC: u32 = 0x4A69_5444;
/// The specification's version.
pub(crate) const VERSION: u32 = 1;
/// Bytes of the file header.
pub(crate) const HEADER_SIZE: u32 = 40;
/// Record id of `JIT_CODE_LOAD`.
pub(crate) const JIT_CODE_LOAD: u32 = 0;

struct Writer {
    pid: u32,
    file: File,
    /// Unique index of the next function loaded (`code_index`).
    next_index: u64,
    /// The executable mapping of the file's first page perf records; kept
    /// until the process ends, when the file is complete.
    _marker: Marker,
}

/// An executable mapping of the jitdump file's first page: its only use
/// is the `mmap` event `perf record` writes for it.
struct Marker {
    address: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is never read or written through this pointer; it
// is only unmapped, once, by `drop`.
unsafe impl Send for Marker {}

impl Drop for Marker {
    fn drop(&mut self) {
        // SAFETY: `address` and `len` describe a mapping this value made
        // and nothing else refers to.
        unsafe { libc::munmap(self.address, self.len) };
    }
}

static WRITER: Mutex<Option<Writer>> = Mutex::new(None);

/// Path of this process's jitdump file: in `$JITDUMPDIR` when set, else
/// in the current directory.
#[must_use]
pub fn path() -> PathBuf {
    path_for(std::process::id())
}

fn path_for(pid: u32) -> PathBuf {
    let dir = std::env::var_os("JITDUMPDIR").map_or_else(PathBuf::new, PathBuf::from);
    dir.join(format!("jit-{pid}.dump"))
}

/// Nanoseconds of `CLOCK_MONOTONIC`.
fn timestamp() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid `timespec` to write; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

fn thread_id() -> u32 {
    // SAFETY: `gettid` has no preconditions.
    let tid = unsafe { libc::gettid() };
    u32::try_from(tid).unwrap_or(0)
}

/// The file header.
fn header(pid: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_SIZE as usize);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&HEADER_SIZE.to_le_bytes());
    out.extend_from_slice(&u32::from(MACHINE).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // pad1
    out.extend_from_slice(&pid.to_le_bytes());
    out.extend_from_slice(&timestamp().to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // flags
    out
}

/// Creates the file, writes its header and maps its first page.
fn create(pid: u32) -> io::Result<Writer> {
    let path = path_for(pid);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)?;
    file.write_all(&header(pid))?;
    let len = region::page::size();
    use std::os::fd::AsRawFd as _;
    // SAFETY: a fresh shared mapping of an open file; the result is
    // checked before use and never dereferenced.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(Writer {
        pid,
        file,
        next_index: 0,
        _marker: Marker { address, len },
    })
}

/// Runs `action` on this process's writer, creating the file first.
fn with_writer<T>(action: impl FnOnce(&mut Writer) -> io::Result<T>) -> Result<T, Error> {
    let mut guard = WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    let failed = |source| Error::Jitdump {
        path: path_for(pid),
        source,
    };
    let writer = match guard.take() {
        Some(writer) if writer.pid == pid => guard.insert(writer),
        _ => guard.insert(create(pid).map_err(failed)?),
    };
    action(writer).map_err(failed)
}

/// Creates this process's jitdump file if it does not exist yet.
///
/// # Errors
///
/// [`Error::Jitdump`] when the file cannot be created, written or mapped.
pub(crate) fn open() -> Result<(), Error> {
    with_writer(|_| Ok(()))
}

/// Appends one `JIT_CODE_LOAD` record per `(name, bytes)`; a function's
/// address is its bytes' address.
///
/// # Errors
///
/// [`Error::Jitdump`] when the file cannot be created or written.
pub(crate) fn append<'a>(
    functions: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), Error> {
    let pid = std::process::id();
    let tid = thread_id();
    with_writer(|writer| {
        let mut out = Vec::new();
        for (name, code) in functions {
            let index = writer.next_index;
            writer.next_index += 1;
            push_code_load(&mut out, pid, tid, index, name, code);
        }
        writer.file.write_all(&out)
    })
}

/// Formats one `JIT_CODE_LOAD` record: the record header (id, total size,
/// timestamp), pid, tid, vma, code address, code size, code index, the
/// NUL-terminated name (as [`symbol_name`] makes it) and the code's bytes.
fn push_code_load(out: &mut Vec<u8>, pid: u32, tid: u32, index: u64, name: &str, code: &[u8]) {
    let address = code.as_ptr() as u64;
    let name = symbol_name(name, code.as_ptr() as usize);
    // 16 bytes of record header, 8 of pid and tid, 32 of addresses, size
    // and index; names and code are bounded far below 4 GiB by the limits.
    let total = 16 + 8 + 32 + name.len() + 1 + code.len();
    out.extend_from_slice(&JIT_CODE_LOAD.to_le_bytes());
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&timestamp().to_le_bytes());
    out.extend_from_slice(&pid.to_le_bytes());
    out.extend_from_slice(&tid.to_le_bytes());
    out.extend_from_slice(&address.to_le_bytes()); // vma
    out.extend_from_slice(&address.to_le_bytes()); // code_addr
    out.extend_from_slice(&(code.len() as u64).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.extend_from_slice(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_forty_bytes_with_magic_version_and_machine() {
        let h = header(1234);
        assert_eq!(h.len(), HEADER_SIZE as usize);
        assert_eq!(&h[..4], b"DTiJ", "0x4A695444 little-endian");
        assert_eq!(h[4..8], 1u32.to_le_bytes());
        assert_eq!(h[8..12], 40u32.to_le_bytes());
        assert_eq!(h[12..16], u32::from(MACHINE).to_le_bytes());
        assert_eq!(h[20..24], 1234u32.to_le_bytes());
        assert_eq!(h[32..40], [0; 8]);
    }

    #[test]
    fn code_load_record_carries_name_and_bytes() {
        let code = [0xC3u8, 0x90];
        let mut out = Vec::new();
        push_code_load(&mut out, 7, 8, 3, "f$i32", &code);
        let address = (code.as_ptr() as u64).to_le_bytes();
        assert_eq!(out.len(), 56 + 6 + 2);
        assert_eq!(out[0..4], 0u32.to_le_bytes());
        assert_eq!(out[4..8], 64u32.to_le_bytes());
        assert_eq!(out[16..20], 7u32.to_le_bytes());
        assert_eq!(out[20..24], 8u32.to_le_bytes());
        assert_eq!(out[24..32], address);
        assert_eq!(out[32..40], address);
        assert_eq!(out[40..48], 2u64.to_le_bytes());
        assert_eq!(out[48..56], 3u64.to_le_bytes());
        assert_eq!(&out[56..62], b"f$i32\0");
        assert_eq!(out[62..], code);
    }

    #[test]
    fn path_names_the_process() {
        assert!(path_for(42).ends_with("jit-42.dump"));
    }
}
