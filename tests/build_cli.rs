//! `smf-build` as a user runs it: good manifests build, bad ones give one
//! line naming the file and what is wrong.

// These tests call the code the loader placed and read memory it mapped.
#![allow(unsafe_code)]

use std::path::Path;
use std::process::{Command, Output};

fn build(manifest: &Path, out: &Path) -> Output {
    build_with(manifest, out, &[])
}

/// `smf-build MANIFEST -o OUT` with `args` after.
fn build_with(manifest: &Path, out: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smf-build"))
        .arg(manifest)
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .expect("smf-build runs")
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Builds, expecting success, and returns the module's bytes.
fn build_ok(manifest: &Path, out: &Path) -> Vec<u8> {
    build_ok_with(manifest, out, &[])
}

/// [`build_ok`] with `args` after the output.
fn build_ok_with(manifest: &Path, out: &Path, args: &[&str]) -> Vec<u8> {
    let status = build_with(manifest, out, args);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::read(out).unwrap()
}

const TEMPLATES: &str =
    "fn twice<T: int>(%x: T) -> T {\nentry:\n    %y = add T %x, %x\n    ret %y\n}\n";

fn error_of(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn builds_a_module_that_inspects_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.tir", TEMPLATES);
    let manifest = write(
        dir.path(),
        "m.sdn",
        "module:\n    name: m\nsources = [t.tir]\npossible |mangled_name, required_by, can_defer|\n    twice$u16, main, true\n",
    );
    let bytes = build_ok(&manifest, &dir.path().join("m.smf"));
    let module = smf::Module::parse(&bytes).unwrap();
    assert!(module.symbol_by_name("twice").unwrap().is_template());
    let note = sdn::note::Note::parse(module.note_sdn().unwrap()).unwrap();
    let row = note.possible("twice$u16").unwrap();
    assert_eq!(
        (row.template.as_str(), row.type_args.0.as_slice()),
        ("twice", &["u16".to_owned()][..])
    );
    assert!(!dir.path().join("m.smf.partial").exists());
}

#[test]
fn manifest_errors_name_the_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "m.sdn",
        "module:\n    name: m\n    colour: blue\n",
    );
    let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
    assert!(
        err.starts_with(&format!("error: '{}':", manifest.display())),
        "{err}"
    );
    assert!(err.contains("colour"), "{err}");
    assert!(!dir.path().join("o.smf").exists());
}

#[test]
fn a_possible_row_that_does_not_instantiate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.tir", TEMPLATES);
    for (row, why) in [
        ("twice$f64, main, true", "does not satisfy `t: int`"),
        ("thrice$i32, main, true", "thrice"),
    ] {
        let manifest = write(
            dir.path(),
            "m.sdn",
            &format!(
                "module:\n    name: m\nsources = [t.tir]\npossible |mangled_name, required_by, can_defer|\n    {row}\n"
            ),
        );
        let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
        assert!(err.contains("possible row 1"), "{err}");
        assert!(err.to_lowercase().contains(why), "{err}");
    }
}

#[test]
fn source_errors_name_the_source() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.tir",
        "fn broken<T: num>(%x: T) -> T {\nentry:\n    ret %nope\n}\n",
    );
    let manifest = write(
        dir.path(),
        "m.sdn",
        "module:\n    name: m\nsources = [bad.tir]\n",
    );
    let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
    assert!(err.contains("bad.tir"), "{err}");
    let missing = write(
        dir.path(),
        "m2.sdn",
        "module:\n    name: m\nsources = [missing.tir]\n",
    );
    let err = error_of(&build(&missing, &dir.path().join("o.smf")));
    assert!(err.contains("missing.tir"), "{err}");
}

#[test]
fn compile_entries_must_be_instantiations_of_this_modules_templates() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.tir", TEMPLATES);
    for (list, why) in [
        (
            "[thrice$i32]",
            "compile[1]: 'thrice$i32': not an instantiation",
        ),
        (
            "[twice$i32, twice$i32]",
            "compile[2]: 'twice$i32': listed twice",
        ),
        ("[twice]", "compile[1]: 'twice': not an instantiation"),
        ("[twice$f32]", "compile[1]: 'twice$f32'"),
    ] {
        let manifest = write(
            dir.path(),
            "m.sdn",
            &format!("module:\n    name: m\nsources = [t.tir]\ncompile = {list}\n"),
        );
        let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn compiling_an_endless_instantiation_chain_is_refused_with_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let cycle = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/src/cycle.tir");
    let manifest = write(
        dir.path(),
        "m.sdn",
        &format!(
            "module:\n    name: m\nsources = [\"{}\"]\ncompile = [f$i64]\n",
            cycle.display()
        ),
    );
    let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
    assert!(
        err.contains("instantiation depth exceeds 24: f$i64 -> g$i64 -> f$ptr$i64 -> "),
        "{err}"
    );
}

