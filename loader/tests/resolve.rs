//! Resolution order and the miss hook: instantiation, recursion, depth,
//! cycles, the disable switch, failures and concurrent misses.

// These tests call the code the loader placed and read memory it mapped.
#![allow(unsafe_code)]

mod common;

use std::sync::{Arc, Barrier};

use common::{Spec, TestJit, call_i32, returns};
use loader::{Error, InstantiationError, Loader, LoaderConfig};

fn loader_with(jit: &Arc<TestJit>, max_depth: usize) -> Loader {
    let loader = Loader::new(LoaderConfig {
        max_depth,
        ..LoaderConfig::default()
    })
    .unwrap();
    loader.set_instantiator(Arc::clone(jit));
    loader
}

#[test]
fn a_miss_is_instantiated_once_then_served_from_the_cache() {
    let jit = Arc::new(TestJit::default());
    let loader = loader_with(&jit, 8);
    assert_eq!(common::writable_executable_mappings(), Vec::<String>::new());
    let first = loader.resolve("const$42").unwrap();
    assert_eq!(common::writable_executable_mappings(), Vec::<String>::new());
    assert_eq!(call_i32(first), 42);
    let second = loader.resolve("const$42").unwrap();
    assert_eq!(first, second);
    assert_eq!(jit.count("const$42"), 1);
    let stats = loader.stats().instances;
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.instantiations, 1);
    assert_eq!(stats.cache_hits, 1);
    assert_eq!(stats.instances, 1);
    assert!(stats.code_bytes >= 6, "mov eax, imm32; ret is 6 bytes");
}

