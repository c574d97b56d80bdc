//! The `note.sdn` schema over a realistic section.

use sdn::note::{DepKind, Note, Status, TypeArgs};

const NOTE: &str = r#"# Instantiation To/From Metadata
instantiations |id, template, type_args, mangled_name, from_file, from_loc, to_obj, status|
    1, Vec, i32, "Vec$i32", src/main.spl, 12:5, main.o, compiled
    2, Pair, "i32,f64", "Pair$i32$f64", src/geom.spl, 40:17, geom.o, deferred
    3, Map, "str,Vec<i32>", "Map$str$Vec$i32", "src/my dir/tables.spl", 7:1, tables.o, jit_compiled
    4, Wrap, "Pair<i32,u8>,f64", "_ZN4Wrap$Pair<i32,u8>$f64", lib/wrap.spl, 3:9, wrap.o, compiled

possible |id, template, type_args, mangled_name, required_by, can_defer|
    10, sum, f32, "sum$f32", main.o, true
    11, Vec, "u8", "Vec$u8", "tables.o", false

type_inferences |id, inferred_type, expr, context, from_file, from_loc|
    1, i32, "x + 1", "fn add(x)", src/main.spl, 3:4

dependencies |from_inst, to_inst, dep_kind|
    3, 1, inner_type
    4, 2, type_param

circular_warnings |id, cycle_path, severity|

circular_errors |id, cycle_path, error_code|
    1, "Node->List<Node>->Node", E0420
# END_NOTE
"#;

#[test]
fn reads_every_table_with_typed_fields() {
    let note = Note::parse(NOTE).unwrap();
    assert_eq!(note.instantiations.len(), 4);
    let pair = &note.instantiations[1];
    assert_eq!(pair.id, 2);
    assert_eq!(pair.type_args, TypeArgs(vec!["i32".into(), "f64".into()]));
    assert_eq!(pair.mangled_name, "Pair$i32$f64");
    assert_eq!(pair.from_loc, "40:17");
    assert_eq!(pair.status, Status::Deferred);
    assert_eq!(note.instantiations[2].from_file, "src/my dir/tables.spl");
    assert_eq!(note.instantiations[2].status, Status::JitCompiled);
    assert_eq!(
        note.instantiations[3].type_args,
        TypeArgs(vec!["Pair<i32,u8>".into(), "f64".into()])
    );
    assert!(note.possible[0].can_defer);
    assert_eq!(note.possible[1].required_by, "tables.o");
    assert_eq!(note.type_inferences[0].expr, "x + 1");
    assert_eq!(note.dependencies[0].dep_kind, DepKind::InnerType);
    assert_eq!(note.dependencies[1].dep_kind, DepKind::TypeParam);
    assert!(note.circular_warnings.is_empty());
    assert_eq!(note.circular_errors[0].error_code, "E0420");
    assert_eq!(note.circular_errors[0].cycle_path, "Node->List<Node>->Node");
}

#[test]
fn writes_header_tables_and_terminator_and_reads_back() {
    let note = Note::parse(NOTE).unwrap();
    let text = note.to_sdn_string().unwrap();
    assert!(text.starts_with("# Instantiation To/From Metadata\ninstantiations |id, template"));
    assert!(text.ends_with("\n# END_NOTE\n"));
    assert!(text.contains("\ncircular_warnings |id, cycle_path, severity|\ncircular_errors"));
    assert!(text.contains(
        "    2, Pair, \"i32,f64\", Pair$i32$f64, src/geom.spl, 40:17, geom.o, deferred\n"
    ));
    assert_eq!(Note::parse(&text).unwrap(), note);
}

#[test]
fn an_empty_note_writes_six_headers() {
    let text = Note::default().to_sdn_string().unwrap();
    assert_eq!(
        text,
        "# Instantiation To/From Metadata\n\
         instantiations |id, template, type_args, mangled_name, from_file, from_loc, to_obj, status|\n\
         possible |id, template, type_args, mangled_name, required_by, can_defer|\n\
         type_inferences |id, inferred_type, expr, context, from_file, from_loc|\n\
         dependencies |from_inst, to_inst, dep_kind|\n\
         circular_warnings |id, cycle_path, severity|\n\
         circular_errors |id, cycle_path, error_code|\n\
         # END_NOTE\n"
    );
    assert_eq!(Note::parse(&text).unwrap(), Note::default());
}

