//! Properties of the generated code itself: entry points, the calling
//! convention (callee-saved registers, stack alignment at calls, narrow
//! arguments), call forms (direct, through slots, within a batch), traps
//! and disassembly.

// These tests call generated code and hand raw buffers to the interpreter.
#![allow(unsafe_code)]

mod backend_support;
mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use backend_support::{Jit, Machine, Oracle, instructions};
use execmem::ExecMemory;
use iced_x86::code_asm::{CodeAssembler, r12, r13, r14, r15, rax, rbp, rbx, rcx, rdx, rsp};
use jit::backend::{CallResolver, CallTarget, NoCallees, Syntax, disassemble};
use jit::instantiate::{instantiate, instantiate_all};
use jit::interp::Value;
use jit::ir::{Callee, Library, TemplateName, Type};
use jit::{Error, ErrorKind, TrapKind};

const ENDBR64: [u8; 4] = [0xF3, 0x0F, 0x1E, 0xFA];

fn library(text: &str) -> Library {
    let lib = jit::text::parse_library(text).unwrap_or_else(|e| panic!("parse: {e}"));
    jit::verify::verify_library(&lib).unwrap_or_else(|e| panic!("verify: {e}"));
    lib
}

/// Publishes machine code assembled by `build` and returns its entry.
fn stub(
    memory: &ExecMemory,
    build: impl FnOnce(&mut CodeAssembler),
) -> (execmem::PublishedCode, u64) {
    let mut batch = memory.batch();
    let mut a = CodeAssembler::new(64).expect("assembler");
    build(&mut a);
    // Assemble once to learn the size, then again at the reserved address.
    let size = a.assemble(0).expect("assembles").len() + 64;
    let r = batch.reserve("stub", size, 16).expect("reserves");
    let bytes = a.assemble(r.address() as u64).expect("assembles");
    batch.write(&r, 0, &bytes).expect("fits");
    let code = batch.publish().expect("publishes");
    (code, r.address() as u64)
}

struct Fixed(Vec<(String, CallTarget)>);

impl CallResolver for Fixed {
    fn resolve(&mut self, callee: &Callee) -> Result<CallTarget, Error> {
        let name = match callee {
            Callee::Symbol(s) | Callee::Import(s) => s.as_str(),
            Callee::Template { .. } => "",
        };
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| Error::new(ErrorKind::Unresolved(name.to_owned())))
    }
}

#[test]
fn every_compiled_library_function_starts_with_endbr64() {
    let lib = common::collections();
    let jit = Jit::new(&lib);
    let push = jit::mangle::mangle(
        &TemplateName::method("Vec", "push"),
        &[Type::Int(jit::ir::IntType::I16)],
    )
    .expect("mangles");
    for symbol in [
        "sum$i8",
        "dot$f32",
        "sort$u64",
        "sort_desc$f64",
        "checked_max$i32",
        &push,
    ] {
        let code = jit.code_of(symbol);
        assert_eq!(code.get(..4), Some(&ENDBR64[..]), "{symbol}");
    }
}

#[test]
fn disassembly_lists_the_code_in_every_syntax() {
    let lib = common::collections();
    let jit = Jit::new(&lib);
    let code = jit.code_of("sum$i64");
    let intel = disassemble(&code, 0x1000, Syntax::Intel);
    assert!(intel.starts_with("0000000000001000  f30f1efa"), "{intel}");
    assert!(
        intel.lines().next().is_some_and(|l| l.ends_with("endbr64")),
        "{intel}"
    );
    assert!(intel.contains("ret"), "{intel}");
    let gas = disassemble(&code, 0x1000, Syntax::Gas);
    assert!(gas.contains("%rsp") || gas.contains("%rdi"), "{gas}");
    let nasm = disassemble(&code, 0x1000, Syntax::Nasm);
    assert!(nasm.contains("endbr64"), "{nasm}");
    assert_eq!(disassemble(&[], 0, Syntax::Intel), "");
    assert!(disassemble(&[0x06], 0, Syntax::Intel).contains("(bad)"));
}

#[test]
fn a_branch_whose_arguments_stay_in_place_jumps_once() {
    // insertion_sort's inner loop leaves it through `insert(%j)`, whose
    // parameter shares the argument's register: no moves on the edge, so
    // the conditional branch goes there itself instead of over a jump.
    let lib = common::collections();
    let jit = Jit::new(&lib);
    let listing = jit.listing_of("insertion_sort$i64");
    let ops = instructions(&listing);
    for pair in ops.windows(2) {
        let conditional = pair[0].1.starts_with('j') && pair[0].1 != "jmp";
        assert!(
            !(conditional && pair[1].1 == "jmp"),
            "a conditional branch over a jump:\n{listing}"
        );
    }
}

/// The target of a branch instruction (mnemonic and operands).
fn branch_target(op: &str, operands: &str) -> Option<u64> {
    if !op.starts_with('j') {
        return None;
    }
    let target = operands.trim_start_matches("short ").trim_end_matches('h');
    u64::from_str_radix(target, 16).ok()
}

