//! A direct reader for notes in the plain form the writer produces: table
//! headers at column 0 with the schema's columns in order, rows indented
//! alike, cells that are bare tokens or quoted strings without escapes,
//! and blank or comment lines between them.
//!
//! It reads such a note in one pass over its lines, with no syntax tree
//! and no serde dispatch per cell. Anything else — tabs, carriage
//! returns, backslashes, comments after a cell, inline values, a column
//! order of its own, a cell of the wrong type, any error at all — makes it
//! answer `None`, and [`Note::parse`] reads the text with the general SDN
//! reader instead, which gives the same rows or the error with its line
//! and column. So this reader never decides what a note means: it only
//! skips work where the general reader would find nothing to object to
//! (the tests hold it to that).

use super::{
    CIRCULAR_ERROR_FIELDS, CIRCULAR_WARNING_FIELDS, CircularError, CircularWarning,
    DEPENDENCY_FIELDS, DepKind, Dependency, INSTANTIATION_FIELDS, Instantiation, Note,
    POSSIBLE_FIELDS, Possible, Status, TYPE_INFERENCE_FIELDS, TypeArgs, TypeInference,
};
use crate::limits::MAX_INPUT_BYTES;

/// The note in `body` (the text before any `# END_NOTE` line), or `None`
/// when it is not in the plain form.
pub(super) fn read(body: &str) -> Option<Note> {
    let bytes = body.as_bytes();
    if body.len() > MAX_INPUT_BYTES || crate::scan::find3(b'\r', b'\t', b'\\', bytes).is_some() {
        return None;
    }
    if !hashes_only_open_comment_lines(bytes) {
        return None;
    }
    let mut note = Note::default();
    let mut seen = [false; 6];
    let mut table: Option<Table> = None;
    let mut row_indent = 0usize;
    let mut rest = body;
    while !rest.is_empty() {
        let (line, after) = match crate::scan::find(b'\n', rest.as_bytes()) {
            Some(nl) => (rest.get(..nl)?, rest.get(nl.saturating_add(1)..)?),
            None => (rest, ""),
        };
        rest = after;
        let text = line.trim_start_matches(' ');
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let indent = line.len().saturating_sub(text.len());
        if indent == 0 {
            let found = header(text)?;
            let slot = seen.get_mut(found as usize)?;
            if *slot {
                return None;
            }
            *slot = true;
            table = Some(found);
            row_indent = 0;
            // Room for the table's rows up front: no copying as it grows.
            let rows = rows_to_reserve(rest, found);
            match found {
                Table::Instantiations => note.instantiations.reserve(rows),
                Table::Possible => note.possible.reserve(rows),
                Table::TypeInferences => note.type_inferences.reserve(rows),
                Table::Dependencies => note.dependencies.reserve(rows),
                Table::CircularWarnings => note.circular_warnings.reserve(rows),
                Table::CircularErrors => note.circular_errors.reserve(rows),
            }
            continue;
        }
        // Every row of a table is indented alike.
        if row_indent == 0 {
            row_indent = indent;
        } else if indent != row_indent {
            return None;
        }
        let mut cells = Cells::new(text);
        match table? {
            Table::Instantiations => note.instantiations.push(Instantiation {
                id: cells.id()?,
                template: cells.string()?,
                type_args: cells.type_args()?,
                mangled_name: cells.string()?,
                from_file: cells.string()?,
                from_loc: cells.string()?,
                to_obj: cells.string()?,
                status: cells.variant(STATUSES)?,
            }),
            Table::Possible => note.possible.push(Possible {
                id: cells.id()?,
                template: cells.string()?,
                type_args: cells.type_args()?,
                mangled_name: cells.string()?,
                required_by: cells.string()?,
                can_defer: cells.flag()?,
            }),
            Table::TypeInferences => note.type_inferences.push(TypeInference {
                id: cells.id()?,
                inferred_type: cells.string()?,
                expr: cells.string()?,
                context: cells.string()?,
                from_file: cells.string()?,
                from_loc: cells.string()?,
            }),
            Table::Dependencies => note.dependencies.push(Dependency {
                from_inst: cells.id()?,
                to_inst: cells.id()?,
                dep_kind: cells.variant(DEP_KINDS)?,
            }),
            Table::CircularWarnings => note.circular_warnings.push(CircularWarning {
                id: cells.id()?,
                cycle_path: cells.string()?,
                severity: cells.string()?,
            }),
            Table::CircularErrors => note.circular_errors.push(CircularError {
                id: cells.id()?,
                cycle_path: cells.string()?,
                error_code: cells.string()?,
            }),
        }
        // No cell beyond the row's width.
        if !cells.done {
            return None;
        }
    }
    Some(note)
}

