//! Load the collections fixture and call generic functions no module
//! precompiled: `sum$f64` and `dot$f32` are instantiated and compiled the
//! first time they are resolved; `sort$i64` was compiled ahead of time.
//!
//! `cargo run --example call_from_rust`

// Calling a JIT-compiled function through its pointer is unsafe: the
// signature is the caller's promise.
#![allow(unsafe_code)]

use smfjit::loader::{Loader, LoaderConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let loader = Loader::with_jit(LoaderConfig::default())?;
    loader.load("tests/fixtures/collections.smf")?;

    let sum = loader.resolve("sum$f64")?;
    // SAFETY: the loader compiled `sum$f64` for the template signature
    // `fn(ptr<f64>, i64) -> f64`, which is this C function type, and keeps
    // the code mapped while `loader` lives.
    let sum: extern "C" fn(*const f64, i64) -> f64 = unsafe { std::mem::transmute(sum.as_ptr()) };
    let xs = [1.5, 2.25, 3.0];
    println!("sum$f64({xs:?}) = {}", sum(xs.as_ptr(), 3));

    let dot = loader.resolve("dot$f32")?;
    // SAFETY: as above, for `fn(ptr<f32>, ptr<f32>, i64) -> f32`.
    let dot: extern "C" fn(*const f32, *const f32, i64) -> f32 =
        unsafe { std::mem::transmute(dot.as_ptr()) };
    let (a, b) = ([1.0f32, 2.0, 3.0], [4.0f32, 5.0, 6.0]);
    println!("dot$f32({a:?}, {b:?}) = {}", dot(a.as_ptr(), b.as_ptr(), 3));

    let sort = loader.resolve("sort$i64")?;
    // SAFETY: as above, for `fn(ptr<i64>, i64)`; the buffer holds 5 elements.
    let sort: extern "C" fn(*mut i64, i64) = unsafe { std::mem::transmute(sort.as_ptr()) };
    let mut ys = [5i64, -3, 9, 0, 2];
    sort(ys.as_mut_ptr(), 5);
    println!("sort$i64 -> {ys:?}");

    let stats = loader.stats().instances;
    println!(
        "{} instantiations compiled on a miss, {} bytes of code",
        stats.instantiations, stats.code_bytes
    );
    Ok(())
}
