//! Values passed to and returned from functions of the IR, shared by every
//! executor: the interpreter takes and returns them, and compiled code's
//! raw results are turned into them to compare with the interpreter.
//!
//! Values live in 64-bit slots in a canonical form: integers sign- or
//! zero-extended from their width, `f32` as its bits in the low half,
//! `bool` as 0 or 1.

use crate::ir::{IntType, Type};

/// A value passed to or returned from an interpreted function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// `i8`.
    I8(i8),
    /// `i16`.
    I16(i16),
    /// `i32`.
    I32(i32),
    /// `i64`.
    I64(i64),
    /// `u8`.
    U8(u8),
    /// `u16`.
    U16(u16),
    /// `u32`.
    U32(u32),
    /// `u64`.
    U64(u64),
    /// `f32`.
    F32(f32),
    /// `f64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// Any pointer (`rawptr`, `ptr<T>`, `fn(…)`): an address or a token.
    Ptr(u64),
}

impl Value {
    /// Whether the value can stand for type `ty`.
    #[inline]
    pub fn fits(&self, ty: &Type) -> bool {
        match (self, ty) {
            (Value::Ptr(_), t) => t.is_pointer(),
            (Value::F32(_), Type::F32)
            | (Value::F64(_), Type::F64)
            | (Value::Bool(_), Type::Bool) => true,
            (v, Type::Int(t)) => v.int_type() == Some(*t),
            _ => false,
        }
    }

    fn int_type(&self) -> Option<IntType> {
        Some(match self {
            Value::I8(_) => IntType::I8,
            Value::I16(_) => IntType::I16,
            Value::I32(_) => IntType::I32,
            Value::I64(_) => IntType::I64,
            Value::U8(_) => IntType::U8,
            Value::U16(_) => IntType::U16,
            Value::U32(_) => IntType::U32,
            Value::U64(_) => IntType::U64,
            _ => return None,
        })
    }

    /// The canonical 64-bit slot form.
    #[inline]
    pub fn to_bits(&self) -> u64 {
        match *self {
            Value::I8(v) => v as i64 as u64,
            Value::I16(v) => v as i64 as u64,
            Value::I32(v) => v as i64 as u64,
            Value::I64(v) => v as u64,
            Value::U8(v) => u64::from(v),
            Value::U16(v) => u64::from(v),
            Value::U32(v) => u64::from(v),
            Value::U64(v) | Value::Ptr(v) => v,
            Value::F32(v) => u64::from(v.to_bits()),
            Value::F64(v) => v.to_bits(),
            Value::Bool(v) => u64::from(v),
        }
    }

    /// The value of type `ty` whose slot holds `bits` (the low bits that
    /// matter for the type are kept).
    #[inline]
    pub fn from_bits(ty: &Type, bits: u64) -> Value {
        match ty {
            Type::Int(IntType::I8) => Value::I8(bits as i8),
            Type::Int(IntType::I16) => Value::I16(bits as i16),
            Type::Int(IntType::I32) => Value::I32(bits as i32),
            Type::Int(IntType::I64) => Value::I64(bits as i64),
            Type::Int(IntType::U8) => Value::U8(bits as u8),
            Type::Int(IntType::U16) => Value::U16(bits as u16),
            Type::Int(IntType::U32) => Value::U32(bits as u32),
            Type::Int(IntType::U64) => Value::U64(bits),
            Type::F32 => Value::F32(f32::from_bits(bits as u32)),
            Type::F64 => Value::F64(f64::from_bits(bits)),
            Type::Bool => Value::Bool(bits & 1 != 0),
            _ => Value::Ptr(bits),
        }
    }
}