#[test]
fn sources_of_one_module_call_each_other_and_errors_name_their_own_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.tir", TEMPLATES);
    write(
        dir.path(),
        "u.tir",
        "fn four(%x: i64) -> i64 {\nentry:\n    %y = call twice<i64>(%x)\n    %z = call twice<i64>(%y)\n    ret %z\n}\n",
    );
    let manifest = write(
        dir.path(),
        "m.sdn",
        "module:\n    name: m\nsources = [t.tir, u.tir]\n",
    );
    let bytes = build_ok(&manifest, &dir.path().join("m.smf"));
    let module = smf::Module::parse(&bytes).unwrap();
    // four is concrete: compiled, with twice$i64 compiled beside it.
    assert!(module.symbol_by_name("four").unwrap().is_defined());
    assert!(module.symbol_by_name("twice$i64").unwrap().is_defined());

    write(
        dir.path(),
        "u.tir",
        "fn four(%x: i64) -> i64 {\nentry:\n    ret %nope\n}\n",
    );
    let err = error_of(&build(&manifest, &dir.path().join("o.smf")));
    assert!(err.contains("u.tir"), "{err}");
    assert!(err.contains("line 3,"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_smf-build"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_smf-build"))
        .arg("m.sdn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `--compress zstd[:LEVEL]` stores the template code and the note
/// compressed at the level the header records, and nothing else; what the
/// module holds reads back the same as from the stored build.
#[test]
fn compress_zstd_stores_the_templates_and_the_note_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = fixture_manifest("collections");
    let plain = smfjit::build::build_module(&manifest).unwrap();
    let p = smf::Module::parse(&plain).unwrap();
    for (arg, level) in [("zstd", smf::ZSTD_DEFAULT_LEVEL), ("zstd:19", 19)] {
        let out = dir.path().join("c.smf");
        let bytes = build_ok_with(&manifest, &out, &["--compress", arg]);
        let options = smfjit::build::Options {
            compression: arg.parse().unwrap(),
        };
        assert!(bytes == smfjit::build::build_module_with(&manifest, &options).unwrap());
        assert!(
            bytes.len() < plain.len() * 3 / 4,
            "{arg}: {} bytes",
            bytes.len()
        );
        let m = smf::Module::parse(&bytes).unwrap();
        assert_eq!(m.header().compression, smf::Compression::Zstd, "{arg}");
        assert_eq!(m.header().compression_level, level, "{arg}");
        let compressed: Vec<&str> = m
            .sections()
            .filter(|s| s.is_compressed())
            .map(|s| s.name())
            .collect();
        assert_eq!(compressed, ["template.code", "note.sdn"], "{arg}");
        for (a, b) in p.sections().zip(m.sections()) {
            assert_eq!((a.name(), a.data()), (b.name(), b.data()), "{arg}");
        }
        assert_eq!(p.symbol_count(), m.symbol_count());
    }
    let out = dir.path().join("n.smf");
    assert!(build_ok_with(&manifest, &out, &["--compress", "none"]) == plain);
}

#[test]
fn compress_refuses_lz4_and_unknown_levels_as_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = fixture_manifest("trig");
    let out = dir.path().join("t.smf");
    for (arg, said) in [
        (
            "lz4",
            "lz4 is not supported: SMF sections are compressed with zstd",
        ),
        ("zstd:0", "zstd level '0' is not a level"),
        ("zstd:23", "zstd level '23' is not a level"),
        ("zstd:", "zstd level '' is not a level"),
        ("gzip", "unknown compression 'gzip'"),
        ("none:3", "unknown compression 'none:3'"),
    ] {
        let status = build_with(&manifest, &out, &["--compress", arg]);
        assert_eq!(status.status.code(), Some(2), "{arg}");
        let err = String::from_utf8_lossy(&status.stderr);
        assert!(err.contains(said), "{arg}: {err}");
        assert!(
            err.contains("expected none, zstd or zstd:LEVEL with LEVEL from 1 to 22"),
            "{arg}: {err}"
        );
        assert!(!out.exists(), "{arg}");
    }
}

