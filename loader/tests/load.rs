//! Loading modules: every relocation type, overflow errors, data and bss,
//! native imports, symbol precedence and W^X.

// These tests call the code the loader placed and read memory it mapped.
#![allow(unsafe_code)]

mod common;

use common::{
    Code, DataSection, Spec, call_i32, call_u64, forwards, returns, writable_executable_mappings,
};
use iced_x86::code_asm::{dword_ptr, eax, ebx, qword_ptr, rax, rbx};
use loader::{Error, ImportSource, Loader, LoaderConfig};
use smf::{RelocType, SectionType};

fn loader() -> Loader {
    Loader::new(LoaderConfig::default()).unwrap()
}

fn data(kind: SectionType, name: &str, bytes: Vec<u8>, symbols: &[(&str, u64)]) -> DataSection {
    DataSection {
        kind,
        name: name.to_owned(),
        bss_size: 0,
        bytes,
        symbols: symbols.iter().map(|(n, o)| ((*n).to_owned(), *o)).collect(),
        fixups: Vec::new(),
    }
}

#[test]
fn plt32_and_pc32_calls_between_functions_of_one_module() {
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .local_function("seven", returns(7))
        .function(
            "caller",
            Code::new()
                // rbx is callee-saved; pushing it also aligns the stack.
                .asm(|a| a.push(rbx))
                .call_plt("seven")
                .asm(|a| a.mov(ebx, eax))
                .call_pc32("seven")
                .asm(|a| {
                    a.add(eax, ebx)?;
                    a.pop(rbx)
                })
                .ret(),
        )
        .write(dir.path(), "m.smf");
    let loader = loader();
    let module = loader.load(&path).unwrap();
    assert_eq!(module.stub_count(), 0);
    assert_eq!(call_i32(loader.resolve("caller").unwrap()), 14);
    assert!(
        loader.lookup_export("seven").is_none(),
        "local symbols are not exported"
    );
}

#[test]
fn abs64_and_pc32_reach_data_rodata_and_bss() {
    let dir = tempfile::tempdir().unwrap();
    let mut bss = data(SectionType::Bss, ".bss", Vec::new(), &[("zeros", 0)]);
    bss.bss_size = 64;
    let path = Spec::new()
        .data(data(
            SectionType::Data,
            ".data",
            0x1122_3344_5566_7788u64.to_le_bytes().to_vec(),
            &[("word", 0)],
        ))
        .data(data(
            SectionType::RoData,
            ".rodata",
            vec![0, 0, 0, 0, 0x2A, 0, 0, 0],
            &[("answer", 0)],
        ))
        .data(bss)
        .function(
            "word_abs",
            Code::new()
                .movabs_rax("word", 0)
                .asm(|a| a.mov(rax, qword_ptr(rax)))
                .ret(),
        )
        .function(
            "answer_rel",
            Code::new()
                .lea_rax("answer", 4)
                .asm(|a| a.mov(eax, dword_ptr(rax)))
                .ret(),
        )
        .function("zeros_addr", Code::new().movabs_rax("zeros", 16).ret())
        .write(dir.path(), "m.smf");
    let loader = loader();
    let module = loader.load(&path).unwrap();
    assert_eq!(
        call_u64(loader.resolve("word_abs").unwrap()),
        0x1122_3344_5566_7788
    );
    assert_eq!(call_i32(loader.resolve("answer_rel").unwrap()), 0x2A);
    let zeros = loader.resolve("zeros").unwrap().get();
    assert_eq!(
        call_u64(loader.resolve("zeros_addr").unwrap()),
        zeros as u64 + 16
    );
    assert!(module.contains(zeros));
    // Data is exported at its address and holds the file's bytes.
    let word = loader.resolve("word").unwrap();
    // SAFETY: `word` is the 8-byte .data symbol of a loaded module.
    let value = unsafe { std::ptr::read_unaligned(word.as_ptr().cast::<u64>()) };
    assert_eq!(value, 0x1122_3344_5566_7788);
}

