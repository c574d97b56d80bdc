//! Shared memories and tables across modules and tiers (BRIEF §12), with
//! the real fixtures: `heap.smf` defines the memory `heap` and the table
//! `dispatch`, `heapuser.smf` imports both. One descriptor per name, used
//! by both modules, compiled and interpreted code alike; grows are seen at
//! once; out-of-bounds accesses trap.

// These tests call the code the loader placed.
#![allow(unsafe_code)]

mod common;

use std::sync::Arc;

use common::{call, fixture};
use jit::TrapKind;
use jit::interp::Value;
use loader::{Error, Loader, LoaderConfig, TierConfig, TierPolicy};

/// A loader in `policy` (auto compiles after two calls) with both fixtures.
fn loaded(policy: TierPolicy) -> Loader {
    let config = LoaderConfig {
        tier: TierConfig {
            policy,
            calls: 2,
            back_edges: 50,
            background: false,
        },
        ..LoaderConfig::default()
    };
    let loader = Loader::with_jit(config).unwrap();
    loader.load(fixture("heap")).unwrap();
    loader.load(fixture("heapuser")).unwrap();
    loader
}

const POLICIES: [TierPolicy; 3] = [
    TierPolicy::Compiled,
    TierPolicy::Interpreted,
    TierPolicy::Auto,
];

fn i64s(v: i64) -> Value {
    Value::I64(v)
}

#[test]
fn a_writes_b_reads_b_grows_a_writes_past_the_old_end_in_every_tier() {
    for policy in POLICIES {
        let loader = loaded(policy);
        let set = |i, v| call(&loader, "heap_set$i64", "fn(i64, i64)", &[i64s(i), i64s(v)]);
        let get = |i| call(&loader, "heap_get$i64", "fn(i64) -> i64", &[i64s(i)]);
        let peek = |off| call(&loader, "peek$i64", "fn(i64) -> i64", &[i64s(off)]);
        let pages = || call(&loader, "pages$i64", "fn() -> i64", &[]);
        // Run the sequence three times: under `auto` the first calls are
        // interpreted and the later ones compiled, so A and B mix tiers.
        for round in 0..3i64 {
            // A writes, B reads.
            assert_eq!(set(3, 77 + round), Ok(None), "{policy:?}");
            assert_eq!(peek(24), Ok(Some(i64s(77 + round))), "{policy:?}");
            // Past the end of the memory: both trap, in whichever tier.
            let end = 65_536 * (1 + 2 * round);
            assert_eq!(get(end / 8), Err(TrapKind::OutOfBounds), "{policy:?}");
            assert_eq!(peek(end - 7), Err(TrapKind::OutOfBounds), "{policy:?}");
            assert_eq!(peek(-8), Err(TrapKind::OutOfBounds), "{policy:?}");
            // B grows; A reads and writes past the old end.
            let grown = call(&loader, "grow_pages$i64", "fn(i64) -> i64", &[i64s(2)]);
            assert_eq!(grown, Ok(Some(i64s(1 + 2 * round))), "{policy:?}");
            assert_eq!(pages(), Ok(Some(i64s(3 + 2 * round))));
            let past = end / 8 + 5;
            assert_eq!(get(past), Ok(Some(i64s(0))), "new bytes read zero");
            assert_eq!(set(past, 99), Ok(None));
            assert_eq!(get(past), Ok(Some(i64s(99))));
            assert_eq!(peek(past * 8), Ok(Some(i64s(99))));
        }
        // The host sees the same memory.
        let memory = loader.shared_memory("heap").unwrap();
        assert_eq!(memory.size_pages(), 7);
        let mut word = [0u8; 8];
        memory.read(24, &mut word).unwrap();
        assert_eq!(i64::from_le_bytes(word), 79);
        // Past the maximum (16 pages) the grow fails and changes nothing.
        let refused = call(&loader, "grow_pages$i64", "fn(i64) -> i64", &[i64s(10)]);
        assert_eq!(refused, Ok(Some(i64s(-1))));
        assert_eq!(memory.size_pages(), 7);
        if policy == TierPolicy::Auto {
            let stats = loader.tier_stats("heap_set$i64").unwrap();
            assert!(
                stats.tier_ups == 1 && stats.interpreted_calls == 2,
                "{stats:?}"
            );
        }
    }
}

