//! Shared memories and tables in compiled code: every operation against
//! values computed here from the descriptor's bytes (`shared_mixed.rs`
//! compares compiled code with the interpreter), bounds at the length, one past and at negative
//! offsets, constant offsets, grows up to the maximum and past it, grows
//! by other threads seen at once, values live across a grow, tables
//! filled and called through, and the shape of the bounds check.

// These tests call generated code that reads descriptors by address.
#![allow(unsafe_code)]

mod backend_support;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use backend_support::Machine;
use jit::backend::{
    CallResolver, CallTarget, CompiledFunction, NoCallees, SharedResolver, Syntax,
    disassemble_function,
};
use jit::instantiate::instantiate;
use jit::ir::{Callee, Library, TemplateName};
use jit::shared::limits::PAGE_SIZE;
use jit::shared::{SharedMemory, SharedTable, Space};
use jit::{Error, ErrorKind, TrapKind};

const PAGE: i64 = PAGE_SIZE as i64;

/// The register types with their sizes, as the IR writes them.
const TYPES: [(&str, i64); 13] = [
    ("i8", 1),
    ("i16", 2),
    ("i32", 4),
    ("i64", 8),
    ("u8", 1),
    ("u16", 2),
    ("u32", 4),
    ("u64", 8),
    ("f32", 4),
    ("f64", 8),
    ("bool", 1),
    ("ptr<i64>", 8),
    ("rawptr", 8),
];

fn library(text: &str) -> Library {
    let lib = jit::text::parse_library(text).unwrap_or_else(|e| panic!("parse: {e}\n{text}"));
    jit::verify::verify_library(&lib).unwrap_or_else(|e| panic!("verify: {e}\n{text}"));
    lib
}

/// A memory `heap` (1 page, at most 4) and a table `dispatch` of
/// `fn(i64) -> i64` (4 entries, at most 8), with the machine that runs
/// code compiled against them.
struct Fixture {
    machine: Machine,
    heap: SharedMemory,
    dispatch: SharedTable,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            machine: Machine::new(),
            heap: SharedMemory::new("heap", 1, Some(4)).expect("memory"),
            dispatch: SharedTable::new("dispatch", 4, Some(8)).expect("table"),
        }
    }

    /// The fixture's descriptors over `callees`.
    fn resolver<C: CallResolver>(&self, callees: C) -> SharedResolver<C> {
        SharedResolver::new(callees)
            .with_memory("heap", self.heap.descriptor_address())
            .with_table("dispatch", self.dispatch.descriptor_address())
    }

    fn compile(&self, lib: &Library, name: &str) -> CompiledFunction {
        self.compile_with(lib, name, &mut self.resolver(NoCallees))
    }

    fn compile_with(
        &self,
        lib: &Library,
        name: &str,
        resolver: &mut dyn CallResolver,
    ) -> CompiledFunction {
        let inst = instantiate(lib, &TemplateName::free(name), &[]).expect("instantiates");
        self.machine
            .compile(&inst.function, &inst.reg_types, resolver)
    }

    /// Calls `f` with integer and float (bits) arguments: rax and xmm0's
    /// low 64 bits, or the trap.
    fn call(
        &self,
        f: &CompiledFunction,
        ints: &[u64],
        floats: &[u64],
    ) -> Result<[u64; 2], TrapKind> {
        let mut i = [0u64; 6];
        i[..ints.len()].copy_from_slice(ints);
        let mut x = [0u64; 8];
        x[..floats.len()].copy_from_slice(floats);
        // SAFETY: the functions of these tests read their arguments, the
        // fixture's memory and table (alive for the call) and call
        // functions of this machine through the table.
        unsafe { self.machine.runtime.call_raw(f.entry(), &i, &x) }
    }

    /// The first `len` bytes of the memory.
    fn bytes(&self, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        self.heap.read(0, &mut out).expect("in bounds");
        out
    }
}

/// Load and store functions of every register type at a register offset.
fn accessors() -> Library {
    let mut text = String::from("memory heap 1, 4\n");
    for (k, (ty, _)) in TYPES.iter().enumerate() {
        text.push_str(&format!(
            "fn load_{k}(%o: i64) -> {ty} {{\nentry:\n    %v = mem_load {ty} heap, %o\n    ret %v\n}}\n\
             fn store_{k}(%o: i64, %v: {ty}) {{\nentry:\n    mem_store {ty} %v, heap, %o\n    ret\n}}\n"
        ));
    }
    library(&text)
}

/// The canonical register bits of `ty` loaded from `bytes`: integers
/// sign- or zero-extended from their width, `bool` bit 0 of the byte.
fn canonical(ty: &str, bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    let raw = u64::from_le_bytes(word);
    match ty {
        "i8" => raw as u8 as i8 as i64 as u64,
        "i16" => raw as u16 as i16 as i64 as u64,
        "i32" => raw as u32 as i32 as i64 as u64,
        "bool" => raw & 1,
        _ => raw,
    }
}

