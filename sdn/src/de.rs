//! serde deserialization straight from the parsed node tree, without
//! building [`crate::Value`]s first: bare tokens are read as whatever type
//! the target asks for, strings are borrowed from the input when they have
//! no escapes, and a named table reads as a sequence of records.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use crate::error::{Error, ErrorKind};
use crate::parse::{self, locate, offset_in};
use crate::scalar::{self, Scalar};
use crate::syntax::{Cell, Entry, Key, Kind, Node, RowCursor, RowSrc, TableNode};
use crate::value::key_text;

/// Deserializes a `T` from SDN text.
///
/// The document is a dict, so `T` is a struct or a map. A named table
/// deserializes as a sequence of records (`Vec<Record>`), each row a map of
/// field name to cell; a typed table as a sequence of tuples. A bare cell
/// or value is read as the type the target asks for: a `String` field
/// takes the text verbatim (`2.1.0`, `12:5`), a number field parses it.
///
/// # Errors
/// A syntax error (with line and column), or a value that does not fit
/// the target type; the error then names the key, or the table, row and
/// column, and carries the line and column of the offending value.
pub fn from_str<'de, T: de::Deserialize<'de>>(text: &'de str) -> Result<T, Error> {
    let root = parse::document(text)?;
    T::deserialize(NodeDe {
        text,
        node: &root,
        name: "",
    })
}

/// Deserializes one node. `name` is the key the node is stored under, used
/// to name tables in errors.
struct NodeDe<'a, 'de> {
    text: &'de str,
    node: &'a Node<'de>,
    name: &'a str,
}

impl<'de> NodeDe<'_, 'de> {
    #[cold]
    fn fail(&self, kind: ErrorKind) -> Error {
        Error::at(kind, self.text, offset_in(self.text, self.node.src))
    }

    #[cold]
    fn locate(&self, error: Error) -> Error {
        error.or_locate(self.text, offset_in(self.text, self.node.src))
    }

    /// The node as a token, bare or `quoted`.
    fn token(&self, quoted: bool) -> ScalarDe<'de> {
        ScalarDe {
            text: self.text,
            src: self.node.src,
            quoted,
        }
    }

    /// The node as a token, when it is one.
    fn scalar(&self) -> Option<ScalarDe<'de>> {
        match self.node.kind {
            Kind::Bare => Some(self.token(false)),
            Kind::Quoted => Some(self.token(true)),
            _ => None,
        }
    }

    fn table_rows<V: Visitor<'de>>(
        &self,
        table: &TableNode<'de>,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let names = column_names(self.text, &table.columns, table.typed)?;
        visitor.visit_seq(Rows {
            text: self.text,
            table: self.name,
            names: &names,
            rows: table.rows.iter(),
            depth: table.depth,
            records: !table.typed,
            index: 0,
            layout: None,
        })
    }
}

/// Decoded column names of a table; field names (not type names) must be
/// distinct.
fn column_names<'de>(
    text: &'de str,
    columns: &[Key<'de>],
    typed: bool,
) -> Result<Vec<Cow<'de, str>>, Error> {
    let mut names: Vec<Cow<'de, str>> = Vec::with_capacity(columns.len());
    for column in columns {
        let at = |kind| Error::at(kind, text, offset_in(text, column.src));
        let name = key_text(column).map_err(at)?;
        if !typed && names.contains(&name) {
            return Err(at(ErrorKind::DuplicateColumn(name.into_owned())));
        }
        names.push(name);
    }
    Ok(names)
}

macro_rules! forward_to_any {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_any(visitor)
        })*
    };
}

/// Tuples and tuple structs read like sequences.
macro_rules! tuples_as_seq {
    () => {
        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.deserialize_seq(visitor)
        }

        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, Error> {
            self.deserialize_seq(visitor)
        }
    };
}

/// Strings, characters and identifiers read like `str`.
macro_rules! strings_as_str {
    () => {
        fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_str(visitor)
        }

        fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_str(visitor)
        }

        fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_str(visitor)
        }
    };
}

