//! The syntax inside one line, written with nom: keys, quoted strings, bare
//! tokens, inline dicts and arrays, table headers, rows and tuples. The
//! block structure (indentation) is in [`crate::parse`].
//!
//! Parsers produce [`Node`]s that borrow the source: bare tokens stay
//! unclassified text and quoted strings stay undecoded, so the serde path
//! can read typed rows without building owned values first.

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_while, take_while_m_n},
    character::complete::{char, satisfy},
    combinator::recognize,
    error::ParseError,
    sequence::pair,
};

use crate::error::ErrorKind;
use crate::limits::{MAX_DEPTH, MAX_TABLE_COLUMNS};
use crate::scalar::Place;

/// A parse failure: the remaining input where it happened, and what.
#[derive(Debug)]
pub(crate) struct Fail<'a> {
    pub at: &'a str,
    pub kind: ErrorKind,
}

impl<'a> ParseError<&'a str> for Fail<'a> {
    fn from_error_kind(input: &'a str, _kind: nom::error::ErrorKind) -> Self {
        Fail {
            at: input,
            kind: ErrorKind::Expected("valid SDN syntax"),
        }
    }

    fn append(_input: &'a str, _kind: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = IResult<&'a str, T, Fail<'a>>;

/// An unrecoverable failure at `at`.
#[cold]
pub(crate) fn failure<T>(at: &str, kind: ErrorKind) -> PResult<'_, T> {
    Err(nom::Err::Failure(Fail { at, kind }))
}

/// A key: an identifier or a quoted string, as written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<'a> {
    /// The key's text; for a quoted key, including the quotes.
    pub src: &'a str,
    pub quoted: bool,
}

/// One parsed value, borrowing the source text.
#[derive(Debug)]
pub(crate) struct Node<'a> {
    /// For scalars, the token (with quotes if quoted); for compound values,
    /// the source from where the value starts (used for its location).
    pub src: &'a str,
    pub kind: Kind<'a>,
}

#[derive(Debug)]
pub(crate) enum Kind<'a> {
    Bare,
    Quoted,
    Dict(Vec<Entry<'a>>),
    Array(Vec<Node<'a>>),
    Table(Box<TableNode<'a>>),
}

#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub key: Key<'a>,
    pub value: Node<'a>,
}

/// A table: its header (field names, or type names when `typed`) and where
/// each row's text starts. Rows are read cell by cell when the table is
/// used ([`RowCursor`]), so typed readers never hold a row's cells at once.
#[derive(Debug)]
pub(crate) struct TableNode<'a> {
    pub typed: bool,
    pub columns: Vec<Key<'a>>,
    pub rows: Vec<RowSrc<'a>>,
    /// Nesting depth of the table, which bounds inline values in cells.
    pub depth: usize,
}

/// The text of one row: a line of cells, or the inside of a `(...)` tuple.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowSrc<'a> {
    pub text: &'a str,
    pub tuple: bool,
}

/// One cell of a row as scanned. Most cells are scalar tokens, which need
/// no [`Node`] (and nothing to drop); inline dicts and arrays are nodes.
#[derive(Debug)]
pub(crate) enum Cell<'a> {
    /// A bare or quoted token, as written (a quoted one with its quotes,
    /// escapes validated but not decoded).
    Scalar { src: &'a str, quoted: bool },
    /// An inline dict or array.
    Inline(Node<'a>),
}

impl<'a> Cell<'a> {
    /// The cell as a node.
    pub(crate) fn into_node(self) -> Node<'a> {
        match self {
            Cell::Scalar { src, quoted } => Node {
                src,
                kind: if quoted { Kind::Quoted } else { Kind::Bare },
            },
            Cell::Inline(node) => node,
        }
    }
}

/// Reads the cells of one row in order.
pub(crate) struct RowCursor<'a> {
    rest: &'a str,
    place: Place,
    /// The [`stop_mask`] of `place`.
    stops: u8,
    depth: usize,
    done: bool,
    /// Cells read so far.
    pub read: usize,
}

