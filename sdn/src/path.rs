//! Dotted paths into a document, as the `sdn get` command takes them.
//!
//! A path is segments joined by `.`: a segment is a dict key, an array
//! index (from 0) or a table row index (from 0). A named table's row reads
//! as a dict of field to cell (`users.0.name`), a typed table's row as an
//! array (`coords.1.0`). Keys that contain `.` cannot be addressed.

use std::borrow::Cow;

use crate::error::{Error, ErrorKind};
use crate::value::{Dict, Value};

/// The value at `path` in `root`.
///
/// # Errors
/// An empty segment, a key that is missing, an index out of range or not
/// a number, or a segment below a scalar; the message names the segment.
pub fn lookup(root: &Dict, path: &str) -> Result<Value, Error> {
    let fail = |reason: String| {
        Error::new(ErrorKind::NoSuchPath {
            path: path.to_owned(),
            reason,
        })
    };
    if path.split('.').any(str::is_empty) {
        return Err(fail("the path has an empty segment".to_owned()));
    }
    let mut segments = path.split('.');
    let first = segments.next().unwrap_or_default();
    let mut current: Cow<'_, Value> = Cow::Borrowed(
        root.get(first)
            .ok_or_else(|| fail(format!("the document has no key '{first}'")))?,
    );
    let mut walked = first.to_owned();
    for segment in segments {
        current = match current {
            Cow::Borrowed(v) => child(v, segment, &walked),
            Cow::Owned(v) => child(&v, segment, &walked).map(|c| Cow::Owned(c.into_owned())),
        }
        .map_err(fail)?;
        walked.push('.');
        walked.push_str(segment);
    }
    Ok(current.into_owned())
}

/// The child `segment` of `value`, which is found at path `walked`.
fn child<'a>(value: &'a Value, segment: &str, walked: &str) -> Result<Cow<'a, Value>, String> {
    let index = |len: usize| match segment.parse::<usize>() {
        Ok(i) if i < len => Ok(i),
        Ok(i) => Err(format!(
            "'{walked}' has {len} items; index {i} is out of range"
        )),
        Err(_) => Err(format!("'{walked}' is a list; '{segment}' is not an index")),
    };
    match value {
        Value::Dict(d) => d
            .get(segment)
            .map(Cow::Borrowed)
            .ok_or_else(|| format!("'{walked}' has no key '{segment}'")),
        Value::Array(items) => {
            let i = index(items.len())?;
            items.get(i).map(Cow::Borrowed).ok_or_else(String::new)
        }
        Value::Table(table) => {
            let i = index(table.rows.len())?;
            Ok(Cow::Owned(match table.record(i) {
                Some(record) => Value::Dict(record),
                None => Value::Array(table.rows.get(i).cloned().unwrap_or_default()),
            }))
        }
        scalar => Err(format!(
            "'{walked}' is {}, which has no '{segment}'",
            scalar.kind_name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Dict {
        crate::parse(
            "server:\n    port: 8080\nlist = [a, b]\nusers |id, name|\n    1, Ann\n    2, Bo\nxy: table{i32, i32} = [(1, 2)]\n",
        )
        .unwrap()
    }

    #[test]
    fn walks_dicts_arrays_and_tables() {
        let d = doc();
        assert_eq!(lookup(&d, "server.port").unwrap(), Value::Int(8080));
        assert_eq!(lookup(&d, "list.1").unwrap(), Value::from("b"));
        assert_eq!(lookup(&d, "users.1.name").unwrap(), Value::from("Bo"));
        assert_eq!(lookup(&d, "xy.0.1").unwrap(), Value::Int(2));
        assert!(matches!(lookup(&d, "server").unwrap(), Value::Dict(_)));
    }

    #[test]
    fn says_why_a_path_leads_nowhere() {
        let d = doc();
        let msg = |p: &str| lookup(&d, p).unwrap_err().to_string();
        assert_eq!(
            msg("server.host"),
            "no value at 'server.host': 'server' has no key 'host'"
        );
        assert_eq!(
            msg("list.2"),
            "no value at 'list.2': 'list' has 2 items; index 2 is out of range"
        );
        assert_eq!(
            msg("users.x"),
            "no value at 'users.x': 'users' is a list; 'x' is not an index"
        );
        assert_eq!(
            msg("server.port.x"),
            "no value at 'server.port.x': 'server.port' is an integer, which has no 'x'"
        );
        assert_eq!(
            msg("nope"),
            "no value at 'nope': the document has no key 'nope'"
        );
        assert_eq!(
            msg("a..b"),
            "no value at 'a..b': the path has an empty segment"
        );
    }
}
