//! The SMF cache: statistics, the read/map threshold, eviction, and files
//! that change, shrink, vanish or turn unreadable while cached.

// These tests call the code the loader placed and read memory it mapped.
#![allow(unsafe_code)]

mod common;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use common::{Spec, returns};
use loader::{CacheConfig, Error, Loader, LoaderConfig, SmfCache};

fn module(value: i32) -> Vec<u8> {
    Spec::new().function("f", returns(value)).build()
}

fn cache(read_threshold: u64) -> SmfCache {
    SmfCache::new(CacheConfig {
        read_threshold,
        ..CacheConfig::default()
    })
}

/// A directory holding `m.smf` (returning 1), a cache with the given read
/// threshold, and the cached file.
fn cached_module_1(
    read_threshold: u64,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    SmfCache,
    Arc<loader::SmfFile>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.smf");
    std::fs::write(&path, module(1)).unwrap();
    let cache = cache(read_threshold);
    let file = cache.get(&path).unwrap();
    (dir, path, cache, file)
}

/// Replaces `path` by renaming a new file over it (a new inode).
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn second_get_is_a_hit_sharing_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.smf");
    let bytes = module(1);
    std::fs::write(&path, &bytes).unwrap();
    let cache = cache(1 << 20);
    let first = cache.get(&path).unwrap();
    let second = cache.get(&path).unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert!(!first.is_mapped());
    assert_eq!(first.bytes(), &bytes[..]);
    assert!(first.module().symbol_by_name("f").is_some());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.reloads), (1, 1, 0));
    assert_eq!(
        (stats.files_read, stats.bytes_read),
        (1, bytes.len() as u64)
    );
    assert_eq!((stats.files_mapped, stats.bytes_mapped), (0, 0));
    assert_eq!((stats.files, stats.bytes), (1, bytes.len() as u64));
}

#[test]
fn files_above_the_read_threshold_are_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.smf");
    let bytes = module(1);
    std::fs::write(&path, &bytes).unwrap();
    let len = bytes.len() as u64;
    for (threshold, mapped) in [(len - 1, true), (len, false), (len + 1, false), (0, true)] {
        let cache = cache(threshold);
        let file = cache.get(&path).unwrap();
        assert_eq!(file.is_mapped(), mapped, "threshold {threshold}");
        assert_eq!(file.bytes(), &bytes[..]);
        assert_eq!(cache.stats().bytes_mapped, if mapped { len } else { 0 });
    }
}

/// Three modules of equal size, `0.smf` to `2.smf`.
fn three_modules(dir: &Path) -> Vec<std::path::PathBuf> {
    (0..3)
        .map(|i| {
            Spec::new()
                .function("f", returns(i))
                .write(dir, &format!("{i}.smf"))
        })
        .collect()
}

#[test]
fn least_recently_used_files_are_evicted_by_count() {
    let dir = tempfile::tempdir().unwrap();
    let paths = three_modules(dir.path());
    let cache = SmfCache::new(CacheConfig {
        max_files: 2,
        ..CacheConfig::default()
    });
    cache.get(&paths[0]).unwrap();
    cache.get(&paths[1]).unwrap();
    cache.get(&paths[0]).unwrap();
    cache.get(&paths[2]).unwrap();
    assert!(cache.contains(&paths[0]));
    assert!(!cache.contains(&paths[1]));
    assert!(cache.contains(&paths[2]));
    let stats = cache.stats();
    assert_eq!((stats.files, stats.evictions), (2, 1));
}

#[test]
fn least_recently_used_files_are_evicted_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let paths = three_modules(dir.path());
    let size = std::fs::metadata(&paths[0]).unwrap().len();
    // Exactly two files fit; a third pushes out the least recently used.
    let cache = SmfCache::new(CacheConfig {
        max_bytes: size * 2,
        ..CacheConfig::default()
    });
    cache.get(&paths[1]).unwrap();
    cache.get(&paths[0]).unwrap();
    assert_eq!(cache.stats().evictions, 0);
    cache.get(&paths[2]).unwrap();
    assert!(!cache.contains(&paths[1]));
    assert_eq!(cache.stats().bytes, size * 2);
    // One byte less than two files: only the newest stays.
    let tight = SmfCache::new(CacheConfig {
        max_bytes: size * 2 - 1,
        ..CacheConfig::default()
    });
    tight.get(&paths[0]).unwrap();
    tight.get(&paths[1]).unwrap();
    assert_eq!(tight.stats().files, 1);
    assert!(tight.contains(&paths[1]));
}

