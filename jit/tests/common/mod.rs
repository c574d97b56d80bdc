//! Shared test support: the collections library with libc's allocator as
//! its native imports, typed element helpers and a deterministic generator.
#![allow(dead_code, unsafe_code)]

use std::ffi::c_void;

use jit::interp::{Interpreter, LibraryResolver, Value};
use jit::ir::{Constraint, Function, IntType, Library, Type};
use jit::{Error, ErrorKind, TrapKind};

unsafe extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn free(p: *mut c_void);
    fn memcpy(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
}

/// The collections library, parsed and verified.
pub fn collections() -> Library {
    jit::library::collections().unwrap_or_else(|e| panic!("collections library: {e}"))
}

/// Any scalar type, for property tests.
pub fn scalar_type() -> impl proptest::strategy::Strategy<Value = Type> {
    use proptest::prelude::*;
    prop_oneof![
        (0usize..8).prop_map(|k| Type::Int(IntType::ALL[k])),
        Just(Type::F32),
        Just(Type::F64),
        Just(Type::Bool),
        Just(Type::RawPtr),
    ]
}

/// The ten numeric types.
pub fn numeric() -> Vec<Type> {
    let mut t: Vec<Type> = IntType::ALL.iter().map(|&i| Type::Int(i)).collect();
    t.extend([Type::F32, Type::F64]);
    t
}

/// The type argument lists a template of the collections library is
/// exercised with: every scalar its constraint admits for one parameter,
/// five pairs for two, none for a concrete function.
pub fn type_args(f: &Function) -> Vec<Vec<Type>> {
    let one = |c: Constraint| -> Vec<Type> {
        let mut all = numeric();
        all.extend([Type::Bool, Type::RawPtr]);
        all.into_iter().filter(|t| c.admits(t)).collect()
    };
    match f.type_params.as_slice() {
        [p] => one(p.constraint).into_iter().map(|t| vec![t]).collect(),
        [_, _] => vec![
            vec![Type::Int(IntType::I8), Type::Int(IntType::I64)],
            vec![Type::F32, Type::Int(IntType::U16)],
            vec![Type::Bool, Type::F64],
            vec![Type::Int(IntType::U64), Type::F32],
            vec![Type::Int(IntType::I32), Type::Int(IntType::I32)],
        ],
        _ => vec![vec![]],
    }
}

/// Bit patterns worth testing for an element of `ty`: both ends of the
/// range, zero, one, NaN and infinities for floats, then random bits.
pub fn element(ty: &Type, k: usize, rng: &mut Rng) -> u64 {
    let edges: Vec<u64> = match ty {
        Type::Int(t) => vec![t.min_value() as u64, t.max_value() as u64, 0, 1, u64::MAX],
        Type::F32 => [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            1.5,
            f32::MAX,
            f32::MIN_POSITIVE,
        ]
        .iter()
        .map(|f| u64::from(f.to_bits()))
        .collect(),
        Type::F64 => [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            2.5,
            f64::MAX,
            1e-310,
        ]
        .iter()
        .map(|f| f.to_bits())
        .collect(),
        _ => vec![0, 1],
    };
    match edges.get(k) {
        Some(&e) if k.is_multiple_of(2) => e,
        _ => match ty {
            // Small floats as well as random bit patterns.
            Type::F32 if below(rng, 2) == 0 => {
                u64::from((below(rng, 200) as f32 - 100.0).to_bits())
            }
            Type::F64 if below(rng, 2) == 0 => (below(rng, 200) as f64 / 3.0 - 30.0).to_bits(),
            _ => rng.next(),
        },
    }
}

/// A resolver over `lib` whose imports are libc's allocator and memcpy.
pub fn resolver(lib: &Library) -> LibraryResolver<'_> {
    LibraryResolver::new(lib)
        .with_native("malloc", malloc as *const () as usize as u64)
        .with_native("realloc", realloc as *const () as usize as u64)
        .with_native("free", free as *const () as usize as u64)
        .with_native("memcpy", memcpy as *const () as usize as u64)
}

/// Runs `symbol` of `lib` with `args` in the interpreter.
pub fn run(lib: &Library, symbol: &str, args: &[Value]) -> Result<Option<Value>, Error> {
    let r = resolver(lib);
    // SAFETY: the tests pass pointers to live buffers large enough for
    // every access the called template makes.
    unsafe { Interpreter::new(&r).call_symbol(symbol, args) }
}

/// Runs and unwraps a returned value.
pub fn value(lib: &Library, symbol: &str, args: &[Value]) -> Value {
    match run(lib, symbol, args) {
        Ok(Some(v)) => v,
        other => panic!("{symbol}: {other:?}"),
    }
}

/// Runs a function returning nothing.
pub fn unit(lib: &Library, symbol: &str, args: &[Value]) {
    match run(lib, symbol, args) {
        Ok(None) => {}
        other => panic!("{symbol}: {other:?}"),
    }
}

