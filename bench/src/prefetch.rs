//! Prefetching a batch of modules (`SmfCache::prefetch`: read-ahead advice
//! for every file before any is read, then the files fetched on several
//! threads) against getting the same files one by one.
//!
//! Each sample writes 20 new module files, syncs them and evicts their
//! pages from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)` on each
//! file, which needs no privilege and leaves the rest of the machine's
//! cache alone, unlike `/proc/sys/vm/drop_caches`); a row says how many of
//! their pages were still cached when the clock started, over all samples
//! (0 when the eviction worked). The two ways alternate, each on files of its own. A
//! second row does the same with the files left in the page cache, which
//! leaves only the parallel validation.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loader::{CacheConfig, SmfCache};
use smf::{ModuleBuilder, SectionType, SymbolDef};

use crate::harness::{Report, Row, Stats, fmt_duration};

/// Files in a batch.
const FILES: usize = 20;
/// Bytes of each file's code section: a mid-sized library, above the
/// cache's read threshold, so each file is mapped.
const CODE_BYTES: usize = 512 << 10;
/// Samples of each way, cold and warm.
const SAMPLES: usize = 15;

/// A module with `CODE_BYTES` of code (varied by `seed`, so no two files
/// share pages anywhere) and a recorded module hash, which validation
/// checks over every byte.
fn module(seed: usize) -> Vec<u8> {
    let code: Vec<u8> = (0..CODE_BYTES)
        .map(|i| (i.wrapping_mul(31) ^ seed) as u8)
        .collect();
    let mut b = ModuleBuilder::new();
    let text = b
        .add_section(SectionType::Code, ".text", 5, 16, &code)
        .expect("section");
    b.add_symbol(SymbolDef::function("f", text, 0, 16))
        .expect("symbol");
    b.build().expect("module builds")
}

/// Writes a fresh batch into `dir`, synced and (with `evict`) dropped from
/// the page cache; returns the paths.
fn write_batch(dir: &Path, sample: usize, evict: bool) -> Vec<PathBuf> {
    (0..FILES)
        .map(|i| {
            let path = dir.join(format!("s{sample}-{i}.smf"));
            std::fs::write(&path, module(sample * FILES + i)).expect("write module");
            let file = File::open(&path).expect("open module");
            file.sync_all().expect("sync module");
            if evict {
                // SAFETY: posix_fadvise touches no memory of this process.
                unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            }
            path
        })
        .collect()
}

/// Pages of the files at `paths` now in the page cache.
fn cached_pages(paths: &[PathBuf]) -> usize {
    paths
        .iter()
        .map(|path| {
            let file = File::open(path).expect("open module");
            // SAFETY: the map is only handed to mincore, never read.
            let map = unsafe { memmap2::Mmap::map(&file) }.expect("map module");
            let mut flags = vec![0u8; map.len().div_ceil(4096)];
            // SAFETY: a live mapping of `map.len()` bytes, one flag byte per page.
            let failed =
                unsafe { libc::mincore(map.as_ptr() as *mut _, map.len(), flags.as_mut_ptr()) };
            assert_eq!(failed, 0, "mincore");
            flags.iter().filter(|f| *f & 1 == 1).count()
        })
        .sum()
}

fn cache() -> SmfCache {
    SmfCache::new(CacheConfig::default())
}

/// Gets every file of the batch, one after the other, into a new cache.
fn one_by_one(paths: &[PathBuf]) -> usize {
    let cache = cache();
    paths
        .iter()
        .map(|p| cache.get(p).expect("valid module").len() as usize)
        .sum()
}

/// Prefetches the batch into a new cache, then gets every file.
fn prefetched(paths: &[PathBuf]) -> usize {
    let cache = cache();
    for fetched in cache.prefetch(paths) {
        fetched.expect("valid module");
    }
    paths
        .iter()
        .map(|p| cache.get(p).expect("valid module").len() as usize)
        .sum()
}

/// One way of bringing a batch in.
type Way = fn(&[PathBuf]) -> usize;

/// Times both ways over `SAMPLES` fresh batches each; returns their
/// statistics and the pages found cached before the clock started.
fn compare(dir: &Path, evict: bool) -> (Stats, Stats, usize) {
    let ways: [Way; 2] = [prefetched, one_by_one];
    let mut times: [Vec<Duration>; 2] = Default::default();
    let mut still_cached = 0;
    for sample in 0..SAMPLES {
        for k in 0..ways.len() {
            // Alternate which way goes first.
            let way = (sample + k) % ways.len();
            let paths = write_batch(dir, sample * 2 + k, evict);
            if evict {
                still_cached += cached_pages(&paths);
            }
            let start = Instant::now();
            std::hint::black_box(ways[way](&paths));
            times[way].push(start.elapsed());
            for path in &paths {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let [prefetch, plain] = times;
    (Stats::of(prefetch), Stats::of(plain), still_cached)
}

/// Adds the prefetch rows to the loader area.
pub fn run(report: &mut Report) {
    let dir = std::env::temp_dir().join(format!("smfjit-bench-prefetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cold_prefetch, cold_plain, still_cached) = compare(&dir, true);
    let (warm_prefetch, warm_plain, _) = compare(&dir, false);
    let _ = std::fs::remove_dir_all(&dir);
    let speedup = |ours: &Stats, theirs: &Stats| theirs.median_ns() / ours.median_ns();
    report.row(
        Row::new(
            "loader",
            format!("prefetch+get 20×{} KiB files, evicted", CODE_BYTES >> 10),
            fmt_duration(cold_prefetch.median),
        )
        .baseline(format!("get {}", fmt_duration(cold_plain.median)))
        .ratio(format!(
            "{:.2}× faster",
            speedup(&cold_prefetch, &cold_plain)
        )),
    );
    report.row(
        Row::new(
            "loader",
            format!("  p99; pages cached when timed: {still_cached}"),
            fmt_duration(cold_prefetch.p99),
        )
        .baseline(fmt_duration(cold_plain.p99)),
    );
    report.row(
        Row::new(
            "loader",
            "  same, files in the page cache",
            fmt_duration(warm_prefetch.median),
        )
        .baseline(format!("get {}", fmt_duration(warm_plain.median)))
        .ratio(format!(
            "{:.2}× faster",
            speedup(&warm_prefetch, &warm_plain)
        )),
    );
}
