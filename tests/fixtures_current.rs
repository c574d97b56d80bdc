//! Every fixture module in `tests/fixtures/` is built by `smf-build` from
//! its manifest in `tests/fixtures/src/`, and the committed bytes are what a
//! fresh build produces. Rebuild them with
//! `SMFJIT_BLESS=1 cargo test --test fixtures_current`.

use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn committed_fixture_modules_equal_a_fresh_build() {
    let mut built = 0;
    let mut manifests: Vec<_> = std::fs::read_dir(fixtures().join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sdn"))
        .collect();
    manifests.sort();
    for manifest in manifests {
        let name = manifest.file_stem().unwrap().to_str().unwrap().to_owned();
        let fresh = smfjit::build::build_module(&manifest)
            .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let out = fixtures().join(format!("{name}.smf"));
        if std::env::var_os("SMFJIT_BLESS").is_some() {
            std::fs::write(&out, &fresh).unwrap();
        }
        let committed = std::fs::read(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
        assert!(
            committed == fresh,
            "{name}.smf is stale: rebuild with SMFJIT_BLESS=1"
        );
        // A build is deterministic.
        assert!(smfjit::build::build_module(&manifest).unwrap() == fresh);
        built += 1;
    }
    assert!(built >= 5);
}

#[test]
fn collections_fixture_keeps_its_contract() {
    let bytes = std::fs::read(fixtures().join("collections.smf")).unwrap();
    let module = smf::Module::parse(&bytes).unwrap();
    for template in ["sum", "dot", "max", "sort", "binary_search"] {
        let s = module
            .symbol_by_name(template)
            .unwrap_or_else(|| panic!("{template}"));
        assert!(
            s.is_template() && s.template_param_count() == 1,
            "{template}"
        );
    }
    let note = sdn::note::Note::parse(module.note_sdn().unwrap()).unwrap();
    for name in ["sum$f64", "sum$i32", "dot$f32", "max$u8", "sort$i64"] {
        assert!(note.possible(name).is_some(), "possible lists {name}");
    }
    // A few instantiations are compiled ahead of time, with what they call.
    for name in [
        "sum$i32",
        "dot$f64",
        "max$u8",
        "sort$i64",
        "quicksort$i64",
        "insertion_sort$i64",
        "Vec$i64$push",
    ] {
        let s = module
            .symbol_by_name(name)
            .unwrap_or_else(|| panic!("{name}"));
        assert!(s.is_defined() && s.size() > 0, "{name}");
        assert_eq!(
            s.flags() & smf::raw::symbol_flags::SPECIALIZED,
            smf::raw::symbol_flags::SPECIALIZED
        );
        let row = note
            .instantiations
            .iter()
            .find(|r| r.mangled_name == name)
            .unwrap_or_else(|| panic!("instantiations lists {name}"));
        assert_eq!(
            (row.status, row.to_obj.as_str()),
            (sdn::note::Status::Compiled, "collections")
        );
    }
    assert!(!module.symbol_by_name(TRAP).unwrap().is_defined());
    // The templates decode to exactly the shipped library.
    let decoded = jit::binary::decode_library(module.template_code().unwrap()).unwrap();
    assert_eq!(decoded.library, jit::library::collections().unwrap());
    for (item, offset) in decoded.library.items().iter().zip(&decoded.offsets) {
        let symbol = module.symbol_by_name(&item.name()).unwrap();
        if symbol.is_template() {
            assert_eq!(symbol.template_offset(), *offset as u64, "{}", item.name());
        }
    }
}

const TRAP: &str = smfjit::build::aot::TRAP_SYMBOL;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(format!("{name}.smf"))).unwrap()
}

/// `(type, symbol name)` of every relocation.
fn relocations(module: &smf::Module<'_>) -> Vec<(smf::RelocType, String)> {
    module
        .relocations()
        .map(|(_, _, r)| {
            let name = module.symbol(r.symbol_index).unwrap().name().to_owned();
            (r.reloc_type, name)
        })
        .collect()
}

#[test]
fn app_fixture_calls_instantiations_it_does_not_define() {
    let bytes = fixture("app");
    let module = smf::Module::parse(&bytes).unwrap();
    for name in ["mean_f32", "median_u16", "sum_of_squares", "checksum"] {
        let s = module.symbol_by_name(name).unwrap();
        assert!(
            s.is_defined() && !s.is_template() && s.flags() == 0,
            "{name}"
        );
    }
    let relocs = relocations(&module);
    for name in ["sum$f32", "sort$u16", "Vec$i64$push", "Vec$i64$new"] {
        assert!(!module.symbol_by_name(name).unwrap().is_defined(), "{name}");
        assert!(
            relocs.contains(&(smf::RelocType::Plt32, name.to_owned())),
            "{name}"
        );
    }
    // Calls between its own functions need no relocation.
    assert!(
        relocs
            .iter()
            .all(|(_, n)| module.symbol_by_name(n).is_some_and(|s| !s.is_defined()))
    );
    assert!(relocs.contains(&(smf::RelocType::Abs64, TRAP.to_owned())));
    assert!(module.template_code().is_some());
}

