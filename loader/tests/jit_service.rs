//! The JIT-on-miss instantiator with the real fixtures: names no module
//! exports are instantiated from `collections.smf`'s templates, compiled by
//! the x86-64 backend and called, with the reference interpreter (running
//! the same templates on the same memory) as the oracle.

// These tests call the code the loader placed and read memory it mapped.
#![allow(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jit::TrapKind;
use jit::interp::{Interpreter, LibraryResolver, Value};
use jit::ir::Library;
mod common;

use common::{call, fixture, len, ptr, writable_executable_mappings};
use loader::{Binding, Error, ImportSource, JitConfig, JitInstantiator, Loader, LoaderConfig};

fn jit_loader(config: LoaderConfig) -> Loader {
    Loader::with_jit(config).unwrap()
}

/// A loader with the JIT and the fixture `name` loaded.
fn loaded(name: &str) -> Loader {
    loaded_from(&fixture(name))
}

/// A loader with the JIT and the module at `path` loaded.
fn loaded_from(path: &std::path::Path) -> Loader {
    let loader = jit_loader(LoaderConfig::default());
    loader.load(path).unwrap();
    loader
}

/// The templates of the loaded collections module, for the interpreter.
fn templates(loader: &Loader) -> Library {
    let module = loader
        .modules()
        .into_iter()
        .find(|m| m.path().ends_with("collections.smf"))
        .unwrap();
    jit::binary::decode_library(module.template_code().unwrap())
        .unwrap()
        .library
}

/// What running compiled code and interpreting the same function gave.
type Outcomes = (
    Result<Option<Value>, TrapKind>,
    Result<Option<Value>, jit::Error>,
);

/// Runs `symbol` compiled (through the loader) and interpreted on the same
/// arguments.
fn run_both(loader: &Loader, symbol: &str, args: &[Value]) -> Outcomes {
    let lib = templates(loader);
    let function = jit::instantiate::instantiate_symbol(&lib, symbol)
        .unwrap()
        .function;
    let entry = loader.resolve(symbol).unwrap().as_ptr();
    let trap = loader::trap_runtime().unwrap();
    // SAFETY: compiled code of `function`'s signature; the buffers are
    // live and read only within the length passed.
    let compiled = unsafe { trap.call(entry, &function.sig, args) };
    let resolver = LibraryResolver::new(&lib);
    let interp = Interpreter::new(&resolver);
    // SAFETY: as above, for the interpreter.
    let interpreted = unsafe { interp.call(&function, args) };
    (compiled, interpreted)
}

/// [`run_both`] for calls that do not trap.
fn both(loader: &Loader, symbol: &str, args: &[Value]) -> (Option<Value>, Option<Value>) {
    let (compiled, interpreted) = run_both(loader, symbol, args);
    (compiled.unwrap(), interpreted.unwrap())
}