#[test]
fn a_file_replaced_by_rename_is_read_again_and_the_old_view_stays_valid() {
    let (_dir, path, cache, old) = cached_module_1(0);
    assert!(old.is_mapped());
    replace(&path, &module(2));
    assert!(!old.is_current());
    let new = cache.get(&path).unwrap();
    assert!(!Arc::ptr_eq(&old, &new));
    assert_ne!(old.identity().inode, new.identity().inode);
    let stats = cache.stats();
    assert_eq!((stats.misses, stats.reloads, stats.files), (2, 1, 1));
    // The old inode is still mapped: its bytes are the old module's.
    assert_eq!(old.bytes(), &module(1)[..]);
    assert_eq!(new.bytes(), &module(2)[..]);
}

#[test]
fn a_file_rewritten_in_place_is_noticed_by_its_modification_time() {
    let (_dir, path, cache, old) = cached_module_1(1 << 20);
    // Same size, same inode, new contents and a later mtime.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std::io::Write::write_all(&mut &file, &module(3)).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    file.set_modified(later).unwrap();
    drop(file);
    let new = cache.get(&path).unwrap();
    assert_eq!(old.identity().inode, new.identity().inode);
    assert_eq!(
        old.bytes(),
        &module(1)[..],
        "a small file is a private copy"
    );
    assert_eq!(new.bytes(), &module(3)[..]);
    assert_eq!(cache.stats().reloads, 1);
}

#[test]
fn a_mapped_file_truncated_in_place_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.smf");
    let bytes = module(1);
    std::fs::write(&path, &bytes).unwrap();
    let cache = cache(0);
    let old = cache.get(&path).unwrap();
    assert!(old.is_current());
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(bytes.len() as u64 / 2).unwrap();
    drop(file);
    // The cached version is known stale before anything reads it.
    assert!(!old.is_current());
    match cache.get(&path) {
        Err(Error::InvalidModule { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected an invalid module, got {other:?}"),
    }
    assert!(!cache.contains(&path));
    // Truncated to nothing is just as clean.
    std::fs::File::create(&path).unwrap();
    assert!(matches!(cache.get(&path), Err(Error::InvalidModule { .. })));
}

#[test]
fn read_copy_reads_a_mapped_file_through_its_descriptor_and_any_other_size_is_an_error() {
    let (_dir, path, _cache, mapped) = cached_module_1(0);
    assert!(mapped.is_mapped());
    let bytes = std::fs::read(&path).unwrap();
    let copy = mapped.read_copy().unwrap();
    assert!(matches!(copy, Cow::Owned(_)));
    assert_eq!(&*copy, &bytes[..]);
    // Shorter, the map would fault past the end; longer is not the
    // validated version either.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for len in [bytes.len() + 1, bytes.len() - 1, 0] {
        file.set_len(len as u64).unwrap();
        match mapped.read_copy() {
            Err(Error::ChangedWhileReading { path: p }) => assert_eq!(p, path),
            other => panic!("{len} bytes: expected a change, got {other:?}"),
        }
    }
}

#[test]
fn read_copy_of_a_file_read_into_memory_is_that_copy_whatever_the_disk_holds() {
    let (_dir, path, _cache, read) = cached_module_1(1 << 20);
    assert!(!read.is_mapped());
    std::fs::File::create(&path).unwrap();
    let copy = read.read_copy().unwrap();
    assert!(matches!(copy, Cow::Borrowed(b) if std::ptr::eq(b, read.bytes())));
}

