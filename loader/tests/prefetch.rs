//! Prefetching: the kernel is advised before anything reads a file, as far
//! as the header's `prefetch_hint` asks, and a batch is opened and
//! validated on several threads.

// The residency checks map the files and ask `mincore` about the pages.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loader::{Advice, CacheConfig, Error, PrefetchHint, SmfCache};
use smf::{ModuleBuilder, SectionType, SymbolDef};

const PAGE: u64 = 4096;

/// A module with a `code_bytes`-byte code section and `hint` in its header.
fn module_with_hint(code_bytes: usize, hint: u8) -> Vec<u8> {
    let mut b = ModuleBuilder::new();
    let text = b
        .add_section(SectionType::Code, ".text", 0x5, 16, &vec![0xC3; code_bytes])
        .unwrap();
    b.add_symbol(SymbolDef::function("f", text, 0, 1)).unwrap();
    b.prefetch(hint, 0);
    b.build().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Where the section table starts (the SMF base is 0 for these files).
fn tables_start(bytes: &[u8]) -> u64 {
    smf::Module::parse(bytes)
        .unwrap()
        .header()
        .section_table_offset
}

fn cache() -> SmfCache {
    // Every file mapped, as large modules are.
    SmfCache::new(CacheConfig {
        read_threshold: 0,
        ..CacheConfig::default()
    })
}

#[test]
fn each_hint_names_the_range_advised() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    let mut expected = Vec::new();
    for (hint, meaning) in [
        (0, PrefetchHint::Default),
        (1, PrefetchHint::Whole),
        (2, PrefetchHint::Tables),
        (3, PrefetchHint::Nothing),
        // Codes this version does not define read as the default.
        (4, PrefetchHint::Default),
        (255, PrefetchHint::Default),
    ] {
        let bytes = module_with_hint(10_000, hint);
        let len = bytes.len() as u64;
        let range = match meaning {
            PrefetchHint::Default | PrefetchHint::Whole => Some(0..len),
            PrefetchHint::Tables => Some(tables_start(&bytes)..len),
            PrefetchHint::Nothing => None,
        };
        assert_eq!(PrefetchHint::from_code(hint), meaning);
        paths.push(write(dir.path(), &format!("hint{hint}.smf"), &bytes));
        expected.push(Advice {
            hint: meaning,
            range,
        });
    }
    let advised: Vec<Advice> = cache()
        .advise(&paths)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(advised, expected);
    for hint in [
        PrefetchHint::Default,
        PrefetchHint::Whole,
        PrefetchHint::Tables,
        PrefetchHint::Nothing,
    ] {
        assert_eq!(PrefetchHint::from_code(hint.code()), hint);
    }
}

#[test]
fn files_that_are_no_modules_are_advised_whole_and_missing_ones_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // 127, 128 and 129 bytes around the header's size, none a module.
    let short = write(dir.path(), "short", &[7; 127]);
    let exact = write(dir.path(), "exact", &[7; 128]);
    let longer = write(dir.path(), "longer", &[7; 129]);
    // A header whose table offset lies past the end: the whole file.
    let mut bytes = module_with_hint(100, 2);
    let at = bytes.len() - 128 + 24;
    bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let wild = write(dir.path(), "wild", &bytes);
    let missing = dir.path().join("missing");
    let advised = cache().advise(&[&short, &exact, &longer, &wild, &missing]);
    let whole = |n: u64, hint| Advice {
        hint,
        range: Some(0..n),
    };
    assert_eq!(
        advised[0].as_ref().unwrap(),
        &whole(127, PrefetchHint::Default)
    );
    assert_eq!(
        advised[1].as_ref().unwrap(),
        &whole(128, PrefetchHint::Default)
    );
    assert_eq!(
        advised[2].as_ref().unwrap(),
        &whole(129, PrefetchHint::Default)
    );
    assert_eq!(
        advised[3].as_ref().unwrap(),
        &whole(bytes.len() as u64, PrefetchHint::Tables)
    );
    match &advised[4] {
        Err(Error::Io { action, path, .. }) => {
            assert_eq!((*action, path), ("open", &missing));
        }
        other => panic!("expected an open error, got {other:?}"),
    }
}

/// Pages of `path` in the page cache, one flag per page.
fn resident(path: &Path) -> Vec<bool> {
    let file = File::open(path).unwrap();
    // SAFETY: the map is only handed to mincore, never read.
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    let pages = map.len().div_ceil(PAGE as usize);
    let mut flags = vec![0u8; pages];
    // SAFETY: `map` is a live mapping of `map.len()` bytes and `flags` has
    // one byte per page of it.
    let failed = unsafe { libc::mincore(map.as_ptr() as *mut _, map.len(), flags.as_mut_ptr()) };
    assert_eq!(failed, 0, "mincore");
    flags.iter().map(|f| f & 1 == 1).collect()
}

/// Drops `path`'s pages from the page cache (written back first); false
/// where the file system keeps them (tmpfs), where residency says nothing.
fn evict(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let file = File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: posix_fadvise touches no memory of this process.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    !resident(path).iter().any(|&r| r)
}

