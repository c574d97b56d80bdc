//! Hot reload through export slots, and unloading that returns memory.

// These tests call the code the loader placed and read memory it mapped.
#![allow(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};

use common::{Code, Spec, call_i32, forwards, returns, writable_executable_mappings};
use loader::{Error, Loader, LoaderConfig};

fn loader() -> Loader {
    Loader::new(LoaderConfig::default()).unwrap()
}

fn write_version(path: &Path, value: i32) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, Spec::new().function("f", returns(value)).build()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A directory with `f.smf` (f returns `value`) and `g.smf`, whose g
/// calls f.
fn exporter_and_user(value: i32) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.smf");
    write_version(&path, value);
    let user_path = Spec::new()
        .function("g", forwards("f", Code::call_plt))
        .write(dir.path(), "g.smf");
    (dir, path, user_path)
}

/// Publishes `call [slot]; ret` with the stack aligned: a caller that
/// follows reloads.
fn call_through(loader: &Loader, slot: *const usize) -> execmem::PublishedFunction {
    use iced_x86::code_asm::{qword_ptr, rax, rsp};
    let code = common::asm(|a| {
        a.sub(rsp, 8)?;
        a.mov(rax, slot as u64)?;
        a.call(qword_ptr(rax))?;
        a.add(rsp, 8)?;
        a.ret()
    });
    loader
        .memory()
        .publish_function("through_slot", &code)
        .unwrap()
}

#[test]
fn reload_swaps_exports_and_slots_while_old_code_stays_for_its_holders() {
    let (_dir, path, user_path) = exporter_and_user(1);
    let loader = loader();
    let v1 = loader.load(&path).unwrap();
    let user = loader.load(&user_path).unwrap();
    let slot = loader.slot("f");
    let caller = call_through(&loader, slot.as_ptr());
    // SAFETY: `call_through` publishes an `extern "C" fn() -> i32`.
    let through: extern "C" fn() -> i32 = unsafe { std::mem::transmute(caller.entry()) };
    assert_eq!(through(), 1);
    let old_f = loader.resolve("f").unwrap();

    write_version(&path, 2);
    let v2 = loader.reload(v1.id()).unwrap();
    assert_ne!(v2.id(), v1.id());
    assert_eq!(call_i32(loader.resolve("f").unwrap()), 2);
    assert_eq!(slot.get(), Some(loader.resolve("f").unwrap()));
    assert_eq!(through(), 2, "calls through the slot follow the reload");
    // The importer bound v1 at load and keeps it mapped.
    assert_eq!(call_i32(loader.resolve("g").unwrap()), 1);
    assert_eq!(user.dependencies().collect::<Vec<_>>(), [v1.id()]);
    assert_eq!(call_i32(old_f), 1);
    assert!(loader.module(v1.id()).is_none());
    assert_eq!(loader.modules().len(), 2);
    // Reloading keeps the module's place in load order.
    assert_eq!(loader.modules()[0].id(), v2.id());
}

#[test]
fn reloading_while_another_thread_keeps_calling_through_the_slot() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.smf");
    write_version(&path, 1);
    let loader = loader();
    let mut id = loader.load(&path).unwrap().id();
    let caller = call_through(&loader, loader.slot("f").as_ptr());
    // SAFETY: `call_through` publishes an `extern "C" fn() -> i32`.
    let through: extern "C" fn() -> i32 = unsafe { std::mem::transmute(caller.entry()) };
    let code_before = loader.memory().stats().bytes_code;

    let stop = AtomicBool::new(false);
    let rounds = 30;
    std::thread::scope(|scope| {
        // The caller runs until the reloads are over and it has itself seen
        // the last version.
        let calls = scope.spawn(|| {
            let (mut last, mut calls) = (0, 0u64);
            loop {
                let reloads_done = stop.load(Ordering::Acquire);
                let seen = through();
                assert!((1..=rounds).contains(&seen), "a call returned {seen}");
                assert!(seen >= last, "went back from version {last} to {seen}");
                last = seen;
                calls += 1;
                if reloads_done && seen == rounds {
                    return (last, calls);
                }
            }
        });
        for version in 2..=rounds {
            write_version(&path, version);
            id = loader.reload(id).unwrap().id();
        }
        stop.store(true, Ordering::Release);
        let (last, calls) = calls.join().unwrap();
        assert_eq!(last, rounds);
        assert!(calls > 0);
    });
    // The replaced versions stayed mapped until now; reclaiming returns them.
    assert!(loader.memory().stats().bytes_code > code_before);
    assert_eq!(loader.reclaim_replaced(), (rounds - 1) as usize);
    assert_eq!(loader.memory().stats().bytes_code, code_before);
    assert_eq!(loader.reclaim_replaced(), 0);
    assert_eq!(through(), rounds);
}

