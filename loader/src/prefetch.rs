//! Prefetching a batch of module files ([`SmfCache::prefetch`]): the kernel
//! is asked to read each file ahead before anything reads it, then the
//! files are opened, read or mapped, and validated in parallel.
//!
//! For a batch, in this order:
//! 1. each file is opened and the page holding its header (the last 128
//!    bytes) is advised will-need, so the reads of every header are queued
//!    together;
//! 2. each header is read and the range its `prefetch_hint` names
//!    ([`PrefetchHint`]) is advised, so the reads of the files' bodies are
//!    queued together;
//! 3. up to [`PREFETCH_THREADS`] threads (the caller's among them) take the
//!    files through [`SmfCache::get`], whose reads find pages on their way
//!    into the page cache or already there.
//!
//! The advice is `posix_fadvise(POSIX_FADV_WILLNEED)` on the descriptor
//! rather than `madvise` on a mapping: it works as well for the small files
//! the cache reads instead of mapping, and needs no mapping made before the
//! cache makes its own. Advice is a hint: a kernel that ignores it, or a
//! file that cannot be opened, changes nothing but the time `get` takes
//! (and `get` reports the error).
//!
//! [`SmfCache::prefetch`]: crate::SmfCache::prefetch
//! [`SmfCache::get`]: crate::SmfCache::get
//! [`PREFETCH_THREADS`]: crate::limits::PREFETCH_THREADS

use std::fs::File;
use std::mem::offset_of;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use smf::limits::HEADER_SIZE;
use smf::raw::{MAGIC, RawHeader};

use crate::error::{Error, Result};
use crate::limits::PREFETCH_THREADS;

/// What a module asks a prefetch to read ahead: the header's
/// `prefetch_hint` byte (`doc/formats/smf.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrefetchHint {
    /// 0, and every code this version does not define: no preference; the
    /// loader reads the whole file ahead, which is what loading it reads
    /// (validation hashes every byte when `module_hash` is recorded).
    #[default]
    Default,
    /// 1: the whole file.
    Whole,
    /// 2: the tables only — the section, symbol and string tables and the
    /// header — for a module whose sections are large and mostly not used
    /// (debug information, templates few of which are instantiated).
    Tables,
    /// 3: nothing; the file is read when it is used.
    Nothing,
}

impl PrefetchHint {
    /// The hint a header's `prefetch_hint` byte gives; codes this version
    /// does not define are read as [`PrefetchHint::Default`].
    #[must_use]
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Whole,
            2 => Self::Tables,
            3 => Self::Nothing,
            _ => Self::Default,
        }
    }

    /// The byte a writer records for this hint.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Default => 0,
            Self::Whole => 1,
            Self::Tables => 2,
            Self::Nothing => 3,
        }
    }
}

/// What [`SmfCache::advise`](crate::SmfCache::advise) asked the kernel to
/// read ahead in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advice {
    /// The file's hint ([`PrefetchHint::Default`] when it does not end in
    /// an SMF header).
    pub hint: PrefetchHint,
    /// The bytes advised, as file offsets; `None` when the hint asks for
    /// nothing.
    pub range: Option<Range<u64>>,
}

/// A file opened for advice, its header's page advised.
struct Opened {
    file: File,
    len: u64,
}

/// Asks the kernel to read ahead what each file's hint names (steps 1 and
/// 2 of the module documentation), returning each path's advice in order.
pub(crate) fn advise<P: AsRef<Path>>(paths: &[P]) -> Vec<Result<Advice>> {
    let opened: Vec<Result<Opened>> = paths
        .iter()
        .map(|path| open_and_advise_header(path.as_ref()))
        .collect();
    opened
        .into_iter()
        .zip(paths)
        .map(|(opened, path)| advise_body(&opened?, path.as_ref()))
        .collect()
}

