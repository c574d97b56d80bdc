//! Lazy binding: imports bound at their first call through the resolver
//! trampoline, with every argument register intact.

// These tests call the code the loader placed and read memory it mapped.
#![allow(unsafe_code)]

mod common;

use std::sync::{Arc, Barrier};

use common::{Code, Spec, TestJit, call_i32, forwards, writable_executable_mappings};
use loader::{Binding, ImportSource, Loader, LoaderConfig};

fn lazy_loader(instantiator: impl loader::Instantiator + 'static) -> Loader {
    let loader = Loader::new(LoaderConfig {
        binding: Binding::Lazy,
        ..LoaderConfig::default()
    })
    .unwrap();
    loader.set_instantiator(instantiator);
    loader
}

#[test]
fn an_import_is_instantiated_at_its_first_call_and_not_before() {
    let jit = Arc::new(TestJit::default());
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("five", forwards("const$5", Code::call_plt))
        .function("six", forwards("const$6", Code::call_got))
        .write(dir.path(), "m.smf");
    let loader = lazy_loader(Arc::clone(&jit));
    let module = loader.load(&path).unwrap();
    assert_eq!(jit.total.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(
        module
            .imports()
            .iter()
            .all(|i| i.source == ImportSource::Lazy)
    );
    assert_eq!(
        module.lazy_imports().collect::<Vec<_>>(),
        [("const$5", None), ("const$6", None)]
    );

    let five = loader.resolve("five").unwrap();
    assert_eq!(call_i32(five), 5);
    assert_eq!(jit.count("const$5"), 1);
    assert_eq!(jit.count("const$6"), 0, "only the called import is bound");
    assert_eq!(call_i32(five), 5);
    assert_eq!(call_i32(loader.resolve("six").unwrap()), 6);
    assert_eq!(jit.count("const$5"), 1);
    assert_eq!(jit.count("const$6"), 1);
    let bound: Vec<_> = module.lazy_imports().map(|(_, a)| a).collect();
    assert_eq!(bound[0], Some(loader.resolve("const$5").unwrap()));
    assert_eq!(bound[1], Some(loader.resolve("const$6").unwrap()));
    assert_eq!(writable_executable_mappings(), Vec::<String>::new());
}

/// `mix(a..f: i64, x0..x7: f64) -> f64`: the integers weighted 1..6, then
/// each double weighted 10..17 added in order.
fn mix_code() -> Code {
    use iced_x86::code_asm::*;
    Code::new().asm(|a| {
        a.mov(rax, rdi)?;
        for (register, weight) in [(rsi, 2), (rdx, 3), (rcx, 4), (r8, 5), (r9, 6)] {
            a.imul_3(r10, register, weight)?;
            a.add(rax, r10)?;
        }
        a.cvtsi2sd(xmm8, rax)?;
        for (i, register) in [xmm0, xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7]
            .into_iter()
            .enumerate()
        {
            a.mov(r11d, 10 + i as u32)?;
            a.cvtsi2sd(xmm9, r11)?;
            a.mulsd(xmm9, register)?;
            a.addsd(xmm8, xmm9)?;
        }
        a.movapd(xmm0, xmm8)?;
        a.ret()
    })
}

fn mix_reference(ints: [i64; 6], doubles: [f64; 8]) -> f64 {
    let mut sum = 0i64;
    for (i, v) in ints.iter().enumerate() {
        sum += v * (i as i64 + 1);
    }
    let mut acc = sum as f64;
    for (i, x) in doubles.iter().enumerate() {
        acc += (10 + i) as f64 * x;
    }
    acc
}

type MixFn =
    extern "C" fn(i64, i64, i64, i64, i64, i64, f64, f64, f64, f64, f64, f64, f64, f64) -> f64;

/// Calls `call_mix` (which forwards to a lazily bound mix) three times and
/// compares with the reference bit for bit.
fn check_mix(loader: &Loader) {
    let f = loader.resolve("call_mix").unwrap();
    // SAFETY: call_mix forwards its arguments to mix, of this type.
    let call_mix: MixFn = unsafe { std::mem::transmute(f.as_ptr()) };
    let ints = [1, -20, 300, -4_000, 50_000, -600_000];
    let doubles = [0.5, -1.25, 2.0e10, 3.75, -0.001, 1.0e-300, 7.5, -8.25];
    for round in 0..3 {
        let got = call_mix(
            ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], doubles[0], doubles[1],
            doubles[2], doubles[3], doubles[4], doubles[5], doubles[6], doubles[7],
        );
        assert_eq!(
            got.to_bits(),
            mix_reference(ints, doubles).to_bits(),
            "call {round}"
        );
    }
}