#[test]
fn instantiations_on_miss_compute_what_the_interpreter_computes() {
    let loader = loaded("collections");
    for jitted in ["sum$f32", "sort$u16", "sum$f64", "dot$f32", "max$i32"] {
        assert!(
            loader.lookup_export(jitted).is_none(),
            "{jitted} is not AOT code"
        );
    }

    let floats = [1.5f32, -0.25, 1e7, 3.0, 7.125];
    for n in [0, 1, floats.len() - 1, floats.len()] {
        let (c, i) = both(&loader, "sum$f32", &[ptr(&floats), len(n)]);
        assert_eq!(c, i, "sum$f32 of {n}");
        let expected: f32 = floats[..n].iter().sum();
        assert_eq!(c, Some(Value::F32(expected)));
    }
    let doubles = [0.5f64, 2.0, -8.0, 1e-3];
    let (c, i) = both(&loader, "sum$f64", &[ptr(&doubles), len(doubles.len())]);
    assert_eq!((c, i), (Some(Value::F64(-5.499)), Some(Value::F64(-5.499))));
    let other = [2.0f32, 4.0, 0.5];
    let (c, i) = both(&loader, "dot$f32", &[ptr(&floats), ptr(&other), len(3)]);
    assert_eq!(c, i);
    assert_eq!(c, Some(Value::F32(1.5 * 2.0 + -0.25 * 4.0 + 1e7 * 0.5)));
    let ints = [-5i32, 17, i32::MIN, 16];
    for n in 1..=ints.len() {
        let (c, i) = both(&loader, "max$i32", &[ptr(&ints), len(n)]);
        assert_eq!(c, i);
        assert_eq!(c, Some(Value::I32(*ints[..n].iter().max().unwrap())));
    }

    // sort$u16 (and the quicksort and insertion sort it calls) instantiated
    // on the miss; lengths around the insertion-sort cutoff and beyond.
    for n in [0usize, 1, 2, 15, 16, 17, 200] {
        let mut xs: Vec<u16> = (0..n)
            .map(|k| u16::try_from((k * 7919 + 13) % 1000).unwrap())
            .collect();
        let mut expected = xs.clone();
        expected.sort_unstable();
        let got = call(
            &loader,
            "sort$u16",
            "fn(ptr<u16>, i64)",
            &[Value::Ptr(xs.as_mut_ptr() as u64), len(n)],
        );
        assert_eq!(got, Ok(None));
        assert_eq!(xs, expected, "sort$u16 of {n}");
    }
}

/// The collections fixture rebuilt with zstd: its template code and note
/// compressed (the default choice), and with `code` its `.text` too.
fn compressed_collections(code: bool) -> Vec<u8> {
    let bytes = std::fs::read(fixture("collections")).unwrap();
    let module = smf::Module::parse(&bytes).unwrap();
    let mut builder = smf::ModuleBuilder::from_module(&module).unwrap();
    builder.compress(smf::Compression::Zstd, None).unwrap();
    if code {
        let text = module.section_by_name(".text").unwrap().index();
        builder
            .compress_section(smf::SectionId(u16::try_from(text).unwrap()), true)
            .unwrap();
    }
    builder.build().unwrap()
}

/// A compressed build of a fixture, copied or mapped, loads: its
/// precompiled code is placed from the decompressed bytes with every
/// relocation applied, and misses instantiate from the decompressed
/// templates, computing what the interpreter computes.
#[test]
fn a_compressed_module_loads_and_instantiates_from_its_decompressed_templates() {
    let stored = smf::Module::parse(&std::fs::read(fixture("collections")).unwrap())
        .unwrap()
        .template_code()
        .unwrap()
        .to_vec();
    for (code, read_threshold) in [(false, u64::MAX), (true, u64::MAX), (true, 0)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collections.smf");
        std::fs::write(&path, compressed_collections(code)).unwrap();
        let loader = jit_loader(LoaderConfig {
            cache: loader::CacheConfig {
                read_threshold,
                ..loader::CacheConfig::default()
            },
            ..LoaderConfig::default()
        });
        let module = loader.load(&path).unwrap();
        let what = format!(
            "code compressed: {code}, mapped: {}",
            module.file().is_mapped()
        );
        let file = module.file().module();
        assert!(
            file.template_code_section().unwrap().is_compressed(),
            "{what}"
        );
        assert_eq!(
            file.section_by_name(".text").unwrap().is_compressed(),
            code,
            "{what}"
        );
        assert_eq!(module.template_code(), Some(&stored[..]), "{what}");
        assert!(
            module.note().unwrap().possible("sum$f64").is_some(),
            "{what}"
        );

        let ints = [4i32, -1, 10];
        let got = call(
            &loader,
            "sum$i32",
            "fn(ptr<i32>, i64) -> i32",
            &[ptr(&ints), len(ints.len())],
        );
        assert_eq!(got, Ok(Some(Value::I32(13))), "{what}");
        assert!(loader.lookup_export("sum$f64").is_none(), "{what}");
        let doubles = [0.5f64, 2.0, -8.0, 1e-3];
        let (c, i) = both(&loader, "sum$f64", &[ptr(&doubles), len(doubles.len())]);
        assert_eq!(
            (c, i),
            (Some(Value::F64(-5.499)), Some(Value::F64(-5.499))),
            "{what}"
        );
        let mut xs: Vec<u16> = vec![30, 10, 20];
        let got = call(
            &loader,
            "sort$u16",
            "fn(ptr<u16>, i64)",
            &[Value::Ptr(xs.as_mut_ptr() as u64), len(3)],
        );
        assert_eq!((got, xs), (Ok(None), vec![10, 20, 30]), "{what}");
    }
}

