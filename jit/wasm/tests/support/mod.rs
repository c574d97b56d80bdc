//! Shared by the backend's tests: libraries laid out for wasm32, modules
//! for sets of roots, the interpreter as the oracle, and outcomes compared
//! with NaN equal to NaN. The support the other backends' tests share
//! (libc natives for the interpreter, element values, the generator's
//! random numbers) is included from `jit/tests/common` as [`common`].
#![allow(dead_code, unsafe_code)]

#[path = "../../../tests/common/mod.rs"]
pub mod common;
pub mod shared;

use std::collections::HashSet;

use jit::instantiate::{Instance, instantiate_all};
use jit::interp::{Interpreter, LibraryResolver, Value};
use jit::ir::{Library, TemplateName, Type};
use jit::target::Target;
use jit::wasm::Module;
use jit::{Error, ErrorKind, TrapKind};

/// `lib` laid out and verified for wasm32.
pub fn for_wasm32(lib: Library) -> Library {
    let lib = lib.with_target(Target::WASM32);
    jit::verify::verify_library(&lib).unwrap_or_else(|e| panic!("wasm32 library: {e}"));
    lib
}

/// The instances of every root and what they call, each once, roots first.
pub fn instances(lib: &Library, roots: &[(TemplateName, Vec<Type>)]) -> Vec<Instance> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (name, args) in roots {
        let set =
            instantiate_all(lib, name, args).unwrap_or_else(|e| panic!("{name} {args:?}: {e}"));
        out.extend(set.into_iter().filter(|i| seen.insert(i.symbol.clone())));
    }
    out
}

/// One module of `roots` and their callees.
pub fn module(lib: &Library, roots: &[(TemplateName, Vec<Type>)]) -> Module {
    let set = instances(lib, roots);
    let refs: Vec<&Instance> = set.iter().collect();
    jit::wasm::compile(&refs).unwrap_or_else(|e| panic!("{roots:?}: {e}"))
}

/// A value with NaN equal to every NaN of its type, so results compare
/// where IEEE leaves the NaN payload open.
#[derive(Clone, Copy, Debug)]
pub struct Same(pub Value);

impl PartialEq for Same {
    fn eq(&self, other: &Same) -> bool {
        match (self.0, other.0) {
            (Value::F32(a), Value::F32(b)) if a.is_nan() && b.is_nan() => true,
            (Value::F64(a), Value::F64(b)) if a.is_nan() && b.is_nan() => true,
            (a, b) => {
                std::mem::discriminant(&a) == std::mem::discriminant(&b)
                    && a.to_bits() == b.to_bits()
            }
        }
    }
}

/// What a call did: a value (or none), or a trap.
pub type Outcome = Result<Option<Same>, TrapKind>;

/// The interpreter's outcome; failures other than traps fail the test.
pub fn interpreted(r: Result<Option<Value>, Error>) -> Outcome {
    match r {
        Ok(v) => Ok(v.map(Same)),
        Err(Error {
            kind: ErrorKind::Trap(t),
            ..
        }) => Err(t),
        Err(e) => panic!("interpreter: {e}"),
    }
}

/// The module's outcome; failures other than traps fail the test.
pub fn compiled(r: Result<Option<Value>, jit::wasm::Error>) -> Outcome {
    match r {
        Ok(v) => Ok(v.map(Same)),
        Err(jit::wasm::Error::Trap(t)) => Err(t),
        Err(e) => panic!("wasm: {e}"),
    }
}

/// The outcome of x86-64 code; traps come back as the IR's.
pub fn native(r: Result<Option<Value>, TrapKind>) -> Outcome {
    r.map(|v| v.map(Same))
}

/// Runs `symbol` in the interpreter.
pub fn interpret(resolver: &LibraryResolver<'_>, symbol: &str, args: &[Value]) -> Outcome {
    // SAFETY: the tests pass pointers to live buffers large enough for
    // every access the called function makes.
    interpreted(unsafe { Interpreter::new(resolver).call_symbol(symbol, args) })
}

/// Element-wise equality of two buffers of `ty` elements, NaN equal to NaN.
pub fn same_elements(ty: &Type, a: &[u8], b: &[u8]) -> bool {
    let size = match ty {
        Type::F32 => 4,
        Type::F64 => 8,
        _ => return a == b,
    };
    a.len() == b.len()
        && a.chunks(size).zip(b.chunks(size)).all(|(x, y)| {
            let bits = |c: &[u8]| {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(w)
            };
            Same(Value::from_bits(ty, bits(x))) == Same(Value::from_bits(ty, bits(y)))
        })
}
