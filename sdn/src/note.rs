//! The `note.sdn` section of an SMF module: which generic instantiations a
//! module holds or may need, as six typed tables.
//!
//! On disk the section is an SDN document that starts with the line
//! `# Instantiation To/From Metadata` and ends with the line `# END_NOTE`.
//! [`Note::parse`] reads it straight into the row structs: in one pass
//! when it is laid out as the writer lays it out, otherwise through serde;
//! [`Note::to_sdn_string`] writes every table (empty ones as a bare
//! header) between those two lines. The loader calls
//! [`Note::record_jit_compiled`] after compiling an instantiation at run
//! time.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, ErrorKind};
use crate::value::{Dict, Header, Table, Value};

mod plain;

/// The first line of a written note.
pub const HEADER_LINE: &str = "# Instantiation To/From Metadata";
/// The last line of a note; readers of a section of unknown size scan for it.
pub const END_LINE: &str = "# END_NOTE";

/// How an instantiation was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Compiled ahead of time into the module's code.
    Compiled,
    /// Left for later: compiled when first needed.
    Deferred,
    /// Compiled at load or run time by the JIT.
    JitCompiled,
}

/// Why one instantiation depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepKind {
    /// The other is a type argument.
    TypeParam,
    /// The other is the type of a field.
    FieldType,
    /// The other is an inner (element) type.
    InnerType,
    /// A method of this one calls the other.
    MethodDep,
}

/// The type arguments of an instantiation, stored in one cell joined by
/// `,` (`i32,u8`). Splitting only happens at commas outside `<>`, `()`
/// and `[]`, so `Pair<i32,u8>,f64` is two arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TypeArgs(pub Vec<String>);

impl TypeArgs {
    /// Splits a stored cell into arguments (an empty cell is none).
    #[must_use]
    pub fn split(cell: &str) -> Self {
        if trim(cell).is_empty() {
            return Self(Vec::new());
        }
        let mut args = Vec::new();
        let mut depth = 0usize;
        let mut start = 0usize;
        for (i, b) in cell.bytes().enumerate() {
            match b {
                b'<' | b'(' | b'[' => depth = depth.saturating_add(1),
                b'>' | b')' | b']' => depth = depth.saturating_sub(1),
                b',' if depth == 0 => {
                    args.push(trim(cell.get(start..i).unwrap_or("")).to_owned());
                    start = i.saturating_add(1);
                }
                _ => {}
            }
        }
        args.push(trim(cell.get(start..).unwrap_or("")).to_owned());
        Self(args)
    }

    /// The stored form: arguments joined by `,`.
    ///
    /// # Errors
    /// An argument that would not split back out unchanged: empty, with
    /// spaces at either end, or with a comma outside brackets.
    pub fn join(&self) -> Result<String, Error> {
        let joined = self.0.join(",");
        if Self::split(&joined) == *self {
            Ok(joined)
        } else {
            Err(Error::new(ErrorKind::Unrepresentable(format!(
                "the type arguments {:?} (each must be non-empty, without spaces at the ends or commas outside brackets)",
                self.0
            ))))
        }
    }
}

/// `s` without whitespace at either end, as `str::trim` gives it; an
/// argument that starts and ends with a visible ASCII character (the usual
/// case) is returned as it is without the Unicode whitespace search.
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

impl fmt::Display for TypeArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl Serialize for TypeArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let joined = self.join().map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&joined)
    }
}

impl<'de> Deserialize<'de> for TypeArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Cell;
        impl serde::de::Visitor<'_> for Cell {
            type Value = TypeArgs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("type arguments joined by ','")
            }
            fn visit_str<E>(self, v: &str) -> Result<TypeArgs, E> {
                Ok(TypeArgs::split(v))
            }
        }
        deserializer.deserialize_str(Cell)
    }
}

/// A row of `instantiations`: an instantiation the module has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instantiation {
    /// Row id, unique in the table.
    pub id: u32,
    /// The generic template (`Vec`, `sum`).
    pub template: String,
    /// Its type arguments.
    pub type_args: TypeArgs,
    /// The symbol name of the instantiation (`Vec$i32`).
    pub mangled_name: String,
    /// Source file that asked for it.
    pub from_file: String,
    /// Location in that file (`12:5`).
    pub from_loc: String,
    /// Object that holds its code.
    pub to_obj: String,
    /// How it was produced.
    pub status: Status,
}

/// A row of `possible`: an instantiation that may be needed at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Possible {
    /// Row id, unique in the table.
    pub id: u32,
    /// The generic template.
    pub template: String,
    /// Its type arguments.
    pub type_args: TypeArgs,
    /// The symbol name it would have.
    pub mangled_name: String,
    /// What needs it.
    pub required_by: String,
    /// Whether it may be compiled lazily.
    pub can_defer: bool,
}

