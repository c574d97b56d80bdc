//! Shared memories and tables in the reference interpreter: every
//! operation on a `jit::shared` memory or table, the bounds at exactly the
//! edge, growth to the maximum and past it, calls through table entries,
//! and grows racing with interpreted accesses on other threads.

// The interpreter's entry points are unsafe: the programs here touch only
// the shared memories and tables the resolver owns.
#![allow(unsafe_code)]

use std::sync::Arc;

use jit::interp::{Interpreter, LibraryResolver, Value};
use jit::ir::Library;
use jit::shared::{SharedMemory, SharedTable};
use jit::{Error, ErrorKind, TrapKind};

const PROGRAM: &str = "
memory heap 1, 3
table fns fn(i64) -> i64, 2, 4

fn load<T: any>(%o: i64) -> T {
entry:
    %v = mem_load T heap, %o
    ret %v
}

fn store<T: any>(%o: i64, %v: T) {
entry:
    mem_store T %v, heap, %o
    ret
}

fn size() -> i64 {
entry:
    %n = mem_size heap
    ret %n
}

fn grow(%d: i64) -> i64 {
entry:
    %old = mem_grow heap, %d
    ret %old
}

fn double(%x: i64) -> i64 {
entry:
    %r = add i64 %x, %x
    ret %r
}

fn install(%i: i64) {
entry:
    %f = func_addr double
    table_set fns, %i, %f
    ret
}

fn clear(%i: i64) {
entry:
    %f = const fn(i64) -> i64 null
    table_set fns, %i, %f
    ret
}

fn call(%i: i64, %x: i64) -> i64 {
entry:
    %r = call_table fns, %i(%x)
    ret %r
}

fn call_got(%i: i64, %x: i64) -> i64 {
entry:
    %f = table_get fns, %i
    %r = call_indirect %f(%x) : fn(i64) -> i64
    ret %r
}

fn tsize() -> i64 {
entry:
    %n = table_size fns
    ret %n
}

fn tgrow(%d: i64) -> i64 {
entry:
    %old = table_grow fns, %d
    ret %old
}

# Sums the i64 words below the memory's current length, one pass.
fn sum_words() -> i64 {
entry:
    %pages = mem_size heap
    %page = const i64 65536
    %bytes = mul i64 %pages, %page
    %zero = const i64 0
    br loop(%zero, %zero)
loop(%o: i64, %acc: i64):
    %more = cmp lt i64 %o, %bytes
    cond_br %more, body, done
body:
    %w = mem_load i64 heap, %o
    %next = add i64 %acc, %w
    %eight = const i64 8
    %o2 = add i64 %o, %eight
    br loop(%o2, %next)
done:
    ret %acc
}
";

/// The program, a memory and a table, and one resolver over them (whose
/// function-pointer tokens the table's entries hold).
struct World {
    lib: &'static Library,
    memory: Arc<SharedMemory>,
    table: Arc<SharedTable>,
    resolver: LibraryResolver<'static>,
}

fn program() -> &'static Library {
    let lib = jit::text::parse_library(PROGRAM).expect("parses");
    jit::verify::verify_library(&lib).expect("verifies");
    Box::leak(Box::new(lib))
}

impl World {
    fn new() -> World {
        let lib = program();
        let memory = Arc::new(SharedMemory::new("heap", 1, Some(3)).unwrap());
        let table = Arc::new(SharedTable::new("fns", 2, Some(4)).unwrap());
        let resolver = LibraryResolver::new(lib)
            .with_memory(Arc::clone(&memory))
            .with_table(Arc::clone(&table));
        World {
            lib,
            memory,
            table,
            resolver,
        }
    }

    fn run(&self, symbol: &str, args: &[Value]) -> Result<Option<Value>, Error> {
        // SAFETY: the programs touch only the resolver's memory and table.
        unsafe { Interpreter::new(&self.resolver).call_symbol(symbol, args) }
    }

    fn value(&self, symbol: &str, args: &[Value]) -> Value {
        match self.run(symbol, args) {
            Ok(Some(v)) => v,
            other => panic!("{symbol}: {other:?}"),
        }
    }
}