#[test]
fn a_reload_that_fails_keeps_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.smf");
    write_version(&path, 1);
    let loader = loader();
    let v1 = loader.load(&path).unwrap();
    std::fs::write(&path, b"not a module at all").unwrap();
    assert!(matches!(
        loader.reload(v1.id()),
        Err(Error::InvalidModule { .. })
    ));
    assert_eq!(call_i32(loader.resolve("f").unwrap()), 1);
    assert!(loader.module(v1.id()).is_some());
    assert!(matches!(
        loader.reload(9999),
        Err(Error::NoSuchModule(9999))
    ));
    assert!(matches!(
        loader.unload(9999),
        Err(Error::NoSuchModule(9999))
    ));
}

/// Unloading frees the code once nothing holds it. Under `mprotect` every
/// byte goes; under the loader's default (file writes) the allocator keeps
/// its current region, trapping where no code is, for the next miss.
#[test]
fn unload_returns_code_and_data_memory_once_nothing_holds_it() {
    for strategy in [execmem::Strategy::Mprotect, execmem::Strategy::FileWrite] {
        let (_dir, path, user_path) = exporter_and_user(5);
        let mut config = LoaderConfig::default();
        config.memory.strategy = strategy;
        let loader = Loader::new(config).unwrap();
        let kept = loader.memory().stats();
        assert_eq!(kept.bytes_code, 0);
        let f = loader.load(&path).unwrap();
        let after_one = loader.memory().stats();
        assert_eq!(after_one.functions, 1);
        assert_eq!(after_one.bytes_code, 6, "one code section of 6 bytes");
        let g = loader.load(&user_path).unwrap();
        let slot = loader.slot("f");
        assert!(slot.get().is_some());

        // The exporter goes first: its export disappears, its code stays for g.
        let (f_id, g_id) = (f.id(), g.id());
        drop((f, g));
        loader.unload(f_id).unwrap();
        assert!(loader.lookup_export("f").is_none());
        assert_eq!(slot.get(), None);
        assert!(matches!(loader.resolve("f"), Err(Error::Unresolved { .. })));
        assert_eq!(call_i32(loader.resolve("g").unwrap()), 5);
        assert_eq!(loader.memory().stats().functions, 2);

        loader.unload(g_id).unwrap();
        let empty = loader.memory().stats();
        assert_eq!(empty.functions, 0);
        assert_eq!(empty.bytes_code, 0);
        match loader.memory().strategy() {
            execmem::Strategy::FileWrite => {
                assert_eq!(empty.bytes_reserved, kept.bytes_reserved);
                assert_eq!(empty.regions, 1, "the current region");
                assert_eq!(empty.bytes_writable, 0);
            }
            _ => assert_eq!(empty.bytes_reserved, 0),
        }
        assert_eq!(loader.stats().modules, 0);
        assert_eq!(loader.stats().exports, 0);
        assert_eq!(writable_executable_mappings(), Vec::<String>::new());
    }
}

