//! A module's templates are decoded and verified on first use: a section
//! whose framing is broken fails its misses with the decoder's typed error
//! at a file offset; a template that does not verify fails its own misses,
//! naming it, while the module's other templates still instantiate; and
//! no template is decoded twice, by one loader or by another loader of the
//! process loading the same module.

// The shared test support calls the code it places.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};

mod common;

use common::module_of;
use loader::{Error, InstantiationError, Loader, LoaderConfig};

fn collections() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/collections.smf")
}

#[test]
fn a_template_that_does_not_verify_fails_at_its_first_use_and_the_others_still_instantiate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = module_of(
        dir.path(),
        "mixed.smf",
        "\
fn double<T: num>(%x: T) -> T {
entry:
    %y = add T %x, %x
    ret %y
}
fn broken<T: num>(%x: T) -> T {
entry:
    %b = const bool true
    %y = add T %x, %b
    ret %y
}
",
    );
    let loader = Loader::with_jit(LoaderConfig::default()).expect("loader");
    loader
        .load(&path)
        .expect("a module with a bad template still loads");
    loader
        .resolve("double$f64")
        .expect("a good template instantiates");
    let error = loader
        .resolve("broken$f64")
        .expect_err("the bad one does not");
    let Error::InstantiationFailed {
        name,
        source: InstantiationError::Instantiate(source),
    } = &error
    else {
        panic!("expected the verifier's refusal, got {error:?}")
    };
    assert_eq!(name, "broken$f64");
    assert!(
        matches!(&source.location, jit::Location::Instruction { function, .. } if function == "broken"),
        "the error names the template: {source}"
    );
    assert!(error.to_string().contains("broken"), "{error}");
    // The other template goes on instantiating, for new arguments too.
    loader.resolve("double$i32").expect("still instantiates");
    loader.resolve("double$u8").expect("still instantiates");
}

#[test]
fn each_template_is_decoded_and_verified_at_most_once() {
    // A module of its own (the collections templates and one more), so no
    // other test of this process shares its library.
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "{}\nfn only_in_this_test() {{\nentry:\n    ret\n}}\n",
        jit::library::COLLECTIONS
    );
    let path = module_of(dir.path(), "own.smf", &text);
    let loader = Loader::with_jit(LoaderConfig::default()).expect("loader");
    loader.load(&path).expect("loads");
    assert_eq!(
        loader.stats().instances.templates,
        loader::TemplateStats::default()
    );
    loader.resolve("sum$f64").expect("instantiates");
    let after_sum = loader.stats().instances.templates;
    assert!(
        after_sum.decoded >= 1 && after_sum.verified >= 1,
        "{after_sum:?}"
    );
    for name in ["sum$i64", "sum$u16", "sum$f32", "sum$f64"] {
        loader.resolve(name).expect("instantiates");
    }
    assert_eq!(
        loader.stats().instances.templates,
        after_sum,
        "more instances of one template decode and verify nothing again"
    );
    loader.resolve("sort$u32").expect("instantiates");
    let after_sort = loader.stats().instances.templates;
    assert!(after_sort.decoded > after_sum.decoded, "{after_sort:?}");
    // Fewer than the module's entries: what was never used stays encoded.
    let entries = jit::text::parse_library(&text).unwrap().items().len();
    assert!(
        after_sort.decoded < entries as u64,
        "{after_sort:?} of {entries}"
    );
}

/// The only test of this binary that loads the collections fixture itself.
#[test]
fn a_second_loader_of_the_process_reuses_what_the_first_decoded_and_verified() {
    let first = Loader::with_jit(LoaderConfig::default()).expect("loader");
    first.load(collections()).expect("loads");
    first.resolve("dot$f32").expect("instantiates");
    let before = first.stats().instances.templates;
    let second = Loader::with_jit(LoaderConfig::default()).expect("loader");
    second.load(collections()).expect("loads");
    second.resolve("dot$f32").expect("instantiates");
    second.resolve("dot$i64").expect("instantiates");
    // One library for both: `dot` was not decoded or verified again.
    assert_eq!(second.stats().instances.templates, before);
    // What the second decodes, the first sees as done: one library.
    second.resolve("min$i16").expect("instantiates");
    let after = second.stats().instances.templates;
    assert!(after.decoded > before.decoded, "{after:?}");
    assert_eq!(first.stats().instances.templates, after);
}

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

#[test]
fn a_later_loader_reuses_the_templates_after_the_first_is_gone() {
    // A module of its own, so no other test of this process shares it.
    let dir = tempfile::tempdir().expect("temp dir");
    let text = format!(
        "{}\nfn only_in_the_later_loader_test() {{\nentry:\n    ret\n}}\n",
        jit::library::COLLECTIONS
    );
    let path = module_of(dir.path(), "later.smf", &text);
    let done = {
        let first = Loader::with_jit(LoaderConfig::default()).expect("loader");
        first.load(&path).expect("loads");
        first.resolve("binary_search$i32").expect("instantiates");
        first.resolve("reverse$f32").expect("instantiates");
        first.stats().instances.templates
    };
    // The first loader and its module are gone; the process remembers:
    // the later loader's library is the one that decoded `reverse` too,
    // and its own miss decodes and verifies nothing new.
    let later = Loader::with_jit(LoaderConfig::default()).expect("loader");
    later.load(&path).expect("loads");
    later.resolve("binary_search$i32").expect("instantiates");
    assert_eq!(later.stats().instances.templates, done);
}