/// Instantiates `mix` after running code that overwrites every
/// caller-saved register (integer and vector) with garbage, so binding is
/// sure to disturb any argument register the trampoline fails to keep.
struct ClobberingJit;

impl loader::Instantiator for ClobberingJit {
    fn instantiate(
        &self,
        name: &str,
        ctx: &mut loader::ResolveContext<'_>,
    ) -> loader::Result<Option<loader::InstanceCode>> {
        use iced_x86::code_asm::*;
        if name != "mix" {
            return Ok(None);
        }
        let clobber = common::asm(|a| {
            for register in [rax, rcx, rdx, rsi, rdi, r8, r9, r10, r11] {
                a.mov(register, 0x5A5A_5A5A_5A5A_5A5Au64)?;
            }
            for register in [
                ymm0, ymm1, ymm2, ymm3, ymm4, ymm5, ymm6, ymm7, ymm8, ymm9, ymm10, ymm11, ymm12,
                ymm13, ymm14, ymm15,
            ] {
                a.vpcmpeqd(register, register, register)?;
            }
            a.vzeroupper()?;
            a.ret()
        });
        let clobber = ctx.memory().publish_function("clobber", &clobber)?;
        // SAFETY: `clobber` only writes caller-saved registers and returns.
        let run: extern "C" fn() = unsafe { std::mem::transmute(clobber.entry()) };
        if std::arch::is_x86_feature_detected!("avx2") {
            run();
        }
        let mix = ctx.memory().publish_function(name, &mix_code().bytes)?;
        Ok(Some(mix.into()))
    }
}

#[test]
fn every_argument_register_survives_a_binding_that_clobbers_them() {
    let dir = tempfile::tempdir().unwrap();
    let caller = Spec::new()
        .function("call_mix", forwards("mix", Code::call_plt))
        .write(dir.path(), "caller.smf");
    let loader = lazy_loader(ClobberingJit);
    loader.load(&caller).unwrap();
    check_mix(&loader);
}

#[test]
fn every_argument_register_survives_binding_to_a_module_loaded_later() {
    let jit = Arc::new(TestJit::default());
    let dir = tempfile::tempdir().unwrap();
    let caller = Spec::new()
        .function("call_mix", forwards("mix", Code::call_plt))
        .write(dir.path(), "caller.smf");
    let callee = Spec::new()
        .function("mix", mix_code())
        .write(dir.path(), "mix.smf");
    let loader = lazy_loader(Arc::clone(&jit));
    // The caller loads first: `mix` exists nowhere yet, which only lazy
    // binding allows.
    let caller_module = loader.load(&caller).unwrap();
    let callee_module = loader.load_with_binding(&callee, Binding::Now).unwrap();
    check_mix(&loader);
    assert_eq!(
        caller_module.lazy_imports().next(),
        Some(("mix", callee_module.export("mix")))
    );
}

#[test]
fn eight_threads_making_the_first_call_at_once_bind_once() {
    let jit = Arc::new(TestJit::with_delay(20));
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("seventy_seven", forwards("const$77", Code::call_got))
        .write(dir.path(), "m.smf");
    let loader = lazy_loader(Arc::clone(&jit));
    loader.load(&path).unwrap();
    let f = loader.resolve("seventy_seven").unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                call_i32(f)
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), 77);
    }
    assert_eq!(jit.count("const$77"), 1);
}

#[test]
fn imports_whose_address_is_taken_are_bound_at_load() {
    let jit = Arc::new(TestJit::default());
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("call_it", forwards("const$9", Code::call_plt))
        .function("address_of_it", Code::new().movabs_rax("const$9", 0).ret())
        .write(dir.path(), "m.smf");
    let loader = lazy_loader(Arc::clone(&jit));
    let module = loader.load(&path).unwrap();
    assert_eq!(jit.count("const$9"), 1);
    assert_eq!(module.imports()[0].source, ImportSource::Instance);
    assert_eq!(module.lazy_imports().count(), 0);
    assert_eq!(call_i32(loader.resolve("call_it").unwrap()), 9);
    assert_eq!(
        common::call_u64(loader.resolve("address_of_it").unwrap()),
        loader.resolve("const$9").unwrap().get() as u64
    );
}