/// The trap a run ended with.
pub fn trap(result: Result<Option<Value>, Error>) -> TrapKind {
    match result {
        Err(Error {
            kind: ErrorKind::Trap(t),
            ..
        }) => t,
        other => panic!("expected a trap, got {other:?}"),
    }
}

/// A pointer argument to the start of a slice.
pub fn ptr<T>(xs: &mut [T]) -> Value {
    Value::Ptr(xs.as_mut_ptr() as usize as u64)
}

/// A length argument.
pub fn len(n: usize) -> Value {
    Value::I64(i64::try_from(n).expect("length fits i64"))
}

mod rng;
#[allow(unused_imports)] // each test file uses part of this
pub use rng::{Rng, below};

/// A scalar type with its interpreter value form.
pub trait Scalar: Copy {
    /// Keyword of the type in mangled names.
    const NAME: &'static str;
    fn value(self) -> Value;
    fn from_value(v: Value) -> Self;
}

macro_rules! scalar {
    ($($t:ty, $name:literal, $variant:ident;)*) => {$(
        impl Scalar for $t {
            const NAME: &'static str = $name;
            fn value(self) -> Value {
                Value::$variant(self)
            }
            fn from_value(v: Value) -> Self {
                match v {
                    Value::$variant(x) => x,
                    other => panic!("expected {}, got {other:?}", $name),
                }
            }
        }
    )*};
}

scalar! {
    i8, "i8", I8; i16, "i16", I16; i32, "i32", I32; i64, "i64", I64;
    u8, "u8", U8; u16, "u16", U16; u32, "u32", U32; u64, "u64", U64;
    f32, "f32", F32; f64, "f64", F64;
}

/// An element type the templates are instantiated with.
pub trait Elem: Scalar + PartialOrd + std::fmt::Debug {
    /// Wrapping (integers) or IEEE (floats) addition and multiplication.
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// A value from raw random bits, covering the whole range.
    fn from_bits(bits: u64) -> Self;
    /// Small integers convertible exactly.
    fn small(v: i8) -> Self;
    /// Edge values of the type.
    fn edges() -> Vec<Self>;
    /// Bit pattern, to compare floats exactly (NaN included).
    fn bits(self) -> u64;
}

macro_rules! int_elem {
    ($t:ty, $name:literal, $variant:ident) => {
        impl Elem for $t {
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn from_bits(bits: u64) -> Self {
                bits as $t
            }
            fn small(v: i8) -> Self {
                v as $t
            }
            fn edges() -> Vec<Self> {
                vec![
                    <$t>::MIN,
                    <$t>::MAX,
                    0,
                    1,
                    <$t>::MIN.wrapping_add(1),
                    <$t>::MAX.wrapping_sub(1),
                ]
            }
            fn bits(self) -> u64 {
                self as u64
            }
        }
    };
}

int_elem!(i8, "i8", I8);
int_elem!(i16, "i16", I16);
int_elem!(i32, "i32", I32);
int_elem!(i64, "i64", I64);
int_elem!(u8, "u8", U8);
int_elem!(u16, "u16", U16);
int_elem!(u32, "u32", U32);
int_elem!(u64, "u64", U64);

macro_rules! float_elem {
    ($t:ty, $name:literal, $variant:ident, $bits:ty) => {
        impl Elem for $t {
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn from_bits(bits: u64) -> Self {
                // Finite values spread over many magnitudes, with signs.
                let mag = (bits >> 11) as f64 / (1u64 << 53) as f64;
                let exp = ((bits & 0x3f) as i32) - 32;
                let sign = if bits & 0x40 != 0 { -1.0 } else { 1.0 };
                (sign * mag * 2f64.powi(exp)) as $t
            }
            fn small(v: i8) -> Self {
                <$t>::from(v)
            }
            fn edges() -> Vec<Self> {
                vec![
                    <$t>::MIN,
                    <$t>::MAX,
                    0.0,
                    -0.0,
                    <$t>::MIN_POSITIVE,
                    <$t>::INFINITY,
                    <$t>::NEG_INFINITY,
                    <$t>::EPSILON,
                ]
            }
            fn bits(self) -> u64 {
                u64::from(self.to_bits())
            }
        }
        const _: () = assert!(std::mem::size_of::<$bits>() == std::mem::size_of::<$t>());
    };
}

float_elem!(f32, "f32", F32, u32);
float_elem!(f64, "f64", F64, u64);

/// Calls `$f::<T>()` for every numeric element type.
#[macro_export]
macro_rules! for_each_num {
    ($f:ident) => {
        $f::<i8>();
        $f::<i16>();
        $f::<i32>();
        $f::<i64>();
        $f::<u8>();
        $f::<u16>();
        $f::<u32>();
        $f::<u64>();
        $f::<f32>();
        $f::<f64>();
    };
}
