//! A reload re-instantiates: what was made from the old templates (or calls
//! what was) leaves the instance cache, slots and lazily bound imports move
//! to the new instances, and the old code stays mapped for whoever still
//! runs it until the embedder reclaims it.

// These tests call the code the loader placed.
#![allow(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Code, Spec, call_at, call_i32, forwards};
use jit::interp::Value;
use loader::{
    Binding, Error, InstanceCode, Instantiator, Loader, LoaderConfig, ModuleId, ResolveContext,
    Tier, TierConfig, TierPolicy,
};

const SIG: &str = "fn(i32) -> i32";

/// `answer<T>` returning `value` whatever its argument.
fn answer(value: i32) -> String {
    constant("answer", value)
}

/// A template `name<T>` returning `value` whatever its argument.
fn constant(name: &str, value: i32) -> String {
    format!("fn {name}<T: int>(%x: T) -> T {{\nentry:\n    %r = const T {value}\n    ret %r\n}}\n")
}

/// `twice<T>(x) = 2 × answer$i32(x)`: a template of another module calling
/// an instantiation of `answer`.
const TWICE: &str = "\
extern fn @answer$i32(i32) -> i32
fn twice<T: int>(%x: i32) -> i32 {
entry:
    %a = call @answer$i32(%x)
    %b = add i32 %a, %a
    ret %b
}
";

/// Writes a module offering the templates of `text` at `dir/file`, by
/// renaming a new file over it, as tools update module files.
fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let fresh = common::module_of(dir, &format!("{file}.new"), text);
    let path = dir.join(file);
    std::fs::rename(fresh, &path).unwrap();
    path
}

fn loader(policy: TierPolicy) -> Loader {
    Loader::with_jit(LoaderConfig {
        tier: TierConfig {
            policy,
            calls: 1,
            back_edges: 1,
            background: false,
        },
        ..LoaderConfig::default()
    })
    .unwrap()
}

/// A compiling loader with `answer` (returning `value`) loaded from
/// `dir/answer.smf`, and that module's id.
fn with_answer(dir: &Path, value: i32) -> (Loader, ModuleId) {
    let loader = loader(TierPolicy::Compiled);
    let id = loader
        .load(write(dir, "answer.smf", &answer(value)))
        .unwrap()
        .id();
    (loader, id)
}

/// Calls the `fn(i32) -> i32` at `address`.
fn run(address: usize) -> i32 {
    match call_at(address as *const u8, SIG, &[Value::I32(0)]) {
        Ok(Some(Value::I32(v))) => v,
        other => panic!("{other:?}"),
    }
}

fn resolve(loader: &Loader, name: &str) -> usize {
    loader.resolve(name).unwrap().get()
}

/// Loads `answer` returning 1, calls `answer$i32` through its slot and a
/// resolved address, rewrites the module to return 2 and reloads it.
fn reload_changes_the_body(policy: TierPolicy) {
    let dir = tempfile::tempdir().unwrap();
    let loader = loader(policy);
    let path = write(dir.path(), "answer.smf", &answer(1));
    let v1 = loader.load(&path).unwrap();
    let slot = loader.slot("answer$i32");
    let old = resolve(&loader, "answer$i32");
    assert_eq!(slot.get().unwrap().get(), old);
    assert_eq!(run(old), 1);
    assert_eq!(
        loader.instance("answer$i32").unwrap().origin(),
        Some(v1.id())
    );

    write(dir.path(), "answer.smf", &answer(2));
    let v2 = loader.reload(v1.id()).unwrap();
    let through_slot = slot.get().expect("made again at once").get();
    assert_ne!(through_slot, old);
    assert_eq!(run(through_slot), 2, "the old slot reaches the new body");
    assert_eq!(resolve(&loader, "answer$i32"), through_slot);
    assert_eq!(run(resolve(&loader, "answer$i32")), 2, "a fresh resolve");
    assert_eq!(
        loader.instance("answer$i32").unwrap().origin(),
        Some(v2.id())
    );
    // Other arguments are made from the new templates on their first miss.
    assert_eq!(run(resolve(&loader, "answer$u8")) & 0xFF, 2);

    // Code still running in (or about to enter) the old instance keeps it.
    assert_eq!(run(old), 1);
    assert_eq!(loader.reclaim_replaced(), 1);
}

#[test]
fn a_reload_remakes_instances_of_its_templates_behind_their_slots() {
    reload_changes_the_body(TierPolicy::Compiled);
}