#[test]
fn a_deleted_file_is_an_error_and_leaves_the_cache() {
    let (_dir, path, cache, old) = cached_module_1(0);
    std::fs::remove_file(&path).unwrap();
    match cache.get(&path) {
        Err(Error::Io { kind, action, .. }) => {
            assert_eq!(kind, std::io::ErrorKind::NotFound);
            assert_eq!(action, "inspect");
        }
        other => panic!("expected not found, got {other:?}"),
    }
    assert!(!cache.contains(&path));
    // The unlinked inode stays mapped for whoever holds it.
    assert_eq!(old.bytes(), &module(1)[..]);
}

#[test]
fn an_unreadable_file_serves_the_cached_version_and_fails_cleanly_otherwise() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path, cache, old) = cached_module_1(1 << 20);
    // Permissions are not part of a version's identity: same bytes.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    assert!(Arc::ptr_eq(&old, &cache.get(&path).unwrap()));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A path that turns into a directory cannot be read at all.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    match cache.get(&path) {
        Err(Error::Io { action, .. }) => assert_eq!(action, "read"),
        other => panic!("expected a read error, got {other:?}"),
    }
    assert!(!cache.contains(&path));
}

#[test]
fn prefetch_reports_each_path_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = Spec::new()
        .function("a", returns(1))
        .write(dir.path(), "a.smf");
    let b = Spec::new()
        .function("b", returns(2))
        .write(dir.path(), "b.smf");
    let missing = dir.path().join("missing.smf");
    let cache = cache(0);
    let results = cache.prefetch(&[&a, &missing, &b]);
    assert_eq!(results.len(), 3);
    assert!(results[0].as_ref().unwrap().is_mapped());
    assert!(matches!(results[1], Err(Error::Io { .. })));
    assert_eq!(results[2].as_ref().unwrap().path(), b);
    assert_eq!(cache.stats().files, 2);
    assert_eq!(cache.stats().files_mapped, 2);
}

#[test]
fn invalid_bytes_are_reported_with_the_readers_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.smf");
    let mut bytes = module(1);
    let last = bytes.len() - 128;
    bytes[last] = b'X';
    std::fs::write(&path, &bytes).unwrap();
    let err = cache(0).get(&path).unwrap_err();
    match &err {
        Error::InvalidModule { source, .. } => assert_eq!(source.offset(), Some(last as u64)),
        other => panic!("expected an invalid module, got {other:?}"),
    }
    assert_eq!(err.code(), -3);
}

#[test]
fn loading_after_a_replacement_uses_the_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.smf");
    std::fs::write(&path, module(1)).unwrap();
    let loader = Loader::new(LoaderConfig::default()).unwrap();
    let first = loader.load(&path).unwrap();
    replace(&path, &module(2));
    let second = loader.load(&path).unwrap();
    assert_ne!(first.identity(), second.identity());
    assert_eq!(common::call_i32(second.export("f").unwrap()), 2);
    assert_eq!(common::call_i32(first.export("f").unwrap()), 1);
}

#[test]
fn decompressed_contents_count_against_the_byte_limit() {
    let dir = tempfile::tempdir().unwrap();
    // A note of 1 MiB that zstd stores in a few KiB.
    let rows = "    sum$f64, an.application.entry.point, true\n".repeat(24_000);
    let note = format!(
        "# Instantiation To/From Metadata\npossible |mangled_name, required_by, can_defer|\n{rows}# END_NOTE\n"
    );
    let paths: Vec<_> = (0..2)
        .map(|k| {
            let mut b = smf::ModuleBuilder::new();
            b.set_note(&note, smf::NoteSize::Recorded).unwrap();
            b.compress(smf::Compression::Zstd, None).unwrap();
            let path = dir.path().join(format!("z{k}.smf"));
            std::fs::write(&path, b.build().unwrap()).unwrap();
            path
        })
        .collect();
    let file = std::fs::metadata(&paths[0]).unwrap().len();
    assert!(file < 64 << 10, "stored small: {file} bytes");
    let cache = SmfCache::new(CacheConfig {
        max_bytes: 512 << 10,
        ..CacheConfig::default()
    });
    let first = cache.get(&paths[0]).unwrap();
    assert!(first.held_len() > 1 << 20, "{}", first.held_len());
    cache.get(&paths[1]).unwrap();
    // Each holds more than the limit once decompressed: the first goes.
    assert!(!cache.contains(&paths[0]));
    assert!(cache.contains(&paths[1]));
}
