//! Shared memories and tables in the in-process runner: the scenario of
//! `support/shared.rs` (every operation, in and out of bounds, grown to
//! the maximum and past it, a table filled and called through) gives the
//! outcomes computed in Rust, as the interpreter does (and compiled
//! x86-64 code agrees with the interpreter: `jit/tests/shared_mixed.rs`);
//! the module imports one descriptor global a
//! memory or table; the runner's definitions, its reads and writes of
//! memory bytes and table entries, and its refusals.

mod support;

use jit::TrapKind;
use jit::interp::Value;
use jit::ir::{Library, TemplateName, Type};
use jit::wasm::abi::{self, Space};
use jit::wasm::run::{Config, Definition, Runner};
use jit::wasm::{Error, Module, SharedImport};
use support::shared::{self, DISPATCH, FINAL_DISPATCH, FINAL_HEAP, HEAP};
use support::{Same, compiled, for_wasm32};
use wasmparser::{Parser, Payload, TypeRef};

fn library(text: &str) -> Library {
    let lib = jit::text::parse_library(text).unwrap_or_else(|e| panic!("{e}"));
    for_wasm32(lib)
}

fn scenario_module() -> Module {
    support::module(&library(shared::TEXT), &shared::roots())
}

fn definitions() -> [Definition; 2] {
    [
        Definition::memory(HEAP.0, HEAP.1, HEAP.2),
        Definition::table(DISPATCH.0, DISPATCH.1, DISPATCH.2),
    ]
}

fn runner(m: &Module, config: Config) -> Runner {
    Runner::with_definitions(m, config, &definitions()).expect("instantiates")
}

#[test]
fn the_scenario_gives_the_outcomes_computed_in_rust() {
    let m = scenario_module();
    for table_base in [1, 9] {
        let config = Config {
            table_base,
            ..Config::default()
        };
        let mut run = runner(&m, config);
        for (k, step) in shared::steps().iter().enumerate() {
            let got = compiled(run.call(&step.symbol, &step.args));
            let want = step.want.map(|v| v.map(Same));
            assert_eq!(got, want, "step {k}: {}({:?})", step.symbol, step.args);
        }
        for (name, (length, maximum, version)) in
            [(HEAP.0, FINAL_HEAP), (DISPATCH.0, FINAL_DISPATCH)]
        {
            let d = run.descriptor(name).expect("defined");
            assert_eq!(
                (d.length, d.maximum, d.version),
                (length, maximum, version),
                "{name}: {d:?}"
            );
        }
    }
}