/// A linker for tests only, independent of the loader: places a module's
/// `.text` in executable memory, gives every undefined symbol a 16-byte
/// stub (`jmp [rip]` and its 8-byte slot) after the code, applies the
/// relocations by the arithmetic of `doc/formats/smf.md` and publishes.
mod link {
    use std::collections::HashMap;

    use smf::RelocType;

    /// Published code and where its symbols ended up.
    pub struct Linked {
        pub _code: execmem::PublishedCode,
        pub symbols: HashMap<String, u64>,
    }

    pub fn link(bytes: &[u8], memory: &execmem::ExecMemory, natives: &[(&str, u64)]) -> Linked {
        let module = smf::Module::parse(bytes).unwrap();
        let text = module.section_by_name(".text").expect(".text");
        let text_index = text.index();
        let code = text.data();
        let undefined: Vec<_> = module
            .symbols()
            .filter(|s| !s.is_defined() && !s.is_template())
            .collect();
        let stubs_at = code.len().next_multiple_of(16);
        let total = stubs_at + 16 * undefined.len();
        let mut batch = memory.batch_with_capacity(total);
        let r = batch.reserve("text", total, 16).unwrap();
        let base = r.address() as u64;
        let out = batch.bytes_mut(&r).unwrap();
        out[..code.len()].copy_from_slice(code);
        // symbol index -> (S, stub address, slot address)
        let mut at: HashMap<u32, (u64, u64, u64)> = HashMap::new();
        let mut symbols = HashMap::new();
        for s in module
            .symbols()
            .filter(|s| s.section_index() == Some(text_index as u16))
        {
            let a = base + s.value();
            at.insert(s.index(), (a, a, 0));
            symbols.insert(s.name().to_owned(), a);
        }
        for (k, s) in undefined.iter().enumerate() {
            let target = natives
                .iter()
                .find(|(n, _)| *n == s.name())
                .unwrap_or_else(|| panic!("nothing binds {}", s.name()))
                .1;
            let stub = stubs_at + 16 * k;
            out[stub..stub + 6].copy_from_slice(&[0xFF, 0x25, 0, 0, 0, 0]);
            out[stub + 6..stub + 14].copy_from_slice(&target.to_le_bytes());
            let stub = base + stub as u64;
            at.insert(s.index(), (target, stub, stub + 6));
        }
        for (_, _, rel) in module.relocations() {
            assert_eq!(u32::from(rel.target_section), text_index);
            let (s, stub, slot) = at[&rel.symbol_index];
            let place = base + rel.offset;
            let field = rel.offset as usize;
            let pc = |target: u64| {
                let v = i128::from(target) + i128::from(rel.addend) - i128::from(place);
                i32::try_from(v)
                    .expect("displacement in range")
                    .to_le_bytes()
            };
            match rel.reloc_type {
                RelocType::Abs64 => out[field..field + 8]
                    .copy_from_slice(&(s.wrapping_add(rel.addend as u64)).to_le_bytes()),
                RelocType::Pc32 => out[field..field + 4].copy_from_slice(&pc(s)),
                RelocType::Plt32 => out[field..field + 4].copy_from_slice(&pc(stub)),
                RelocType::GotPcRel => out[field..field + 4].copy_from_slice(&pc(slot)),
                RelocType::None => {}
            }
        }
        Linked {
            _code: batch.publish().unwrap(),
            symbols,
        }
    }
}

fn collections_library() -> jit::ir::Library {
    jit::library::collections().unwrap()
}

unsafe extern "C" {
    fn malloc(size: usize) -> *mut u8;
    fn realloc(p: *mut u8, size: usize) -> *mut u8;
    fn free(p: *mut u8);
    fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8;
    fn cos(x: f64) -> f64;
}

fn natives(trap: &jit::backend::TrapRuntime) -> Vec<(&'static str, u64)> {
    vec![
        (smfjit::build::aot::TRAP_SYMBOL, trap.handler()),
        ("malloc", malloc as *const () as u64),
        ("realloc", realloc as *const () as u64),
        ("free", free as *const () as u64),
        ("memcpy", memcpy as *const () as u64),
        ("cos", cos as *const () as u64),
    ]
}

