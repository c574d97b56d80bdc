//! serde serialization into [`Value`]s, which [`crate::write`] turns into
//! text. A sequence of records with the same fields (a `Vec<Record>`
//! stored under a key) becomes a named table, the idiomatic SDN form.

use serde::ser::{self, Serialize};

use crate::error::{Error, ErrorKind};
use crate::value::{Dict, Header, Table, Value};

/// The newtype name under which [`Value::Array`] serializes, so that this
/// serializer keeps it an array even when its items look like records.
pub(crate) const ARRAY_TOKEN: &str = "$sdn::private::Array";
/// The newtype name under which [`Value::Table`] serializes (as its JSON
/// shape), so that this serializer rebuilds the table.
pub(crate) const TABLE_TOKEN: &str = "$sdn::private::Table";

/// Serializes any `T` into a [`Value`].
///
/// # Errors
/// A map key that is not a string, char, integer or bool; an unsigned
/// integer above `i64::MAX`; an error raised by `T`'s `Serialize`.
pub fn to_value<T: ?Sized + Serialize>(value: &T) -> Result<Value, Error> {
    value.serialize(ValueSerializer).map(|out| out.value)
}

/// A serialized value, and whether it must stay as it is (an array that
/// came from a [`Value::Array`], never turned into a table).
pub(crate) struct Out {
    value: Value,
    exact: bool,
}

impl From<Value> for Out {
    fn from(value: Value) -> Self {
        Out {
            value,
            exact: false,
        }
    }
}

/// Serializes a value stored under a key: the one place a sequence of
/// records may become a table.
fn field_value<T: ?Sized + Serialize>(value: &T) -> Result<Value, Error> {
    let out = value.serialize(ValueSerializer)?;
    Ok(if out.exact {
        out.value
    } else {
        tableize(out.value)
    })
}

/// Turns an array of records with identical fields (in the same order) and
/// cells that fit in a table row into a named table.
fn tableize(value: Value) -> Value {
    let Value::Array(items) = value else {
        return value;
    };
    let fields: Option<Vec<String>> = match items.first() {
        Some(Value::Dict(first)) if !first.is_empty() => Some(first.keys().cloned().collect()),
        _ => None,
    };
    let Some(fields) = fields else {
        return Value::Array(items);
    };
    let uniform = items.iter().all(|item| match item {
        Value::Dict(d) => {
            d.len() == fields.len()
                && d.keys().zip(&fields).all(|(a, b)| a == b)
                && d.values().all(fits_in_cell)
        }
        _ => false,
    });
    if !uniform {
        return Value::Array(items);
    }
    let rows = items
        .into_iter()
        .map(|item| match item {
            Value::Dict(d) => d.into_values().collect(),
            _ => Vec::new(),
        })
        .collect();
    Value::Table(Table {
        header: Header::Named(fields),
        rows,
    })
}

/// True when a value can be written inline (no table inside).
fn fits_in_cell(value: &Value) -> bool {
    match value {
        Value::Table(_) => false,
        Value::Array(items) => items.iter().all(fits_in_cell),
        Value::Dict(d) => d.values().all(fits_in_cell),
        _ => true,
    }
}