/// The bits a compiled function of type `ty` returned.
fn returned(ty: &str, out: [u64; 2]) -> u64 {
    match ty {
        "f32" => u64::from(out[1] as u32),
        "f64" => out[1],
        _ => out[0],
    }
}

/// Offsets around the edges of a memory of `len` bytes for an access of
/// `size` bytes, each with whether it is in bounds.
fn edges(len: i64, size: i64) -> Vec<(i64, bool)> {
    vec![
        (0, true),
        (1, true),
        (len / 2 + 3, true),
        (len - size, true),
        (len - size + 1, false),
        (len - 1, size == 1),
        (len, false),
        (len + 1, false),
        (len + PAGE, false),
        (-1, false),
        (-size, false),
        (-size - 1, false),
        (i64::MIN, false),
        (i64::MAX, false),
        (i64::MAX - 7, false),
        (i64::from(u32::MAX), false),
        (1 << 32, false),
    ]
}

/// A byte pattern with the sign bit of every width set somewhere.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(151).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

#[test]
fn every_register_type_loads_within_the_length_and_traps_past_it() {
    let fx = Fixture::new();
    let lib = accessors();
    let len = PAGE_SIZE as usize;
    let bytes = pattern(len, 7);
    fx.heap.write(0, &bytes).expect("in bounds");
    for (k, (ty, size)) in TYPES.iter().enumerate() {
        let f = fx.compile(&lib, &format!("load_{k}"));
        for (o, inside) in edges(len as i64, *size) {
            let got = fx.call(&f, &[o as u64], &[]);
            if inside {
                let at = o as usize;
                let want = canonical(ty, &bytes[at..at + *size as usize]);
                let out = got.unwrap_or_else(|t| panic!("load {ty} at {o}: {t:?}"));
                assert_eq!(returned(ty, out), want, "load {ty} at {o}");
            } else {
                assert_eq!(got, Err(TrapKind::OutOfBounds), "load {ty} at {o}");
            }
        }
    }
}

#[test]
fn every_register_type_stores_exactly_its_bytes_and_nothing_past_the_length() {
    let fx = Fixture::new();
    let lib = accessors();
    let len = PAGE_SIZE as usize;
    for (k, (ty, size)) in TYPES.iter().enumerate() {
        let f = fx.compile(&lib, &format!("store_{k}"));
        let bits = 0x8081_8283_8485_8687u64 ^ (k as u64) << 3;
        let float = matches!(*ty, "f32" | "f64");
        let stored: Vec<u8> = match *ty {
            "bool" => vec![1],
            _ => bits.to_le_bytes()[..*size as usize].to_vec(),
        };
        // A bool argument is 0 or 1.
        let arg = if *ty == "bool" { 1 } else { bits };
        for (o, inside) in edges(len as i64, *size) {
            let before = pattern(len, k as u8);
            fx.heap.write(0, &before).expect("in bounds");
            let (ints, floats) = if float {
                (vec![o as u64], vec![arg])
            } else {
                (vec![o as u64, arg], vec![])
            };
            let got = fx.call(&f, &ints, &floats).map(|_| ());
            let mut want = before.clone();
            if inside {
                assert_eq!(got, Ok(()), "store {ty} at {o}");
                let at = o as usize;
                want[at..at + stored.len()].copy_from_slice(&stored);
            } else {
                assert_eq!(got, Err(TrapKind::OutOfBounds), "store {ty} at {o}");
            }
            assert!(fx.bytes(len) == want, "store {ty} at {o}: bytes");
        }
    }
}

