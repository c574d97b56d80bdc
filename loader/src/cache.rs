//! The SMF cache: each file opened, validated and indexed once, then shared.
//!
//! A cached file is a [`SmfFile`]: the bytes (a read-only map, or a copy for
//! files below [`CacheConfig::read_threshold`]) and the validated
//! [`smf::Module`] view over them, held together so the view can travel
//! between threads behind an `Arc`.
//!
//! Every [`SmfCache::get`] compares the file's identity on disk (device,
//! inode, size, modification time) with the cached one, and the size of the
//! open file with the size that was validated. A file replaced by rename has
//! a new inode, so the old mapping stays valid for whoever holds it and the
//! new file is read; a file rewritten in place changes size or mtime and is
//! read again; a deleted file is an error and leaves the cache.
//!
//! The remaining hazard is a *mapped* file truncated in place: touching a
//! mapped page past the new end of file raises `SIGBUS`. The cache narrows
//! it in three ways: small files are copied, never mapped; identity is
//! checked on every `get`, before any use; and the loader copies what it
//! needs out of a module (code, data, the note, the template code and
//! template symbols) while loading it, so a loaded module never touches the
//! map again. A truncation
//! that lands in the instant between a check and a read of a mapped page
//! stays possible; whoever rewrites module files in place must not do so
//! while they are being loaded (rename a new file over the old one instead).
//!
//! The contents of compressed sections are not in the map at all: the
//! module view decompresses them while validating and owns them, so the
//! `Arc<SmfFile>` a loaded module holds keeps them alive with it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::limits;
use crate::prefetch::{self, Advice};

/// Limits and policy of an [`SmfCache`].
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Files kept before the least recently used is evicted (at least 1).
    pub max_files: usize,
    /// Bytes of files kept before eviction, counting the decompressed
    /// contents a file with compressed sections holds
    /// ([`SmfFile::held_len`]). A single file larger than this is still
    /// returned, then evicted when the next file comes in.
    pub max_bytes: u64,
    /// Files of at most this many bytes are read into memory instead of
    /// mapped (0 maps every non-empty file).
    pub read_threshold: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            max_files: limits::DEFAULT_MAX_FILES,
            max_bytes: limits::DEFAULT_MAX_BYTES,
            read_threshold: limits::DEFAULT_READ_THRESHOLD,
        }
    }
}

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    /// Device number.
    pub device: u64,
    /// Inode number.
    pub inode: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: i64,
}

impl FileIdentity {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            mtime: metadata.mtime(),
            mtime_nsec: metadata.mtime_nsec(),
        }
    }

    /// The identity of the file at `path` now.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be inspected (deleted, a directory
    /// in the path no longer searchable).
    pub fn current(path: &Path) -> Result<Self> {
        std::fs::metadata(path)
            .map(|m| Self::of(&m))
            .map_err(|e| Error::io("inspect", path, e))
    }
}

/// Where a cached file's bytes live.
#[derive(Debug)]
pub enum Backing {
    /// A read-only shared map of the file.
    Mapped(Mmap),
    /// A private copy, for small files.
    Read(Box<[u8]>),
}

impl std::ops::Deref for Backing {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Mapped(map) => map,
            Self::Read(bytes) => bytes,
        }
    }
}

self_cell::self_cell!(
    /// The bytes of a file and the validated module view over them.
    struct Parsed {
        owner: Backing,
        #[covariant]
        dependent: Module,
    }
    impl {Debug}
);

/// `smf::Module` with the lifetime `self_cell` ties to the owner.
type Module<'a> = smf::Module<'a>;

/// One validated SMF file, shared by everyone who asked for it.
#[derive(Debug)]
pub struct SmfFile {
    path: PathBuf,
    identity: FileIdentity,
    /// Kept open so its size can be checked against the validated size
    /// without a path lookup racing a rename.
    file: File,
    parsed: Parsed,
}

impl SmfFile {
    /// Opens, reads or maps, and validates `path`.
    fn open(path: &Path, read_threshold: u64) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let before = file
            .metadata()
            .map(|m| FileIdentity::of(&m))
            .map_err(|e| Error::io("inspect", path, e))?;
        let backing = if before.size <= read_threshold || before.size == 0 {
            let capacity = usize::try_from(before.size).unwrap_or(0);
            let mut bytes = Vec::with_capacity(capacity);
            file.read_to_end(&mut bytes)
                .map_err(|e| Error::io("read", path, e))?;
            Backing::Read(bytes.into_boxed_slice())
        } else {
            // SAFETY: the map is read-only and private to this process's view;
            // its bytes may change or vanish if another process rewrites or
            // truncates the file in place. Changes are detected through the
            // identity checks below and on every `SmfCache::get`; the module
            // docs describe the window left for a truncation racing a read.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io("map", path, e))?;
            Backing::Mapped(map)
        };
        let after = file
            .metadata()
            .map(|m| FileIdentity::of(&m))
            .map_err(|e| Error::io("inspect", path, e))?;
        if after != before || backing.len() as u64 != before.size {
            return Err(Error::ChangedWhileReading {
                path: path.to_path_buf(),
            });
        }
        let parsed =
            Parsed::try_new(backing, |bytes| smf::Module::parse(bytes)).map_err(|source| {
                Error::InvalidModule {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            identity: before,
            file,
            parsed,
        })
    }