impl<'a> RowCursor<'a> {
    pub(crate) fn new(row: RowSrc<'a>, depth: usize) -> Self {
        let place = if row.tuple { Place::Tuple } else { Place::Cell };
        Self {
            rest: row.text,
            place,
            stops: stop_mask(place.stops()),
            depth,
            done: false,
            read: 0,
        }
    }

    /// The next cell, or `None` after the last.
    pub(crate) fn next_cell(&mut self) -> Result<Option<Cell<'a>>, Fail<'a>> {
        if self.done {
            return Ok(None);
        }
        let start = ws(self.rest);
        let (after, cell) = match start.as_bytes().first() {
            Some(b'"') => {
                let (rest, src) = quoted(start).map_err(into_fail)?;
                (ws(rest), Cell::Scalar { src, quoted: true })
            }
            Some(b'{' | b'[') => {
                let (rest, node) = inline(start, self.depth).map_err(into_fail)?;
                (ws(rest), Cell::Inline(node))
            }
            // Most cells are bare tokens, scanned here without a node.
            _ => {
                let (src, rest) = bare_before(start, self.stops);
                if src.is_empty() {
                    return Err(Fail {
                        at: start,
                        kind: ErrorKind::EmptyValue,
                    });
                }
                (rest, Cell::Scalar { src, quoted: false })
            }
        };
        if self.end_cell(after) {
            Ok(Some(cell))
        } else {
            Err(Fail {
                at: after,
                kind: ErrorKind::TrailingText,
            })
        }
    }

    /// The next cell when it is a token (bare, or quoted with its quotes;
    /// a bare token never starts with `"`) that ends properly, the common
    /// case, consumed; otherwise `None` and nothing is consumed, and
    /// [`Self::next_cell`] reads the cell (or reports what is wrong).
    ///
    /// The answer fits in two registers, where `next_cell`'s larger result
    /// goes through memory on every cell.
    pub(crate) fn next_token(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let start = ws(self.rest);
        let (src, after) = match start.as_bytes().first() {
            Some(b'{' | b'[') => return None,
            Some(b'"') => {
                let (rest, src) = quoted(start).ok()?;
                (src, ws(rest))
            }
            _ => bare_before(start, self.stops),
        };
        (!src.is_empty() && self.end_cell(after)).then_some(src)
    }

    /// Moves past the separator after a cell that ends at `after`, and
    /// counts the cell; false (nothing changed) when no separator or row
    /// end follows.
    fn end_cell(&mut self, after: &'a str) -> bool {
        match (after.as_bytes().first(), self.place) {
            (Some(b','), _) => self.rest = skip(after, 1),
            (None | Some(b'#'), Place::Cell) | (Some(b')'), Place::Tuple) => {
                self.rest = after;
                self.done = true;
            }
            _ => return false,
        }
        self.read = self.read.saturating_add(1);
        true
    }

    /// The next of `width` cells; a row that ends early is an error at
    /// `row_start`.
    pub(crate) fn expect_cell(
        &mut self,
        width: usize,
        row_start: &'a str,
    ) -> Result<Cell<'a>, Fail<'a>> {
        match self.next_cell()? {
            Some(cell) => Ok(cell),
            None => Err(Fail {
                at: row_start,
                kind: ErrorKind::RowWidth {
                    expected: width,
                    found: self.read,
                },
            }),
        }
    }

