//! The WebAssembly backend's modules in Node (V8), through the committed
//! harness `tests/wasm/run.mjs`: a host that creates its own memory and
//! table, with a `__table_base` other than 1, gets the interpreter's
//! results for sum, dot, sort, binary_search, a comparator called through
//! `func_addr` and `call_indirect`, and a trap with its code — for
//! modules the backend returns and for modules `smf-inspect instantiate
//! --target wasm32 -o` writes from the collections fixture. A host that
//! defines shared memories and tables gives the outcomes the scenario of
//! `jit/wasm/tests/support/shared.rs` computes, as the in-process runner
//! does.
//!
//! `node` must be on the PATH: without it this test fails (CI must not
//! pass by skipping it).

#![allow(unsafe_code)] // the interpreter, the oracle, runs on host buffers

use std::path::{Path, PathBuf};
use std::process::Command;

use jit::interp::{Interpreter, LibraryResolver, Value};
use jit::ir::{IntType, Library, Type};
use jit::target::Target;
use jit::{Error, ErrorKind, TrapKind};

#[path = "../jit/wasm/tests/support/shared.rs"]
mod shared;

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/wasm/run.mjs")
}

/// What one side computed: the result and the buffers, as values.
#[derive(Debug)]
struct Run {
    result: Result<Option<Value>, TrapKind>,
    buffers: Vec<Vec<Value>>,
}

/// NaN equal to NaN, everything else bit for bit.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) if x.is_nan() && y.is_nan() => true,
        (Value::F64(x), Value::F64(y)) if x.is_nan() && y.is_nan() => true,
        _ => std::mem::discriminant(a) == std::mem::discriminant(b) && a.to_bits() == b.to_bits(),
    }
}

fn same_run(a: &Run, b: &Run) -> bool {
    let result = match (&a.result, &b.result) {
        (Ok(Some(x)), Ok(Some(y))) => same(x, y),
        (x, y) => x == y,
    };
    result
        && a.buffers.len() == b.buffers.len()
        && a.buffers
            .iter()
            .zip(&b.buffers)
            .all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)))
}

/// The harness's spelling of a value.
fn spell(v: &Value) -> String {
    match v {
        Value::F32(x) if x.is_nan() => "nan".into(),
        Value::F64(x) if x.is_nan() => "nan".into(),
        Value::F32(x) => format!("{x:?}"),
        Value::F64(x) => format!("{x:?}"),
        Value::Bool(b) => b.to_string(),
        Value::I8(x) => x.to_string(),
        Value::I16(x) => x.to_string(),
        Value::I32(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::U8(x) => x.to_string(),
        Value::U16(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::Ptr(x) => x.to_string(),
    }
}

/// The harness's name of a value's type.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::I8(_) => "i8",
        Value::I16(_) => "i16",
        Value::I32(_) => "i32",
        Value::I64(_) => "i64",
        Value::U8(_) => "u8",
        Value::U16(_) => "u16",
        Value::U32(_) => "u32",
        Value::U64(_) => "u64",
        Value::F32(_) => "f32",
        Value::F64(_) => "f64",
        Value::Bool(_) => "bool",
        Value::Ptr(_) => "ptr",
    }
}

/// A JSON value the harness printed, read as type `ty`.
fn read(ty: &Type, j: &serde_json::Value) -> Value {
    let text = match j {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let bits = match ty {
        Type::F32 | Type::F64 => {
            let f = match text.as_str() {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                t => t.parse().unwrap_or_else(|e| panic!("{t}: {e}")),
            };
            if *ty == Type::F32 {
                u64::from((f as f32).to_bits())
            } else {
                f.to_bits()
            }
        }
        Type::Bool => u64::from(text == "true"),
        _ => text
            .parse::<i128>()
            .unwrap_or_else(|e| panic!("{text}: {e}")) as u64,
    };
    Value::from_bits(ty, bits)
}

/// A call: symbol, element type of the buffers, buffers, scalar arguments
/// after them, result type.
struct Call<'a> {
    symbol: &'a str,
    elem: Type,
    buffers: Vec<Vec<Value>>,
    scalars: Vec<Value>,
    ret: Option<Type>,
}