/// True when no `#` could start a comment inside a line: each one either
/// opens a comment line (only spaces before it on its line) or follows a
/// byte other than a space or a comma (so it is part of a token, or sits
/// inside a quoted string). A `#` after a space or a comma, which may
/// start a comment after a cell or sit in a quoted string, is left to the
/// general reader.
fn hashes_only_open_comment_lines(bytes: &[u8]) -> bool {
    crate::scan::find_all(b'#', bytes).all(|at| {
        let before = bytes.get(..at).unwrap_or(&[]);
        match before.iter().rposition(|&b| b != b' ') {
            None => true,
            Some(last) => match before.get(last) {
                Some(b'\n') => true,
                Some(b',') => false,
                _ => last.saturating_add(1) == at,
            },
        }
    })
}

/// Every byte of a word set to the low byte.
const LOW_BITS: u64 = 0x0101_0101_0101_0101;
/// The top bit of every byte of a word.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The first `byte` (not zero) at or after `from`, eight bytes at a time:
/// a byte equal to `byte` is a zero byte of `x = word ^ byte…byte`, and
/// `(x - 0x01…01) & !x & 0x80…80` marks the zero bytes of `x` exactly up
/// to the first one (a borrow only marks bytes above a real zero), so the
/// lowest mark is the answer. The last bytes, fewer than eight, are
/// looked at one by one.
fn find(bytes: &[u8], from: usize, byte: u8) -> Option<usize> {
    let pattern = u64::from(byte) * LOW_BITS;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at.saturating_add(8)) {
        let x = u64::from_le_bytes(chunk.try_into().ok()?) ^ pattern;
        let marks = x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS;
        if marks != 0 {
            return Some(at.saturating_add(marks.trailing_zeros() as usize / 8));
        }
        at = at.saturating_add(8);
    }
    let found = bytes.get(at..)?.iter().position(|&b| b == byte)?;
    Some(at.saturating_add(found))
}

