//! Modules whose files change on disk after they are loaded: replaced by
//! rename, deleted, or truncated and rewritten in place. The version that
//! was loaded keeps serving misses, `LoadedModule::is_stale` and the
//! loader's statistics tell the file changed, `reload` reads the new file,
//! and nothing the loader reads after load can fault.

// These tests call the code the loader placed.
#![allow(unsafe_code)]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::call;
use jit::interp::Value;
use loader::{CacheConfig, Error, JitConfig, JitInstantiator, Loader, LoaderConfig};

/// A loader with the JIT whose cache maps every file, however small: the
/// hazards of this file are those of mapped files.
fn mapping_jit_loader() -> Loader {
    Loader::with_jit(LoaderConfig {
        cache: CacheConfig {
            read_threshold: 0,
            ..CacheConfig::default()
        },
        ..LoaderConfig::default()
    })
    .unwrap()
}

/// The text of a module offering `pick<T: int>(%x: T) -> T`, which returns
/// `answer`.
fn pick(answer: i64) -> String {
    format!("fn pick<T: int>(%x: T) -> T {{\nentry:\n    %r = const T {answer}\n    ret %r\n}}\n")
}

/// What `pick$i64` of `loader` returns.
fn picked(loader: &Loader) -> Option<Value> {
    picked_as(loader, "i64")
}

/// What `pick` instantiated for `ty` (an integer type) returns, widened.
fn picked_as(loader: &Loader, ty: &str) -> Option<Value> {
    let arg = match ty {
        "i32" => Value::I32(0),
        _ => Value::I64(0),
    };
    call(
        loader,
        &format!("pick${ty}"),
        &format!("fn({ty}) -> {ty}"),
        &[arg],
    )
    .unwrap()
}

/// Writes a module offering `pick` returning `answer` beside `path` and
/// renames it over `path`, as `smf-build` and package managers do.
fn replace_by_rename(path: &Path, answer: i64) {
    let dir = path.parent().unwrap();
    let fresh = common::module_of(dir, "fresh.smf.tmp", &pick(answer));
    std::fs::rename(fresh, path).unwrap();
}

/// Truncates the file at `path` to nothing, keeping its inode: a read of
/// a map of it would fault.
fn truncate_in_place(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// A directory with `pick.smf` (answering 1), loaded by a loader that
/// maps it.
fn loaded_pick() -> (tempfile::TempDir, std::path::PathBuf, Loader) {
    let dir = tempfile::tempdir().unwrap();
    let path = common::module_of(dir.path(), "pick.smf", &pick(1));
    let loader = mapping_jit_loader();
    let module = loader.load(&path).unwrap();
    assert!(module.file().is_mapped());
    assert!(!module.is_stale());
    assert_eq!(loader.stats().stale_modules, 0);
    (dir, path, loader)
}

#[test]
fn a_module_renamed_over_keeps_serving_the_version_it_loaded_until_reloaded() {
    let (_dir, path, loader) = loaded_pick();
    let old = loader.modules()[0].clone();
    replace_by_rename(&path, 2);
    assert!(old.is_stale());
    assert_eq!(loader.stats().stale_modules, 1);
    assert_eq!(picked(&loader), Some(Value::I64(1)));

    let new = loader.reload(old.id()).unwrap();
    assert!(!new.is_stale());
    assert_ne!(new.identity(), old.identity());
    assert_eq!(loader.stats().stale_modules, 0);
    // A name not instantiated before comes from the new templates.
    assert_eq!(picked_as(&loader, "i32"), Some(Value::I32(2)));
}

#[test]
fn a_deleted_module_keeps_serving_and_its_reload_fails_leaving_it_in_place() {
    let (_dir, path, loader) = loaded_pick();
    let id = loader.modules()[0].id();
    std::fs::remove_file(&path).unwrap();
    assert!(loader.modules()[0].is_stale());
    assert_eq!(loader.stats().stale_modules, 1);
    assert_eq!(picked(&loader), Some(Value::I64(1)));

    let error = loader.reload(id).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error}");
    assert_eq!(loader.modules()[0].id(), id);
    assert_eq!(picked_as(&loader, "i32"), Some(Value::I32(1)));
}

#[test]
fn a_module_truncated_in_place_keeps_serving_from_what_it_copied_at_load() {
    let (_dir, path, loader) = loaded_pick();
    let module = loader.modules()[0].clone();
    let template_code = module.template_code().unwrap().to_vec();
    truncate_in_place(&path);
    assert!(module.is_stale());
    assert_eq!(module.template_code(), Some(&template_code[..]));
    assert_eq!(picked(&loader), Some(Value::I64(1)));
}

