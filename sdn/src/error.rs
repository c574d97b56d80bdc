//! The crate's single error type: what went wrong, and where.

use std::fmt;

/// A line and column in SDN text, both counted from 1. Columns count
/// characters (a tab is one column), not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line number, from 1.
    pub line: usize,
    /// Column number in characters, from 1.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` inside `text`. An offset past the end
    /// or inside a character is moved back to the nearest character start.
    #[must_use]
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset = offset.saturating_sub(1);
        }
        let before = text.get(..offset).unwrap_or("");
        let line_start = before.rfind('\n').map_or(0, |i| i.saturating_add(1));
        let line = before
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            .saturating_add(1);
        let column = before
            .get(line_start..)
            .map_or(0, |s| s.chars().count())
            .saturating_add(1);
        Self { line, column }
    }
}

/// What went wrong. Each message reads as part of a sentence and, where it
/// can, says how to fix the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The document is larger than [`crate::limits::MAX_INPUT_BYTES`].
    #[error("the document is {len} bytes, more than the limit of {max} bytes")]
    InputTooLarge {
        /// Size of the input.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nesting deeper than [`crate::limits::MAX_DEPTH`].
    #[error("nesting is deeper than the limit of {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A table declares more than [`crate::limits::MAX_TABLE_COLUMNS`] columns.
    #[error("the table declares more than the limit of {max} columns")]
    TooManyColumns {
        /// The limit.
        max: usize,
    },
    /// A tab character in the indentation of a line.
    #[error("indentation contains a tab; indent with spaces only")]
    TabIndent,
    /// A carriage return that is not part of a CRLF line ending.
    #[error("carriage return not followed by a line feed; lines end with LF or CRLF")]
    LoneCarriageReturn,
    /// A line indented differently from the block it belongs to.
    #[error(
        "indentation of {found} spaces matches no enclosing block here (expected {expected} spaces)"
    )]
    BadIndent {
        /// Spaces found.
        found: usize,
        /// Spaces the block uses.
        expected: usize,
    },
    /// A line inside a dict that does not start with a key.
    #[error("expected a key (a name such as `port` or a quoted string) at the start of the line")]
    ExpectedKey,
    /// A key not followed by one of the statement operators.
    #[error("expected ':', '=' or '|' after the key '{key}'")]
    ExpectedOperator {
        /// The key as written.
        key: String,
    },
    /// `key:` with nothing after it and no indented block below.
    #[error(
        "'{key}:' has no value and no indented block below it; write a value, indent a block under it, or use '{key} = {{}}' / '{key} = []' for an empty dict or array"
    )]
    MissingBlock {
        /// The key as written.
        key: String,
    },
    /// `key =` not followed by an inline dict or array.
    #[error(
        "'=' must be followed by an inline dict '{{...}}' or array '[...]'; use ':' for a single value"
    )]
    ExpectedInline,
    /// A line inside an array block that reads as a `key: value` entry.
    #[error(
        "this block is an array (its first line is a value), but this line is a 'key: value' entry; quote the item if it is a string"
    )]
    EntryInArray,
    /// A line inside a dict block that is not a `key: value` entry.
    #[error(
        "this block is a dict (its first line is a 'key: value' entry), but this line is not an entry"
    )]
    ItemInDict,
    /// A quoted string without its closing quote on the same line.
    #[error("unterminated string; add the closing '\"' on the same line (write a newline as \\n)")]
    UnterminatedString,
    /// A backslash escape the format does not define.
    #[error(
        "unknown escape '\\{0}' in a quoted string; the escapes are \\\" \\\\ \\n \\r \\t \\0 and \\u{{hex}}"
    )]
    BadEscape(char),
    /// A `\u{...}` escape that does not name a Unicode scalar value.
    #[error("'\\u{{{0}}}' is not a valid Unicode scalar value")]
    BadUnicodeEscape(String),
    /// An inline dict, array, tuple or field list without its closing
    /// bracket on the same line.
    #[error("unterminated {what}; add the closing '{close}' on the same line")]
    Unterminated {
        /// What was left open.
        what: &'static str,
        /// The missing closing character.
        close: char,
    },
    /// A syntax error with a description of what was expected.
    #[error("expected {0}")]
    Expected(&'static str),
    /// Text left over after a complete value.
    #[error("unexpected text after the value; quote the value if it should include this text")]
    TrailingText,
    /// A value position with nothing in it (for example `a, , b`).
    #[error("missing value; write null for an absent value or \"\" for an empty string")]
    EmptyValue,
    /// An integer literal outside the 64-bit signed range.
    #[error("integer {0} does not fit in a signed 64-bit integer")]
    IntOverflow(String),
    /// A float literal too large to represent.
    #[error("number {0} is too large for a 64-bit float")]
    FloatOverflow(String),
    /// The same key twice in one dict.
    #[error("duplicate key '{key}' (first defined on line {first_line})")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Line of the first definition.
        first_line: usize,
    },
    /// The same column name twice in one table header.
    #[error("duplicate column '{0}' in the table header")]
    DuplicateColumn(String),
    /// A table row whose cell count differs from the header.
    #[error("this row has {found} cells but the table has {expected} columns")]
    RowWidth {
        /// Columns in the header.
        expected: usize,
        /// Cells in the row.
        found: usize,
    },
    /// A typed-table cell that does not match its declared type.
    #[error("a column of type {ty} cannot hold {found}")]
    CellType {
        /// The declared type.
        ty: String,
        /// A description of the value found.
        found: String,
    },
    /// A value that SDN text cannot express (raised by the serializer).
    #[error("cannot write as SDN: {0}")]
    Unrepresentable(String),
    /// A dotted path that names no value.
    #[error("no value at '{path}': {reason}")]
    NoSuchPath {
        /// The path asked for.
        path: String,
        /// Why the path leads nowhere.
        reason: String,
    },
    /// A message from serde or the typed schema, with its context.
    #[error("{0}")]
    Message(String),
}