/// Builds the collections fixture's manifest afresh, links its `.text`
/// and calls every precompiled function, comparing with the interpreter
/// running the same templates on the same memory.
#[test]
fn precompiled_collections_code_runs_like_the_interpreter() {
    use jit::interp::{Interpreter, LibraryResolver, Value};
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/src/collections.sdn");
    let bytes = smfjit::build::build_module(&manifest).unwrap();
    let memory = execmem::ExecMemory::new(execmem::Config::default()).unwrap();
    let trap = jit::backend::TrapRuntime::new(&memory).unwrap();
    let natives = natives(&trap);
    let linked = link::link(&bytes, &memory, &natives);
    let lib = collections_library();
    let mut resolver = LibraryResolver::new(&lib);
    for (n, a) in &natives[1..] {
        resolver = resolver.with_native(n, *a);
    }
    let interp = Interpreter::new(&resolver);
    let call = |symbol: &str, args: &[Value]| {
        let f = jit::instantiate::instantiate_symbol(&lib, symbol)
            .unwrap()
            .function;
        let entry = linked.symbols[symbol] as *const u8;
        // SAFETY: the entry is compiled code of `f`'s signature, linked
        // above; the pointers passed are live buffers of the right types.
        let compiled = unsafe { trap.call(entry, &f.sig, args) };
        // SAFETY: as above, for the interpreter.
        let interpreted = unsafe { interp.call(&f, args) };
        (compiled, interpreted)
    };

    let ints = [i32::MAX, 1, -7, 40_000, i32::MIN, 3];
    for n in [0, 1, ints.len() - 1, ints.len()] {
        let args = [Value::Ptr(ints.as_ptr() as u64), Value::I64(n as i64)];
        let (c, i) = call("sum$i32", &args);
        assert_eq!(c.unwrap(), i.unwrap(), "sum$i32 of {n}");
    }
    let (c, _) = call(
        "sum$i32",
        &[Value::Ptr(ints.as_ptr() as u64), Value::I64(2)],
    );
    assert_eq!(c.unwrap(), Some(Value::I32(i32::MIN)), "wraps");

    let (a, b) = ([1.5f64, -2.0, 1e300, 0.25], [2.0f64, 3.0, 1e10, -4.0]);
    let args = [
        Value::Ptr(a.as_ptr() as u64),
        Value::Ptr(b.as_ptr() as u64),
        Value::I64(4),
    ];
    let (c, i) = call("dot$f64", &args);
    assert_eq!(c.unwrap(), i.unwrap());

    let bytes8 = [3u8, 250, 7, 250, 0];
    let (c, i) = call(
        "max$u8",
        &[Value::Ptr(bytes8.as_ptr() as u64), Value::I64(5)],
    );
    assert_eq!(
        (c.unwrap(), i.unwrap()),
        (Some(Value::U8(250)), Some(Value::U8(250)))
    );
    // n = 0 traps with code 1 through __smfjit_trap.
    let (c, i) = call(
        "max$u8",
        &[Value::Ptr(bytes8.as_ptr() as u64), Value::I64(0)],
    );
    assert_eq!(c.unwrap_err(), jit::TrapKind::Explicit(1));
    assert_eq!(
        i.unwrap_err().kind,
        jit::ErrorKind::Trap(jit::TrapKind::Explicit(1))
    );

    // sort$i64 reaches quicksort$i64 and insertion_sort$i64 by direct
    // calls inside .text; 40 elements take both paths.
    let unsorted: Vec<i64> = (0..40).map(|k| (k * 7919 % 61) - 30).collect();
    let (mut x, mut y) = (unsorted.clone(), unsorted.clone());
    let (c, i) = (
        call(
            "sort$i64",
            &[Value::Ptr(x.as_mut_ptr() as u64), Value::I64(40)],
        )
        .0,
        call(
            "sort$i64",
            &[Value::Ptr(y.as_mut_ptr() as u64), Value::I64(40)],
        )
        .1,
    );
    assert_eq!((c.unwrap(), i.unwrap()), (None, None));
    let mut expected = unsorted;
    expected.sort_unstable();
    assert_eq!((&x, &y), (&expected, &expected));

    // Vec$i64$push grows through realloc, reached through a gotpcrel slot.
    // SAFETY: the interpreter calls malloc through its native table.
    let v = unsafe { interp.call_symbol("Vec$i64$new", &[]) }
        .unwrap()
        .unwrap();
    for k in 0..20 {
        let pushed = call_compiled(
            &linked,
            &trap,
            &lib,
            "Vec$i64$push",
            &[v, Value::I64(k * k)],
        );
        assert_eq!(pushed, None);
    }
    for k in [0, 10, 19] {
        // SAFETY: as above.
        let got = unsafe { interp.call_symbol("Vec$i64$get", &[v, Value::I64(k)]) };
        assert_eq!(got.unwrap(), Some(Value::I64(k * k)));
    }
    // SAFETY: as above.
    let len = unsafe { interp.call_symbol("Vec$i64$len", &[v]) };
    assert_eq!(len.unwrap(), Some(Value::I64(20)));
    // SAFETY: as above.
    unsafe { interp.call_symbol("Vec$i64$free", &[v]) }.unwrap();
}

