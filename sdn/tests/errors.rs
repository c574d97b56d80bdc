//! Every error carries a line and column and a message a person can act
//! on; limits stop hostile input before it exhausts the stack or memory.

use sdn::limits::{MAX_DEPTH, MAX_INPUT_BYTES, MAX_TABLE_COLUMNS};
use sdn::{ErrorKind, Value};

fn err(text: &str) -> (usize, usize, String) {
    let e = sdn::parse(text).unwrap_err();
    let loc = e.location().expect("parse errors have a location");
    (loc.line, loc.column, e.message())
}

#[test]
fn syntax_errors_point_at_the_problem() {
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "a: \"abc\n",
            1,
            4,
            "unterminated string; add the closing '\"' on the same line (write a newline as \\n)",
        ),
        (
            "a: \"x\\q\"\n",
            1,
            6,
            "unknown escape '\\q' in a quoted string; the escapes are \\\" \\\\ \\n \\r \\t \\0 and \\u{hex}",
        ),
        (
            "a: \"\\u{d800}\"\n",
            1,
            5,
            "'\\u{d800}' is not a valid Unicode scalar value",
        ),
        (
            "a = [1, 2\n",
            1,
            5,
            "unterminated inline array; add the closing ']' on the same line",
        ),
        (
            "a = {x: 1\n",
            1,
            5,
            "unterminated inline dict; add the closing '}' on the same line",
        ),
        ("a = {x 1}\n", 1, 8, "expected ':' after the key"),
        (
            "a = [1, , 2]\n",
            1,
            9,
            "missing value; write null for an absent value or \"\" for an empty string",
        ),
        (
            "a = 5\n",
            1,
            5,
            "'=' must be followed by an inline dict '{...}' or array '[...]'; use ':' for a single value",
        ),
        (
            "a: [1] x\n",
            1,
            8,
            "unexpected text after the value; quote the value if it should include this text",
        ),
        (
            "a: \"x\" y\n",
            1,
            8,
            "unexpected text after the value; quote the value if it should include this text",
        ),
        (
            "port 8080\n",
            1,
            6,
            "expected ':', '=' or '|' after the key 'port'",
        ),
        (
            "-x: 1\n",
            1,
            1,
            "expected a key (a name such as `port` or a quoted string) at the start of the line",
        ),
        (
            "a:\nb: 1\n",
            1,
            1,
            "'a:' has no value and no indented block below it; write a value, indent a block under it, or use 'a = {}' / 'a = []' for an empty dict or array",
        ),
        (
            "a: 1\n  b: 2\n",
            2,
            3,
            "indentation of 2 spaces matches no enclosing block here (expected 0 spaces)",
        ),
        (
            "a:\n    b: 1\n  c: 2\n",
            3,
            3,
            "indentation of 2 spaces matches no enclosing block here (expected 0 spaces)",
        ),
        (
            "a:\n    x\n    k: v\n",
            3,
            5,
            "this block is an array (its first line is a value), but this line is a 'key: value' entry; quote the item if it is a string",
        ),
        (
            "a:\n    k: v\n    x\n",
            3,
            6,
            "expected ':', '=' or '|' after the key 'x'",
        ),
        (
            "t |a, b|\n    1, 2, 3\n",
            2,
            5,
            "this row has 3 cells but the table has 2 columns",
        ),
        (
            "t |a, b| 1\n",
            1,
            10,
            "this row has 1 cells but the table has 2 columns",
        ),
        (
            "t |a, b\n",
            1,
            3,
            "unterminated field list; add the closing '|' on the same line",
        ),
        (
            "t |a, a|\n",
            1,
            7,
            "duplicate column 'a' in the table header",
        ),
        (
            "t: table{i32} = [(1, 2)]\n",
            1,
            18,
            "this row has 2 cells but the table has 1 columns",
        ),
        (
            "t: table{i32, i32} = [(1, 2)\n",
            1,
            22,
            "unterminated list of rows; add the closing ']' on the same line",
        ),
        (
            "t: table{u8}\n    256\n",
            2,
            5,
            "a column of type u8 cannot hold the integer 256",
        ),
        (
            "t: table{i32}\n    1.5\n",
            2,
            5,
            "a column of type i32 cannot hold the number 1.5",
        ),
        (
            "t: table{bool}\n    yes\n",
            2,
            5,
            "a column of type bool cannot hold a string",
        ),
        (
            "n: 9223372036854775808\n",
            1,
            4,
            "integer 9223372036854775808 does not fit in a signed 64-bit integer",
        ),
        (
            "n: 1e400\n",
            1,
            4,
            "number 1e400 is too large for a 64-bit float",
        ),
        (
            "a: 1\nb: 2\na: 3\n",
            3,
            1,
            "duplicate key 'a' (first defined on line 1)",
        ),
        (
            "a = {x: 1, x: 2}\n",
            1,
            12,
            "duplicate key 'x' (first defined on line 1)",
        ),
        (
            "a:\n\tb: 1\n",
            2,
            1,
            "indentation contains a tab; indent with spaces only",
        ),
        (
            "a: 1\rb: 2\n",
            1,
            5,
            "carriage return not followed by a line feed; lines end with LF or CRLF",
        ),
        (
            "a: 1\n# c\n\n  \n  b: 2\n",
            5,
            3,
            "indentation of 2 spaces matches no enclosing block here (expected 0 spaces)",
        ),
        (
            "é: \"x\n",
            1,
            1,
            "expected a key (a name such as `port` or a quoted string) at the start of the line",
        ),
        (
            "k: \"é\" é\n",
            1,
            8,
            "unexpected text after the value; quote the value if it should include this text",
        ),
    ];
    for &(text, line, column, message) in cases {
        assert_eq!(err(text), (line, column, message.to_owned()), "{text:?}");
    }
}

