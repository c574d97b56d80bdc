//! Warm symbol resolution (BRIEF §8: ≤ 50 ns p50 and faster than `dlsym`
//! on a shared object with as many symbols), loading a large module, and
//! prefetching a batch of files (`prefetch.rs`).
//!
//! The same 10,000 function names are exported by an SMF module loaded by
//! our loader and by a shared object compiled here with the system `cc`;
//! both are asked for the same shuffled names. One timed run resolves a
//! batch of names and the per-name time is the batch time divided by its
//! length (a clock read costs about as much as one lookup), so the p99
//! column is the p99 of batch averages.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;

use loader::{InstanceCode, Instantiator, Loader, LoaderConfig, ResolveContext};
use smf::{ModuleBuilder, SectionType, SymbolDef};

use crate::harness::{Report, Row, Stats, fmt_duration, measure, measure_with_setup};

const SYMBOLS: usize = 10_000;
pub(crate) const BATCH: usize = 1024;
pub(crate) const RUNS: usize = 2_000;

pub(crate) fn name(i: usize) -> String {
    format!("kernel{i}_i32")
}

/// `mov eax, imm32; ret`, padded to 16 bytes.
fn returns(value: u32) -> [u8; 16] {
    let mut code = [0xCC; 16];
    code[0] = 0xB8;
    code[1..5].copy_from_slice(&value.to_le_bytes());
    code[5] = 0xC3;
    code
}

fn smf_module() -> Vec<u8> {
    let text: Vec<u8> = (0..SYMBOLS as u32).flat_map(returns).collect();
    let mut b = ModuleBuilder::new();
    let code = b
        .add_section(SectionType::Code, ".text", 5, 16, &text)
        .expect("section");
    for i in 0..SYMBOLS {
        b.add_symbol(SymbolDef::function(&name(i), code, (i * 16) as u64, 6))
            .expect("symbol");
    }
    b.build().expect("module builds")
}

/// Compiles a shared object exporting the same names with `cc -shared`.
fn shared_object(dir: &Path) -> std::path::PathBuf {
    let source = dir.join("many.c");
    let text: String = (0..SYMBOLS)
        .map(|i| format!("int {}(void) {{ return {i}; }}\n", name(i)))
        .collect();
    std::fs::write(&source, text).expect("write C source");
    let so = dir.join("libmany.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&so)
        .arg(&source)
        .status()
        .expect("cc runs");
    assert!(status.success(), "cc failed");
    so
}

/// A deterministic shuffle of `BATCH` indices (a linear congruential walk).
pub(crate) fn shuffled() -> Vec<usize> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..BATCH)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as usize % SYMBOLS
        })
        .collect()
}

/// Per-name statistics of a batch measurement.
fn per_name(stats: Stats) -> Stats {
    stats.per_op(BATCH)
}

/// Instantiates `const$N` as a function returning N, for the warm-instance row.
pub(crate) struct Constants;

impl Instantiator for Constants {
    fn instantiate(
        &self,
        name: &str,
        ctx: &mut ResolveContext<'_>,
    ) -> loader::Result<Option<InstanceCode>> {
        let Some(n) = name.strip_prefix("const$").and_then(|n| n.parse().ok()) else {
            return Ok(None);
        };
        let function = ctx.memory().publish_function(name, &returns(n)[..6])?;
        Ok(Some(function.into()))
    }
}