/// The instructions of the innermost loop of `symbol` without a call: the
/// lines from the target of a backward conditional branch to that branch,
/// the shortest such stretch, as (mnemonic, operands).
fn innermost_loop(jit: &Jit<'_>, symbol: &str) -> (Vec<(String, String)>, String) {
    let listing = jit.listing_of(symbol);
    let lines = instructions(&listing);
    let mut best: Option<Vec<(String, String)>> = None;
    for (k, (at, op, rest)) in lines.iter().enumerate() {
        let Some(target) = branch_target(op, rest).filter(|&t| op != "jmp" && t < *at) else {
            continue;
        };
        let body: Vec<(String, String)> = lines
            .iter()
            .take(k + 1)
            .filter(|(a, ..)| *a >= target)
            .map(|(_, o, r)| (o.clone(), r.clone()))
            .collect();
        if body.iter().any(|(o, _)| o == "call") {
            continue;
        }
        if best.as_ref().is_none_or(|b| body.len() < b.len()) {
            best = Some(body);
        }
    }
    let body = best.unwrap_or_else(|| panic!("{symbol} has no loop:\n{listing}"));
    (body, listing)
}

/// The copies of one register into another in `body` that are not the
/// first half of a two-operand instruction (a copy the next instruction
/// overwrites in place, as `mov rbx,r9; sub rbx,r8`).
fn register_copies(body: &[(String, String)]) -> usize {
    let copy = |(op, operands): &(String, String)| {
        matches!(op.as_str(), "mov" | "movaps" | "movapd" | "movsd" | "movss")
            && !operands.contains('[')
            && operands
                .split(',')
                .all(|o| o.starts_with('r') || o.starts_with('e') || o.starts_with("xmm"))
    };
    body.iter()
        .enumerate()
        .filter(|(k, i)| {
            copy(i) && {
                let dst = i.1.split(',').next().unwrap_or("");
                body.get(k + 1)
                    .is_none_or(|(_, next)| next.split(',').next() != Some(dst))
            }
        })
        .count()
}

#[test]
fn values_carried_around_a_loop_stay_in_one_register() {
    // The loop's next value takes the register of the value it replaces
    // although that one is read again after the loop (a sum returned, the
    // partition's boundary): intervals have no holes, so the allocator
    // lends the register where the old value is dead. No copies remain in
    // these loops, and the conditional exchange of the partition updates
    // the boundary in place.
    let lib = common::collections();
    let jit = Jit::new(&lib);
    for symbol in [
        "sum$i64",
        "sum$f64",
        "dot$f64",
        "quicksort$i64",
        "binary_search$i64",
    ] {
        let (body, listing) = innermost_loop(&jit, symbol);
        assert_eq!(
            register_copies(&body),
            0,
            "{symbol}: a register copy in the loop:\n{listing}"
        );
    }
    let (body, listing) = innermost_loop(&jit, "quicksort$i64");
    assert_eq!(
        body.iter().filter(|(op, _)| op == "jmp").count(),
        0,
        "the partition loop jumps around its exchange:\n{listing}"
    );
}

#[test]
fn every_backward_branch_lands_on_a_sixteen_byte_boundary() {
    // Loop tops are padded to 16 bytes from the function's start (which is
    // 16-byte aligned), so each backward branch's target is aligned.
    let lib = common::collections();
    let jit = Jit::new(&lib);
    for symbol in [
        "sum$f64",
        "sum$i64",
        "insertion_sort$i64",
        "quicksort$i64",
        "binary_search$i64",
    ] {
        let listing = jit.listing_of(symbol);
        let mut backward = 0;
        for (at, op, operands) in instructions(&listing) {
            if let Some(target) = branch_target(&op, &operands).filter(|&t| t <= at) {
                backward += 1;
                assert_eq!(target % 16, 0, "{symbol}: {op} {operands}\n{listing}");
            }
        }
        assert!(backward > 0, "{symbol} has no loop:\n{listing}");
    }
}

/// Narrow results whose upper bits are left as the 64-bit operation left
/// them, read by every kind of operation that needs them extended, and
/// carried through block parameters, selects and bitwise operations.
const RAW_NARROW: &str = "
fn id<T: int>(%x: T) -> T {
entry:
    ret %x
}