/// Writing the note back into a compressed module keeps it compressed.
#[test]
fn the_note_written_back_into_a_compressed_module_stays_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collections.smf");
    std::fs::write(&path, compressed_collections(false)).unwrap();
    let loader = jit_loader(LoaderConfig::default());
    let module = loader.load(&path).unwrap();
    loader.resolve("sum$f64").unwrap();
    assert!(loader::write_back_note(&module).unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let written = smf::Module::parse(&bytes).unwrap();
    assert!(written.note_section().unwrap().is_compressed());
    assert!(written.template_code_section().unwrap().is_compressed());
    assert_eq!(written.template_code(), module.template_code());
    let note = sdn::note::Note::parse(written.note_sdn().unwrap()).unwrap();
    assert_eq!(
        note.instantiation("sum$f64").unwrap().status,
        sdn::note::Status::JitCompiled
    );
}

#[test]
fn precompiled_names_resolve_to_exports_and_run() {
    let loader = jit_loader(LoaderConfig::default());
    let module = loader.load(fixture("collections")).unwrap();
    for aot in ["dot$f64", "max$u8", "Vec$i64$push"] {
        assert_eq!(loader.resolve(aot).unwrap(), module.export(aot).unwrap());
    }
    let before = loader.stats().instances.instantiations;
    let xs = [1.0f64, 2.0, 3.0];
    let ys = [4.0f64, -5.0, 0.5];
    let (c, i) = both(&loader, "dot$f64", &[ptr(&xs), ptr(&ys), len(3)]);
    assert_eq!((c, i), (Some(Value::F64(-4.5)), Some(Value::F64(-4.5))));
    let bytes = [3u8, 250, 7];
    let (c, i) = both(&loader, "max$u8", &[ptr(&bytes), len(3)]);
    assert_eq!((c, i), (Some(Value::U8(250)), Some(Value::U8(250))));
    assert_eq!(
        loader.stats().instances.instantiations,
        before,
        "exports need no instantiation"
    );

    // A vector: new, get, len and free instantiated, push precompiled.
    let vec = call(&loader, "Vec$i64$new", "fn() -> rawptr", &[]).unwrap();
    let Some(Value::Ptr(vec)) = vec else {
        panic!("Vec$i64$new returned {vec:?}")
    };
    for k in 0..100i64 {
        let pushed = call(
            &loader,
            "Vec$i64$push",
            "fn(rawptr, i64)",
            &[Value::Ptr(vec), Value::I64(k * k - 50)],
        );
        assert_eq!(pushed, Ok(None));
    }
    let length = call(
        &loader,
        "Vec$i64$len",
        "fn(rawptr) -> i64",
        &[Value::Ptr(vec)],
    );
    assert_eq!(length, Ok(Some(Value::I64(100))));
    for k in [0i64, 1, 98, 99] {
        let got = call(
            &loader,
            "Vec$i64$get",
            "fn(rawptr, i64) -> i64",
            &[Value::Ptr(vec), Value::I64(k)],
        );
        assert_eq!(got, Ok(Some(Value::I64(k * k - 50))));
    }
    let freed = call(&loader, "Vec$i64$free", "fn(rawptr)", &[Value::Ptr(vec)]);
    assert_eq!(freed, Ok(None));
    assert!(loader.stats().instances.instantiations >= before + 4);
}