#[test]
fn abs64_inside_data_points_at_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = data(SectionType::RoData, ".rodata", vec![0; 16], &[("table", 0)]);
    table.fixups.push(common::Fixup {
        offset: 8,
        symbol: "nine".to_owned(),
        kind: RelocType::Abs64,
        addend: 0,
    });
    let path = Spec::new()
        .function("nine", returns(9))
        .data(table)
        .function(
            "via_table",
            Code::new()
                .movabs_rax("table", 8)
                .asm(|a| a.jmp(qword_ptr(rax))),
        )
        .write(dir.path(), "m.smf");
    let loader = loader();
    loader.load(&path).unwrap();
    assert_eq!(call_i32(loader.resolve("via_table").unwrap()), 9);
}

#[test]
fn gotpcrel_goes_through_a_read_only_slot_holding_the_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Spec::new()
        .function("eleven", returns(11))
        .write(dir.path(), "p.smf");
    let user = Spec::new()
        .function("via_got", forwards("eleven", Code::call_got))
        .function("slot_value", Code::new().load_got_rax("eleven").ret())
        .write(dir.path(), "u.smf");
    let loader = loader();
    loader.load(&provider).unwrap();
    let module = loader.load(&user).unwrap();
    assert_eq!(call_i32(loader.resolve("via_got").unwrap()), 11);
    let eleven = loader.resolve("eleven").unwrap();
    assert_eq!(
        call_u64(loader.resolve("slot_value").unwrap()),
        eleven.get() as u64
    );
    assert_eq!(module.imports().len(), 1);
    assert_eq!(module.imports()[0].address, eleven.get());
}

#[test]
fn out_of_range_results_are_errors_and_plt32_falls_back_to_a_stub() {
    let dir = tempfile::tempdir().unwrap();
    let loader = loader();
    // An unresolved weak import is 0, far from any code.
    let pc32 = Spec::new()
        .weak_import("absent")
        .function("f", Code::new().call_pc32("absent").ret())
        .write(dir.path(), "pc32.smf");
    match loader.load(&pc32) {
        Err(Error::RelocationOverflow { kind, symbol, .. }) => {
            assert_eq!(kind, RelocType::Pc32);
            assert_eq!(symbol, "absent");
        }
        other => panic!("expected an overflow, got {other:?}"),
    }
    let abs64 = Spec::new()
        .weak_import("absent")
        .function("f", Code::new().movabs_rax("absent", -1).ret())
        .write(dir.path(), "abs64.smf");
    match loader.load(&abs64) {
        Err(Error::RelocationOverflow { kind, value, .. }) => {
            assert_eq!(kind, RelocType::Abs64);
            assert_eq!(value, -1);
        }
        other => panic!("expected an overflow, got {other:?}"),
    }
    let fits = Spec::new()
        .weak_import("absent")
        .function("f", Code::new().movabs_rax("absent", 0).ret())
        .write(dir.path(), "abs64-zero.smf");
    loader.load(&fits).unwrap();
    assert_eq!(call_u64(loader.resolve("f").unwrap()), 0);

    let plt = Spec::new()
        .weak_import("absent")
        .function("g", Code::new().call_plt("absent").ret())
        .write(dir.path(), "plt.smf");
    let module = loader.load(&plt).unwrap();
    assert_eq!(module.stub_count(), 1);
    assert_eq!(module.imports()[0].source, ImportSource::WeakUndefined);
    // The call's displacement lands on a stub that jumps to address 0.
    let g = loader.resolve("g").unwrap().get();
    // SAFETY: `g` is published code of a loaded module: 6 readable bytes.
    let call = unsafe { std::slice::from_raw_parts(g as *const u8, 5) };
    let displacement = i32::from_le_bytes(call[1..5].try_into().unwrap());
    let stub = (g as i64 + 5 + i64::from(displacement)) as usize;
    // SAFETY: the stub lies in the module's published code.
    let stub_bytes = unsafe { std::slice::from_raw_parts(stub as *const u8, 14) };
    assert_eq!(&stub_bytes[..6], &[0xFF, 0x25, 0, 0, 0, 0]);
    assert_eq!(&stub_bytes[6..], &0u64.to_le_bytes());
    assert!(module.code().unwrap().contains(stub));

    // Nothing of the failed loads was registered.
    assert_eq!(loader.modules().len(), 2);
}