fn consumers<T: int>(%a: T, %b: T, %p: ptr<T>) -> i64 {
entry:
    %one = const T 1
    %sum = add T %a, %b
    %diff = sub T %a, %b
    %prod = mul T %a, %b
    %shifted = shl T %a, %one
    %negated = neg T %a
    %mixed = xor T %sum, %prod
    %less = cmp lt T %sum, %diff
    %pick = select T %less, %sum, %diff
    store T %mixed, %p
    %right = shr T %shifted, %one
    %wide = cast T %negated to i64
    %back = call id<T>(%prod)
    %backw = cast T %back to i64
    %rw = cast T %right to i64
    %pw = cast T %pick to i64
    %lw = cast bool %less to i64
    %zero = const T 0
    %nz = cmp ne T %diff, %zero
    cond_br %nz, divide, done(%wide)
divide:
    %q = div T %sum, %diff
    %qw = cast T %q to i64
    br done(%qw)
done(%d: i64):
    %t1 = add i64 %wide, %backw
    %t2 = mul i64 %t1, %rw
    %t3 = xor i64 %t2, %pw
    %t4 = add i64 %t3, %lw
    %t5 = sub i64 %t4, %d
    ret %t5
}

fn count<T: int>(%a: T, %n: i64) -> T {
entry:
    %zero = const i64 0
    %one = const i64 1
    br loop(%zero, %a)
loop(%i: i64, %x: T):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %three = const T 3
    %y = mul T %x, %three
    %z = add T %y, %a
    %i2 = add i64 %i, %one
    br loop(%i2, %z)
done:
    ret %x
}

fn upto<T: int>(%a: T, %limit: T) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    br loop(%zero, %a)
loop(%k: i64, %x: T):
    %small = cmp lt T %x, %limit
    cond_br %small, body, done
body:
    %step = const T 7
    %x2 = add T %x, %step
    %k2 = add i64 %k, %one
    %cap = const i64 100
    %go = cmp lt i64 %k2, %cap
    cond_br %go, latch, done
latch:
    br loop(%k2, %x2)
done:
    ret %k
}
";

#[test]
fn narrow_results_are_extended_where_their_upper_bits_are_read() {
    let lib = library(RAW_NARROW);
    let jit = Jit::new(&lib);
    let oracle = Oracle::new(&lib);
    let mut rng = common::Rng(0x0A77_0B17);
    for (ty, bits) in [
        ("i8", 8),
        ("u8", 8),
        ("i16", 16),
        ("u16", 16),
        ("i32", 32),
        ("u32", 32),
    ] {
        let edges: Vec<u64> = if ty.starts_with('i') {
            let min = (-1i64 << (bits - 1)) as u64;
            vec![min, min + 1, !min, !min - 1, 0, 1, u64::MAX]
        } else {
            let max = (1u64 << bits) - 1;
            vec![0, 1, max, max - 1, max / 2, max / 2 + 1]
        };
        let mut values = edges.clone();
        values.extend((0..6).map(|_| {
            let r = rng.next();
            if ty.starts_with('i') {
                ((r << (64 - bits)) as i64 >> (64 - bits)) as u64
            } else {
                r & ((1u64 << bits) - 1)
            }
        }));
        let v = |bits_: u64| match ty {
            "i8" => Value::I8(bits_ as i8),
            "u8" => Value::U8(bits_ as u8),
            "i16" => Value::I16(bits_ as i16),
            "u16" => Value::U16(bits_ as u16),
            "i32" => Value::I32(bits_ as i32),
            _ => Value::U32(bits_ as u32),
        };
        for &a in &values {
            for &b in &values {
                let (mut cell_jit, mut cell_interp) = ([0u64; 1], [0u64; 1]);
                let symbol = format!("consumers${ty}");
                let compiled = jit.call(&symbol, &[v(a), v(b), common::ptr(&mut cell_jit)]);
                let interpreted =
                    oracle.call(&symbol, &[v(a), v(b), common::ptr(&mut cell_interp)]);
                assert_eq!(compiled, interpreted, "{symbol}({a:#x}, {b:#x})");
                assert_eq!(cell_jit, cell_interp, "{symbol}({a:#x}, {b:#x}) stores");
            }
            for n in [0i64, 1, 2, 5] {
                let symbol = format!("count${ty}");
                let args = [v(a), Value::I64(n)];
                assert_eq!(
                    jit.call(&symbol, &args),
                    oracle.call(&symbol, &args),
                    "{symbol}({a:#x}, {n})"
                );
            }
            let symbol = format!("upto${ty}");
            let args = [v(a), v(values[2])];
            assert_eq!(
                jit.call(&symbol, &args),
                oracle.call(&symbol, &args),
                "{symbol}({a:#x})"
            );
        }
    }
}

#[test]
fn narrow_arithmetic_in_a_loop_is_not_extended_there() {
    // sum$i32 and dot$i32 extend their total once, at the return, not
    // after every addition and multiplication of their loops.
    let lib = common::collections();
    let jit = Jit::new(&lib);
    for symbol in ["sum$i32", "dot$i32", "sum$u16"] {
        let (body, listing) = innermost_loop(&jit, symbol);
        let extensions = body
            .iter()
            .filter(|(op, operands)| {
                let same = operands.split_once(',').is_some_and(|(a, b)| a == b);
                !operands.contains('[')
                    && (op.starts_with("movs") || op.starts_with("movz") || (op == "mov" && same))
            })
            .count();
        assert_eq!(
            extensions, 0,
            "{symbol}: an extension in the loop:\n{listing}"
        );
    }
}

