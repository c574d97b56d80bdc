//! Reads the binary form, trusting nothing: every count is checked against
//! its limit and against the bytes that remain before anything is
//! allocated, every read is bounds-checked, nesting is bounded, and every
//! failure is a typed error carrying the byte offset.

use super::{BINOPS, CMPOPS, CONSTRAINTS, MAGIC, VERSION, kind, misc_tag, op_tag, type_tag};
use crate::error::{Error, ErrorKind};
use crate::ir::ItemName;
use crate::ir::{
    Block, BlockCall, BlockId, Callee, Declaration, Function, Inst, IntType, Item, Library,
    Linkage, Literal, MemoryDecl, Op, Reg, Signature, StructDef, StructType, TableDecl,
    TemplateName, Terminator, Type, TypeParam, UnOp,
};
use crate::limits;

/// A decoded library with the offset each item was found at.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedLibrary {
    /// The items, indexed by name.
    pub library: Library,
    /// Offset of each entry from the start of the section, in item order
    /// (what SMF symbols record as `template_offset`).
    pub offsets: Vec<usize>,
}

impl DecodedLibrary {
    /// The item whose entry starts at `offset` (an SMF symbol's
    /// `template_offset`), if an entry starts exactly there.
    pub fn item_at(&self, offset: usize) -> Option<&Item> {
        let k = self.offsets.binary_search(&offset).ok()?;
        self.library.items().get(k)
    }
}

/// Decodes a TemplateCode section payload (from `GTPL` to its end).
///
/// # Errors
///
/// [`ErrorKind::BadMagic`], [`ErrorKind::UnsupportedVersion`],
/// [`ErrorKind::Truncated`], [`ErrorKind::BadTag`],
/// [`ErrorKind::VarintOverflow`], [`ErrorKind::BadName`],
/// [`ErrorKind::Limit`], [`ErrorKind::EntryLength`],
/// [`ErrorKind::TrailingBytes`] and [`ErrorKind::DuplicateItem`], each with
/// the offset where it was detected. The result is not verified: run
/// [`crate::verify::verify_library`] before use.
pub fn decode_library(bytes: &[u8]) -> Result<DecodedLibrary, Error> {
    decode_at(bytes)
}

/// [`decode_library`] for a section that starts at `original_offset` of its
/// file: error offsets count from the start of the file, so they can be
/// shown as they are (an error found at no particular byte is placed at
/// the section's start). The library's item offsets stay relative to the
/// section, as SMF symbols' `template_offset`s are.
///
/// # Errors
///
/// As [`decode_library`], located in the file.
pub fn decode_library_at(bytes: &[u8], original_offset: u64) -> Result<DecodedLibrary, Error> {
    decode_at(bytes).map_err(|e| e.in_file_at(original_offset))
}

fn decode_at(bytes: &[u8]) -> Result<DecodedLibrary, Error> {
    let (count, mut r) = header(bytes)?;
    let mut items = Vec::with_capacity(count);
    let mut offsets = Vec::with_capacity(count);
    for _ in 0..count {
        let frame = frame(&mut r)?;
        offsets.push(frame.start);
        items.push(decode_entry(bytes, &frame)?);
    }
    trailer(&r)?;
    let library = Library::new(items).map_err(|e| e.or_at(crate::Location::Offset(r.pos)))?;
    Ok(DecodedLibrary { library, offsets })
}

/// Where one entry of a section lies: its kind byte, the offset of the
/// entry and the byte range of its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The entry kind (`kind::FUNCTION`, …), not yet checked.
    pub kind: u8,
    /// Offset of the entry (its kind byte) in the section.
    pub start: usize,
    /// Offset of the payload.
    pub body: usize,
    /// Offset one past the payload.
    pub end: usize,
}