#[test]
fn record_jit_compiled_moves_the_row() {
    let mut note = Note::parse(NOTE).unwrap();
    let row = note
        .record_jit_compiled("sum$f32", "<jit>")
        .unwrap()
        .clone();
    assert_eq!(row.id, 5);
    assert_eq!(row.template, "sum");
    assert_eq!(row.type_args, TypeArgs(vec!["f32".into()]));
    assert_eq!(row.from_file, "main.o");
    assert_eq!(row.from_loc, "");
    assert_eq!(row.to_obj, "<jit>");
    assert_eq!(row.status, Status::JitCompiled);
    assert!(note.possible("sum$f32").is_none());
    assert_eq!(note.possible.len(), 1);
    assert_eq!(note.instantiation("sum$f32"), Some(&row));
    // Written and read back, the move persists.
    assert_eq!(Note::parse(&note.to_sdn_string().unwrap()).unwrap(), note);
    // A second move of the same name fails and changes nothing.
    let before = note.clone();
    let err = note.record_jit_compiled("sum$f32", "<jit>").unwrap_err();
    assert_eq!(
        err.to_string(),
        "'sum$f32' is already in the instantiations table"
    );
    let err = note.record_jit_compiled("nope", "<jit>").unwrap_err();
    assert_eq!(err.to_string(), "'nope' is not in the possible table");
    assert_eq!(note, before);
}

/// Parses `text` as a note and checks the error's location and message.
fn assert_note_error(text: &str, line: usize, column: usize, message: &str) {
    let err = Note::parse(text).unwrap_err();
    assert_eq!(
        err.location(),
        Some(sdn::Location { line, column }),
        "{message}"
    );
    assert_eq!(err.message(), message);
}

#[test]
fn errors_name_table_row_and_column_with_location() {
    assert_note_error(
        &NOTE.replace("geom.o, deferred", "geom.o, deferrd"),
        4,
        70,
        "table 'instantiations', row 2, column 'status': unknown variant `deferrd`, expected one of `compiled`, `deferred`, `jit_compiled`",
    );
    assert_note_error(
        &NOTE.replace("    10, sum,", "    ten, sum,"),
        9,
        5,
        "table 'possible', row 1, column 'id': invalid type: string \"ten\", expected u32",
    );
    assert_note_error(
        &NOTE.replace("|from_inst, to_inst, dep_kind|", "|from_inst, to_inst|"),
        16,
        5,
        "table 'dependencies', row 1: this row has 3 cells but the table has 2 columns",
    );
    assert_note_error(
        &NOTE.replace("3, 1, inner_type", "99999999999, 1, inner_type"),
        16,
        5,
        "table 'dependencies', row 1, column 'from_inst': invalid value: integer `99999999999`, expected u32",
    );
}

#[test]
fn missing_columns_and_unknown_tables_are_errors() {
    assert_note_error(
        "possible |id, template|\n    1, sum\n",
        2,
        5,
        "table 'possible', row 1: missing field `type_args`",
    );
    let err = Note::parse("possibles |id|\n    1\n").unwrap_err();
    assert_eq!(err.location(), Some(sdn::Location { line: 1, column: 1 }));
    assert!(
        err.message()
            .starts_with("unknown field `possibles`, expected one of `instantiations`"),
        "{err}"
    );
}

#[test]
fn text_after_end_note_is_an_error_but_blank_lines_are_not() {
    let ok = format!("{NOTE}\n\n");
    assert_eq!(
        Note::parse(&ok).expect("blank lines may follow"),
        Note::parse(NOTE).expect("the note reads")
    );
    let err = Note::parse(&format!("{NOTE}junk\n")).unwrap_err();
    assert_eq!(err.message(), "text after the '# END_NOTE' line");
    assert_eq!(err.location().map(|l| l.line), Some(24));
}