#[test]
fn the_module_imports_one_descriptor_global_a_memory_or_table() {
    let m = scenario_module();
    assert_eq!(
        m.shared(),
        [
            SharedImport {
                space: Space::Memory,
                name: "heap".into()
            },
            SharedImport {
                space: Space::Table,
                name: "dispatch".into()
            }
        ]
    );
    let mut globals = Vec::new();
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(m.bytes()) {
        match payload.expect("parses") {
            Payload::ImportSection(s) => {
                for i in s {
                    let i = i.expect("import");
                    if let TypeRef::Global(g) = i.ty {
                        assert_eq!(i.module, abi::IMPORT_MODULE);
                        assert!(!g.mutable && g.content_type == wasmparser::ValType::I32);
                        globals.push(i.name.to_owned());
                    }
                }
            }
            Payload::ExportSection(s) => {
                for e in s {
                    exports.push(e.expect("export").name.to_owned());
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        globals,
        [
            "__memory_base",
            "__table_base",
            "__memory.heap",
            "__table.dispatch"
        ]
    );
    assert_eq!(Space::Memory.import_name("heap"), "__memory.heap");
    for name in [abi::TRAP_CODE, abi::TRAP_KIND] {
        assert!(exports.iter().any(|e| e == name), "{name}: {exports:?}");
    }
}

#[test]
fn the_runner_reads_and_writes_memory_bytes_and_table_entries() {
    let m = scenario_module();
    let mut run = runner(&m, Config::default());
    let heap = run.descriptor("heap").expect("defined");
    assert_eq!(
        (heap.length, heap.maximum, heap.version),
        (65_536, 3 * 65_536, 0)
    );
    assert_eq!(heap.address % 4, 0);
    let table = run.descriptor("dispatch").expect("defined");
    assert_eq!((table.length, table.maximum, table.version), (2, 4, 0));
    // The reservations do not overlap each other or the descriptors.
    assert!(heap.base >= heap.address + abi::descriptor::SIZE);
    assert!(table.address >= heap.base + heap.maximum);
    assert!(table.base >= table.address + abi::descriptor::SIZE);

    // Bytes the host writes are the module's, and back, up to the length.
    run.write_memory("heap", 65_532, &[1, 2, 3, 4])
        .expect("in bounds");
    let got = run.call("load$u32", &[Value::I64(65_532)]).expect("runs");
    assert_eq!(got, Some(Value::U32(0x0403_0201)));
    run.call("store$i16", &[Value::I64(10), Value::I16(-2)])
        .expect("runs");
    assert_eq!(
        run.read_memory("heap", 10, 2).expect("in bounds"),
        [0xfe, 0xff]
    );
    for (offset, len) in [(65_533, 4), (65_536, 1), (u64::MAX, 2)] {
        let err = run
            .read_memory("heap", offset, len)
            .expect_err("past the length");
        assert!(matches!(err, Error::Arguments(_)), "{err:?}");
        let err = run
            .write_memory("heap", offset, &vec![9; len])
            .expect_err("past the length");
        assert!(matches!(err, Error::Arguments(_)), "{err:?}");
    }
    assert_eq!(
        run.read_memory("heap", 65_532, 4).expect("unchanged"),
        [1, 2, 3, 4]
    );

    // Entries are function-pointer values: the module's `func_addr`, the
    // runner's `function_pointer`, 0 for null.
    assert_eq!(run.table_entry("dispatch", 1).expect("in bounds"), 0);
    run.call("set_double", &[Value::I64(1)]).expect("runs");
    let double = run.function_pointer("double").expect("a slot");
    assert_eq!(run.table_entry("dispatch", 1).expect("in bounds"), double);
    let negate = run.function_pointer("negate").expect("a slot");
    run.set_table_entry("dispatch", 0, negate)
        .expect("in bounds");
    let got = run
        .call("call", &[Value::I64(0), Value::I64(5)])
        .expect("runs");
    assert_eq!(got, Some(Value::I64(-5)));
    run.set_table_entry("dispatch", 0, 0).expect("in bounds");
    assert_eq!(
        compiled(run.call("call", &[Value::I64(0), Value::I64(5)])),
        Err(TrapKind::NullPointer)
    );
    for index in [2, u64::MAX] {
        assert!(matches!(
            run.table_entry("dispatch", index),
            Err(Error::Arguments(_))
        ));
        assert!(matches!(
            run.set_table_entry("dispatch", index, double),
            Err(Error::Arguments(_))
        ));
    }
    // A grow makes the new entry reachable from the host too.
    run.call("grow_table", &[Value::I64(1)]).expect("runs");
    assert_eq!(run.table_entry("dispatch", 2).expect("grown"), 0);
    // Names of the other kind, or of nothing, are refused.
    assert!(matches!(
        run.table_entry("heap", 0),
        Err(Error::Arguments(_))
    ));
    assert!(matches!(
        run.read_memory("dispatch", 0, 1),
        Err(Error::Arguments(_))
    ));
    assert!(matches!(
        run.descriptor("nothing"),
        Err(Error::Arguments(_))
    ));
}

/// The error `Runner::with_definitions` gives the scenario's module.
fn refused(definitions: &[Definition]) -> Error {
    Runner::with_definitions(&scenario_module(), Config::default(), definitions)
        .expect_err("refused")
}

#[test]
fn definitions_that_cannot_be_made_are_refused() {
    let table = Definition::table(DISPATCH.0, DISPATCH.1, DISPATCH.2);
    for bad in [
        // The initial size above the maximum.
        Definition::memory("heap", 2, 1),
        // 65 536 pages are 2^32 bytes: more than a 32-bit memory holds.
        Definition::memory("heap", 1, 65_536),
        Definition::table("heap", 1, 1 << 30),
        // One name for a memory and a table.
        Definition::memory("dispatch", 1, 1),
    ] {
        let err = refused(&[bad.clone(), table.clone()]);
        assert!(matches!(err, Error::Arguments(_)), "{bad:?}: {err:?}");
    }
}

#[test]
fn a_memory_or_table_the_runner_does_not_define_is_unresolved() {
    for (definitions, name) in [
        (vec![], "__memory.heap"),
        (vec![Definition::memory("heap", 1, 1)], "__table.dispatch"),
        // Defined, but as the other kind.
        (
            vec![
                Definition::memory("heap", 1, 1),
                Definition::memory("dispatch", 1, 1),
            ],
            "__table.dispatch",
        ),
    ] {
        let err = refused(&definitions);
        assert!(
            matches!(&err, Error::Unresolved(n) if n == name),
            "{definitions:?}: {err:?}"
        );
    }
}

#[test]
fn an_import_named_like_a_descriptor_is_refused() {
    let lib = library(
        "extern fn @__memory.heap(i64) -> i64
fn f(%x: i64) -> i64 {
b0:
    %r = call @__memory.heap(%x)
    ret %r
}",
    );
    let set = support::instances(&lib, &[(TemplateName::free("f"), Vec::<Type>::new())]);
    let refs: Vec<_> = set.iter().collect();
    let err = jit::wasm::compile(&refs).expect_err("reserved");
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
}

#[test]
fn the_interpreter_gives_the_same_outcomes_as_the_scenario() {
    // The oracle on the host: the same program for x86-64, the memory and
    // table as `jit::shared` objects of the scenario's sizes.
    let lib = jit::text::parse_library(shared::TEXT).expect("parses");
    jit::verify::verify_library(&lib).expect("verifies");
    let memory = jit::shared::SharedMemory::new(HEAP.0, HEAP.1.into(), Some(HEAP.2.into()));
    let table =
        jit::shared::SharedTable::new(DISPATCH.0, DISPATCH.1.into(), Some(DISPATCH.2.into()));
    let resolver = jit::interp::LibraryResolver::new(&lib)
        .with_memory(std::sync::Arc::new(memory.expect("memory")))
        .with_table(std::sync::Arc::new(table.expect("table")));
    for (k, step) in shared::steps().iter().enumerate() {
        let got = support::interpret(&resolver, &step.symbol, &step.args);
        let want = step.want.map(|v| v.map(Same));
        assert_eq!(got, want, "step {k}: {}({:?})", step.symbol, step.args);
    }
}