fn interpreted(lib: &Library, call: &Call<'_>) -> Run {
    let size = match call.elem {
        Type::Int(t) => t.bits() as usize / 8,
        Type::F32 => 4,
        _ => 8,
    };
    let mut memory: Vec<Vec<u8>> = call
        .buffers
        .iter()
        .map(|b| {
            b.iter()
                .flat_map(|v| v.to_bits().to_le_bytes()[..size].to_vec())
                .collect()
        })
        .collect();
    let mut args: Vec<Value> = memory
        .iter_mut()
        .map(|m| Value::Ptr(m.as_mut_ptr() as usize as u64))
        .collect();
    args.extend(&call.scalars);
    let resolver = LibraryResolver::new(lib);
    // SAFETY: every pointer argument is a live buffer of the length the
    // function is told.
    let result = match unsafe { Interpreter::new(&resolver).call_symbol(call.symbol, &args) } {
        Ok(v) => Ok(v),
        Err(Error {
            kind: ErrorKind::Trap(t),
            ..
        }) => Err(t),
        Err(e) => panic!("{}: {e}", call.symbol),
    };
    let buffers = memory
        .iter()
        .map(|m| {
            m.chunks(size)
                .map(|c| {
                    let mut w = [0u8; 8];
                    w[..size].copy_from_slice(c);
                    Value::from_bits(&call.elem, u64::from_le_bytes(w))
                })
                .collect()
        })
        .collect();
    Run { result, buffers }
}

/// The harness's spelling of a scalar argument, `TYPE:VALUE`.
fn scalar(v: &Value) -> String {
    format!("{}:{}", type_name(v), spell(v))
}