#[test]
fn a_vector_in_the_shared_heap_grows_page_by_page() {
    for policy in POLICIES {
        let loader = loaded(policy);
        let push = |x| call(&loader, "heap_push$i64", "fn(i64) -> i64", &[i64s(x)]);
        // 8 191 elements fill the first page after the 8-byte length.
        let n = 8_191 + 100;
        for k in 1..=n {
            assert_eq!(push(k), Ok(Some(i64s(k))), "{policy:?}");
        }
        assert_eq!(loader.shared_memory("heap").unwrap().size_pages(), 2);
        let sum = call(&loader, "heap_sum$i64", "fn() -> i64", &[]);
        assert_eq!(sum, Ok(Some(i64s(n * (n + 1) / 2))), "{policy:?}");
        // B reads the length A's vector keeps in word 0.
        assert_eq!(
            call(&loader, "peek$i64", "fn(i64) -> i64", &[i64s(0)]),
            Ok(Some(i64s(n)))
        );
    }
}

#[test]
fn b_fills_a_table_entry_and_a_calls_through_it() {
    for policy in POLICIES {
        let loader = loaded(policy);
        let handle = |i, x| {
            call(
                &loader,
                "call_handler$i64",
                "fn(i64, i64) -> i64",
                &[i64s(i), i64s(x)],
            )
        };
        // Nobody installed entry 1 yet: a null entry.
        assert_eq!(handle(1, 5), Err(TrapKind::NullPointer), "{policy:?}");
        let install = |sym: &str, i| call(&loader, sym, "fn(i64)", &[i64s(i)]);
        assert_eq!(install("install_scale$i64", 1), Ok(None));
        assert_eq!(install("install_scale$i32", 2), Ok(None));
        for _ in 0..3 {
            assert_eq!(handle(1, 5), Ok(Some(i64s(40))), "{policy:?}");
            assert_eq!(handle(2, 5), Ok(Some(i64s(20))), "{policy:?}");
        }
        let narrow = call(
            &loader,
            "call_handler$i32",
            "fn(i64, i32) -> i32",
            &[i64s(1), Value::I32(-3)],
        );
        assert_eq!(narrow, Ok(Some(Value::I32(-24))));
        // The entry holds what B's `func_addr` gave: the resolved pointer.
        let (table, _) = loader.shared_table("dispatch").unwrap();
        let scale = loader.resolve("scale$i64").unwrap().get() as u64;
        assert_eq!(table.get(1), Some(scale));
        // Out of bounds: the table has 4 entries.
        assert_eq!(handle(4, 1), Err(TrapKind::OutOfBounds));
        assert_eq!(handle(-1, 1), Err(TrapKind::OutOfBounds));
        assert_eq!(install("install_scale$i64", 4), Err(TrapKind::OutOfBounds));
        // B grows the table; the new entries are null.
        let grown = call(&loader, "grow_handlers$i64", "fn(i64) -> i64", &[i64s(2)]);
        assert_eq!(grown, Ok(Some(i64s(4))));
        assert_eq!(handle(5, 1), Err(TrapKind::NullPointer));
        assert_eq!(install("install_scale$i64", 5), Ok(None));
        assert_eq!(handle(5, 1), Ok(Some(i64s(8))));
        let refused = call(&loader, "grow_handlers$i64", "fn(i64) -> i64", &[i64s(60)]);
        assert_eq!(refused, Ok(Some(i64s(-1))));
        assert_eq!(table.len(), 6);
    }
}

#[test]
fn grows_racing_with_compiled_and_interpreted_accesses_lose_nothing() {
    // Compiled and interpreted code in one process, on one memory.
    let compiled = Arc::new(loaded(TierPolicy::Compiled));
    let interpreted = loaded(TierPolicy::Interpreted);
    // Both loaders define `heap`; the interpreted one's threads use its own
    // memory, so run both races.
    for loader in [Arc::clone(&compiled), Arc::new(interpreted)] {
        let memory = loader.shared_memory("heap").unwrap();
        std::thread::scope(|s| {
            let grower = Arc::clone(&loader);
            s.spawn(move || {
                let mut grown = 0;
                loop {
                    let r = call(&grower, "grow_pages$i64", "fn(i64) -> i64", &[i64s(1)]);
                    if r == Ok(Some(i64s(-1))) {
                        break;
                    }
                    grown += 1;
                }
                assert_eq!(grown, 15);
            });
            for t in 0..3i64 {
                let loader = Arc::clone(&loader);
                s.spawn(move || {
                    for k in 0..1_500i64 {
                        // Each thread owns every third word of page 0.
                        let i = 3 * k + t;
                        let set = call(
                            &loader,
                            "heap_set$i64",
                            "fn(i64, i64)",
                            &[i64s(i), i64s(k + 1)],
                        );
                        assert_eq!(set, Ok(None));
                        let got = call(&loader, "heap_get$i64", "fn(i64) -> i64", &[i64s(i)]);
                        assert_eq!(got, Ok(Some(i64s(k + 1))));
                        // Past the maximum is out of bounds whatever the length.
                        let past =
                            call(&loader, "peek$i64", "fn(i64) -> i64", &[i64s(16 * 65_536)]);
                        assert_eq!(past, Err(TrapKind::OutOfBounds));
                        // The last word of the current length is always readable.
                        let Ok(Some(Value::I64(pages))) =
                            call(&loader, "pages$i64", "fn() -> i64", &[])
                        else {
                            panic!("pages")
                        };
                        let last = call(
                            &loader,
                            "peek$i64",
                            "fn(i64) -> i64",
                            &[i64s(pages * 65_536 - 8)],
                        );
                        // No thread writes there: it reads zero.
                        assert_eq!(last, Ok(Some(i64s(0))), "{last:?}");
                    }
                });
            }
        });
        assert_eq!(memory.size_pages(), 16);
        for t in 0..3u64 {
            for k in [0u64, 777, 1_499] {
                let mut word = [0u8; 8];
                memory.read(8 * (3 * k + t), &mut word).unwrap();
                assert_eq!(u64::from_le_bytes(word), k + 1);
            }
        }
    }
}

