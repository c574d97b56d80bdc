//! First checks of the backend on small functions.

mod backend_support;
mod common;

use backend_support::{Jit, interp};
use jit::interp::Value;

#[test]
fn sum_of_i64_matches_the_interpreter() {
    let lib = jit::library::collections().expect("library");
    let jit = Jit::new(&lib);
    let mut a: Vec<i64> = (1..=10).collect();
    let mut b = a.clone();
    let pa = Value::Ptr(a.as_mut_ptr() as usize as u64);
    let pb = Value::Ptr(b.as_mut_ptr() as usize as u64);
    let code = jit.code_of("sum$i64");
    eprintln!(
        "{}",
        jit::backend::disassemble(&code, 0, jit::backend::Syntax::Intel)
    );
    assert_eq!(
        jit.call("sum$i64", &[pa, Value::I64(10)]),
        interp(&lib, "sum$i64", &[pb, Value::I64(10)])
    );
    assert_eq!(
        jit.call("sum$i64", &[pa, Value::I64(10)]),
        Ok(Some((std::mem::discriminant(&Value::I64(0)), 55)))
    );
}