#[test]
fn block_arguments_of_zero_are_zeroed_with_xor() {
    // A loop's counter and accumulator start at 0 through the parallel
    // moves of the entry's branch, where the flags are dead: xor, not mov.
    let lib = common::collections();
    let jit = Jit::new(&lib);
    for symbol in ["sum$i64", "quicksort$i64", "binary_search$i64"] {
        let listing = jit.listing_of(symbol);
        let ops = instructions(&listing);
        assert!(
            !ops.iter()
                .any(|(_, op, operands)| op == "mov" && operands.ends_with(",0")),
            "{symbol}: zero moved in:\n{listing}"
        );
        assert!(
            ops.iter().any(|(_, op, operands)| {
                op == "xor" && operands.split_once(',').is_some_and(|(a, b)| a == b)
            }),
            "{symbol}: no zeroing idiom:\n{listing}"
        );
    }
}

/// Loops where the next value could share the old one's register only if
/// the old one were dead: it is still read after the next one is defined,
/// in the same block or after the loop.
const CARRIED: &str = "
fn still_read(%n: i64) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    %two = const i64 2
    br head(%zero, %one)
head(%i: i64, %acc: i64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %next = add i64 %acc, %i
    %old = mul i64 %acc, %two
    %mixed = xor i64 %next, %old
    %i2 = add i64 %i, %one
    br head(%i2, %mixed)
done:
    %r = sub i64 %acc, %i
    ret %r
}

fn read_at_the_branch(%n: i64) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    br head(%zero, %one)
head(%i: i64, %acc: i64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %three = const i64 3
    %next = mul i64 %acc, %three
    %small = cmp lt i64 %acc, %n
    %i2 = add i64 %i, %one
    cond_br %small, head(%i2, %next), done
done:
    ret %acc
}

fn read_in_a_later_block(%n: i64) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    %two = const i64 2
    br head(%zero, %one, %zero)
head(%i: i64, %acc: i64, %total: i64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %next = add i64 %acc, %i
    br later
later:
    %old = mul i64 %acc, %two
    %t2 = add i64 %total, %old
    %i2 = add i64 %i, %one
    br head(%i2, %next, %t2)
done:
    %r = add i64 %total, %acc
    ret %r
}

fn swapped(%n: i64) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    %seven = const i64 7
    br head(%zero, %one, %seven)
head(%i: i64, %a: i64, %b: i64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %a2 = add i64 %b, %i
    %b2 = sub i64 %a, %i
    %i2 = add i64 %i, %one
    br head(%i2, %a2, %b2)
done:
    %r = mul i64 %a, %b
    %s = add i64 %r, %b
    ret %s
}

fn floats(%n: i64) -> f64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    %half = const f64 0.5
    %start = const f64 1.25
    br head(%zero, %start)
head(%i: i64, %acc: f64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %x = cast i64 %i to f64
    %next = add f64 %acc, %x
    %scaled = mul f64 %next, %half
    %big = cmp gt f64 %acc, %scaled
    %pick = select f64 %big, %acc, %scaled
    %i2 = add i64 %i, %one
    br head(%i2, %pick)
done:
    %r = sub f64 %acc, %start
    ret %r
}
";

#[test]
fn carried_values_still_read_keep_their_own_register() {
    let lib = library(CARRIED);
    let jit = Jit::new(&lib);
    let oracle = Oracle::new(&lib);
    for symbol in [
        "still_read",
        "read_at_the_branch",
        "read_in_a_later_block",
        "swapped",
        "floats",
    ] {
        for n in [0i64, 1, 2, 3, 10, 37] {
            let args = [Value::I64(n)];
            assert_eq!(
                jit.call(symbol, &args),
                oracle.call(symbol, &args),
                "{symbol}({n})"
            );
        }
    }
}

const TRAPS: &str = "
fn divide(%a: i64, %b: i64) -> i64 {
entry:
    %q = div i64 %a, %b
    ret %q
}

fn remainder(%a: i8, %b: i8) -> i8 {
entry:
    %r = rem i8 %a, %b
    ret %r
}

fn check(%x: i32) -> i32 {
entry:
    %zero = const i32 0
    %neg = cmp lt i32 %x, %zero
    cond_br %neg, bad, good
bad:
    trap 42
good:
    ret %x
}

fn deref(%p: ptr<i64>, %i: i64) -> i64 {
entry:
    %v = load i64 %p[%i]
    ret %v
}

fn nested(%a: i64, %b: i64) -> i64 {
entry:
    %one = const i64 1
    %q = call divide(%a, %b)
    %r = add i64 %q, %one
    ret %r
}
";