/// Integer targets: a plain decimal token (ids, counts) is read directly,
/// exactly as `deserialize_any` would read it, without first testing it
/// against the keywords and the full number grammar.
macro_rules! integers_from_short_decimals {
    ($($method:ident)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match scalar::short_decimal(self.src) {
                Some(i) if !self.quoted => visitor.visit_i64(i).map_err(|e| self.locate(e)),
                _ => self.deserialize_any(visitor),
            }
        })*
    };
}

/// Deserializes one scalar token (a bare token or a quoted string), the
/// common case of a table cell. `src` is the token as written, borrowed
/// from `text`.
#[derive(Clone, Copy)]
struct ScalarDe<'de> {
    text: &'de str,
    src: &'de str,
    quoted: bool,
}

impl<'de> ScalarDe<'de> {
    #[cold]
    fn fail(&self, kind: ErrorKind) -> Error {
        Error::at(kind, self.text, offset_in(self.text, self.src))
    }

    #[cold]
    fn locate(&self, error: Error) -> Error {
        error.or_locate(self.text, offset_in(self.text, self.src))
    }

    /// The string the token stands for: a bare token verbatim, a quoted
    /// one decoded (borrowed when it has no escapes).
    fn string(&self) -> Result<Cow<'de, str>, Error> {
        if self.quoted {
            scalar::unquote(self.src).map_err(|kind| self.fail(kind))
        } else {
            Ok(Cow::Borrowed(self.src))
        }
    }

    fn is_null(&self) -> bool {
        !self.quoted && matches!(self.src, "null" | "nil")
    }
}

// Implemented for a reference: the token stays where the row reader put
// it, and only its address is passed on.
impl<'de> Deserializer<'de> for &ScalarDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = if self.quoted {
            self.deserialize_str(visitor)
        } else {
            match scalar::classify(self.src).map_err(|kind| self.fail(kind))? {
                Scalar::Null => visitor.visit_unit(),
                Scalar::Bool(b) => visitor.visit_bool(b),
                Scalar::Int(i) => visitor.visit_i64(i),
                Scalar::Float(f) => visitor.visit_f64(f),
                Scalar::Str(s) => visitor.visit_borrowed_str(s),
            }
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.string()? {
            Cow::Borrowed(s) => visitor.visit_borrowed_str(s),
            Cow::Owned(s) => visitor.visit_string(s),
        };
        result.map_err(|e| self.locate(e))
    }

    strings_as_str!();

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let name = self.string()?;
        visitor
            .visit_enum(UnitVariant(name))
            .map_err(|e| self.locate(e))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Checked exactly as `parse` would (an integer that overflows is
        // an error even where it is skipped).
        let kind = if self.quoted {
            Kind::Quoted
        } else {
            Kind::Bare
        };
        let node = Node {
            src: self.src,
            kind,
        };
        crate::value::Builder { text: self.text }.value(&node)?;
        visitor.visit_unit()
    }

    integers_from_short_decimals! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8
        deserialize_u16 deserialize_u32 deserialize_u64
    }

    serde::forward_to_deserialize_any! {
        bool i128 u128 f32 f64 bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.node.kind {
            Kind::Bare => return self.token(false).deserialize_any(visitor),
            Kind::Quoted => return self.token(true).deserialize_any(visitor),
            Kind::Dict(entries) => visitor.visit_map(Dict::new(self.text, entries)?),
            Kind::Array(items) => visitor.visit_seq(Items {
                text: self.text,
                items: items.iter(),
            }),
            Kind::Table(table) => visitor.visit_map(TableMapping {
                de: &self,
                table,
                step: 0,
            }),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar() {
            Some(scalar) => scalar.deserialize_str(visitor),
            None => self.deserialize_any(visitor),
        }
    }

    strings_as_str!();

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar() {
            Some(scalar) => scalar.deserialize_option(visitor),
            None => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.kind {
            Kind::Table(table) => self.table_rows(table, visitor).map_err(|e| self.locate(e)),
            _ => self.deserialize_any(visitor),
        }
    }

    tuples_as_seq!();

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let result = match &self.node.kind {
            Kind::Bare => return self.token(false).deserialize_enum(name, variants, visitor),
            Kind::Quoted => return self.token(true).deserialize_enum(name, variants, visitor),
            Kind::Dict(entries) => match entries.as_slice() {
                [entry] => visitor.visit_enum(Variant {
                    name: key_text(&entry.key).map_err(|kind| self.fail(kind))?,
                    content: NodeDe {
                        text: self.text,
                        node: &entry.value,
                        name: entry.key.src,
                    },
                }),
                _ => Err(self.fail(ErrorKind::Message(
                    "expected an enum: a variant name, or a dict with exactly one key naming the variant"
                        .to_owned(),
                ))),
            },
            _ => Err(self.fail(ErrorKind::Message(
                "expected an enum: a variant name, or a dict with exactly one key naming the variant"
                    .to_owned(),
            ))),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // An ignored value is still checked, exactly as `parse` would, so a
        // reader that skips part of a document never accepts invalid text.
        crate::value::Builder { text: self.text }.value(self.node)?;
        visitor.visit_unit()
    }

    forward_to_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_bytes deserialize_byte_buf
        deserialize_unit deserialize_map
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }
}