#[test]
fn cleared_instances_are_unmapped_unless_a_module_bound_them() {
    let jit = std::sync::Arc::new(common::TestJit::default());
    let dir = tempfile::tempdir().unwrap();
    let user = Spec::new()
        .function("h", forwards("const$9", Code::call_plt))
        .write(dir.path(), "h.smf");
    let loader = loader();
    loader.set_instantiator(std::sync::Arc::clone(&jit));
    loader.resolve("const$8").unwrap();
    let module = loader.load(&user).unwrap();
    assert_eq!(module.imports()[0].source, loader::ImportSource::Instance);
    assert_eq!(loader.memory().stats().functions, 3);
    assert_eq!(loader.clear_instances(), 2);
    // const$8's code is gone; const$9's stays for h.
    assert_eq!(loader.memory().stats().functions, 2);
    assert_eq!(call_i32(loader.resolve("h").unwrap()), 9);
    assert_eq!(loader.stats().instances.instances, 0);
}

#[test]
fn loads_reloads_and_resolutions_on_many_threads_stay_consistent() {
    // Four threads load modules whose imports instantiate (in their own
    // batches), two resolve instantiations directly, one reloads a module
    // over and over: every answer is right and nothing deadlocks.
    let jit = std::sync::Arc::new(common::TestJit::default());
    let dir = tempfile::tempdir().unwrap();
    let loader = loader();
    loader.set_instantiator(std::sync::Arc::clone(&jit));
    let path = dir.path().join("f.smf");
    write_version(&path, 1);
    let reloaded = loader.load(&path).unwrap().id();
    let users: Vec<PathBuf> = (0..4)
        .map(|t| {
            Spec::new()
                .function(
                    &format!("user{t}"),
                    forwards(&format!("batch${}", 10 + t % 2), Code::call_plt),
                )
                .function(&format!("plain{t}"), forwards("const$99", Code::call_plt))
                .write(dir.path(), &format!("user{t}.smf"))
        })
        .collect();
    std::thread::scope(|scope| {
        for (t, user) in users.iter().enumerate() {
            let loader = loader.clone();
            scope.spawn(move || {
                let module = loader.load(user).unwrap();
                let own = module.export(&format!("user{t}")).unwrap();
                assert_eq!(call_i32(own), 10 + (t % 2) as i32);
                assert_eq!(call_i32(module.export(&format!("plain{t}")).unwrap()), 99);
            });
        }
        for _ in 0..2 {
            let loader = loader.clone();
            scope.spawn(move || {
                for n in 0..20 {
                    let name = format!("const${}", 200 + n);
                    assert_eq!(call_i32(loader.resolve(&name).unwrap()), 200 + n);
                    assert_eq!(call_i32(loader.resolve("batch$10").unwrap()), 10);
                }
            });
        }
        let loader = loader.clone();
        let path = path.clone();
        scope.spawn(move || {
            let mut id = reloaded;
            for round in 0..10 {
                write_version(&path, round);
                id = loader.reload(id).unwrap().id();
                assert_eq!(call_i32(loader.resolve("f").unwrap()), round);
            }
        });
    });
    for name in ["batch$10", "batch$11", "const$99", "const$200", "const$219"] {
        assert_eq!(jit.count(name), 1, "{name} compiled once");
    }
    assert_eq!(loader.modules().len(), 5);
    assert_eq!(writable_executable_mappings(), Vec::<String>::new());
}

/// A loader's code goes into file-written memory by default: the entry of
/// a loaded function lies in a read-execute view of the code file, and no
/// mapping of it is writable.
#[test]
fn the_default_loader_publishes_into_a_read_execute_code_file() {
    let (_dir, path, _) = exporter_and_user(7);
    let loader = loader();
    assert_eq!(loader.memory().strategy(), execmem::Strategy::FileWrite);
    let module = loader.load(&path).unwrap();
    let entry = loader.resolve("f").unwrap();
    assert_eq!(call_i32(entry), 7);
    let address = entry.get();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|line| {
            let range = line.split_whitespace().next().unwrap_or("");
            let (start, end) = range.split_once('-').unwrap_or(("0", "0"));
            let start = usize::from_str_radix(start, 16).unwrap_or(0);
            let end = usize::from_str_radix(end, 16).unwrap_or(0);
            (start..end).contains(&address)
        })
        .expect("the entry is mapped");
    assert!(
        line.contains(" r-xs ") && line.contains("smfjit-code"),
        "{line}"
    );
    assert_eq!(loader.memory().stats().bytes_writable, 0);
    drop(module);
}