#[test]
fn a_missing_strong_import_fails_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("f", Code::new().call_plt("nowhere_to_be_found_xyz").ret())
        .write(dir.path(), "m.smf");
    let err = loader().load(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Unresolved { name, .. } if name == "nowhere_to_be_found_xyz"),
        "{err}"
    );
    assert_eq!(err.code(), -5);
}

#[test]
fn native_import_cos_from_libm_is_called_through_loaded_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("my_cos", forwards("cos", Code::call_plt))
        .write(dir.path(), "m.smf");
    let loader = loader();
    let module = loader.load(&path).unwrap();
    assert_eq!(module.imports()[0].source, ImportSource::Native);
    let f = loader.resolve("my_cos").unwrap();
    // SAFETY: `my_cos` forwards its xmm0 argument to cos and returns xmm0.
    let my_cos: extern "C" fn(f64) -> f64 = unsafe { std::mem::transmute(f.as_ptr()) };
    for x in [0.0, 0.5, 1.0, std::f64::consts::PI, -2.25] {
        assert_eq!(my_cos(x).to_bits(), x.cos().to_bits());
    }
}

#[test]
fn global_beats_weak_and_load_order_breaks_ties() {
    let dir = tempfile::tempdir().unwrap();
    let weak_first = Spec::new()
        .weak_function("pick", returns(1))
        .function("tie", returns(10))
        .weak_function("weak_tie", returns(100))
        .write(dir.path(), "a.smf");
    let global_second = Spec::new()
        .function("pick", returns(2))
        .function("tie", returns(20))
        .weak_function("weak_tie", returns(200))
        .write(dir.path(), "b.smf");
    let loader = loader();
    let a = loader.load(&weak_first).unwrap();
    assert_eq!(
        call_i32(loader.resolve("pick").unwrap()),
        1,
        "weak serves while alone"
    );
    let b = loader.load(&global_second).unwrap();
    assert_eq!(call_i32(loader.resolve("pick").unwrap()), 2);
    assert_eq!(call_i32(loader.resolve("tie").unwrap()), 10);
    assert_eq!(call_i32(loader.resolve("weak_tie").unwrap()), 100);
    assert_eq!(loader.exporter("tie").unwrap().id(), a.id());
    // An importer binds to the winner.
    let user = Spec::new()
        .function("use_pick", forwards("pick", Code::call_plt))
        .write(dir.path(), "c.smf");
    let c = loader.load(&user).unwrap();
    assert_eq!(c.imports()[0].source, ImportSource::Module(b.id()));
    assert_eq!(call_i32(loader.resolve("use_pick").unwrap()), 2);
    // Unloading the first module hands `tie` to the next in load order.
    loader.unload(a.id()).unwrap();
    assert_eq!(call_i32(loader.resolve("tie").unwrap()), 20);
    assert_eq!(call_i32(loader.resolve("weak_tie").unwrap()), 200);
}

#[test]
fn no_mapping_is_writable_and_executable_around_loading() {
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("one", returns(1))
        .data(data(SectionType::Data, ".data", vec![1; 32], &[("d", 0)]))
        .write(dir.path(), "m.smf");
    assert_eq!(writable_executable_mappings(), Vec::<String>::new());
    let loader = loader();
    let module = loader.load(&path).unwrap();
    assert_eq!(writable_executable_mappings(), Vec::<String>::new());
    let one = loader.resolve("one").unwrap();
    assert_eq!(
        loader.memory().protection_of(one.get()),
        Some(execmem::Protection::ReadExecute)
    );
    assert_eq!(call_i32(one), 1);
    drop(module);
    loader.unload(loader.modules()[0].id()).unwrap();
    assert_eq!(writable_executable_mappings(), Vec::<String>::new());
}