#[test]
fn a_reload_remakes_interpreted_instances_too() {
    reload_changes_the_body(TierPolicy::Interpreted);
}

/// Loads `answer` (returning 1) and `twice`, calls `twice$i32`, reloads
/// `answer` returning 5, and returns `twice$i32`'s result then.
fn a_caller_after_its_callee_reloads(loader: &Loader, calls_before: usize) -> i32 {
    let dir = tempfile::tempdir().unwrap();
    let answers = write(dir.path(), "answer.smf", &answer(1));
    let first = loader.load(&answers).unwrap();
    loader.load(write(dir.path(), "twice.smf", TWICE)).unwrap();
    let twice = resolve(loader, "twice$i32");
    for _ in 0..calls_before {
        assert_eq!(run(twice), 2);
    }
    write(dir.path(), "answer.smf", &answer(5));
    loader.reload(first.id()).unwrap();
    assert!(
        loader.instance("twice$i32").is_none(),
        "dropped with the instance it calls"
    );
    run(resolve(loader, "twice$i32"))
}

#[test]
fn instances_calling_a_dropped_instance_are_dropped_with_it() {
    let loader = loader(TierPolicy::Compiled);
    assert_eq!(a_caller_after_its_callee_reloads(&loader, 1), 10);
}

#[test]
fn a_tiered_instantiation_compiled_after_its_miss_is_dropped_with_what_it_calls() {
    // `twice$i32` is interpreted at its miss (its callee unresolved), and
    // compiled at its second call, linking to `answer$i32`'s stub.
    let loader = loader(TierPolicy::Auto);
    assert_eq!(a_caller_after_its_callee_reloads(&loader, 3), 10);
    let stats = loader.tier_stats("twice$i32").unwrap();
    assert_eq!(stats.tier, Tier::Interpreted, "a new record");
}

#[test]
fn instances_that_do_not_reach_the_module_stay() {
    let dir = tempfile::tempdir().unwrap();
    let (loader, answers) = with_answer(dir.path(), 1);
    loader
        .load(write(dir.path(), "seven.smf", &constant("seven", 7)))
        .unwrap();
    let seven = resolve(&loader, "seven$i32");
    resolve(&loader, "answer$i32");
    loader.reload(answers).unwrap();
    assert_eq!(resolve(&loader, "seven$i32"), seven, "still cached");
    assert!(
        loader.instance("answer$i32").is_none(),
        "no slot: made lazily"
    );
    assert_eq!(loader.stats().instances.instances, 1);
}

#[test]
fn a_lazily_bound_import_binds_again_after_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (loader, answers) = with_answer(dir.path(), 1);
    let user = Spec::new()
        .function("ask", forwards("answer$i32", Code::call_plt))
        .write(dir.path(), "user.smf");
    let user = loader.load_with_binding(&user, Binding::Lazy).unwrap();
    let ask = user.export("ask").unwrap();
    assert_eq!(call_i32(ask), 1);
    let bound = user.lazy_imports().next().unwrap().1;
    assert_eq!(bound, loader.instance("answer$i32").map(|i| i.address()));

    write(dir.path(), "answer.smf", &answer(3));
    loader.reload(answers).unwrap();
    assert_eq!(user.lazy_imports().next().unwrap().1, None, "unbound");
    assert_eq!(call_i32(ask), 3, "bound again at its next call");
    assert_eq!(
        user.lazy_imports().next().unwrap().1,
        loader.instance("answer$i32").map(|i| i.address())
    );
}

#[test]
fn a_lazily_bound_import_of_an_export_follows_the_reload() {
    let dir = tempfile::tempdir().unwrap();
    let loader = Loader::new(LoaderConfig::default()).unwrap();
    let provider = dir.path().join("provider.smf");
    let write_provider = |value| {
        let fresh = Spec::new()
            .function("provided", common::returns(value))
            .write(dir.path(), "provider.new");
        std::fs::rename(fresh, &provider).unwrap();
    };
    write_provider(4);
    let v1 = loader.load(&provider).unwrap();
    let user = Spec::new()
        .function("ask", forwards("provided", Code::call_plt))
        .write(dir.path(), "user.smf");
    let user = loader.load_with_binding(&user, Binding::Lazy).unwrap();
    let ask = user.export("ask").unwrap();
    assert_eq!(call_i32(ask), 4);
    write_provider(6);
    loader.reload(v1.id()).unwrap();
    assert_eq!(call_i32(ask), 6);
}

