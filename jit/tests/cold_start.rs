//! What a cold start costs in allocations: creating the trap runtime and
//! compiling, publishing and calling a first function. iced-x86 builds its
//! encoder op-code tables on first use (thousands of allocations, 2.5 M
//! instructions of a 4.1 M-instruction cold start); the backend encodes
//! with its own table so they are never built on this path, and the count
//! pins that. The binary holds this test alone: a table built by an
//! earlier test in the same process would hide a regression.

// The call into generated code is unsafe.
#![allow(unsafe_code)]

mod allocation_count;
mod common;

use allocation_count::allocations;
use execmem::{Config, ExecMemory};
use jit::backend::{Backend, NoCallees, TrapRuntime, encoder_fallbacks};
use jit::instantiate::instantiate_symbol;
use jit::interp::Value;

#[test]
fn a_first_compilation_does_not_build_iced_x86s_encoder_tables() {
    let lib = common::collections();
    let inst = instantiate_symbol(&lib, "sum$f64").expect("instantiates");
    let memory = ExecMemory::new(Config::default()).expect("executable memory");
    let ((runtime, code), count) = allocations(|| {
        let runtime = TrapRuntime::new(&memory).expect("trap runtime");
        let backend = Backend::new(runtime.options());
        let code = backend
            .compile(&memory, &inst.function, &inst.reg_types, &mut NoCallees)
            .expect("compiles");
        (runtime, code)
    });
    // About 60 allocations are the backend's own (register allocation,
    // the item list, the code, the batches); building the tables as well
    // made it over 9,000, so 200 leaves room for the backend to change and
    // still fails at once if anything builds them.
    assert!(count < 200, "{count} allocations");
    assert_eq!(encoder_fallbacks(), 0);
    let mut xs = [1.5f64, 2.25, 3.0];
    let args = [Value::Ptr(xs.as_mut_ptr() as usize as u64), Value::I64(3)];
    // SAFETY: `sum$f64` reads `n` doubles from `xs`, which holds them.
    let sum = unsafe { runtime.call(code.entry(), &inst.function.sig, &args) };
    assert_eq!(sum, Ok(Some(Value::F64(6.75))));
}