/// A row of `type_inferences`: a type the compiler inferred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeInference {
    /// Row id, unique in the table.
    pub id: u32,
    /// The type inferred.
    pub inferred_type: String,
    /// The expression it was inferred for.
    pub expr: String,
    /// The surrounding context.
    pub context: String,
    /// Source file.
    pub from_file: String,
    /// Location in that file.
    pub from_loc: String,
}

/// A row of `dependencies`: one instantiation needs another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// Id of the instantiation that depends.
    pub from_inst: u32,
    /// Id of the instantiation depended on.
    pub to_inst: u32,
    /// Why.
    pub dep_kind: DepKind,
}

/// A row of `circular_warnings`: a cycle that is allowed but suspicious.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircularWarning {
    /// Row id.
    pub id: u32,
    /// The cycle, as written by the compiler (`A->B->A`).
    pub cycle_path: String,
    /// How serious it is.
    pub severity: String,
}

/// A row of `circular_errors`: a cycle that cannot be instantiated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircularError {
    /// Row id.
    pub id: u32,
    /// The cycle.
    pub cycle_path: String,
    /// The compiler's error code (`E0420`).
    pub error_code: String,
}

/// The six tables of a `note.sdn` section. A table missing from the text
/// reads as empty; a table this schema does not know is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// Instantiations the module has.
    #[serde(default)]
    pub instantiations: Vec<Instantiation>,
    /// Instantiations it may need.
    #[serde(default)]
    pub possible: Vec<Possible>,
    /// Inferred types.
    #[serde(default)]
    pub type_inferences: Vec<TypeInference>,
    /// Dependencies between instantiations.
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    /// Tolerated cycles.
    #[serde(default)]
    pub circular_warnings: Vec<CircularWarning>,
    /// Fatal cycles.
    #[serde(default)]
    pub circular_errors: Vec<CircularError>,
}

/// Column names of each table, in the order they are written.
pub const INSTANTIATION_FIELDS: [&str; 8] = [
    "id",
    "template",
    "type_args",
    "mangled_name",
    "from_file",
    "from_loc",
    "to_obj",
    "status",
];
/// Columns of `possible`.
pub const POSSIBLE_FIELDS: [&str; 6] = [
    "id",
    "template",
    "type_args",
    "mangled_name",
    "required_by",
    "can_defer",
];
/// Columns of `type_inferences`.
pub const TYPE_INFERENCE_FIELDS: [&str; 6] = [
    "id",
    "inferred_type",
    "expr",
    "context",
    "from_file",
    "from_loc",
];
/// Columns of `dependencies`.
pub const DEPENDENCY_FIELDS: [&str; 3] = ["from_inst", "to_inst", "dep_kind"];
/// Columns of `circular_warnings`.
pub const CIRCULAR_WARNING_FIELDS: [&str; 3] = ["id", "cycle_path", "severity"];
/// Columns of `circular_errors`.
pub const CIRCULAR_ERROR_FIELDS: [&str; 3] = ["id", "cycle_path", "error_code"];

/// A named table of `rows`, with `fields` as its header even when empty.
fn table<T: Serialize>(fields: &[&str], rows: &[T]) -> Result<Value, Error> {
    let rows = rows
        .iter()
        .map(|row| match crate::to_value(row)? {
            Value::Dict(mut record) => fields
                .iter()
                .map(|f| {
                    record.swap_remove(*f).ok_or_else(|| {
                        Error::new(ErrorKind::Message(format!("a row has no field '{f}'")))
                    })
                })
                .collect(),
            other => Err(Error::new(ErrorKind::Message(format!(
                "a row serialized as {}, not a record",
                other.kind_name()
            )))),
        })
        .collect::<Result<Vec<Vec<Value>>, Error>>()?;
    Ok(Value::Table(Table {
        header: Header::Named(fields.iter().map(|f| (*f).to_owned()).collect()),
        rows,
    }))
}

impl Note {
    /// Reads a note. The header comment is optional on input; the
    /// `# END_NOTE` line, when present, ends the note and only blank lines
    /// may follow it.
    ///
    /// # Errors
    /// SDN syntax errors, unknown tables or columns, missing columns, and
    /// cells of the wrong type, each naming the table, row and column with
    /// the line and column in `text`; text after `# END_NOTE`.
    pub fn parse(text: &str) -> Result<Note, Error> {
        let body = match find_end_line(text) {
            Some((end, after)) => {
                let trailing = text.get(after..).unwrap_or("");
                if let Some(offset) = trailing.find(|c: char| !c.is_whitespace()) {
                    return Err(Error::at(
                        ErrorKind::Message(format!("text after the '{END_LINE}' line")),
                        text,
                        after.saturating_add(offset),
                    ));
                }
                text.get(..end).unwrap_or(text)
            }
            None => text,
        };
        // Notes as the writer lays them out are read directly; everything
        // else, errors included, goes through the general reader.
        if let Some(note) = plain::read(body) {
            return Ok(note);
        }
        crate::from_str(body)
    }