#[test]
fn constant_offsets_are_checked_against_the_length_at_every_access() {
    let offsets: [i64; 14] = [
        0,
        PAGE - 8,
        PAGE - 7,
        PAGE,
        2 * PAGE - 8,
        -1,
        -8,
        i64::from(i32::MAX),
        i64::from(i32::MAX) + 1,
        (1 << 32) - 8,
        (1 << 32) - 7,
        1 << 40,
        i64::MAX,
        i64::MIN,
    ];
    let mut text = String::from("memory heap 1, 4\n");
    for (k, o) in offsets.iter().enumerate() {
        text.push_str(&format!(
            "fn load_{k}() -> i64 {{\nentry:\n    %o = const i64 {o}\n    \
             %v = mem_load i64 heap, %o\n    ret %v\n}}\n\
             fn store_{k}(%v: i32) {{\nentry:\n    %o = const i64 {o}\n    \
             mem_store i32 %v, heap, %o\n    ret\n}}\n"
        ));
    }
    let lib = library(&text);
    let fx = Fixture::new();
    let functions: Vec<_> = (0..offsets.len())
        .map(|k| {
            (
                fx.compile(&lib, &format!("load_{k}")),
                fx.compile(&lib, &format!("store_{k}")),
            )
        })
        .collect();
    for pages in [1i64, 2] {
        let len = pages * PAGE;
        let bytes = pattern(len as usize, 3);
        fx.heap.write(0, &bytes).expect("in bounds");
        for (&o, (load, store)) in offsets.iter().zip(&functions) {
            let got = fx.call(load, &[], &[]);
            if o >= 0 && o.checked_add(8).is_some_and(|e| e <= len) {
                let at = o as usize;
                assert_eq!(
                    got.map(|r| r[0]),
                    Ok(canonical("i64", &bytes[at..at + 8])),
                    "load at {o} of {len}"
                );
            } else {
                assert_eq!(got, Err(TrapKind::OutOfBounds), "load at {o} of {len}");
            }
            let got = fx.call(store, &[0x1122_3344], &[]).map(|_| ());
            let mut want = bytes.clone();
            if o >= 0 && o.checked_add(4).is_some_and(|e| e <= len) {
                assert_eq!(got, Ok(()), "store at {o} of {len}");
                let at = o as usize;
                want[at..at + 4].copy_from_slice(&0x1122_3344u32.to_le_bytes());
            } else {
                assert_eq!(got, Err(TrapKind::OutOfBounds), "store at {o} of {len}");
            }
            assert!(
                fx.bytes(len as usize) == want,
                "store at {o} of {len}: bytes"
            );
            fx.heap.write(0, &bytes).expect("in bounds");
        }
        // The same code sees the grown length.
        assert_eq!(fx.heap.grow(1), pages);
    }
}

const GROWTH: &str = "
memory heap 1, 4
table dispatch fn(i64) -> i64, 4, 8

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

fn grow_then_load(%d: i64, %o: i64) -> i64 {
entry:
    %old = mem_grow heap, %d
    %v = mem_load i64 heap, %o
    %r = add i64 %old, %v
    ret %r
}

fn table_size() -> i64 {
entry:
    %n = table_size dispatch
    ret %n
}

fn table_grow(%d: i64) -> i64 {
entry:
    %old = table_grow dispatch, %d
    ret %old
}
";

#[test]
fn memories_grow_to_their_maximum_and_no_further() {
    let fx = Fixture::new();
    let lib = library(GROWTH);
    let [size, grow, grow_then_load] =
        ["size", "grow", "grow_then_load"].map(|n| fx.compile(&lib, n));
    let size_of = || fx.call(&size, &[], &[]).map(|r| r[0] as i64);
    let grow_by = |d: i64| fx.call(&grow, &[d as u64], &[]).map(|r| r[0] as i64);
    assert_eq!(size_of(), Ok(1));
    // A grow and a load of the new page in one function: the load reads
    // the length the grow stored.
    assert_eq!(
        fx.call(&grow_then_load, &[1, (2 * PAGE - 8) as u64], &[])
            .map(|r| r[0]),
        Ok(1)
    );
    assert_eq!(size_of(), Ok(2));
    assert_eq!(fx.heap.size_pages(), 2);
    assert_eq!(grow_by(0), Ok(2));
    assert_eq!(grow_by(-1), Ok(-1));
    assert_eq!(grow_by(i64::MIN), Ok(-1));
    assert_eq!(grow_by(3), Ok(-1), "past the maximum of 4");
    assert_eq!(grow_by(i64::MAX), Ok(-1));
    assert_eq!(size_of(), Ok(2), "refused grows change nothing");
    assert_eq!(grow_by(2), Ok(2), "up to the maximum exactly");
    assert_eq!(size_of(), Ok(4));
    assert_eq!(grow_by(1), Ok(-1));
    assert_eq!(
        fx.call(&grow_then_load, &[0, (4 * PAGE - 8) as u64], &[])
            .map(|r| r[0]),
        Ok(4),
        "the last bytes of the maximum read as zero"
    );
    assert_eq!(
        fx.call(&grow_then_load, &[1, (4 * PAGE - 7) as u64], &[]),
        Err(TrapKind::OutOfBounds)
    );
    assert_eq!(fx.heap.statistics().grows, 2);
}

#[test]
fn tables_grow_to_their_maximum_and_no_further() {
    let fx = Fixture::new();
    let lib = library(GROWTH);
    let [size, grow] = ["table_size", "table_grow"].map(|n| fx.compile(&lib, n));
    let size_of = || fx.call(&size, &[], &[]).map(|r| r[0] as i64);
    let grow_by = |d: i64| fx.call(&grow, &[d as u64], &[]).map(|r| r[0] as i64);
    assert_eq!(size_of(), Ok(4));
    assert_eq!(grow_by(1), Ok(4));
    assert_eq!(grow_by(0), Ok(5));
    assert_eq!(grow_by(-1), Ok(-1));
    assert_eq!(grow_by(4), Ok(-1), "past the maximum of 8");
    assert_eq!(grow_by(3), Ok(5));
    assert_eq!(size_of(), Ok(8));
    assert_eq!(fx.dispatch.len(), 8);
    assert_eq!(grow_by(1), Ok(-1));
}