/// The entries of a dict as a serde map.
struct Dict<'a, 'de> {
    text: &'de str,
    entries: std::slice::Iter<'a, Entry<'de>>,
    current: Option<&'a Entry<'de>>,
}

impl<'a, 'de> Dict<'a, 'de> {
    fn new(text: &'de str, entries: &'a [Entry<'de>]) -> Result<Self, Error> {
        let mut seen: HashSet<Cow<'de, str>> = HashSet::with_capacity(entries.len());
        for entry in entries {
            let at = |kind| Error::at(kind, text, offset_in(text, entry.key.src));
            let key = key_text(&entry.key).map_err(at)?;
            if seen.contains(&key) {
                let key = key.into_owned();
                let first_line = entries
                    .iter()
                    .find(|e| key_text(&e.key).is_ok_and(|k| k == key))
                    .map_or(0, |e| {
                        crate::error::Location::of_offset(text, offset_in(text, e.key.src)).line
                    });
                return Err(at(ErrorKind::DuplicateKey { key, first_line }));
            }
            seen.insert(key);
        }
        Ok(Self {
            text,
            entries: entries.iter(),
            current: None,
        })
    }
}

/// Passes a key (borrowed when it has no escapes) to a seed.
fn key_seed<'de, K: DeserializeSeed<'de>>(seed: K, key: Cow<'de, str>) -> Result<K::Value, Error> {
    match key {
        Cow::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s)),
        Cow::Owned(s) => seed.deserialize(StringDeserializer::new(s)),
    }
}

impl<'de> MapAccess<'de> for Dict<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some(entry);
        let text = self.text;
        let at = |e: Error| e.or_locate(text, offset_in(text, entry.key.src));
        let key = key_text(&entry.key).map_err(|kind| at(Error::new(kind)))?;
        key_seed(seed, key).map(Some).map_err(at)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let entry = self.current.take().ok_or_else(|| {
            Error::new(ErrorKind::Message(
                "a value was requested before its key".into(),
            ))
        })?;
        seed.deserialize(NodeDe {
            text: self.text,
            node: &entry.value,
            name: entry.key.src,
        })
        .map_err(|e| e.or_context(|| format!("key '{}'", entry.key.src)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// The items of an array as a serde sequence.
struct Items<'a, 'de> {
    text: &'de str,
    items: std::slice::Iter<'a, Node<'de>>,
}

impl<'de> SeqAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.items
            .next()
            .map(|node| {
                seed.deserialize(NodeDe {
                    text: self.text,
                    node,
                    name: "",
                })
            })
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The rows of a table as a serde sequence.
struct Rows<'a, 'de> {
    text: &'de str,
    table: &'a str,
    names: &'a [Cow<'de, str>],
    rows: std::slice::Iter<'a, RowSrc<'de>>,
    depth: usize,
    /// Rows read as records (field to cell) rather than arrays.
    records: bool,
    index: usize,
    /// The struct fields rows were last read into, and whether the columns
    /// are exactly those fields in that order.
    layout: Option<(&'static [&'static str], bool)>,
}