/// The first position at or after `from` that is not a space.
fn skip_spaces(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

/// How many of the lines that start `text` are indented and hold more than
/// spaces or a comment, up to the first line that starts at column 0 with
/// something other than a comment: at least the number of rows of the
/// table whose header came just before.
fn indented_lines_ahead(text: &str) -> usize {
    let bytes = text.as_bytes();
    let starts = std::iter::once(0).chain(crate::scan::find_all(b'\n', bytes).map(|nl| nl + 1));
    let mut rows = 0usize;
    for start in starts {
        match bytes.get(start) {
            Some(b' ') => {
                let first = skip_spaces(bytes, start);
                if !matches!(bytes.get(first), None | Some(b'\n' | b'#')) {
                    rows += 1;
                }
            }
            Some(b'\n' | b'#') => {}
            _ => break,
        }
    }
    rows
}

/// How many rows of `table` to reserve for the text after its header: the
/// indented lines ahead, but never more than the text could hold, so a
/// long run of short lines cannot make a large reservation.
fn rows_to_reserve(text: &str, table: Table) -> usize {
    indented_lines_ahead(text).min(text.len() / min_row_len(table))
}

/// The fewest bytes a row of `table` takes: an indent, one byte per cell,
/// the commas between them and the line end.
fn min_row_len(table: Table) -> usize {
    let columns = TABLES
        .iter()
        .find(|(_, _, t)| *t as usize == table as usize)
        .map_or(1, |(_, fields, _)| fields.len());
    columns.saturating_mul(2).saturating_add(1)
}

/// The six tables, in the order of [`TABLES`].
#[derive(Debug, Clone, Copy)]
enum Table {
    Instantiations,
    Possible,
    TypeInferences,
    Dependencies,
    CircularWarnings,
    CircularErrors,
}

/// Each table's name and columns.
const TABLES: [(&str, &[&str], Table); 6] = [
    (
        "instantiations",
        &INSTANTIATION_FIELDS,
        Table::Instantiations,
    ),
    ("possible", &POSSIBLE_FIELDS, Table::Possible),
    (
        "type_inferences",
        &TYPE_INFERENCE_FIELDS,
        Table::TypeInferences,
    ),
    ("dependencies", &DEPENDENCY_FIELDS, Table::Dependencies),
    (
        "circular_warnings",
        &CIRCULAR_WARNING_FIELDS,
        Table::CircularWarnings,
    ),
    (
        "circular_errors",
        &CIRCULAR_ERROR_FIELDS,
        Table::CircularErrors,
    ),
];

const STATUSES: &[(&str, Status)] = &[
    ("compiled", Status::Compiled),
    ("deferred", Status::Deferred),
    ("jit_compiled", Status::JitCompiled),
];

const DEP_KINDS: &[(&str, DepKind)] = &[
    ("type_param", DepKind::TypeParam),
    ("field_type", DepKind::FieldType),
    ("inner_type", DepKind::InnerType),
    ("method_dep", DepKind::MethodDep),
];

/// A header line `name |col, col, ...|` naming one of the tables with its
/// columns in the schema's order and nothing after it.
fn header(text: &str) -> Option<Table> {
    let (name, list) = text.split_once('|')?;
    let (columns, after) = list.split_once('|')?;
    if !after.trim_start_matches(' ').is_empty() {
        return None;
    }
    let name = name.trim_end_matches(' ');
    let &(_, fields, table) = TABLES.iter().find(|(n, _, _)| *n == name)?;
    let mut given = columns.split(',').map(|c| c.trim_matches(' '));
    let in_order = fields.iter().all(|f| given.next() == Some(*f)) && given.next().is_none();
    in_order.then_some(table)
}

/// The cells of one row, read left to right.
struct Cells<'a> {
    text: &'a str,
    /// Where the next cell starts.
    at: usize,
    /// Set once the last cell has been read.
    done: bool,
}

