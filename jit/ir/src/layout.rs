//! C layout of concrete types: sizes, alignments and struct field offsets.
//!
//! Scalars are naturally aligned (`bool` is one byte); pointers take the
//! size and alignment of the library's [`Target`](crate::target::Target)
//! (eight bytes on x86-64, four on wasm32). A struct places each field at the next offset that is a
//! multiple of the field's alignment, takes the largest field alignment as
//! its own (1 when it has no fields), and rounds its size up to a multiple
//! of that alignment, as C compilers do on System V.

use crate::error::{Error, ErrorKind};
use crate::ir::{Library, StructType, Type};
use crate::limits;

/// Size and alignment of a type, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Size in bytes (a multiple of `align`).
    pub size: u64,
    /// Alignment in bytes (a power of two).
    pub align: u64,
}

/// Layout of a concrete struct type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructLayout {
    /// Size and alignment of the whole struct.
    pub layout: Layout,
    /// Offset and concrete type of each field, in declaration order.
    pub fields: Vec<(u64, Type)>,
}

/// Layout of a concrete type.
///
/// # Errors
///
/// [`ErrorKind::NotConcrete`] for a type parameter, [`ErrorKind::Unknown`]
/// for an undeclared struct, [`ErrorKind::RecursiveStruct`] when a struct
/// contains itself by value, [`ErrorKind::Limit`] for oversized structs.
pub fn layout_of(lib: &Library, ty: &Type) -> Result<Layout, Error> {
    layout_in(lib, ty, None)
}

/// Layout of a concrete struct type with its field offsets.
///
/// # Errors
///
/// As [`layout_of`], and [`ErrorKind::TypeArgCount`] when the argument count
/// differs from the struct's parameters.
pub fn struct_layout(lib: &Library, s: &StructType) -> Result<StructLayout, Error> {
    struct_in(lib, s, None)
}

/// The structs whose layout is being computed, innermost first: a list
/// on the stack, so the common case allocates nothing for it.
struct Chain<'p> {
    this: &'p StructType,
    outer: Option<&'p Chain<'p>>,
}

impl Chain<'_> {
    fn iter(&self) -> impl Iterator<Item = &StructType> {
        std::iter::successors(Some(self), |c| c.outer).map(|c| c.this)
    }
}

fn layout_in(lib: &Library, ty: &Type, chain: Option<&Chain<'_>>) -> Result<Layout, Error> {
    if ty.is_pointer() {
        let target = lib.target();
        return Ok(Layout {
            size: target.pointer_size,
            align: target.pointer_align,
        });
    }
    if let Some(size) = ty.scalar_size() {
        return Ok(Layout { size, align: size });
    }
    match ty {
        Type::Struct(s) => Ok(struct_in(lib, s, chain)?.layout),
        other => Err(Error::new(ErrorKind::NotConcrete(other.to_string()))),
    }
}

fn struct_in(
    lib: &Library,
    s: &StructType,
    outer: Option<&Chain<'_>>,
) -> Result<StructLayout, Error> {
    let depth = outer.map_or(0, |c| c.iter().count());
    let repeated = outer.is_some_and(|c| c.iter().any(|t| t == s));
    if repeated || depth >= limits::MAX_INSTANTIATION_DEPTH {
        let mut chain: Vec<String> = outer
            .into_iter()
            .flat_map(Chain::iter)
            .map(|t| Type::Struct(Box::new(t.clone())).to_string())
            .collect();
        chain.reverse();
        chain.push(Type::Struct(Box::new(s.clone())).to_string());
        return Err(Error::new(ErrorKind::RecursiveStruct { chain }));
    }
    let def = lib.struct_def(&s.name).ok_or_else(|| {
        Error::new(ErrorKind::Unknown {
            what: "struct",
            name: s.name.clone(),
        })
    })?;
    if def.type_params.len() != s.args.len() {
        return Err(Error::new(ErrorKind::TypeArgCount {
            name: s.name.clone(),
            expected: def.type_params.len(),
            found: s.args.len(),
        }));
    }
    let here = Chain { this: s, outer };
    let mut offset = 0u64;
    let mut align = 1u64;
    let mut fields = Vec::with_capacity(def.fields.len());
    for (_, field) in &def.fields {
        let ty = field.substitute(&s.args);
        let l = layout_in(lib, &ty, Some(&here))?;
        offset = round_up(offset, l.align)?;
        fields.push((offset, ty));
        offset = offset.checked_add(l.size).ok_or_else(too_big)?;
        align = align.max(l.align);
        if offset > limits::MAX_STRUCT_SIZE {
            return Err(too_big());
        }
    }
    let size = round_up(offset, align)?;
    Ok(StructLayout {
        layout: Layout { size, align },
        fields,
    })
}

#[cold]
fn too_big() -> Error {
    Error::new(ErrorKind::Limit {
        what: "struct size",
        found: u64::MAX,
        limit: limits::MAX_STRUCT_SIZE,
    })
}

fn round_up(v: u64, align: u64) -> Result<u64, Error> {
    let mask = align.checked_sub(1).ok_or_else(too_big)?;
    Ok(v.checked_add(mask).ok_or_else(too_big)? & !mask)
}