fn open_and_advise_header(path: &Path) -> Result<Opened> {
    // Non-blocking, so that a FIFO or a device among the paths cannot hold
    // up the advice for the others (a regular file ignores the flag).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("inspect", path, e))?
        .len();
    will_need(&file, len.saturating_sub(HEADER_SIZE as u64)..len);
    Ok(Opened { file, len })
}

fn advise_body(opened: &Opened, path: &Path) -> Result<Advice> {
    let Opened { file, len } = opened;
    let whole = 0..*len;
    let Some(at) = len.checked_sub(HEADER_SIZE as u64) else {
        // Too short to be a module: `get` will say so.
        return Ok(advised(file, PrefetchHint::Default, Some(whole)));
    };
    let mut header = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut header, at)
        .map_err(|e| Error::io("read", path, e))?;
    if header.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Ok(advised(file, PrefetchHint::Default, Some(whole)));
    }
    let hint = PrefetchHint::from_code(byte(&header, offset_of!(RawHeader, prefetch_hint)));
    let range = match hint {
        PrefetchHint::Default | PrefetchHint::Whole => Some(whole),
        // Unvalidated values: a table offset that makes no sense falls back
        // to the whole file, which `get` then rejects.
        PrefetchHint::Tables => Some(tables(&header, *len).unwrap_or(whole)),
        PrefetchHint::Nothing => None,
    };
    Ok(advised(file, hint, range))
}

/// Advises `range` (if any) and says so.
fn advised(file: &File, hint: PrefetchHint, range: Option<Range<u64>>) -> Advice {
    if let Some(range) = &range {
        will_need(file, range.clone());
    }
    Advice { hint, range }
}

/// From the section table to the end of the file, by the header's
/// unvalidated fields: the SMF base (BRIEF §3: length − `smf_size`, or
/// `smf_data_offset`) plus `section_table_offset`.
fn tables(header: &[u8], len: u64) -> Option<Range<u64>> {
    let smf_size = u64_at(header, offset_of!(RawHeader, smf_size))?;
    let base = if smf_size == 0 {
        u64::from(u32_at(header, offset_of!(RawHeader, smf_data_offset))?)
    } else {
        len.checked_sub(smf_size)?
    };
    let start = base.checked_add(u64_at(header, offset_of!(RawHeader, section_table_offset))?)?;
    (start < len).then_some(start..len)
}

fn byte(header: &[u8], at: usize) -> u8 {
    header.get(at).copied().unwrap_or(0)
}

fn u32_at(header: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(header.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(header: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(header.get(at..at + 8)?.try_into().ok()?))
}

/// Asks the kernel to start reading `range` of `file` into the page cache.
fn will_need(file: &File, range: Range<u64>) {
    let (Ok(offset), Ok(len)) = (
        libc::off_t::try_from(range.start),
        libc::off_t::try_from(range.end.saturating_sub(range.start)),
    ) else {
        return;
    };
    // Advice is a hint: a refusal (a file system without a page cache)
    // changes nothing but the time the reads take.
    // SAFETY: posix_fadvise reads and writes no memory of this process; the
    // descriptor stays open while `file` is borrowed.
    let _ =
        unsafe { libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED) };
}

/// `work(0)`, …, `work(count − 1)` on up to [`PREFETCH_THREADS`] threads,
/// the caller's among them, each taking the next index when it is free;
/// the results in index order. A thread that cannot be started leaves its
/// share to the others.
pub(crate) fn in_parallel<T: Send>(count: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= count {
                return done;
            }
            done.push((index, work(index)));
        }
    };
    let helpers = count.min(PREFETCH_THREADS).saturating_sub(1);
    let mut results: Vec<(usize, T)> = std::thread::scope(|scope| {
        let started: Vec<_> = (0..helpers)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("smfjit-prefetch".to_owned())
                    .spawn_scoped(scope, worker)
                    .ok()
            })
            .collect();
        let mut results = worker();
        for helper in started {
            match helper.join() {
                Ok(done) => results.extend(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    results.sort_unstable_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}