#[test]
fn exports_win_over_instantiation() {
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("const$7", returns(1000))
        .write(dir.path(), "m.smf");
    let jit = Arc::new(TestJit::default());
    let loader = loader_with(&jit, 8);
    loader.load(&path).unwrap();
    assert_eq!(call_i32(loader.resolve("const$7").unwrap()), 1000);
    assert_eq!(jit.total.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn recursive_instantiation_resolves_through_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("forty", returns(40))
        .write(dir.path(), "m.smf");
    let jit = Arc::new(TestJit::default());
    let loader = loader_with(&jit, 8);
    loader.load(&path).unwrap();
    // sum$forty$const$2 would split oddly; nest through deep instead.
    let sum = loader.resolve("sum$forty$forty").unwrap();
    assert_eq!(call_i32(sum), 80);
    let deep = loader.resolve("deep$5").unwrap();
    assert_eq!(call_i32(deep), 5);
    for n in 0..=5 {
        assert_eq!(jit.count(&format!("deep${n}")), 1);
    }
    assert_eq!(jit.count("const$1"), 1);
}

#[test]
fn mutually_recursive_instantiations_meet_through_a_slot() {
    let jit = Arc::new(TestJit::default());
    let loader = loader_with(&jit, 8);
    let slot = loader.slot("ping$");
    assert_eq!(slot.get(), None, "a slot resolves nothing by itself");
    let ping = loader.resolve("ping$").unwrap();
    assert_eq!(
        slot.get(),
        Some(ping),
        "filled when the instantiation finished"
    );
    // SAFETY: ping$ is `extern "C" fn(u32) -> u32`.
    let f: extern "C" fn(u32) -> u32 = unsafe { std::mem::transmute(ping.as_ptr()) };
    assert_eq!(f(0), 0);
    assert_eq!(f(1), 1);
    assert_eq!(f(11), 11);
    assert_eq!(jit.count("ping$"), 1);
    assert_eq!(jit.count("pong$"), 1);
    assert_eq!(
        loader.slot("pong$").get(),
        Some(loader.resolve("pong$").unwrap())
    );
}

#[test]
fn depth_bound_is_exact_and_reports_the_chain() {
    let jit = Arc::new(TestJit::default());
    // deep$3 needs deep$3, deep$2, deep$1, deep$0 in flight at once: depth 4.
    let loader = loader_with(&jit, 4);
    assert_eq!(call_i32(loader.resolve("deep$3").unwrap()), 3);

    let loader = loader_with(&jit, 3);
    match loader.resolve("deep$3") {
        Err(Error::DepthExceeded { name, limit, path }) => {
            assert_eq!(name, "deep$0");
            assert_eq!(limit, 3);
            assert_eq!(path, ["deep$3", "deep$2", "deep$1", "deep$0"]);
        }
        other => panic!("expected a depth error, got {other:?}"),
    }
    // A failed chain leaves nothing half-made behind: a shallower request works.
    assert_eq!(call_i32(loader.resolve("deep$2").unwrap()), 2);
}

#[test]
fn a_cycle_is_reported_with_its_path() {
    let jit = Arc::new(TestJit::default());
    let loader = loader_with(&jit, 16);
    match loader.resolve("cyc$a") {
        Err(Error::Cycle { path }) => assert_eq!(path, ["cyc$a", "cyc$b", "cyc$c", "cyc$a"]),
        other => panic!("expected a cycle, got {other:?}"),
    }
    let text = loader.resolve("cyc$b").unwrap_err().to_string();
    assert_eq!(
        text,
        "instantiation cycle: cyc$b -> cyc$c -> cyc$a -> cyc$b"
    );
    assert!(loader.stats().instances.failures >= 2);
}

#[test]
fn disabled_instantiation_and_missing_instantiator_fail_as_unresolved() {
    let jit = Arc::new(TestJit::default());
    let loader = loader_with(&jit, 8);
    let cached = loader.resolve("const$3").unwrap();
    loader.set_instantiation_enabled(false);
    assert!(!loader.instantiation_enabled());
    assert_eq!(
        loader.resolve("const$3").unwrap(),
        cached,
        "cached instances still resolve"
    );
    let err = loader.resolve("const$4").unwrap_err();
    assert_eq!(
        err.to_string(),
        "symbol 'const$4' is not defined by any loaded module (instantiation is disabled)"
    );
    loader.set_instantiation_enabled(true);
    assert_eq!(call_i32(loader.resolve("const$4").unwrap()), 4);
    loader.clear_instantiator();
    assert!(matches!(
        loader.resolve("const$5"),
        Err(Error::Unresolved { .. })
    ));
}

#[test]
fn declined_and_failed_names_are_not_cached() {
    let jit = Arc::new(TestJit::default());
    let loader = loader_with(&jit, 8);
    assert!(matches!(
        loader.resolve("other"),
        Err(Error::Unresolved { .. })
    ));
    for _ in 0..2 {
        match loader.resolve("fail$x") {
            Err(Error::InstantiationFailed { name, .. }) => assert_eq!(name, "fail$x"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
    let stats = loader.stats().instances;
    assert_eq!(
        stats.requests, 3,
        "each failed or declined name is asked again"
    );
    assert_eq!(stats.declined, 1);
    assert_eq!(stats.failures, 2);
    assert_eq!(stats.instances, 0);
}

#[test]
fn eight_threads_missing_overlapping_names_compile_each_once() {
    let jit = Arc::new(TestJit::with_delay(20));
    let loader = loader_with(&jit, 8);
    let names: Vec<String> = (0..4).map(|i| format!("const${}", 100 + i)).collect();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let loader = loader.clone();
            let barrier = Arc::clone(&barrier);
            let names = names.clone();
            std::thread::spawn(move || {
                barrier.wait();
                // Every thread asks for every name, starting at a different one.
                (0..names.len())
                    .map(|i| {
                        let name = &names[(t + i) % names.len()];
                        (name.clone(), loader.resolve(name).unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    for name in &names {
        assert_eq!(jit.count(name), 1, "{name} compiled more than once");
        let addresses: Vec<_> = results
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .collect();
        assert_eq!(addresses.len(), 8);
        assert!(addresses.iter().all(|a| *a == addresses[0]));
        let expected: i32 = name["const$".len()..].parse().unwrap();
        assert_eq!(call_i32(addresses[0]), expected);
    }
    let stats = loader.stats().instances;
    assert_eq!(stats.instantiations, 4);
    assert_eq!(stats.requests, 4);
    assert_eq!(stats.waits + stats.cache_hits, 28);
}

#[test]
fn two_threads_needing_each_other_report_a_cycle_instead_of_deadlocking() {
    // x$ needs y$ and y$ needs x$, each started on its own thread; the
    // delay makes both be in flight before either asks for the other.
    #[derive(Debug)]
    struct Crossed;
    impl loader::Instantiator for Crossed {
        fn instantiate(
            &self,
            name: &str,
            ctx: &mut loader::ResolveContext<'_>,
        ) -> loader::Result<Option<loader::InstanceCode>> {
            let other = match name {
                "x$" => "y$",
                "y$" => "x$",
                _ => return Ok(None),
            };
            std::thread::sleep(std::time::Duration::from_millis(50));
            ctx.resolve(other)?;
            let f = ctx.memory().publish_function(name, &returns(1).bytes)?;
            Ok(Some(f.into()))
        }
    }
    let loader = Loader::new(LoaderConfig::default()).unwrap();
    loader.set_instantiator(Crossed);
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = ["x$", "y$"]
        .into_iter()
        .map(|name| {
            let loader = loader.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                loader.resolve(name)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let cycles: Vec<&Vec<String>> = results
        .iter()
        .filter_map(|r| match r {
            Err(Error::Cycle { path }) => Some(path),
            _ => None,
        })
        .collect();
    assert!(!cycles.is_empty(), "no cycle reported: {results:?}");
    for path in cycles {
        assert_eq!(path.len(), 3);
        assert_eq!(path.first(), path.last());
    }
}

#[test]
fn an_instantiator_that_resolves_through_a_fresh_chain_gets_a_cycle_not_a_hang() {
    // `outer$` asks the loader (not its context) for `inner$`, which asks
    // for `outer$` again: a second chain on the same thread would wait for
    // the first forever.
    #[derive(Debug)]
    struct Forgetful;
    impl loader::Instantiator for Forgetful {
        fn instantiate(
            &self,
            name: &str,
            ctx: &mut loader::ResolveContext<'_>,
        ) -> loader::Result<Option<loader::InstanceCode>> {
            let other = match name {
                "outer$" => "inner$",
                "inner$" => "outer$",
                _ => return Ok(None),
            };
            ctx.loader().resolve(other)?;
            let f = ctx.memory().publish_function(name, &returns(1).bytes)?;
            Ok(Some(f.into()))
        }
    }
    let loader = Loader::new(LoaderConfig::default()).unwrap();
    loader.set_instantiator(Forgetful);
    match loader.resolve("outer$") {
        Err(Error::Cycle { path }) => assert_eq!(path, ["outer$", "inner$", "outer$"]),
        other => panic!("expected a cycle, got {other:?}"),
    }
}

#[test]
fn a_panicking_instantiator_fails_the_name_instead_of_hanging_its_waiters() {
    #[derive(Debug)]
    struct Panics;
    impl loader::Instantiator for Panics {
        fn instantiate(
            &self,
            name: &str,
            _ctx: &mut loader::ResolveContext<'_>,
        ) -> loader::Result<Option<loader::InstanceCode>> {
            std::thread::sleep(std::time::Duration::from_millis(20));
            panic!("cannot make {name}");
        }
    }
    let loader = Loader::new(LoaderConfig::default()).unwrap();
    loader.set_instantiator(Panics);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let loader = loader.clone();
            std::thread::spawn(move || loader.resolve("boom$"))
        })
        .collect();
    for handle in handles {
        match handle.join().unwrap() {
            Err(Error::InstantiationFailed {
                name,
                source: source @ InstantiationError::Panicked,
            }) => {
                assert_eq!(name, "boom$");
                assert_eq!(source.to_string(), "the instantiator panicked");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}

#[test]
fn many_instances_stay_resolvable_and_clearing_forgets_every_one() {
    // Enough instances for the cache to fold them into its lock-free table
    // several times over.
    let jit = Arc::new(TestJit::default());
    let loader = loader_with(&jit, 8);
    let names: Vec<String> = (0..100).map(|i| format!("const${}", 1000 + i)).collect();
    let first: Vec<_> = names.iter().map(|n| loader.resolve(n).unwrap()).collect();
    for (name, address) in names.iter().zip(&first) {
        assert_eq!(loader.resolve(name).unwrap(), *address);
        assert_eq!(
            call_i32(*address),
            name["const$".len()..].parse::<i32>().unwrap()
        );
        assert_eq!(jit.count(name), 1);
    }
    assert_eq!(loader.stats().instances.instances, 100);
    assert_eq!(loader.clear_instances(), 100);
    assert_eq!(loader.stats().instances.instances, 0);
    for name in &names {
        let again = loader.resolve(name).unwrap();
        assert_eq!(
            call_i32(again),
            name["const$".len()..].parse::<i32>().unwrap()
        );
        assert_eq!(
            jit.count(name),
            2,
            "{name} was compiled again after clearing"
        );
    }
}
