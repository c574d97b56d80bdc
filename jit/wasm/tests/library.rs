//! Every function of the shipped template library, for the types it
//! admits, run three ways: by the interpreter and as x86-64 code (laid
//! out for the host, on host memory), and as a WebAssembly module (laid
//! out for wasm32, on its own linear memory, with the same buffers copied
//! in and out): the same results — NaN equal to NaN — the same traps, the
//! same memory afterwards.
//!
//! Type arguments are scalars and structs of scalars, whose layouts are
//! the same on both targets, so a buffer means the same on each side.

mod support;
// The x86-64 side: the backend tests' JIT, which finds the shared test
// support as `crate::common` (imported below).
#[path = "../../tests/backend_support/mod.rs"]
mod backend_support;

use backend_support::Jit;
use jit::interp::{LibraryResolver, Value};
use jit::ir::{Function, IntType, Library, TemplateName, Type};
use jit::mangle::mangle;
use jit::wasm::run::Runner;
use support::common::{self, Rng, below, element, numeric, resolver};
use support::{Outcome, Same, compiled, for_wasm32, interpret, module, native, same_elements};

/// Elements of every buffer.
const ELEMS: usize = 17;
/// Bytes of a buffer a struct pointer points to (enough for any struct of
/// scalars the tests use).
const STRUCT_BYTES: usize = 64;

/// The type argument lists a template is run with: those the other
/// backends' tests use, less those with pointers, whose size differs
/// between the two layouts.
fn type_args(f: &Function) -> Vec<Vec<Type>> {
    let mut all = common::type_args(f);
    all.retain(|args| !args.iter().any(Type::is_pointer));
    all
}

/// An argument of one call, before it is placed on a side.
#[derive(Clone, Debug)]
enum Arg {
    Value(Value),
    /// Buffer `k`.
    Buffer(usize),
    /// A pointer to this function.
    Function(String),
}

/// One call's inputs: buffers (with their element types) and arguments.
#[derive(Clone, Debug)]
struct Case {
    buffers: Vec<(Type, Vec<u8>)>,
    args: Vec<Arg>,
}

fn case(f: &Function, n: i64, seed: u64) -> Case {
    let mut rng = Rng(seed);
    let mut buffers = Vec::new();
    let mut args = Vec::new();
    for (k, p) in f.sig.params.iter().enumerate() {
        args.push(match p {
            Type::Ptr(inner) => {
                let bytes = match inner.scalar_size() {
                    Some(size) => (0..ELEMS)
                        .flat_map(|e| {
                            let v = element(inner, (e + k) % 9, &mut rng);
                            v.to_le_bytes()[..size as usize].to_vec()
                        })
                        .collect(),
                    None => (0..STRUCT_BYTES).map(|_| rng.next() as u8).collect(),
                };
                buffers.push((inner.as_ref().clone(), bytes));
                Arg::Buffer(buffers.len() - 1)
            }
            Type::Fn(sig) => {
                let elem = sig.params.first().cloned().unwrap_or(Type::I64);
                Arg::Function(format!("compare_asc${elem}"))
            }
            Type::Int(IntType::I64) if k > 0 => Arg::Value(Value::I64(n)),
            other => {
                let bits = element(other, below(&mut rng, 9) as usize, &mut rng);
                Arg::Value(Value::from_bits(other, bits))
            }
        });
    }
    Case { buffers, args }
}

/// A returned pointer into buffer `k` at offset `o` as `((k + 1) << 48) | o`,
/// so both sides compare although their buffers live apart.
fn relative(o: Outcome, bases: &[(u64, usize)]) -> Outcome {
    o.map(|v| {
        v.map(|Same(v)| match v {
            Value::Ptr(p) => Same(Value::Ptr(
                bases
                    .iter()
                    .enumerate()
                    .find(|(_, (base, len))| p >= *base && p <= base + *len as u64)
                    .map_or(p, |(k, (base, _))| ((k as u64 + 1) << 48) | (p - base)),
            )),
            other => Same(other),
        })
    })
}