#[test]
fn the_note_records_a_listed_name_as_jit_compiled() {
    let loader = jit_loader(LoaderConfig::default());
    let module = loader.load(fixture("collections")).unwrap();
    assert!(module.note().unwrap().possible("sum$f64").is_some());
    loader.resolve("sum$f64").unwrap();
    let note = module.note().unwrap();
    assert!(note.possible("sum$f64").is_none());
    let row = note.instantiation("sum$f64").unwrap();
    assert_eq!(row.status, sdn::note::Status::JitCompiled);
    assert_eq!(row.to_obj, loader::JIT_OBJECT);
}

fn app_checks(loader: &Loader) {
    let floats = [1.5f32, 2.5, 8.0];
    assert_eq!(
        call(
            loader,
            "mean_f32",
            "fn(ptr<f32>, i64) -> f32",
            &[ptr(&floats), len(3)]
        ),
        Ok(Some(Value::F32(4.0)))
    );
    let mut shorts = [30u16, 10, 20, 5];
    assert_eq!(
        call(
            loader,
            "median_u16",
            "fn(ptr<u16>, i64) -> u16",
            &[Value::Ptr(shorts.as_mut_ptr() as u64), len(4)]
        ),
        Ok(Some(Value::U16(20)))
    );
    assert_eq!(shorts, [5, 10, 20, 30]);
    // The AOT trap stub reaches the same handler through __smfjit_trap.
    assert_eq!(
        call(
            loader,
            "median_u16",
            "fn(ptr<u16>, i64) -> u16",
            &[ptr(&shorts), len(0)]
        ),
        Err(TrapKind::Explicit(1))
    );
    let expected: i64 = (0..50i64).map(|k| k * k).sum();
    assert_eq!(
        call(
            loader,
            "sum_of_squares",
            "fn(i64) -> i64",
            &[Value::I64(50)]
        ),
        Ok(Some(Value::I64(expected)))
    );
}

#[test]
fn app_binds_its_imports_to_instantiations_when_loaded_now() {
    let loader = loaded("collections");
    let app = loader
        .load_with_binding(fixture("app"), Binding::Now)
        .unwrap();
    let stats = loader.stats().instances;
    for name in ["sum$f32", "sort$u16", "Vec$i64$new", "Vec$i64$get"] {
        let import = app.imports().iter().find(|i| i.name == name).unwrap();
        assert_eq!(import.source, ImportSource::Instance, "{name}");
        assert_eq!(
            loader.resolve(name).unwrap().get(),
            import.address,
            "{name}"
        );
    }
    let trap = app
        .imports()
        .iter()
        .find(|i| i.name == "__smfjit_trap")
        .unwrap();
    assert_eq!(trap.source, ImportSource::Native);
    assert_eq!(
        trap.address as u64,
        loader::trap_runtime().unwrap().handler()
    );
    let push = app
        .imports()
        .iter()
        .find(|i| i.name == "Vec$i64$push")
        .unwrap();
    assert!(matches!(push.source, ImportSource::Module(_)));
    app_checks(&loader);
    assert_eq!(
        loader.stats().instances.instantiations,
        stats.instantiations,
        "everything app calls was instantiated at load"
    );
}

#[test]
fn app_instantiates_its_imports_at_first_call_when_loaded_lazily() {
    let loader = loaded("collections");
    let app = loader
        .load_with_binding(fixture("app"), Binding::Lazy)
        .unwrap();
    let unbound: Vec<&str> = app
        .lazy_imports()
        .filter(|(_, bound)| bound.is_none())
        .map(|(name, _)| name)
        .collect();
    assert!(unbound.contains(&"sum$f32") && unbound.contains(&"sort$u16"));
    let before = loader.stats().instances.instantiations;
    app_checks(&loader);
    let bound: Vec<&str> = app
        .lazy_imports()
        .filter(|(_, bound)| bound.is_some())
        .map(|(name, _)| name)
        .collect();
    assert!(bound.contains(&"sum$f32") && bound.contains(&"sort$u16"));
    assert!(loader.stats().instances.instantiations > before);
}