/// Reads the magic, version and entry count; the reader stands at the
/// first entry.
fn header(bytes: &[u8]) -> Result<(usize, Reader<'_>), Error> {
    let mut r = Reader { bytes, pos: 0 };
    let magic = r.array::<4>("the magic")?;
    if magic != MAGIC {
        return Err(Error::at_offset(ErrorKind::BadMagic(magic), 0));
    }
    let version = u16::from_le_bytes(r.array::<2>("the version")?);
    if version != VERSION {
        return Err(Error::at_offset(ErrorKind::UnsupportedVersion(version), 4));
    }
    let count_at = r.pos;
    let count = u32::from_le_bytes(r.array::<4>("the entry count")?);
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    // Every entry takes at least two bytes (kind and length).
    r.check_count("entry count", count, limits::MAX_ITEMS, 2)
        .map_err(|e| e.or_at(crate::Location::Offset(count_at)))?;
    Ok((count, r))
}

/// Reads one entry's kind and length and moves past its payload.
fn frame(r: &mut Reader<'_>) -> Result<Frame, Error> {
    let start = r.pos;
    let kind = r.byte("an entry kind")?;
    let len = r.count("an entry length")?;
    let body = r.pos;
    let end = body
        .checked_add(len)
        .filter(|&e| e <= r.bytes.len())
        .ok_or_else(|| Error::at_offset(ErrorKind::Truncated("an entry"), body))?;
    r.pos = end;
    Ok(Frame {
        kind,
        start,
        body,
        end,
    })
}

/// Fails unless the reader stands at the end of the section.
fn trailer(r: &Reader<'_>) -> Result<(), Error> {
    if r.pos != r.bytes.len() {
        return Err(Error::at_offset(
            ErrorKind::TrailingBytes(r.bytes.len() - r.pos),
            r.pos,
        ));
    }
    Ok(())
}

/// A reader over the payload of the entry `frame` of the section `bytes`.
fn payload<'a>(bytes: &'a [u8], frame: &Frame) -> Reader<'a> {
    Reader {
        bytes: bytes.get(..frame.end).unwrap_or(bytes),
        pos: frame.body,
    }
}

/// The error for an entry whose kind byte has no meaning.
#[cold]
fn bad_kind(frame: &Frame) -> Error {
    Error::at_offset(
        ErrorKind::BadTag {
            what: "entry kind",
            tag: frame.kind,
        },
        frame.start,
    )
}

/// Decodes the payload of the entry `frame` of the section `bytes`.
pub(crate) fn decode_entry(bytes: &[u8], frame: &Frame) -> Result<Item, Error> {
    let mut body = payload(bytes, frame);
    let item = match frame.kind {
        kind::FUNCTION => Item::Function(body.function()?),
        kind::STRUCT => Item::Struct(body.struct_def()?),
        kind::IMPORT => Item::Import(body.declaration()?),
        kind::EXTERN => Item::Extern(body.declaration()?),
        kind::MEMORY => {
            let name = body.name("a memory name")?;
            let linkage = body.linkage()?;
            Item::Memory(MemoryDecl { name, linkage })
        }
        kind::TABLE => {
            let name = body.name("a table name")?;
            let sig = body.sig(1)?;
            let linkage = body.linkage()?;
            Item::Table(TableDecl { name, sig, linkage })
        }
        _ => return Err(bad_kind(frame)),
    };
    if body.pos != frame.end {
        let used = body.pos.saturating_sub(frame.body);
        return Err(Error::at_offset(
            ErrorKind::EntryLength {
                declared: (frame.end - frame.body) as u64,
                used: used as u64,
            },
            frame.start,
        ));
    }
    Ok(item)
}

/// The name an entry declares, read without decoding the rest of it: a
/// function's `owner::name` or name, a struct's or a declaration's name.
fn entry_name(bytes: &[u8], frame: &Frame) -> Result<ItemName, Error> {
    let mut body = payload(bytes, frame);
    Ok(match frame.kind {
        kind::FUNCTION => ItemName::Function(body.template_name()?),
        kind::STRUCT => ItemName::Struct(body.name("a struct name")?),
        kind::IMPORT => ItemName::Import(body.declared_name()?),
        kind::EXTERN => ItemName::Extern(body.declared_name()?),
        kind::MEMORY => ItemName::Shared(body.name("a memory name")?),
        kind::TABLE => ItemName::Shared(body.name("a table name")?),
        _ => return Err(bad_kind(frame)),
    })
}