/// The arguments of `case` on one side: buffers at `bases`, function
/// pointers as `pointer` gives them.
fn place(case: &Case, bases: &[(u64, usize)], mut pointer: impl FnMut(&str) -> u64) -> Vec<Value> {
    case.args
        .iter()
        .map(|a| match a {
            Arg::Value(v) => *v,
            Arg::Buffer(k) => Value::Ptr(bases[*k].0),
            Arg::Function(name) => Value::Ptr(pointer(name)),
        })
        .collect()
}

/// Runs `case` on host memory — in the interpreter or as x86-64 code —
/// with function pointers as `pointer` gives them; returns the outcome
/// and the buffers.
fn run_on_host(
    case: &Case,
    pointer: impl FnMut(&str) -> u64,
    call: impl FnOnce(&[Value]) -> Outcome,
) -> (Outcome, Vec<Vec<u8>>) {
    let mut buffers: Vec<Vec<u8>> = case.buffers.iter().map(|(_, b)| b.clone()).collect();
    let bases: Vec<(u64, usize)> = buffers
        .iter_mut()
        .map(|b| (b.as_mut_ptr() as usize as u64, b.len()))
        .collect();
    let args = place(case, &bases, pointer);
    let outcome = relative(call(&args), &bases);
    (outcome, buffers)
}

/// Runs `case` in the interpreter.
fn run_interpreted(r: &LibraryResolver<'_>, symbol: &str, case: &Case) -> (Outcome, Vec<Vec<u8>>) {
    run_on_host(
        case,
        |name| jit::interp::Resolver::address_of(r, name).unwrap_or_else(|e| panic!("{name}: {e}")),
        |args| interpret(r, symbol, args),
    )
}

/// Runs `case` as x86-64 code; function pointers are compiled entries.
fn run_native(jit: &Jit<'_>, symbol: &str, case: &Case) -> (Outcome, Vec<Vec<u8>>) {
    run_on_host(
        case,
        |name| jit.entry(name).0,
        |args| native(jit.call_values(symbol, args)),
    )
}

/// The buffers of one side equal the interpreter's, element by element.
fn assert_same_buffers(side: &str, what: &str, case: &Case, got: &[Vec<u8>], want: &[Vec<u8>]) {
    for (k, (ty, _)) in case.buffers.iter().enumerate() {
        assert!(
            same_elements(ty, &got[k], &want[k]),
            "{what}: buffer {k}\n{side} {:?}\ninterpreter {:?}",
            got[k],
            want[k]
        );
    }
}

/// Runs `case` in the module; returns the outcome and the buffers.
fn run_compiled(run: &mut Runner, symbol: &str, case: &Case) -> (Outcome, Vec<Vec<u8>>) {
    let mut bases = Vec::new();
    for (_, bytes) in &case.buffers {
        let len = u32::try_from(bytes.len()).expect("small buffer");
        let at = run.alloc(len).expect("allocates");
        run.write(at, bytes).expect("writes");
        bases.push((u64::from(at), bytes.len()));
    }
    let args = place(case, &bases, |name| {
        u64::from(run.function_pointer(name).expect("a table slot"))
    });
    let outcome = relative(compiled(run.call(symbol, &args)), &bases);
    let buffers = bases
        .iter()
        .map(|&(at, len)| run.read(at as u32, len).expect("reads").to_vec())
        .collect();
    (outcome, buffers)
}

fn libraries() -> (Library, Library) {
    let host = jit::library::collections().expect("library");
    let wasm = for_wasm32(host.clone());
    (host, wasm)
}