#[test]
fn modules_for_another_host_are_refused_before_any_code_is_placed() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = smf::ModuleBuilder::new();
    b.arch(smf::Arch::Aarch64);
    let text = b
        .add_section(SectionType::Code, ".text", 5, 16, &returns(1).bytes)
        .unwrap();
    b.add_symbol(smf::SymbolDef::function("f", text, 0, 6))
        .unwrap();
    let path = dir.path().join("arm.smf");
    std::fs::write(&path, b.build().unwrap()).unwrap();
    let loader = loader();
    assert!(matches!(
        loader.load(&path),
        Err(Error::InvalidModule { .. })
    ));
    assert_eq!(loader.memory().stats().functions_published, 0);
}

#[test]
fn the_note_is_parsed_at_load_and_a_bad_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let note = sdn::note::Note {
        possible: vec![sdn::note::Possible {
            id: 1,
            template: "sum".to_owned(),
            type_args: sdn::note::TypeArgs(vec!["f32".to_owned()]),
            mangled_name: "sum$f32".to_owned(),
            required_by: "app.main".to_owned(),
            can_defer: true,
        }],
        ..sdn::note::Note::default()
    };
    let mut spec = Spec::new().function("f", returns(1));
    spec.note = Some(note.to_sdn_string().unwrap());
    let path = spec.write(dir.path(), "noted.smf");
    let loader = loader();
    let module = loader.load(&path).unwrap();
    assert_eq!(module.note().as_deref(), Some(&note));
    assert!(module.template_code().is_none());

    spec.note = Some("mystery |a, b|\n  1, 2\n# END_NOTE\n".to_owned());
    let path = spec.write(dir.path(), "bad-note.smf");
    match loader.load(&path) {
        Err(Error::InvalidNote { path: p, source }) => {
            assert_eq!(p, path);
            assert!(source.to_string().contains("mystery"), "{source}");
        }
        other => panic!("expected an invalid note, got {other:?}"),
    }
}