fn trap(r: Result<Option<Value>, Error>) -> TrapKind {
    match r {
        Err(Error {
            kind: ErrorKind::Trap(t),
            ..
        }) => t,
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn every_register_type_round_trips_through_the_memory() {
    let w = World::new();
    let cases = [
        ("i8", Value::I8(-5)),
        ("u8", Value::U8(250)),
        ("i16", Value::I16(-30_000)),
        ("u16", Value::U16(65_000)),
        ("i32", Value::I32(-7)),
        ("u32", Value::U32(4_000_000_000)),
        ("i64", Value::I64(i64::MIN + 3)),
        ("u64", Value::U64(u64::MAX - 1)),
        ("f32", Value::F32(-1.5)),
        ("f64", Value::F64(6.75)),
        ("bool", Value::Bool(true)),
        ("rawptr", Value::Ptr(0xdead_beef)),
    ];
    for (k, (ty, v)) in cases.iter().enumerate() {
        let off = Value::I64(100 + 16 * k as i64);
        assert_eq!(w.run(&format!("store${ty}"), &[off, *v]).unwrap(), None);
        assert_eq!(w.value(&format!("load${ty}"), &[off]), *v, "{ty}");
    }
    // Little-endian bytes, as the host sees them.
    let mut bytes = [0u8; 2];
    w.memory.read(100 + 16 * 2, &mut bytes).unwrap();
    assert_eq!(i16::from_le_bytes(bytes), -30_000);
    // A narrow load of a wider store reads the low bytes, extended.
    w.run("store$i32", &[Value::I64(0), Value::I32(-2)])
        .unwrap();
    assert_eq!(w.value("load$i8", &[Value::I64(0)]), Value::I8(-2));
    assert_eq!(w.value("load$u8", &[Value::I64(0)]), Value::U8(0xfe));
    assert_eq!(w.value("load$u16", &[Value::I64(0)]), Value::U16(0xfffe));
}

#[test]
fn accesses_are_bounds_checked_at_exactly_the_length() {
    let w = World::new();
    let end = 65_536i64;
    w.run("store$i64", &[Value::I64(end - 8), Value::I64(42)])
        .unwrap();
    assert_eq!(w.value("load$i64", &[Value::I64(end - 8)]), Value::I64(42));
    assert_eq!(w.value("load$u8", &[Value::I64(end - 1)]), Value::U8(0));
    for off in [end - 7, end - 1, end, i64::MAX, -1, -8, i64::MIN] {
        assert_eq!(
            trap(w.run("load$i64", &[Value::I64(off)])),
            TrapKind::OutOfBounds,
            "load at {off}"
        );
        assert_eq!(
            trap(w.run("store$i64", &[Value::I64(off), Value::I64(1)])),
            TrapKind::OutOfBounds,
            "store at {off}"
        );
    }
    assert_eq!(
        trap(w.run("load$u8", &[Value::I64(end)])),
        TrapKind::OutOfBounds
    );
    // A refused store wrote nothing.
    assert_eq!(w.value("load$i64", &[Value::I64(end - 8)]), Value::I64(42));
}

#[test]
fn growth_is_visible_at_once_and_stops_at_the_maximum() {
    let w = World::new();
    let base = w.memory.descriptor().base;
    assert_eq!(w.value("size", &[]), Value::I64(1));
    assert_eq!(w.value("grow", &[Value::I64(0)]), Value::I64(1));
    assert_eq!(w.value("grow", &[Value::I64(-1)]), Value::I64(-1));
    assert_eq!(
        w.value("grow", &[Value::I64(3)]),
        Value::I64(-1),
        "past 3 pages"
    );
    assert_eq!(w.value("grow", &[Value::I64(1)]), Value::I64(1));
    assert_eq!(w.value("size", &[]), Value::I64(2));
    // The new page reads zero and takes stores.
    assert_eq!(w.value("load$i64", &[Value::I64(65_536)]), Value::I64(0));
    w.run("store$i64", &[Value::I64(131_064), Value::I64(7)])
        .unwrap();
    assert_eq!(w.value("grow", &[Value::I64(1)]), Value::I64(2));
    assert_eq!(
        w.value("grow", &[Value::I64(1)]),
        Value::I64(-1),
        "at the maximum"
    );
    assert_eq!(w.memory.size_pages(), 3);
    assert_eq!(w.memory.descriptor().base, base, "the base never moves");
    // A grow by the host is what the program sees.
    let other = World::new();
    assert_eq!(other.memory.grow(2), 1);
    assert_eq!(other.value("size", &[]), Value::I64(3));
}

#[test]
fn tables_hold_and_call_functions() {
    let w = World::new();
    assert_eq!(w.value("tsize", &[]), Value::I64(2));
    // An empty entry traps as a null function pointer does.
    assert_eq!(
        trap(w.run("call", &[Value::I64(0), Value::I64(5)])),
        TrapKind::NullPointer
    );
    w.run("install", &[Value::I64(1)]).unwrap();
    assert_eq!(
        w.value("call", &[Value::I64(1), Value::I64(21)]),
        Value::I64(42)
    );
    assert_eq!(
        w.value("call_got", &[Value::I64(1), Value::I64(4)]),
        Value::I64(8)
    );
    assert_ne!(w.table.get(1), Some(0), "the entry is the host's too");
    // Out of bounds: get, set and call.
    for i in [2, -1, i64::MAX] {
        let i = Value::I64(i);
        assert_eq!(
            trap(w.run("call", &[i, Value::I64(1)])),
            TrapKind::OutOfBounds
        );
        assert_eq!(
            trap(w.run("call_got", &[i, Value::I64(1)])),
            TrapKind::OutOfBounds
        );
        assert_eq!(trap(w.run("install", &[i])), TrapKind::OutOfBounds);
    }
    // Growth adds null entries up to the maximum.
    assert_eq!(w.value("tgrow", &[Value::I64(1)]), Value::I64(2));
    assert_eq!(
        trap(w.run("call", &[Value::I64(2), Value::I64(1)])),
        TrapKind::NullPointer
    );
    assert_eq!(w.value("tgrow", &[Value::I64(2)]), Value::I64(-1));
    assert_eq!(w.value("tgrow", &[Value::I64(-1)]), Value::I64(-1));
    assert_eq!(w.value("tgrow", &[Value::I64(1)]), Value::I64(3));
    assert_eq!(w.value("tsize", &[]), Value::I64(4));
    // Clearing an entry makes it null again.
    w.run("clear", &[Value::I64(1)]).unwrap();
    assert_eq!(
        trap(w.run("call", &[Value::I64(1), Value::I64(1)])),
        TrapKind::NullPointer
    );
}

#[test]
fn an_unknown_memory_is_an_error_naming_it() {
    let w = World::new();
    let r = LibraryResolver::new(w.lib);
    // SAFETY: the call fails before touching memory.
    let e = unsafe { Interpreter::new(&r).call_symbol("size", &[]) }.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unresolved("memory `heap`".into()));
}

#[test]
fn grows_racing_with_interpreted_accesses_lose_nothing() {
    let lib = program();
    let memory = Arc::new(SharedMemory::new("heap", 1, Some(64)).unwrap());
    std::thread::scope(|s| {
        // One thread grows, page by page, from the interpreter.
        s.spawn(|| {
            let r = LibraryResolver::new(lib).with_memory(Arc::clone(&memory));
            let mut grown = 0;
            // SAFETY: as in `World::run`.
            while unsafe { Interpreter::new(&r).call_symbol("grow", &[Value::I64(1)]) }.unwrap()
                != Some(Value::I64(-1))
            {
                grown += 1;
            }
            assert_eq!(grown, 63);
        });
        for t in 0..3i64 {
            let memory = Arc::clone(&memory);
            s.spawn(move || {
                let r = LibraryResolver::new(lib).with_memory(Arc::clone(&memory));
                let interp = Interpreter::new(&r);
                let call = |sym: &str, args: &[Value]| {
                    // SAFETY: as in `World::run`.
                    unsafe { interp.call_symbol(sym, args) }
                };
                for k in 0..2_000i64 {
                    // Each thread owns every third word of page 0, which
                    // always exists.
                    let off = 8 * (3 * k + t);
                    call("store$i64", &[Value::I64(off), Value::I64(k + 1)]).unwrap();
                    assert_eq!(
                        call("load$i64", &[Value::I64(off)]).unwrap(),
                        Some(Value::I64(k + 1))
                    );
                    // Whatever the length is now, the word just past it
                    // traps and the word just below it is readable.
                    let Some(Value::I64(pages)) = call("size", &[]).unwrap() else {
                        panic!("size")
                    };
                    let end = pages * 65_536;
                    // No thread writes there: it reads zero.
                    let last = call("load$i64", &[Value::I64(end - 8)]).unwrap();
                    assert_eq!(last, Some(Value::I64(0)));
                    if pages == 64 {
                        assert_eq!(
                            trap(call("load$i64", &[Value::I64(end)])),
                            TrapKind::OutOfBounds
                        );
                    }
                }
            });
        }
    });
    assert_eq!(memory.size_pages(), 64);
    // Every page reads zero except what the stores wrote.
    let r = LibraryResolver::new(lib).with_memory(Arc::clone(&memory));
    // SAFETY: as in `World::run`.
    let sum = unsafe { Interpreter::new(&r).call_symbol("sum_words", &[]) }.unwrap();
    let expected: i64 = (0..3)
        .map(|_| (0..2_000i64).map(|k| k + 1).sum::<i64>())
        .sum();
    assert_eq!(sum, Some(Value::I64(expected)));
}