#[test]
fn every_library_function_agrees_with_the_interpreter() {
    let (host, wasm) = libraries();
    let oracle = resolver(&host);
    let x86 = Jit::new(&host);
    let mut checked = 0;
    for template in host.functions() {
        // Vec methods need a live vector: see the test below.
        if template.name.owner.as_deref() == Some("Vec") {
            continue;
        }
        for args in type_args(template) {
            let symbol = mangle(&template.name, &args).expect("mangles");
            let inst = jit::instantiate::instantiate_symbol(&host, &symbol).expect("instantiates");
            let f = &inst.function;
            let mut roots = vec![(template.name.clone(), args.clone())];
            if let Some(Type::Fn(sig)) = f.sig.params.iter().find(|p| matches!(p, Type::Fn(_))) {
                // The comparator passed below exists for numbers only.
                let elem = sig.params.first().cloned().unwrap_or(Type::I64);
                if !jit::ir::Constraint::Num.admits(&elem) {
                    continue;
                }
                roots.push((TemplateName::free("compare_asc"), vec![elem]));
            }
            let m = module(&wasm, &roots);
            let mut run = Runner::new(&m).expect("instantiates");
            for (n, seed) in [(0, 1), (1, 2), (2, 3), (5, 4), (16, 5), (17, 6), (17, 7)] {
                let c = case(f, n, seed);
                let what = format!("{symbol} n={n} seed={seed}");
                let (want, want_mem) = run_interpreted(&oracle, &symbol, &c);
                let (x86_got, x86_mem) = run_native(&x86, &symbol, &c);
                let (got, got_mem) = run_compiled(&mut run, &symbol, &c);
                assert_eq!(x86_got, want, "{what}: x86-64 result, {c:?}");
                assert_eq!(got, want, "{what}: wasm result, {c:?}");
                assert_same_buffers("x86-64", &what, &c, &x86_mem, &want_mem);
                assert_same_buffers("wasm", &what, &c, &got_mem, &want_mem);
                checked += 1;
            }
        }
    }
    assert!(checked > 600, "only {checked} cases ran");
}

#[test]
fn vectors_grow_and_read_back_like_the_interpreter() {
    let (host, wasm) = libraries();
    let oracle = resolver(&host);
    let x86 = Jit::new(&host);
    let methods = ["new", "push", "push_from", "get", "len", "free"];
    for t in numeric().into_iter().chain([Type::Bool]) {
        let name = |m: &str| {
            mangle(&TemplateName::method("Vec", m), std::slice::from_ref(&t)).expect("mangles")
        };
        let roots: Vec<(TemplateName, Vec<Type>)> = methods
            .iter()
            .map(|m| (TemplateName::method("Vec", m), vec![t.clone()]))
            .collect();
        let mut run = Runner::new(&module(&wasm, &roots)).expect("instantiates");
        // The source `push_from` copies, on each side (the host's is
        // shared by the interpreter and x86-64 code: it only reads it).
        let mut src = vec![0x5au8; 8];
        let at = run.alloc(8).expect("allocates");
        run.write(at, &src).expect("writes");
        let (hs, ws) = (
            Value::Ptr(src.as_mut_ptr() as usize as u64),
            Value::Ptr(u64::from(at)),
        );
        let vector = |o: Outcome| match o {
            Ok(Some(Same(v))) => v,
            other => panic!("Vec::new: {other:?}"),
        };
        let h = vector(interpret(&oracle, &name("new"), &[]));
        let n = vector(native(x86.call_values(&name("new"), &[])));
        let w = vector(compiled(run.call(&name("new"), &[])));
        // One call on every side: `h` is the interpreter's vector, `n`
        // the x86-64 code's (both on the host), `w` in the module's
        // memory. The arguments are the interpreter's with the vector
        // replaced.
        let mut each = |method: &str, host: &[Value], wasm: &[Value]| {
            let symbol = name(method);
            let want = interpret(&oracle, &symbol, host);
            let mut native_args = host.to_vec();
            native_args[0] = n;
            assert_eq!(
                native(x86.call_values(&symbol, &native_args)),
                want,
                "{symbol}({native_args:?}) on x86-64"
            );
            assert_eq!(
                compiled(run.call(&symbol, wasm)),
                want,
                "{symbol}({wasm:?})"
            );
        };
        let mut rng = Rng(7);
        for k in 0..40 {
            let x = Value::from_bits(&t, element(&t, k % 9, &mut rng));
            each("push", &[h, x], &[w, x]);
        }
        for i in [0i64, 1, 20, 39, 40, -1, i64::MAX] {
            each("get", &[h, Value::I64(i)], &[w, Value::I64(i)]);
        }
        each("len", &[h], &[w]);
        each("push_from", &[h, hs], &[w, ws]);
        each("len", &[h], &[w]);
        each("get", &[h, Value::I64(40)], &[w, Value::I64(40)]);
        each("free", &[h], &[w]);
    }
}