/// A TemplateCode section as a library whose items are decoded one at a
/// time, the first time each is looked up, and verified the first time a
/// template is instantiated (`Library::lazy`): a module offering a
/// thousand templates costs, until they are used, one pass over the
/// entries' framing and names. `original_offset` is where the section
/// starts in its file, for the offsets of errors.
///
/// # Errors
///
/// What the framing can show: [`ErrorKind::BadMagic`],
/// [`ErrorKind::UnsupportedVersion`], [`ErrorKind::Truncated`],
/// [`ErrorKind::BadTag`] for an entry kind, [`ErrorKind::BadName`],
/// [`ErrorKind::Limit`], [`ErrorKind::TrailingBytes`] and
/// [`ErrorKind::DuplicateItem`], at file offsets. An entry whose payload
/// is malformed is reported when it is first used.
pub fn decode_library_lazily(
    bytes: std::sync::Arc<[u8]>,
    original_offset: u64,
) -> Result<Library, Error> {
    scan(&bytes)
        .and_then(|(frames, names)| Library::lazy(bytes, original_offset, frames, names))
        .map_err(|e| e.in_file_at(original_offset))
}

/// Every entry's frame and name.
fn scan(bytes: &[u8]) -> Result<(Vec<Frame>, Vec<ItemName>), Error> {
    let (count, mut r) = header(bytes)?;
    let mut frames = Vec::with_capacity(count);
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        let frame = frame(&mut r)?;
        names.push(entry_name(bytes, &frame)?);
        frames.push(frame);
    }
    trailer(&r)?;
    Ok((frames, names))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// Registers numbered while a function is decoded.
struct Numbering {
    next: u32,
}

