//! Every function of the template library, for every type argument it
//! admits, compiled and run against the interpreter on the same inputs:
//! results bit for bit, traps identical, memory left identical.

mod backend_support;
mod common;

use backend_support::{Jit, Oracle, Rng, below};
use common::{element, numeric, type_args};
use jit::interp::Value;
use jit::ir::{Constraint, Function, IntType, Type};
use jit::mangle::mangle;

const ELEMS: usize = 17;

/// Inputs of one call: argument values and the buffers they point into,
/// built twice (one set for each side).
struct Inputs {
    buffers: Vec<Vec<u8>>,
    args: Vec<Value>,
}

fn build(f: &Function, n: i64, seed: u64, fn_ptr: &dyn Fn(&Type) -> u64) -> Inputs {
    let mut rng = Rng(seed);
    let mut buffers: Vec<Vec<u8>> = Vec::new();
    let mut plan = Vec::new();
    for (k, p) in f.sig.params.iter().enumerate() {
        match p {
            Type::Ptr(inner) if inner.scalar_size().is_some() => {
                let size = inner.scalar_size().unwrap_or(8) as usize;
                let mut bytes = Vec::with_capacity(ELEMS * size);
                for e in 0..ELEMS {
                    let v = element(inner, (e + k) % 9, &mut rng);
                    bytes.extend_from_slice(&v.to_le_bytes()[..size]);
                }
                buffers.push(bytes);
                plan.push(None);
            }
            Type::Ptr(_) => {
                buffers.push((0..64).map(|_| rng.next() as u8).collect());
                plan.push(None);
            }
            Type::Fn(_) => plan.push(Some(Value::Ptr(fn_ptr(p)))),
            Type::Int(IntType::I64) if k > 0 => plan.push(Some(Value::I64(n))),
            other => {
                let bits = element(other, below(&mut rng, 9) as usize, &mut rng);
                plan.push(Some(Value::from_bits(other, bits)));
            }
        }
    }
    let mut next = 0;
    let args = plan
        .into_iter()
        .map(|v| {
            v.unwrap_or_else(|| {
                next += 1;
                Value::Ptr(0)
            })
        })
        .collect();
    Inputs { buffers, args }
}

impl Inputs {
    /// A returned pointer into one of the buffers as (buffer, offset), so
    /// both sides compare although their buffers live apart.
    fn relative(&self, o: backend_support::Outcome) -> backend_support::Outcome {
        let ptr = std::mem::discriminant(&Value::Ptr(0));
        o.map(|v| {
            v.map(|(d, bits)| {
                let inside = self.buffers.iter().enumerate().find_map(|(k, b)| {
                    let base = b.as_ptr() as usize as u64;
                    (d == ptr && bits >= base && bits <= base + b.len() as u64)
                        .then(|| ((k as u64 + 1) << 48) | (bits - base))
                });
                (d, inside.unwrap_or(bits))
            })
        })
    }

    /// The arguments with buffer pointers filled in.
    fn args(&mut self, f: &Function) -> Vec<Value> {
        let mut b = self.buffers.iter_mut();
        self.args
            .iter()
            .zip(&f.sig.params)
            .map(|(v, t)| match (v, t) {
                (Value::Ptr(0), Type::Ptr(_)) => {
                    let buf = b.next().expect("one buffer per pointer");
                    Value::Ptr(buf.as_mut_ptr() as usize as u64)
                }
                _ => *v,
            })
            .collect()
    }
}

#[test]
fn every_library_function_agrees_with_the_interpreter() {
    let lib = jit::library::collections().expect("library");
    let jit = Jit::new(&lib);
    let oracle = Oracle::new(&lib);
    let mut checked = 0;
    for template in lib.functions() {
        // Vec methods need a live vector: see the scenario test below.
        if template.name.owner.as_deref() == Some("Vec") {
            continue;
        }
        for args in type_args(template) {
            let symbol = mangle(&template.name, &args).expect("mangles");
            let inst = jit::instantiate::instantiate_symbol(&lib, &symbol).expect("instantiates");
            let f = &inst.function;
            let has_fn = f.sig.params.iter().any(|p| matches!(p, Type::Fn(_)));
            if has_fn && !args.iter().all(|a| Constraint::Num.admits(a)) {
                // The comparator used below exists for numbers only.
                continue;
            }
            // A comparator argument: compare_asc of the element type.
            let cmp = |side_jit: bool, t: &Type| -> u64 {
                let Type::Fn(sig) = t else { return 0 };
                let elem = sig.params.first().cloned().unwrap_or(Type::I64);
                let name = format!("compare_asc${elem}");
                if side_jit {
                    jit.entry(&name).0
                } else {
                    oracle.address_of(&name)
                }
            };
            for (n, seed) in [(0, 1), (1, 2), (2, 3), (5, 4), (16, 5), (17, 6), (17, 7)] {
                let mut a = build(f, n, seed, &|t| cmp(false, t));
                let mut b = build(f, n, seed, &|t| cmp(true, t));
                let args_a = a.args(f);
                let args_b = b.args(f);
                let want = a.relative(oracle.call(&symbol, &args_a));
                let got = b.relative(jit.call(&symbol, &args_b));
                assert_eq!(got, want, "{symbol} n={n} seed={seed}: result");
                assert_eq!(b.buffers, a.buffers, "{symbol} n={n} seed={seed}: memory");
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "only {checked} cases ran");
}

#[test]
fn vectors_grow_and_read_back_like_the_interpreter() {
    let lib = jit::library::collections().expect("library");
    let jit = Jit::new(&lib);
    let oracle = Oracle::new(&lib);
    for t in numeric().into_iter().chain([Type::Bool]) {
        let name = |m: &str| {
            mangle(
                &jit::ir::TemplateName::method("Vec", m),
                std::slice::from_ref(&t),
            )
            .expect("mangles")
        };
        let mut rng = Rng(7);
        let (va, vb) = (oracle.call(&name("new"), &[]), jit.call(&name("new"), &[]));
        let (Ok(Some((_, pa))), Ok(Some((_, pb)))) = (va, vb) else {
            panic!("Vec::new failed: {va:?} {vb:?}")
        };
        let (pa, pb) = (Value::Ptr(pa), Value::Ptr(pb));
        for k in 0..40 {
            let x = Value::from_bits(&t, element(&t, k % 9, &mut rng));
            assert_eq!(
                jit.call(&name("push"), &[pb, x]),
                oracle.call(&name("push"), &[pa, x]),
                "{t} push {k}"
            );
        }
        assert_eq!(
            jit.call(&name("len"), &[pb]),
            oracle.call(&name("len"), &[pa])
        );
        for i in [0i64, 1, 20, 39, 40, -1] {
            assert_eq!(
                jit.call(&name("get"), &[pb, Value::I64(i)]),
                oracle.call(&name("get"), &[pa, Value::I64(i)]),
                "{t} get {i}"
            );
        }
        let mut src = vec![0u8; 8];
        let ps = Value::Ptr(src.as_mut_ptr() as usize as u64);
        assert_eq!(
            jit.call(&name("push_from"), &[pb, ps]),
            oracle.call(&name("push_from"), &[pa, ps])
        );
        assert_eq!(
            jit.call(&name("len"), &[pb]),
            oracle.call(&name("len"), &[pa])
        );
        assert_eq!(
            jit.call(&name("free"), &[pb]),
            oracle.call(&name("free"), &[pa])
        );
    }
}
