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
    assert!(built >= 1);
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