#[test]
fn display_puts_the_location_first() {
    let e = sdn::parse("a: 1\nb = 2\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2, column 5: '=' must be followed by an inline dict '{...}' or array '[...]'; use ':' for a single value"
    );
}

#[test]
fn comments_tabs_and_line_endings_follow_the_documented_rules() {
    let doc = sdn::parse(
        "\u{feff}# heading\r\na:\t1\t# note\r\nb: x#y\r\n\t\r\nc = [1, 2] # c\r\n\td:\r\n",
    );
    // A tab-indented line with content is refused even after other lines.
    assert_eq!(
        doc.unwrap_err().location().map(|l| (l.line, l.column)),
        Some((6, 1))
    );
    let doc =
        sdn::parse("\u{feff}# heading\r\na:\t1\t# note\r\nb: x#y\r\n\t\r\nc = [1, 2] # c\r\n")
            .unwrap();
    assert_eq!(doc["a"], Value::Int(1));
    assert_eq!(doc["b"], Value::from("x#y"));
    assert_eq!(doc["c"], Value::Array(vec![1.into(), 2.into()]));
    assert_eq!(doc.len(), 3);
    // A tab inside a value is kept; tabs around it are trimmed.
    assert_eq!(
        sdn::parse("a:\tx\ty\t\n").unwrap()["a"],
        Value::from("x\ty")
    );
}