/// Waits (up to 10 s) until `done` holds for the residency of `path`.
fn wait_for(path: &Path, done: impl Fn(&[bool]) -> bool) -> Vec<bool> {
    let start = Instant::now();
    loop {
        let pages = resident(path);
        if done(&pages) || start.elapsed() > Duration::from_secs(10) {
            return pages;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn advice_brings_in_what_the_hint_names_before_anything_reads_the_file() {
    // In the build's own directory, on a disk: `/tmp` may be a tmpfs,
    // which keeps every page and so cannot show what advice brings in.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let size = 2 << 20;
    let whole = write(dir.path(), "whole.smf", &module_with_hint(size, 1));
    let tables_bytes = module_with_hint(size, 2);
    let tables = write(dir.path(), "tables.smf", &tables_bytes);
    let nothing = write(dir.path(), "nothing.smf", &module_with_hint(size, 3));
    assert!(
        [&whole, &tables, &nothing].iter().all(|p| evict(p)),
        "the pages of files under {} cannot be evicted (a tmpfs?): this test needs a \
         file system that reads files from a device",
        dir.path().display()
    );
    let cache = cache();
    cache.advise(&[&whole, &tables, &nothing]);
    let pages = wait_for(&whole, |pages| pages.iter().all(|&r| r));
    assert!(pages.iter().all(|&r| r), "the whole file was read ahead");

    let first_table_page = (tables_start(&tables_bytes) / PAGE) as usize;
    let pages = wait_for(&tables, |pages| {
        pages[first_table_page..].iter().all(|&r| r)
    });
    assert!(pages[first_table_page..].iter().all(|&r| r), "the tables");
    // The code's first pages are not asked for (the kernel's own read-around
    // may take a few pages before the tables, never the start of the file).
    assert!(!pages[..16].iter().any(|&r| r), "not the code");

    std::thread::sleep(Duration::from_millis(50));
    let pages = resident(&nothing);
    let read = pages.iter().filter(|&&r| r).count();
    assert!(
        !pages[..16].iter().any(|&r| r) && read <= 32,
        "only the header was read: {read} of {} pages",
        pages.len()
    );

    // Prefetching then validates them; the pages the hint left out are
    // read by validation itself (the module hash covers every byte).
    let fetched = cache.prefetch(&[&whole, &tables, &nothing]);
    assert!(fetched.iter().all(|f| f.as_ref().unwrap().is_mapped()));
    assert_eq!(cache.stats().files_mapped, 3);
}

#[test]
fn prefetch_returns_each_path_in_order_whatever_thread_opened_it() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..20)
        .map(|i| {
            write(
                dir.path(),
                &format!("m{i}.smf"),
                &module_with_hint(1000 + i, 0),
            )
        })
        .collect();
    let mut asked: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let missing = dir.path().join("missing.smf");
    asked.insert(7, &missing);
    let cache = cache();
    let fetched = cache.prefetch(&asked);
    assert_eq!(fetched.len(), 21);
    for (path, result) in asked.iter().zip(&fetched) {
        match result {
            Ok(file) => assert_eq!(file.path(), *path),
            Err(Error::Io { path: failed, .. }) => assert_eq!(failed, &missing),
            Err(other) => panic!("{other}"),
        }
    }
    assert!(fetched[7].is_err());
    let stats = cache.stats();
    assert_eq!(
        (stats.files, stats.files_mapped, stats.misses),
        (20, 20, 20)
    );
    // Fetched files are hits afterwards.
    assert!(std::sync::Arc::ptr_eq(
        fetched[0].as_ref().unwrap(),
        &cache.get(&paths[0]).unwrap()
    ));
    assert_eq!(cache.stats().hits, 1);
    assert!(cache.prefetch::<&Path>(&[]).is_empty());
}

#[test]
fn a_file_that_blocks_its_opener_does_not_hold_up_the_rest_of_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    // Opening a FIFO for reading waits for a writer: the batch's first
    // path blocks whichever thread takes it until this test writes.
    let fifo = dir.path().join("fifo");
    let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `name` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let others: Vec<PathBuf> = (0..5)
        .map(|i| write(dir.path(), &format!("m{i}.smf"), &module_with_hint(100, 0)))
        .collect();
    let mut asked = vec![fifo.clone()];
    asked.extend(others.iter().cloned());
    let cache = cache();
    std::thread::scope(|scope| {
        let fetching = scope.spawn(|| cache.prefetch(&asked));
        let start = Instant::now();
        while !others.iter().all(|p| cache.contains(p)) && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let all_in = others.iter().all(|p| cache.contains(p));
        // Unblock the FIFO's reader either way, so the test cannot hang.
        drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
        let fetched = fetching.join().unwrap();
        assert!(
            all_in,
            "the other files were fetched while the FIFO blocked"
        );
        assert!(fetched[0].is_err(), "a FIFO is no module");
        assert!(fetched[1..].iter().all(Result::is_ok));
    });
}