impl<'de> SeqAccess<'de> for Rows<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(&src) = self.rows.next() else {
            return Ok(None);
        };
        self.index = self.index.saturating_add(1);
        let (text, table, index) = (self.text, self.table, self.index);
        let mut cursor = RowCursor::new(src, self.depth);
        let mut state = RowState {
            text,
            table,
            names: self.names,
            cursor: &mut cursor,
            start: src.text,
            records: self.records,
            index,
            layout: &mut self.layout,
        };
        let context = |e: Error| {
            e.or_context(|| format!("table '{table}', row {index}"))
                .or_locate(text, offset_in(text, src.text))
        };
        let width = self.names.len();
        match seed.deserialize(Row(&mut state)) {
            Ok(value) => {
                cursor
                    .finish(width, src.text)
                    .map_err(|fail| context(locate(text, fail)))?;
                Ok(Some(value))
            }
            // A row of the wrong width explains a missing or mistyped field
            // better than the field error itself.
            Err(e) => Err(match cursor.finish(width, src.text) {
                Err(fail) if matches!(fail.kind, ErrorKind::RowWidth { .. }) => {
                    context(locate(text, fail))
                }
                _ => context(e),
            }),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.rows.len())
    }
}

/// What reading one table row needs: where it is, its cursor, and what to
/// name in errors.
struct RowState<'a, 'c, 'de> {
    text: &'de str,
    table: &'a str,
    names: &'a [Cow<'de, str>],
    cursor: &'c mut RowCursor<'de>,
    start: &'de str,
    records: bool,
    index: usize,
    layout: &'c mut Option<(&'static [&'static str], bool)>,
}

/// One table row: a record (field name to cell) or an array of cells. Its
/// cells are parsed as the reader asks for them. Only a reference to the
/// state is passed around, so handing the row (and its cells) to serde
/// moves one register rather than copying the state through memory.
struct Row<'r, 'a, 'c, 'de>(&'r mut RowState<'a, 'c, 'de>);

impl<'de> Deserializer<'de> for Row<'_, '_, '_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.0.records {
            self.deserialize_map(visitor)
        } else {
            self.deserialize_seq(visitor)
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(RowCells {
            row: self.0,
            next: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // A typed table's columns have no names: its rows fill a struct's
        // fields in order. A named table whose columns are the struct's
        // fields in declaration order does the same, which spares matching
        // every cell's column name (the check is made once per table).
        let in_order = match *self.0.layout {
            Some((cached, in_order)) if std::ptr::eq(cached, fields) => in_order,
            _ => {
                let in_order = self
                    .0
                    .names
                    .iter()
                    .map(AsRef::as_ref)
                    .eq(fields.iter().copied());
                *self.0.layout = Some((fields, in_order));
                in_order
            }
        };
        if in_order || !self.0.records {
            self.deserialize_seq(visitor)
        } else {
            self.deserialize_map(visitor)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(RowCells {
            row: self.0,
            next: 0,
        })
    }

    tuples_as_seq!();

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct enum identifier ignored_any
    }
}

/// The cells of one row, as map entries or sequence items.
struct RowCells<'r, 'a, 'c, 'de> {
    row: &'r mut RowState<'a, 'c, 'de>,
    next: usize,
}

impl<'de> RowCells<'_, '_, '_, 'de> {
    /// Parses the next cell and hands it to `seed`.
    fn cell<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        let index = self.next;
        self.next = index.saturating_add(1);
        let text = self.row.text;
        if let Some(src) = self.row.cursor.next_token() {
            let token = ScalarDe {
                text,
                src,
                quoted: src.starts_with('"'),
            };
            return seed
                .deserialize(&token)
                .map_err(|e| self.cell_error(index, e.or_locate(text, offset_in(text, src))));
        }
        let cell = match self
            .row
            .cursor
            .expect_cell(self.row.names.len(), self.row.start)
        {
            Ok(cell) => cell,
            Err(fail) => return Err(self.cell_error(index, locate(text, fail))),
        };
        let result = match &cell {
            &Cell::Scalar { src, quoted } => seed.deserialize(&ScalarDe { text, src, quoted }),
            Cell::Inline(node) => seed.deserialize(NodeDe {
                text,
                node,
                name: "",
            }),
        };
        result.map_err(|e| {
            let src = match &cell {
                Cell::Scalar { src, .. } => src,
                Cell::Inline(node) => node.src,
            };
            self.cell_error(index, e.or_locate(text, offset_in(text, src)))
        })
    }

    /// Names the table, row and column of cell `index` in `error`.
    #[cold]
    fn cell_error(&self, index: usize, error: Error) -> Error {
        let RowState {
            table,
            names,
            index: row,
            ..
        } = &*self.row;
        error.or_context(|| {
            let column = names.get(index).map_or(Cow::Borrowed("?"), Cow::clone);
            format!("table '{table}', row {row}, column '{column}'")
        })
    }
}

