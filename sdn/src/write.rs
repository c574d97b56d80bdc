//! The serializer: values to idiomatic SDN text. Dicts and non-trivial
//! arrays use block form, short scalar arrays the inline form, tables the
//! table form; strings are quoted exactly when the bare form would not read
//! back as the same string.

use crate::error::{Error, ErrorKind};
use crate::limits::MAX_DEPTH;
use crate::scalar::{self, Place, write_key, write_str};
use crate::value::{ColumnType, Dict, Header, Table, Value};

/// Spaces per indentation level in written documents.
const INDENT: usize = 4;

/// Inline arrays longer than this (in bytes of text) are written as blocks.
const INLINE_WIDTH: usize = 80;

fn unrepresentable(what: &str) -> Error {
    Error::new(ErrorKind::Unrepresentable(what.to_owned()))
}

/// Writes a document: the entries of `dict` as top-level statements.
///
/// # Errors
/// A value SDN cannot express: a non-finite float, a table inside an
/// array or an inline dict, a table whose rows do not match its header or
/// whose typed cells do not match their types, nesting deeper than
/// [`MAX_DEPTH`].
pub fn write_document(dict: &Dict) -> Result<String, Error> {
    let mut out = String::new();
    entries(&mut out, dict, 0, 0)?;
    Ok(out)
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn deeper(depth: usize) -> Result<usize, Error> {
    if depth >= MAX_DEPTH {
        Err(Error::new(ErrorKind::TooDeep { max: MAX_DEPTH }))
    } else {
        Ok(depth.saturating_add(1))
    }
}

fn entries(out: &mut String, dict: &Dict, indent: usize, depth: usize) -> Result<(), Error> {
    for (key, value) in dict {
        pad(out, indent);
        write_key(out, key);
        entry_value(out, value, indent, depth)?;
        out.push('\n');
    }
    Ok(())
}

/// Writes what follows a key: `: scalar`, `= {}`, `:` and a block, or a
/// table header and rows. The caller ends the line.
fn entry_value(out: &mut String, value: &Value, indent: usize, depth: usize) -> Result<(), Error> {
    let inner = indent.saturating_add(INDENT);
    match value {
        Value::Dict(dict) if dict.is_empty() => out.push_str(" = {}"),
        Value::Dict(dict) => {
            out.push_str(":\n");
            entries(out, dict, inner, deeper(depth)?)?;
            out.pop();
        }
        Value::Array(items) if items.is_empty() => out.push_str(" = []"),
        Value::Array(items) => {
            let depth = deeper(depth)?;
            if let Some(line) = short_inline_array(items, depth)? {
                out.push_str(" = ");
                out.push_str(&line);
            } else {
                out.push(':');
                for item in items {
                    out.push('\n');
                    pad(out, inner);
                    inline(out, item, Place::BlockItem, depth)?;
                }
            }
        }
        Value::Table(table) => write_table(out, table, inner, deeper(depth)?)?,
        scalar => {
            out.push_str(": ");
            inline(out, scalar, Place::Line, depth)?;
        }
    }
    Ok(())
}

/// The inline form of an array of scalars when it is short enough to read
/// well on one line.
fn short_inline_array(items: &[Value], depth: usize) -> Result<Option<String>, Error> {
    let all_scalar = items
        .iter()
        .all(|v| !matches!(v, Value::Array(_) | Value::Dict(_) | Value::Table(_)));
    if !all_scalar {
        return Ok(None);
    }
    let mut line = String::new();
    inline_array(&mut line, items, depth)?;
    Ok((line.len() <= INLINE_WIDTH).then_some(line))
}

fn inline_array(out: &mut String, items: &[Value], depth: usize) -> Result<(), Error> {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        inline(out, item, Place::Array, depth)?;
    }
    out.push(']');
    Ok(())
}

/// Writes a value in inline form at `place`.
fn inline(out: &mut String, value: &Value, place: Place, depth: usize) -> Result<(), Error> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) if f.is_finite() => scalar::write_float(out, *f),
        Value::Float(_) => return Err(unrepresentable("a float that is infinite or NaN")),
        Value::String(s) => write_str(out, s, place),
        Value::Array(items) => inline_array(out, items, deeper(depth)?)?,
        Value::Dict(dict) => {
            let depth = deeper(depth)?;
            out.push('{');
            for (i, (key, item)) in dict.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_key(out, key);
                out.push_str(": ");
                inline(out, item, Place::Dict, depth)?;
            }
            out.push('}');
        }
        Value::Table(_) => {
            return Err(unrepresentable(
                "a table can only be the value of a key, not an item of an array or an inline dict",
            ));
        }
    }
    Ok(())
}

/// Writes a table header after its key, then its rows at `row_indent`.
fn write_table(
    out: &mut String,
    table: &Table,
    row_indent: usize,
    depth: usize,
) -> Result<(), Error> {
    let columns = table.header.columns();
    if columns.is_empty() {
        return Err(unrepresentable("a table with no columns"));
    }
    let types: Vec<ColumnType> = match &table.header {
        Header::Named(fields) => {
            for (i, field) in fields.iter().enumerate() {
                if fields.get(..i).is_some_and(|before| before.contains(field)) {
                    return Err(unrepresentable(&format!(
                        "a table with the column '{field}' twice"
                    )));
                }
            }
            out.push_str(" |");
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_key(out, field);
            }
            out.push('|');
            Vec::new()
        }
        Header::Typed(types) => {
            out.push_str(": table{");
            for (i, ty) in types.iter().enumerate() {
                if !scalar::bare_key_ok(ty) {
                    return Err(unrepresentable(&format!(
                        "the type name '{ty}' (type names are letters, digits and '_')"
                    )));
                }
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(ty);
            }
            out.push('}');
            types.iter().map(|t| ColumnType::of(t)).collect()
        }
    };
    for row in &table.rows {
        if row.len() != columns.len() {
            return Err(unrepresentable(&format!(
                "a table row with {} cells under {} columns",
                row.len(),
                columns.len()
            )));
        }
        out.push('\n');
        pad(out, row_indent);
        for (i, cell) in row.iter().enumerate() {
            if let (Some(ty), Some(name)) = (types.get(i), columns.get(i)) {
                ty.check(name, cell).map_err(Error::new)?;
            }
            if i > 0 {
                out.push_str(", ");
            }
            inline(out, cell, Place::Cell, depth)?;
        }
    }
    Ok(())
}