/// A function keeping `live` integers and two floats in registers across
/// a `mem_grow` and a `table_grow`, returning their sum with both old sizes.
fn across_grows(live: usize) -> String {
    let mut s = String::from(
        "memory heap 1, 4\ntable dispatch fn(i64) -> i64, 4, 8\n\
         fn across(%a: i64, %x: f64) -> f64 {\nentry:\n    %one = const i64 1\n    \
         %y = mul f64 %x, %x\n",
    );
    for k in 0..live {
        s.push_str(&format!("    %k{k} = const i64 {}\n", k + 3));
        s.push_str(&format!("    %v{k} = mul i64 %a, %k{k}\n"));
    }
    s.push_str("    %m = mem_grow heap, %one\n    %t = table_grow dispatch, %one\n");
    s.push_str("    %acc0 = add i64 %m, %t\n");
    for k in 0..live {
        s.push_str(&format!("    %acc{} = add i64 %acc{k}, %v{k}\n", k + 1));
    }
    s.push_str(&format!(
        "    %f = cast i64 %acc{live} to f64\n    %z = add f64 %f, %y\n    \
         %r = add f64 %z, %x\n    ret %r\n}}\n"
    ));
    s
}

#[test]
fn values_live_across_a_grow_survive_it() {
    for live in [0usize, 3, 12] {
        let fx = Fixture::new();
        let lib = library(&across_grows(live));
        let f = fx.compile(&lib, "across");
        let (a, x) = (5i64, 1.5f64);
        let got = fx.call(&f, &[a as u64], &[x.to_bits()]).expect("no trap");
        let sum: i64 = 1 + 4 + (0..live as i64).map(|k| a * (k + 3)).sum::<i64>();
        let want = sum as f64 + x * x + x;
        assert_eq!(f64::from_bits(got[1]), want, "live={live}");
        assert_eq!((fx.heap.size_pages(), fx.dispatch.len()), (2, 5));
    }
}

const TABLES: &str = "
table dispatch fn(i64) -> i64, 4, 8

fn double(%x: i64) -> i64 {
entry:
    %r = add i64 %x, %x
    ret %r
}

fn square(%x: i64) -> i64 {
entry:
    %r = mul i64 %x, %x
    ret %r
}

fn set(%i: i64, %f: fn(i64) -> i64) {
entry:
    table_set dispatch, %i, %f
    ret
}

fn get(%i: i64) -> fn(i64) -> i64 {
entry:
    %f = table_get dispatch, %i
    ret %f
}

fn call_at(%i: i64, %x: i64) -> i64 {
entry:
    %r = call_table dispatch, %i(%x)
    ret %r
}

fn fill_and_call(%x: i64) -> i64 {
entry:
    %zero = const i64 0
    %three = const i64 3
    %f = func_addr double : fn(i64) -> i64
    %g = func_addr square : fn(i64) -> i64
    table_set dispatch, %zero, %f
    table_set dispatch, %three, %g
    %a = call_table dispatch, %zero(%x)
    %b = call_table dispatch, %three(%a)
    %h = table_get dispatch, %three
    %c = call_indirect %h(%b) : fn(i64) -> i64
    ret %c
}

fn call_past_the_end(%x: i64) -> i64 {
entry:
    %i = const i64 4
    %r = call_table dispatch, %i(%x)
    ret %r
}

fn call_negative(%x: i64) -> i64 {
entry:
    %i = const i64 -1
    %r = call_table dispatch, %i(%x)
    ret %r
}

fn get_far() -> fn(i64) -> i64 {
entry:
    %i = const i64 1048576
    %f = table_get dispatch, %i
    ret %f
}
";