#[test]
fn traps_come_back_as_the_interpreters_trap_kinds() {
    let lib = library(TRAPS);
    let jit = Jit::new(&lib);
    let oracle = Oracle::new(&lib);
    let mut x = [5i64, 6, 7];
    let p = Value::Ptr(x.as_mut_ptr() as usize as u64);
    let cases: Vec<(&str, Vec<Value>, Result<Value, TrapKind>)> = vec![
        (
            "divide",
            vec![Value::I64(7), Value::I64(0)],
            Err(TrapKind::DivideByZero),
        ),
        (
            "divide",
            vec![Value::I64(i64::MIN), Value::I64(-1)],
            Ok(Value::I64(i64::MIN)),
        ),
        (
            "divide",
            vec![Value::I64(-7), Value::I64(2)],
            Ok(Value::I64(-3)),
        ),
        (
            "remainder",
            vec![Value::I8(i8::MIN), Value::I8(-1)],
            Ok(Value::I8(0)),
        ),
        (
            "remainder",
            vec![Value::I8(-7), Value::I8(0)],
            Err(TrapKind::DivideByZero),
        ),
        ("check", vec![Value::I32(-1)], Err(TrapKind::Explicit(42))),
        ("check", vec![Value::I32(3)], Ok(Value::I32(3))),
        (
            "deref",
            vec![Value::Ptr(0), Value::I64(0)],
            Err(TrapKind::NullPointer),
        ),
        ("deref", vec![p, Value::I64(2)], Ok(Value::I64(7))),
        // base + index * 8 wrapping to zero is a null access too.
        (
            "deref",
            vec![Value::Ptr(16), Value::I64(-2)],
            Err(TrapKind::NullPointer),
        ),
        (
            "nested",
            vec![Value::I64(1), Value::I64(0)],
            Err(TrapKind::DivideByZero),
        ),
        (
            "nested",
            vec![Value::I64(9), Value::I64(3)],
            Ok(Value::I64(4)),
        ),
    ];
    for (symbol, args, expected) in cases {
        let want = expected.map(|v| Some((std::mem::discriminant(&v), v.to_bits())));
        assert_eq!(
            oracle.call(symbol, &args),
            want,
            "interpreter, {symbol}{args:?}"
        );
        // Twice: a trap leaves the runtime ready for the next call.
        assert_eq!(jit.call(symbol, &args), want, "compiled, {symbol}{args:?}");
        assert_eq!(
            jit.call(symbol, &args),
            want,
            "compiled again, {symbol}{args:?}"
        );
    }
}

const NARROW: &str = "
fn widen(%a: i8, %b: u16, %c: bool, %d: i32, %e: u8) -> i64 {
entry:
    %a64 = cast i8 %a to i64
    %b64 = cast u16 %b to i64
    %c64 = cast bool %c to i64
    %d64 = cast i32 %d to i64
    %e64 = cast u8 %e to i64
    %s1 = add i64 %a64, %b64
    %s2 = add i64 %s1, %c64
    %s3 = add i64 %s2, %d64
    %s4 = add i64 %s3, %e64
    ret %s4
}

fn narrow(%x: i64) -> i16 {
entry:
    %n = cast i64 %x to i16
    ret %n
}
";

#[test]
fn narrow_arguments_are_extended_whatever_their_upper_bits() {
    let lib = library(NARROW);
    let jit = Jit::new(&lib);
    let (entry, _) = jit.entry("widen");
    // Upper bits set to garbage, as System V allows a caller to leave them.
    let ints = [
        0xdead_beef_0000_00ff, // i8 -1
        0x1234_5678_9abc_fffe, // u16 65534
        0xffff_ffff_ffff_ff01, // bool true (bit 0)
        0x7777_7777_8000_0000, // i32 MIN
        0x0101_0101_0101_0180, // u8 128
        0,
    ];
    // SAFETY: `widen` reads five integer registers and touches no memory.
    let out = unsafe {
        jit.machine
            .runtime
            .call_raw(entry as usize as *const u8, &ints, &[0; 8])
    }
    .expect("no trap");
    assert_eq!(out[0] as i64, -1 + 65534 + 1 + i64::from(i32::MIN) + 128);
    // A narrow result is returned canonical (sign-extended).
    assert_eq!(
        jit.call("narrow", &[Value::I64(0x1_8000)]),
        Ok(Some((
            std::mem::discriminant(&Value::I16(0)),
            (-32768i64) as u64
        )))
    );
}

/// A function keeping many values alive across a call, so callee-saved
/// registers and spill slots are in use, calling `probe`.
fn pressure(live: usize) -> String {
    let mut s = String::from("import fn probe() -> i64\n\nfn pressure(%x: i64) -> i64 {\nentry:\n");
    for k in 0..live {
        s.push_str(&format!(
            "    %c{k} = const i64 {}\n    %v{k} = mul i64 %x, %c{k}\n",
            k + 3
        ));
    }
    s.push_str("    %p = call native probe()\n    %acc0 = add i64 %p, %x\n");
    for k in 0..live {
        s.push_str(&format!("    %acc{} = add i64 %acc{k}, %v{k}\n", k + 1));
    }
    s.push_str(&format!("    ret %acc{live}\n}}\n"));
    s
}

