//! The value model: what a document means, in order, independent of how it
//! was written. A document is a [`Dict`]; tables keep their header (field
//! names or type names) so they serialize back as tables.

use std::borrow::Cow;

use indexmap::IndexMap;

use crate::error::{Error, ErrorKind, Location};
use crate::parse::{locate, offset_in};
use crate::scalar::{self, Scalar};
use crate::syntax::{Key, Kind, Node, RowCursor, TableNode};

/// An ordered dict: keys keep the order in which they were written.
pub type Dict = IndexMap<String, Value>;

/// Any SDN value. `Int(1)` and `Float(1.0)` are different values and stay
/// different through serialization.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` or `nil`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer literal; must fit in `i64`.
    Int(i64),
    /// A literal with a fraction or an exponent; always finite.
    Float(f64),
    /// A bare or quoted string.
    String(String),
    /// An inline `[...]` or block array.
    Array(Vec<Value>),
    /// An inline `{...}` or block dict, in written order.
    Dict(Dict),
    /// A named (`name |a, b|`) or typed (`name: table{T, U}`) table.
    Table(Table),
}

/// The header of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// Field names of a named table: `users |id, name|`.
    Named(Vec<String>),
    /// Type names of a typed table: `coords: table{i32, i32}`.
    Typed(Vec<String>),
}

impl Header {
    /// The field or type names, one per column.
    #[must_use]
    pub fn columns(&self) -> &[String] {
        match self {
            Header::Named(names) | Header::Typed(names) => names,
        }
    }
}

/// A table: a header and rows with one cell per column.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Field names or type names.
    pub header: Header,
    /// The rows; a valid table has `header.columns().len()` cells in each.
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// The row at `index` of a named table as a dict of field to cell.
    /// For a typed table, `None` (its columns have no names).
    #[must_use]
    pub fn record(&self, index: usize) -> Option<Dict> {
        let Header::Named(fields) = &self.header else {
            return None;
        };
        let row = self.rows.get(index)?;
        Some(fields.iter().cloned().zip(row.iter().cloned()).collect())
    }
}

impl Value {
    /// The value under `key` when this is a dict.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict()?.get(key)
    }

    /// The string, when this is a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, when this is an integer.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, when this is a float or an integer.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // documented: large integers round
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The boolean, when this is a boolean.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, when this is an array.
    #[must_use]
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, when this is a dict.
    #[must_use]
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The table, when this is a table.
    #[must_use]
    pub fn as_table(&self) -> Option<&Table> {
        match self {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }

    /// True for `null`.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short description of the kind of value, for messages.
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Dict(_) => "a dict",
            Value::Table(_) => "a table",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

/// What a typed-table column may hold, from its type name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ColumnType {
    Int { min: i64, max: i64 },
    Float { max: f64 },
    Bool,
    Str,
    Any,
}

impl ColumnType {
    pub(crate) fn of(name: &str) -> Self {
        let int = |min: i64, max: i64| ColumnType::Int { min, max };
        match name {
            "i8" => int(i8::MIN.into(), i8::MAX.into()),
            "i16" => int(i16::MIN.into(), i16::MAX.into()),
            "i32" => int(i32::MIN.into(), i32::MAX.into()),
            "i64" | "isize" => int(i64::MIN, i64::MAX),
            "u8" => int(0, u8::MAX.into()),
            "u16" => int(0, u16::MAX.into()),
            "u32" => int(0, u32::MAX.into()),
            // The model's integer is i64, so u64 cells stop at i64::MAX.
            "u64" | "usize" => int(0, i64::MAX),
            "f32" => ColumnType::Float {
                max: f64::from(f32::MAX),
            },
            "f64" => ColumnType::Float { max: f64::MAX },
            "bool" => ColumnType::Bool,
            "str" | "string" => ColumnType::Str,
            _ => ColumnType::Any,
        }
    }

    /// Checks a cell against the column type.
    pub(crate) fn check(self, ty: &str, cell: &Value) -> Result<(), ErrorKind> {
        let ok = match (self, cell) {
            (ColumnType::Int { min, max }, Value::Int(i)) => (min..=max).contains(i),
            (ColumnType::Float { max }, Value::Float(f)) => f.abs() <= max,
            (ColumnType::Bool, Value::Bool(_))
            | (ColumnType::Str, Value::String(_))
            | (ColumnType::Any, _) => true,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let found = match cell {
            Value::Int(i) => format!("the integer {i}"),
            Value::Float(f) => format!("the number {f}"),
            other => other.kind_name().to_owned(),
        };
        Err(ErrorKind::CellType {
            ty: ty.to_owned(),
            found,
        })
    }
}

/// The text of a key (quoted keys decoded).
pub(crate) fn key_text<'a>(key: &Key<'a>) -> Result<Cow<'a, str>, ErrorKind> {
    if key.quoted {
        scalar::unquote(key.src)
    } else {
        Ok(Cow::Borrowed(key.src))
    }
}