#[test]
fn an_import_nobody_defines_fails_to_load_with_its_name() {
    let loader = Loader::with_jit(LoaderConfig::default()).unwrap();
    let err = loader.load(fixture("heapuser")).unwrap_err();
    assert!(
        matches!(&err, Error::SharedUnresolved { kind: "memory", name, .. } if name == "heap"),
        "{err}"
    );
    assert!(
        err.to_string().contains("imports the memory 'heap'"),
        "{err}"
    );
    assert_eq!(err.code(), -5);
    // Nothing was registered: loading the definer first then works.
    loader.load(fixture("heap")).unwrap();
    loader.load(fixture("heapuser")).unwrap();
    assert_eq!(loader.stats().shared, 2);
}

#[test]
fn a_second_definition_and_a_mismatched_import_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let loader = Loader::with_jit(LoaderConfig::default()).unwrap();
    loader.load(fixture("heap")).unwrap();
    let write = |name: &str, items: Vec<smf::SharedItem>| {
        let mut b = smf::ModuleBuilder::new();
        for item in items {
            b.add_shared_item(item).unwrap();
        }
        let path = dir.path().join(name);
        std::fs::write(&path, b.build().unwrap()).unwrap();
        path
    };
    let twice = write("twice.smf", vec![smf::SharedItem::memory("heap", 1, None)]);
    let err = loader.load(&twice).unwrap_err();
    assert!(err.to_string().contains("is already defined by"), "{err}");
    let kind = write("kind.smf", vec![smf::SharedItem::import_memory("dispatch")]);
    let err = loader.load(&kind).unwrap_err();
    assert!(err.to_string().contains("is defined as a table"), "{err}");
    let sig = write(
        "sig.smf",
        vec![smf::SharedItem::import_table("dispatch", "fn(f64) -> f64")],
    );
    let err = loader.load(&sig).unwrap_err();
    assert!(
        err.to_string().contains("its entries are `fn(i64) -> i64`"),
        "{err}"
    );
    // A maximum below the initial size is a validation error at its offset.
    let mut b = smf::ModuleBuilder::new();
    b.add_shared_item(smf::SharedItem::memory("small", 4, Some(2)))
        .unwrap();
    assert!(b.build().is_err(), "the writer refuses it too");
    assert_eq!(loader.stats().shared, 2);
}

#[test]
fn unloading_a_memory_others_import_is_refused_and_a_reload_keeps_it() {
    let loader = loaded(TierPolicy::Compiled);
    let heap = loader.modules()[0].id();
    let user = loader.modules()[1].id();
    assert_eq!(
        call(&loader, "heap_set$i64", "fn(i64, i64)", &[i64s(1), i64s(5)]),
        Ok(None)
    );
    let err = loader.unload(heap).unwrap_err();
    assert!(
        matches!(&err, Error::InUse { name, .. } if name == "heap" || name == "dispatch"),
        "{err}"
    );
    assert!(err.to_string().contains("is imported by"), "{err}");
    assert_eq!(err.code(), -11);
    // A reload of the definer keeps the memory and its contents.
    let before = loader.shared_memory("heap").unwrap();
    loader.reload(heap).unwrap();
    let after = loader.shared_memory("heap").unwrap();
    assert!(Arc::ptr_eq(&before, &after));
    assert_eq!(
        call(&loader, "peek$i64", "fn(i64) -> i64", &[i64s(8)]),
        Ok(Some(i64s(5)))
    );
    // Once the importer is gone, the definer may go.
    loader.unload(user).unwrap();
    let heap = loader.modules()[0].id();
    loader.unload(heap).unwrap();
    assert!(loader.shared_memory("heap").is_none());
    assert_eq!(loader.stats().shared, 0);
}