#[test]
fn calls_see_an_aligned_stack_and_callee_saved_registers_survive() {
    let machine = Machine::new();
    // probe: returns rsp mod 16 at its entry (8 when the caller aligned the stack).
    let (_probe_code, probe) = stub(&machine.memory, |a| {
        a.mov(rax, rsp).expect("mov");
        a.and(rax, 15).expect("and");
        a.ret().expect("ret");
    });
    for live in 0..14 {
        let lib = library(&pressure(live));
        let inst = instantiate(&lib, &TemplateName::free("pressure"), &[]).expect("instantiates");
        let mut resolver = Fixed(vec![("probe".to_owned(), CallTarget::Direct(probe))]);
        let f = machine.compile(&inst.function, &inst.reg_types, &mut resolver);
        // A caller that fills every callee-saved register, calls, and
        // returns the result xor a mask of the registers that changed.
        let (_guard_code, guard) = stub(&machine.memory, |a| {
            let regs = [rbx, rbp, r12, r13, r14, r15];
            for &r in &regs {
                a.push(r).expect("push");
            }
            a.sub(rsp, 8).expect("align");
            for (k, &r) in regs.iter().enumerate() {
                a.mov(r, 0x5a5a_0000_0000_0000u64 + k as u64).expect("mov");
            }
            a.mov(rax, f.address()).expect("mov");
            a.call(rax).expect("call");
            a.mov(rcx, 0u64).expect("mov");
            for (k, &r) in regs.iter().enumerate() {
                a.mov(rdx, 0x5a5a_0000_0000_0000u64 + k as u64)
                    .expect("mov");
                a.cmp(r, rdx).expect("cmp");
                let mut same = a.create_label();
                a.je(same).expect("je");
                a.bts(rcx, (k + 40) as u32).expect("bts");
                a.set_label(&mut same).expect("label");
                a.nop().expect("nop");
            }
            a.xor(rax, rcx).expect("xor");
            a.add(rsp, 8).expect("unalign");
            for &r in regs.iter().rev() {
                a.pop(r).expect("pop");
            }
            a.ret().expect("ret");
        });
        let mut ints = [0u64; 6];
        ints[0] = 2;
        // SAFETY: `guard` takes one integer argument (passed on to
        // `pressure`) and preserves what the System V ABI requires.
        let [out, _] = unsafe {
            machine
                .runtime
                .call_raw(guard as usize as *const u8, &ints, &[0; 8])
        }
        .expect("no trap");
        let expected: u64 = 8 + 2 + (0..live as u64).map(|k| 2 * (k + 3)).sum::<u64>();
        assert_eq!(
            out >> 40,
            0,
            "live={live}: callee-saved registers changed: {:#x}",
            out >> 40
        );
        assert_eq!(
            out, expected,
            "live={live}: stack misaligned at the call or wrong result"
        );
    }
}

#[test]
fn calls_through_slots_follow_the_slot() {
    let lib = library(
        "
fn one() -> i64 {
entry:
    %v = const i64 1
    ret %v
}

fn two() -> i64 {
entry:
    %v = const i64 2
    ret %v
}

fn caller() -> i64 {
entry:
    %v = call one()
    %f = func_addr one
    %w = call_indirect %f() : fn() -> i64
    %s = add i64 %v, %w
    ret %s
}
",
    );
    let machine = Machine::new();
    let compile = |name: &str| {
        let inst = instantiate(&lib, &TemplateName::free(name), &[]).expect("instantiates");
        machine.compile(&inst.function, &inst.reg_types, &mut NoCallees)
    };
    let (one, two) = (compile("one"), compile("two"));
    let slot = Box::new(AtomicU64::new(one.address()));
    let inst = instantiate(&lib, &TemplateName::free("caller"), &[]).expect("instantiates");
    let mut resolver = Fixed(vec![(
        "one".to_owned(),
        CallTarget::Slot(slot.as_ref() as *const AtomicU64 as usize as u64),
    )]);
    let caller = machine.compile(&inst.function, &inst.reg_types, &mut resolver);
    let sig = inst.function.sig.clone();
    let i64_of = |v: i64| Ok(Some((std::mem::discriminant(&Value::I64(0)), v as u64)));
    assert_eq!(machine.call(caller.entry(), &sig, &[]), i64_of(2));
    // Patching the slot redirects both the call and the function address.
    slot.store(two.address(), Ordering::Release);
    assert_eq!(machine.call(caller.entry(), &sig, &[]), i64_of(4));
    // Direct calls, with a closure as the resolver.
    let mut asked = Vec::new();
    let mut direct = |c: &Callee| {
        asked.push(format!("{c:?}"));
        Ok(CallTarget::Direct(one.address()))
    };
    let caller = machine.compile(&inst.function, &inst.reg_types, &mut direct);
    // Once per distinct callee, although `one` is called and addressed.
    assert_eq!(
        asked,
        vec![format!("{:?}", Callee::Symbol("one".to_owned()))]
    );
    assert_eq!(machine.call(caller.entry(), &sig, &[]), i64_of(2));
}