#[test]
fn nesting_depth_is_bounded_at_the_limit() {
    let inline = |n: usize| format!("a = {}{}\n", "[".repeat(n), "]".repeat(n));
    assert!(sdn::parse(&inline(MAX_DEPTH - 1)).is_ok());
    let e = sdn::parse(&inline(MAX_DEPTH)).unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::TooDeep { max: MAX_DEPTH });
    assert_eq!(e.location().map(|l| l.column), Some(4 + MAX_DEPTH));
    // Far deeper input fails the same way, without exhausting the stack.
    assert_eq!(
        sdn::parse(&inline(200_000)).unwrap_err().kind(),
        &ErrorKind::TooDeep { max: MAX_DEPTH }
    );

    let blocks = |n: usize| {
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!("{}k:\n", " ".repeat(i)));
        }
        text.push_str(&format!("{}v: 1\n", " ".repeat(n)));
        text
    };
    assert!(sdn::parse(&blocks(MAX_DEPTH - 1)).is_ok());
    let e = sdn::parse(&blocks(MAX_DEPTH)).unwrap_err();
    assert_eq!(e.kind(), &ErrorKind::TooDeep { max: MAX_DEPTH });
    assert_eq!(e.location().map(|l| l.line), Some(MAX_DEPTH + 1));
    assert!(sdn::from_str::<serde_json::Value>(&blocks(50_000)).is_err());
}

#[test]
fn writer_refuses_values_nested_beyond_the_limit() {
    let mut v = Value::Int(1);
    for _ in 0..MAX_DEPTH + 1 {
        v = Value::Array(vec![v]);
    }
    let mut doc = sdn::Dict::new();
    doc.insert("a".into(), v);
    assert_eq!(
        sdn::write_document(&doc).unwrap_err().kind(),
        &ErrorKind::TooDeep { max: MAX_DEPTH }
    );
}

#[test]
fn table_columns_are_bounded_at_the_limit() {
    let header = |n: usize| {
        (0..n)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert!(sdn::parse(&format!("t |{}|\n", header(MAX_TABLE_COLUMNS))).is_ok());
    let e = sdn::parse(&format!("t |{}|\n", header(MAX_TABLE_COLUMNS + 1))).unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::TooManyColumns {
            max: MAX_TABLE_COLUMNS
        }
    );
}

#[test]
fn input_size_is_bounded_at_the_limit() {
    let mut text = String::from("a: ");
    text.push_str(&"x".repeat(MAX_INPUT_BYTES - text.len() - 1));
    text.push('\n');
    assert_eq!(text.len(), MAX_INPUT_BYTES);
    assert_eq!(
        sdn::parse(&text).unwrap()["a"].as_str().map(str::len),
        Some(MAX_INPUT_BYTES - 4)
    );
    text.push('\n');
    assert_eq!(
        sdn::parse(&text).unwrap_err().kind(),
        &ErrorKind::InputTooLarge {
            len: MAX_INPUT_BYTES + 1,
            max: MAX_INPUT_BYTES
        }
    );
}

#[test]
fn writer_refuses_what_sdn_cannot_express() {
    let mut doc = sdn::Dict::new();
    doc.insert("f".into(), Value::Float(f64::NAN));
    assert_eq!(
        sdn::write_document(&doc).unwrap_err().to_string(),
        "cannot write as SDN: a float that is infinite or NaN"
    );
    let table = Value::Table(sdn::Table {
        header: sdn::Header::Named(vec!["a".into()]),
        rows: vec![],
    });
    doc.insert("f".into(), Value::Array(vec![table]));
    assert_eq!(
        sdn::write_document(&doc).unwrap_err().to_string(),
        "cannot write as SDN: a table can only be the value of a key, not an item of an array or an inline dict"
    );
    assert_eq!(
        sdn::to_string(&vec![1, 2]).unwrap_err().to_string(),
        "cannot write as SDN: an array at the top level (a document is a dict: serialize a struct or a map)"
    );
}

#[test]
fn serde_errors_name_the_key_and_locate_the_value() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Server {
        port: u16,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Config {
        server: Server,
    }
    let e = sdn::from_str::<Config>("server:\n    port: 70000\n").unwrap_err();
    assert_eq!(
        e.location(),
        Some(sdn::Location {
            line: 2,
            column: 11
        })
    );
    assert_eq!(
        e.message(),
        "key 'port': invalid value: integer `70000`, expected u16"
    );
    let e = sdn::from_str::<Config>("server:\n    port: 1\nserver:\n    port: 2\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 3, column 1: duplicate key 'server' (first defined on line 1)"
    );
}
