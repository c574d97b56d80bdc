//! The binary form of a library: the payload of a TemplateCode section.
//!
//! ```text
//! section := "GTPL" version:u16le count:u32le entry*count
//! entry   := kind:u8 length:uleb payload[length]
//! ```
//!
//! Inside a payload every integer is LEB128 (unsigned, or zigzag-signed
//! where negative values occur), a string is its byte length then UTF-8,
//! a list is its count then its elements, and types, operations and
//! terminators are tag bytes followed by their fields. Registers defined by
//! instructions and block parameters are implicit: they are numbered in
//! definition order, so the decoder reconstructs them and a decoded
//! function is always canonically numbered. The full grammar is in
//! `doc/formats/template-ir.md`.

pub(crate) mod decode;
mod encode;

pub use decode::{DecodedLibrary, decode_library, decode_library_at, decode_library_lazily};
pub use encode::{EncodedLibrary, encode_library};

/// The four bytes a TemplateCode section starts with.
pub const MAGIC: [u8; 4] = *b"GTPL";

/// The encoding version this crate writes and reads.
pub const VERSION: u16 = 1;

/// Entry kinds.
pub mod kind {
    /// A function template.
    pub const FUNCTION: u8 = 1;
    /// A struct template.
    pub const STRUCT: u8 = 2;
    /// A native import declaration.
    pub const IMPORT: u8 = 3;
    /// An extern symbol declaration.
    pub const EXTERN: u8 = 4;
    /// A shared memory, defined or imported.
    pub const MEMORY: u8 = 5;
    /// A shared table, defined or imported.
    pub const TABLE: u8 = 6;
}

/// Tag bytes of types.
pub(crate) mod type_tag {
    pub const I8: u8 = 0x01;
    pub const I16: u8 = 0x02;
    pub const I32: u8 = 0x03;
    pub const I64: u8 = 0x04;
    pub const U8: u8 = 0x05;
    pub const U16: u8 = 0x06;
    pub const U32: u8 = 0x07;
    pub const U64: u8 = 0x08;
    pub const F32: u8 = 0x09;
    pub const F64: u8 = 0x0a;
    pub const BOOL: u8 = 0x0b;
    pub const RAWPTR: u8 = 0x0c;
    pub const PTR: u8 = 0x0d;
    pub const FN: u8 = 0x0e;
    pub const PARAM: u8 = 0x0f;
    pub const STRUCT: u8 = 0x10;
}

/// Tag bytes of operations.
pub(crate) mod op_tag {
    pub const CONST: u8 = 0x01;
    pub const NEG: u8 = 0x02;
    pub const NOT: u8 = 0x03;
    /// `BINARY + BinOp index` for add … shr (0x10 … 0x19).
    pub const BINARY: u8 = 0x10;
    /// `CMP + CmpOp index` for eq … ge (0x20 … 0x25).
    pub const CMP: u8 = 0x20;
    pub const CAST: u8 = 0x30;
    pub const BITCAST: u8 = 0x31;
    pub const SELECT: u8 = 0x32;
    pub const LOAD: u8 = 0x40;
    pub const STORE: u8 = 0x41;
    pub const ELEM_ADDR: u8 = 0x42;
    pub const FIELD_ADDR: u8 = 0x43;
    pub const ADDR: u8 = 0x44;
    pub const SIZE_OF: u8 = 0x45;
    pub const ALIGN_OF: u8 = 0x46;
    pub const CALL: u8 = 0x50;
    pub const CALL_INDIRECT: u8 = 0x51;
    pub const FUNC_ADDR: u8 = 0x52;
    pub const MEM_LOAD: u8 = 0x60;
    pub const MEM_STORE: u8 = 0x61;
    pub const MEM_SIZE: u8 = 0x62;
    pub const MEM_GROW: u8 = 0x63;
    pub const TABLE_GET: u8 = 0x68;
    pub const TABLE_SET: u8 = 0x69;
    pub const TABLE_SIZE: u8 = 0x6a;
    pub const TABLE_GROW: u8 = 0x6b;
    pub const CALL_TABLE: u8 = 0x6c;
}

/// Tag bytes of terminators, literals and callees.
pub(crate) mod misc_tag {
    pub const BR: u8 = 0x01;
    pub const COND_BR: u8 = 0x02;
    pub const RET: u8 = 0x03;
    pub const RET_VALUE: u8 = 0x04;
    pub const TRAP: u8 = 0x05;

    pub const LIT_INT: u8 = 0x01;
    pub const LIT_FLOAT: u8 = 0x02;
    pub const LIT_FALSE: u8 = 0x03;
    pub const LIT_TRUE: u8 = 0x04;
    pub const LIT_NULL: u8 = 0x05;

    pub const CALLEE_TEMPLATE: u8 = 0x01;
    pub const CALLEE_SYMBOL: u8 = 0x02;
    pub const CALLEE_IMPORT: u8 = 0x03;

    pub const LINK_IMPORT: u8 = 0x00;
    pub const LINK_DEFINE: u8 = 0x01;
    pub const LINK_DEFINE_MAX: u8 = 0x02;
}

/// The binary operations in tag order.
pub(crate) const BINOPS: [crate::ir::BinOp; 10] = {
    use crate::ir::BinOp::*;
    [Add, Sub, Mul, Div, Rem, And, Or, Xor, Shl, Shr]
};

/// The comparisons in tag order.
pub(crate) const CMPOPS: [crate::ir::CmpOp; 6] = {
    use crate::ir::CmpOp::*;
    [Eq, Ne, Lt, Le, Gt, Ge]
};

/// The constraints in their byte order (0 any, 1 int, 2 float, 3 num).
pub(crate) const CONSTRAINTS: [crate::ir::Constraint; 4] = {
    use crate::ir::Constraint::*;
    [Any, Int, Float, Num]
};