#[test]
fn eight_threads_missing_the_same_names_compile_each_once() {
    let loader = loaded("collections");
    let names = [
        "sum$f64",
        "sum$u64",
        "sort$u16",
        "sort$f64",
        "max$i32",
        "min$i16",
        "dot$f32",
        "binary_search$i64",
        "Vec$f64$get",
        "Vec$u32$push",
    ];
    // Loading asks the instantiator for the module's native imports first
    // (it declines them); count from here.
    let loaded = loader.stats().instances;
    let start = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (loader, start) = (loader.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut got: Vec<(&str, usize)> = (0..names.len())
                    .map(|k| {
                        let name = names[(k + t) % names.len()];
                        (name, loader.resolve(name).unwrap().get())
                    })
                    .collect();
                got.sort_unstable();
                got
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for r in &results[1..] {
        assert_eq!(r, &results[0], "identical pointers in every thread");
    }
    let stats = loader.stats().instances;
    assert_eq!(stats.failures, 0, "{stats:?}");
    assert_eq!(stats.declined, loaded.declined, "{stats:?}");
    assert_eq!(
        stats.requests - loaded.requests,
        stats.instantiations,
        "no name was requested twice: {stats:?}"
    );
    assert_eq!(
        stats.instantiations,
        u64::try_from(stats.instances).unwrap(),
        "one compilation per name"
    );
    // The named ones plus what they call (sort's helpers, Vec's reserve).
    assert!(stats.instances > names.len());
    let doubles = [3.5f64, -1.0, 9.0];
    assert_eq!(
        call(
            &loader,
            "sum$f64",
            "fn(ptr<f64>, i64) -> f64",
            &[ptr(&doubles), len(3)]
        ),
        Ok(Some(Value::F64(11.5)))
    );
}

#[test]
fn polymorphic_recursion_stops_at_the_depth_bound_with_its_chain() {
    let loader = jit_loader(LoaderConfig {
        max_depth: 8,
        ..LoaderConfig::default()
    });
    loader.load(fixture("cycle")).unwrap();
    let error = loader.resolve("f$i64").unwrap_err();
    let Error::DepthExceeded { limit, path, .. } = &error else {
        panic!("{error}")
    };
    assert_eq!(*limit, 8);
    assert_eq!(path.len(), 9);
    assert_eq!(&path[..4], ["f$i64", "g$i64", "f$ptr$i64", "g$ptr$i64"]);
    assert!(error.to_string().contains("f$i64 -> g$i64 -> f$ptr$i64"));
    // Nothing half-made stays behind, and a retry fails the same way.
    assert_eq!(loader.stats().instances.instances, 0);
    assert!(matches!(
        loader.resolve("f$i64"),
        Err(Error::DepthExceeded { .. })
    ));
}

#[test]
fn polymorphic_recursion_with_the_default_bound_is_reported_with_its_chain() {
    let loader = loaded("cycle");
    // The default depth bound is the IR's instantiation bound, reached
    // before its type nesting limit, so the error carries the chain.
    let error = loader.resolve("f$i64").unwrap_err();
    let Error::DepthExceeded { limit, path, .. } = &error else {
        panic!("{error}")
    };
    assert_eq!(*limit, jit::limits::MAX_INSTANTIATION_DEPTH);
    assert_eq!(path.len(), limit + 1);
    assert_eq!(&path[..4], ["f$i64", "g$i64", "f$ptr$i64", "g$ptr$i64"]);
    assert_eq!(loader.stats().instances.instances, 0);
}

#[test]
fn mutually_recursive_instantiations_call_each_other_through_slots() {
    let loader = loaded("cycle");
    for (n, even) in [(0u8, true), (1, false), (10, true), (255, false)] {
        assert_eq!(
            call(&loader, "is_even$u8", "fn(u8) -> bool", &[Value::U8(n)]),
            Ok(Some(Value::Bool(even))),
            "is_even({n})"
        );
    }
    assert!(loader.resolve("is_odd$u8").is_ok());
    assert_eq!(loader.stats().instances.instantiations, 2);
}

#[test]
fn a_depth_bound_below_a_chain_fails_it_and_one_above_succeeds() {
    // sort$u16 -> quicksort$u16 -> insertion_sort$u16 nests three deep.
    for (depth, ok) in [(2, false), (3, true), (4, true)] {
        let loader = jit_loader(LoaderConfig {
            max_depth: depth,
            ..LoaderConfig::default()
        });
        loader.load(fixture("collections")).unwrap();
        match loader.resolve("sort$u16") {
            Ok(_) => assert!(ok, "depth {depth}"),
            Err(Error::DepthExceeded { limit, path, .. }) => {
                assert!(!ok, "depth {depth}");
                assert_eq!(limit, depth);
                assert_eq!(path[..2], ["sort$u16", "quicksort$u16"]);
            }
            Err(other) => panic!("depth {depth}: {other}"),
        }
    }
}

#[test]
fn disabled_instantiation_leaves_misses_unresolved() {
    let loader = jit_loader(LoaderConfig {
        instantiation_enabled: false,
        ..LoaderConfig::default()
    });
    loader.load(fixture("collections")).unwrap();
    assert!(matches!(
        loader.resolve("sum$f64"),
        Err(Error::Unresolved { .. })
    ));
    assert!(loader.resolve("sum$i32").is_ok(), "exports still resolve");
    loader.set_instantiation_enabled(true);
    assert!(loader.resolve("sum$f64").is_ok());
    assert_eq!(loader.stats().instances.instantiations, 1);
}

#[test]
fn a_closed_world_instantiates_only_names_the_note_lists() {
    let loader = Loader::new(LoaderConfig::default()).unwrap();
    JitInstantiator::new(JitConfig { open_world: false })
        .unwrap()
        .install(&loader);
    loader.load(fixture("collections")).unwrap();
    assert!(loader.resolve("sum$f64").is_ok(), "listed in possible");
    assert!(matches!(
        loader.resolve("sum$f32"),
        Err(Error::Unresolved { .. })
    ));
    assert!(matches!(
        loader.resolve("no_such_template$i64"),
        Err(Error::Unresolved { .. })
    ));
    // A struct template is no function to instantiate.
    assert!(matches!(
        loader.resolve("Vec$i64"),
        Err(Error::Unresolved { .. })
    ));
}

#[test]
fn unloading_the_module_with_the_templates_stops_new_instantiations() {
    let loader = jit_loader(LoaderConfig::default());
    let module = loader.load(fixture("collections")).unwrap();
    assert!(loader.resolve("sum$f64").is_ok());
    loader.unload(module.id()).unwrap();
    assert!(loader.resolve("sum$f64").is_ok(), "cached instances stay");
    assert!(matches!(
        loader.resolve("sum$u64"),
        Err(Error::Unresolved { .. })
    ));
    let again = loader.load(fixture("collections")).unwrap();
    assert!(loader.resolve("sum$u64").is_ok());
    let reloaded = loader.reload(again.id()).unwrap();
    assert_ne!(reloaded.id(), again.id());
    assert!(loader.resolve("max$u16").is_ok());
}

#[test]
fn no_mapping_is_writable_and_executable_around_instantiations() {
    let loader = loaded("collections");
    assert_eq!(writable_executable_mappings(), Vec::<String>::new());
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !done.load(Ordering::Acquire) {
                seen.extend(writable_executable_mappings());
            }
            seen
        })
    };
    for name in ["sum$f64", "sort$u16", "sort$f64", "min$i16", "Vec$u8$push"] {
        loader.resolve(name).unwrap();
        assert_eq!(writable_executable_mappings(), Vec::<String>::new());
    }
    loader
        .load_with_binding(fixture("app"), Binding::Now)
        .unwrap();
    done.store(true, Ordering::Release);
    assert_eq!(watcher.join().unwrap(), Vec::<String>::new());
}