/// The 10,000-name module and shared object, written into a fresh
/// temporary directory for `area`: (directory, module, shared object).
pub(crate) fn many_names(area: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("smfjit-bench-{area}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let module_path = dir.join("many.smf");
    std::fs::write(&module_path, smf_module()).expect("write module");
    let so = shared_object(&dir);
    (dir, module_path, so)
}

/// Runs the loader benchmarks.
pub fn run(report: &mut Report) {
    let (dir, module_path, so) = many_names("loader");

    let load = measure(20, || {
        let loader = Loader::new(LoaderConfig::default()).expect("loader");
        loader.load(&module_path).expect("load").exports().len()
    });
    report.row(
        Row::new(
            "loader",
            "load 10k-export module (cold loader)",
            fmt_duration(load.median),
        )
        .ratio(format!("p99 {}", fmt_duration(load.p99))),
    );

    let loader = Loader::new(LoaderConfig::default()).expect("loader");
    loader.load(&module_path).expect("load");
    let order = shuffled();
    let names: Vec<String> = order.iter().map(|&i| name(i)).collect();
    let c_names: Vec<CString> = names
        .iter()
        .map(|n| CString::new(n.as_str()).expect("no NUL"))
        .collect();

    let so_c = CString::new(so.to_str().expect("UTF-8 path")).expect("no NUL");
    // SAFETY: the library was just compiled from trivial C functions; it has
    // no initialisers beyond the C runtime's.
    let handle = unsafe { libc::dlopen(so_c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen failed");
    for (n, c) in names.iter().zip(&c_names) {
        let ours = loader.resolve(n).expect("resolves");
        // SAFETY: `handle` is open and `c` is NUL-terminated.
        let theirs = unsafe { libc::dlsym(handle, c.as_ptr()) };
        assert!(!theirs.is_null() && ours.get() != 0);
    }

    let resolve = per_name(measure(RUNS, || {
        names
            .iter()
            .map(|n| loader.resolve(n).map_or(0, |a| a.get()))
            .fold(0usize, usize::wrapping_add)
    }));
    let lookup = per_name(measure(RUNS, || {
        names
            .iter()
            .map(|n| loader.lookup_export(n).map_or(0, |a| a.get()))
            .fold(0usize, usize::wrapping_add)
    }));
    let dlsym = per_name(measure(RUNS, || {
        c_names
            .iter()
            // SAFETY: as above.
            .map(|c| unsafe { libc::dlsym(handle, c.as_ptr()) } as usize)
            .fold(0usize, usize::wrapping_add)
    }));
    let ratio = dlsym.median_ns() / resolve.median_ns();
    let met = resolve.median_ns() <= 15.0 && ratio >= 3.0;
    report.row(
        Row::new(
            "loader",
            "warm resolve, exported name (10k symbols)",
            fmt_duration(resolve.median),
        )
        .baseline(format!("dlsym {}", fmt_duration(dlsym.median)))
        .ratio(format!("{ratio:.1}× faster"))
        .target("≤ 15 ns p50, ≥ 3× dlsym", met),
    );
    report.row(
        Row::new(
            "loader",
            "  p99 of batch means: resolve / dlsym",
            fmt_duration(resolve.p99),
        )
        .baseline(fmt_duration(dlsym.p99)),
    );
    report.row(Row::new(
        "loader",
        "  export snapshot lookup only",
        fmt_duration(lookup.median),
    ));

    // Cold misses: each run resolves a new name, which the trivial
    // instantiator publishes as one 6-byte function (one execmem batch).
    // This is the loader's share of a miss plus one publication; the JIT's
    // own time comes on top.
    loader.set_instantiator(Constants);
    let mut next = 0usize;
    let cold = measure(BATCH, || {
        next += 1;
        loader
            .resolve(&format!("const${next}"))
            .map_or(0, |a| a.get())
    });
    report.row(
        Row::new(
            "loader",
            "cold miss, trivial instantiator (+1 publish)",
            fmt_duration(cold.median),
        )
        .ratio(format!("p99 {}", fmt_duration(cold.p99))),
    );
    let publish_only = measure(BATCH, || {
        loader
            .memory()
            .publish_function("bare", &returns(7)[..6])
            .map_or(0, |f| f.entry() as usize)
    });
    report.row(
        Row::new(
            "loader",
            "  of which: publishing one function alone",
            fmt_duration(publish_only.median),
        )
        .ratio(format!("p99 {}", fmt_duration(publish_only.p99))),
    );

    // Warm instances: the names instantiated above, resolved again.
    let instances: Vec<String> = (1..=BATCH).map(|i| format!("const${i}")).collect();
    let warm = per_name(measure(RUNS, || {
        instances
            .iter()
            .map(|n| loader.resolve(n).map_or(0, |a| a.get()))
            .fold(0usize, usize::wrapping_add)
    }));
    report.row(
        Row::new(
            "loader",
            "warm resolve, instantiated name",
            fmt_duration(warm.median),
        )
        .baseline(format!("dlsym {}", fmt_duration(dlsym.median)))
        .ratio(format!(
            "{:.1}× faster",
            dlsym.median_ns() / warm.median_ns()
        ))
        .target(
            "≤ 15 ns p50, ≥ 3× dlsym",
            warm.median_ns() <= 15.0 && dlsym.median_ns() >= 3.0 * warm.median_ns(),
        ),
    );

    // SAFETY: nothing resolved from the library is used after this.
    unsafe { libc::dlclose(handle) };
    let _ = std::fs::remove_dir_all(&dir);

    crate::prefetch::run(report);
}

// ---------------------------------------------------------------------------
// The JIT-on-miss instantiator (`smfjit-bench jit`).

/// The collections fixture: the templates every JIT row instantiates.
fn collections_fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/collections.smf")
}

/// A JIT loader with the collections module loaded.
fn jit_loader_with_collections() -> Loader {
    jit_loader(LoaderConfig::default())
}

/// [`jit_loader_with_collections`] with executable memory set up as given.
fn jit_loader_on(memory: execmem::Config) -> Loader {
    jit_loader(LoaderConfig {
        memory,
        ..LoaderConfig::default()
    })
}

/// [`jit_loader_with_collections`] with executable memory of `strategy`.
fn jit_loader_with(strategy: execmem::Strategy) -> Loader {
    jit_loader_on(execmem::Config {
        strategy,
        ..execmem::Config::default()
    })
}

/// A JIT loader configured by `config` with the collections module loaded.
pub(crate) fn jit_loader(config: LoaderConfig) -> Loader {
    let loader = Loader::with_jit(config).expect("loader");
    loader
        .load(collections_fixture())
        .expect("collections loads");
    loader
}

/// The collections module's templates, decoded from the fixture as the
/// loader decodes them (not yet verified).
pub(crate) fn collections_library() -> jit::ir::Library {
    let loader = jit_loader_with_collections();
    let module = loader.modules().pop().expect("module");
    jit::binary::decode_library(module.template_code().expect("templates"))
        .expect("decodes")
        .library
}

/// Median and p99 of repeated cold misses of `symbol` in `loader`, its
/// instance cache cleared before each (the module's library stays decoded).
fn cold_misses(loader: &Loader, symbol: &str, runs: usize) -> Stats {
    loader.resolve("sum$f64").expect("decodes the library");
    measure_with_setup(
        runs,
        || {
            loader.clear_instances();
        },
        |()| loader.resolve(symbol).map_or(0, |a| a.get()),
    )
}

/// Names one step of a cold miss to repeat under a profiler instead of
/// measuring the `jit` area: `first`, `cold` (the loader's default
/// executable memory), `first-mprotect`, `mprotect`, `dual`, `backend`,
/// `encode`, `substitute` or `publish` (`SMFJIT_BENCH_PROFILE_RUNS` times, default
/// 20,000), or `templates` (the rows of 10 against 1,000 templates alone).
pub(crate) const PROFILE_ENV: &str = "SMFJIT_BENCH_PROFILE";

/// Repeats the step `step` of [`run_jit`] for a profiler and prints its
/// median.
fn profile_step(step: &str, symbols: &[&str]) {
    let runs = crate::harness::profile_runs(20_000);
    if step == "templates" {
        let mut report = Report::default();
        templates_at_load(&mut report);
        report.print();
        return;
    }
    let stats = match step {
        "first" => measure_with_setup(runs, jit_loader_with_collections, |l| {
            l.resolve(symbols[0]).map_or(0, |a| a.get())
        }),
        "first-mprotect" => measure_with_setup(
            runs,
            || jit_loader_with(execmem::Strategy::Mprotect),
            |l| l.resolve(symbols[0]).map_or(0, |a| a.get()),
        ),
        "cold" => cold_misses(&jit_loader_with_collections(), symbols[0], runs),
        "dual" => cold_misses(
            &jit_loader_with(execmem::Strategy::DualMapping),
            symbols[0],
            runs,
        ),
        "mprotect" => cold_misses(
            &jit_loader_with(execmem::Strategy::Mprotect),
            symbols[0],
            runs,
        ),
        _ => {
            let steps = backend_alone_runs(symbols, runs, step);
            match step {
                "backend" => steps.0,
                "encode" => steps.1,
                "substitute" => steps.2,
                "publish" => steps.3,
                other => panic!("{PROFILE_ENV}: unknown step '{other}'"),
            }
        }
    };
    println!("{step}: median {}", fmt_duration(stats.median));
}

/// The steps of a miss timed alone on the same functions: the backend the
/// loader uses (all of it, and encoding only), substitution with
/// verification, and one publication.
fn backend_alone(symbols: &[&str]) -> (Stats, Stats, Stats, Stats) {
    backend_alone_runs(symbols, RUNS, "all")
}

/// [`backend_alone`] with `runs` samples of the step `only` (all steps for
/// `"all"`) and a single sample of the others.
pub(crate) fn backend_alone_runs(
    symbols: &[&str],
    runs: usize,
    only: &str,
) -> (Stats, Stats, Stats, Stats) {
    use jit::backend::{Backend, CallTarget};
    let runs_of = |step: &str| {
        if only == "all" || only == step {
            runs
        } else {
            1
        }
    };
    let loader = jit_loader_with_collections();
    let lib = collections_library();
    // Verified once, as the loader does before its first instantiation.
    jit::verify::verify_library(&lib).expect("verifies");
    let instances: Vec<_> = symbols
        .iter()
        .map(|s| jit::instantiate::instantiate_symbol(&lib, s).expect("instantiates"))
        .collect();
    let backend = Backend::new(loader::trap_runtime().expect("trap runtime").options());
    // Callees answered at once, as a warm loader would.
    let mut resolver =
        |_: &jit::ir::Callee| -> Result<CallTarget, jit::Error> { Ok(CallTarget::Direct(0x1000)) };
    let prepare = measure(runs_of("backend"), || {
        instances
            .iter()
            .map(|i| {
                let name = i.symbol.as_str();
                backend
                    .prepare(&i.function, &i.reg_types, &[name], &mut resolver)
                    .map_or(0, |p| p.size())
            })
            .sum::<usize>()
    });
    let lowered: Vec<_> = instances
        .iter()
        .map(|i| {
            backend
                .lower(
                    &i.function,
                    &i.reg_types,
                    &[i.symbol.as_str()],
                    &mut resolver,
                )
                .expect("lowers")
        })
        .collect();
    let encode = measure(runs_of("encode"), || {
        lowered
            .iter()
            .map(|l| l.clone().encode().map_or(0, |p| p.size()))
            .sum::<usize>()
    });
    let substitute = measure(runs_of("substitute"), || {
        symbols
            .iter()
            .map(|s| {
                jit::instantiate::instantiate_symbol(&lib, s).map_or(0, |i| i.reg_types.0.len())
            })
            .sum::<usize>()
    });
    let code = [0xC3u8; 700];
    // The published code is returned, so it is unmapped after the clock
    // stops, as a miss's code outlives the miss.
    let publish = measure(runs_of("publish"), || {
        loader.memory().publish_function("one", &code)
    });
    (prepare, encode, substitute, publish)
}

/// A module whose one function calls `imports` (plt32 call sites), never
/// run: loading it binds every import.
pub(crate) fn importing_module(imports: &[String]) -> Vec<u8> {
    let mut text = Vec::with_capacity(imports.len() * 5 + 1);
    for _ in imports {
        text.extend_from_slice(&[0xE8, 0, 0, 0, 0]);
    }
    text.push(0xC3);
    let mut b = ModuleBuilder::new();
    let code = b
        .add_section(SectionType::Code, ".text", 5, 16, &text)
        .expect("section");
    b.add_symbol(SymbolDef::function("call_all", code, 0, text.len() as u64))
        .expect("symbol");
    for (k, name) in imports.iter().enumerate() {
        let import = b
            .add_symbol(SymbolDef::import(name, smf::SymbolType::Function))
            .expect("import");
        b.add_relocation(code, (k * 5 + 1) as u64, import, smf::RelocType::Plt32, -4);
    }
    b.build().expect("module builds")
}

/// Every instantiation of a few collections templates over the scalar
/// types that the templates' constraints accept.
fn instantiable_names() -> Vec<String> {
    let loader = jit_loader_with_collections();
    let module = loader.modules().pop().expect("module");
    let lib = collections_library();
    let templates = [
        "sum",
        "dot",
        "max",
        "min",
        "fill",
        "reverse",
        "sort",
        "swap",
        "binary_search",
    ];
    let types = [
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64",
    ];
    templates
        .iter()
        .flat_map(|t| types.iter().map(move |ty| format!("{t}${ty}")))
        .filter(|n| module.export(n).is_none())
        .filter(|n| jit::instantiate::instantiate_symbol(&lib, n).is_ok())
        .collect()
}

/// Runs the JIT-on-miss benchmarks: a cold miss of a real template end to
/// end and the backend's share of it; `Now` against `Lazy` loading of a
/// module with 1,000 imports.
/// A module offering `count` templates (`sum_0` …, each a `sum<T: num>`
/// over a buffer) and no code: what a generic library with many templates
/// ships.
pub(crate) fn template_module(count: usize, hashed: bool) -> Vec<u8> {
    // `sum` of the collections library under a name of its own.
    const SUM: &str = "<T: num>(%xs: ptr<T>, %n: i64) -> T {
entry:
    %zero = const T 0
    %i0 = const i64 0
    %one = const i64 1
    br loop(%i0, %zero)
loop(%i: i64, %acc: T):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = load T %xs[%i]
    %next_acc = add T %acc, %x
    %next_i = add i64 %i, %one
    br loop(%next_i, %next_acc)
done:
    ret %acc
}
";
    let text: String = (0..count).map(|k| format!("fn sum_{k}{SUM}")).collect();
    let lib = jit::text::parse_library(&text).expect("parses");
    let encoded = jit::binary::encode_library(&lib);
    let mut b = smf::ModuleBuilder::new();
    b.record_module_hash(hashed);
    b.set_template_code(&encoded.bytes).expect("template code");
    for (k, offset) in encoded.offsets.iter().enumerate() {
        b.add_symbol(smf::SymbolDef::template(
            &format!("sum_{k}"),
            1,
            *offset as u64,
        ))
        .expect("symbol");
    }
    b.build().expect("builds")
}

/// Loading costs nothing per unused template: a module with 1,000
/// templates against one with 10, loaded by a fresh JIT loader each time
/// (the loader made untimed), and then its first miss. Modules as
/// `smf-build` writes them, with a recorded `module_hash` (which loading
/// checks over the whole file), and, labelled, without one.
fn templates_at_load(report: &mut Report) {
    let dir = std::env::temp_dir().join(format!("smfjit-bench-templates-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for hashed in [true, false] {
        let label = if hashed { "" } else { ", no module_hash" };
        let mut measured = Vec::new();
        for count in [10usize, 1000] {
            let path = dir.join(format!("t{count}-{hashed}.smf"));
            std::fs::write(&path, template_module(count, hashed)).expect("write module");
            let fresh = || Loader::with_jit(LoaderConfig::default()).expect("loader");
            let load = measure_with_setup(200, fresh, |l| {
                l.load(&path).map_or(0, |m| m.exports().len())
            });
            let loaded = || {
                let l = fresh();
                l.load(&path).expect("loads");
                l
            };
            let miss = measure_with_setup(200, loaded, |l| {
                l.resolve("sum_3$f64").map_or(0, |a| a.get())
            });
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            measured.push((count, load, miss, bytes));
        }
        let (_, small_load, small_miss, _) = measured[0];
        for &(count, load, miss, bytes) in &measured[1..] {
            let ratio = load.median_ns() / small_load.median_ns();
            let mut row = Row::new(
                "jit",
                format!(
                    "load, module of {count} templates ({} KB){label}",
                    bytes / 1024
                ),
                fmt_duration(load.median),
            )
            .baseline(format!("10 templates {}", fmt_duration(small_load.median)))
            .ratio(format!("{ratio:.2}×"));
            if hashed {
                row = row.target("as fast as 10 (≤ 1.1×)", ratio <= 1.1);
            }
            report.row(row);
            report.row(
                Row::new(
                    "jit",
                    format!("  then its first miss (sum_3$f64){label}"),
                    fmt_duration(miss.median),
                )
                .baseline(format!("10 templates {}", fmt_duration(small_miss.median)))
                .ratio(format!("{:.2}×", miss.median_ns() / small_miss.median_ns())),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

pub fn run_jit(report: &mut Report) {
    const COLD_RUNS: usize = 400;
    // quicksort$i32 (35 IR instructions) instantiates insertion_sort$i32 (19)
    // on the way: about 50 instructions in two instantiations.
    let symbols = ["quicksort$i32", "insertion_sort$i32"];
    if let Ok(step) = std::env::var(PROFILE_ENV) {
        profile_step(&step, &symbols);
        return;
    }
    let probe = jit_loader_with_collections();
    probe
        .resolve(symbols[0])
        .expect("quicksort$i32 instantiates");
    let compiled = probe.stats().instances.instantiations;
    assert_eq!(compiled, 2, "quicksort$i32 and insertion_sort$i32");
    let strategy = probe.memory().strategy();

    // The headline: the first miss of a fresh loader (its own executable
    // memory, page pool and instance cache, no spare instances), in a
    // process that made a loader before, so the module's templates are
    // decoded and verified already (once per process).
    let first = measure_with_setup(COLD_RUNS, jit_loader_with_collections, |l| {
        l.resolve(symbols[0]).map_or(0, |a| a.get())
    });
    // Best case, labelled: the same names again in one loader, over the
    // spare instances and warm buffers of the last miss.
    let again = cold_misses(&jit_loader_with_collections(), symbols[0], COLD_RUNS);
    // The same two rows under the executable-memory strategies the loader
    // does not use by default, labelled.
    let others: Vec<_> = crate::harness::STRATEGIES
        .into_iter()
        .filter(|&other| other != strategy)
        .map(|other| {
            let first = measure_with_setup(
                COLD_RUNS,
                || jit_loader_with(other),
                |l| l.resolve(symbols[0]).map_or(0, |a| a.get()),
            );
            let loader = jit_loader_with(other);
            let used = crate::harness::strategy_label(loader.memory().strategy());
            (used, first, cold_misses(&loader, symbols[0], COLD_RUNS))
        })
        .collect();
    let (prepare, encode, substitute, publish) = backend_alone(&symbols);
    // One definition of the encoder share: the part of the headline miss
    // spent generating code (register allocation, lowering, encoding).
    let share = |part: Stats| 100.0 * part.median_ns() / first.median_ns();
    report.row(
        Row::new(
            "jit",
            format!(
                "first miss of a fresh loader → pointer, quicksort$i32 (+insertion_sort$i32, \
                 54 IR insts), execmem {}",
                crate::harness::strategy_label(strategy)
            ),
            fmt_duration(first.median),
        )
        .ratio(format!("p99 {}", fmt_duration(first.p99)))
        .target(
            "p50 ≤ 20 µs, p99 ≤ 100 µs",
            first.median.as_nanos() <= 20_000 && first.p99.as_nanos() <= 100_000,
        ),
    );
    report.row(
        Row::new(
            "jit",
            "  best case: re-miss of the same names (spare instances, warm buffers)",
            fmt_duration(again.median),
        )
        .ratio(format!("p99 {}", fmt_duration(again.p99)))
        .target("p50 ≤ 10 µs", again.median.as_nanos() <= 10_000),
    );
    let (fastest, cranelift) = crate::cranelift::fastest_on_the_miss();
    let faster = cranelift.median_ns() / again.median_ns();
    report.row(
        Row::new(
            "jit",
            format!("  re-miss vs cranelift-jit compiling the same two instances ({fastest})"),
            format!("{faster:.1}× faster"),
        )
        .baseline(fmt_duration(cranelift.median))
        .ratio(format!("ours {}", fmt_duration(again.median)))
        .target("≥ 10× faster", faster >= 10.0),
    );
    for (used, first_there, again_there) in &others {
        report.row(
            Row::new(
                "jit",
                format!("  first miss, execmem {used}"),
                fmt_duration(first_there.median),
            )
            .ratio(format!("p99 {}", fmt_duration(first_there.p99))),
        );
        report.row(
            Row::new(
                "jit",
                format!("  re-miss, execmem {used}"),
                fmt_duration(again_there.median),
            )
            .ratio(format!("p99 {}", fmt_duration(again_there.p99))),
        );
    }
    report.row(
        Row::new(
            "jit",
            "  encoder share: backend (regalloc, lower, encode) of the first miss",
            fmt_duration(prepare.median),
        )
        .ratio(format!("{:.0}% of the miss", share(prepare)))
        .target("≥ 50%", share(prepare) >= 50.0),
    );
    report.row(
        Row::new(
            "jit",
            "    of which: encoding alone",
            fmt_duration(encode.median),
        )
        .ratio(format!("{:.0}% of the miss", share(encode))),
    );
    report.row(
        Row::new(
            "jit",
            "  for comparison: substitute + verify both alone",
            fmt_duration(substitute.median),
        )
        .ratio(format!("{:.0}% of the miss", share(substitute))),
    );
    report.row(
        Row::new(
            "jit",
            format!(
                "  for comparison: publishing 700 bytes alone (reserve, write, publish), execmem {}",
                crate::harness::strategy_label(strategy)
            ),
            fmt_duration(publish.median),
        )
        .ratio(format!("{:.0}% of the miss", share(publish))),
    );

    templates_at_load(report);

    // Now against Lazy: fresh loader per sample, its modules loaded untimed.
    let imports = ThousandImports::new("jit");
    let instantiated = imports.instantiated;
    let setup = || imports.loader(LoaderConfig::default());
    let now = measure_with_setup(20, setup, |l| imports.load(l, loader::Binding::Now));
    let lazy = measure_with_setup(20, setup, |l| imports.load(l, loader::Binding::Lazy));
    report.row(
        Row::new(
            "jit",
            format!("load, 1,000 imports ({instantiated} instantiated), Now"),
            fmt_duration(now.median),
        )
        .ratio(format!("p99 {}", fmt_duration(now.p99))),
    );
    report.row(
        Row::new("jit", "  the same module, Lazy", fmt_duration(lazy.median))
            .baseline(format!("Now {}", fmt_duration(now.median)))
            .ratio(format!(
                "{:.1}× faster to load",
                now.median_ns() / lazy.median_ns()
            )),
    );
}

/// A module whose one function has 1,000 `plt32` call sites to 1,000
/// distinct imports — every instantiable collections name (instantiated
/// when bound) and exports of the 10k-symbol module for the rest — with
/// the modules it imports from, in a temporary directory removed on drop.
pub(crate) struct ThousandImports {
    dir: PathBuf,
    exporter: PathBuf,
    importer: PathBuf,
    /// How many of the imports are instantiations.
    pub(crate) instantiated: usize,
}

impl ThousandImports {
    /// Writes the importing and exporting modules for `area`.
    pub(crate) fn new(area: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "smfjit-bench-{area}-imports-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let exporter = dir.join("many.smf");
        std::fs::write(&exporter, smf_module()).expect("write module");
        let mut imports = instantiable_names();
        let instantiated = imports.len();
        imports.extend((0..1000 - instantiated).map(name));
        let importer = dir.join("importer.smf");
        std::fs::write(&importer, importing_module(&imports)).expect("write module");
        Self {
            dir,
            exporter,
            importer,
            instantiated,
        }
    }

    /// A fresh JIT loader configured by `config`, with the collections and
    /// the exporting module loaded and the importer's file mapped and
    /// validated by the cache: what [`ThousandImports::load`] then times.
    pub(crate) fn loader(&self, config: LoaderConfig) -> Loader {
        let loader = jit_loader(config);
        loader.load(&self.exporter).expect("exporter loads");
        loader
            .cache()
            .get(&self.importer)
            .expect("importer validates");
        loader
    }

    /// Loads the importer into `loader` with `binding`; returns the number
    /// of imports left lazy (`Lazy`) or bound.
    pub(crate) fn load(&self, loader: &Loader, binding: loader::Binding) -> usize {
        let module = loader
            .load_with_binding(&self.importer, binding)
            .expect("importer loads");
        match binding {
            loader::Binding::Lazy => module.lazy_imports().count(),
            _ => module.imports().len(),
        }
    }
}

impl Drop for ThousandImports {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