    /// The path the file was opened by.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The identity of the version that was validated.
    #[must_use]
    pub fn identity(&self) -> FileIdentity {
        self.identity
    }

    /// The validated module.
    #[must_use]
    pub fn module(&self) -> &smf::Module<'_> {
        self.parsed.borrow_dependent()
    }

    /// The whole file's bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.parsed.borrow_owner()
    }

    /// Whether the bytes are a map of the file (rather than a copy).
    #[must_use]
    pub fn is_mapped(&self) -> bool {
        matches!(self.parsed.borrow_owner(), Backing::Mapped(_))
    }

    /// Bytes held (the file's size).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.identity.size
    }

    /// The bytes the cache counts for this file against
    /// [`CacheConfig::max_bytes`]: the file's, and the decompressed
    /// contents of its compressed sections, which it holds too (a small
    /// file may decompress to many times its size).
    #[must_use]
    pub fn held_len(&self) -> u64 {
        self.len() + self.module().decompressed_len()
    }

    /// Whether the file is empty (never true for a valid module).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.identity.size == 0
    }

    /// Whether the open file still has the size that was validated and the
    /// path still names the same version. A copy is always safe to read; a
    /// map is safe to read while this holds.
    #[must_use]
    pub fn is_current(&self) -> bool {
        let open_size = self.file.metadata().map(|m| m.size()).ok();
        open_size == Some(self.identity.size)
            && FileIdentity::current(&self.path).ok() == Some(self.identity)
    }

    /// The validated version's bytes, owned: a map is not read but the
    /// open file is, so a truncation in place shortens the read (an error)
    /// where reading the map would fault. A file read into memory when it
    /// was opened is returned as it is.
    ///
    /// # Errors
    /// [`Error::ChangedWhileReading`] when the open file is not the
    /// validated version before or after the read (other size or
    /// modification time), or is shorter; [`Error::Io`] when it cannot be
    /// inspected or read.
    pub fn read_copy(&self) -> Result<Cow<'_, [u8]>> {
        let Backing::Mapped(_) = self.parsed.borrow_owner() else {
            return Ok(Cow::Borrowed(self.bytes()));
        };
        let changed = || Error::ChangedWhileReading {
            path: self.path.clone(),
        };
        let unchanged = || {
            self.file
                .metadata()
                .map(|m| FileIdentity::of(&m) == self.identity)
                .map_err(|e| Error::io("inspect", &self.path, e))
        };
        let len = usize::try_from(self.identity.size).map_err(|_| changed())?;
        if !unchanged()? {
            return Err(changed());
        }
        let mut bytes = vec![0; len];
        self.file
            .read_exact_at(&mut bytes, 0)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => changed(),
                _ => Error::io("read", &self.path, e),
            })?;
        if !unchanged()? {
            return Err(changed());
        }
        Ok(Cow::Owned(bytes))
    }
}

/// Counters of an [`SmfCache`], a consistent snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to open the file (first use, or changed on disk).
    pub misses: u64,
    /// Lookups that found the cached version stale and read the file again.
    pub reloads: u64,
    /// Entries evicted for the file or byte limits.
    pub evictions: u64,
    /// Files opened by mapping since creation.
    pub files_mapped: u64,
    /// Files opened by reading since creation.
    pub files_read: u64,
    /// Bytes mapped since creation.
    pub bytes_mapped: u64,
    /// Bytes read since creation.
    pub bytes_read: u64,
    /// Files held now.
    pub files: usize,
    /// Bytes held now.
    pub bytes: u64,
}

struct Entry {
    file: Arc<SmfFile>,
    last_used: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<PathBuf, Entry>,
    tick: u64,
    bytes: u64,
    stats: CacheStats,
}

impl State {
    fn remove(&mut self, path: &Path) {
        if let Some(old) = self.entries.remove(path) {
            self.bytes = self.bytes.saturating_sub(old.file.held_len());
        }
    }