fn call_compiled(
    linked: &link::Linked,
    trap: &jit::backend::TrapRuntime,
    lib: &jit::ir::Library,
    symbol: &str,
    args: &[jit::interp::Value],
) -> Option<jit::interp::Value> {
    let f = jit::instantiate::instantiate_symbol(lib, symbol)
        .unwrap()
        .function;
    // SAFETY: compiled code of `f`'s signature; `args` are live values.
    let r = unsafe { trap.call(linked.symbols[symbol] as *const u8, &f.sig, args) };
    r.unwrap()
}

fn fixture_manifest(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/src/{name}.sdn"))
}

/// Reaches native imports at their addresses; nothing else is outside the
/// batch.
struct Natives<'a>(&'a [(&'static str, u64)]);

impl jit::backend::CallResolver for Natives<'_> {
    fn resolve(
        &mut self,
        callee: &jit::ir::Callee,
    ) -> Result<jit::backend::CallTarget, jit::Error> {
        let name = match callee {
            jit::ir::Callee::Import(n) | jit::ir::Callee::Symbol(n) => n.as_str(),
            jit::ir::Callee::Template { .. } => "",
        };
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| jit::backend::CallTarget::Direct(*a))
            .ok_or_else(|| jit::Error::new(jit::ErrorKind::Unresolved(name.to_owned())))
    }
}