#[test]
fn unresolved_callees_fail_compilation_with_the_name() {
    let lib = library(
        "
extern fn @elsewhere(i64) -> i64

fn caller(%x: i64) -> i64 {
entry:
    %v = call @elsewhere(%x)
    ret %v
}
",
    );
    let machine = Machine::new();
    let inst = instantiate(&lib, &TemplateName::free("caller"), &[]).expect("instantiates");
    let err = machine
        .backend
        .compile(
            &machine.memory,
            &inst.function,
            &inst.reg_types,
            &mut NoCallees,
        )
        .expect_err("unresolved");
    let text = err.to_string();
    assert!(
        text.contains("`caller`") && text.contains("`elsewhere`"),
        "{text}"
    );
}

#[test]
fn a_batch_links_its_functions_to_each_other() {
    let lib = common::collections();
    let insts = instantiate_all(
        &lib,
        &TemplateName::free("sort"),
        &[Type::Int(jit::ir::IntType::I32)],
    )
    .expect("instantiates");
    let names: Vec<&str> = insts.iter().map(|i| i.symbol.as_str()).collect();
    assert!(
        names.contains(&"quicksort$i32") && names.contains(&"insertion_sort$i32"),
        "{names:?}"
    );
    let machine = Machine::new();
    let refs: Vec<_> = insts.iter().collect();
    let batch = machine
        .backend
        .compile_batch(&machine.memory, &refs, &mut NoCallees)
        .expect("compiles without a resolver: every callee is in the batch");
    assert_eq!(batch.functions().count(), insts.len());
    let sort = batch.function("sort$i32").expect("sort");
    let mut xs: Vec<i32> = (0..100).map(|k| (k * 7919) % 101 - 50).collect();
    let mut expected = xs.clone();
    expected.sort_unstable();
    let args = [Value::Ptr(xs.as_mut_ptr() as usize as u64), Value::I64(100)];
    assert_eq!(
        machine.call(sort.entry(), &insts[0].function.sig, &args),
        Ok(None)
    );
    assert_eq!(xs, expected);
    for (_, f) in batch.functions() {
        assert_eq!(f.bytes().get(..4), Some(&ENDBR64[..]));
    }
    assert_eq!(
        machine
            .backend
            .compile_batch(
                &machine.memory,
                &[refs.as_slice(), &refs[..1]].concat(),
                &mut NoCallees
            )
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err("the batch compiles `sort$i32` twice".to_owned())
    );
}

