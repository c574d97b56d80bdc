//! Shared memories across executors: compiled code and the interpreter
//! agree on every operation (random sequences over twin memories), and
//! both work on one memory at once while another thread grows it.

// These tests call generated code and give the interpreter descriptors.
#![allow(unsafe_code)]

mod backend_support;
mod common;

use std::sync::Arc;

use backend_support::{Machine, Outcome, interp_outcome};
use common::{Rng, below};
use jit::TrapKind;
use jit::backend::{CompiledFunction, NoCallees, SharedResolver};
use jit::instantiate::instantiate_symbol;
use jit::interp::{Interpreter, LibraryResolver, Value};
use jit::ir::Library;
use jit::shared::SharedMemory;

const PROGRAM: &str = "
memory heap 1, 8

fn load<T: num>(%o: i64) -> T {
entry:
    %v = mem_load T heap, %o
    ret %v
}

fn store<T: num>(%o: i64, %v: T) {
entry:
    mem_store T %v, heap, %o
    ret
}

fn grow(%d: i64) -> i64 {
entry:
    %old = mem_grow heap, %d
    ret %old
}

fn size() -> i64 {
entry:
    %n = mem_size heap
    ret %n
}
";

/// The types the sequences use, with their sizes.
const TYPES: [(&str, u64); 6] = [
    ("i8", 1),
    ("u16", 2),
    ("i32", 4),
    ("u64", 8),
    ("f32", 4),
    ("f64", 8),
];

fn program() -> &'static Library {
    let lib = jit::text::parse_library(PROGRAM).expect("parses");
    jit::verify::verify_library(&lib).expect("verifies");
    Box::leak(Box::new(lib))
}

/// The program compiled against one memory.
struct Compiled {
    machine: Machine,
    functions: Vec<(String, CompiledFunction, jit::ir::Signature)>,
}

impl Compiled {
    fn new(lib: &Library, memory: &SharedMemory) -> Compiled {
        let machine = Machine::new();
        let mut symbols = vec!["grow".to_owned(), "size".to_owned()];
        for (ty, _) in TYPES {
            symbols.push(format!("load${ty}"));
            symbols.push(format!("store${ty}"));
        }
        let functions = symbols
            .into_iter()
            .map(|s| {
                let inst = instantiate_symbol(lib, &s).expect("instantiates");
                let mut resolver =
                    SharedResolver::new(NoCallees).with_memory("heap", memory.descriptor_address());
                let code = machine.compile(&inst.function, &inst.reg_types, &mut resolver);
                (s, code, inst.function.sig.clone())
            })
            .collect();
        Compiled { machine, functions }
    }

    fn call(&self, symbol: &str, args: &[Value]) -> Outcome {
        let (_, code, sig) = self
            .functions
            .iter()
            .find(|(s, ..)| s == symbol)
            .expect("compiled");
        self.machine.call(code.entry(), sig, args)
    }
}

fn interpret(resolver: &LibraryResolver<'_>, symbol: &str, args: &[Value]) -> Outcome {
    // SAFETY: the program touches only the resolver's memory.
    interp_outcome(unsafe { Interpreter::new(resolver).call_symbol(symbol, args) })
}

fn value_of(ty: &str, bits: u64) -> Value {
    match ty {
        "i8" => Value::I8(bits as i8),
        "u16" => Value::U16(bits as u16),
        "i32" => Value::I32(bits as i32),
        "u64" => Value::U64(bits),
        "f32" => Value::F32(f32::from_bits(bits as u32)),
        _ => Value::F64(f64::from_bits(bits)),
    }
}