#[test]
fn a_trap_in_an_instantiation_is_the_trap_the_interpreter_raises() {
    let loader = loaded("collections");
    let empty: [i32; 0] = [];
    for (symbol, args) in [
        ("max$i32", [ptr(&empty), len(0)]),
        ("min$i16", [ptr(&empty), len(0)]),
    ] {
        let (compiled, interpreted) = run_both(&loader, symbol, &args);
        assert_eq!(compiled, Err(TrapKind::Explicit(1)), "{symbol}");
        let kind = interpreted.unwrap_err().kind;
        assert_eq!(
            kind,
            jit::ErrorKind::Trap(TrapKind::Explicit(1)),
            "{symbol}"
        );
    }
}

#[test]
fn a_miss_publishes_the_instantiation_and_its_callees_at_once() {
    let loader = loaded("collections");
    let before = loader.stats();
    // sort$u16 -> quicksort$u16 -> insertion_sort$u16: three functions.
    loader.resolve("sort$u16").unwrap();
    let after = loader.stats();
    assert_eq!(
        after.instances.instantiations - before.instances.instantiations,
        3
    );
    assert_eq!(after.memory.publications - before.memory.publications, 1);
    assert_eq!(
        after.memory.functions_published - before.memory.functions_published,
        3
    );
    // The callees answer from the cache, inside the same publication.
    let callee = loader.resolve("insertion_sort$u16").unwrap().get();
    let entry = loader.resolve("sort$u16").unwrap().get();
    assert!(callee.abs_diff(entry) < 4096, "{callee:#x} {entry:#x}");
    assert_eq!(
        loader.stats().memory.publications,
        after.memory.publications
    );
}