#[test]
fn an_unverified_branch_to_a_missing_block_is_refused() {
    let lib = library("fn f() -> i64 {\nentry:\n    %v = const i64 1\n    ret %v\n}\n");
    let inst = instantiate(&lib, &TemplateName::free("f"), &[]).expect("instantiates");
    let mut broken = (*inst.function).clone();
    broken.blocks[0].term = jit::ir::Terminator::Br(jit::ir::BlockCall {
        block: jit::ir::BlockId(1),
        args: Vec::new(),
    });
    let machine = Machine::new();
    let err = machine
        .backend
        .compile(&machine.memory, &broken, &inst.reg_types, &mut NoCallees)
        .expect_err("refused");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

const PERMUTATIONS: &str = "
fn rotate(%a: i64, %b: i64, %c: i64, %x: f64, %y: f64, %n: i64) -> i64 {
entry:
    %zero = const i64 0
    %one = const i64 1
    br loop(%zero, %a, %b, %c, %x, %y)
loop(%i: i64, %p: i64, %q: i64, %r: i64, %u: f64, %v: f64):
    %more = cmp lt i64 %i, %n
    cond_br %more, body, done
body:
    %next = add i64 %i, %one
    br loop(%next, %q, %r, %p, %v, %u)
done:
    %ten = const i64 10
    %hundred = const i64 100
    %p10 = mul i64 %p, %hundred
    %q10 = mul i64 %q, %ten
    %s = add i64 %p10, %q10
    %t = add i64 %s, %r
    %ui = cast f64 %u to i64
    %vi = cast f64 %v to i64
    %w = mul i64 %ui, %hundred
    %w2 = add i64 %w, %vi
    %big = const i64 1000
    %tb = mul i64 %t, %big
    %all = add i64 %tb, %w2
    ret %all
}

fn digits(%a: i64, %b: i64, %c: i64) -> i64 {
entry:
    %ten = const i64 10
    %hundred = const i64 100
    %a1 = mul i64 %a, %hundred
    %b1 = mul i64 %b, %ten
    %s = add i64 %a1, %b1
    %t = add i64 %s, %c
    ret %t
}

fn swapped_call(%a: i64, %b: i64, %c: i64) -> i64 {
entry:
    %r = call digits(%c, %a, %b)
    %s = call digits(%b, %c, %a)
    %thousand = const i64 1000
    %r1 = mul i64 %r, %thousand
    %t = add i64 %r1, %s
    ret %t
}
";

#[test]
fn permuted_block_and_call_arguments_move_in_parallel() {
    let lib = library(PERMUTATIONS);
    let jit = Jit::new(&lib);
    let oracle = Oracle::new(&lib);
    for n in 0..7 {
        let args = [
            Value::I64(1),
            Value::I64(2),
            Value::I64(3),
            Value::F64(4.0),
            Value::F64(5.0),
            Value::I64(n),
        ];
        let want = oracle.call("rotate", &args);
        assert_eq!(jit.call("rotate", &args), want, "n={n}");
    }
    // After three rotations the integers are back in place, the floats swapped (an odd number of times).
    assert_eq!(
        jit.call(
            "rotate",
            &[
                Value::I64(1),
                Value::I64(2),
                Value::I64(3),
                Value::F64(4.0),
                Value::F64(5.0),
                Value::I64(3)
            ]
        ),
        Ok(Some((std::mem::discriminant(&Value::I64(0)), 123_504))),
    );
    let args = [Value::I64(1), Value::I64(2), Value::I64(3)];
    assert_eq!(
        jit.call("swapped_call", &args),
        oracle.call("swapped_call", &args)
    );
    assert_eq!(
        jit.call("swapped_call", &args),
        Ok(Some((std::mem::discriminant(&Value::I64(0)), 312_231))),
    );
}

#[test]
fn compiled_code_and_the_compiler_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<jit::backend::Backend>();
    shared::<jit::backend::TrapRuntime>();
    shared::<jit::backend::CompiledFunction>();
    shared::<jit::backend::CompiledBatch>();
    shared::<jit::backend::PreparedFunction>();
    // And the code runs on another thread than the one that compiled it,
    // with traps caught there.
    let lib = library(TRAPS);
    let machine = Machine::new();
    let inst = instantiate(&lib, &TemplateName::free("divide"), &[]).expect("instantiates");
    let f = machine.compile(&inst.function, &inst.reg_types, &mut NoCallees);
    let sig = inst.function.sig.clone();
    std::thread::scope(|s| {
        for k in 0..4i64 {
            let (f, sig, machine) = (&f, &sig, &machine);
            s.spawn(move || {
                let want = Ok(Some((
                    std::mem::discriminant(&Value::I64(0)),
                    (12 / (k + 1)) as u64,
                )));
                assert_eq!(
                    machine.call(f.entry(), sig, &[Value::I64(12), Value::I64(k + 1)]),
                    want
                );
                assert_eq!(
                    machine.call(f.entry(), sig, &[Value::I64(12), Value::I64(0)]),
                    Err(TrapKind::DivideByZero)
                );
            });
        }
    });
}

#[test]
fn left_shifts_by_constants_agree_with_the_interpreter() {
    // By 1 to 3 the backend computes an address (lea) instead of
    // shifting; around them, and for counts the width masks, it shifts.
    let counts = [0u32, 1, 2, 3, 4, 7, 9, 33, 65];
    let mut text = String::new();
    for t in jit::ir::IntType::ALL {
        let ty = Type::Int(t);
        for c in counts {
            // The operand dies at the shift (its register may be the
            // result's) or stays live after it.
            text.push_str(&format!(
                "fn shl_{ty}_{c}(%a: {ty}) -> {ty} {{\nentry:\n    %c = const {ty} {}\n    \
                 %r = shl {ty} %a, %c\n    ret %r\n}}\n\
                 fn shl_add_{ty}_{c}(%a: {ty}) -> {ty} {{\nentry:\n    %c = const {ty} {}\n    \
                 %r = shl {ty} %a, %c\n    %s = xor {ty} %r, %a\n    ret %s\n}}\n",
                c, c,
            ));
        }
    }
    let lib = library(&text);
    let jit = Jit::new(&lib);
    let oracle = Oracle::new(&lib);
    for (symbol, form) in [
        ("shl_add_i64_1", "lea"),
        ("shl_add_i64_3", "lea"),
        ("shl_add_i64_4", "shl"),
    ] {
        let listing = disassemble(&jit.code_of(symbol), 0, Syntax::Intel);
        assert!(listing.contains(form), "{symbol}:\n{listing}");
    }
    for t in jit::ir::IntType::ALL {
        let ty = Type::Int(t);
        for bits in [1u64, 0x81, 0x5555_5555_5555_5555, u64::MAX, 1 << 63, 0x7F] {
            let a = Value::from_bits(&ty, t.canonical(bits));
            for c in counts {
                for symbol in [format!("shl_{ty}_{c}"), format!("shl_add_{ty}_{c}")] {
                    assert_eq!(
                        jit.call(&symbol, &[a]),
                        oracle.call(&symbol, &[a]),
                        "{symbol}({a:?})"
                    );
                }
            }
        }
    }
}