impl Numbering {
    fn take(&mut self, at: usize) -> Result<Reg, Error> {
        let r = Reg(self.next);
        if usize::try_from(self.next).unwrap_or(usize::MAX) >= limits::MAX_REGS {
            return Err(Error::at_offset(
                ErrorKind::Limit {
                    what: "register count",
                    found: u64::from(self.next) + 1,
                    limit: limits::MAX_REGS as u64,
                },
                at,
            ));
        }
        self.next += 1;
        Ok(r)
    }
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    #[cold]
    fn err(&self, kind: ErrorKind) -> Error {
        Error::at_offset(kind, self.pos)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, Error> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.err(ErrorKind::Truncated(what)))?;
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let end = self
            .pos
            .checked_add(N)
            .ok_or_else(|| self.err(ErrorKind::Truncated(what)))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| self.err(ErrorKind::Truncated(what)))?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.pos = end;
        Ok(out)
    }

    /// An unsigned LEB128 value of at most `bits` bits.
    fn uleb(&mut self, what: &'static str, bits: u32) -> Result<u128, Error> {
        let start = self.pos;
        let overflow = || Error::at_offset(ErrorKind::VarintOverflow(what), start);
        let mut v: u128 = 0;
        for k in 0..bits.div_ceil(7) {
            let b = self.byte(what)?;
            let low = u128::from(b & 0x7f);
            let shift = 7 * k;
            if (low << shift) >> shift != low {
                return Err(overflow());
            }
            v |= low << shift;
            if b & 0x80 == 0 {
                if bits < 128 && v >> bits != 0 {
                    return Err(overflow());
                }
                return Ok(v);
            }
        }
        Err(overflow())
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::try_from(self.uleb(what, 32)?).unwrap_or(u32::MAX))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        Ok(u64::try_from(self.uleb(what, 64)?).unwrap_or(u64::MAX))
    }

    fn count(&mut self, what: &'static str) -> Result<usize, Error> {
        Ok(usize::try_from(self.u32(what)?).unwrap_or(usize::MAX))
    }

    /// Checks a count against its limit and against the bytes left, given
    /// the smallest encoding of one element.
    fn check_count(
        &self,
        what: &'static str,
        n: usize,
        limit: usize,
        min_size: usize,
    ) -> Result<(), Error> {
        crate::error::check_limit(what, n, limit)
            .map_err(|e| e.or_at(crate::Location::Offset(self.pos)))?;
        if n.saturating_mul(min_size) > self.remaining() {
            return Err(self.err(ErrorKind::Truncated(what)));
        }
        Ok(())
    }

    fn list_len(
        &mut self,
        what: &'static str,
        limit: usize,
        min_size: usize,
    ) -> Result<usize, Error> {
        let n = self.count(what)?;
        self.check_count(what, n, limit, min_size)?;
        Ok(n)
    }

    fn sleb(&mut self, what: &'static str) -> Result<i128, Error> {
        let z = self.uleb(what, 128)?;
        Ok(((z >> 1) as i128) ^ -((z & 1) as i128))
    }

    fn str(&mut self, what: &'static str) -> Result<String, Error> {
        let start = self.pos;
        let n = self.list_len(what, limits::MAX_NAME_LEN, 1)?;
        let end = self.pos + n;
        let raw = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| self.err(ErrorKind::Truncated(what)))?;
        let s = std::str::from_utf8(raw).map_err(|_| {
            Error::at_offset(ErrorKind::BadName(format!("{what} is not UTF-8")), start)
        })?;
        self.pos = end;
        Ok(s.to_owned())
    }

    fn name(&mut self, what: &'static str) -> Result<String, Error> {
        let start = self.pos;
        let s = self.str(what)?;
        if !crate::mangle::is_ident(&s) {
            return Err(Error::at_offset(
                ErrorKind::BadName(format!("{what} `{s}` is not an identifier")),
                start,
            ));
        }
        Ok(s)
    }

    fn ty(&mut self, depth: usize) -> Result<Type, Error> {
        if depth > limits::MAX_TYPE_DEPTH {
            return Err(self.err(ErrorKind::Limit {
                what: "type nesting depth",
                found: depth as u64,
                limit: limits::MAX_TYPE_DEPTH as u64,
            }));
        }
        let at = self.pos;
        let tag = self.byte("a type")?;
        Ok(match tag {
            type_tag::I8 => Type::Int(IntType::I8),
            type_tag::I16 => Type::Int(IntType::I16),
            type_tag::I32 => Type::Int(IntType::I32),
            type_tag::I64 => Type::Int(IntType::I64),
            type_tag::U8 => Type::Int(IntType::U8),
            type_tag::U16 => Type::Int(IntType::U16),
            type_tag::U32 => Type::Int(IntType::U32),
            type_tag::U64 => Type::Int(IntType::U64),
            type_tag::F32 => Type::F32,
            type_tag::F64 => Type::F64,
            type_tag::BOOL => Type::Bool,
            type_tag::RAWPTR => Type::RawPtr,
            type_tag::PTR => self.ty(depth + 1)?.ptr_to(),
            type_tag::FN => Type::Fn(Box::new(self.sig(depth + 1)?)),
            type_tag::PARAM => {
                let i = self.u32("a type parameter index")?;
                if usize::try_from(i).unwrap_or(usize::MAX) >= limits::MAX_TYPE_PARAMS {
                    return Err(Error::at_offset(
                        ErrorKind::Limit {
                            what: "type parameter index",
                            found: u64::from(i),
                            limit: limits::MAX_TYPE_PARAMS as u64,
                        },
                        at,
                    ));
                }
                Type::Param(i)
            }
            type_tag::STRUCT => Type::Struct(Box::new(self.struct_type(depth + 1)?)),
            tag => {
                return Err(Error::at_offset(
                    ErrorKind::BadTag { what: "type", tag },
                    at,
                ));
            }
        })
    }

    fn struct_type(&mut self, depth: usize) -> Result<StructType, Error> {
        let name = self.name("a struct name")?;
        let args = self.types(depth, limits::MAX_TYPE_PARAMS)?;
        Ok(StructType { name, args })
    }

    fn types(&mut self, depth: usize, limit: usize) -> Result<Vec<Type>, Error> {
        let n = self.list_len("a type list", limit, 1)?;
        (0..n).map(|_| self.ty(depth)).collect()
    }

    fn sig(&mut self, depth: usize) -> Result<Signature, Error> {
        let params = self.types(depth, limits::MAX_OPERANDS)?;
        let at = self.pos;
        let ret = match self.byte("a result flag")? {
            0 => None,
            1 => Some(self.ty(depth)?),
            tag => {
                return Err(Error::at_offset(
                    ErrorKind::BadTag {
                        what: "result flag",
                        tag,
                    },
                    at,
                ));
            }
        };
        Ok(Signature { params, ret })
    }

    fn type_params(&mut self) -> Result<Vec<TypeParam>, Error> {
        let n = self.list_len("a type parameter list", limits::MAX_TYPE_PARAMS, 2)?;
        (0..n)
            .map(|_| {
                let name = self.name("a type parameter name")?;
                let at = self.pos;
                let c = self.byte("a constraint")?;
                let constraint = *CONSTRAINTS.get(usize::from(c)).ok_or_else(|| {
                    Error::at_offset(
                        ErrorKind::BadTag {
                            what: "constraint",
                            tag: c,
                        },
                        at,
                    )
                })?;
                Ok(TypeParam { name, constraint })
            })
            .collect()
    }

    fn reg(&mut self) -> Result<Reg, Error> {
        Ok(Reg(self.u32("a register")?))
    }

    fn opt_reg(&mut self) -> Result<Option<Reg>, Error> {
        let v = self.u32("a register")?;
        Ok(v.checked_sub(1).map(Reg))
    }

    fn regs(&mut self) -> Result<Vec<Reg>, Error> {
        let n = self.list_len("an argument list", limits::MAX_OPERANDS, 1)?;
        (0..n).map(|_| self.reg()).collect()
    }

    fn literal(&mut self) -> Result<Literal, Error> {
        let at = self.pos;
        Ok(match self.byte("a literal")? {
            misc_tag::LIT_INT => {
                let v = self.sleb("an integer literal")?;
                if v < i128::from(i64::MIN) || v > i128::from(u64::MAX) {
                    return Err(Error::at_offset(
                        ErrorKind::VarintOverflow("an integer literal"),
                        at,
                    ));
                }
                Literal::Int(v)
            }
            misc_tag::LIT_FLOAT => {
                Literal::Float(u64::from_le_bytes(self.array::<8>("a float literal")?))
            }
            misc_tag::LIT_FALSE => Literal::Bool(false),
            misc_tag::LIT_TRUE => Literal::Bool(true),
            misc_tag::LIT_NULL => Literal::Null,
            tag => {
                return Err(Error::at_offset(
                    ErrorKind::BadTag {
                        what: "literal",
                        tag,
                    },
                    at,
                ));
            }
        })
    }

    fn callee(&mut self) -> Result<Callee, Error> {
        let at = self.pos;
        Ok(match self.byte("a callee")? {
            misc_tag::CALLEE_TEMPLATE => {
                let owner = self.str("a method owner")?;
                let name = self.name("a template name")?;
                let type_args = self.types(1, limits::MAX_TYPE_PARAMS)?;
                let owner = if owner.is_empty() { None } else { Some(owner) };
                Callee::Template {
                    name: TemplateName { owner, name },
                    type_args,
                }
            }
            misc_tag::CALLEE_SYMBOL => Callee::Symbol(self.str("a symbol")?),
            misc_tag::CALLEE_IMPORT => Callee::Import(self.name("an import name")?),
            tag => {
                return Err(Error::at_offset(
                    ErrorKind::BadTag {
                        what: "callee",
                        tag,
                    },
                    at,
                ));
            }
        })
    }

    /// An operation, read family by family after its tag.
    fn op(&mut self) -> Result<Op, Error> {
        let at = self.pos;
        let tag = self.byte("an instruction")?;
        for family in [
            Self::value_op,
            Self::memory_op,
            Self::call_op,
            Self::shared_op,
        ] {
            if let Some(op) = family(self, tag)? {
                return Ok(op);
            }
        }
        Err(Error::at_offset(
            ErrorKind::BadTag {
                what: "instruction",
                tag,
            },
            at,
        ))
    }

    /// The fields of an operation that computes a value without memory or
    /// calls (constants, unary and binary operations, comparisons,
    /// conversions and selects); `None` for another family's tag.
    fn value_op(&mut self, tag: u8) -> Result<Option<Op>, Error> {
        Ok(Some(match tag {
            op_tag::CONST => {
                let ty = self.ty(1)?;
                Op::Const {
                    ty,
                    value: self.literal()?,
                }
            }
            op_tag::NEG | op_tag::NOT => {
                let op = if tag == op_tag::NEG {
                    UnOp::Neg
                } else {
                    UnOp::Not
                };
                let ty = self.ty(1)?;
                Op::Unary {
                    op,
                    ty,
                    arg: self.reg()?,
                }
            }
            t if (op_tag::BINARY..op_tag::BINARY + BINOPS.len() as u8).contains(&t) => {
                let op = BINOPS[usize::from(t - op_tag::BINARY)];
                let ty = self.ty(1)?;
                let lhs = self.reg()?;
                Op::Binary {
                    op,
                    ty,
                    lhs,
                    rhs: self.reg()?,
                }
            }
            t if (op_tag::CMP..op_tag::CMP + CMPOPS.len() as u8).contains(&t) => {
                let op = CMPOPS[usize::from(t - op_tag::CMP)];
                let ty = self.ty(1)?;
                let lhs = self.reg()?;
                Op::Cmp {
                    op,
                    ty,
                    lhs,
                    rhs: self.reg()?,
                }
            }
            op_tag::CAST | op_tag::BITCAST => {
                let from = self.ty(1)?;
                let to = self.ty(1)?;
                let arg = self.reg()?;
                if tag == op_tag::CAST {
                    Op::Cast { from, to, arg }
                } else {
                    Op::Bitcast { from, to, arg }
                }
            }
            op_tag::SELECT => {
                let ty = self.ty(1)?;
                let cond = self.reg()?;
                let if_true = self.reg()?;
                Op::Select {
                    ty,
                    cond,
                    if_true,
                    if_false: self.reg()?,
                }
            }
            _ => return Ok(None),
        }))
    }

    /// The fields of an operation on memory or its layout (loads, stores,
    /// address arithmetic, sizes and alignments); `None` for another
    /// family's tag.
    fn memory_op(&mut self, tag: u8) -> Result<Option<Op>, Error> {
        Ok(Some(match tag {
            op_tag::LOAD => {
                let ty = self.ty(1)?;
                let addr = self.reg()?;
                Op::Load {
                    ty,
                    addr,
                    index: self.opt_reg()?,
                }
            }
            op_tag::STORE => {
                let ty = self.ty(1)?;
                let addr = self.reg()?;
                let index = self.opt_reg()?;
                Op::Store {
                    ty,
                    addr,
                    index,
                    value: self.reg()?,
                }
            }
            op_tag::ELEM_ADDR => {
                let elem = self.ty(1)?;
                let base = self.reg()?;
                Op::ElemAddr {
                    elem,
                    base,
                    index: self.reg()?,
                }
            }
            op_tag::FIELD_ADDR => {
                let strukt = self.struct_type(2)?;
                let field = self.u32("a field index")?;
                Op::FieldAddr {
                    strukt,
                    field,
                    base: self.reg()?,
                }
            }
            op_tag::ADDR => {
                let ty = self.ty(1)?;
                let base = self.reg()?;
                let index = self.opt_reg()?;
                let scale = self.u64("a scale")?;
                let disp_at = self.pos;
                let disp = i64::try_from(self.sleb("a displacement")?).map_err(|_| {
                    Error::at_offset(ErrorKind::VarintOverflow("a displacement"), disp_at)
                })?;
                Op::Addr {
                    ty,
                    base,
                    index,
                    scale,
                    disp,
                }
            }
            op_tag::SIZE_OF => Op::SizeOf { ty: self.ty(1)? },
            op_tag::ALIGN_OF => Op::AlignOf { ty: self.ty(1)? },
            _ => return Ok(None),
        }))
    }

    /// The fields of a call or a function address; `None` for another
    /// family's tag.
    fn call_op(&mut self, tag: u8) -> Result<Option<Op>, Error> {
        Ok(Some(match tag {
            op_tag::CALL => {
                let callee = self.callee()?;
                let sig = self.sig(1)?;
                Op::Call {
                    callee,
                    sig,
                    args: self.regs()?,
                }
            }
            op_tag::CALL_INDIRECT => {
                let sig = self.sig(1)?;
                let target = self.reg()?;
                Op::CallIndirect {
                    sig,
                    target,
                    args: self.regs()?,
                }
            }
            op_tag::FUNC_ADDR => {
                let callee = self.callee()?;
                Op::FuncAddr {
                    callee,
                    sig: self.sig(1)?,
                }
            }
            _ => return Ok(None),
        }))
    }

    /// The fields of an operation on a shared memory or table; `None`
    /// for another family's tag.
    fn shared_op(&mut self, tag: u8) -> Result<Option<Op>, Error> {
        let what = "a memory or table name";
        Ok(Some(match tag {
            op_tag::MEM_LOAD => {
                let ty = self.ty(1)?;
                let memory = self.name(what)?;
                Op::MemLoad {
                    ty,
                    memory,
                    offset: self.reg()?,
                }
            }
            op_tag::MEM_STORE => {
                let ty = self.ty(1)?;
                let memory = self.name(what)?;
                let offset = self.reg()?;
                Op::MemStore {
                    ty,
                    memory,
                    offset,
                    value: self.reg()?,
                }
            }
            op_tag::MEM_SIZE => Op::MemSize {
                memory: self.name(what)?,
            },
            op_tag::MEM_GROW => {
                let memory = self.name(what)?;
                Op::MemGrow {
                    memory,
                    delta: self.reg()?,
                }
            }
            op_tag::TABLE_GET => {
                let table = self.name(what)?;
                Op::TableGet {
                    table,
                    index: self.reg()?,
                }
            }
            op_tag::TABLE_SET => {
                let table = self.name(what)?;
                let index = self.reg()?;
                Op::TableSet {
                    table,
                    index,
                    value: self.reg()?,
                }
            }
            op_tag::TABLE_SIZE => Op::TableSize {
                table: self.name(what)?,
            },
            op_tag::TABLE_GROW => {
                let table = self.name(what)?;
                Op::TableGrow {
                    table,
                    delta: self.reg()?,
                }
            }
            op_tag::CALL_TABLE => {
                let table = self.name(what)?;
                let sig = self.sig(1)?;
                let index = self.reg()?;
                Op::CallTable {
                    table,
                    sig,
                    index,
                    args: self.regs()?,
                }
            }
            _ => return Ok(None),
        }))
    }

    /// How a memory or table is linked: imported, or defined with its
    /// initial size and maximum.
    fn linkage(&mut self) -> Result<Linkage, Error> {
        let at = self.pos;
        let size = |r: &mut Self| r.u64("a size");
        Ok(match self.byte("a linkage")? {
            misc_tag::LINK_IMPORT => Linkage::Import,
            misc_tag::LINK_DEFINE => Linkage::Define {
                initial: size(self)?,
                maximum: None,
            },
            misc_tag::LINK_DEFINE_MAX => {
                let initial = size(self)?;
                Linkage::Define {
                    initial,
                    maximum: Some(size(self)?),
                }
            }
            tag => {
                return Err(Error::at_offset(
                    ErrorKind::BadTag {
                        what: "linkage",
                        tag,
                    },
                    at,
                ));
            }
        })
    }

    fn block_call(&mut self) -> Result<BlockCall, Error> {
        let block = BlockId(self.u32("a block index")?);
        Ok(BlockCall {
            block,
            args: self.regs()?,
        })
    }

    fn term(&mut self) -> Result<Terminator, Error> {
        let at = self.pos;
        Ok(match self.byte("a terminator")? {
            misc_tag::BR => Terminator::Br(self.block_call()?),
            misc_tag::COND_BR => {
                let cond = self.reg()?;
                let then = self.block_call()?;
                Terminator::CondBr {
                    cond,
                    then,
                    otherwise: self.block_call()?,
                }
            }
            misc_tag::RET => Terminator::Ret(None),
            misc_tag::RET_VALUE => Terminator::Ret(Some(self.reg()?)),
            misc_tag::TRAP => Terminator::Trap(self.u32("a trap code")?),
            tag => {
                return Err(Error::at_offset(
                    ErrorKind::BadTag {
                        what: "terminator",
                        tag,
                    },
                    at,
                ));
            }
        })
    }

    fn function(&mut self) -> Result<Function, Error> {
        let TemplateName { owner, name } = self.template_name()?;
        let type_params = self.type_params()?;
        let sig = self.sig(1)?;
        let mut numbering = Numbering {
            next: u32::try_from(sig.params.len()).unwrap_or(u32::MAX),
        };
        // A block needs at least a parameter count, an instruction count
        // and a terminator.
        let nblocks = self.list_len("block count", limits::MAX_BLOCKS, 3)?;
        let mut blocks = Vec::with_capacity(nblocks);
        let mut total_insts = 0usize;
        for _ in 0..nblocks {
            let np = self.list_len("block parameter count", limits::MAX_OPERANDS, 1)?;
            let mut params = Vec::with_capacity(np);
            for _ in 0..np {
                let at = self.pos;
                let t = self.ty(1)?;
                params.push((numbering.take(at)?, t));
            }
            let ni = self.list_len("instruction count", limits::MAX_INSTS, 1)?;
            total_insts = total_insts.saturating_add(ni);
            crate::error::check_limit("instruction count", total_insts, limits::MAX_INSTS)
                .map_err(|e| e.or_at(crate::Location::Offset(self.pos)))?;
            let mut insts = Vec::with_capacity(ni);
            for _ in 0..ni {
                let at = self.pos;
                let op = self.op()?;
                let result = if op.has_result() {
                    Some(numbering.take(at)?)
                } else {
                    None
                };
                insts.push(Inst { result, op });
            }
            let term = self.term()?;
            blocks.push(Block {
                params,
                insts,
                term,
            });
        }
        Ok(Function {
            name: TemplateName { owner, name },
            type_params,
            sig,
            blocks,
        })
    }

    fn struct_def(&mut self) -> Result<StructDef, Error> {
        let name = self.name("a struct name")?;
        let type_params = self.type_params()?;
        let n = self.list_len("field count", limits::MAX_FIELDS, 2)?;
        let fields = (0..n)
            .map(|_| {
                let f = self.name("a field name")?;
                Ok((f, self.ty(1)?))
            })
            .collect::<Result<_, Error>>()?;
        Ok(StructDef {
            name,
            type_params,
            fields,
        })
    }

    fn declaration(&mut self) -> Result<Declaration, Error> {
        Ok(Declaration {
            name: self.declared_name()?,
            sig: self.sig(1)?,
        })
    }

    /// A function's name and, for a method, its owner (an empty string
    /// when there is none).
    fn template_name(&mut self) -> Result<TemplateName, Error> {
        let name = self.name("a function name")?;
        let owner_at = self.pos;
        let owner = self.str("a method owner")?;
        let owner = if owner.is_empty() {
            None
        } else {
            let mut sub = Reader {
                bytes: self.bytes,
                pos: owner_at,
            };
            Some(sub.name("a method owner")?)
        };
        Ok(TemplateName { owner, name })
    }

    /// The symbol a declaration names, which must not be empty.
    fn declared_name(&mut self) -> Result<String, Error> {
        let name = self.str("a declared name")?;
        if name.is_empty() {
            return Err(self.err(ErrorKind::BadName("a declared name is empty".into())));
        }
        Ok(name)
    }
}
