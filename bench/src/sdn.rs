//! SDN parse into typed rows (BRIEF §8: at least the throughput of
//! `serde_json` on the equivalent JSON): a 10,000-row `note.sdn` read into
//! `sdn::note::Note`, against `serde_json` reading the same note into the
//! same structs, written as JSON two ways: as `sdn to-json` writes it
//! (BRIEF §7: each table's field list and rows as arrays, the JSON
//! equivalent of the SDN text and about its size) and as serde writes the
//! structs (every row an object repeating its field names, twice the
//! size).

use sdn::note::{
    CircularError, CircularWarning, DepKind, Dependency, Instantiation, Note, Possible, Status,
    TypeArgs, TypeInference,
};

use crate::harness::{Report, Row, Stats, measure};

const TYPES: [&str; 10] = [
    "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64",
];
const TEMPLATES: [&str; 6] = ["Vec", "Pair", "Map", "sum", "Option", "sort"];

/// 10,000 rows over the six tables, shaped like a large generic library:
/// multi-argument type arguments, paths, locations and every status.
fn note() -> Note {
    let args = |i: usize| -> TypeArgs {
        let n = 1 + i % 3;
        TypeArgs(
            (0..n)
                .map(|k| TYPES[(i + k * 3) % TYPES.len()].to_owned())
                .collect(),
        )
    };
    let mangled = |t: &str, a: &TypeArgs| format!("{t}${}", a.0.join("$"));
    let id = |i: usize| u32::try_from(i).expect("small id");
    let mut note = Note::default();
    for i in 0..4_000 {
        let template = TEMPLATES[i % TEMPLATES.len()];
        let type_args = args(i);
        note.instantiations.push(Instantiation {
            id: id(i),
            template: template.into(),
            mangled_name: mangled(template, &type_args),
            type_args,
            from_file: format!("src/module_{}/lib.spl", i % 40),
            from_loc: format!("{}:{}", 10 + i % 900, 1 + i % 60),
            to_obj: format!("module_{}.o", i % 40),
            status: [Status::Compiled, Status::Deferred, Status::JitCompiled][i % 3],
        });
    }
    for i in 0..3_000 {
        let template = TEMPLATES[(i + 1) % TEMPLATES.len()];
        let type_args = args(i + 7);
        note.possible.push(Possible {
            id: id(i),
            template: template.into(),
            mangled_name: mangled(template, &type_args),
            type_args,
            required_by: format!("module_{}.o", i % 40),
            can_defer: i % 2 == 0,
        });
    }
    for i in 0..1_500 {
        note.type_inferences.push(TypeInference {
            id: id(i),
            inferred_type: format!("Vec<{}>", TYPES[i % TYPES.len()]),
            expr: format!("xs{i}.push(x)"),
            context: format!("fn fill_{i}(xs, x)"),
            from_file: format!("src/module_{}/lib.spl", i % 40),
            from_loc: format!("{}:{}", 5 + i % 700, 3 + i % 40),
        });
    }
    for i in 0..1_000 {
        note.dependencies.push(Dependency {
            from_inst: id(i),
            to_inst: id((i * 7 + 1) % 4_000),
            dep_kind: [
                DepKind::TypeParam,
                DepKind::FieldType,
                DepKind::InnerType,
                DepKind::MethodDep,
            ][i % 4],
        });
    }
    for i in 0..250 {
        note.circular_warnings.push(CircularWarning {
            id: id(i),
            cycle_path: format!("Node{i}->List<Node{i}>->Node{i}"),
            severity: "low".into(),
        });
        note.circular_errors.push(CircularError {
            id: id(i),
            cycle_path: format!("A{i}->B{i}->A{i}"),
            error_code: "E0420".into(),
        });
    }
    note
}

/// One SDN parse of the note: a named function so an instruction counter
/// can collect exactly this call (`--toggle-collect=*parse_sdn_note*`).
#[inline(never)]
fn parse_sdn_note(text: &str) -> Note {
    Note::parse(text).expect("sdn parses")
}

/// One `serde_json` parse of the note written with rows as objects.
#[inline(never)]
fn parse_json_objects_note(text: &str) -> Note {
    serde_json::from_str::<Note>(text).expect("json parses")
}