#[test]
fn alignments_above_a_page_are_refused_and_a_page_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let loader = loader();
    for (alignment, accepted) in [(2048u64, true), (4096, true), (8192, false)] {
        let mut b = smf::ModuleBuilder::new();
        let text = b
            .add_section(SectionType::Code, ".text", 5, alignment, &returns(3).bytes)
            .unwrap();
        b.add_symbol(smf::SymbolDef::function(
            &format!("f{alignment}"),
            text,
            0,
            6,
        ))
        .unwrap();
        let path = dir.path().join(format!("a{alignment}.smf"));
        std::fs::write(&path, b.build().unwrap()).unwrap();
        match loader.load(&path) {
            Ok(module) => {
                assert!(accepted, "alignment {alignment} was accepted");
                let f = module.export(&format!("f{alignment}")).unwrap();
                assert_eq!(f.get() % alignment as usize, 0);
                assert_eq!(call_i32(f), 3);
            }
            Err(Error::Unsupported { reason, .. }) => {
                assert!(!accepted, "alignment {alignment} was refused: {reason}");
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
}

#[test]
fn instantiations_move_from_possible_to_instantiations_in_the_note() {
    use sdn::note::{Note, Possible, Status, TypeArgs};
    let possible = |id: u32, name: &str| Possible {
        id,
        template: "const".to_owned(),
        type_args: TypeArgs(vec!["i32".to_owned()]),
        mangled_name: name.to_owned(),
        required_by: "app.main".to_owned(),
        can_defer: true,
    };
    let note = Note {
        possible: vec![
            possible(1, "const$5"),
            possible(2, "const$6"),
            possible(3, "const$7"),
        ],
        ..Note::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut spec = Spec::new().function("five", forwards("const$5", Code::call_plt));
    spec.note = Some(note.to_sdn_string().unwrap());
    let path = spec.write(dir.path(), "m.smf");
    let loader = loader();
    loader.set_instantiator(std::sync::Arc::new(common::TestJit::default()));
    // Loading instantiates const$5 for the import; resolving makes const$6.
    let module = loader.load(&path).unwrap();
    loader.resolve("const$6").unwrap();
    loader.resolve("const$6").unwrap();
    let note = module.note().unwrap();
    let made: Vec<(&str, Status, &str)> = note
        .instantiations
        .iter()
        .map(|i| (i.mangled_name.as_str(), i.status, i.to_obj.as_str()))
        .collect();
    assert_eq!(
        made,
        [
            ("const$5", Status::JitCompiled, loader::JIT_OBJECT),
            ("const$6", Status::JitCompiled, loader::JIT_OBJECT)
        ]
    );
    let left: Vec<&str> = note
        .possible
        .iter()
        .map(|p| p.mangled_name.as_str())
        .collect();
    assert_eq!(left, ["const$7"]);
    // Resolving while the note is read does not wait for the reader.
    assert_eq!(call_i32(loader.resolve("const$7").unwrap()), 7);
    assert_eq!(note.possible.len(), 1, "a held view does not change");
    drop(note);
    let note = module.note().unwrap();
    assert!(note.possible.is_empty());
    assert_eq!(note.instantiations.len(), 3);
    assert_eq!(note.instantiations[2].mangled_name, "const$7");
}

#[test]
fn now_binding_publishes_a_module_and_the_instantiations_it_needs_together() {
    let jit = std::sync::Arc::new(common::TestJit::default());
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("one", forwards("batch$1", Code::call_plt))
        .function("seven", forwards("bsum$3$4", Code::call_plt))
        .function("three", forwards("batch$3", Code::call_got))
        .write(dir.path(), "m.smf");
    let loader = loader();
    loader.set_instantiator(std::sync::Arc::clone(&jit));
    let before = loader.memory().stats();
    let module = loader.load(&path).unwrap();
    let after = loader.memory().stats();
    assert_eq!(
        after.publications - before.publications,
        1,
        "one publication"
    );
    // .text, batch$1, batch$3, batch$4 and bsum$3$4.
    assert_eq!(after.functions_published - before.functions_published, 5);
    for name in ["batch$1", "batch$3", "batch$4", "bsum$3$4"] {
        assert_eq!(jit.count(name), 1, "{name}");
        let address = loader.resolve(name).unwrap();
        assert!(
            module.code().unwrap().contains(address.get()),
            "{name} lies in the module's code"
        );
    }
    assert_eq!(call_i32(loader.resolve("one").unwrap()), 1);
    assert_eq!(call_i32(loader.resolve("seven").unwrap()), 7);
    assert_eq!(call_i32(loader.resolve("three").unwrap()), 3);
    assert_eq!(call_i32(loader.resolve("bsum$3$4").unwrap()), 7);
    assert_eq!(loader.stats().instances.instantiations, 4);
    assert_eq!(writable_executable_mappings(), Vec::<String>::new());
}

#[test]
fn a_failed_load_fails_the_instantiations_waiting_in_its_batch() {
    let jit = std::sync::Arc::new(common::TestJit::default());
    let dir = tempfile::tempdir().unwrap();
    let path = Spec::new()
        .function("four", forwards("batch$4", Code::call_plt))
        .function(
            "broken",
            forwards("nowhere_to_be_found_xyz", Code::call_plt),
        )
        .write(dir.path(), "m.smf");
    let loader = loader();
    loader.set_instantiator(std::sync::Arc::clone(&jit));
    assert!(matches!(loader.load(&path), Err(Error::Unresolved { .. })));
    assert_eq!(jit.count("batch$4"), 1);
    assert_eq!(
        loader.memory().stats().functions,
        0,
        "nothing of the load stays mapped"
    );
    // The name was not left half-made: asking again instantiates it anew,
    // published on its own this time.
    assert_eq!(call_i32(loader.resolve("batch$4").unwrap()), 4);
    assert_eq!(jit.count("batch$4"), 2);
    assert_eq!(loader.memory().stats().functions, 1);
}