impl<'de> MapAccess<'de> for RowCells<'_, '_, '_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(name) = self.row.names.get(self.next) else {
            return Ok(None);
        };
        key_seed(seed, name.clone()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.cell(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.names.len().saturating_sub(self.next))
    }
}

impl<'de> SeqAccess<'de> for RowCells<'_, '_, '_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.next >= self.row.names.len() {
            return Ok(None);
        }
        self.cell(seed).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.names.len().saturating_sub(self.next))
    }
}

/// A table read as an untyped value: the map `{"fields": [...], "rows":
/// [[...]]}` (or `"types"` for a typed table), the same shape as its JSON.
struct TableMapping<'a, 'b, 'de> {
    de: &'b NodeDe<'a, 'de>,
    table: &'a TableNode<'de>,
    step: u8,
}

impl<'de> MapAccess<'de> for TableMapping<'_, '_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let key = match self.step {
            0 if self.table.typed => "types",
            0 => "fields",
            1 => "rows",
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let step = self.step;
        self.step = step.saturating_add(1);
        let names = column_names(self.de.text, &self.table.columns, self.table.typed)?;
        if step == 0 {
            let names: Vec<String> = names.into_iter().map(Cow::into_owned).collect();
            return seed.deserialize(serde::de::value::SeqDeserializer::<_, Error>::new(
                names.into_iter().map(IntoDeserializer::into_deserializer),
            ));
        }
        seed.deserialize(RowsAsArrays(Rows {
            text: self.de.text,
            table: self.de.name,
            names: &names,
            rows: self.table.rows.iter(),
            depth: self.table.depth,
            records: false,
            index: 0,
            layout: None,
        }))
    }
}

/// Table rows as a sequence of arrays (for [`TableMapping`]).
struct RowsAsArrays<'a, 'de>(Rows<'a, 'de>);

impl<'de> Deserializer<'de> for RowsAsArrays<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// An enum written as a dict `{variant: content}`.
struct Variant<'a, 'de> {
    name: Cow<'de, str>,
    content: NodeDe<'a, 'de>,
}

impl<'a, 'de> EnumAccess<'de> for Variant<'a, 'de> {
    type Error = Error;
    type Variant = Content<'a, 'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        let value = key_seed(seed, self.name)?;
        Ok((value, Content(self.content)))
    }
}

/// An enum written as its variant's name alone, which is a unit variant.
/// Its access carries nothing, so the variant comes back in registers.
struct UnitVariant<'de>(Cow<'de, str>);

impl<'de> EnumAccess<'de> for UnitVariant<'de> {
    type Error = Error;
    type Variant = NoContent;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Error> {
        Ok((key_seed(seed, self.0)?, NoContent))
    }
}

