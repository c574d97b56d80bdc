//! `parse(to_string(v)) == v` for arbitrary values, and the same for
//! serde structs, with strings chosen to be awkward for a bare-string
//! format.

use proptest::prelude::*;
use sdn::{Dict, Header, Table, Value};
use serde::{Deserialize, Serialize};

/// Strings that look like other things, contain the format's special
/// characters, or have spaces, newlines and non-ASCII text.
fn awkward() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec![
        "",
        " ",
        "true",
        "false",
        "null",
        "nil",
        "True",
        "42",
        "-17",
        "1_000",
        "3.14",
        "1e5",
        "-0.5",
        "2.1.0",
        "0.0.0.0",
        "#",
        "a #b",
        "a#b",
        "|",
        "a|b",
        "a |b|",
        ",",
        "a, b",
        "\"",
        "say \"hi\"",
        "\\",
        "C:\\dir\\",
        " lead",
        "trail ",
        "\t",
        "a\tb",
        "é",
        "日本語",
        "a\nb",
        "\r\n",
        "\u{0}",
        "\u{7f}",
        "\u{2028}",
        "table{i32}",
        "table {x}",
        "a: b",
        "a:",
        "k = v",
        "k |f|",
        "[x]",
        "{x}",
        "(x)",
        "]",
        "}",
        ")",
        "[",
        "{",
        "x]",
        "x}",
        "x)",
        "/api/users/{id}",
        "Alice Chen",
        "http://h:80/p",
        "-",
        "_",
        "\u{feff}x",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        3 => fixed,
        2 => "[ -~]{0,8}",
        1 => any::<String>(),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop::num::f64::NORMAL
            .prop_union(prop::num::f64::SUBNORMAL)
            .or(prop::num::f64::ZERO)
            .prop_map(Value::Float),
        Just(Value::Float(1.0)),
        awkward().prop_map(Value::String),
    ]
}

/// Values that can appear anywhere, including inside inline arrays and
/// dicts (everything but tables).
fn inline_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((awkward(), inner), 0..4)
                .prop_map(|pairs| Value::Dict(pairs.into_iter().collect())),
        ]
    })
}

fn named_table() -> impl Strategy<Value = Value> {
    prop::collection::vec(awkward(), 1..4)
        .prop_map(|mut fields| {
            fields.sort();
            fields.dedup();
            fields
        })
        .prop_flat_map(|fields| {
            let width = fields.len();
            prop::collection::vec(prop::collection::vec(inline_value(), width), 0..4).prop_map(
                move |rows| {
                    Value::Table(Table {
                        header: Header::Named(fields.clone()),
                        rows,
                    })
                },
            )
        })
}

fn typed_cell(ty: &str) -> BoxedStrategy<Value> {
    match ty {
        "i32" => any::<i32>().prop_map(|i| Value::Int(i.into())).boxed(),
        "u8" => any::<u8>().prop_map(|i| Value::Int(i.into())).boxed(),
        "f64" => prop::num::f64::NORMAL.prop_map(Value::Float).boxed(),
        "bool" => any::<bool>().prop_map(Value::Bool).boxed(),
        "str" => awkward().prop_map(Value::String).boxed(),
        _ => inline_value().boxed(),
    }
}

fn typed_table() -> impl Strategy<Value = Value> {
    let ty = prop::sample::select(vec!["i32", "u8", "f64", "bool", "str", "Point"]);
    prop::collection::vec(ty, 1..4).prop_flat_map(|types| {
        let row: Vec<BoxedStrategy<Value>> = types.iter().map(|t| typed_cell(t)).collect();
        let names: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        prop::collection::vec(row, 0..4).prop_map(move |rows| {
            Value::Table(Table {
                header: Header::Typed(names.clone()),
                rows,
            })
        })
    })
}

/// Values stored under a key: anything, including tables and block dicts
/// whose entries are tables.
fn entry_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![4 => inline_value(), 1 => named_table(), 1 => typed_table()];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop::collection::vec((awkward(), inner), 0..4)
            .prop_map(|pairs| Value::Dict(pairs.into_iter().collect()))
    })
}

fn document() -> impl Strategy<Value = Dict> {
    prop::collection::vec((awkward(), entry_value()), 0..6)
        .prop_map(|pairs| pairs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_written_document_is_the_document(doc in document()) {
        let text = sdn::write_document(&doc).unwrap();
        let back = sdn::parse(&text);
        prop_assert!(back.is_ok(), "{:?}\n---\n{}", back, text);
        prop_assert_eq!(back.unwrap(), doc.clone(), "\n{}", text);
        // to_string on a Value is the same writer.
        prop_assert_eq!(sdn::to_string(&Value::Dict(doc)).unwrap(), text);
    }

    #[test]
    fn every_string_survives_every_place(s in awkward()) {
        let string = || Value::String(s.clone());
        let table = |header| Value::Table(Table { header, rows: vec![vec![string(), string()]] });
        let mut inner = Dict::new();
        inner.insert(s.clone(), string());
        let mut doc = Dict::new();
        doc.insert("line".into(), string());
        doc.insert("inline_array".into(), Value::Array(vec![string(), string()]));
        doc.insert("inline_dict".into(), Value::Array(vec![Value::Dict(inner.clone())]));
        // Not all scalars, so written as a block: `s` is a block item.
        doc.insert("block_items".into(), Value::Array(vec![string(), Value::Array(vec![string()])]));
        doc.insert("block_dict".into(), Value::Dict(inner));
        doc.insert("named".into(), table(Header::Named(vec![s.clone(), format!("{s}2")])));
        doc.insert("typed".into(), table(Header::Typed(vec!["str".into(), "Any".into()])));
        doc.insert(s.clone(), Value::Int(1));
        let text = sdn::write_document(&doc).unwrap();
        let back = sdn::parse(&text);
        prop_assert!(back.is_ok(), "{:?}\n---\n{}", back, text);
        prop_assert_eq!(back.unwrap(), doc, "\n{}", text);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u32,
    name: String,
    score: f64,
    tags: Vec<String>,
    note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Config {
    title: String,
    port: u16,
    ratio: f32,
    enabled: bool,
    records: Vec<Record>,
    labels: std::collections::BTreeMap<String, i64>,
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<u32>(),
        awkward(),
        prop::num::f64::NORMAL,
        prop::collection::vec(awkward(), 0..3),
        prop::option::of(awkward()),
    )
        .prop_map(|(id, name, score, tags, note)| Record {
            id,
            name,
            score,
            tags,
            note,
        })
}

proptest! {
    #[test]
    fn serde_structs_round_trip(
        title in awkward(),
        port in any::<u16>(),
        ratio in prop::num::f32::NORMAL,
        enabled in any::<bool>(),
        records in prop::collection::vec(record(), 0..5),
        labels in prop::collection::btree_map(awkward(), any::<i64>(), 0..4),
    ) {
        let config = Config { title, port, ratio, enabled, records, labels };
        let text = sdn::to_string(&config).unwrap();
        let back: Result<Config, _> = sdn::from_str(&text);
        prop_assert!(back.is_ok(), "{:?}\n---\n{}", back, text);
        let back = back.unwrap();
        // "null" as a string and an absent note are told apart by quoting.
        prop_assert_eq!(back, config, "\n{}", text);
    }
}
