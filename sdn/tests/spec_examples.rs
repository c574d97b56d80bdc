//! Every example of the SDN 1.0 specification (`doc/spec/sdn.md` of the
//! Simple language repository), as data files under `tests/spec/`: each
//! `NAME.sdn` must parse to the value in `NAME.json` (tables in the JSON
//! shape of `doc/formats/sdn.md`; `1` is an integer, `1.0` a float).

use std::fs;
use std::path::PathBuf;

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/spec")
}

fn examples() -> Vec<(String, String, serde_json::Value)> {
    let mut names: Vec<String> = fs::read_dir(spec_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".sdn").map(str::to_owned))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let sdn = fs::read_to_string(spec_dir().join(format!("{name}.sdn"))).unwrap();
            let json = fs::read_to_string(spec_dir().join(format!("{name}.json"))).unwrap();
            (name, sdn, serde_json::from_str(&json).unwrap())
        })
        .collect()
}

#[test]
fn every_spec_example_is_present() {
    assert_eq!(examples().len(), 19);
}

#[test]
fn every_spec_example_parses_to_its_value() {
    for (name, sdn, expected) in examples() {
        let parsed = sdn::parse(&sdn).unwrap_or_else(|e| panic!("{name}: {e}"));
        let actual = serde_json::to_value(sdn::Value::Dict(parsed)).unwrap();
        assert_eq!(actual, expected, "{name}");
    }
}

#[test]
fn every_spec_example_round_trips_through_the_serializer() {
    for (name, sdn, _) in examples() {
        let parsed = sdn::parse(&sdn).unwrap();
        let written = sdn::write_document(&parsed).unwrap();
        assert_eq!(sdn::parse(&written).unwrap(), parsed, "{name}:\n{written}");
        // Writing is canonical: a second pass gives the same text.
        assert_eq!(
            sdn::write_document(&sdn::parse(&written).unwrap()).unwrap(),
            written
        );
    }
}

#[test]
fn every_spec_example_parses_with_crlf_line_endings() {
    for (name, sdn, _) in examples() {
        let crlf = sdn.replace('\n', "\r\n");
        assert_eq!(
            sdn::parse(&crlf).unwrap(),
            sdn::parse(&sdn).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn typed_and_named_tables_keep_their_headers() {
    let doc =
        sdn::parse(&fs::read_to_string(spec_dir().join("13-summary-typed-table.sdn")).unwrap())
            .unwrap();
    let table = doc["short"].as_table().unwrap();
    assert_eq!(
        table.header,
        sdn::Header::Typed(vec!["i32".into(), "i32".into()])
    );
    assert_eq!(
        table.rows,
        vec![vec![1.into(), 2.into()], vec![3.into(), 4.into()]]
    );
    let doc = sdn::parse("p |x, y| 1, 2\n").unwrap();
    assert_eq!(
        doc["p"].as_table().unwrap().header,
        sdn::Header::Named(vec!["x".into(), "y".into()])
    );
}

/// The "Embedded in Simple Code" example continues with Simple code that is
/// not SDN; the SDN parser stops there with a located error.
#[test]
fn simple_code_after_embedded_sdn_is_reported_where_it_starts() {
    let sdn = fs::read_to_string(spec_dir().join("17-embedded-in-simple.sdn")).unwrap();
    let with_code = format!(
        "{sdn}\nfn main():\n    for endpoint in endpoints:\n        print(\"{{endpoint.name}}\")\n"
    );
    let err = sdn::parse(&with_code).unwrap_err();
    assert_eq!(
        err.location(),
        Some(sdn::Location {
            line: 11,
            column: 4
        })
    );
    assert_eq!(err.message(), "expected ':', '=' or '|' after the key 'fn'");
}