    /// Writes the note: the header line, all six tables (an empty table as
    /// its header alone), and the `# END_NOTE` line.
    ///
    /// # Errors
    /// Type arguments that would not read back unchanged (see
    /// [`TypeArgs::join`]).
    pub fn to_sdn_string(&self) -> Result<String, Error> {
        let mut doc = Dict::new();
        doc.insert(
            "instantiations".into(),
            table(&INSTANTIATION_FIELDS, &self.instantiations)?,
        );
        doc.insert("possible".into(), table(&POSSIBLE_FIELDS, &self.possible)?);
        doc.insert(
            "type_inferences".into(),
            table(&TYPE_INFERENCE_FIELDS, &self.type_inferences)?,
        );
        doc.insert(
            "dependencies".into(),
            table(&DEPENDENCY_FIELDS, &self.dependencies)?,
        );
        doc.insert(
            "circular_warnings".into(),
            table(&CIRCULAR_WARNING_FIELDS, &self.circular_warnings)?,
        );
        doc.insert(
            "circular_errors".into(),
            table(&CIRCULAR_ERROR_FIELDS, &self.circular_errors)?,
        );
        let body = crate::write_document(&doc)?;
        Ok(format!("{HEADER_LINE}\n{body}{END_LINE}\n"))
    }

    /// The instantiation with this mangled name.
    #[must_use]
    pub fn instantiation(&self, mangled_name: &str) -> Option<&Instantiation> {
        self.instantiations
            .iter()
            .find(|i| i.mangled_name == mangled_name)
    }

    /// The possible instantiation with this mangled name.
    #[must_use]
    pub fn possible(&self, mangled_name: &str) -> Option<&Possible> {
        self.possible
            .iter()
            .find(|p| p.mangled_name == mangled_name)
    }

    /// Records that the possible instantiation `mangled_name` was compiled
    /// by the JIT: its row leaves `possible` and joins `instantiations`
    /// with status `jit_compiled`, the next free id, `from_file` set to
    /// what required it (`required_by`), an empty `from_loc` (there is no
    /// source location) and `to_obj` as given. Dependencies keep their ids.
    ///
    /// # Errors
    /// No possible row has that name, an instantiation of that name already
    /// exists, or the ids are exhausted.
    pub fn record_jit_compiled(
        &mut self,
        mangled_name: &str,
        to_obj: &str,
    ) -> Result<&Instantiation, Error> {
        let fail = |msg: String| Error::new(ErrorKind::Message(msg));
        if self.instantiation(mangled_name).is_some() {
            return Err(fail(format!(
                "'{mangled_name}' is already in the instantiations table"
            )));
        }
        let index = self
            .possible
            .iter()
            .position(|p| p.mangled_name == mangled_name)
            .ok_or_else(|| fail(format!("'{mangled_name}' is not in the possible table")))?;
        let id = match self.instantiations.iter().map(|i| i.id).max() {
            None => 1,
            Some(max) => max
                .checked_add(1)
                .ok_or_else(|| fail("instantiation ids are exhausted".to_owned()))?,
        };
        let row = self.possible.remove(index);
        self.instantiations.push(Instantiation {
            id,
            template: row.template,
            type_args: row.type_args,
            mangled_name: row.mangled_name,
            from_file: row.required_by,
            from_loc: String::new(),
            to_obj: to_obj.to_owned(),
            status: Status::JitCompiled,
        });
        self.instantiations
            .last()
            .ok_or_else(|| fail("the instantiation was not recorded".to_owned()))
    }
}

/// The byte range of the first `# END_NOTE` line (trailing spaces allowed):
/// where it starts and where the text after it starts.
fn find_end_line(text: &str) -> Option<(usize, usize)> {
    let mut from = 0usize;
    while let Some(found) = text
        .get(from..)
        .and_then(|t| crate::scan::find_str(END_LINE.as_bytes(), t.as_bytes()))
    {
        let start = from.saturating_add(found);
        let after = start.saturating_add(END_LINE.len());
        from = after;
        let at_line_start =
            start == 0 || text.as_bytes().get(start.wrapping_sub(1)) == Some(&b'\n');
        let rest = text.get(after..).unwrap_or("");
        let line_end = rest.find('\n').map_or(rest.len(), |n| n.saturating_add(1));
        let tail = rest.get(..line_end).unwrap_or("");
        if at_line_start && tail.trim().is_empty() {
            return Some((start, after.saturating_add(line_end)));
        }
    }
    None
}
