//! Errors that only a concrete type argument can cause, met on a miss.
//! The loader's template library is verified once, so its instances take
//! the reduced instance check; these tests pin that what it lets through
//! runs correctly and what it refuses fails with the verifier's reason,
//! on both sides of each boundary.
#![allow(unsafe_code)]

use jit::interp::Value;
use jit::ir::Type;
use loader::{Error, InstantiationError, Loader, LoaderConfig};

/// A module whose templates return a constant in `T` and reinterpret a
/// `T` as a 32-bit integer.
fn module(dir: &std::path::Path) -> std::path::PathBuf {
    let text = "\
fn seven_bits<T: int>(%x: T) -> T {
entry:
    %r = const T 127
    ret %r
}
fn eight_bits<T: int>(%x: T) -> T {
entry:
    %r = const T 128
    ret %r
}
fn as_i32<T: num>(%x: T) -> i32 {
entry:
    %r = bitcast T %x to i32
    ret %r
}
";
    let lib = jit::text::parse_library(text).expect("parses");
    let encoded = jit::binary::encode_library(&lib);
    let mut b = smf::ModuleBuilder::new();
    b.set_template_code(&encoded.bytes).expect("template code");
    for (k, name) in ["seven_bits", "eight_bits", "as_i32"].iter().enumerate() {
        let offset = u64::try_from(encoded.offsets[k]).expect("offset");
        b.add_symbol(smf::SymbolDef::template(name, 1, offset))
            .expect("symbol");
    }
    let path = dir.join("edges.smf");
    std::fs::write(&path, b.build().expect("builds")).expect("writes");
    path
}

/// A JIT loader with [`module`] loaded, and the directory holding it.
fn loaded() -> (tempfile::TempDir, Loader) {
    let dir = tempfile::tempdir().expect("temp dir");
    let loader = Loader::with_jit(LoaderConfig::default()).expect("loader");
    loader.load(module(dir.path())).expect("loads");
    (dir, loader)
}

fn call(loader: &Loader, symbol: &str, arg: Value, ret: Type) -> Option<Value> {
    let entry = loader
        .resolve(symbol)
        .unwrap_or_else(|e| panic!("{symbol}: {e}"))
        .as_ptr();
    let param = match arg {
        Value::I8(_) => Type::Int(jit::ir::IntType::I8),
        Value::U8(_) => Type::Int(jit::ir::IntType::U8),
        Value::I16(_) => Type::Int(jit::ir::IntType::I16),
        Value::F32(_) => Type::F32,
        Value::U32(_) => Type::Int(jit::ir::IntType::U32),
        other => panic!("no test passes {other:?}"),
    };
    let sig = jit::ir::Signature {
        params: vec![param],
        ret: Some(ret),
    };
    let trap = loader::trap_runtime().expect("trap runtime");
    // SAFETY: `entry` is the code generated for `symbol`, whose signature
    // is `sig`; it reads no memory.
    unsafe { trap.call(entry, &sig, &[arg]) }.expect("does not trap")
}

/// The verifier's reason for refusing `symbol`: an error of the JIT's
/// instantiation, not of the backend or the loader.
fn refusal(loader: &Loader, symbol: &str) -> jit::Error {
    match loader.resolve(symbol) {
        Err(Error::InstantiationFailed {
            name,
            source: InstantiationError::Instantiate(error),
        }) => {
            assert_eq!(name, symbol);
            *error
        }
        other => panic!("{symbol}: expected a refused instantiation, got {other:?}"),
    }
}

#[test]
fn constants_at_the_edge_of_the_argument_type_are_accepted_and_past_it_refused() {
    let (_dir, loader) = loaded();
    let i8_ = Type::Int(jit::ir::IntType::I8);
    let u8_ = Type::Int(jit::ir::IntType::U8);
    assert_eq!(
        call(&loader, "seven_bits$i8", Value::I8(0), i8_),
        Some(Value::I8(127))
    );
    assert_eq!(
        call(&loader, "eight_bits$u8", Value::U8(0), u8_),
        Some(Value::U8(128))
    );
    let i16_ = Type::Int(jit::ir::IntType::I16);
    assert_eq!(
        call(&loader, "eight_bits$i16", Value::I16(0), i16_),
        Some(Value::I16(128))
    );
    let error = refusal(&loader, "eight_bits$i8");
    assert!(
        matches!(error.kind, jit::ErrorKind::LiteralRange { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("constant 128 does not fit i8"),
        "{error}"
    );
}

#[test]
fn bitcasts_between_equal_sizes_are_accepted_and_between_other_sizes_refused() {
    let (_dir, loader) = loaded();
    let i32_ = Type::Int(jit::ir::IntType::I32);
    assert_eq!(
        call(&loader, "as_i32$f32", Value::F32(1.0), i32_.clone()),
        Some(Value::I32(0x3f80_0000))
    );
    assert_eq!(
        call(&loader, "as_i32$u32", Value::U32(u32::MAX), i32_),
        Some(Value::I32(-1))
    );
    for refused in ["as_i32$f64", "as_i32$i16", "as_i32$u64"] {
        let error = refusal(&loader, refused);
        assert!(
            error.to_string().contains("bitcast to a different size"),
            "{refused}: {error}"
        );
    }
}