    /// Evicts least recently used entries until the limits hold, keeping
    /// `keep` (the entry just inserted).
    fn evict(&mut self, config: &CacheConfig, keep: &Path) {
        while self.entries.len() > config.max_files.max(1)
            || (self.bytes > config.max_bytes && self.entries.len() > 1)
        {
            let victim = self
                .entries
                .iter()
                .filter(|(path, _)| path.as_path() != keep)
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(path, _)| path.clone());
            let Some(victim) = victim else { break };
            self.remove(&victim);
            self.stats.evictions += 1;
        }
    }
}

/// A cache of validated SMF files keyed by path, shared by threads.
///
/// The cache's lock is held only to look up and insert entries; opening and
/// validating a file happens outside it.
pub struct SmfCache {
    config: CacheConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for SmfCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmfCache")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for SmfCache {
    fn default() -> Self {
        Self::new(CacheConfig::default())
    }
}

impl SmfCache {
    /// An empty cache.
    #[must_use]
    pub fn new(config: CacheConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::default()),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent between statements, so a panic elsewhere
        // while holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The validated file at `path`: the cached version when the file on
    /// disk is still the same, otherwise the file read and validated again.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be inspected, opened, read or
    /// mapped (a deleted file also leaves the cache);
    /// [`Error::ChangedWhileReading`]; [`Error::InvalidModule`] when the
    /// bytes are not a valid SMF module.
    pub fn get(&self, path: &Path) -> Result<Arc<SmfFile>> {
        let identity = match FileIdentity::current(path) {
            Ok(identity) => identity,
            Err(error) => {
                self.lock().remove(path);
                return Err(error);
            }
        };
        let stale = {
            let mut state = self.lock();
            state.tick += 1;
            let tick = state.tick;
            match state.entries.get_mut(path) {
                Some(entry) if entry.file.identity == identity && entry.file.is_current() => {
                    entry.last_used = tick;
                    let file = Arc::clone(&entry.file);
                    state.stats.hits += 1;
                    return Ok(file);
                }
                Some(_) => true,
                None => false,
            }
        };
        let opened = SmfFile::open(path, self.config.read_threshold);
        let mut state = self.lock();
        state.stats.misses += 1;
        if stale {
            state.stats.reloads += 1;
        }
        let file = match opened {
            Ok(file) => Arc::new(file),
            Err(error) => {
                state.remove(path);
                return Err(error);
            }
        };
        if file.is_mapped() {
            state.stats.files_mapped += 1;
            state.stats.bytes_mapped += file.len();
        } else {
            state.stats.files_read += 1;
            state.stats.bytes_read += file.len();
        }
        state.remove(path);
        state.tick += 1;
        let last_used = state.tick;
        state.bytes += file.held_len();
        state.entries.insert(
            path.to_path_buf(),
            Entry {
                file: Arc::clone(&file),
                last_used,
            },
        );
        state.evict(&self.config, path);
        Ok(file)
    }

    /// Brings every path into the cache, returning each path's outcome in
    /// order (as [`SmfCache::get`] would). The kernel is first asked to
    /// read ahead what each file's `prefetch_hint` names, for every file
    /// before any is read ([`SmfCache::advise`]); then the files are opened,
    /// read or mapped and validated on up to [`limits::PREFETCH_THREADS`]
    /// threads. See `prefetch.rs`.
    pub fn prefetch<P: AsRef<Path> + Sync>(&self, paths: &[P]) -> Vec<Result<Arc<SmfFile>>> {
        // A file that cannot be advised is reported by `get`.
        let _ = prefetch::advise(paths);
        // `in_parallel` asks only for indices below the count.
        prefetch::in_parallel(paths.len(), |index| self.get(paths[index].as_ref()))
    }

    /// Asks the kernel to start reading each file ahead, as far as its
    /// header's `prefetch_hint` says ([`PrefetchHint`](crate::PrefetchHint)), without waiting for
    /// the reads and without bringing the files into the cache; returns what
    /// was advised for each path, in order. The header pages of every file
    /// are advised before any header is read.
    ///
    /// # Errors
    /// Per path, [`Error::Io`] when the file cannot be opened, inspected or
    /// its header read.
    pub fn advise<P: AsRef<Path>>(&self, paths: &[P]) -> Vec<Result<Advice>> {
        prefetch::advise(paths)
    }

    /// Drops the entry for `path`, if any (holders keep their `Arc`).
    pub fn forget(&self, path: &Path) {
        self.lock().remove(path);
    }

    /// Whether `path` is cached (whatever its state on disk).
    #[must_use]
    pub fn contains(&self, path: &Path) -> bool {
        self.lock().entries.contains_key(path)
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            files: state.entries.len(),
            bytes: state.bytes,
            ..state.stats
        }
    }
}