/// A table as `sdn to-json` writes it; its rows read into the row structs
/// (a struct reads from a JSON array in field order).
#[derive(serde::Deserialize)]
struct JsonTable<T> {
    fields: Vec<String>,
    rows: Vec<T>,
}

/// A note as `sdn to-json` writes it.
#[derive(serde::Deserialize)]
struct JsonNote {
    instantiations: JsonTable<Instantiation>,
    possible: JsonTable<Possible>,
    type_inferences: JsonTable<TypeInference>,
    dependencies: JsonTable<Dependency>,
    circular_warnings: JsonTable<CircularWarning>,
    circular_errors: JsonTable<CircularError>,
}

/// One `serde_json` parse of the note as `sdn to-json` writes it, into the
/// same row structs (the field lists are read and checked too).
#[inline(never)]
fn parse_json_arrays_note(text: &str) -> Note {
    let n: JsonNote = serde_json::from_str(text).expect("json rows parse");
    Note {
        instantiations: n.instantiations.rows_of(&sdn::note::INSTANTIATION_FIELDS),
        possible: n.possible.rows_of(&sdn::note::POSSIBLE_FIELDS),
        type_inferences: n.type_inferences.rows_of(&sdn::note::TYPE_INFERENCE_FIELDS),
        dependencies: n.dependencies.rows_of(&sdn::note::DEPENDENCY_FIELDS),
        circular_warnings: n
            .circular_warnings
            .rows_of(&sdn::note::CIRCULAR_WARNING_FIELDS),
        circular_errors: n.circular_errors.rows_of(&sdn::note::CIRCULAR_ERROR_FIELDS),
    }
}

impl<T> JsonTable<T> {
    /// The rows, once the columns are checked to be `fields` in order.
    fn rows_of(self, fields: &[&str]) -> Vec<T> {
        assert!(self.fields.iter().eq(fields.iter()), "columns in order");
        self.rows
    }
}

fn mb_per_s(bytes: usize, stats: &Stats) -> f64 {
    bytes as f64 / stats.median.as_secs_f64() / 1e6
}

