//! `smf-inspect` as a user runs it: golden output on the sample module, JSON
//! on every shape of valid module, and one clean line on every malformed one.
//!
//! Regenerate the golden files with `SMFJIT_BLESS=1 cargo test --test inspect_cli`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use smf::{ModuleBuilder, NoteSize, RelocType, SectionType, SharedItem, SymbolDef, SymbolType};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn inspect(args: &[&str]) -> Output {
    inspect_with(args, &[])
}

/// The tool's environment: the test's, without the variables that change
/// its output, and with `env`.
fn inspect_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smf-inspect"));
    for name in [
        "NO_COLOR",
        "SMFJIT_TIER",
        "SMFJIT_TIER_CALLS",
        "SMFJIT_TIER_BACKEDGES",
        "SMFJIT_TIER_BACKGROUND",
        "SMFJIT_CODE_MEMORY",
    ] {
        command.env_remove(name);
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .expect("smf-inspect runs")
}

fn stdout_of(args: &[&str]) -> String {
    let out = inspect(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn json_of(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&stdout_of(&all)).expect("valid JSON")
}

fn check_golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("SMFJIT_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with SMFJIT_BLESS=1)", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

const SAMPLE: &str = "tests/fixtures/sample.smf";

#[test]
fn golden_text_and_json_of_the_sample_module() {
    for cmd in ["header", "sections", "symbols", "relocs"] {
        check_golden(&format!("{cmd}.txt"), &stdout_of(&[cmd, SAMPLE]));
        check_golden(&format!("{cmd}.json"), &stdout_of(&[cmd, SAMPLE, "--json"]));
    }
    check_golden("hex-text.txt", &stdout_of(&["hex", SAMPLE, ".text"]));
    check_golden("hex-note.txt", &stdout_of(&["hex", SAMPLE, "note.sdn"]));
    check_golden("hex-2.json", &stdout_of(&["hex", SAMPLE, "2", "--json"]));
}

fn write_module(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn library(note: NoteSize, symbols: usize) -> ModuleBuilder {
    let mut b = ModuleBuilder::new();
    let code = b
        .add_section(SectionType::Code, ".text", 5, 16, &vec![0xC3; symbols * 8])
        .unwrap();
    b.set_note("# Instantiation To/From Metadata\n# END_NOTE\n", note)
        .unwrap();
    let puts = b
        .add_symbol(SymbolDef::import("puts", SymbolType::Function))
        .unwrap();
    for i in 0..symbols {
        b.add_symbol(SymbolDef::function(
            &format!("f{i}$u8"),
            code,
            i as u64 * 8,
            8,
        ))
        .unwrap();
    }
    b.add_relocation(code, 1, puts, RelocType::Pc32, -4);
    b
}

#[test]
fn json_is_right_on_every_shape_of_valid_module() {
    let dir = tempfile::tempdir().unwrap();
    let pure = library(NoteSize::Recorded, 3).build().unwrap();
    let scanned = library(NoteSize::Scanned, 3).build().unwrap();
    let stub = b"#!/usr/bin/env smf-run\n";
    let mut with_stub = library(NoteSize::Recorded, 3);
    with_stub.stub(stub);
    let with_stub = with_stub.build().unwrap();
    let prefix = b"\x7fELF pretend host binary";
    let mut appended = prefix.to_vec();
    appended.extend_from_slice(&pure);
    let many = library(NoteSize::Recorded, 5000).build().unwrap();

    for (name, bytes, base, note_size) in [
        ("pure.smf", &pure, 0u64, 44u64),
        ("scanned.smf", &scanned, 0, 0),
        ("stub.smf", &with_stub, stub.len() as u64, 44),
        ("appended.smf", &appended, prefix.len() as u64, 44),
    ] {
        let path = write_module(dir.path(), name, bytes);
        let header = json_of(&["header", &path]);
        assert_eq!(header["magic"], "SMF\0", "{name}");
        assert_eq!(header["base"], base, "{name}");
        assert_eq!(header["section_count"], 3, "{name}");
        assert_eq!(header["symbol_count"], 4, "{name}");
        assert_eq!(header["exported_count"], 4, "{name}");
        assert_eq!(header["arch_name"], "x86_64", "{name}");
        let sections = json_of(&["sections", &path]);
        assert_eq!(sections[1]["name"], "note.sdn", "{name}");
        assert_eq!(sections[1]["type"], 13, "{name}");
        assert_eq!(sections[1]["type_name"], "template_meta", "{name}");
        assert_eq!(sections[1]["size"], note_size, "{name}");
        assert_eq!(sections[2]["type_name"], "reloc", "{name}");
        let symbols = json_of(&["symbols", &path]);
        assert_eq!(symbols[0]["name"], "puts");
        assert_eq!(symbols[0]["section_index"], 0xFFFF);
        assert_eq!(symbols[2]["name"], "f1$u8");
        assert_eq!(symbols[2]["value"], 8);
        assert_eq!(symbols[2]["sym_type_name"], "function");
        assert_eq!(symbols[2]["name_hash"], smf::fnv1a32(b"f1$u8"));
        let relocs = json_of(&["relocs", &path]);
        assert_eq!(relocs[0]["type_name"], "pc32");
        assert_eq!(relocs[0]["symbol_name"], "puts");
        assert_eq!(relocs[0]["addend"], -4);
        let note = json_of(&["hex", &path, "note.sdn"]);
        assert_eq!(note["size"], 44, "{name}: the scanned text is shown");
    }
    let path = write_module(dir.path(), "many.smf", &many);
    let symbols = json_of(&["symbols", &path]);
    assert_eq!(symbols.as_array().unwrap().len(), 5001);
    assert_eq!(symbols[5000]["name"], "f4999$u8");
    assert_eq!(symbols[5000]["value"], 4999 * 8);
}

#[test]
fn every_malformed_file_gives_one_clean_error_line() {
    let dir = root().join("tests/fixtures/malformed");
    let listing = std::fs::read_to_string(dir.join("EXPECTED")).unwrap();
    let mut checked = 0;
    for line in listing.lines().filter(|l| !l.starts_with('#')) {
        let (file, _) = line.split_once(' ').unwrap();
        let rel = format!("tests/fixtures/malformed/{file}");
        for cmd in ["header", "sections", "symbols", "relocs"] {
            let out = inspect(&[cmd, &rel, "--json"]);
            assert_eq!(out.status.code(), Some(1), "{cmd} {file}");
            assert!(out.stdout.is_empty(), "{cmd} {file}: no partial output");
            let err = String::from_utf8(out.stderr).unwrap();
            let prefix = format!("error: '{rel}': ");
            assert!(err.starts_with(&prefix), "{cmd} {file}: {err}");
            assert_eq!(err.lines().count(), 1, "{cmd} {file}: {err}");
            let tail = err.trim_end().rsplit_once("(at offset 0x").map(|(_, t)| t);
            assert!(
                tail.is_some_and(
                    |t| t.ends_with(')') && u64::from_str_radix(&t[..t.len() - 1], 16).is_ok()
                ),
                "{cmd} {file}: {err}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 30);
}

#[test]
fn unreadable_files_and_unknown_sections_are_errors_not_panics() {
    let out = inspect(&["header", "tests/fixtures/no-such.smf"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("error: 'tests/fixtures/no-such.smf': cannot read the file: "),
        "{err}"
    );
    let out = inspect(&["hex", SAMPLE, ".nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: 'tests/fixtures/sample.smf': no section named or numbered '.nope' (the module has 9 sections)\n"
    );
    let out = inspect(&["header", "tests/fixtures"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["frobnicate", SAMPLE],
        &["header"],
        &["hex", SAMPLE],
        &["header", SAMPLE, "--color", "sometimes"],
    ] {
        let out = inspect(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn color_always_paints_and_never_or_no_color_does_not() {
    let painted = stdout_of(&["sections", SAMPLE, "--color", "always"]);
    assert!(painted.contains("\x1b[36m.text"), "{painted}");
    let plain = stdout_of(&["sections", SAMPLE, "--color", "never"]);
    assert!(!plain.contains('\x1b'));
    let out = Command::new(env!("CARGO_BIN_EXE_smf-inspect"))
        .args(["sections", SAMPLE])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!String::from_utf8(out.stdout).unwrap().contains('\x1b'));
    assert_eq!(plain, stdout_of(&["sections", SAMPLE, "--color", "auto"]));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = ModuleBuilder::new();
    b.add_section(SectionType::Data, "big", 1, 1, &vec![0xAB; 1 << 20])
        .unwrap();
    let path = write_module(dir.path(), "big.smf", &b.build().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_smf-inspect"))
        .args(["hex", &path, "big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 64];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is dropped here: the rest of the dump meets a closed pipe.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A module carrying the real collections template library and a note
/// with every table populated.
fn templated_module(dir: &Path) -> String {
    let lib = jit::library::collections().unwrap();
    let encoded = jit::binary::encode_library(&lib);
    let mut b = ModuleBuilder::new();
    b.set_template_code(&encoded.bytes).unwrap();
    for (item, offset) in lib.items().iter().zip(&encoded.offsets) {
        if let jit::ir::Item::Function(f) = item {
            let params = u8::try_from(f.type_params.len()).unwrap();
            b.add_symbol(SymbolDef::template(&item.name(), params, *offset as u64))
                .unwrap();
        }
    }
    b.set_note(NOTE_ALL_TABLES, NoteSize::Recorded).unwrap();
    write_module(dir, "templated.smf", &b.build().unwrap())
}

const NOTE_ALL_TABLES: &str = "# Instantiation To/From Metadata
instantiations |id, template, type_args, mangled_name, from_file, from_loc, to_obj, status|
  1, sum, i32, sum$i32, app.spl, 3:7, app.smf, compiled
  2, Pair, \"i32,f64\", \"Pair$i32$f64\", app.spl, 9:1, app.smf, jit_compiled
possible |id, template, type_args, mangled_name, required_by, can_defer|
  1, sum, f64, sum$f64, app.main, true
type_inferences |id, inferred_type, expr, context, from_file, from_loc|
  1, i32, \"sum(xs)\", main, app.spl, 3:7
dependencies |from_inst, to_inst, dep_kind|
  2, 1, field_type
circular_warnings |id, cycle_path, severity|
  1, \"A->B->A\", warning
circular_errors |id, cycle_path, error_code|
  1, \"C->C\", E0420
# END_NOTE
";

#[test]
fn templates_print_text_that_parses_back_to_the_same_library() {
    let dir = tempfile::tempdir().unwrap();
    let path = templated_module(dir.path());
    let text = stdout_of(&["templates", &path]);
    let reparsed = jit::text::parse_library(&text).expect("printed text parses");
    assert_eq!(reparsed, jit::library::collections().unwrap());
    assert!(
        text.contains("fn sum<T: num>(%0: ptr<T>, %1: i64) -> T {"),
        "{text}"
    );
    let json = json_of(&["templates", &path]);
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), reparsed.items().len());
    let sum = items.iter().find(|i| i["name"] == "sum").unwrap();
    assert_eq!(sum["kind"], "function");
    // Every template symbol records the offset the JSON reports.
    let symbols = json_of(&["symbols", &path]);
    let sym = symbols
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "sum")
        .unwrap();
    assert_eq!(sym["template_offset"], sum["template_offset"]);
}

#[test]
fn notes_show_all_six_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = templated_module(dir.path());
    check_golden("notes.txt", &stdout_of(&["notes", &path]));
    let json = json_of(&["notes", &path]);
    assert_eq!(json["instantiations"][1]["mangled_name"], "Pair$i32$f64");
    assert_eq!(json["instantiations"][1]["status"], "jit_compiled");
    assert_eq!(json["possible"][0]["can_defer"], true);
    assert_eq!(json["dependencies"][0]["dep_kind"], "field_type");
    assert_eq!(json["circular_errors"][0]["error_code"], "E0420");
    assert_eq!(json["circular_warnings"][0]["cycle_path"], "A->B->A");
}

#[test]
fn a_bad_note_or_template_section_is_a_clean_error_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    // A TemplateCode section with a valid header and an entry whose length
    // runs past the section.
    let mut b = ModuleBuilder::new();
    b.set_template_code(b"GTPL\x01\x00\x01\x00\x00\x00\x01\xff\xff\x7f")
        .unwrap();
    let path = write_module(dir.path(), "badtemplates.smf", &b.build().unwrap());
    for cmd in ["templates", "verify"] {
        let out = inspect(&[cmd, &path]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let text = String::from_utf8(if cmd == "verify" {
            out.stdout
        } else {
            out.stderr
        })
        .unwrap();
        assert!(text.contains("TemplateCode: "), "{cmd}: {text}");
        assert!(text.contains("(at offset 0x"), "{cmd}: {text}");
    }

    let mut b = ModuleBuilder::new();
    b.set_note(
        "# Instantiation To/From Metadata\npossible |id, template|\n  x, sum\n# END_NOTE\n",
        NoteSize::Recorded,
    )
    .unwrap();
    let path = write_module(dir.path(), "badnote.smf", &b.build().unwrap());
    let out = inspect(&["notes", &path]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(": note.sdn:"), "{err}");
    assert!(err.contains("(at offset 0x"), "{err}");
    let out = inspect(&[
        "notes",
        &write_module(
            dir.path(),
            "none.smf",
            &ModuleBuilder::new().build().unwrap(),
        ),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("the module has no note.sdn section")
    );
}

/// A library that defines and imports memories and tables, the two tables
/// with the same signature.
fn shared_library() -> ModuleBuilder {
    let mut b = library(NoteSize::Recorded, 1);
    for item in [
        SharedItem::memory("heap", 1, Some(16)),
        SharedItem::memory("scratch", 2, None),
        SharedItem::table("dispatch", "fn(i64) -> i64", 4, Some(64)),
        SharedItem::import_memory("env"),
        SharedItem::import_table("callbacks", "fn(i64) -> i64"),
    ] {
        b.add_shared_item(item).unwrap();
    }
    b
}

#[test]
fn shared_lists_memories_and_tables_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_module(dir.path(), "shared.smf", &shared_library().build().unwrap());
    assert_eq!(
        json_of(&["shared", &path]),
        serde_json::json!({
            "memories": [
                {"name": "heap", "linkage": "define", "initial": 1, "maximum": 16},
                {"name": "scratch", "linkage": "define", "initial": 2, "maximum": null},
                {"name": "env", "linkage": "import", "initial": 0, "maximum": null},
            ],
            "tables": [
                {"name": "dispatch", "linkage": "define", "initial": 4, "maximum": 64,
                 "signature": "fn(i64) -> i64"},
                {"name": "callbacks", "linkage": "import", "initial": 0, "maximum": null,
                 "signature": "fn(i64) -> i64"},
            ],
        })
    );
    assert_eq!(
        stdout_of(&["shared", &path]),
        "\
memories (sizes in 64 KiB pages)
name             linkage    initial   maximum
heap             define           1        16
scratch          define           2         -
env              import           -         -

tables (sizes in entries)
name             linkage    initial   maximum  signature
dispatch         define           4        64  fn(i64) -> i64
callbacks        import           -         -  fn(i64) -> i64
"
    );
    let sections = json_of(&["sections", &path]);
    let shared = sections
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == ".shared")
        .expect("the .shared section is listed");
    assert_eq!(
        (&shared["type"], &shared["type_name"]),
        (&14.into(), &"shared".into())
    );
    assert_eq!(shared["size"], 16 + 32 * 5);

    // Without a .shared section both lists are empty: not an error.
    let plain = write_module(
        dir.path(),
        "plain.smf",
        &library(NoteSize::Recorded, 1).build().unwrap(),
    );
    assert_eq!(
        json_of(&["shared", &plain]),
        serde_json::json!({"memories": [], "tables": []})
    );
}

#[test]
fn a_bad_shared_section_is_a_clean_error_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = shared_library();
    b.record_module_hash(false);
    let mut bytes = b.build().unwrap();
    let magic = bytes.windows(4).position(|w| w == b"SHRD").unwrap();
    bytes[magic + 3] = b'X';
    let path = write_module(dir.path(), "badshared.smf", &bytes);
    for cmd in ["shared", "header"] {
        let out = inspect(&[cmd, &path]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert!(out.stdout.is_empty(), "{cmd}: no partial output");
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!(
                "error: '{path}': .shared: magic is [53, 48, 52, 58], expected \"SHRD\" (at offset {magic:#x})\n"
            ),
            "{cmd}"
        );
    }
}

#[test]
fn verify_passes_the_collections_fixture() {
    let out = stdout_of(&["verify", "tests/fixtures/collections.smf"]);
    assert!(
        out.starts_with("ok: ") && out.ends_with(" checks passed\n"),
        "{out}"
    );
    let json = json_of(&["verify", "tests/fixtures/collections.smf"]);
    assert_eq!(json["ok"], true);
    assert_eq!(json["problems"].as_array().unwrap().len(), 0);
}

const SAMPLE_ZSTD: &str = "tests/fixtures/sample-zstd.smf";

/// The rows of `hex` output without their offset column.
fn hex_rows(text: &str) -> Vec<&str> {
    text.lines()
        .map(|l| l.split_once("  ").unwrap().1)
        .collect()
}

#[test]
fn compressed_sections_show_stored_and_decompressed_sizes() {
    check_golden("sections-zstd.txt", &stdout_of(&["sections", SAMPLE_ZSTD]));
    check_golden(
        "sections-zstd.json",
        &stdout_of(&["sections", SAMPLE_ZSTD, "--json"]),
    );
    let (plain, zstd) = (
        json_of(&["sections", SAMPLE]),
        json_of(&["sections", SAMPLE_ZSTD]),
    );
    for (p, z) in plain
        .as_array()
        .unwrap()
        .iter()
        .zip(zstd.as_array().unwrap())
    {
        let name = z["name"].as_str().unwrap();
        assert_eq!(p["compressed"], false, "{name}");
        assert_eq!(p["decompressed_size"], Value::Null, "{name}");
        let compressed = matches!(name, "note.sdn" | "template.code");
        assert_eq!(z["compressed"], compressed, "{name}");
        if compressed {
            assert_eq!(z["decompressed_size"], p["size"], "{name}");
            assert_eq!(z["virtual_size"], p["size"], "{name}");
            assert!(z["size"].as_u64() < p["size"].as_u64(), "{name}");
            assert_eq!(z["flags"], p["flags"].as_u64().unwrap() | 8, "{name}");
        } else {
            assert_eq!(z["size"], p["size"], "{name}");
        }
    }
    let header = json_of(&["header", SAMPLE_ZSTD]);
    assert_eq!(
        (&header["compression_name"], &header["compression_level"]),
        (&Value::from("zstd"), &Value::from(3))
    );
    // hex shows the decompressed bytes, at offsets inside the section.
    for section in ["note.sdn", "template.code"] {
        let (p, z) = (
            stdout_of(&["hex", SAMPLE, section]),
            stdout_of(&["hex", SAMPLE_ZSTD, section]),
        );
        assert_eq!(hex_rows(&p), hex_rows(&z), "{section}");
        assert!(z.starts_with("00000000  "), "{section}");
        let json = json_of(&["hex", SAMPLE_ZSTD, section]);
        assert_eq!(json["compressed"], true);
        assert_eq!(json["bytes"], json_of(&["hex", SAMPLE, section])["bytes"]);
    }
}

#[test]
fn verify_counts_each_compressed_section_and_reports_one_that_is_damaged() {
    let checks = |path: &str| json_of(&["verify", path])["checks"].as_u64().unwrap();
    assert_eq!(checks(SAMPLE_ZSTD), checks(SAMPLE) + 2);
    for (file, said) in [
        (
            "compressed-bad-stream",
            "compressed section 6 'template.code' does not decompress as zstd into the 183 bytes its virtual_size records",
        ),
        (
            "compressed-wrong-size",
            "compressed section 6 'template.code' decompresses to 183 bytes, but its virtual_size records 184",
        ),
        (
            "lz4-compressed",
            "unsupported: lz4-compressed sections (compression 2): this reader decompresses zstd (compression 1) only",
        ),
    ] {
        let path = format!("tests/fixtures/malformed/{file}.smf");
        let out = inspect(&["verify", &path]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(said), "{file}: {err}");
        assert!(
            err.trim_end().ends_with(')') && err.contains("(at offset 0x"),
            "{file}: {err}"
        );
    }
}

#[test]
fn verify_lists_every_problem_and_exits_1() {
    let lib = jit::library::collections().unwrap();
    let encoded = jit::binary::encode_library(&lib);
    let offset_of = |name: &str| {
        let i = lib.items().iter().position(|i| i.name() == name).unwrap();
        encoded.offsets[i] as u64
    };
    let mut b = ModuleBuilder::new();
    b.set_template_code(&encoded.bytes).unwrap();
    // Right, then a wrong parameter count, then an offset of another entry;
    // every other generic item has no symbol at all.
    b.add_symbol(SymbolDef::template("sum", 1, offset_of("sum")))
        .unwrap();
    b.add_symbol(SymbolDef::template("dot", 2, offset_of("dot")))
        .unwrap();
    b.add_symbol(SymbolDef::template("max", 1, offset_of("min")))
        .unwrap();
    b.set_note(
        "# Instantiation To/From Metadata
instantiations |id, template, type_args, mangled_name, from_file, from_loc, to_obj, status|
  1, sum, i32, sum$i32, a.spl, 1:1, a.smf, compiled
possible |id, template, type_args, mangled_name, required_by, can_defer|
  1, sum, f64, sum$f64, main, true
  2, dot, f64, sum$f64, main, true
  3, sum, i64, sum$bool, main, true
# END_NOTE
",
        NoteSize::Recorded,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_module(dir.path(), "inconsistent.smf", &b.build().unwrap());
    let out = inspect(&["verify", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty(), "the verdict goes to stdout");
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "symbol 'dot' says 2 type parameters, its template has 1",
        "symbol 'max' has template_offset",
        "template 'min' at template_offset",
        "template 'Vec::push' at template_offset",
        "possible row 2: 'sum$f64' is an instance of 'sum', the row says 'dot'",
        "possible row 3: 'sum$bool' has type arguments bool, the row says i64",
        "possible row 3:",
        "instantiation 1: 'sum$i32' is compiled but the module defines no such symbol",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("possible row 1:"), "row 1 is right:\n{text}");
    let last = text.lines().last().unwrap();
    let problems = text.lines().filter(|l| l.starts_with("problem: ")).count();
    assert!(
        last.starts_with(&format!("{problems} problems in ")),
        "{last}"
    );
    let json = json_of_failing(&["verify", &path, "--json"]);
    assert_eq!(json["ok"], false);
    assert_eq!(json["problems"].as_array().unwrap().len(), problems);
}

fn json_of_failing(args: &[&str]) -> Value {
    let out = inspect(args);
    assert_eq!(out.status.code(), Some(1));
    serde_json::from_slice(&out.stdout).unwrap()
}

const APP: &str = "tests/fixtures/app.smf";
const TRIG: &str = "tests/fixtures/trig.smf";

#[test]
fn golden_disassembly_of_precompiled_code() {
    check_golden(
        "disasm-app-checksum.txt",
        &stdout_of(&["disasm", APP, "checksum"]),
    );
    check_golden(
        "disasm-app-mean_f32.txt",
        &stdout_of(&["disasm", APP, "mean_f32"]),
    );
    check_golden(
        "disasm-trig-apply_cos-gas.txt",
        &stdout_of(&["disasm", TRIG, "apply_cos", "--syntax", "gas"]),
    );
    check_golden(
        "disasm-trig-wave-nasm.txt",
        &stdout_of(&["disasm", TRIG, "wave$f32", "--syntax", "nasm"]),
    );
    check_golden(
        "disasm-app-mean_f32.json",
        &stdout_of(&["disasm", APP, "mean_f32", "--json"]),
    );
}

#[test]
fn disassembly_names_callees_from_relocations_and_symbols() {
    let text = stdout_of(&["disasm", APP, "mean_f32"]);
    assert!(
        text.lines()
            .any(|l| l.ends_with("call sum$f32  ; plt32 sum$f32 -4")),
        "{text}"
    );
    let text = stdout_of(&["disasm", APP, "checksum"]);
    for callee in ["mean_f32", "median_u16", "sum_of_squares"] {
        assert!(
            text.lines()
                .any(|l| l.contains("call ") && l.ends_with(&format!("; {callee}"))),
            "{callee}: {text}"
        );
    }
    let json = json_of(&["disasm", TRIG, "wave$f32"]);
    assert_eq!(json["name"], "wave$f32");
    assert_eq!(json["syntax"], "intel");
    let instructions = json["instructions"].as_array().unwrap();
    assert_eq!(instructions[0]["text"], "endbr64");
    assert_eq!(instructions[0]["offset"], json["value"]);
    let cos = instructions
        .iter()
        .find(|i| i["relocation"]["symbol"] == "cos")
        .expect("the call to cos");
    assert_eq!(cos["relocation"]["type"], "gotpcrel");
    assert_eq!(cos["relocation"]["addend"], -4);
    // The relocated field lies inside the instruction.
    let (at, field) = (
        cos["offset"].as_u64().unwrap(),
        cos["relocation"]["offset"].as_u64().unwrap(),
    );
    let len = cos["bytes"].as_str().unwrap().len() as u64 / 2;
    assert!(field > at && field + 4 <= at + len);
    // The pool is data: its first word is the trap handler.
    assert_eq!(json["data"][0]["relocation"]["symbol"], "__smfjit_trap");
    // Every byte is listed once, code then data.
    let listed: u64 = instructions
        .iter()
        .chain(json["data"].as_array().unwrap())
        .map(|i| i["bytes"].as_str().unwrap().len() as u64 / 2)
        .sum();
    assert_eq!(listed, json["size"].as_u64().unwrap());
}

#[test]
fn disasm_refuses_symbols_without_code_here() {
    for (file, symbol, message) in [
        (APP, "nope", "no symbol named 'nope'"),
        (
            APP,
            "sum$f32",
            "'sum$f32' is undefined in this module: its code comes from elsewhere",
        ),
        (
            "tests/fixtures/collections.smf",
            "sum",
            "'sum' is a generic template: it has no code until it is instantiated (try `smf-inspect instantiate",
        ),
    ] {
        let out = inspect(&["disasm", file, symbol]);
        assert_eq!(out.status.code(), Some(1), "{symbol}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with(&format!("error: '{file}': {message}")),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
        assert!(out.stdout.is_empty());
    }
    for args in [
        &["disasm", APP][..],
        &["disasm", APP, "checksum", "--syntax", "att"],
    ] {
        assert_eq!(inspect(args).status.code(), Some(2), "{args:?}");
    }
}

const COLLECTIONS: &str = "tests/fixtures/collections.smf";

#[test]
fn instantiate_compiles_on_the_miss_and_calls_with_typed_arguments() {
    let out = stdout_of(&[
        "instantiate",
        COLLECTIONS,
        "sum$f64",
        "--call",
        "[1.5, 2.25, 3]",
        "3",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "sum$f64 = sum<f64>");
    assert_eq!(lines[1], "  fn(ptr<f64>, i64) -> f64");
    assert!(lines[2].contains("JIT-compiled on the miss"), "{out}");
    assert_eq!(lines[3], "  sum$f64([1.5, 2.25, 3.0], 3) = 6.75");
    assert_eq!(lines.len(), 4, "sum does not change its input:\n{out}");

    // Wrap-around, the minimum integer, and an ahead-of-time export.
    let json = json_of(&[
        "instantiate",
        COLLECTIONS,
        "sum$u64",
        "--call",
        "[18446744073709551615, 2]",
        "2",
    ]);
    assert_eq!(json["call"]["result"], "1");
    assert_eq!(json["precompiled"], false);
    assert_eq!(json["stale_modules"], 0);
    let json = json_of(&[
        "instantiate",
        COLLECTIONS,
        "min$i16",
        "--call",
        "[5, -32768, 9]",
        "3",
    ]);
    assert_eq!(json["call"]["result"], "-32768");
    let sorted = stdout_of(&[
        "instantiate",
        COLLECTIONS,
        "sort$i64",
        "--call",
        "[5, -3, 9, 0, 2]",
        "5",
    ]);
    assert!(sorted.contains("compiled ahead of time"), "{sorted}");
    assert!(
        sorted.ends_with("  argument 1 after the call: [-3, 0, 2, 5, 9]\n"),
        "{sorted}"
    );
    let searched = json_of(&[
        "instantiate",
        COLLECTIONS,
        "binary_search$i64",
        "--call",
        "[-3, 0, 2, 5, 9]",
        "5",
        "5",
    ]);
    assert_eq!(searched["call"]["result"], "3");
    let nan = json_of(&[
        "instantiate",
        COLLECTIONS,
        "dot$f32",
        "--call",
        "[1, nan]",
        "[2, 3]",
        "2",
    ]);
    assert_eq!(nan["call"]["result"], "NaN");
}

#[test]
fn instantiate_reports_traps_and_bad_requests() {
    let out = inspect(&["instantiate", COLLECTIONS, "max$u8", "--call", "[]", "0"]);
    assert_eq!(out.status.code(), Some(1), "a trap is a failed call");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("max$u8([], 0) = trap: Explicit(1)"), "{text}");

    for (args, why) in [
        (&["sum$bool"][..], "does not satisfy `T: num`"),
        (&["nosuch$i32"][..], "nosuch"),
        (
            &["sum$f64", "--call", "[1]"][..],
            "--call needs 2 arguments",
        ),
        (
            &["sum$i8", "--call", "[300]", "1"][..],
            "300 does not fit in i8",
        ),
    ] {
        let mut all = vec!["instantiate", COLLECTIONS];
        all.extend_from_slice(args);
        let out = inspect(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.starts_with("error: 'tests/fixtures/collections.smf': "),
            "{err}"
        );
        assert!(err.contains(why), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn instantiate_disassembles_the_code_it_published() {
    let out = stdout_of(&["instantiate", COLLECTIONS, "max$i32", "--disasm"]);
    let entry = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("entry 0x"))
        .and_then(|l| l.split(':').next())
        .expect("an entry line");
    // The listing starts at the entry point with endbr64.
    let first = out
        .lines()
        .find(|l| l.contains("endbr64"))
        .expect("a listing");
    assert!(
        first.starts_with(&format!("{entry:0>16}")),
        "{first} vs {entry}"
    );
    assert!(out.contains("ret"), "{out}");
    let gas = stdout_of(&[
        "instantiate",
        COLLECTIONS,
        "max$i32",
        "--disasm",
        "--syntax",
        "gas",
    ]);
    assert!(
        gas.contains("%r") || gas.contains("%e"),
        "AT&T registers:\n{gas}"
    );
    let json = json_of(&["instantiate", COLLECTIONS, "max$i32", "--disasm"]);
    assert!(json["disassembly"].as_str().unwrap().contains("endbr64"));
    // An ahead-of-time export shows the module's code instead.
    let aot = stdout_of(&["instantiate", COLLECTIONS, "sort$i64", "--disasm"]);
    assert!(aot.contains("disassembly of sort$i64 in .text"), "{aot}");
}

/// `instantiate … --json` with `tier` (the `--tier`, `--calls` and
/// `--backedges` arguments) and `--repeat`, then `--call` and its arguments.
fn tiered_json(symbol: &str, tier: &[&str], repeat: &str, call: &[&str]) -> Value {
    let mut args = vec!["instantiate", COLLECTIONS, symbol];
    args.extend_from_slice(tier);
    args.extend(["--repeat", repeat, "--call"]);
    args.extend_from_slice(call);
    json_of(&args)
}

#[test]
fn instantiate_reports_the_tier_each_repeated_call_started_in() {
    let interpreted = tiered_json(
        "max$i32",
        &["--tier", "interpreted"],
        "3",
        &["[3, -9, 41, 7]", "4"],
    );
    assert_eq!(
        interpreted["tiers"],
        serde_json::json!(["interpreted", "interpreted", "interpreted"])
    );
    assert_eq!(interpreted["tier_config"]["policy"], "interpreted");
    let stats = &interpreted["tier_stats"];
    assert_eq!(stats["tier"], "interpreted");
    assert_eq!(stats["interpreted_calls"], 3);
    assert_eq!(stats["tier_ups"], 0);

    let auto = tiered_json(
        "max$i32",
        &["--tier", "auto", "--calls", "2"],
        "4",
        &["[3, -9, 41, 7]", "4"],
    );
    assert_eq!(
        auto["tiers"],
        serde_json::json!(["interpreted", "interpreted", "compiled", "compiled"])
    );
    assert_eq!(auto["tier_config"]["calls"], 2);
    let stats = &auto["tier_stats"];
    assert_eq!(stats["tier"], "compiled");
    assert_eq!(
        (&stats["calls"], &stats["interpreted_calls"]),
        (&3.into(), &2.into())
    );
    assert_eq!(stats["tier_ups"], 1);
    assert_eq!(stats["compile_failures"], 0);

    let compiled = tiered_json(
        "max$i32",
        &["--tier", "compiled"],
        "2",
        &["[3, -9, 41, 7]", "4"],
    );
    assert_eq!(
        compiled["tiers"],
        serde_json::json!(["compiled", "compiled"])
    );
    assert_eq!(compiled["tier_stats"], Value::Null, "nothing is tiered");
    for call in [&interpreted["call"], &auto["call"], &compiled["call"]] {
        assert_eq!(call["result"], "41");
    }
}

#[test]
fn instantiate_gives_the_same_calls_in_every_tier() {
    // Each call gets the arguments as written, so a sort sorts the same
    // input every time, in whichever tier it runs.
    for (symbol, call) in [
        (
            "sort$i32",
            &["[5, -3, 2147483647, 0, -2147483648]", "5"][..],
        ),
        ("sum$f64", &["[1.5, 2.25, 3]", "3"]),
        ("dot$f32", &["[1, nan]", "[2, 3]", "2"]),
        ("binary_search$i64", &["[-3, 0, 2, 5, 9]", "5", "5"]),
        ("min$i16", &["[5, -32768, 9]", "3"]),
    ] {
        let compiled = tiered_json(symbol, &["--tier", "compiled"], "3", call);
        for tier in [
            &["--tier", "interpreted"][..],
            &["--tier", "auto", "--calls", "1"],
            &["--tier", "auto", "--calls", "2", "--backedges", "1"],
        ] {
            let json = tiered_json(symbol, tier, "3", call);
            assert_eq!(json["call"], compiled["call"], "{symbol} {tier:?}");
            assert_eq!(
                json["tiers"].as_array().unwrap().len(),
                3,
                "{symbol} {tier:?}"
            );
        }
    }
}

#[test]
fn instantiate_takes_the_tier_from_the_environment_without_tier() {
    let out = inspect_with(
        &[
            "instantiate",
            COLLECTIONS,
            "sum$f64",
            "--repeat",
            "3",
            "--call",
            "[1.5, 2.25, 3]",
            "3",
        ],
        &[("SMFJIT_TIER", "auto"), ("SMFJIT_TIER_CALLS", "1")],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[2].ends_with(&format!(
            "tier auto, compiled after 1 call(s) or {} back-edge(s) in one call",
            loader::limits::DEFAULT_TIER_BACKEDGES
        )),
        "{text}"
    );
    assert_eq!(lines[3], "  sum$f64([1.5, 2.25, 3.0], 3) = 6.75");
    assert_eq!(
        lines[4],
        "  tier each call started in: interpreted, compiled, compiled"
    );
    assert!(
        lines[5].starts_with("  tier now: compiled (calls 2, interpreted calls 1,"),
        "{text}"
    );
    assert_eq!(lines.len(), 6, "{text}");

    // --tier decides alone: the environment is not read.
    let json = json_of_with(
        &["instantiate", COLLECTIONS, "sum$f64", "--tier", "compiled"],
        &[("SMFJIT_TIER", "interpreted")],
    );
    assert_eq!(json["tier_config"]["policy"], "compiled");
    assert_eq!(json["tiers"], serde_json::json!([]));

    let out = inspect_with(
        &["instantiate", COLLECTIONS, "sum$f64"],
        &[("SMFJIT_TIER", "fast")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: 'tests/fixtures/collections.smf': cannot configure the loader: \
         SMFJIT_TIER: tier `fast` is none of compiled, interpreted, auto\n"
    );
}

fn json_of_with(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = inspect_with(&all, env);
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

#[test]
fn instantiate_stops_repeating_at_a_trap() {
    let out = inspect(&[
        "instantiate",
        COLLECTIONS,
        "max$i32",
        "--tier",
        "interpreted",
        "--repeat",
        "3",
        "--call",
        "[]",
        "0",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1), "a trap is a failed call");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["tiers"], serde_json::json!(["interpreted"]));
    assert_eq!(json["call"]["trap"], "Explicit(1)");
}

#[test]
fn instantiate_rejects_bad_tier_arguments_as_usage_errors() {
    for (args, why) in [
        (
            &["--tier", "fast"][..],
            "invalid value 'fast' for '--tier <TIER>'\n  [possible values: compiled, interpreted, auto]",
        ),
        (
            &["--tier", "auto", "--calls", "0"],
            "invalid value '0' for '--calls <N>'",
        ),
        (
            &["--tier", "auto", "--backedges", "0"],
            "invalid value '0' for '--backedges <N>'",
        ),
        (
            &["--repeat", "2"],
            "required arguments were not provided:\n  --call",
        ),
        (
            &["--repeat", "0", "--call", "[1]", "1"],
            "invalid value '0' for '--repeat <K>'",
        ),
        (
            &["--calls", "2"],
            "required arguments were not provided:\n  --tier",
        ),
        (
            &["--tier", "interpreted", "--calls", "2"],
            "--calls and --backedges are thresholds of `--tier auto`",
        ),
        (
            &["--tier", "compiled", "--backedges", "2"],
            "--calls and --backedges are thresholds of `--tier auto`",
        ),
    ] {
        assert_instantiate_usage_error(args, why);
    }
}

/// `instantiate COLLECTIONS max$i32 ARGS…` is a usage error saying `why`.
fn assert_instantiate_usage_error(args: &[&str], why: &str) {
    let mut all = vec!["instantiate", COLLECTIONS, "max$i32"];
    all.extend_from_slice(args);
    let out = inspect(&all);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(err.contains(why), "{args:?}: {err}");
}

/// The `call` object of `instantiate … --json --call ARGS` for `target`,
/// and whether the tool succeeded.
fn call_on(target: &str, symbol: &str, call: &[&str]) -> (Value, bool) {
    let mut args = vec![
        "instantiate",
        COLLECTIONS,
        symbol,
        "--target",
        target,
        "--json",
        "--call",
    ];
    args.extend_from_slice(call);
    let out = inspect(&args);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(json["target"], target, "{args:?}");
    (json["call"].clone(), out.status.success())
}

#[test]
fn instantiate_for_wasm32_calls_like_x86_64() {
    for (symbol, call) in [
        ("sum$f64", &["[1.5, 2.25, 3]", "3"][..]),
        ("sum$i8", &["[127, 1, -3]", "3"]),
        ("sort$i32", &["[5, -3, 2147483647, 0, -2147483648, 2]", "6"]),
        ("dot$f32", &["[1, nan]", "[2, 3]", "2"]),
        ("binary_search$u16", &["[1, 4, 9, 65535]", "4", "65535"]),
        ("max$u8", &["[]", "0"]),
    ] {
        let (x86, x86_ok) = call_on("x86-64", symbol, call);
        let (wasm, wasm_ok) = call_on("wasm32", symbol, call);
        assert_eq!(wasm, x86, "{symbol} {call:?}");
        assert_eq!(wasm_ok, x86_ok, "{symbol}: a trap fails both");
    }
    // The buffer is copied back: sort shows its effect, in text too.
    let (sorted, _) = call_on("wasm32", "sort$i32", &["[3, 1, 2]", "3"]);
    assert_eq!(
        sorted["after"][0]["elements"],
        serde_json::json!(["1", "2", "3"])
    );
    let (trap, ok) = call_on("wasm32", "max$u8", &["[]", "0"]);
    assert!(!ok);
    assert_eq!(trap["trap"], "Explicit(1)");
    let text = inspect(&[
        "instantiate",
        COLLECTIONS,
        "sort$i32",
        "--target",
        "wasm32",
        "--call",
        "[3, 1, 2]",
        "3",
    ]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.ends_with(
            "  sort$i32([3, 1, 2], 3) = (no result)\n  argument 1 after the call: [1, 2, 3]\n"
        ),
        "{text}"
    );
}

#[test]
fn instantiate_for_wasm32_writes_a_valid_module_exporting_the_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sort.wasm");
    let out = stdout_of(&[
        "instantiate",
        COLLECTIONS,
        "sort$i32",
        "--target",
        "wasm32",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert!(out.contains("wasm32 module: 3 instantiation(s)"), "{out}");
    assert!(
        out.ends_with(&format!("  written to {}\n", path.display())),
        "{out}"
    );
    let bytes = std::fs::read(&path).expect("the module is written");
    wasmparser::Validator::new()
        .validate_all(&bytes)
        .expect("the module validates");
    let mut exports = Vec::new();
    let mut imports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.expect("parses") {
            wasmparser::Payload::ExportSection(s) => {
                exports.extend(s.into_iter().map(|e| e.expect("an export").name.to_owned()));
            }
            wasmparser::Payload::ImportSection(s) => {
                imports.extend(s.into_iter().map(|i| {
                    let i = i.expect("an import");
                    format!("{}.{}", i.module, i.name)
                }));
            }
            _ => {}
        }
    }
    for symbol in ["sort$i32", "quicksort$i32", "insertion_sort$i32"] {
        assert!(exports.iter().any(|e| e == symbol), "{symbol}: {exports:?}");
    }
    assert_eq!(
        imports,
        [
            "env.memory",
            "env.__indirect_function_table",
            "env.__memory_base",
            "env.__table_base"
        ]
    );
    // The JSON names the file and the exports; an unwritable path is an
    // error of the file kind.
    let json = json_of(&[
        "instantiate",
        COLLECTIONS,
        "sum$f64",
        "--target",
        "wasm32",
        "-o",
        path.to_str().unwrap(),
    ]);
    assert_eq!(json["output"], path.to_str().unwrap());
    assert_eq!(json["exports"], serde_json::json!(["sum$f64"]));
    let out = inspect(&[
        "instantiate",
        COLLECTIONS,
        "sum$f64",
        "--target",
        "wasm32",
        "-o",
        dir.path().join("no/such/dir.wasm").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write the module to"),
        "{out:?}"
    );
}

#[test]
fn instantiate_for_wasm32_prints_the_text_format() {
    let out = stdout_of(&[
        "instantiate",
        COLLECTIONS,
        "sort$i32",
        "--target",
        "wasm32",
        "--disasm",
    ]);
    assert!(out.contains("\n(module\n"), "{out}");
    assert!(out.contains("(export \"quicksort$i32\""), "{out}");
    assert!(out.contains("(import \"env\" \"__table_base\""), "{out}");
    let json = json_of(&[
        "instantiate",
        COLLECTIONS,
        "sum$f64",
        "--target",
        "wasm32",
        "--disasm",
    ]);
    assert!(json["disassembly"].as_str().unwrap().starts_with("(module"));
}

#[test]
fn instantiate_rejects_arguments_that_do_not_go_with_the_target() {
    for (args, why) in [
        (
            &["-o", "out.wasm"][..],
            "-o writes a WebAssembly module: add --target wasm32",
        ),
        (
            &["--target", "x86-64", "-o", "out.wasm"],
            "-o writes a WebAssembly module: add --target wasm32",
        ),
        (
            &["--target", "wasm32", "--tier", "compiled"],
            "--target wasm32 compiles a WebAssembly module instead",
        ),
        (
            &["--target", "wasm32", "--tier", "auto", "--calls", "3"],
            "--target wasm32 compiles a WebAssembly module instead",
        ),
        (
            &["--target", "wasm32", "--call", "[1]", "1", "--repeat", "2"],
            "--target wasm32 calls the module once",
        ),
        (
            &["--target", "wasm32", "--disasm", "--syntax", "gas"],
            "--syntax is for x86-64 listings",
        ),
        (
            &["--target", "arm"],
            "invalid value 'arm' for '--target <TARGET>'\n  [possible values: x86-64, wasm32]",
        ),
    ] {
        assert_instantiate_usage_error(args, why);
    }
    // x86-64 explicitly is the default.
    let json = json_of(&["instantiate", COLLECTIONS, "max$i32", "--target", "x86-64"]);
    assert_eq!(json["target"], "x86-64");
    assert_eq!(json["precompiled"], false);
}

#[test]
fn instantiate_disasm_stops_at_the_instructions_and_lists_the_pool_as_data() {
    let listing = stdout_of(&["instantiate", COLLECTIONS, "sum$f64", "--disasm"]);
    let lines: Vec<&str> = listing
        .lines()
        .filter(|l| l.len() > 18 && l.as_bytes()[..16].iter().all(u8::is_ascii_hexdigit))
        .collect();
    let first_data = lines
        .iter()
        .position(|l| l.contains(" .quad ") || l.contains(" .byte "))
        .unwrap_or_else(|| panic!("the pool is listed as data: {listing}"));
    // The code ends with its return, or with its last trap stub when it
    // tests for a trap (loads trap on null by faulting, without a stub).
    let last = lines[..first_data].last().unwrap();
    assert!(
        last.ends_with("ret") || last.ends_with("ud2"),
        "the instructions end with a return or a trap stub: {listing}"
    );
    assert!(
        lines[first_data..]
            .iter()
            .all(|l| l.contains(" .quad ") || l.contains(" .byte ")),
        "nothing after the instructions is decoded: {listing}"
    );
    assert!(!listing.contains("(bad)"), "{listing}");
}

#[test]
fn instantiate_loads_the_modules_a_module_imports_from_first() {
    const HEAP: &str = "tests/fixtures/heap.smf";
    const USER: &str = "tests/fixtures/heapuser.smf";
    // Without the definer, the import is named.
    let out = inspect(&["instantiate", USER, "pages$i64", "--call"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("it imports the memory 'heap', which no loaded module defines"),
        "{err}"
    );
    // With it, in every tier and on wasm32: one page to start, the grow
    // returns the old size.
    for tier in ["compiled", "interpreted", "auto"] {
        let json = json_of(&[
            "instantiate",
            "--load",
            HEAP,
            USER,
            "grow_pages$i64",
            "--tier",
            tier,
            "--call",
            "2",
        ]);
        assert_eq!(json["call"]["result"], "1", "{tier}");
    }
    let json = json_of(&[
        "instantiate",
        "--target",
        "wasm32",
        "--load",
        HEAP,
        USER,
        "grow_pages$i64",
        "--call",
        "2",
    ]);
    assert_eq!(json["call"]["result"], "1");
    // Out of bounds is a trap, reported as such.
    let out = inspect(&[
        "instantiate",
        "--load",
        HEAP,
        USER,
        "peek$i64",
        "--call",
        "65536",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("peek$i64(65536) = trap: OutOfBounds"),
        "{text}"
    );
}