/// Builds values from parsed nodes, locating errors in `text`.
pub(crate) struct Builder<'t> {
    pub text: &'t str,
}

impl Builder<'_> {
    fn fail(&self, kind: ErrorKind, at: &str) -> Error {
        Error::at(kind, self.text, offset_in(self.text, at))
    }

    fn line_of(&self, at: &str) -> usize {
        Location::of_offset(self.text, offset_in(self.text, at)).line
    }

    pub(crate) fn key(&self, key: &Key<'_>) -> Result<String, Error> {
        key_text(key)
            .map(Cow::into_owned)
            .map_err(|kind| self.fail(kind, key.src))
    }

    pub(crate) fn scalar(&self, node: &Node<'_>) -> Result<Value, Error> {
        let scalar = scalar::classify(node.src).map_err(|kind| self.fail(kind, node.src))?;
        Ok(match scalar {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::Int(i),
            Scalar::Float(f) => Value::Float(f),
            Scalar::Str(s) => Value::String(s.to_owned()),
        })
    }

    pub(crate) fn value(&self, node: &Node<'_>) -> Result<Value, Error> {
        match &node.kind {
            Kind::Bare => self.scalar(node),
            Kind::Quoted => scalar::unquote(node.src)
                .map(|s| Value::String(s.into_owned()))
                .map_err(|kind| self.fail(kind, node.src)),
            Kind::Dict(entries) => {
                let mut dict = Dict::with_capacity(entries.len());
                for entry in entries {
                    let key = self.key(&entry.key)?;
                    if let Some(first) = dict.get_index_of(&key) {
                        let first_line = entries.get(first).map_or(0, |e| self.line_of(e.key.src));
                        return Err(
                            self.fail(ErrorKind::DuplicateKey { key, first_line }, entry.key.src)
                        );
                    }
                    dict.insert(key, self.value(&entry.value)?);
                }
                Ok(Value::Dict(dict))
            }
            Kind::Array(items) => items
                .iter()
                .map(|item| self.value(item))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Kind::Table(table) => self.table(table).map(Value::Table),
        }
    }

    fn table(&self, table: &TableNode<'_>) -> Result<Table, Error> {
        let mut names: Vec<String> = Vec::with_capacity(table.columns.len());
        for column in &table.columns {
            let name = self.key(column)?;
            if !table.typed && names.contains(&name) {
                return Err(self.fail(ErrorKind::DuplicateColumn(name), column.src));
            }
            names.push(name);
        }
        let types: Vec<ColumnType> = if table.typed {
            names.iter().map(|n| ColumnType::of(n)).collect()
        } else {
            Vec::new()
        };
        let width = names.len();
        let located = |fail| locate(self.text, fail);
        let mut rows = Vec::with_capacity(table.rows.len());
        for &src in &table.rows {
            let mut cursor = RowCursor::new(src, table.depth);
            let mut row = Vec::with_capacity(width);
            for index in 0..width {
                let cell = cursor
                    .expect_cell(width, src.text)
                    .map_err(located)?
                    .into_node();
                row.push(match types.get(index) {
                    Some(&ty) => {
                        self.typed_cell(ty, names.get(index).map_or("", String::as_str), &cell)?
                    }
                    None => self.value(&cell)?,
                });
            }
            cursor.finish(width, src.text).map_err(located)?;
            rows.push(row);
        }
        let header = if table.typed {
            Header::Typed(names)
        } else {
            Header::Named(names)
        };
        Ok(Table { header, rows })
    }

    /// A typed-table cell: the declared type decides how bare text reads
    /// (a `str` cell is the text verbatim, a float cell accepts an integer
    /// literal), then the cell is checked against the type.
    fn typed_cell(&self, ty: ColumnType, ty_name: &str, cell: &Node<'_>) -> Result<Value, Error> {
        let value = match (ty, &cell.kind) {
            (ColumnType::Str, Kind::Bare) => Value::String(cell.src.to_owned()),
            (ColumnType::Float { .. }, Kind::Bare) => match self.scalar(cell)? {
                Value::Int(i) => Value::Float(int_to_float(i)),
                other => other,
            },
            _ => self.value(cell)?,
        };
        ty.check(ty_name, &value)
            .map_err(|kind| self.fail(kind, cell.src))?;
        Ok(value)
    }
}

#[allow(clippy::cast_precision_loss)] // an integer literal in a float column means that float
fn int_to_float(i: i64) -> f64 {
    i as f64
}