    /// Checks that the row has no cells beyond the `width` read.
    pub(crate) fn finish(&mut self, width: usize, row_start: &'a str) -> Result<(), Fail<'a>> {
        // The usual case: the last cell ended the row.
        if self.done && self.read == width {
            return Ok(());
        }
        while self.next_cell()?.is_some() {}
        if self.read == width {
            Ok(())
        } else {
            Err(Fail {
                at: row_start,
                kind: ErrorKind::RowWidth {
                    expected: width,
                    found: self.read,
                },
            })
        }
    }
}

/// Skips spaces and tabs.
pub(crate) fn ws(i: &str) -> &str {
    let n = i.bytes().take_while(|b| matches!(b, b' ' | b'\t')).count();
    skip(i, n)
}

/// Drops trailing spaces and tabs.
pub(crate) fn trim_end(i: &str) -> &str {
    // Most tokens end at their last visible byte: nothing to count.
    if !matches!(i.as_bytes().last(), Some(b' ' | b'\t')) {
        return i;
    }
    let n = i
        .bytes()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    i.get(..i.len().saturating_sub(n)).unwrap_or(i)
}

/// The input after its first `n` bytes (empty if shorter).
pub(crate) fn skip(i: &str, n: usize) -> &str {
    i.get(n..).unwrap_or("")
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub(crate) fn ident(i: &str) -> PResult<'_, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(i)
}

/// Parses the `{hex}` after `\u`, returning the character and the bytes
/// used.
pub(crate) fn unicode_escape(i: &str) -> Result<(char, usize), ErrorKind> {
    let parsed: PResult<'_, &str> = (
        char('{'),
        take_while_m_n(1, 6, |c: char| c.is_ascii_hexdigit()),
        char('}'),
    )
        .map(|(_, hex, _)| hex)
        .parse(i);
    let Ok((rest, hex)) = parsed else {
        return Err(ErrorKind::BadUnicodeEscape(
            i.chars().take(8).collect::<String>(),
        ));
    };
    u32::from_str_radix(hex, 16)
        .ok()
        .and_then(char::from_u32)
        .map(|c| (c, i.len().saturating_sub(rest.len())))
        .ok_or_else(|| ErrorKind::BadUnicodeEscape(hex.to_owned()))
}

/// A quoted string on one line, escapes validated; returns the token with
/// its quotes.
pub(crate) fn quoted(i: &str) -> PResult<'_, &str> {
    let (mut rest, _) = char('"').parse(i)?;
    loop {
        let Some(found) = crate::scan::find2(b'"', b'\\', rest.as_bytes()) else {
            return failure(i, ErrorKind::UnterminatedString);
        };
        let at = skip(rest, found);
        if at.starts_with('"') {
            let end = i.len().saturating_sub(at.len()).saturating_add(1);
            return Ok((skip(at, 1), i.get(..end).unwrap_or(i)));
        }
        let escape = skip(at, 1);
        rest = match escape.chars().next() {
            Some('"' | '\\' | 'n' | 'r' | 't' | '0') => skip(escape, 1),
            Some('u') => match unicode_escape(skip(escape, 1)) {
                Ok((_, used)) => skip(escape, used.saturating_add(1)),
                Err(kind) => return failure(at, kind),
            },
            Some(other) => return failure(at, ErrorKind::BadEscape(other)),
            None => return failure(i, ErrorKind::UnterminatedString),
        };
    }
}

/// A key: identifier or quoted string. Fails recoverably when the input
/// starts with neither.
pub(crate) fn key(i: &str) -> PResult<'_, Key<'_>> {
    if i.starts_with('"') {
        let (rest, src) = quoted(i)?;
        Ok((rest, Key { src, quoted: true }))
    } else {
        let (rest, src) = ident(i)?;
        Ok((rest, Key { src, quoted: false }))
    }
}

/// If `line` starts a statement (`key :`, `key =` or `key |`), the key, the
/// operator and the text after the operator.
pub(crate) fn statement_head(line: &str) -> Option<(Key<'_>, u8, &str)> {
    let (rest, k) = key(line).ok()?;
    let rest = ws(rest);
    match rest.as_bytes().first() {
        Some(&op @ (b':' | b'=' | b'|')) => Some((k, op, skip(rest, 1))),
        _ => None,
    }
}

