//! The meaning of each operation on canonical 64-bit slots: arithmetic
//! that wraps, shifts that mask, division that traps on zero, IEEE floats,
//! comparisons by signedness, conversions and constants. Pure functions of
//! their operands, with no access to memory.

use jit_ir::ir::{BinOp, CmpOp, IntType, Literal, Type};
use jit_ir::{Error, ErrorKind, TrapKind};

/// The canonical slot form of `raw` for type `ty`.
pub(crate) fn canonical(ty: &Type, raw: u64) -> u64 {
    match ty {
        Type::Int(t) => t.canonical(raw),
        Type::F32 => raw & 0xffff_ffff,
        Type::Bool => raw & 1,
        _ => raw,
    }
}

pub(crate) fn not_concrete(ty: &Type) -> Error {
    Error::new(ErrorKind::NotConcrete(ty.to_string()))
}

pub(crate) fn f32_of(v: u64) -> f32 {
    f32::from_bits(v as u32)
}

pub(crate) fn const_value(ty: &Type, value: Literal) -> Result<u64, Error> {
    Ok(match (ty, value) {
        (Type::Int(t), Literal::Int(v)) => t.canonical(v as u64),
        (Type::F32, Literal::Int(v)) => u64::from((v as f32).to_bits()),
        (Type::F32, Literal::Float(b)) => u64::from((f64::from_bits(b) as f32).to_bits()),
        (Type::F64, Literal::Int(v)) => (v as f64).to_bits(),
        (Type::F64, Literal::Float(b)) => b,
        (Type::Bool, Literal::Bool(b)) => u64::from(b),
        (t, Literal::Null) if t.is_pointer() => 0,
        (t, _) => return Err(not_concrete(t)),
    })
}

pub(crate) fn int_binary(op: BinOp, t: IntType, a: u64, b: u64) -> Result<u64, Error> {
    let mask = u64::from(t.bits() - 1);
    let trap = || Error::new(ErrorKind::Trap(TrapKind::DivideByZero));
    let r = match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        // Operands are sign-extended, so 64-bit wrapping division gives the
        // narrow result after truncation (MIN / -1 wraps to MIN).
        BinOp::Div if b == 0 => return Err(trap()),
        BinOp::Rem if b == 0 => return Err(trap()),
        BinOp::Div if t.signed() => (a as i64).wrapping_div(b as i64) as u64,
        BinOp::Rem if t.signed() => (a as i64).wrapping_rem(b as i64) as u64,
        BinOp::Div => a / b,
        BinOp::Rem => a % b,
        BinOp::And => a & b,
        BinOp::Or => a | b,
        BinOp::Xor => a ^ b,
        BinOp::Shl => a << (b & mask),
        BinOp::Shr if t.signed() => ((a as i64) >> (b & mask)) as u64,
        BinOp::Shr => a >> (b & mask),
    };
    Ok(t.canonical(r))
}

pub(crate) fn float_binary<
    F: Copy
        + std::ops::Add<Output = F>
        + std::ops::Sub<Output = F>
        + std::ops::Mul<Output = F>
        + std::ops::Div<Output = F>,
>(
    op: BinOp,
    a: F,
    b: F,
) -> Option<F> {
    Some(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        _ => return None,
    })
}

pub(crate) fn compare<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

/// Float to integer, saturating like Rust's `as`: NaN gives 0, values
/// beyond the range give the nearest bound, others truncate toward zero.
pub(crate) fn float_to_int(v: f64, t: IntType) -> u64 {
    t.canonical(match t {
        IntType::I8 => v as i8 as u64,
        IntType::I16 => v as i16 as u64,
        IntType::I32 => v as i32 as u64,
        IntType::I64 => v as i64 as u64,
        IntType::U8 => u64::from(v as u8),
        IntType::U16 => u64::from(v as u16),
        IntType::U32 => u64::from(v as u32),
        IntType::U64 => v as u64,
    })
}

pub(crate) fn cast(from: &Type, to: &Type, a: u64) -> Result<u64, Error> {
    Ok(match (from, to) {
        (Type::Int(_) | Type::Bool, Type::Int(t)) => t.canonical(a),
        (Type::Int(f), Type::F32) => u64::from(
            if f.signed() {
                a as i64 as f32
            } else {
                a as f32
            }
            .to_bits(),
        ),
        (Type::Int(f), Type::F64) => if f.signed() {
            a as i64 as f64
        } else {
            a as f64
        }
        .to_bits(),
        (Type::F32, Type::Int(t)) => float_to_int(f64::from(f32_of(a)), *t),
        (Type::F64, Type::Int(t)) => float_to_int(f64::from_bits(a), *t),
        (Type::F32, Type::F64) => f64::from(f32_of(a)).to_bits(),
        (Type::F64, Type::F32) => u64::from((f64::from_bits(a) as f32).to_bits()),
        (Type::F32, Type::F32) | (Type::F64, Type::F64) => a,
        (f, t) if f.is_pointer() || t.is_pointer() => a,
        (f, _) => return Err(not_concrete(f)),
    })
}

/// Address and size of element `index` of type `ty` at `base`.
pub(crate) fn element(ty: &Type, base: u64, index: Option<u64>) -> Result<(u64, u64), Error> {
    let size = ty.scalar_size().ok_or_else(|| not_concrete(ty))?;
    Ok((element_at(base, index.unwrap_or(0), size)?, size))
}

/// Address of element `index` of `size` bytes at `base`; a null address
/// traps.
#[inline(always)]
pub(crate) fn element_at(base: u64, index: u64, size: u64) -> Result<u64, Error> {
    let address = address(base, index, size, 0);
    if address == 0 {
        return Err(Error::new(ErrorKind::Trap(TrapKind::NullPointer)));
    }
    Ok(address)
}

/// `base + index * scale + disp`, wrapping: the `addr` operation.
#[inline(always)]
pub(crate) fn address(base: u64, index: u64, scale: u64, disp: i64) -> u64 {
    base.wrapping_add(index.wrapping_mul(scale))
        .wrapping_add(disp as u64)
}