/// Runs the harness on `module` with `args`: one JSON value a call.
fn harness_lines(module: &Path, args: &[String]) -> Vec<serde_json::Value> {
    let mut cmd = Command::new("node");
    cmd.arg(harness()).arg(module).args(args);
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("`node` is needed to run the WebAssembly harness and could not be started: {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// What a call's line says it did: its result read as `ret`, or its trap
/// (an engine trap, which the IR does not define, fails the test).
fn outcome(j: &serde_json::Value, ret: Option<&Type>) -> Result<Option<Value>, TrapKind> {
    match &j["trap"] {
        serde_json::Value::Null => Ok(ret.map(|t| read(t, &j["result"]))),
        trap => Err(match trap["kind"].as_str() {
            Some("explicit") => TrapKind::Explicit(trap["code"].as_u64().unwrap_or(0) as u32),
            Some("divide_by_zero") => TrapKind::DivideByZero,
            Some("null_pointer") => TrapKind::NullPointer,
            Some("out_of_bounds") => TrapKind::OutOfBounds,
            other => panic!("an engine trap {other:?}: {trap}"),
        }),
    }
}

fn in_node(module: &Path, call: &Call<'_>, table_base: u32) -> Run {
    let mut args = vec![call.symbol.to_owned()];
    for b in &call.buffers {
        let values: Vec<String> = b.iter().map(spell).collect();
        args.push(format!("buf:{}:{}", call.elem, values.join(",")));
    }
    args.extend(call.scalars.iter().map(scalar));
    if let Some(r) = &call.ret {
        args.push(format!("ret:{r}"));
    }
    args.extend(["--table-base".to_owned(), table_base.to_string()]);
    let [j] = harness_lines(module, &args)
        .try_into()
        .unwrap_or_else(|lines| panic!("{}: one line expected: {lines:?}", call.symbol));
    let result = outcome(&j, call.ret.as_ref());
    let buffers = j["buffers"]
        .as_array()
        .expect("buffers")
        .iter()
        .map(|b| {
            b.as_array()
                .expect("a buffer")
                .iter()
                .map(|v| read(&call.elem, v))
                .collect()
        })
        .collect();
    Run { result, buffers }
}

/// The calls both tests make: sum, dot (with an infinity making a NaN),
/// sort, binary_search, sort_desc (its comparator called through
/// `func_addr` and `call_indirect`) and a trap.
fn calls() -> Vec<Call<'static>> {
    let i32s = |xs: &[i32]| xs.iter().map(|&x| Value::I32(x)).collect::<Vec<_>>();
    let f64s = |xs: &[f64]| xs.iter().map(|&x| Value::F64(x)).collect::<Vec<_>>();
    let f32s = |xs: &[f32]| xs.iter().map(|&x| Value::F32(x)).collect::<Vec<_>>();
    vec![
        Call {
            symbol: "sum$i32",
            elem: Type::Int(IntType::I32),
            buffers: vec![i32s(&[1, 2, 3, i32::MAX, -7])],
            scalars: vec![Value::I64(5)],
            ret: Some(Type::Int(IntType::I32)),
        },
        Call {
            symbol: "dot$f64",
            elem: Type::F64,
            buffers: vec![f64s(&[1.5, -2.0, 0.1]), f64s(&[4.0, 0.25, 3.0])],
            scalars: vec![Value::I64(3)],
            ret: Some(Type::F64),
        },
        Call {
            symbol: "dot$f64",
            elem: Type::F64,
            buffers: vec![f64s(&[f64::INFINITY, 1.0]), f64s(&[0.0, 2.0])],
            scalars: vec![Value::I64(2)],
            ret: Some(Type::F64),
        },
        Call {
            symbol: "sort$i16",
            elem: Type::Int(IntType::I16),
            buffers: vec![
                [9i16, -3, i16::MIN, 40, 0, 7, -1, 300, 12, i16::MAX, 5, -30]
                    .iter()
                    .map(|&x| Value::I16(x))
                    .collect(),
            ],
            scalars: vec![Value::I64(12)],
            ret: None,
        },
        Call {
            symbol: "binary_search$u32",
            elem: Type::Int(IntType::U32),
            buffers: vec![
                [1u32, 4, 4, 9, 4_000_000_000]
                    .iter()
                    .map(|&x| Value::U32(x))
                    .collect(),
            ],
            scalars: vec![Value::I64(5), Value::U32(4_000_000_000)],
            ret: Some(Type::I64),
        },
        Call {
            symbol: "sort_desc$f32",
            elem: Type::F32,
            buffers: vec![f32s(&[
                0.5, -1.0, 3.25, 2.0, -0.0, 10.0, 7.5, 1.0, 9.0, -4.0,
            ])],
            scalars: vec![Value::I64(10)],
            ret: None,
        },
        Call {
            symbol: "min$i64",
            elem: Type::I64,
            buffers: vec![vec![]],
            scalars: vec![Value::I64(0)],
            ret: Some(Type::I64),
        },
    ]
}

#[test]
fn node_runs_the_modules_like_the_interpreter() {
    let host = jit::library::collections().expect("library");
    let wasm = host.clone().with_target(Target::WASM32);
    jit::verify::verify_library(&wasm).expect("verifies for wasm32");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let calls = calls();
    for (k, call) in calls.iter().enumerate() {
        let set = jit::instantiate::instantiate_symbol(&wasm, call.symbol)
            .and_then(|root| {
                jit::instantiate::instantiate_all(&wasm, &root.template, &root.type_args)
            })
            .unwrap_or_else(|e| panic!("{}: {e}", call.symbol));
        let refs: Vec<_> = set.iter().collect();
        let module = jit::wasm::compile(&refs).unwrap_or_else(|e| panic!("{}: {e}", call.symbol));
        let path = dir.path().join(format!("{k}.wasm"));
        std::fs::write(&path, module.bytes()).expect("writes the module");
        let want = interpreted(&host, call);
        for table_base in [3, 17] {
            let got = in_node(&path, call, table_base);
            assert!(
                same_run(&got, &want),
                "{} with __table_base {table_base}: node {got:?}, interpreter {want:?}",
                call.symbol
            );
        }
    }
}

/// The Must-show of the backend's issue: a module written by
/// `smf-inspect instantiate … --target wasm32 -o`, from the collections
/// fixture's templates, loaded by the harness with its own memory and
/// table and a `__table_base` other than 0, gives the interpreter's
/// results.
#[test]
fn node_runs_the_modules_smf_inspect_writes() {
    let host = jit::library::collections().expect("library");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/collections.smf");
    for (k, call) in calls().iter().enumerate() {
        let path = dir.path().join(format!("{k}.wasm"));
        let out = Command::new(env!("CARGO_BIN_EXE_smf-inspect"))
            .arg("instantiate")
            .arg(&fixture)
            .args([call.symbol, "--target", "wasm32", "-o"])
            .arg(&path)
            .output()
            .expect("smf-inspect runs");
        assert!(
            out.status.success(),
            "{}: {}",
            call.symbol,
            String::from_utf8_lossy(&out.stderr)
        );
        let want = interpreted(&host, call);
        let got = in_node(&path, call, 5);
        assert!(
            same_run(&got, &want),
            "{}: node {got:?}, interpreter {want:?}",
            call.symbol
        );
    }
}

/// The scenario on a shared memory and a shared table, run as one job on
/// one instance (`--then` between the calls), with the harness defining
/// both (`--memory`, `--table`): every call's outcome and the descriptors
/// after the last are the ones computed in Rust, which the in-process
/// runner gives too (`jit/wasm/tests/shared.rs`).
#[test]
fn node_runs_shared_memories_and_tables_with_the_outcomes_computed_in_rust() {
    let lib = jit::text::parse_library(shared::TEXT).expect("parses");
    let wasm = lib.with_target(Target::WASM32);
    jit::verify::verify_library(&wasm).expect("verifies for wasm32");
    let mut set = Vec::new();
    for (name, args) in shared::roots() {
        for inst in jit::instantiate::instantiate_all(&wasm, &name, &args)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
        {
            if !set
                .iter()
                .any(|i: &jit::instantiate::Instance| i.symbol == inst.symbol)
            {
                set.push(inst);
            }
        }
    }
    let refs: Vec<_> = set.iter().collect();
    let module = jit::wasm::compile(&refs).expect("compiles");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("shared.wasm");
    std::fs::write(&path, module.bytes()).expect("writes the module");

    let steps = shared::steps();
    let mut args = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        if k > 0 {
            args.push("--then".to_owned());
        }
        args.push(step.symbol.clone());
        args.extend(step.args.iter().map(scalar));
        if let Some(ret) = module.signature(&step.symbol).and_then(|s| s.ret.as_ref()) {
            args.push(format!("ret:{ret}"));
        }
    }
    let (heap, dispatch) = (shared::HEAP, shared::DISPATCH);
    args.extend([
        "--memory".to_owned(),
        format!("{}:{}:{}", heap.0, heap.1, heap.2),
        "--table".to_owned(),
        format!("{}:{}:{}", dispatch.0, dispatch.1, dispatch.2),
        "--table-base".to_owned(),
        "3".to_owned(),
    ]);
    let lines = harness_lines(&path, &args);
    assert_eq!(lines.len(), steps.len(), "one line a call");
    for (k, (step, j)) in steps.iter().zip(&lines).enumerate() {
        let ret = module.signature(&step.symbol).and_then(|s| s.ret.as_ref());
        let got = outcome(j, ret);
        let same_value = match (&got, &step.want) {
            (Ok(Some(a)), Ok(Some(b))) => same(a, b),
            (a, b) => a == b,
        };
        assert!(
            same_value,
            "step {k}: {}({:?}): node {got:?}, want {:?}",
            step.symbol, step.args, step.want
        );
    }
    let last = &lines.last().expect("a line")["shared"];
    for (name, (length, maximum, version)) in [
        (heap.0, shared::FINAL_HEAP),
        (dispatch.0, shared::FINAL_DISPATCH),
    ] {
        let d = &last[name];
        assert_eq!(
            [&d["length"], &d["maximum"], &d["version"]].map(|v| v.as_u64()),
            [length, maximum, version].map(|v| Some(u64::from(v))),
            "{name}: {d}"
        );
    }
}