/// True when a value position starts a typed table: `table` then `{`.
pub(crate) fn starts_typed_table(i: &str) -> bool {
    i.strip_prefix("table")
        .is_some_and(|rest| ws(rest).starts_with('{'))
}

/// True at the end of the line or at a comment.
pub(crate) fn at_line_end(i: &str) -> bool {
    i.is_empty() || i.starts_with('#')
}

/// Accepts only spaces and an optional comment up to the end of the line.
pub(crate) fn end_of_line(i: &str) -> PResult<'_, ()> {
    let rest = ws(i);
    if at_line_end(rest) {
        Ok(("", ()))
    } else {
        failure(rest, ErrorKind::TrailingText)
    }
}

/// Byte classes for the bare-token scan: one bit for `#` and one for each
/// byte that ends a bare token somewhere (see [`Place::stops`]), so one
/// lookup per byte tests all of a place's stops at once.
static STOP_CLASSES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let bytes = *b"#,]})";
    let mut k = 0;
    while k < bytes.len() {
        classes[bytes[k] as usize] = 1 << k;
        k += 1;
    }
    classes
};

/// A bare token: up to one of `stops` (bytes of [`STOP_CLASSES`]), a
/// comment or the end of the line, without surrounding spaces. Returns the
/// token and the rest.
fn bare<'a>(i: &'a str, stops: &[u8]) -> (&'a str, &'a str) {
    bare_before(i, stop_mask(stops))
}

/// The [`STOP_CLASSES`] bits of `#` and `stops`.
fn stop_mask(stops: &[u8]) -> u8 {
    stops.iter().fold(STOP_CLASSES[usize::from(b'#')], |m, &b| {
        m | STOP_CLASSES[usize::from(b)]
    })
}

/// [`bare`] with its stops given as a [`stop_mask`]. Always inlined: a
/// call returns the two slices through memory, once per table cell.
#[inline(always)]
fn bare_before(i: &str, mask: u8) -> (&str, &str) {
    let bytes = i.as_bytes();
    // A '#' ends the token only where it starts a comment: at the start or
    // after a space or tab (looked up only when a '#' is met, which keeps
    // the loop to one table test per byte).
    let end = bytes
        .iter()
        .enumerate()
        .position(|(at, &byte)| {
            STOP_CLASSES[usize::from(byte)] & mask != 0
                && (byte != b'#'
                    || at == 0
                    || matches!(bytes.get(at.wrapping_sub(1)), Some(b' ' | b'\t')))
        })
        .unwrap_or(bytes.len());
    let token = trim_end(i.get(..end).unwrap_or(i));
    (token, skip(i, end))
}

