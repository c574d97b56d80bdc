//! The block structure of a document: lines, indentation, and which
//! statement each line is. Produces the borrowed [`Node`] tree; the syntax
//! inside a line is in [`crate::syntax`].
//!
//! Rules (see `doc/formats/sdn.md`): a line ends with LF or CRLF; a lone CR
//! is an error; indentation is spaces only; blank lines and comment lines
//! are skipped wherever they are; every line of a block has the same
//! indentation, deeper than the line that opened it.

use crate::error::{Error, ErrorKind};
use crate::limits::{MAX_DEPTH, MAX_INPUT_BYTES};
use crate::scalar::Place;
use crate::syntax::{
    self, Entry, Fail, Key, Kind, Node, PResult, RowSrc, TableNode, at_line_end, end_of_line,
    into_fail, skip, ws,
};

/// One significant line: its indentation in spaces and its text after the
/// indentation, without the line ending.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// A cursor over significant lines with one line of lookahead.
struct Lines<'a> {
    rest: &'a str,
    peeked: Option<(Line<'a>, &'a str)>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            rest: text,
            peeked: None,
        }
    }

    /// The next line that is neither blank nor only a comment.
    fn peek(&mut self) -> Result<Option<Line<'a>>, Fail<'a>> {
        if let Some((line, _)) = self.peeked {
            return Ok(Some(line));
        }
        let mut rest = self.rest;
        while !rest.is_empty() {
            let (raw, after) = match crate::scan::find(b'\n', rest.as_bytes()) {
                Some(nl) => (
                    rest.get(..nl).unwrap_or(""),
                    skip(rest, nl.saturating_add(1)),
                ),
                None => (rest, ""),
            };
            rest = after;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let indent = raw.bytes().take_while(|&b| b == b' ').count();
            let text = skip(raw, indent);
            if text.starts_with('\t') {
                let content = ws(text);
                if at_line_end(content) {
                    continue;
                }
                return Err(Fail {
                    at: text,
                    kind: ErrorKind::TabIndent,
                });
            }
            if at_line_end(text) {
                continue;
            }
            let line = Line { indent, text };
            self.peeked = Some((line, rest));
            return Ok(Some(line));
        }
        self.rest = rest;
        Ok(None)
    }

    /// The next line of a block indented `indent` spaces, consumed; `None`
    /// at the end of the block (a line indented less, or the end of text).
    ///
    /// # Errors
    /// A line indented more than the block.
    fn next_in_block(&mut self, indent: usize) -> Result<Option<Line<'a>>, Fail<'a>> {
        match self.peek()? {
            Some(line) if line.indent == indent => {
                self.bump();
                Ok(Some(line))
            }
            Some(line) if line.indent > indent => Err(bad_indent(line, indent)),
            _ => Ok(None),
        }
    }

    /// Consumes the line returned by the last `peek`.
    fn bump(&mut self) {
        if let Some((_, rest)) = self.peeked.take() {
            self.rest = rest;
        }
    }
}

/// Rejects a carriage return that does not end a line.
fn check_line_endings(text: &str) -> Result<(), Fail<'_>> {
    let mut from = 0usize;
    while let Some(found) = text
        .get(from..)
        .and_then(|t| crate::scan::find(b'\r', t.as_bytes()))
    {
        let at = from.saturating_add(found);
        if text.as_bytes().get(at.saturating_add(1)) != Some(&b'\n') {
            return Err(Fail {
                at: skip(text, at),
                kind: ErrorKind::LoneCarriageReturn,
            });
        }
        from = at.saturating_add(2);
    }
    Ok(())
}

/// The value of a parse whose remaining input is not needed.
fn flatten<'a, T>(result: PResult<'a, T>) -> Result<T, Fail<'a>> {
    flatten_keep(result).map(|(_, value)| value)
}

/// Converts a failure inside `text` into an [`Error`] with line and column.
pub(crate) fn locate(text: &str, fail: Fail<'_>) -> Error {
    Error::at(fail.kind, text, offset_in(text, fail.at))
}

/// The byte offset of `part` inside `text` (`part` borrows from `text`; a
/// slice from elsewhere maps to the end).
pub(crate) fn offset_in(text: &str, part: &str) -> usize {
    let base = text.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at.checked_sub(base)
        .filter(|&o| o <= text.len())
        .unwrap_or(text.len())
}

/// Parses a whole document into its root dict node.
///
/// # Errors
/// The first syntax error, with its line and column.
pub(crate) fn document(text: &str) -> Result<Node<'_>, Error> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(Error::new(ErrorKind::InputTooLarge {
            len: text.len(),
            max: MAX_INPUT_BYTES,
        }));
    }
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = check_line_endings(body).and_then(|()| {
        let mut lines = Lines::new(body);
        let entries = dict_block(&mut lines, 0, 0)?;
        Ok(Node {
            src: body,
            kind: Kind::Dict(entries),
        })
    });
    parsed.map_err(|fail| locate(text, fail))
}

fn dict_block<'a>(
    lines: &mut Lines<'a>,
    indent: usize,
    depth: usize,
) -> Result<Vec<Entry<'a>>, Fail<'a>> {
    let mut entries = Vec::new();
    while let Some(line) = lines.next_in_block(indent)? {
        entries.push(statement(lines, line, depth)?);
    }
    Ok(entries)
}