#[test]
fn type_args_split_only_outside_brackets() {
    assert_eq!(TypeArgs::split(""), TypeArgs(vec![]));
    assert_eq!(TypeArgs::split("i32"), TypeArgs(vec!["i32".into()]));
    assert_eq!(
        TypeArgs::split("Map<str,Vec<(i32,u8)>>, [u8;4]"),
        TypeArgs(vec!["Map<str,Vec<(i32,u8)>>".into(), "[u8;4]".into()])
    );
    assert_eq!(
        TypeArgs(vec!["a".into(), "b".into()]).join().unwrap(),
        "a,b"
    );
    assert!(TypeArgs(vec!["a,b".into()]).join().is_err());
    assert!(TypeArgs(vec![String::new()]).join().is_err());
    assert_eq!(TypeArgs(vec![]).join().unwrap(), "");
    // Unbalanced closers never go below depth 0; with or without brackets
    // elsewhere, spaces around each argument are dropped.
    assert_eq!(
        TypeArgs::split(" a> , b "),
        TypeArgs(vec!["a>".into(), "b".into()])
    );
    assert_eq!(
        TypeArgs::split("a>,(b,c),d"),
        TypeArgs(vec!["a>".into(), "(b,c)".into(), "d".into()])
    );
    assert_eq!(
        TypeArgs::split(",,"),
        TypeArgs(vec![String::new(), String::new(), String::new()])
    );
}

/// Splitting by definition: commas at bracket depth 0 separate arguments,
/// each trimmed; a blank cell is no arguments.
fn split_by_definition(cell: &str) -> Vec<String> {
    if cell.trim().is_empty() {
        return Vec::new();
    }
    let (mut args, mut current, mut depth) = (Vec::new(), String::new(), 0usize);
    for c in cell.chars() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                args.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    args.push(current.trim().to_owned());
    args
}

proptest::proptest! {
    #[test]
    fn type_args_split_agrees_with_its_definition(cell in "[a-z0-9<>()\\[\\], ;\t\u{a0}é]{0,24}") {
        proptest::prop_assert_eq!(TypeArgs::split(&cell).0, split_by_definition(&cell));
    }
}

#[test]
fn note_field_lists_match_the_row_structs() {
    use sdn::note::*;
    let keys = |v: sdn::Value| -> Vec<String> { v.as_dict().unwrap().keys().cloned().collect() };
    let note = Note::parse(NOTE).unwrap();
    assert_eq!(
        keys(sdn::to_value(&note.instantiations[0]).unwrap()),
        INSTANTIATION_FIELDS
    );
    assert_eq!(
        keys(sdn::to_value(&note.possible[0]).unwrap()),
        POSSIBLE_FIELDS
    );
    assert_eq!(
        keys(sdn::to_value(&note.type_inferences[0]).unwrap()),
        TYPE_INFERENCE_FIELDS
    );
    assert_eq!(
        keys(sdn::to_value(&note.dependencies[0]).unwrap()),
        DEPENDENCY_FIELDS
    );
    assert_eq!(
        keys(sdn::to_value(&note.circular_errors[0]).unwrap()),
        CIRCULAR_ERROR_FIELDS
    );
    let warning = CircularWarning {
        id: 1,
        cycle_path: "A->A".into(),
        severity: "low".into(),
    };
    assert_eq!(
        keys(sdn::to_value(&warning).unwrap()),
        CIRCULAR_WARNING_FIELDS
    );
}

#[test]
fn columns_in_any_order_read_the_same() {
    let ordered = "dependencies |from_inst, to_inst, dep_kind|\n    3, 1, inner_type\n";
    let shuffled = "dependencies |dep_kind, from_inst, to_inst|\n    inner_type, 3, 1\n";
    let a = Note::parse(ordered).unwrap();
    assert_eq!(a.dependencies[0].from_inst, 3);
    assert_eq!(a.dependencies[0].dep_kind, DepKind::InnerType);
    assert_eq!(Note::parse(shuffled).unwrap(), a);
    // Errors name the column in both layouts.
    let err = Note::parse("dependencies |dep_kind, from_inst, to_inst|\n    inner_type, x, 1\n")
        .unwrap_err();
    assert_eq!(
        err.message(),
        "table 'dependencies', row 1, column 'from_inst': invalid type: string \"x\", expected u32"
    );
    assert_eq!(
        err.location(),
        Some(sdn::Location {
            line: 2,
            column: 17
        })
    );
}