#[test]
fn a_mapped_module_truncated_in_place_is_not_written_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collections.smf");
    std::fs::copy(common::fixture("collections"), &path).unwrap();
    let loader = mapping_jit_loader();
    let module = loader.load(&path).unwrap();
    truncate_in_place(&path);
    let error = loader::write_back_note(&module).unwrap_err();
    assert!(matches!(error, Error::Unsupported { .. }), "{error}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn a_stale_module_never_blocks_misses_another_module_serves() {
    let (dir, path, loader) = loaded_pick();
    let other = common::module_of(
        dir.path(),
        "other.smf",
        "fn other<T: int>(%x: T) -> T {\nentry:\n    ret %x\n}\n",
    );
    loader.load(&other).unwrap();
    // The stale module comes first in load order, as `pick`'s offerer.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loader.stats().stale_modules, 1);
    assert_eq!(
        call(&loader, "other$i64", "fn(i64) -> i64", &[Value::I64(5)]),
        Ok(Some(Value::I64(5)))
    );
    assert_eq!(picked(&loader), Some(Value::I64(1)));
}

/// How long the stress test runs: `SMFJIT_STRESS_SECS` seconds (a decimal
/// number), 1.5 when it is not set.
fn stress_duration() -> Duration {
    std::env::var("SMFJIT_STRESS_SECS").map_or(Duration::from_millis(1500), |secs| {
        Duration::from_secs_f64(
            secs.parse()
                .expect("SMFJIT_STRESS_SECS is a number of seconds"),
        )
    })
}

/// Truncates, rewrites with other bytes and restores the file at `path`
/// in place (the same inode) until `stop`; returns the rounds made.
fn truncate_rewrite_restore(path: &Path, stop: &AtomicBool) -> u64 {
    let original = std::fs::read(path).unwrap();
    let len = original.len() as u64;
    let garbage: Vec<u8> = original.iter().rev().copied().collect();
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        file.set_len(0).unwrap();
        file.write_all_at(&garbage, 0).unwrap();
        file.set_len(len / 3).unwrap();
        file.write_all_at(&original, 0).unwrap();
        rounds += 1;
    }
    rounds
}

#[test]
fn misses_never_fault_while_the_file_is_truncated_and_rewritten_in_place() {
    const READERS: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let path = common::module_of(dir.path(), "pick.smf", &pick(7));
    // One loader per reader, each with its own map of the file.
    let loaders: Vec<Loader> = (0..READERS)
        .map(|_| {
            let loader = mapping_jit_loader();
            loader.load(&path).unwrap();
            loader
        })
        .collect();
    assert!(loaders.iter().all(|l| l.modules()[0].file().is_mapped()));

    let duration = stress_duration();
    let stop = AtomicBool::new(false);
    let (rounds, outcomes) = std::thread::scope(|s| {
        let writer = s.spawn(|| truncate_rewrite_restore(&path, &stop));
        let readers: Vec<_> = loaders
            .iter()
            .map(|loader| {
                s.spawn(move || {
                    let deadline = Instant::now() + duration;
                    let (mut misses, mut errors) = (0u64, Vec::new());
                    while Instant::now() < deadline {
                        // A fresh instantiator reads what a module's first
                        // miss reads: its template symbols and its
                        // template code.
                        JitInstantiator::new(JitConfig::default())
                            .unwrap()
                            .install(loader);
                        loader.clear_instances();
                        match loader.resolve("pick$i64") {
                            Ok(_) => assert_eq!(picked(loader), Some(Value::I64(7))),
                            Err(error) => errors.push(error.to_string()),
                        }
                        misses += 1;
                    }
                    (misses, errors)
                })
            })
            .collect();
        let outcomes: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        stop.store(true, Ordering::Relaxed);
        (writer.join().unwrap(), outcomes)
    });
    let misses: u64 = outcomes.iter().map(|(m, _)| m).sum();
    let errors: Vec<&String> = outcomes.iter().flat_map(|(_, e)| e).collect();
    eprintln!(
        "{:.1} s: {rounds} truncate-rewrite-restore rounds, {misses} misses by {READERS} \
         threads, {} errors, no fault",
        duration.as_secs_f64(),
        errors.len()
    );
    assert!(rounds > 0 && misses > 0);
    assert!(errors.is_empty(), "{errors:?}");
    // Restored, but not the version that was loaded (its mtime changed).
    assert!(loaders.iter().all(|l| l.modules()[0].is_stale()));
}