fn bad_indent(line: Line<'_>, expected: usize) -> Fail<'_> {
    Fail {
        at: line.text,
        kind: ErrorKind::BadIndent {
            found: line.indent,
            expected,
        },
    }
}

fn statement<'a>(
    lines: &mut Lines<'a>,
    line: Line<'a>,
    depth: usize,
) -> Result<Entry<'a>, Fail<'a>> {
    let text = line.text;
    let (rest, key) = match syntax::key(text) {
        Ok(parsed) => parsed,
        Err(nom::Err::Failure(fail)) => return Err(fail),
        Err(_) => {
            return Err(Fail {
                at: text,
                kind: ErrorKind::ExpectedKey,
            });
        }
    };
    let rest = ws(rest);
    let inner = depth.saturating_add(1);
    let value = match rest.as_bytes().first() {
        Some(b':') => colon_value(lines, line, key, skip(rest, 1), inner)?,
        Some(b'=') => {
            let r = ws(skip(rest, 1));
            if !(r.starts_with('{') || r.starts_with('[')) {
                return Err(Fail {
                    at: r,
                    kind: ErrorKind::ExpectedInline,
                });
            }
            let (after, node) = flatten_keep(syntax::inline(r, inner))?;
            flatten(end_of_line(after))?;
            node
        }
        Some(b'|') => {
            let (after, columns) = flatten_keep(syntax::field_list(rest))?;
            let mut table = TableNode {
                typed: false,
                columns,
                rows: Vec::new(),
                depth: inner,
            };
            let after = ws(after);
            if at_line_end(after) {
                rows_block(lines, line.indent, &mut table)?;
            } else {
                table.rows.push(RowSrc {
                    text: after,
                    tuple: false,
                });
            }
            Node {
                src: rest,
                kind: Kind::Table(Box::new(table)),
            }
        }
        _ => {
            return Err(Fail {
                at: rest,
                kind: ErrorKind::ExpectedOperator {
                    key: key.src.to_owned(),
                },
            });
        }
    };
    Ok(Entry { key, value })
}

/// A nom result as a plain `Result` (the parsers here never ask for more
/// input, and every failure is final at this level).
fn flatten_keep<'a, T>(result: PResult<'a, T>) -> Result<(&'a str, T), Fail<'a>> {
    result.map_err(into_fail)
}

/// The value after `key:`: an indented block, a typed table, or a value
/// on the same line.
fn colon_value<'a>(
    lines: &mut Lines<'a>,
    line: Line<'a>,
    key: Key<'a>,
    after_colon: &'a str,
    depth: usize,
) -> Result<Node<'a>, Fail<'a>> {
    let r = ws(after_colon);
    if at_line_end(r) {
        return match lines.peek()? {
            Some(next) if next.indent > line.indent => block(lines, depth),
            _ => Err(Fail {
                at: key.src,
                kind: ErrorKind::MissingBlock {
                    key: key.src.to_owned(),
                },
            }),
        };
    }
    if syntax::starts_typed_table(r) {
        let (after, columns) = flatten_keep(syntax::table_type(r))?;
        let mut table = TableNode {
            typed: true,
            columns,
            rows: Vec::new(),
            depth,
        };
        let after = ws(after);
        if let Some(list) = after.strip_prefix('=') {
            let width = table.columns.len();
            let (after, rows) = flatten_keep(syntax::tuples(ws(list), width, depth))?;
            table.rows = rows;
            flatten(end_of_line(after))?;
        } else {
            flatten(end_of_line(after))?;
            rows_block(lines, line.indent, &mut table)?;
        }
        return Ok(Node {
            src: r,
            kind: Kind::Table(Box::new(table)),
        });
    }
    let (after, node) = flatten_keep(syntax::item(r, Place::Line, depth))?;
    flatten(end_of_line(after))?;
    Ok(node)
}

/// The indented rows under a table header (none is an empty table). Only
/// where each row starts is recorded here; cells are read when the table is
/// used.
fn rows_block<'a>(
    lines: &mut Lines<'a>,
    header_indent: usize,
    table: &mut TableNode<'a>,
) -> Result<(), Fail<'a>> {
    let Some(first) = lines.peek()? else {
        return Ok(());
    };
    if first.indent <= header_indent {
        return Ok(());
    }
    while let Some(line) = lines.next_in_block(first.indent)? {
        table.rows.push(RowSrc {
            text: line.text,
            tuple: false,
        });
    }
    Ok(())
}

/// The indented block under `key:`: a dict block when its first line is a
/// statement, an array block otherwise.
fn block<'a>(lines: &mut Lines<'a>, depth: usize) -> Result<Node<'a>, Fail<'a>> {
    let Some(first) = lines.peek()? else {
        return Err(Fail {
            at: "",
            kind: ErrorKind::Expected("an indented block"),
        });
    };
    if depth >= MAX_DEPTH {
        return Err(Fail {
            at: first.text,
            kind: ErrorKind::TooDeep { max: MAX_DEPTH },
        });
    }
    if syntax::statement_head(first.text).is_some() {
        let entries = dict_block(lines, first.indent, depth)?;
        return Ok(Node {
            src: first.text,
            kind: Kind::Dict(entries),
        });
    }
    let mut items = Vec::new();
    while let Some(line) = lines.next_in_block(first.indent)? {
        if syntax::statement_head(line.text).is_some() {
            return Err(Fail {
                at: line.text,
                kind: ErrorKind::EntryInArray,
            });
        }
        let (after, node) = flatten_keep(syntax::item(line.text, Place::Line, depth))?;
        flatten(end_of_line(after))?;
        items.push(node);
    }
    Ok(Node {
        src: first.text,
        kind: Kind::Array(items),
    })
}