/// Rebuilds a table from its JSON shape `{"fields"|"types": [...], "rows":
/// [[...]]}`. Returns the dict unchanged when it does not have that shape.
///
/// # Errors
/// The shape is right but a row's width differs from the header's.
pub(crate) fn table_from_mapping(dict: Dict) -> Result<Result<Table, Dict>, ErrorKind> {
    let shaped = dict.len() == 2
        && dict.get("rows").is_some_and(|r| {
            r.as_array()
                .is_some_and(|rows| rows.iter().all(|row| row.as_array().is_some()))
        })
        && [dict.get("fields"), dict.get("types")]
            .into_iter()
            .flatten()
            .any(|h| {
                h.as_array().is_some_and(|names| {
                    !names.is_empty() && names.iter().all(|n| n.as_str().is_some())
                })
            });
    if !shaped {
        return Ok(Err(dict));
    }
    let typed = dict.contains_key("types");
    let mut dict = dict;
    let names = match dict.swap_remove(if typed { "types" } else { "fields" }) {
        Some(Value::Array(names)) => names
            .into_iter()
            .filter_map(|n| match n {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    let mut rows = Vec::new();
    if let Some(Value::Array(items)) = dict.swap_remove("rows") {
        for (index, item) in items.into_iter().enumerate() {
            if let Value::Array(row) = item {
                if row.len() != names.len() {
                    return Err(ErrorKind::Message(format!(
                        "table row {} has {} cells but the header has {} columns",
                        index.saturating_add(1),
                        row.len(),
                        names.len()
                    )));
                }
                rows.push(row);
            }
        }
    }
    let header = if typed {
        Header::Typed(names)
    } else {
        Header::Named(names)
    };
    Ok(Ok(Table { header, rows }))
}

struct ValueSerializer;

fn unsigned(v: u64) -> Result<Out, Error> {
    i64::try_from(v).map(|i| Value::Int(i).into()).map_err(|_| {
        Error::new(ErrorKind::Unrepresentable(format!(
            "the integer {v} (SDN integers are signed 64-bit)"
        )))
    })
}

impl ser::Serializer for ValueSerializer {
    type Ok = Out;
    type Error = Error;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantBuilder<SeqBuilder>;
    type SerializeMap = DictBuilder;
    type SerializeStruct = DictBuilder;
    type SerializeStructVariant = VariantBuilder<DictBuilder>;

    fn serialize_bool(self, v: bool) -> Result<Out, Error> {
        Ok(Value::Bool(v).into())
    }
    fn serialize_i8(self, v: i8) -> Result<Out, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<Out, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<Out, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<Out, Error> {
        Ok(Value::Int(v).into())
    }
    fn serialize_i128(self, v: i128) -> Result<Out, Error> {
        i64::try_from(v).map(|i| Value::Int(i).into()).map_err(|_| {
            Error::new(ErrorKind::Unrepresentable(format!(
                "the integer {v} (SDN integers are signed 64-bit)"
            )))
        })
    }
    fn serialize_u8(self, v: u8) -> Result<Out, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<Out, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<Out, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<Out, Error> {
        unsigned(v)
    }
    fn serialize_f32(self, v: f32) -> Result<Out, Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<Out, Error> {
        Ok(Value::Float(v).into())
    }
    fn serialize_char(self, v: char) -> Result<Out, Error> {
        Ok(Value::String(v.to_string()).into())
    }
    fn serialize_str(self, v: &str) -> Result<Out, Error> {
        Ok(Value::String(v.to_owned()).into())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Out, Error> {
        Ok(Value::Array(v.iter().map(|&b| Value::Int(b.into())).collect()).into())
    }
    fn serialize_none(self) -> Result<Out, Error> {
        Ok(Value::Null.into())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Out, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Out, Error> {
        Ok(Value::Null.into())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Out, Error> {
        Ok(Value::Null.into())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Out, Error> {
        Ok(Value::String(variant.to_owned()).into())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Out, Error> {
        match name {
            ARRAY_TOKEN => {
                let out = value.serialize(self)?;
                Ok(Out {
                    value: out.value,
                    exact: true,
                })
            }
            TABLE_TOKEN => match value.serialize(self)?.value {
                Value::Dict(dict) => match table_from_mapping(dict).map_err(Error::new)? {
                    Ok(table) => Ok(Value::Table(table).into()),
                    Err(dict) => Ok(Value::Dict(dict).into()),
                },
                other => Ok(other.into()),
            },
            _ => value.serialize(self),
        }
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Out, Error> {
        let mut dict = Dict::new();
        dict.insert(variant.to_owned(), field_value(value)?);
        Ok(Value::Dict(dict).into())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, Error> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0).min(4096))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqBuilder, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<SeqBuilder>, Error> {
        Ok(VariantBuilder {
            variant,
            inner: self.serialize_seq(Some(len))?,
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<DictBuilder, Error> {
        Ok(DictBuilder {
            dict: Dict::with_capacity(len.unwrap_or(0).min(4096)),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<DictBuilder, Error> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantBuilder<DictBuilder>, Error> {
        Ok(VariantBuilder {
            variant,
            inner: self.serialize_map(Some(len))?,
        })
    }
}

pub(crate) struct SeqBuilder(Vec<Value>);

impl SeqBuilder {
    fn push<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.0.push(value.serialize(ValueSerializer)?.value);
        Ok(())
    }
}

/// `SerializeSeq`, `SerializeTuple` and `SerializeTupleStruct` all collect
/// items into an array.
macro_rules! seq_like {
    ($($trait:ident :: $method:ident),*) => {
        $(impl ser::$trait for SeqBuilder {
            type Ok = Out;
            type Error = Error;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
                self.push(value)
            }
            fn end(self) -> Result<Out, Error> {
                Ok(Value::Array(self.0).into())
            }
        })*
    };
}

seq_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

pub(crate) struct DictBuilder {
    dict: Dict,
    key: Option<String>,
}

impl DictBuilder {
    fn insert<T: ?Sized + Serialize>(&mut self, key: String, value: &T) -> Result<(), Error> {
        let value = field_value(value)?;
        self.dict.insert(key, value);
        Ok(())
    }
}

impl ser::SerializeMap for DictBuilder {
    type Ok = Out;
    type Error = Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        let key = match key.serialize(ValueSerializer)?.value {
            Value::String(s) => s,
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(Error::new(ErrorKind::Unrepresentable(format!(
                    "a map key that is {} (keys are strings, integers or booleans)",
                    other.kind_name()
                ))));
            }
        };
        self.key = Some(key);
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let key = self.key.take().ok_or_else(|| {
            Error::new(ErrorKind::Message(
                "a map value was given before its key".into(),
            ))
        })?;
        self.insert(key, value)
    }
    fn end(self) -> Result<Out, Error> {
        Ok(Value::Dict(self.dict).into())
    }
}

impl ser::SerializeStruct for DictBuilder {
    type Ok = Out;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.insert(key.to_owned(), value)
    }
    fn end(self) -> Result<Out, Error> {
        Ok(Value::Dict(self.dict).into())
    }
}

/// A tuple or struct variant: `{variant: content}`.
pub(crate) struct VariantBuilder<B> {
    variant: &'static str,
    inner: B,
}

impl<B> VariantBuilder<B> {
    fn wrap(variant: &'static str, content: Value) -> Out {
        let mut dict = Dict::new();
        dict.insert(variant.to_owned(), content);
        Value::Dict(dict).into()
    }
}

impl ser::SerializeTupleVariant for VariantBuilder<SeqBuilder> {
    type Ok = Out;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.inner.push(value)
    }
    fn end(self) -> Result<Out, Error> {
        Ok(Self::wrap(self.variant, Value::Array(self.inner.0)))
    }
}

impl ser::SerializeStructVariant for VariantBuilder<DictBuilder> {
    type Ok = Out;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.inner.insert(key.to_owned(), value)
    }
    fn end(self) -> Result<Out, Error> {
        Ok(Self::wrap(self.variant, Value::Dict(self.inner.dict)))
    }
}
