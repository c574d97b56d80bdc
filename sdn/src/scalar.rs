//! Scalars: how bare text is classified (null, bool, integer, float or
//! string), how quoted strings are decoded and encoded, and when a string
//! may be written bare. Parser and serializer share these functions so the
//! serializer quotes exactly the strings the parser would not read back.

use std::borrow::Cow;

use nom::{
    Parser,
    bytes::complete::take_while1,
    character::complete::{char, one_of},
    combinator::{opt, recognize},
    multi::many0_count,
    sequence::pair,
};

use crate::error::ErrorKind;
use crate::syntax::{self, PResult};

/// A classified bare token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

fn digits(i: &str) -> PResult<'_, &str> {
    let digit_run = || take_while1(|c: char| c.is_ascii_digit());
    recognize(pair(digit_run(), many0_count(pair(char('_'), digit_run())))).parse(i)
}

/// Recognizes the number grammar: `-? digits (. digits)? ([eE] [+-]? digits)?`
/// where `digits` may separate digit groups with single underscores.
fn number(i: &str) -> PResult<'_, &str> {
    recognize((
        opt(char('-')),
        digits,
        opt(pair(char('.'), digits)),
        opt((one_of("eE"), opt(one_of("+-")), digits)),
    ))
    .parse(i)
}

/// The value of a plain decimal integer of at most 18 digits (which cannot
/// overflow `i64`), the common case of ids and counts; `None` for anything
/// else, which the full number grammar then handles.
pub(crate) fn short_decimal(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits
        .iter()
        .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
    Some(if negative { -magnitude } else { magnitude })
}

/// Classifies a bare token. A token is a number only if the whole token
/// matches the number grammar; `2.1.0` or `0.0.0.0` are strings.
///
/// # Errors
/// An integer outside `i64` or a float too large for `f64`.
pub(crate) fn classify(text: &str) -> Result<Scalar<'_>, ErrorKind> {
    match text {
        "null" | "nil" => return Ok(Scalar::Null),
        "true" => return Ok(Scalar::Bool(true)),
        "false" => return Ok(Scalar::Bool(false)),
        _ => {}
    }
    if let Some(i) = short_decimal(text) {
        return Ok(Scalar::Int(i));
    }
    let starts_numeric = matches!(text.as_bytes().first(), Some(b'0'..=b'9' | b'-'));
    if !starts_numeric || !matches!(number(text), Ok(("", _))) {
        return Ok(Scalar::Str(text));
    }
    let plain: Cow<'_, str> = if text.contains('_') {
        Cow::Owned(text.replace('_', ""))
    } else {
        Cow::Borrowed(text)
    };
    if plain.contains(['.', 'e', 'E']) {
        match plain.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Scalar::Float(f)),
            _ => Err(ErrorKind::FloatOverflow(text.to_owned())),
        }
    } else {
        plain
            .parse::<i64>()
            .map(Scalar::Int)
            .map_err(|_| ErrorKind::IntOverflow(text.to_owned()))
    }
}

/// Decodes the escapes of a quoted token (quotes included). The token was
/// validated by [`syntax::quoted`], so an error here means a caller passed
/// an unvalidated token; it is reported rather than trusted.
///
/// # Errors
/// A malformed escape.
pub(crate) fn unquote(token: &str) -> Result<Cow<'_, str>, ErrorKind> {
    let inner = token
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or(ErrorKind::UnterminatedString)?;
    if !inner.contains('\\') {
        return Ok(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars.next().ok_or(ErrorKind::UnterminatedString)?;
        let decoded = match escaped {
            '"' => '"',
            '\\' => '\\',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            'u' => {
                let rest = chars.as_str();
                let (scalar, len) = syntax::unicode_escape(rest)?;
                chars = rest.get(len..).unwrap_or("").chars();
                scalar
            }
            other => return Err(ErrorKind::BadEscape(other)),
        };
        out.push(decoded);
    }
    Ok(Cow::Owned(out))
}

/// Appends `s` as a quoted string with every character that needs it
/// escaped.
pub(crate) fn write_quoted(out: &mut String, s: &str) {
    out.reserve(s.len().saturating_add(2));
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => {
                out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Where a bare string would be written; each place ends a bare token at
/// different characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The rest of a line: `key: value`.
    Line,
    /// A line of an array block, which must not read as a `key:` entry.
    BlockItem,
    /// A cell of a table row, ended by `,`.
    Cell,
    /// An item of an inline array, ended by `,` or `]`.
    Array,
    /// A value of an inline dict, ended by `,` or `}`.
    Dict,
    /// A cell of a typed-table tuple, ended by `,` or `)`.
    Tuple,
}

impl Place {
    /// The bytes that end a bare token here.
    pub(crate) fn stops(self) -> &'static [u8] {
        match self {
            Place::Line | Place::BlockItem => b"",
            Place::Cell => b",",
            Place::Array => b",]",
            Place::Dict => b",}",
            Place::Tuple => b",)",
        }
    }
}