/// An SDN error: a kind, where it happened in the text (when the error
/// comes from text), and what was being read (a key path or a table row
/// and column) when that helps.
///
/// The details live behind one box so that `Result`s carrying this error
/// stay small on the hot path of reading rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(Box<Details>);

#[derive(Debug, Clone, PartialEq)]
struct Details {
    kind: ErrorKind,
    location: Option<Location>,
    context: Option<String>,
}

impl Error {
    /// An error without a location.
    #[cold]
    #[must_use]
    pub fn new(kind: ErrorKind) -> Self {
        Self(Box::new(Details {
            kind,
            location: None,
            context: None,
        }))
    }

    /// An error at byte `offset` of `text`.
    #[cold]
    #[must_use]
    pub fn at(kind: ErrorKind, text: &str, offset: usize) -> Self {
        Self(Box::new(Details {
            kind,
            location: Some(Location::of_offset(text, offset)),
            context: None,
        }))
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// Where it went wrong, when the error comes from SDN text.
    #[must_use]
    pub fn location(&self) -> Option<Location> {
        self.0.location
    }

    /// What was being read, such as `table 'possible', row 3, column 'id'`.
    #[must_use]
    pub fn context(&self) -> Option<&str> {
        self.0.context.as_deref()
    }

    /// The message without the location: context and kind.
    #[must_use]
    pub fn message(&self) -> String {
        match &self.0.context {
            Some(context) => format!("{context}: {}", self.0.kind),
            None => self.0.kind.to_string(),
        }
    }

    /// Sets the location if none is known yet (inner errors are more precise).
    #[cold]
    pub(crate) fn or_locate(mut self, text: &str, offset: usize) -> Self {
        if self.0.location.is_none() {
            self.0.location = Some(Location::of_offset(text, offset));
        }
        self
    }

    /// Sets the context if none is known yet.
    #[cold]
    pub(crate) fn or_context(mut self, context: impl FnOnce() -> String) -> Self {
        if self.0.context.is_none() {
            self.0.context = Some(context());
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(Location { line, column }) = self.0.location {
            write!(f, "line {line}, column {column}: ")?;
        }
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(ErrorKind::Message(msg.to_string()))
    }
}

impl serde::ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(ErrorKind::Message(msg.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_characters() {
        let text = "a: 1\nbé: x\n";
        // 'é' is two bytes but one column; offsets past the end clamp.
        for (offset, line, column) in [(0, 1, 1), (5, 2, 1), (7, 2, 2), (8, 2, 3), (999, 3, 1)] {
            assert_eq!(
                Location::of_offset(text, offset),
                Location { line, column },
                "{offset}"
            );
        }
    }

    #[test]
    fn display_reads_as_a_sentence_with_location() {
        let e = Error::at(ErrorKind::UnterminatedString, "k: \"abc", 3);
        assert_eq!(
            e.to_string(),
            "line 1, column 4: unterminated string; add the closing '\"' on the same line (write a newline as \\n)"
        );
    }
}
