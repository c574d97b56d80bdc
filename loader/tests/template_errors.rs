//! A module whose TemplateCode section cannot be decoded fails its misses
//! with the decoder's typed error, located at an offset of the file.

use loader::{Error, Loader, LoaderConfig};

#[test]
fn a_corrupt_template_section_is_reported_at_its_file_offset() {
    let text = "fn id<T: any>(%x: T) -> T {\nentry:\n    ret %x\n}\n";
    let lib = jit::text::parse_library(text).expect("parses");
    let encoded = jit::binary::encode_library(&lib);
    let mut bytes = encoded.bytes.clone();
    // The count of entries says two where there is one: the decoder runs
    // out of bytes after the first entry.
    bytes[6] = 2;
    let mut b = smf::ModuleBuilder::new();
    // A stub before the module's data: the section starts well inside the file.
    b.stub(b"#!/usr/bin/env smfjit\n");
    b.set_template_code(&bytes).expect("template code");
    let offset = u64::try_from(encoded.offsets[0]).expect("offset");
    b.add_symbol(smf::SymbolDef::template("id", 1, offset))
        .expect("symbol");
    let file = b.build().expect("builds");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("corrupt.smf");
    std::fs::write(&path, &file).expect("writes");

    // Where the section starts in the file, and where the decoder stops in it.
    let module = smf::Module::parse(&file).expect("a valid container");
    let section = module.template_code_section().expect("has templates");
    let start = module.base() + section.offset();
    let in_section = match jit::binary::decode_library(&bytes) {
        Err(jit::Error {
            location: jit::Location::Offset(at),
            ..
        }) => u64::try_from(at).unwrap(),
        other => panic!("the section must not decode: {other:?}"),
    };

    let loader = Loader::with_jit(LoaderConfig::default()).expect("loader");
    loader.load(&path).expect("the container loads");
    let error = loader
        .resolve("id$i32")
        .expect_err("the templates are corrupt");
    let Error::InvalidTemplates { source, .. } = &error else {
        panic!("expected the decoder's error, got {error:?}")
    };
    assert!(
        matches!(source.kind, jit::ErrorKind::Truncated(_)),
        "{source}"
    );
    assert_eq!(
        source.location,
        jit::Location::Offset(usize::try_from(start + in_section).unwrap())
    );
    assert!(start > 0);
}