#[test]
fn tables_are_filled_read_and_called_through() {
    let fx = Fixture::new();
    let lib = library(TABLES);
    let double = fx.compile(&lib, "double");
    let square = fx.compile(&lib, "square");
    let [set, get, call_at] = ["set", "get", "call_at"].map(|n| fx.compile(&lib, n));
    let call = |i: i64, x: i64| fx.call(&call_at, &[i as u64, x as u64], &[]).map(|r| r[0]);
    let get_at = |i: i64| fx.call(&get, &[i as u64], &[]).map(|r| r[0]);
    // Entries start null.
    for i in 0..4 {
        assert_eq!(get_at(i), Ok(0));
        assert_eq!(call(i, 7), Err(TrapKind::NullPointer), "entry {i}");
    }
    for (i, f) in [(1i64, &double), (3, &square)] {
        assert_eq!(
            fx.call(&set, &[i as u64, f.address()], &[]).map(|_| ()),
            Ok(())
        );
    }
    assert_eq!(fx.dispatch.get(1), Some(double.address()));
    assert_eq!(fx.dispatch.get(3), Some(square.address()));
    assert_eq!(get_at(1), Ok(double.address()));
    assert_eq!(call(1, 21), Ok(42));
    assert_eq!(call(3, 9), Ok(81));
    assert_eq!(call(0, 1), Err(TrapKind::NullPointer));
    // Past the length, and negative indices, are out of bounds for
    // every operation, and nothing is written.
    for i in [4i64, 5, 8, 1 << 20, 1 << 40, -1, i64::MIN] {
        assert_eq!(call(i, 1), Err(TrapKind::OutOfBounds), "call {i}");
        assert_eq!(get_at(i), Err(TrapKind::OutOfBounds), "get {i}");
        assert_eq!(
            fx.call(&set, &[i as u64, double.address()], &[]),
            Err(TrapKind::OutOfBounds),
            "set {i}"
        );
    }
    // Entries set from Rust are called as well; a grown table's new
    // entries are null, then usable.
    fx.dispatch.set(0, square.address()).expect("in bounds");
    assert_eq!(call(0, -4), Ok(16));
    assert_eq!(fx.dispatch.grow(2), 4);
    assert_eq!(call(5, 1), Err(TrapKind::NullPointer));
    assert_eq!(
        fx.call(&set, &[5, double.address()], &[]).map(|_| ()),
        Ok(())
    );
    assert_eq!(call(5, 100), Ok(200));
    assert_eq!(call(6, 1), Err(TrapKind::OutOfBounds));
    // Clearing an entry makes calls through it trap again.
    assert_eq!(fx.call(&set, &[5, 0], &[]).map(|_| ()), Ok(()));
    assert_eq!(call(5, 100), Err(TrapKind::NullPointer));
}

#[test]
fn tables_filled_with_function_addresses_and_constant_indices() {
    let fx = Fixture::new();
    let lib = library(TABLES);
    let double = fx.compile(&lib, "double");
    let square = fx.compile(&lib, "square");
    // Callees through a closure, the table through the map around it.
    let (d, s) = (double.address(), square.address());
    let mut resolver = fx.resolver(move |c: &Callee| match c {
        Callee::Symbol(n) if n == "double" => Ok(CallTarget::Direct(d)),
        Callee::Symbol(n) if n == "square" => Ok(CallTarget::Direct(s)),
        other => Err(Error::new(ErrorKind::Unresolved(format!("{other:?}")))),
    });
    let fill = fx.compile_with(&lib, "fill_and_call", &mut resolver);
    // ((3 + 3)²)² = 1296.
    assert_eq!(fx.call(&fill, &[3], &[]).map(|r| r[0]), Ok(1296));
    assert_eq!(fx.dispatch.get(0), Some(d));
    assert_eq!(fx.dispatch.get(3), Some(s));
    for name in ["call_past_the_end", "call_negative", "get_far"] {
        let f = fx.compile(&lib, name);
        assert_eq!(fx.call(&f, &[1], &[]), Err(TrapKind::OutOfBounds), "{name}");
    }
    // Index 4 is in bounds once the table grew.
    let past = fx.compile(&lib, "call_past_the_end");
    assert_eq!(fx.dispatch.grow(1), 4);
    assert_eq!(fx.call(&past, &[1], &[]), Err(TrapKind::NullPointer));
    fx.dispatch.set(4, d).expect("in bounds");
    assert_eq!(fx.call(&past, &[11], &[]).map(|r| r[0]), Ok(22));
}

const CONCURRENT: &str = "
memory heap 1, 4

fn wait_then_load(%o: i64) -> i64 {
entry:
    %zero = const i64 0
    br spin
spin:
    %flag = mem_load i64 heap, %zero
    %ready = cmp ne i64 %flag, %zero
    cond_br %ready, go, spin
go:
    %v = mem_load i64 heap, %o
    ret %v
}

fn load(%o: i64) -> i64 {
entry:
    %v = mem_load i64 heap, %o
    ret %v
}

fn grow(%d: i64) -> i64 {
entry:
    %old = mem_grow heap, %d
    ret %old
}
";

#[test]
fn a_grow_by_another_thread_is_seen_by_running_code_at_once() {
    let fx = Fixture::new();
    let lib = library(CONCURRENT);
    let wait = fx.compile(&lib, "wait_then_load");
    let at = 2 * PAGE + 16;
    std::thread::scope(|s| {
        let reader = s.spawn(|| fx.call(&wait, &[at as u64], &[]));
        std::thread::sleep(std::time::Duration::from_millis(20));
        // The reader spins inside compiled code on the flag at offset 0
        // while the memory grows under it; then it reads the new page.
        assert_eq!(fx.heap.grow(2), 1);
        fx.heap
            .write(at as u64, &0x5eed_0000_1234u64.to_le_bytes())
            .expect("grown");
        std::sync::atomic::fence(Ordering::Release);
        fx.heap.write(0, &[1]).expect("in bounds");
        assert_eq!(
            reader.join().expect("reader").map(|r| r[0]),
            Ok(0x5eed_0000_1234)
        );
    });
}

