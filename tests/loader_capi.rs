//! The C interface (include/smfjit.h): a C program compiled with the
//! system `cc` against libsmfjit.so loads a module and calls its code.

mod common;

use common::{c_double, compile_c, run};

use smfjit::smf::{ModuleBuilder, RelocType, SectionType, SymbolDef, SymbolType, raw};

/// `int add3(int a, int b, int c)` and `double twice_cos(double x)`, which
/// calls libm's `cos` through a plt32 relocation.
fn module_bytes() -> Vec<u8> {
    let add3: &[u8] = &[
        0x8D, 0x04, 0x37, // lea eax, [rdi + rsi]
        0x01, 0xD0, // add eax, edx
        0xC3, // ret
    ];
    let twice_cos: &[u8] = &[
        0x48, 0x83, 0xEC, 0x08, // sub rsp, 8 (align the stack for the call)
        0xE8, 0, 0, 0, 0, // call cos (plt32 at offset 5 of the function)
        0xF2, 0x0F, 0x58, 0xC0, // addsd xmm0, xmm0
        0x48, 0x83, 0xC4, 0x08, // add rsp, 8
        0xC3, // ret
    ];
    let mut text = add3.to_vec();
    text.resize(16, 0xCC);
    text.extend_from_slice(twice_cos);
    let mut b = ModuleBuilder::new();
    let flags = raw::section_flags::READ | raw::section_flags::EXEC;
    let section = b
        .add_section(SectionType::Code, ".text", flags, 16, &text)
        .unwrap();
    b.add_symbol(SymbolDef::function("add3", section, 0, add3.len() as u64))
        .unwrap();
    b.add_symbol(SymbolDef::function(
        "twice_cos",
        section,
        16,
        twice_cos.len() as u64,
    ))
    .unwrap();
    let cos = b
        .add_symbol(SymbolDef::import("cos", SymbolType::Function))
        .unwrap();
    b.add_relocation(section, 16 + 5, cos, RelocType::Plt32, -4);
    b.build().unwrap()
}

#[test]
fn a_c_program_loads_a_module_and_calls_its_functions() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile_c("load_and_call", dir.path());
    let module = dir.path().join("m.smf");
    std::fs::write(&module, module_bytes()).unwrap();
    let stdout = run(&program, &module);
    let expected = format!(
        "load missing: -2 message\n\
         add3(1, 20, 300) = 321\n\
         twice_cos(0.5) = {}\n\
         resolve absent: NULL\n\
         last error: symbol 'no_such_symbol' is not defined by any loaded module\n\
         null loader: -1\n",
        c_double(2.0 * 0.5f64.cos())
    );
    assert_eq!(stdout, expected);
}