#[test]
fn stats_fixture_calls_collections_templates_by_name() {
    let bytes = fixture("stats");
    let module = smf::Module::parse(&bytes).unwrap();
    for (name, global) in [
        ("mean", true),
        ("median", true),
        ("sum", false),
        ("sort", false),
    ] {
        let s = module.symbol_by_name(name).unwrap();
        assert!(s.is_template(), "{name}");
        assert_eq!(s.binding() == smf::Binding::Global, global, "{name}");
    }
    assert!(module.symbol_by_name("mean$f64").unwrap().is_defined());
    assert!(!module.symbol_by_name("sum$f64").unwrap().is_defined());
    assert!(relocations(&module).contains(&(smf::RelocType::Plt32, "sum$f64".to_owned())));
    // Instantiating its template makes a call to collections' symbol.
    let lib = jit::binary::decode_library(module.template_code().unwrap())
        .unwrap()
        .library;
    let median = jit::instantiate::instantiate_symbol(&lib, "median$i64").unwrap();
    assert_eq!(median.dependencies, ["sort$i64"]);
}

#[test]
fn cycle_fixture_records_the_instantiation_cycle() {
    let bytes = fixture("cycle");
    let module = smf::Module::parse(&bytes).unwrap();
    let note = sdn::note::Note::parse(module.note_sdn().unwrap()).unwrap();
    assert_eq!(note.circular_errors.len(), 1);
    let cycle = &note.circular_errors[0];
    assert_eq!(cycle.error_code, "E0420");
    let chain: Vec<&str> = cycle.cycle_path.split(" -> ").collect();
    assert_eq!(&chain[..3], ["f$i64", "g$i64", "f$ptr$i64"]);
    assert_eq!(chain.len(), jit::limits::MAX_INSTANTIATION_DEPTH + 1);
    assert!(note.possible("f$i64").is_some());
    // The monomorphic mutual recursion compiles, each side once.
    for name in ["is_even$u32", "is_odd$u32"] {
        assert!(module.symbol_by_name(name).unwrap().is_defined(), "{name}");
    }
    assert_eq!(note.dependencies.len(), 2);
}

#[test]
fn trig_fixture_imports_from_libm() {
    let bytes = fixture("trig");
    let module = smf::Module::parse(&bytes).unwrap();
    let relocs = relocations(&module);
    assert!(relocs.contains(&(smf::RelocType::GotPcRel, "cos".to_owned())));
    assert!(relocs.contains(&(smf::RelocType::GotPcRel, "sqrt".to_owned())));
    assert!(relocs.contains(&(smf::RelocType::Abs64, "cos".to_owned())));
    for name in ["wave$f32", "radial", "apply_cos"] {
        assert!(module.symbol_by_name(name).unwrap().is_defined(), "{name}");
    }
}

/// The sample module's TemplateCode payload is the encoding of
/// `tests/fixtures/src/sample-templates.tir` (the smf crate's tests embed
/// it without depending on the IR crate).
#[test]
fn sample_template_code_is_the_encoding_of_its_source() {
    let source = fixtures().join("src/sample-templates.tir");
    let library = jit::text::parse_library(&std::fs::read_to_string(source).unwrap()).unwrap();
    jit::verify::verify_library(&library).unwrap();
    let fresh = jit::binary::encode_library(&library).bytes;
    let path = fixtures().join("src/sample-templates.gtpl");
    if std::env::var_os("SMFJIT_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read(&path).unwrap();
    assert!(
        committed == fresh,
        "sample-templates.gtpl is stale: rebuild with SMFJIT_BLESS=1"
    );
    // The sample module carries exactly these bytes, with its template
    // symbols at the entries.
    let sample = std::fs::read(fixtures().join("sample.smf")).unwrap();
    let module = smf::Module::parse(&sample).unwrap();
    assert_eq!(module.template_code(), Some(&fresh[..]));
    let decoded = jit::binary::decode_library(&fresh).unwrap();
    for (item, offset) in decoded.library.items().iter().zip(&decoded.offsets) {
        let symbol = module.symbol_by_name(&item.name()).unwrap();
        assert_eq!(symbol.template_offset(), *offset as u64, "{}", item.name());
    }
}