/// A copy of the collections fixture in a fresh directory, loaded, with
/// `sum$f64` (listed in its note) instantiated.
fn copy_with_sum_f64_instantiated() -> (
    tempfile::TempDir,
    PathBuf,
    Loader,
    Arc<loader::LoadedModule>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collections.smf");
    std::fs::copy(fixture("collections"), &path).unwrap();
    let loader = jit_loader(LoaderConfig::default());
    let module = loader.load(&path).unwrap();
    loader.resolve("sum$f64").unwrap();
    (dir, path, loader, module)
}

#[test]
fn the_note_is_written_back_into_the_module_file_atomically() {
    let (dir, path, loader, module) = copy_with_sum_f64_instantiated();
    loader.resolve("sum$f32").unwrap(); // not listed: the note does not change for it
    assert!(loader::write_back_note(&module).unwrap());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file is left behind"
    );

    let bytes = std::fs::read(&path).unwrap();
    let written = smf::Module::parse(&bytes).unwrap();
    let note = sdn::note::Note::parse(written.note_sdn().unwrap()).unwrap();
    assert!(note.possible("sum$f64").is_none());
    let row = note.instantiation("sum$f64").unwrap();
    assert_eq!(row.status, sdn::note::Status::JitCompiled);
    assert!(note.instantiation("sum$f32").is_none());
    assert_eq!(note.possible.len(), module.note().unwrap().possible.len());
    assert_eq!(written.template_code(), module.template_code());

    // The rewritten module loads and runs, and the running one still does.
    let fresh = loaded_from(&path);
    let ints = [4i32, -1, 10];
    for loader in [&loader, &fresh] {
        assert_eq!(
            call(
                loader,
                "sum$i32",
                "fn(ptr<i32>, i64) -> i32",
                &[ptr(&ints), len(3)]
            ),
            Ok(Some(Value::I32(13)))
        );
    }
    assert_eq!(
        fresh.modules()[0]
            .note()
            .unwrap()
            .instantiation("sum$f64")
            .unwrap()
            .status,
        sdn::note::Status::JitCompiled
    );
}