#[test]
fn code_made_before_its_definer_went_keeps_its_memory_and_a_new_definer_takes_it_over() {
    for policy in POLICIES {
        let config = LoaderConfig {
            tier: TierConfig {
                policy,
                ..TierConfig::default()
            },
            ..LoaderConfig::default()
        };
        let loader = Loader::with_jit(config).unwrap();
        let heap = loader.load(fixture("heap")).unwrap().id();
        let set = loader.resolve("heap_set$i64").unwrap().as_ptr();
        let get = loader.resolve("heap_get$i64").unwrap().as_ptr();
        assert_eq!(
            common::call_at(set, "fn(i64, i64)", &[i64s(2), i64s(31)]),
            Ok(None)
        );
        let memory = loader.shared_memory("heap").unwrap();
        // Nothing imports it: the definer may go. What was made from its
        // templates stays callable and reaches the same memory, in any tier.
        loader.unload(heap).unwrap();
        assert!(loader.shared_memory("heap").is_none());
        assert_eq!(
            common::call_at(get, "fn(i64) -> i64", &[i64s(2)]),
            Ok(Some(i64s(31))),
            "{policy:?}"
        );
        assert_eq!(
            common::call_at(set, "fn(i64, i64)", &[i64s(3), i64s(32)]),
            Ok(None)
        );
        // Loading the definer again takes the same object over, contents
        // and all; new instantiations and old ones see one memory.
        loader.load(fixture("heap")).unwrap();
        let again = loader.shared_memory("heap").unwrap();
        assert!(Arc::ptr_eq(&memory, &again), "{policy:?}");
        let peek = call(&loader, "heap_get$f64", "fn(i64) -> f64", &[i64s(3)]);
        assert_eq!(peek, Ok(Some(Value::F64(f64::from_bits(32)))));
        assert_eq!(
            common::call_at(get, "fn(i64) -> i64", &[i64s(3)]),
            Ok(Some(i64s(32)))
        );
    }
}

#[test]
fn a_definition_that_would_change_a_name_code_still_uses_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let loader = Loader::with_jit(LoaderConfig::default()).unwrap();
    // The heap module from a file of ours, so that it can be rewritten.
    let path = dir.path().join("heap.smf");
    std::fs::copy(fixture("heap"), &path).unwrap();
    let heap = loader.load(&path).unwrap().id();
    loader.load(fixture("heapuser")).unwrap();
    let rewrite = |items: Vec<smf::SharedItem>| {
        let mut b = smf::ModuleBuilder::new();
        for item in items {
            b.add_shared_item(item).unwrap();
        }
        let tmp = dir.path().join("next.smf");
        std::fs::write(&tmp, b.build().unwrap()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    // A new version without the table heapuser imports: the reload is
    // refused, and everything stays as it was.
    rewrite(vec![smf::SharedItem::memory("heap", 1, Some(16))]);
    let err = loader.reload(heap).unwrap_err();
    assert!(
        err.to_string()
            .contains("the new version no longer defines it"),
        "{err}"
    );
    assert!(loader.shared_table("dispatch").is_some());
    // A new version changing the memory's sizes: refused too.
    rewrite(vec![
        smf::SharedItem::memory("heap", 2, Some(16)),
        smf::SharedItem::table("dispatch", "fn(i64) -> i64", 4, Some(64)),
    ]);
    let err = loader.reload(heap).unwrap_err();
    assert!(
        err.to_string().contains("changes the sizes or signature"),
        "{err}"
    );
    // Once both modules are gone, a module defining `heap` with other
    // sizes is refused: code made from the old one still reaches it.
    let user = loader.modules()[1].id();
    loader.unload(user).unwrap();
    loader.unload(heap).unwrap();
    let err = loader.load(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains("unloaded since; code made while it was loaded still uses it"),
        "{err}"
    );
    // The same sizes take it over.
    rewrite(vec![
        smf::SharedItem::memory("heap", 1, Some(16)),
        smf::SharedItem::table("dispatch", "fn(i64) -> i64", 4, Some(64)),
    ]);
    loader.load(&path).unwrap();
    assert_eq!(loader.stats().shared, 2);
}