#[test]
fn readers_see_every_grow_and_racing_grows_count_once_each() {
    let fx = Fixture::new();
    let lib = library(CONCURRENT);
    let [load, grow] = ["load", "grow"].map(|n| fx.compile(&lib, n));
    let done = AtomicBool::new(false);
    let last = 4 * PAGE - 8;
    std::thread::scope(|s| {
        // Readers of the last word of the maximum: out of bounds until
        // the last grow, then in bounds for good.
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = false;
                    while !done.load(Ordering::Acquire) || !seen {
                        match fx.call(&load, &[last as u64], &[]) {
                            Ok(r) => {
                                assert_eq!(r[0], 0);
                                seen = true;
                            }
                            Err(t) => {
                                assert_eq!(t, TrapKind::OutOfBounds);
                                assert!(!seen, "in bounds, then out of bounds again");
                            }
                        }
                    }
                })
            })
            .collect();
        // Three threads race to grow by one page each, twice: three
        // succeed with distinct old sizes, the other three are refused.
        let growers: Vec<_> = (0..3)
            .map(|_| s.spawn(|| [1, 1].map(|d| fx.call(&grow, &[d], &[]).map(|r| r[0] as i64))))
            .collect();
        let mut olds: Vec<i64> = growers
            .into_iter()
            .flat_map(|g| g.join().expect("grower"))
            .map(|r| r.expect("no trap"))
            .collect();
        olds.sort_unstable();
        assert_eq!(olds, [-1, -1, -1, 1, 2, 3]);
        assert_eq!(fx.heap.size_pages(), 4);
        done.store(true, Ordering::Release);
        for r in readers {
            r.join().expect("reader");
        }
    });
}

/// The instruction lines of a compiled function, without addresses and
/// bytes.
fn listing(f: &CompiledFunction) -> Vec<String> {
    disassemble_function(f.bytes(), f.instruction_len(), f.address(), Syntax::Intel)
        .lines()
        .filter_map(|l| l.get(43..).map(str::to_owned))
        .collect()
}

/// The index of the first line at or after `from` containing `what`.
fn find(lines: &[String], from: usize, what: &str) -> usize {
    lines
        .iter()
        .skip(from)
        .position(|l| l.contains(what))
        .map(|k| k + from)
        .unwrap_or_else(|| panic!("no `{what}` after line {from} in\n{}", lines.join("\n")))
}

/// A loop over offsets with two accesses at each (`load` is in
/// [`CONCURRENT`]).
const SHAPES: &str = "
memory heap 1, 4

fn sum(%n: i64) -> i64 {
entry:
    %zero = const i64 0
    %eight = const i64 8
    %three = const i64 3
    %end = shl i64 %n, %three
    br loop(%zero, %zero)
loop(%o: i64, %acc: i64):
    %more = cmp lt i64 %o, %end
    cond_br %more, body, done
body:
    %x = mem_load i64 heap, %o
    %y = mem_load u8 heap, %o
    %z = cast u8 %y to i64
    %a = add i64 %acc, %x
    %b = add i64 %a, %z
    %next = add i64 %o, %eight
    br loop(%next, %b)
done:
    ret %acc
}
";

#[test]
fn a_function_that_calls_reads_the_descriptor_at_every_access() {
    let fx = Fixture::new();
    let lines = listing(&fx.compile(&library(GROWTH), "grow_then_load"));
    let descriptor = format!("mov r10,{:X}h", fx.heap.descriptor_address());
    // The grow is a call, so after it the access loads the descriptor's
    // address, compares the end of the access with the length at offset
    // 8, then reads the base at offset 0 and accesses base + offset.
    let call = find(&lines, 0, "call qword ptr");
    let embed = find(&lines, call, &descriptor);
    let end = find(&lines, embed, "add rax,8");
    let wrap = find(&lines, end, "jb ");
    let length = find(&lines, wrap, "cmp rax,[r10+8]");
    let past = find(&lines, length, "ja ");
    let base = find(&lines, past, "mov r10,[r10]");
    let access = find(&lines, base, ",[r10+");
    assert!(
        end == embed + 2 && wrap == end + 1 && length == wrap + 1 && past == length + 1,
        "{}",
        lines.join("\n")
    );
    assert!(
        base == past + 1 && access == base + 1,
        "{}",
        lines.join("\n")
    );
}