#[test]
fn a_note_written_back_leaves_only_the_module_and_is_what_a_reload_reads() {
    let (dir, _path, loader, module) = copy_with_sum_f64_instantiated();
    assert!(loader::write_back_note(&module).unwrap());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["collections.smf"], "the temporary file is gone");
    // The path names a new version: the running module is stale.
    assert!(module.is_stale());
    assert_eq!(loader.stats().stale_modules, 1);
    let reloaded = loader.reload(module.id()).unwrap();
    assert!(!reloaded.is_stale());
    assert_eq!(loader.stats().stale_modules, 0);
    let note = reloaded.note().unwrap();
    assert_eq!(
        note.instantiation("sum$f64").unwrap().status,
        sdn::note::Status::JitCompiled
    );
    assert!(note.possible("sum$f64").is_none());
}

#[test]
fn a_module_changed_on_disk_is_not_written_over() {
    let (_dir, path, _loader, module) = copy_with_sum_f64_instantiated();
    std::fs::copy(fixture("stats"), &path).unwrap();
    let error = loader::write_back_note(&module).unwrap_err();
    assert!(matches!(error, Error::Unsupported { .. }), "{error}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(fixture("stats")).unwrap()
    );
}

/// A module offering one template, `pick<T: int>(%x: T) -> T`, that
/// returns `answer`, under a template symbol with `binding`.
fn module_offering_pick(dir: &std::path::Path, answer: i64, binding: smf::Binding) -> PathBuf {
    let text = format!(
        "fn pick<T: int>(%x: T) -> T {{\nentry:\n    %r = const T {answer}\n    ret %r\n}}\n"
    );
    let lib = jit::text::parse_library(&text).unwrap();
    let encoded = jit::binary::encode_library(&lib);
    let mut b = smf::ModuleBuilder::new();
    b.set_template_code(&encoded.bytes).unwrap();
    let mut symbol = smf::SymbolDef::template("pick", 1, encoded.offsets[0] as u64);
    symbol.binding = binding;
    b.add_symbol(symbol).unwrap();
    let path = dir.join(format!("pick{answer}.smf"));
    std::fs::write(&path, b.build().unwrap()).unwrap();
    path
}

#[test]
fn a_global_template_wins_over_a_local_copy_and_load_order_breaks_ties() {
    use smf::Binding::{Global, Local, Weak};
    let dir = tempfile::tempdir().unwrap();
    // (modules in load order as (answer, binding), the answer expected)
    let cases = [
        (vec![(1, Local), (2, Global)], 2),
        (vec![(1, Global), (2, Local)], 1),
        (vec![(1, Weak), (2, Global)], 2),
        (vec![(1, Global), (2, Global)], 1),
        (vec![(1, Local), (2, Local)], 1),
        (vec![(3, Local)], 3),
    ];
    for (modules, expected) in cases {
        let loader = jit_loader(LoaderConfig::default());
        for &(answer, binding) in &modules {
            loader
                .load(module_offering_pick(dir.path(), answer, binding))
                .unwrap();
        }
        assert_eq!(
            call(&loader, "pick$i32", "fn(i32) -> i32", &[Value::I32(0)]),
            Ok(Some(Value::I32(expected))),
            "{modules:?}"
        );
    }
}

#[test]
fn address_info_names_instances_module_exports_and_nothing_elsewhere() {
    let loader = jit_loader(LoaderConfig::default());
    let module = loader.load(fixture("collections")).unwrap();
    let sum = loader.resolve("sum$f64").unwrap().get();
    for address in [sum, sum + 1] {
        let info = loader.address_info(address).unwrap();
        assert_eq!(info.owner, loader::AddressOwner::Instance);
        assert_eq!(info.symbol.as_deref(), Some("sum$f64"));
        assert_eq!(info.symbol_address, Some(sum));
        assert_eq!(info.module.unwrap().id(), module.id());
    }
    let exported = module.export("sum$i32").unwrap().get();
    let info = loader.address_info(exported + 2).unwrap();
    assert_eq!(info.owner, loader::AddressOwner::Module);
    assert_eq!(info.symbol.as_deref(), Some("sum$i32"));
    assert_eq!(info.symbol_address, Some(exported));
    assert_eq!(info.module.unwrap().id(), module.id());
    let local = 0u64;
    assert!(loader.address_info(&raw const local as usize).is_none());
    assert!(loader.address_info(0).is_none());
}