/// JIT-compiles `symbols` of the collections templates (with everything
/// they call) as a loader would on a miss, and returns their entries.
fn jit_collections(
    memory: &execmem::ExecMemory,
    trap: &jit::backend::TrapRuntime,
    natives: &[(&'static str, u64)],
    symbols: &[&str],
) -> (jit::backend::CompiledBatch, Vec<(&'static str, u64)>) {
    let lib = collections_library();
    let mut instances = Vec::new();
    for s in symbols {
        let (name, args) = jit::mangle::demangle(s).unwrap();
        for i in jit::instantiate::instantiate_all(&lib, &name, &args).unwrap() {
            if !instances
                .iter()
                .any(|k: &jit::instantiate::Instance| k.symbol == i.symbol)
            {
                instances.push(i);
            }
        }
    }
    let backend = jit::backend::Backend::new(trap.options());
    let refs: Vec<&jit::instantiate::Instance> = instances.iter().collect();
    let batch = backend
        .compile_batch(memory, &refs, &mut Natives(natives))
        .unwrap();
    let mut bound = natives.to_vec();
    for s in symbols {
        let name: &'static str = Box::leak(s.to_string().into_boxed_str());
        bound.push((name, batch.function(s).unwrap().address()));
    }
    (batch, bound)
}

/// The app fixture's concrete code, linked against instantiations the JIT
/// makes from collections, computes what the interpreter computes over the
/// same native code, and what Rust computes.
#[test]
fn precompiled_app_code_calls_instantiations_made_at_load() {
    use jit::interp::{Interpreter, LibraryResolver, Value};
    let bytes = smfjit::build::build_module(&fixture_manifest("app")).unwrap();
    let memory = execmem::ExecMemory::new(execmem::Config::default()).unwrap();
    let trap = jit::backend::TrapRuntime::new(&memory).unwrap();
    let wanted = [
        "sum$f32",
        "sort$u16",
        "Vec$i64$new",
        "Vec$i64$push",
        "Vec$i64$get",
        "Vec$i64$len",
        "Vec$i64$free",
    ];
    let (_jit, bound) = jit_collections(&memory, &trap, &natives(&trap), &wanted);
    let linked = link::link(&bytes, &memory, &bound);

    let module = smf::Module::parse(&bytes).unwrap();
    let lib = jit::binary::decode_library(module.template_code().unwrap())
        .unwrap()
        .library;
    let mut resolver = LibraryResolver::new(&lib);
    for (n, a) in &bound[1..] {
        resolver = resolver.with_native(n, *a);
    }
    let interp = Interpreter::new(&resolver);
    let sig = |name: &str| {
        lib.function(&jit::ir::TemplateName::free(name))
            .unwrap()
            .sig
            .clone()
    };

    let floats = [1.5f32, 2.25, -0.75, 10.0, 3.5];
    for n in 0..=floats.len() {
        let shorts_c: Vec<u16> = [900u16, 7, 65535, 12, 300][..n].to_vec();
        let mut shorts_c = shorts_c;
        let mut shorts_i = shorts_c.clone();
        let args = |shorts: &mut Vec<u16>| {
            [
                Value::Ptr(floats.as_ptr() as u64),
                Value::Ptr(shorts.as_mut_ptr() as u64),
                Value::I64(n as i64),
            ]
        };
        let entry = linked.symbols["checksum"] as *const u8;
        // SAFETY: linked code of checksum's signature over live buffers.
        let compiled = unsafe { trap.call(entry, &sig("checksum"), &args(&mut shorts_c)) };
        let f = jit::instantiate::instantiate_symbol(&lib, "checksum")
            .unwrap()
            .function;
        // SAFETY: as above, interpreted.
        let interpreted = unsafe { interp.call(&f, &args(&mut shorts_i)) };
        if n == 0 {
            // median_u16 traps on an empty array, in both.
            assert_eq!(compiled.unwrap_err(), jit::TrapKind::Explicit(1));
            assert_eq!(
                interpreted.unwrap_err().kind,
                jit::ErrorKind::Trap(jit::TrapKind::Explicit(1))
            );
            continue;
        }
        let compiled = compiled.unwrap();
        assert_eq!(compiled, interpreted.unwrap(), "n = {n}");
        assert_eq!(shorts_c, shorts_i);
        let mean = floats[..n].iter().fold(0.0f32, |a, x| a + x) / n as f32;
        let mut sorted = [900u16, 7, 65535, 12, 300][..n].to_vec();
        sorted.sort_unstable();
        let squares: i64 = (0..n as i64).map(|k| k * k).sum();
        let expected = mean as i64 + i64::from(sorted[n / 2]) + squares;
        assert_eq!(compiled, Some(Value::I64(expected)), "n = {n}");
        assert_eq!(shorts_c, sorted);
    }
}

/// trig's code reaches libm through gotpcrel slots and an abs64 address.
#[test]
fn precompiled_trig_code_calls_libm() {
    use jit::interp::Value;
    let bytes = smfjit::build::build_module(&fixture_manifest("trig")).unwrap();
    let memory = execmem::ExecMemory::new(execmem::Config::default()).unwrap();
    let trap = jit::backend::TrapRuntime::new(&memory).unwrap();
    let mut natives = natives(&trap);
    natives.push(("sqrt", f64::sqrt as fn(f64) -> f64 as *const () as u64));
    let linked = link::link(&bytes, &memory, &natives);
    let module = smf::Module::parse(&bytes).unwrap();
    let lib = jit::binary::decode_library(module.template_code().unwrap())
        .unwrap()
        .library;
    let free = |n: &str| {
        lib.function(&jit::ir::TemplateName::free(n))
            .unwrap()
            .sig
            .clone()
    };
    let wave = jit::instantiate::instantiate_symbol(&lib, "wave$f32").unwrap();
    for x in [0.0f64, 0.5, -3.0, 1e6] {
        let call = |symbol: &str, sig: &jit::ir::Signature, args: &[Value]| {
            // SAFETY: linked code of that signature, scalar arguments.
            unsafe { trap.call(linked.symbols[symbol] as *const u8, sig, args) }.unwrap()
        };
        assert_eq!(
            call("wave$f32", &wave.function.sig, &[Value::F32(x as f32)]),
            Some(Value::F32(f64::from(x as f32).cos() as f32))
        );
        assert_eq!(
            call("apply_cos", &free("apply_cos"), &[Value::F64(x)]),
            Some(Value::F64(x.cos()))
        );
        assert_eq!(
            call("radial", &free("radial"), &[Value::F64(x), Value::F64(2.0)]),
            Some(Value::F64((x * x + 4.0).sqrt().cos()))
        );
    }
}

/// stats' mean$f64 calls collections' sum$f64 across modules.
#[test]
fn precompiled_stats_code_calls_the_other_modules_instantiation() {
    use jit::interp::Value;
    let bytes = smfjit::build::build_module(&fixture_manifest("stats")).unwrap();
    let memory = execmem::ExecMemory::new(execmem::Config::default()).unwrap();
    let trap = jit::backend::TrapRuntime::new(&memory).unwrap();
    let (_jit, bound) = jit_collections(&memory, &trap, &natives(&trap), &["sum$f64"]);
    let linked = link::link(&bytes, &memory, &bound);
    let module = smf::Module::parse(&bytes).unwrap();
    let lib = jit::binary::decode_library(module.template_code().unwrap())
        .unwrap()
        .library;
    let mean = jit::instantiate::instantiate_symbol(&lib, "mean$f64").unwrap();
    let xs = [1.0f64, 2.5, 4.0, -0.5];
    for n in 1..=xs.len() {
        let args = [Value::Ptr(xs.as_ptr() as u64), Value::I64(n as i64)];
        // SAFETY: linked code of mean$f64's signature over a live buffer.
        let got = unsafe {
            trap.call(
                linked.symbols["mean$f64"] as *const u8,
                &mean.function.sig,
                &args,
            )
        };
        let expected = xs[..n].iter().fold(0.0, |a, x| a + x) / n as f64;
        assert_eq!(got.unwrap(), Some(Value::F64(expected)), "n = {n}");
    }
}

/// A stand-in for the JIT-on-miss service, enough to load the fixtures
/// through the real loader: `__smfjit_trap` is the trap runtime's handler,
/// and a collections instantiation is compiled from the shipped templates.
/// Each answer is a published `jmp [rip]` to the code, which it keeps alive.
struct StandIn {
    trap: jit::backend::TrapRuntime,
    compiled: std::sync::Mutex<Vec<jit::backend::CompiledBatch>>,
}

impl StandIn {
    fn jump_to(memory: &execmem::ExecMemory, name: &str, target: u64) -> loader::InstanceCode {
        let mut stub = vec![0xFF, 0x25, 0, 0, 0, 0];
        stub.extend_from_slice(&target.to_le_bytes());
        memory.publish_function(name, &stub).unwrap().into()
    }
}

impl loader::Instantiator for StandIn {
    fn instantiate(
        &self,
        name: &str,
        ctx: &mut loader::ResolveContext<'_>,
    ) -> loader::Result<Option<loader::InstanceCode>> {
        if name == smfjit::build::aot::TRAP_SYMBOL {
            return Ok(Some(Self::jump_to(ctx.memory(), name, self.trap.handler())));
        }
        let lib = collections_library();
        if jit::instantiate::instantiate_symbol(&lib, name).is_err() {
            return Ok(None);
        }
        let (batch, _) = jit_collections(ctx.memory(), &self.trap, &natives(&self.trap), &[name]);
        let entry = batch.function(name).unwrap().address();
        self.compiled.lock().unwrap().push(batch);
        Ok(Some(Self::jump_to(ctx.memory(), name, entry)))
    }
}

/// The fixtures load through the loader as they are: relocations of every
/// kind applied, `__smfjit_trap` and the instantiations bound by the
/// instantiator, libm bound natively; the code then runs.
#[test]
fn fixtures_load_through_the_loader_and_run() {
    for binding in [loader::Binding::Now, loader::Binding::Lazy] {
        load_and_run(binding);
    }
}

fn load_and_run(binding: loader::Binding) {
    use jit::interp::Value;
    let loader = loader::Loader::new(loader::LoaderConfig {
        binding,
        ..loader::LoaderConfig::default()
    })
    .unwrap();
    let stand_in = std::sync::Arc::new(StandIn {
        trap: jit::backend::TrapRuntime::new(loader.memory()).unwrap(),
        compiled: std::sync::Mutex::default(),
    });
    loader.set_instantiator(std::sync::Arc::clone(&stand_in));
    let trap = &stand_in.trap;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["collections", "app", "trig", "stats"] {
        loader
            .load(fixtures.join(format!("{name}.smf")))
            .unwrap_or_else(|e| panic!("{name} ({binding:?}): {e}"));
    }
    let call = |symbol: &str, sig: &str, args: &[Value]| {
        let entry = loader.resolve(symbol).unwrap().as_ptr();
        let sig = signature(sig);
        // SAFETY: `entry` is loaded code of that signature, the pointers
        // are live buffers; traps come back through `trap`'s guard.
        unsafe { trap.call(entry, &sig, args) }
    };
    let ints = [5i32, -9, 100];
    assert_eq!(
        call(
            "sum$i32",
            "fn(ptr<i32>, i64) -> i32",
            &[Value::Ptr(ints.as_ptr() as u64), Value::I64(3)]
        ),
        Ok(Some(Value::I32(96)))
    );
    let bytes = [1u8];
    assert_eq!(
        call(
            "max$u8",
            "fn(ptr<u8>, i64) -> u8",
            &[Value::Ptr(bytes.as_ptr() as u64), Value::I64(0)]
        ),
        Err(jit::TrapKind::Explicit(1))
    );
    let floats = [1.5f32, 2.5, 8.0];
    let mut shorts = [30u16, 10, 20];
    assert_eq!(
        call(
            "checksum",
            "fn(ptr<f32>, ptr<u16>, i64) -> i64",
            &[
                Value::Ptr(floats.as_ptr() as u64),
                Value::Ptr(shorts.as_mut_ptr() as u64),
                Value::I64(3),
            ]
        ),
        // mean 4, median 20, 0 + 1 + 4.
        Ok(Some(Value::I64(4 + 20 + 5)))
    );
    assert_eq!(shorts, [10, 20, 30]);
    assert_eq!(
        call(
            "radial",
            "fn(f64, f64) -> f64",
            &[Value::F64(3.0), Value::F64(4.0)]
        ),
        Ok(Some(Value::F64(5.0f64.cos())))
    );
    assert_eq!(
        call("apply_cos", "fn(f64) -> f64", &[Value::F64(0.5)]),
        Ok(Some(Value::F64(0.5f64.cos())))
    );
    let xs = [1.0f64, 2.0, 6.0];
    assert_eq!(
        call(
            "mean$f64",
            "fn(ptr<f64>, i64) -> f64",
            &[Value::Ptr(xs.as_ptr() as u64), Value::I64(3)]
        ),
        Ok(Some(Value::F64(3.0)))
    );
}

/// A float constant with the bits of a value the build uses to find the
/// trap handler's pool entry still compiles, and traps still reach the
/// handler.
#[test]
fn a_constant_equal_to_a_trap_probe_is_kept_apart_from_the_handler() {
    use jit::interp::Value;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "t.tir",
        "fn odd(%x: f64, %n: i64, %d: i64) -> f64 {\nentry:\n    \
         %c = const f64 float(0x545241505f414f54)\n    %q = div i64 %n, %d\n    \
         %qf = cast i64 %q to f64\n    %s = add f64 %x, %c\n    %r = add f64 %s, %qf\n    ret %r\n}\n",
    );
    let manifest = write(
        dir.path(),
        "m.sdn",
        "module:\n    name: m\nsources = [t.tir]\n",
    );
    let bytes = build_ok(&manifest, &dir.path().join("m.smf"));
    let memory = execmem::ExecMemory::new(execmem::Config::default()).unwrap();
    let trap = jit::backend::TrapRuntime::new(&memory).unwrap();
    let linked = link::link(&bytes, &memory, &natives(&trap));
    let sig = signature("fn(f64, i64, i64) -> f64");
    let c = f64::from_bits(0x5452_4150_5f41_4f54);
    let call = |d: i64| {
        let args = [Value::F64(1.0), Value::I64(6), Value::I64(d)];
        // SAFETY: linked code of `sig`, scalar arguments.
        unsafe { trap.call(linked.symbols["odd"] as *const u8, &sig, &args) }
    };
    assert_eq!(call(3), Ok(Some(Value::F64(1.0 + c + 2.0))));
    assert_eq!(call(0), Err(jit::TrapKind::DivideByZero));
}

/// A signature written as a function type (`fn(f64) -> f64`).
fn signature(text: &str) -> jit::ir::Signature {
    match jit::text::parse_type(text).unwrap() {
        jit::ir::Type::Fn(sig) => *sig,
        other => panic!("{other:?}"),
    }
}

#[test]
fn memories_and_tables_become_the_shared_section_and_stay_out_of_ahead_of_time_code() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "s.tir",
        "memory heap 2, 8\nimport table t fn(i64) -> i64\n\
         fn peek<T: num>(%o: i64) -> T {\nentry:\n    %v = mem_load T heap, %o\n    ret %v\n}\n",
    );
    let manifest = write(
        dir.path(),
        "s.sdn",
        "module:\n    name: s\nsources = [s.tir]\n",
    );
    let bytes = build_ok(&manifest, &dir.path().join("s.smf"));
    let module = smf::Module::parse(&bytes).unwrap();
    assert_eq!(
        module.shared_items(),
        [
            smf::SharedItem::memory("heap", 2, Some(8)),
            smf::SharedItem::import_table("t", "fn(i64) -> i64"),
        ]
    );
    // A concrete function is compiled ahead of time, where no descriptor
    // exists yet: refused, naming the function.
    write(
        dir.path(),
        "c.tir",
        "memory heap 1\nfn first() -> i64 {\nentry:\n    %z = const i64 0\n    \
         %v = mem_load i64 heap, %z\n    ret %v\n}\n",
    );
    let manifest = write(
        dir.path(),
        "c.sdn",
        "module:\n    name: c\nsources = [c.tir]\n",
    );
    let err = error_of(&build(&manifest, &dir.path().join("c.smf")));
    assert!(
        err.contains("`first` uses a shared memory or table"),
        "{err}"
    );
}