#[test]
fn a_function_without_calls_keeps_the_descriptor_and_base_and_reads_the_length_each_time() {
    let fx = Fixture::new();
    let descriptor = format!(",{:X}h", fx.heap.descriptor_address());
    for (source, name) in [(CONCURRENT, "load"), (SHAPES, "sum")] {
        let lines = listing(&fx.compile(&library(source), name));
        let text = lines.join("\n");
        // The address once, in a register of its own, and the base read
        // from it once, before the body.
        let embed = find(&lines, 0, &descriptor);
        assert_eq!(
            lines.iter().filter(|l| l.contains(&descriptor)).count(),
            1,
            "{text}"
        );
        let d = lines[embed]
            .trim_start_matches("mov ")
            .split(',')
            .next()
            .expect("a register")
            .to_owned();
        let base = find(&lines, embed, &format!(",[{d}]"));
        let reads = lines
            .iter()
            .filter(|l| l.contains(&format!("[{d}+8]")))
            .count();
        let accesses = if name == "sum" { 2 } else { 1 };
        assert_eq!(reads, accesses, "{name}: the length at each access\n{text}");
        assert!(
            lines
                .iter()
                .skip(base + 1)
                .all(|l| !l.contains(&format!(",[{d}]"))),
            "{name}: the base is read once\n{text}"
        );
    }
}

#[test]
fn offsets_known_not_to_wrap_are_checked_with_one_comparison() {
    let fx = Fixture::new();
    let lib = library(SHAPES);
    // A parameter may be negative: the carry of offset + 8 is tested.
    let load = listing(&fx.compile(&library(CONCURRENT), "load"));
    find(&load, 0, "add rax,8");
    find(&load, 0, "jb ");
    // A counter stepped after the accesses at it cannot be: its end is
    // computed without a carry test, for both sizes.
    let sum = listing(&fx.compile(&lib, "sum"));
    let text = sum.join("\n");
    assert!(!sum.iter().any(|l| l.starts_with("jb ")), "{text}");
    let eight = find(&sum, 0, "lea rax,[");
    assert!(sum[eight].ends_with("+8]"), "{text}");
    let one = find(&sum, eight + 1, "lea rax,[");
    assert!(sum[one].ends_with("+1]"), "{text}");
    // And it computes what it should, at the edge of the length as well.
    let f = fx.compile(&lib, "sum");
    let xs: Vec<i64> = (0..PAGE / 8).map(|k| k * 3 - 1000).collect();
    let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
    fx.heap.write(0, &bytes).expect("one page");
    let want: i64 = xs
        .iter()
        .zip(bytes.chunks(8))
        .map(|(x, b)| x + i64::from(b[0]))
        .sum();
    assert_eq!(
        fx.call(&f, &[(PAGE / 8) as u64], &[]).map(|r| r[0] as i64),
        Ok(want)
    );
    assert_eq!(
        fx.call(&f, &[(PAGE / 8 + 1) as u64], &[]),
        Err(TrapKind::OutOfBounds)
    );
}

/// A function without calls holding `live` values loaded from the
/// memory at once (past the registers, so that the places of the
/// descriptor and base spill too), storing their sum after them and
/// returning it with the table's size and first entry.
fn pressure(live: usize) -> String {
    let mut s = String::from(
        "memory heap 1, 4\ntable dispatch fn(i64) -> i64, 4, 8\n\
         fn pressure(%at: i64) -> i64 {\nentry:\n    %acc0 = const i64 0\n",
    );
    for k in 0..live {
        s.push_str(&format!(
            "    %k{k} = const i64 {}\n    %o{k} = add i64 %at, %k{k}\n    \
             %v{k} = mem_load i64 heap, %o{k}\n",
            k * 8
        ));
    }
    for k in (0..live).rev() {
        s.push_str(&format!(
            "    %acc{} = add i64 %acc{}, %v{k}\n",
            live - k,
            live - k - 1
        ));
    }
    s.push_str(&format!(
        "    %end = const i64 {}\n    %out = add i64 %at, %end\n    \
         mem_store i64 %acc{live}, heap, %out\n    %n = table_size dispatch\n    \
         %zero = const i64 0\n    %f = table_get dispatch, %zero\n    \
         %fi = cast fn(i64) -> i64 %f to i64\n    %r0 = add i64 %acc{live}, %n\n    \
         %r = add i64 %r0, %fi\n    ret %r\n}}\n",
        live * 8
    ));
    s
}

