//! One scenario on a shared memory and a shared table that every host of
//! the WebAssembly backend runs — the in-process runner
//! (`jit/wasm/tests/shared.rs`) and Node (`tests/wasm_node.rs`) — with the
//! outcomes computed here: each operation in bounds, at the last valid
//! offset, one past it, at negative offsets and offsets that wrap; every
//! register type a memory holds, narrow types read back in their
//! canonical form; memory and table grown to their maximum and past it;
//! a table filled and called through, a null entry and an index past the
//! length; and an explicit trap after the others, so the trap kind of one
//! call never leaks into the next.
#![allow(dead_code)] // each test crate uses a different subset

use jit::TrapKind;
use jit::interp::Value;
use jit::ir::{IntType, TemplateName, Type};

/// The program: generic loads and stores on `heap`, its size and grow,
/// and the table operations on `dispatch`, filled with `double` and
/// `negate`.
pub const TEXT: &str = "
memory heap 1, 3
table dispatch fn(i64) -> i64, 2, 4

fn load<T: any>(%off: i64) -> T {
b0:
    %v = mem_load T heap, %off
    ret %v
}
fn store<T: any>(%off: i64, %v: T) {
b0:
    mem_store T %v, heap, %off
    ret
}
fn pages() -> i64 {
b0:
    %n = mem_size heap
    ret %n
}
fn grow(%d: i64) -> i64 {
b0:
    %old = mem_grow heap, %d
    ret %old
}
fn double(%x: i64) -> i64 {
b0:
    %r = add i64 %x, %x
    ret %r
}
fn negate(%x: i64) -> i64 {
b0:
    %r = neg i64 %x
    ret %r
}
fn set_double(%i: i64) {
b0:
    %f = func_addr double : fn(i64) -> i64
    table_set dispatch, %i, %f
    ret
}
fn set_negate(%i: i64) {
b0:
    %f = func_addr negate : fn(i64) -> i64
    table_set dispatch, %i, %f
    ret
}
fn clear(%i: i64) {
b0:
    %f = const fn(i64) -> i64 null
    table_set dispatch, %i, %f
    ret
}
fn is_null(%i: i64) -> bool {
b0:
    %f = table_get dispatch, %i
    %n = const fn(i64) -> i64 null
    %r = cmp eq fn(i64) -> i64 %f, %n
    ret %r
}
fn same_entry(%i: i64, %j: i64) -> bool {
b0:
    %f = table_get dispatch, %i
    %g = table_get dispatch, %j
    %r = cmp eq fn(i64) -> i64 %f, %g
    ret %r
}
fn entries() -> i64 {
b0:
    %n = table_size dispatch
    ret %n
}
fn grow_table(%d: i64) -> i64 {
b0:
    %old = table_grow dispatch, %d
    ret %old
}
fn call(%i: i64, %x: i64) -> i64 {
b0:
    %r = call_table dispatch, %i(%x)
    ret %r
}
fn stop() -> i64 {
b0:
    trap 9
}
";

/// The memory: name, initial and maximum pages.
pub const HEAP: (&str, u32, u32) = ("heap", 1, 3);
/// The table: name, initial and maximum entries.
pub const DISPATCH: (&str, u32, u32) = ("dispatch", 2, 4);

/// Every register type a memory holds in the scenario, with a value of
/// it far from zero.
pub fn samples() -> Vec<(Type, Value)> {
    let int = |t| Type::Int(t);
    vec![
        (int(IntType::I8), Value::I8(-100)),
        (int(IntType::U8), Value::U8(200)),
        (int(IntType::I16), Value::I16(-30_000)),
        (int(IntType::U16), Value::U16(60_000)),
        (int(IntType::I32), Value::I32(-2_000_000_000)),
        (int(IntType::U32), Value::U32(4_000_000_000)),
        (Type::I64, Value::I64(-(1 << 60) - 5)),
        (int(IntType::U64), Value::U64(u64::MAX - 6)),
        (Type::F32, Value::F32(-1.25)),
        (Type::F64, Value::F64(6.02e23)),
        (Type::Bool, Value::Bool(true)),
    ]
}

/// Every function of the program, the generic ones for every sample type.
pub fn roots() -> Vec<(TemplateName, Vec<Type>)> {
    let mut roots: Vec<_> = samples()
        .into_iter()
        .flat_map(|(t, _)| {
            [
                (TemplateName::free("load"), vec![t.clone()]),
                (TemplateName::free("store"), vec![t]),
            ]
        })
        .collect();
    for name in [
        "pages",
        "grow",
        "double",
        "negate",
        "set_double",
        "set_negate",
        "clear",
        "is_null",
        "same_entry",
        "entries",
        "grow_table",
        "call",
        "stop",
    ] {
        roots.push((TemplateName::free(name), Vec::new()));
    }
    roots
}

/// One call and what it must do.
#[derive(Clone, Debug)]
pub struct Step {
    /// The export called.
    pub symbol: String,
    /// Its arguments.
    pub args: Vec<Value>,
    /// The result, or the trap.
    pub want: Want,
}

/// The descriptors after the last step: (length, maximum, version) of
/// the memory (bytes) and of the table (entries). Grows by 0 and refused
/// grows leave the version alone.
pub const FINAL_HEAP: (u32, u32, u32) = (3 * 65_536, 3 * 65_536, 2);
/// See [`FINAL_HEAP`].
pub const FINAL_DISPATCH: (u32, u32, u32) = (4, 4, 2);

/// Bytes of a page.
const PAGE: i64 = 65_536;

/// What a call must do: return a value (or none), or trap.
pub type Want = Result<Option<Value>, TrapKind>;