/// An instantiator that tries to reload a module from inside a miss.
struct Reloading {
    loader: std::sync::OnceLock<Loader>,
    module: std::sync::OnceLock<ModuleId>,
    refused: AtomicBool,
}

impl Instantiator for Reloading {
    fn instantiate(
        &self,
        name: &str,
        ctx: &mut ResolveContext<'_>,
    ) -> loader::Result<Option<InstanceCode>> {
        if let (Some(loader), Some(&id)) = (self.loader.get(), self.module.get()) {
            let refused = matches!(loader.reload(id), Err(Error::Unsupported { .. }));
            self.refused.store(refused, Ordering::SeqCst);
        }
        let code = common::returns(8).bytes;
        Ok(Some(ctx.memory().publish_function(name, &code)?.into()))
    }
}

#[test]
fn a_reload_from_inside_an_instantiation_is_refused_rather_than_waiting_for_itself() {
    let dir = tempfile::tempdir().unwrap();
    let loader = Loader::new(LoaderConfig::default()).unwrap();
    let module = loader
        .load(
            Spec::new()
                .function("f", common::returns(1))
                .write(dir.path(), "f.smf"),
        )
        .unwrap();
    let reloading = Arc::new(Reloading {
        loader: std::sync::OnceLock::new(),
        module: std::sync::OnceLock::new(),
        refused: AtomicBool::new(false),
    });
    // The instantiator holds a clone of the loader: a cycle the test ends
    // by clearing the instantiator.
    let _ = reloading.loader.set(loader.clone());
    let _ = reloading.module.set(module.id());
    loader.set_instantiator(Arc::clone(&reloading));
    assert_eq!(call_i32(loader.resolve("anything").unwrap()), 8);
    assert!(reloading.refused.load(Ordering::SeqCst));
    loader.clear_instantiator();
    // Outside an instantiation it reloads.
    loader.reload(module.id()).unwrap();
}

#[test]
fn calls_through_a_slot_while_another_thread_reloads_see_one_version_or_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (loader, mut id) = with_answer(dir.path(), 0);
    let slot = loader.slot("answer$i32");
    resolve(&loader, "answer$i32");
    let rounds = 20;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let callers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut last = 0;
                    let mut calls = 0u64;
                    while !done.load(Ordering::Acquire) {
                        // Resolving a fresh name makes instances while
                        // reloads drop them.
                        let fresh = run(resolve(&loader, "answer$i64"));
                        let seen = run(slot.get().expect("never 0").get());
                        assert!(seen >= last && fresh >= 0, "{seen} after {last}");
                        last = seen;
                        calls += 1;
                    }
                    calls
                })
            })
            .collect();
        for round in 1..=rounds {
            write(dir.path(), "answer.smf", &answer(round));
            id = loader.reload(id).unwrap().id();
            assert_eq!(run(slot.get().unwrap().get()), round);
        }
        done.store(true, Ordering::Release);
        for caller in callers {
            assert!(caller.join().unwrap() > 0);
        }
    });
    assert_eq!(run(resolve(&loader, "answer$i64")), rounds);
    // Every replaced version stayed mapped for the callers until now.
    assert_eq!(loader.reclaim_replaced(), rounds as usize);
}

#[test]
fn first_calls_of_lazy_imports_while_another_thread_reloads_never_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let (loader, mut id) = with_answer(dir.path(), 0);
    let user = Spec::new()
        .function("ask", forwards("answer$i32", Code::call_plt))
        .write(dir.path(), "user.smf");
    let rounds = 300;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Each module loaded lazily binds its import at its first call,
        // while reloads unbind what they replace.
        let binder = scope.spawn(|| {
            let mut firsts = 0u32;
            while !done.load(Ordering::Acquire) {
                let module = loader.load_with_binding(&user, Binding::Lazy).unwrap();
                let ask = module.export("ask").unwrap();
                assert!(call_i32(ask) >= 0);
                loader.unload(module.id()).unwrap();
                firsts += 1;
            }
            firsts
        });
        for round in 1..=rounds {
            write(dir.path(), "answer.smf", &answer(round));
            id = loader.reload(id).unwrap().id();
        }
        done.store(true, Ordering::Release);
        assert!(binder.join().unwrap() > 0);
    });
}