#[test]
fn kept_descriptors_and_bases_survive_register_pressure() {
    for live in [0usize, 4, 16] {
        let fx = Fixture::new();
        let f = fx.compile(&library(&pressure(live)), "pressure");
        let at = 1000u64;
        let xs: Vec<i64> = (0..live as i64).map(|k| k * k - 7).collect();
        let bytes: Vec<u8> = xs.iter().flat_map(|x| x.to_le_bytes()).collect();
        fx.heap.write(at, &bytes).expect("in bounds");
        fx.dispatch.set(0, 0x1234).expect("in bounds");
        let sum: i64 = xs.iter().sum();
        assert_eq!(
            fx.call(&f, &[at], &[]).map(|r| r[0] as i64),
            Ok(sum + 4 + 0x1234),
            "live={live}"
        );
        let mut stored = [0u8; 8];
        fx.heap
            .read(at + live as u64 * 8, &mut stored)
            .expect("in bounds");
        assert_eq!(i64::from_le_bytes(stored), sum, "live={live}");
        // The last access of a page's end still traps one past it.
        let last = PAGE as u64 - (live as u64 + 1) * 8;
        assert!(fx.call(&f, &[last], &[]).is_ok(), "live={live}");
        assert_eq!(
            fx.call(&f, &[last + 1], &[]),
            Err(TrapKind::OutOfBounds),
            "live={live}"
        );
    }
}

#[test]
fn the_shared_operations_encode_as_iced_x86_encodes_them() {
    let fx = Fixture::new();
    let mut libs = vec![
        accessors(),
        library(GROWTH),
        library(TABLES),
        library(CONCURRENT),
    ];
    libs.extend([
        library(&across_grows(12)),
        library(SHAPES),
        library(&pressure(16)),
    ]);
    let backend = &fx.machine.backend;
    let mut resolver = fx.resolver(|_: &Callee| Ok(CallTarget::Direct(0x7F00_0000_1000)));
    let mut compared = 0;
    for lib in &libs {
        for f in lib.functions() {
            let name = f.name.to_string();
            let inst = instantiate(lib, &TemplateName::free(&name), &[]).expect("instantiates");
            let lowered = backend
                .lower(&inst.function, &inst.reg_types, &[&name], &mut resolver)
                .unwrap_or_else(|e| panic!("lowering {name}: {e}"));
            let ours = lowered.clone().encode().expect("encodes");
            let reference = lowered.encode_reference().expect("iced-x86 encodes");
            assert_eq!(ours.relocatable(), reference.relocatable(), "{name}");
            compared += 1;
        }
    }
    assert!(compared > 30, "only {compared} functions compared");
}

#[test]
fn unresolved_memories_and_tables_fail_compilation_with_their_names() {
    let fx = Fixture::new();
    let lib = library(GROWTH);
    let inst = instantiate(&lib, &TemplateName::free("size"), &[]).expect("instantiates");
    let compile = |resolver: &mut dyn CallResolver| {
        fx.machine
            .backend
            .compile(
                &fx.machine.memory,
                &inst.function,
                &inst.reg_types,
                resolver,
            )
            .map(|_| ())
    };
    // A resolver of callees alone, a closure among them, knows no memory.
    let mut closure = |_: &Callee| Ok(CallTarget::Direct(0));
    for resolver in [&mut NoCallees as &mut dyn CallResolver, &mut closure] {
        match compile(resolver) {
            Err(jit::backend::Error::UnresolvedShared {
                function,
                space: Space::Memory,
                name,
                source,
            }) => {
                assert_eq!((function.as_str(), name.as_str()), ("size", "heap"));
                assert_eq!(source.kind, ErrorKind::Unresolved("heap".into()));
            }
            other => panic!("{other:?}"),
        }
    }
    // A memory of that name is not a table.
    let inst = instantiate(&lib, &TemplateName::free("table_size"), &[]).expect("instantiates");
    let mut only_memory = SharedResolver::new(NoCallees).with_memory("dispatch", 0x1000);
    let err = fx
        .machine
        .backend
        .compile(
            &fx.machine.memory,
            &inst.function,
            &inst.reg_types,
            &mut only_memory,
        )
        .expect_err("no table");
    let text = err.to_string();
    assert!(
        text.contains("`table_size`") && text.contains("table `dispatch`"),
        "{text}"
    );
}

/// Counts what it is asked.
struct Counting {
    memories: usize,
    address: u64,
}

impl CallResolver for Counting {
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, Error> {
        NoCallees.resolve(callee)
    }

    fn memory(&mut self, _: &str) -> Result<u64, Error> {
        self.memories += 1;
        Ok(self.address)
    }
}

#[test]
fn each_memory_is_resolved_once_per_function() {
    let fx = Fixture::new();
    let lib = library(CONCURRENT);
    let mut counting = Counting {
        memories: 0,
        address: fx.heap.descriptor_address(),
    };
    let f = fx.compile_with(&lib, "wait_then_load", &mut counting);
    assert_eq!(counting.memories, 1);
    fx.heap.write(0, &[1]).expect("in bounds");
    fx.heap.write(8, &[9]).expect("in bounds");
    assert_eq!(fx.call(&f, &[8], &[]).map(|r| r[0]), Ok(9));
}