/// The failure inside a nom error (the parsers here never ask for more
/// input).
pub(crate) fn into_fail(error: nom::Err<Fail<'_>>) -> Fail<'_> {
    match error {
        nom::Err::Error(fail) | nom::Err::Failure(fail) => fail,
        nom::Err::Incomplete(_) => Fail {
            at: "",
            kind: ErrorKind::Expected("more input"),
        },
    }
}

/// A bare token at `place` as a node, and the rest of the input.
fn bare_node(i: &str, place: Place) -> Result<(&str, Node<'_>), Fail<'_>> {
    let (src, rest) = bare(i, place.stops());
    if src.is_empty() {
        return Err(Fail {
            at: i,
            kind: ErrorKind::EmptyValue,
        });
    }
    Ok((
        rest,
        Node {
            src,
            kind: Kind::Bare,
        },
    ))
}

/// One value at `place`: a quoted string, an inline dict or array, or a
/// bare token. Spaces around it are consumed.
pub(crate) fn item(i: &str, place: Place, depth: usize) -> PResult<'_, Node<'_>> {
    let i = ws(i);
    match i.as_bytes().first() {
        Some(b'"') => {
            let (rest, src) = quoted(i)?;
            Ok((
                ws(rest),
                Node {
                    src,
                    kind: Kind::Quoted,
                },
            ))
        }
        Some(b'{' | b'[') => {
            let (rest, node) = inline(i, depth)?;
            Ok((ws(rest), node))
        }
        _ => bare_node(i, place).map_err(nom::Err::Failure),
    }
}

/// An inline dict `{k: v, ...}` or array `[v, ...]`, on one line.
pub(crate) fn inline(i: &str, depth: usize) -> PResult<'_, Node<'_>> {
    if depth >= MAX_DEPTH {
        return failure(i, ErrorKind::TooDeep { max: MAX_DEPTH });
    }
    let is_dict = i.starts_with('{');
    let (what, close, place) = if is_dict {
        ("inline dict", b'}', Place::Dict)
    } else {
        ("inline array", b']', Place::Array)
    };
    let unterminated = || {
        failure(
            i,
            ErrorKind::Unterminated {
                what,
                close: char::from(close),
            },
        )
    };
    let mut rest = skip(i, 1);
    let mut entries = Vec::new();
    let mut items = Vec::new();
    loop {
        rest = ws(rest);
        if rest.as_bytes().first() == Some(&close) {
            break;
        }
        if at_line_end(rest) {
            return unterminated();
        }
        if is_dict {
            let Ok((after_key, k)) = key(rest) else {
                return failure(rest, ErrorKind::Expected("a key in the inline dict"));
            };
            let after_key = ws(after_key);
            let Some(after_colon) = after_key.strip_prefix(':') else {
                return failure(after_key, ErrorKind::Expected("':' after the key"));
            };
            let (after, value) = item(after_colon, place, depth.saturating_add(1))?;
            entries.push(Entry { key: k, value });
            rest = after;
        } else {
            let (after, value) = item(rest, place, depth.saturating_add(1))?;
            items.push(value);
            rest = after;
        }
        match rest.as_bytes().first() {
            Some(b',') => rest = skip(rest, 1),
            Some(&b) if b == close => break,
            None | Some(b'#') => return unterminated(),
            Some(_) => return failure(rest, ErrorKind::TrailingText),
        }
    }
    let kind = if is_dict {
        Kind::Dict(entries)
    } else {
        Kind::Array(items)
    };
    Ok((skip(rest, 1), Node { src: i, kind }))
}

/// A comma-separated list of names between `open` and `close`, each parsed
/// by `name`; a trailing comma is allowed.
fn name_list<'a>(
    i: &'a str,
    open: char,
    close: char,
    what: &'static str,
    name: fn(&'a str) -> PResult<'a, Key<'a>>,
) -> PResult<'a, Vec<Key<'a>>> {
    let (mut rest, _) = char(open).parse(i)?;
    let mut names = Vec::new();
    loop {
        rest = ws(rest);
        if let Some(after) = rest.strip_prefix(close) {
            if names.is_empty() {
                return failure(
                    rest,
                    ErrorKind::Expected("at least one name in the table header"),
                );
            }
            return Ok((after, names));
        }
        if at_line_end(rest) {
            return failure(i, ErrorKind::Unterminated { what, close });
        }
        let Ok((after, n)) = name(rest) else {
            return failure(
                rest,
                ErrorKind::Expected("a name (letters, digits and '_', or a quoted string)"),
            );
        };
        if names.len() >= MAX_TABLE_COLUMNS {
            return failure(
                rest,
                ErrorKind::TooManyColumns {
                    max: MAX_TABLE_COLUMNS,
                },
            );
        }
        names.push(n);
        rest = ws(after);
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with(close) {
            return if at_line_end(rest) {
                failure(i, ErrorKind::Unterminated { what, close })
            } else {
                failure(rest, ErrorKind::Expected("',' or the end of the header"))
            };
        }
    }
}

/// A named table's field list `|a, b, "c d"|`.
pub(crate) fn field_list(i: &str) -> PResult<'_, Vec<Key<'_>>> {
    name_list(i, '|', '|', "field list", key)
}

fn type_name(i: &str) -> PResult<'_, Key<'_>> {
    let (rest, src) = ident(i)?;
    Ok((rest, Key { src, quoted: false }))
}

/// A typed table's header `table{T1, T2}`.
pub(crate) fn table_type(i: &str) -> PResult<'_, Vec<Key<'_>>> {
    let (rest, _) = tag("table").parse(i)?;
    name_list(ws(rest), '{', '}', "type list", type_name)
}

/// The short typed-table body `[(a, b), (c, d)]`: the rows, each checked
/// to have `width` cells.
pub(crate) fn tuples<'a>(i: &'a str, width: usize, depth: usize) -> PResult<'a, Vec<RowSrc<'a>>> {
    let unterminated = || {
        failure(
            i,
            ErrorKind::Unterminated {
                what: "list of rows",
                close: ']',
            },
        )
    };
    let Some(mut rest) = i.strip_prefix('[') else {
        return failure(i, ErrorKind::Expected("'[' starting the list of rows"));
    };
    let mut rows = Vec::new();
    loop {
        rest = ws(rest);
        if let Some(after) = rest.strip_prefix(']') {
            return Ok((after, rows));
        }
        if at_line_end(rest) {
            return unterminated();
        }
        let open = rest;
        let Some(inner) = rest.strip_prefix('(') else {
            return failure(rest, ErrorKind::Expected("'(' starting a row"));
        };
        let row = RowSrc {
            text: inner,
            tuple: true,
        };
        let mut cursor = RowCursor::new(row, depth);
        while cursor
            .next_cell()
            .map_err(|fail| {
                // A tuple that runs into the end of the line is unterminated.
                if matches!(fail.kind, ErrorKind::TrailingText) && at_line_end(fail.at) {
                    nom::Err::Failure(Fail {
                        at: open,
                        kind: ErrorKind::Unterminated {
                            what: "row",
                            close: ')',
                        },
                    })
                } else {
                    nom::Err::Failure(fail)
                }
            })?
            .is_some()
        {}
        if cursor.read != width {
            return failure(
                open,
                ErrorKind::RowWidth {
                    expected: width,
                    found: cursor.read,
                },
            );
        }
        rows.push(row);
        rest = ws(skip(cursor.rest, 1));
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with(']') {
            return if at_line_end(rest) {
                unterminated()
            } else {
                failure(rest, ErrorKind::Expected("',' or ']' after a row"))
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_returns_token_and_rejects_bad_input() {
        assert_eq!(quoted(r#""a\"b" rest"#).unwrap(), (" rest", r#""a\"b""#));
        assert!(matches!(
            quoted("\"abc"),
            Err(nom::Err::Failure(Fail {
                kind: ErrorKind::UnterminatedString,
                ..
            }))
        ));
        assert!(matches!(
            quoted(r#""a\x""#),
            Err(nom::Err::Failure(Fail {
                kind: ErrorKind::BadEscape('x'),
                ..
            }))
        ));
        assert!(matches!(
            quoted(r#""\u{110000}""#),
            Err(nom::Err::Failure(Fail {
                kind: ErrorKind::BadUnicodeEscape(_),
                ..
            }))
        ));
    }

    #[test]
    fn statement_head_recognizes_the_three_operators() {
        assert_eq!(
            statement_head("a: 1").map(|(k, op, _)| (k.src, op)),
            Some(("a", b':'))
        );
        assert_eq!(
            statement_head("a = [1]").map(|(k, op, _)| (k.src, op)),
            Some(("a", b'='))
        );
        assert_eq!(
            statement_head("a |x|").map(|(k, op, _)| (k.src, op)),
            Some(("a", b'|'))
        );
        assert_eq!(
            statement_head("\"a b\": 1").map(|(k, op, _)| (k.src, op)),
            Some(("\"a b\"", b':'))
        );
        assert!(statement_head("Alice").is_none());
        assert!(statement_head("{a: 1}").is_none());
        assert!(statement_head("rate-limit: 5").is_none());
    }

    #[test]
    fn next_token_reads_plain_cells_and_leaves_the_rest_to_next_cell() {
        let row = |text| RowSrc { text, tuple: false };
        let mut cursor = RowCursor::new(row("a b , \"q,r\" ,x#y #c"), 1);
        assert_eq!(cursor.next_token(), Some("a b"));
        assert_eq!(cursor.next_token(), Some("\"q,r\""));
        assert_eq!(cursor.next_token(), Some("x#y"));
        assert_eq!(cursor.read, 3);
        assert_eq!(cursor.next_token(), None);
        assert!(cursor.finish(3, "").is_ok());

        // Inline values, empty cells and trailing text consume nothing.
        for text in ["[1, 2], b", " , b", "\"a\" b, c", "\"open"] {
            let mut cursor = RowCursor::new(row(text), 1);
            assert_eq!(cursor.next_token(), None, "{text:?}");
            assert_eq!((cursor.read, cursor.rest), (0, text), "{text:?}");
        }
        let mut cursor = RowCursor::new(row("\"a\" b, c"), 1);
        assert!(matches!(
            cursor.next_cell(),
            Err(Fail {
                kind: ErrorKind::TrailingText,
                at: "b, c"
            })
        ));

        // A tuple row ends at ')'.
        let mut cursor = RowCursor::new(
            RowSrc {
                text: "1, x y)",
                tuple: true,
            },
            1,
        );
        assert_eq!(cursor.next_token(), Some("1"));
        assert_eq!(cursor.next_token(), Some("x y"));
        assert_eq!(cursor.next_token(), None);
        assert_eq!(cursor.rest, ")");
    }

    #[test]
    fn finish_checks_the_width_at_len_minus_one_len_and_len_plus_one() {
        for (width, ok) in [(1, false), (2, true), (3, false)] {
            let mut cursor = RowCursor::new(
                RowSrc {
                    text: "a, b",
                    tuple: false,
                },
                1,
            );
            for _ in 0..width.min(2) {
                assert!(cursor.next_token().is_some());
            }
            let result = cursor.finish(width, "a, b");
            assert_eq!(result.is_ok(), ok, "width {width}");
            if let Err(fail) = result {
                assert_eq!(
                    fail.kind,
                    ErrorKind::RowWidth {
                        expected: width,
                        found: 2
                    }
                );
            }
        }
    }

    #[test]
    fn trim_end_drops_only_trailing_blanks() {
        for (text, trimmed) in [
            ("", ""),
            ("a", "a"),
            ("a ", "a"),
            ("a \t ", "a"),
            (" a", " a"),
            ("a b", "a b"),
            ("  ", ""),
        ] {
            assert_eq!(trim_end(text), trimmed, "{text:?}");
        }
    }

    #[test]
    fn bare_stops_at_comment_only_after_space() {
        assert_eq!(bare("a#b c", b""), ("a#b c", ""));
        assert_eq!(bare("a #b", b""), ("a", "#b"));
        assert_eq!(bare("a\t#b", b""), ("a", "#b"));
        assert_eq!(bare("x y , z", b","), ("x y", ", z"));
        assert_eq!(bare("a]b}c)d", b",]"), ("a", "]b}c)d"));
        assert_eq!(bare("a]b}c)d", b",}"), ("a]b", "}c)d"));
        assert_eq!(bare("a]b}c)d", b",)"), ("a]b}c", ")d"));
        assert_eq!(bare("#x", b","), ("", "#x"));
        assert_eq!(
            bare("long_token_of_many_bytes #c", b","),
            ("long_token_of_many_bytes", "#c")
        );
    }
}