#[test]
fn compiled_code_and_the_interpreter_agree_on_random_sequences() {
    let lib = program();
    let mut rng = Rng(0x5ead_beef);
    for round in 0..20 {
        let (a, b) = (
            Arc::new(SharedMemory::new("heap", 1, Some(8)).unwrap()),
            Arc::new(SharedMemory::new("heap", 1, Some(8)).unwrap()),
        );
        let compiled = Compiled::new(lib, &a);
        let interp = LibraryResolver::new(lib).with_memory(Arc::clone(&b));
        for step in 0..300 {
            let (symbol, args) = match below(&mut rng, 10) {
                0 => (
                    "grow".to_owned(),
                    vec![Value::I64(below(&mut rng, 4) as i64 - 1)],
                ),
                1 => ("size".to_owned(), vec![]),
                k => {
                    let (ty, size) = TYPES[below(&mut rng, TYPES.len() as u64) as usize];
                    // Offsets near the current end, past it, negative, or anywhere.
                    let len = a.size_bytes() as i64;
                    let offset = match below(&mut rng, 4) {
                        0 => len - size as i64 + below(&mut rng, 3) as i64 - 1,
                        1 => -(below(&mut rng, 16) as i64) - 1,
                        2 => i64::MAX - below(&mut rng, 8) as i64,
                        _ => below(&mut rng, len as u64 + 64) as i64,
                    };
                    if k % 2 == 0 {
                        let v = value_of(ty, rng.next());
                        (format!("store${ty}"), vec![Value::I64(offset), v])
                    } else {
                        (format!("load${ty}"), vec![Value::I64(offset)])
                    }
                }
            };
            let got = compiled.call(&symbol, &args);
            let want = interpret(&interp, &symbol, &args);
            assert_eq!(got, want, "round {round} step {step}: {symbol}{args:?}");
        }
        assert_eq!(a.size_pages(), b.size_pages());
        let (mut x, mut y) = (
            vec![0; a.size_bytes() as usize],
            vec![0; b.size_bytes() as usize],
        );
        a.read(0, &mut x).unwrap();
        b.read(0, &mut y).unwrap();
        assert!(x == y, "round {round}: the memories differ");
    }
}

#[test]
fn compiled_and_interpreted_threads_share_one_memory_while_it_grows() {
    let lib = program();
    let memory = Arc::new(SharedMemory::new("heap", 1, Some(8)).unwrap());
    let compiled = Compiled::new(lib, &memory);
    std::thread::scope(|s| {
        // The grower runs compiled code, a page at a time, to the maximum.
        s.spawn(|| {
            let mut grown = 0;
            while compiled.call("grow", &[Value::I64(1)])
                != interp_outcome(Ok(Some(Value::I64(-1))))
            {
                grown += 1;
            }
            assert_eq!(grown, 7);
        });
        for t in 0..4u64 {
            let (compiled, memory) = (&compiled, Arc::clone(&memory));
            s.spawn(move || {
                // Threads 0 and 1 run compiled code, 2 and 3 interpreted.
                let resolver = LibraryResolver::new(lib).with_memory(Arc::clone(&memory));
                let call = |symbol: &str, args: &[Value]| {
                    if t < 2 {
                        compiled.call(symbol, args)
                    } else {
                        interpret(&resolver, symbol, args)
                    }
                };
                for k in 0..2_000u64 {
                    // Each thread owns every fourth word of page 0.
                    let at = Value::I64((8 * (4 * k + t)) as i64);
                    assert_eq!(call("store$u64", &[at, Value::U64(k + t)]), Ok(None));
                    let want = interp_outcome(Ok(Some(Value::U64(k + t))));
                    assert_eq!(call("load$u64", &[at]), want);
                    // The last word of whatever the length is now reads;
                    // past the maximum always traps.
                    let pages = memory.size_pages() as i64;
                    let last = Value::I64(pages * 65_536 - 8);
                    // No thread writes there: it reads zero.
                    let zero = interp_outcome(Ok(Some(Value::U64(0))));
                    assert_eq!(call("load$u64", &[last]), zero);
                    let past = Value::I64(8 * 65_536);
                    assert_eq!(call("load$u64", &[past]), Err(TrapKind::OutOfBounds));
                }
            });
        }
    });
    assert_eq!(memory.size_pages(), 8);
    for t in 0..4u64 {
        let mut word = [0u8; 8];
        memory.read(8 * (4 * 1_999 + t), &mut word).unwrap();
        assert_eq!(u64::from_le_bytes(word), 1_999 + t);
    }
}