impl<'a> Cells<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            at: 0,
            done: false,
        }
    }

    /// The next cell's text (a quoted string without its quotes) and
    /// whether it was quoted. Every position it cuts at is an ASCII byte,
    /// so both ends of the slice are character boundaries.
    fn next(&mut self) -> Option<(&'a str, bool)> {
        if self.done {
            return None;
        }
        let bytes = self.text.as_bytes();
        let start = skip_spaces(bytes, self.at);
        if bytes.get(start) == Some(&b'"') {
            let open = start.saturating_add(1);
            let close = find(bytes, open, b'"')?;
            let after = skip_spaces(bytes, close.saturating_add(1));
            match bytes.get(after) {
                None => self.done = true,
                Some(b',') => self.at = after.saturating_add(1),
                Some(_) => return None,
            }
            return Some((self.text.get(open..close)?, true));
        }
        let end = match find(bytes, start, b',') {
            Some(comma) => {
                self.at = comma.saturating_add(1);
                comma
            }
            None => {
                self.done = true;
                bytes.len()
            }
        };
        let mut stop = end;
        while stop > start && bytes.get(stop.wrapping_sub(1)) == Some(&b' ') {
            stop -= 1;
        }
        match bytes.get(start) {
            _ if stop == start => None,
            Some(b'[' | b'{') => None,
            _ => Some((self.text.get(start..stop)?, false)),
        }
    }

    /// A string cell: a bare token as written, a quoted one without quotes.
    fn string(&mut self) -> Option<String> {
        self.next().map(|(text, _)| text.to_owned())
    }

    /// An id: a bare decimal of at most ten digits that fits `u32`.
    fn id(&mut self) -> Option<u32> {
        match self.next()? {
            (digits, false) if digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                let n = digits
                    .bytes()
                    .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                u32::try_from(n).ok()
            }
            _ => None,
        }
    }

    /// A bare `true` or `false`.
    fn flag(&mut self) -> Option<bool> {
        match self.next()? {
            ("true", false) => Some(true),
            ("false", false) => Some(false),
            _ => None,
        }
    }

    fn type_args(&mut self) -> Option<TypeArgs> {
        self.next().map(|(text, _)| TypeArgs::split(text))
    }

    /// A unit variant by its written name, bare or quoted.
    fn variant<T: Copy>(&mut self, names: &[(&str, T)]) -> Option<T> {
        let (text, _) = self.next()?;
        names.iter().find(|(n, _)| *n == text).map(|&(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The general reader, which the plain one must agree with.
    fn general(body: &str) -> Result<Note, crate::Error> {
        crate::from_str(body)
    }

    /// The text of a note before its `# END_NOTE` line.
    fn body(note: &Note) -> String {
        let text = note.to_sdn_string().expect("note writes");
        let end = text.find(crate::note::END_LINE).expect("end line");
        text.get(..end).expect("boundary").to_owned()
    }

    /// Cells of every kind; most avoid `"` and `\\` (which the writer
    /// escapes, sending the whole note to the general reader) so that most
    /// notes are in the plain form.
    fn cell() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[a-z_$0-9]{1,10}",
            4 => "[ !#-\\[\\]-~é]{0,12}",
            1 => "[a-zé ,#|\\[{\"\\\\]{0,8}",
            1 => Just(String::new()),
            1 => Just("null".to_owned()),
            1 => Just("12".to_owned()),
            1 => Just(" padded ".to_owned()),
        ]
    }

    fn type_args() -> impl Strategy<Value = TypeArgs> {
        prop::collection::vec(
            prop_oneof!["[a-z][a-z0-9]{0,4}", "Pair<[a-z]{1,3},[a-z]{1,3}>"],
            0..4,
        )
        .prop_map(TypeArgs)
    }

    fn status() -> impl Strategy<Value = Status> {
        prop::sample::select(vec![
            Status::Compiled,
            Status::Deferred,
            Status::JitCompiled,
        ])
    }

    fn dep_kind() -> impl Strategy<Value = DepKind> {
        prop::sample::select(vec![
            DepKind::TypeParam,
            DepKind::FieldType,
            DepKind::InnerType,
            DepKind::MethodDep,
        ])
    }

    fn note() -> impl Strategy<Value = Note> {
        let instantiation = (
            any::<u32>(),
            cell(),
            type_args(),
            cell(),
            (cell(), cell(), cell()),
            status(),
        )
            .prop_map(
                |(id, template, type_args, mangled_name, (f, l, o), status)| Instantiation {
                    id,
                    template,
                    type_args,
                    mangled_name,
                    from_file: f,
                    from_loc: l,
                    to_obj: o,
                    status,
                },
            );
        let possible = (
            any::<u32>(),
            cell(),
            type_args(),
            cell(),
            cell(),
            any::<bool>(),
        )
            .prop_map(
                |(id, template, type_args, mangled_name, required_by, can_defer)| Possible {
                    id,
                    template,
                    type_args,
                    mangled_name,
                    required_by,
                    can_defer,
                },
            );
        let inference = (any::<u32>(), cell(), cell(), cell(), cell(), cell()).prop_map(
            |(id, inferred_type, expr, context, from_file, from_loc)| TypeInference {
                id,
                inferred_type,
                expr,
                context,
                from_file,
                from_loc,
            },
        );
        let dependency =
            (any::<u32>(), any::<u32>(), dep_kind()).prop_map(|(from_inst, to_inst, dep_kind)| {
                Dependency {
                    from_inst,
                    to_inst,
                    dep_kind,
                }
            });
        let warning =
            (any::<u32>(), cell(), cell()).prop_map(|(id, cycle_path, severity)| CircularWarning {
                id,
                cycle_path,
                severity,
            });
        let error =
            (any::<u32>(), cell(), cell()).prop_map(|(id, cycle_path, error_code)| CircularError {
                id,
                cycle_path,
                error_code,
            });
        fn rows<T: std::fmt::Debug>(
            row: impl Strategy<Value = T>,
        ) -> impl Strategy<Value = Vec<T>> {
            prop::collection::vec(row, 0..4)
        }
        (
            rows(instantiation),
            rows(possible),
            rows(inference),
            rows(dependency),
            rows(warning),
            rows(error),
        )
            .prop_map(|(i, p, t, d, w, e)| Note {
                instantiations: i,
                possible: p,
                type_inferences: t,
                dependencies: d,
                circular_warnings: w,
                circular_errors: e,
            })
    }

    /// Text an edit may insert: what the plain form treats specially.
    const SNIPPETS: &[&str] = &[
        " ", "  ", ",", " ,", "\"", "#", " #c", "\t", "\r", "\\", "\n", "\n  ", "\n   ", "|",
        "[1]", "{a: 1}", "-", "0", "_x", "true", "\u{feff}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Whatever the writer produces, the plain reader reads exactly as
        /// the general one does, unless it declines.
        #[test]
        fn agrees_with_the_general_reader_on_written_notes(note in note()) {
            let body = body(&note);
            let expected = general(&body).expect("written notes read back");
            prop_assert_eq!(&expected, &note);
            if let Some(plain) = read(&body) {
                prop_assert_eq!(plain, expected);
            }
        }

        /// After arbitrary edits the plain reader either declines or gives
        /// what the general reader gives; it never accepts what the general
        /// reader rejects.
        #[test]
        fn never_accepts_what_the_general_reader_rejects(
            note in note(),
            edits in prop::collection::vec(
                (any::<prop::sample::Index>(), any::<bool>(), prop::sample::select(SNIPPETS)),
                1..3,
            ),
        ) {
            let mut text = body(&note);
            for (at, replace, snippet) in edits {
                // Edit at a character boundary, replacing one character or
                // inserting before it.
                let bounds: Vec<usize> = text
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain([text.len()])
                    .collect();
                let at = bounds[at.index(bounds.len())];
                let end = if replace {
                    text[at..].chars().next().map_or(at, |c| at + c.len_utf8())
                } else {
                    at
                };
                text.replace_range(at..end, snippet);
            }
            if let Some(plain) = read(&text) {
                prop_assert_eq!(Ok(plain), general(&text).map_err(|e| e.to_string()));
            }
        }
    }

    /// The properties above say something only if most generated notes are
    /// in the plain form, before and after an edit.
    #[test]
    fn most_generated_notes_are_read_by_the_plain_reader() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let plain = (0..200)
            .filter(|_| {
                let note = note().new_tree(&mut runner).expect("a note").current();
                read(&body(&note)).is_some()
            })
            .count();
        assert!(plain >= 60, "only {plain} of 200 notes were plain");
    }

    #[test]
    fn reads_the_written_form_of_a_realistic_note() {
        let note = Note {
            instantiations: vec![Instantiation {
                id: 1,
                template: "Vec".into(),
                type_args: TypeArgs(vec!["i32".into(), "Pair<u8,f64>".into()]),
                mangled_name: "Vec$i32$Pair_2$u8$f64".into(),
                from_file: "src/main.spl".into(),
                from_loc: "12:5".into(),
                to_obj: "main.o".into(),
                status: Status::JitCompiled,
            }],
            possible: vec![Possible {
                id: 7,
                template: "sum".into(),
                type_args: TypeArgs(vec!["f64".into()]),
                mangled_name: "sum$f64".into(),
                required_by: "app.o".into(),
                can_defer: true,
            }],
            dependencies: vec![Dependency {
                from_inst: 1,
                to_inst: 7,
                dep_kind: DepKind::MethodDep,
            }],
            ..Note::default()
        };
        let body = body(&note);
        assert!(body.contains('"'), "some cells are quoted:\n{body}");
        assert_eq!(read(&body), Some(note));
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        let header = "possible |id, template, type_args, mangled_name, required_by, can_defer|\n";
        let row = |cells: &str| format!("{header}  {cells}\n");
        for text in [
            // Tabs, carriage returns and escapes go to the general reader.
            row("1,\tsum, f64, sum$f64, a.o, true"),
            row("1, sum, f64, sum$f64, a.o, true\r"),
            row("1, \"s\\u{75}m\", f64, sum$f64, a.o, true"),
            // A comment after a cell, an inline value, a wrong type.
            row("1, sum, f64, sum$f64, a.o, true # note"),
            row("1, sum, f64, sum$f64 #c, a.o, true"),
            row("1, sum, f64,#sum$f64, a.o, true"),
            row("1, sum, f64, \"sum #c\", a.o, true"),
            "circular_errors |id, cycle_path, error_code|\n  1, a->b, \"E1\" x\n".into(),
            "circular_errors |id, cycle_path, error_code|\n  1, a->b, \"E1\"x, y\n".into(),
            row("1, [sum], f64, sum$f64, a.o, true"),
            row("x1, sum, f64, sum$f64, a.o, true"),
            row("1, sum, f64, sum$f64, a.o, yes"),
            row("4294967296, sum, f64, sum$f64, a.o, true"),
            row("04294967295, sum, f64, sum$f64, a.o, true"),
            row("-1, sum, f64, sum$f64, a.o, true"),
            // Too few and too many cells, an empty cell.
            row("1, sum, f64, sum$f64, a.o"),
            row("1, sum, f64, sum$f64, a.o, true, x"),
            row("1, , f64, sum$f64, a.o, true"),
            // Columns in another order, an unknown or repeated table.
            "possible |template, id, type_args, mangled_name, required_by, can_defer|\n".into(),
            "unknown |id|\n".into(),
            format!("{header}{header}"),
            // Rows indented unevenly, or outside a table.
            format!(
                "{header}  1, sum, f64, sum$f64, a.o, true\n   2, sum, f64, sum$f64, a.o, true\n"
            ),
            "  1, sum\n".into(),
        ] {
            assert_eq!(read(&text), None, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn find_agrees_with_a_bytewise_search(
            bytes in prop::collection::vec(prop_oneof![any::<u8>(), Just(b','), Just(b',' ^ 1)], 0..40),
            from in 0usize..42,
        ) {
            let expected = bytes
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, b)| **b == b',')
                .map(|(at, _)| at);
            prop_assert_eq!(find(&bytes, from, b','), expected);
        }
    }

    #[test]
    fn indented_lines_ahead_stops_at_the_next_header() {
        assert_eq!(indented_lines_ahead(""), 0);
        assert_eq!(indented_lines_ahead("  a\n  b\n"), 2);
        assert_eq!(
            indented_lines_ahead("  a\n\n# c\n  # d\n  b\nnext |x|\n  c\n"),
            2
        );
        assert_eq!(indented_lines_ahead("  a\n   \n \n  b"), 2);
        assert_eq!(indented_lines_ahead("next |x|\n  c\n"), 0);
    }

    /// Blank lines, and lines too short to be rows, reserve nothing beyond
    /// what the text could hold: the reservation follows the bytes.
    #[test]
    fn the_rows_reserved_are_bounded_by_the_text() {
        let header = "dependencies |from_inst, to_inst, dep_kind|\n";
        let blank = format!("{header}{}", " \n".repeat(100_000));
        let note = read(&blank).expect("a table with no rows");
        assert!(note.dependencies.is_empty());
        assert_eq!(note.dependencies.capacity(), 0);

        // Lines of 4 bytes count as lines ahead, but a row of three cells
        // takes at least 7 bytes and one of eight at least 17, so only a
        // 7th (a 17th) of the text's bytes in rows is reserved.
        let short = format!("{header}{}", "  x\n".repeat(100_000));
        assert_eq!(read(&short), None);
        let body = &short[header.len()..];
        assert_eq!(indented_lines_ahead(body), 100_000);
        assert_eq!(rows_to_reserve(body, Table::Dependencies), 400_000 / 7);
        assert_eq!(rows_to_reserve(body, Table::Instantiations), 400_000 / 17);
        // Real rows are never cut short.
        let rows = "  1, 2, type_param\n".repeat(1_000);
        assert_eq!(rows_to_reserve(&rows, Table::Dependencies), 1_000);
    }

    #[test]
    fn reads_blank_and_comment_lines_and_an_empty_table() {
        let text = "# header\n\npossible |id, template, type_args, mangled_name, required_by, can_defer|\n  # a comment\n  3, sum, \"i8,u8\", sum$i8$u8, a.o, false\n\n  4, \"\", \"\", \"\", \"\", true\ndependencies |from_inst, to_inst, dep_kind|\n";
        let plain = read(text).expect("plain form");
        assert_eq!(Ok(plain.clone()), general(text).map_err(|e| e.to_string()));
        assert_eq!(plain.possible.len(), 2);
        assert_eq!(plain.possible[0].type_args.0, ["i8", "u8"]);
        assert!(plain.dependencies.is_empty());
    }
}