/// True when `s`, written bare at `place`, reads back as exactly the
/// string `s`.
pub(crate) fn bare_ok(s: &str, place: Place) -> bool {
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if matches!(first, b'"' | b'{' | b'[' | b'#' | b' ' | b'\t') || matches!(last, b' ' | b'\t') {
        return false;
    }
    let stops = place.stops();
    let mut prev = first;
    for (i, &b) in bytes.iter().enumerate() {
        if stops.contains(&b) || (b == b'#' && i > 0 && matches!(prev, b' ' | b'\t')) {
            return false;
        }
        prev = b;
    }
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return false;
    }
    if !matches!(classify(s), Ok(Scalar::Str(_))) {
        return false;
    }
    match place {
        Place::Line => !syntax::starts_typed_table(s),
        Place::BlockItem => syntax::statement_head(s).is_none(),
        _ => true,
    }
}

/// True when `s` can be written as a key without quotes.
pub(crate) fn bare_key_ok(s: &str) -> bool {
    matches!(syntax::ident(s), Ok(("", _)))
}

/// Appends a string bare when that reads back identically at `place`,
/// quoted otherwise.
pub(crate) fn write_str(out: &mut String, s: &str, place: Place) {
    if bare_ok(s, place) {
        out.push_str(s);
    } else {
        write_quoted(out, s);
    }
}

/// Appends a key bare when it is an identifier, quoted otherwise.
pub(crate) fn write_key(out: &mut String, key: &str) {
    if bare_key_ok(key) {
        out.push_str(key);
    } else {
        write_quoted(out, key);
    }
}

/// Appends a float so that it reads back as the same float (and as a
/// float, never an integer).
pub(crate) fn write_float(out: &mut String, f: f64) {
    // `Debug` prints the shortest text that parses back to the same f64,
    // always with a '.' or an exponent, and uses exponents only for very
    // large or small magnitudes.
    out.push_str(&format!("{f:?}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_numbers_only_when_the_whole_token_matches() {
        assert_eq!(classify("42"), Ok(Scalar::Int(42)));
        assert_eq!(classify("-17"), Ok(Scalar::Int(-17)));
        assert_eq!(classify("1_000_000"), Ok(Scalar::Int(1_000_000)));
        assert_eq!(classify("2.5"), Ok(Scalar::Float(2.5)));
        assert_eq!(classify("-0.5"), Ok(Scalar::Float(-0.5)));
        assert_eq!(classify("1.5e-10"), Ok(Scalar::Float(1.5e-10)));
        assert_eq!(classify("1e5"), Ok(Scalar::Float(1e5)));
        assert_eq!(classify("2.1.0"), Ok(Scalar::Str("2.1.0")));
        assert_eq!(classify("0.0.0.0"), Ok(Scalar::Str("0.0.0.0")));
        assert_eq!(classify("1__0"), Ok(Scalar::Str("1__0")));
        assert_eq!(classify("_1"), Ok(Scalar::Str("_1")));
        assert_eq!(classify("1_"), Ok(Scalar::Str("1_")));
        assert_eq!(classify(".5"), Ok(Scalar::Str(".5")));
        assert_eq!(classify("5."), Ok(Scalar::Str("5.")));
        assert_eq!(classify("+5"), Ok(Scalar::Str("+5")));
        assert_eq!(classify("-"), Ok(Scalar::Str("-")));
        assert_eq!(classify("nil"), Ok(Scalar::Null));
        assert_eq!(classify("True"), Ok(Scalar::Str("True")));
    }

    #[test]
    fn integer_limits_are_exact() {
        assert_eq!(classify("9223372036854775807"), Ok(Scalar::Int(i64::MAX)));
        assert_eq!(classify("-9223372036854775808"), Ok(Scalar::Int(i64::MIN)));
        assert_eq!(
            classify("9223372036854775808"),
            Err(ErrorKind::IntOverflow("9223372036854775808".into()))
        );
        assert_eq!(
            classify("-9223372036854775809"),
            Err(ErrorKind::IntOverflow("-9223372036854775809".into()))
        );
        assert_eq!(
            classify("1e309"),
            Err(ErrorKind::FloatOverflow("1e309".into()))
        );
    }

    #[test]
    fn unquote_decodes_every_escape() {
        assert_eq!(
            unquote(r#""a\"b\\c\nd\re\tf\0g""#).unwrap(),
            "a\"b\\c\nd\re\tf\0g"
        );
        assert_eq!(unquote(r#""\u{e9}\u{1F600}""#).unwrap(), "é😀");
        assert!(matches!(
            unquote("\"plain\"").unwrap(),
            Cow::Borrowed("plain")
        ));
        assert_eq!(unquote(r#""\q""#), Err(ErrorKind::BadEscape('q')));
    }

    #[test]
    fn bare_ok_refuses_what_would_read_back_differently() {
        for s in [
            "", " a", "a ", "true", "nil", "12", "1.5", "\"a", "{a", "[a", "#a", "a #b", "a\nb",
        ] {
            assert!(!bare_ok(s, Place::Line), "{s:?}");
        }
        for s in [
            "Alice Chen",
            "a#b",
            "2.1.0",
            "/api/users/{id}",
            "a, b",
            "a: b",
            "é",
        ] {
            assert!(bare_ok(s, Place::Line), "{s:?}");
        }
        assert!(!bare_ok("a, b", Place::Cell));
        assert!(!bare_ok("a]", Place::Array));
        assert!(bare_ok("a]", Place::Dict));
        assert!(!bare_ok("a}", Place::Dict));
        assert!(!bare_ok("a)", Place::Tuple));
        assert!(!bare_ok("a: b", Place::BlockItem));
        assert!(!bare_ok("a = b", Place::BlockItem));
        assert!(!bare_ok("table{i32}", Place::Line));
    }
}
