//! Traps and function pointers at the host boundary: explicit trap codes,
//! division by zero, null and mistyped function pointers, a table base
//! other than 1, and imports the host does not provide.

mod support;

use jit::TrapKind;
use jit::interp::{LibraryResolver, Value};
use jit::ir::{Library, TemplateName, Type};
use jit::wasm::run::{Config, Runner};
use jit::wasm::{Error, ImportKind};
use support::{compiled, for_wasm32, interpret, module};

const TEXT: &str = "
extern fn @other$i64(i64) -> i64
fn apply(%f: fn(i32) -> i32, %x: i32) -> i32 {
b0:
    %r = call_indirect %f(%x) : fn(i32) -> i32
    ret %r
}
fn twice(%x: i32) -> i32 {
b0:
    %r = add i32 %x, %x
    ret %r
}
fn wide(%x: i64) -> i64 {
b0:
    ret %x
}
fn apply_twice(%x: i32) -> i32 {
b0:
    %f = func_addr twice : fn(i32) -> i32
    %r = call apply(%f, %x)
    ret %r
}
fn stop(%x: i32) -> i32 {
b0:
    %zero = const i32 0
    %big = cmp gt i32 %x, %zero
    cond_br %big, b1, b2
b1:
    trap 7
b2:
    %q = div i32 %x, %x
    ret %q
}
fn foreign(%x: i64) -> i64 {
b0:
    %r = call @other$i64(%x)
    ret %r
}
";

fn libraries() -> (Library, Library) {
    let host = jit::text::parse_library(TEXT).unwrap_or_else(|e| panic!("{e}"));
    jit::verify::verify_library(&host).unwrap_or_else(|e| panic!("{e}"));
    let wasm = for_wasm32(host.clone());
    (host, wasm)
}

fn runner(lib: &Library, config: Config) -> Runner {
    let roots: Vec<_> = ["apply", "twice", "wide", "apply_twice", "stop"]
        .iter()
        .map(|n| (TemplateName::free(n), Vec::<Type>::new()))
        .collect();
    Runner::with_config(&module(lib, &roots), config).expect("instantiates")
}

#[test]
fn explicit_traps_carry_their_code_and_division_by_zero_traps() {
    let (host, wasm) = libraries();
    let oracle = LibraryResolver::new(&host);
    let mut run = runner(&wasm, Config::default());
    for (x, want) in [
        (5, Err(TrapKind::Explicit(7))),
        (0, Err(TrapKind::DivideByZero)),
        (-3, Ok(Some(support::Same(Value::I32(1))))),
    ] {
        let args = [Value::I32(x)];
        assert_eq!(compiled(run.call("stop", &args)), want, "stop({x})");
        assert_eq!(interpret(&oracle, "stop", &args), want, "stop({x})");
    }
}

#[test]
fn function_pointers_are_table_slots_from_the_table_base() {
    let (_, wasm) = libraries();
    for base in [1, 5, 1000] {
        let config = Config {
            table_base: base,
            ..Config::default()
        };
        let mut run = runner(&wasm, config);
        // `twice` is address-taken: slot 0 of the module, at the base.
        assert_eq!(run.function_pointer("twice").expect("a slot"), base);
        let got = run.call("apply_twice", &[Value::I32(21)]).expect("runs");
        assert_eq!(got, Some(Value::I32(42)), "base {base}");
        let f = Value::Ptr(u64::from(base));
        let got = run.call("apply", &[f, Value::I32(-4)]).expect("runs");
        assert_eq!(got, Some(Value::I32(-8)));
        // An export the module did not take the address of gets a new
        // slot past the module's, the same one each time.
        let wide = run.function_pointer("wide").expect("a slot");
        assert!(wide > base);
        assert_eq!(run.function_pointer("wide").expect("a slot"), wide);
    }
}

#[test]
fn a_null_function_pointer_traps_like_the_interpreter() {
    let (host, wasm) = libraries();
    let oracle = LibraryResolver::new(&host);
    let mut run = runner(&wasm, Config::default());
    let args = [Value::Ptr(0), Value::I32(1)];
    assert_eq!(
        compiled(run.call("apply", &args)),
        Err(TrapKind::NullPointer)
    );
    assert_eq!(
        interpret(&oracle, "apply", &args),
        Err(TrapKind::NullPointer)
    );
}

#[test]
fn a_function_pointer_of_another_signature_is_an_engine_trap() {
    let (_, wasm) = libraries();
    let mut run = runner(&wasm, Config::default());
    let wide = run.function_pointer("wide").expect("a slot");
    let err = run
        .call("apply", &[Value::Ptr(u64::from(wide)), Value::I32(1)])
        .expect_err("the signature differs");
    assert!(matches!(err, Error::Engine { .. }), "{err:?}");
    // Past the table: also the engine's trap, not a crash.
    let err = run
        .call("apply", &[Value::Ptr(1 << 20), Value::I32(1)])
        .expect_err("no such slot");
    assert!(matches!(err, Error::Engine { .. }), "{err:?}");
}

#[test]
fn foreign_symbols_are_imports_the_runner_reports_unresolved() {
    let (_, wasm) = libraries();
    let m = module(&wasm, &[(TemplateName::free("foreign"), vec![])]);
    let [import] = m.imports() else {
        panic!("one import expected: {:?}", m.imports())
    };
    assert_eq!(import.name, "other$i64");
    assert_eq!(import.kind, ImportKind::Symbol);
    let err = Runner::new(&m).expect_err("nothing provides other$i64");
    assert!(
        matches!(&err, Error::Unresolved(name) if name == "other$i64"),
        "{err:?}"
    );
}

#[test]
fn calls_with_arguments_that_do_not_fit_are_refused() {
    let (_, wasm) = libraries();
    let mut run = runner(&wasm, Config::default());
    for (symbol, args) in [
        ("twice", vec![Value::I64(1)]),
        ("twice", vec![]),
        ("missing", vec![Value::I32(1)]),
    ] {
        let err = run.call(symbol, &args).expect_err("refused");
        assert!(matches!(err, Error::Arguments(_)), "{symbol}: {err:?}");
    }
    assert!(run.read(u32::MAX - 2, 8).is_err());
    assert!(run.write(u32::MAX, &[1]).is_err());
}
