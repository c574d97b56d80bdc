//! SDN 1.0 (Simple Data Notation): a lossless parser and serializer, serde
//! support, and the typed schema of the `note.sdn` metadata section that
//! SMF modules carry.
//!
//! Text flows through three layers. The `parse` module reads lines and
//! indentation, and the `syntax` module (written with nom) the syntax inside
//! each line, into a tree of nodes that borrow the input; a table node only
//! records where its rows start, and its cells are read one by one when the
//! table is used. [`parse`] builds [`Value`]s from that tree, while
//! [`from_str`] hands it to serde without building values, so typed rows
//! read fast. Going the other
//! way, [`to_string`] serializes into a [`Value`] and [`write_document`]
//! writes it, quoting exactly the strings that would not read back
//! unchanged (the `scalar` module decides, for both directions). The
//! [`note`] module holds the six `note.sdn` tables as typed rows. Every
//! bound on untrusted input is in [`limits`]; every failure is an
//! [`Error`] with a line and column. The format, and how this crate
//! resolves the places where its specification is loose, is described in
//! `doc/formats/sdn.md`.
//!
//! ```
//! # fn main() -> Result<(), sdn::Error> {
//! let text = "server:\n    host: 0.0.0.0\n    port: 8080\nusers |id, name|\n    1, Alice Chen\n";
//! let doc = sdn::parse(text)?;
//! assert_eq!(doc["server"].get("host").and_then(sdn::Value::as_str), Some("0.0.0.0"));
//!
//! #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
//! struct User { id: u32, name: String }
//! #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
//! struct Users { users: Vec<User> }
//! let users: Users = sdn::from_str("users |id, name|\n    1, Alice Chen\n")?;
//! assert_eq!(users.users[0].name, "Alice Chen");
//! assert_eq!(sdn::to_string(&users)?, "users |id, name|\n    1, Alice Chen\n");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod de;
mod error;
pub mod limits;
pub mod note;
mod parse;
pub mod path;
mod scalar;
mod scan;
mod ser;
mod syntax;
mod value;
mod value_serde;
mod write;

pub use de::from_str;
pub use error::{Error, ErrorKind, Location};
pub use ser::to_value;
pub use value::{Dict, Header, Table, Value};
pub use write::write_document;

/// Parses an SDN document into its root dict.
///
/// # Errors
/// The first syntax error, an integer that does not fit in `i64`, a
/// duplicate key or column, a row of the wrong width, or a typed-table
/// cell that does not match its type; each with line and column.
pub fn parse(text: &str) -> Result<Dict, Error> {
    let root = parse::document(text)?;
    let builder = value::Builder { text };
    match builder.value(&root)? {
        Value::Dict(dict) => Ok(dict),
        _ => Err(Error::new(ErrorKind::Expected("a document"))),
    }
}

/// Serializes `value` as an SDN document.
///
/// The top level must serialize as a struct or a map (a document is a
/// dict). A sequence of records with the same fields stored under a key is
/// written as a named table; a [`Value`] is written exactly as it is, so
/// `parse(&to_string(&v)?)` gives back `v`.
///
/// # Errors
/// A top level that is not a struct or map, or a value SDN cannot express
/// (see [`write_document`]).
pub fn to_string<T: ?Sized + serde::Serialize>(value: &T) -> Result<String, Error> {
    match to_value(value)? {
        Value::Dict(dict) => write_document(&dict),
        other => Err(Error::new(ErrorKind::Unrepresentable(format!(
            "{} at the top level (a document is a dict: serialize a struct or a map)",
            other.kind_name()
        )))),
    }
}