const OOB: Want = Err(TrapKind::OutOfBounds);
const NULL: Want = Err(TrapKind::NullPointer);
const NONE: Want = Ok(None);

fn some(v: Value) -> Want {
    Ok(Some(v))
}

fn int(v: i64) -> Want {
    some(Value::I64(v))
}

/// The calls, in order.
pub fn steps() -> Vec<Step> {
    let mut steps = Vec::new();
    let mut step = |symbol: &str, args: &[Value], want: Want| {
        steps.push(Step {
            symbol: symbol.to_owned(),
            args: args.to_vec(),
            want,
        })
    };
    let i = Value::I64;

    step("pages", &[], int(1));
    for (k, (ty, v)) in (0..).zip(samples()) {
        let (load, store) = (&format!("load${ty}"), &format!("store${ty}"));
        let s = i64::from(jit::wasm::abi::mem_size(&ty));
        // A fresh place reads zero; the value round-trips there and at the
        // last offset where it fits.
        step(load, &[i(8 * k)], some(Value::from_bits(&ty, 0)));
        for at in [8 * k, PAGE - s] {
            step(store, &[i(at), v], NONE);
            step(load, &[i(at)], some(v));
        }
        // One past the edge, the length, past 2^32, and negative offsets
        // (`-s` is the one where `offset + s` wraps to 0): out of bounds,
        // and a refused store leaves the bytes as they were.
        for at in [PAGE - s + 1, PAGE, 1 << 32, (1 << 32) - 1, -1, -s, i64::MIN] {
            step(store, &[i(at), v], OOB);
            step(load, &[i(at)], OOB);
        }
        step(load, &[i(PAGE - s)], some(v));
    }

    // Narrow types read the bytes of a wider store in their canonical
    // form: 0x80 0xff 0xff 0xff 0x00 …; a byte other than 0 or 1 reads as
    // a bool by its lowest bit.
    step("store$u32", &[i(256), Value::U32(0xffff_ff80)], NONE);
    for (symbol, at, want) in [
        ("load$i8", 256, Value::I8(-128)),
        ("load$u8", 256, Value::U8(0x80)),
        ("load$i16", 256, Value::I16(-128)),
        ("load$u16", 256, Value::U16(0xff80)),
        ("load$i32", 256, Value::I32(-128)),
        ("load$i64", 256, Value::I64(0xffff_ff80)),
        ("load$bool", 256, Value::Bool(false)),
        ("load$bool", 257, Value::Bool(true)),
    ] {
        step(symbol, &[i(at)], some(want));
    }

    // The memory grown to its maximum and past it; new pages read zero
    // up to the new length.
    let zero = some(Value::U8(0));
    for (symbol, arg, want) in [
        ("grow", -1, int(-1)),
        ("grow", 3, int(-1)),
        ("grow", i64::MIN, int(-1)),
        ("grow", (1 << 32) + 1, int(-1)),
        ("grow", 0, int(1)),
        ("load$u8", PAGE, OOB),
        ("grow", 1, int(1)),
        ("load$u8", PAGE, zero),
        ("load$u8", 2 * PAGE - 1, zero),
        ("load$u8", 2 * PAGE, OOB),
        ("load$i64", 2 * PAGE - 8, int(0)),
        ("grow", 1, int(2)),
        ("grow", 1, int(-1)),
        ("grow", 0, int(3)),
        ("grow", i64::MAX, int(-1)),
        ("load$u8", 3 * PAGE - 1, zero),
        ("load$u8", 3 * PAGE, OOB),
    ] {
        step(symbol, &[i(arg)], want);
    }
    step("pages", &[], int(3));
    step("store$i64", &[i(2 * PAGE - 8), i(-2)], NONE);
    step("load$i64", &[i(2 * PAGE - 8)], int(-2));

    // The table: null at first, filled, called through, grown, cleared;
    // `call(i, x)` is `double` or `negate` of x.
    step("entries", &[], int(2));
    step("is_null", &[i(0)], some(Value::Bool(true)));
    step("call", &[i(0), i(5)], NULL);
    for at in [2, -1, i64::MIN, 1 << 32] {
        step("call", &[i(at), i(5)], OOB);
        step("is_null", &[i(at)], OOB);
        step("set_double", &[i(at)], OOB);
    }
    step("set_double", &[i(0)], NONE);
    step("set_negate", &[i(1)], NONE);
    step("call", &[i(0), i(21)], int(42));
    step("call", &[i(1), i(21)], int(-21));
    step("same_entry", &[i(0), i(1)], some(Value::Bool(false)));
    for (delta, want) in [(-1, -1), (3, -1), (i64::MIN, -1), (0, 2), (1, 2)] {
        step("grow_table", &[i(delta)], int(want));
    }
    step("entries", &[], int(3));
    step("is_null", &[i(2)], some(Value::Bool(true)));
    step("call", &[i(2), i(1)], NULL);
    step("set_negate", &[i(2)], NONE);
    step("call", &[i(2), i(7)], int(-7));
    step("same_entry", &[i(1), i(2)], some(Value::Bool(true)));
    for (delta, want) in [(1, 3), (1, -1), (0, 4)] {
        step("grow_table", &[i(delta)], int(want));
    }
    step("call", &[i(3), i(1)], NULL);
    step("call", &[i(4), i(1)], OOB);
    step("clear", &[i(1)], NONE);
    step("call", &[i(1), i(3)], NULL);
    step("call", &[i(0), i(3)], int(6));

    // An explicit trap right after another kind carries its own kind and
    // code.
    step("call", &[i(9), i(3)], OOB);
    step("stop", &[], Err(TrapKind::Explicit(9)));
    steps
}