/// Runs the SDN benchmarks.
pub fn run(report: &mut Report) {
    let note = note();
    let sdn_text = note.to_sdn_string().expect("note writes");
    let json_text = serde_json::to_string(&note).expect("note serializes");
    // The note as `sdn to-json` writes it (BRIEF §7: a named table is
    // `{"fields": [...], "rows": [[...]]}`): the JSON equivalent of the
    // SDN text, with the same cells in the same order.
    let json_rows = serde_json::to_string(&sdn::Value::Dict(
        sdn::parse(&sdn_text).expect("note parses as a document"),
    ))
    .expect("document serializes");
    // The same note as an editor on another system would leave it: CRLF
    // line ends, which the one-pass reader leaves to the general reader.
    let crlf_text = sdn_text.replace('\n', "\r\n");
    assert_eq!(parse_sdn_note(&sdn_text), note);
    assert_eq!(parse_sdn_note(&crlf_text), note);
    assert_eq!(parse_json_objects_note(&json_text), note);
    assert_eq!(parse_json_arrays_note(&json_rows), note);
    // `SMFJIT_BENCH_SDN_ONCE=1` stops after these three checked parses (one
    // per contender), for counting the instructions of one of them:
    //   SMFJIT_BENCH_SDN_ONCE=1 valgrind --tool=callgrind --collect-atstart=no \
    //     --toggle-collect='*parse_sdn_note*' target/release/smfjit-bench sdn
    // (or `*parse_json_objects_note*`, `*parse_json_arrays_note*`). A number
    // N > 1 instead parses each contender N more times, for a sampling
    // profiler (`perf record -g`), whose samples then sit under the three
    // named functions.
    if let Some(once) = std::env::var_os("SMFJIT_BENCH_SDN_ONCE") {
        let repeat: usize = once.to_str().and_then(|n| n.parse().ok()).unwrap_or(1);
        if repeat > 1 {
            for _ in 0..repeat {
                drop(parse_sdn_note(&sdn_text));
                drop(parse_json_objects_note(&json_text));
                drop(parse_json_arrays_note(&json_rows));
            }
        }
        println!(
            "  parsed each form {} times: SDN {} bytes, JSON {} bytes, JSON arrays {} bytes",
            repeat.max(1),
            sdn_text.len(),
            json_text.len(),
            json_rows.len()
        );
        return;
    }

    // The machine is shared, so the contenders are measured in alternating
    // rounds and each keeps its best round: load that comes and goes then
    // hits both sides alike.
    let round = || {
        [
            measure(12, || Note::parse(&sdn_text).expect("sdn")),
            measure(12, || {
                serde_json::from_str::<Note>(&json_text).expect("json")
            }),
            measure(12, || parse_json_arrays_note(&json_rows)),
            measure(12, || sdn::parse(&sdn_text).expect("value").len()),
            measure(12, || Note::parse(&crlf_text).expect("sdn")),
            measure(12, || {
                serde_json::from_str::<serde_json::Value>(&json_text)
                    .expect("value")
                    .as_object()
                    .map_or(0, serde_json::Map::len)
            }),
        ]
    };
    let mut best = round();
    for _ in 1..6 {
        for (kept, new) in best.iter_mut().zip(round()) {
            if new.median < kept.median {
                *kept = new;
            }
        }
    }
    let [sdn, json, json_arrays, sdn_value, general, json_value] = best;

    let sdn_mb = mb_per_s(sdn_text.len(), &sdn);
    let json_mb = mb_per_s(json_text.len(), &json);
    let arrays_mb = mb_per_s(json_rows.len(), &json_arrays);
    println!(
        "  note: {} rows; SDN {} bytes, JSON objects {} bytes, `sdn to-json` JSON {} bytes",
        10_000,
        sdn_text.len(),
        json_text.len(),
        json_rows.len()
    );
    let time = |s: &Stats| crate::harness::fmt_duration(s.median);
    report.row(Row {
        area: "sdn".into(),
        what: "note 10k rows → typed structs, MB/s (vs `sdn to-json` JSON)".into(),
        ours: format!("{sdn_mb:.0} MB/s"),
        baseline: format!("{arrays_mb:.0} MB/s"),
        ratio: format!("{:.2}×", sdn_mb / arrays_mb),
        target: "≥ 1.0× serde_json".into(),
        met: Some(sdn_mb >= arrays_mb),
    });
    let general_mb = mb_per_s(crlf_text.len(), &general);
    report.row(Row {
        area: "sdn".into(),
        what: "  the note with CRLF line ends (the general reader), MB/s".into(),
        ours: format!("{general_mb:.0} MB/s"),
        baseline: format!("{arrays_mb:.0} MB/s"),
        ratio: format!("{:.2}×", general_mb / arrays_mb),
        target: "≥ 1.0× serde_json".into(),
        met: Some(general_mb >= arrays_mb),
    });
    report.row(Row {
        area: "sdn".into(),
        what: "  the same, time per note".into(),
        ours: time(&sdn),
        baseline: time(&json_arrays),
        ratio: format!(
            "{:.2}× its speed",
            json_arrays.median_ns() / sdn.median_ns()
        ),
        target: String::new(),
        met: None,
    });
    report.row(Row {
        area: "sdn".into(),
        what: "  vs JSON rows as objects (serde's form), time per note".into(),
        ours: time(&sdn),
        baseline: time(&json),
        ratio: format!("{:.2}× its speed", json.median_ns() / sdn.median_ns()),
        target: String::new(),
        met: None,
    });
    report.row(Row {
        area: "sdn".into(),
        what: "  the same in MB/s of each text".into(),
        ours: format!("{sdn_mb:.0} MB/s"),
        baseline: format!("{json_mb:.0} MB/s"),
        ratio: format!("{:.2}×", sdn_mb / json_mb),
        target: String::new(),
        met: None,
    });
    report.row(Row {
        area: "sdn".into(),
        what: "note → generic values (sdn::Value / json Value)".into(),
        ours: time(&sdn_value),
        baseline: time(&json_value),
        ratio: format!(
            "{:.0} vs {:.0} MB/s",
            mb_per_s(sdn_text.len(), &sdn_value),
            mb_per_s(json_text.len(), &json_value)
        ),
        target: String::new(),
        met: None,
    });
}