fn missing_content() -> Error {
    Error::new(ErrorKind::Message(
        "this enum variant has content; write it as a dict {variant: content}".into(),
    ))
}

/// The content of an enum variant written as a dict.
struct Content<'a, 'de>(NodeDe<'a, 'de>);

impl<'de> VariantAccess<'de> for Content<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self.0)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.0.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_map(visitor)
    }
}

/// The (absent) content of a unit variant.
struct NoContent;

impl<'de> VariantAccess<'de> for NoContent {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Error> {
        Err(missing_content())
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(missing_content())
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(missing_content())
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use crate::{ErrorKind, Location};

    #[derive(Debug, Deserialize, PartialEq)]
    enum Shape {
        Dot,
        Circle(u32),
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Cell {
        id: u32,
        name: String,
        tags: Vec<String>,
        shape: Shape,
        small: i8,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Cells {
        cells: Vec<Cell>,
    }

    fn read(rows: &str) -> Result<Cells, crate::Error> {
        crate::from_str(&format!("cells |id, name, tags, shape, small|\n{rows}"))
    }

    #[test]
    fn cells_of_every_form_read_into_fields() {
        let cells = read(
            "    1, Alice Chen, [a, b], Dot, -128\n    2, \"say \\\"hi\\\"\", [], {Circle: 7}, 127 # done\n",
        )
        .unwrap();
        assert_eq!(
            cells.cells,
            [
                Cell {
                    id: 1,
                    name: "Alice Chen".into(),
                    tags: vec!["a".into(), "b".into()],
                    shape: Shape::Dot,
                    small: -128,
                },
                Cell {
                    id: 2,
                    name: "say \"hi\"".into(),
                    tags: vec![],
                    shape: Shape::Circle(7),
                    small: 127,
                },
            ]
        );
    }

    #[test]
    fn integer_cells_keep_their_range_checks() {
        // i8 at its limits and one past them; u32 refuses a negative id.
        for (small, ok) in [
            ("-129", false),
            ("-128", true),
            ("127", true),
            ("128", false),
        ] {
            let result = read(&format!("    1, a, [], Dot, {small}\n"));
            assert_eq!(result.is_ok(), ok, "{small}");
        }
        let e = read("    -1, a, [], Dot, 0\n").unwrap_err();
        assert_eq!(e.location(), Some(Location { line: 2, column: 5 }));
        assert_eq!(e.context(), Some("table 'cells', row 1, column 'id'"));
        assert!(e.to_string().contains("expected u32"), "{e}");
        // A number too long for the short form still overflows as before.
        let e = read("    99999999999999999999, a, [], Dot, 0\n").unwrap_err();
        assert_eq!(
            e.kind(),
            &ErrorKind::IntOverflow("99999999999999999999".into())
        );
    }

    #[test]
    fn a_variant_with_content_written_as_a_name_is_an_error() {
        let e = read("    1, a, [], Circle, 0\n").unwrap_err();
        assert!(
            e.to_string().contains("this enum variant has content"),
            "{e}"
        );
        assert_eq!(
            e.location(),
            Some(Location {
                line: 2,
                column: 15
            })
        );
    }

    #[test]
    fn bad_cells_are_located_where_they_are() {
        let e = read("    1, \"a\" b, [], Dot, 0\n").unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::TrailingText);
        assert_eq!(
            e.location(),
            Some(Location {
                line: 2,
                column: 12
            })
        );
        let e = read("    1, , [], Dot, 0\n").unwrap_err();
        assert_eq!(e.kind(), &ErrorKind::EmptyValue);
        assert_eq!(e.location(), Some(Location { line: 2, column: 8 }));
        let e = read("    1, a, [], Dot\n").unwrap_err();
        assert_eq!(
            e.kind(),
            &ErrorKind::RowWidth {
                expected: 5,
                found: 4
            }
        );
        let e = read("    1, a, [], Dot, 0, 9\n").unwrap_err();
        assert_eq!(
            e.kind(),
            &ErrorKind::RowWidth {
                expected: 5,
                found: 6
            }
        );
    }
}
