//! Types of the template IR: scalars, pointers, function pointers, type
//! parameters and generic structs.

use std::fmt;

/// An integer type: width and signedness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntType {
    /// Signed 8-bit.
    I8,
    /// Signed 16-bit.
    I16,
    /// Signed 32-bit.
    I32,
    /// Signed 64-bit.
    I64,
    /// Unsigned 8-bit.
    U8,
    /// Unsigned 16-bit.
    U16,
    /// Unsigned 32-bit.
    U32,
    /// Unsigned 64-bit.
    U64,
}

impl IntType {
    /// Every integer type, signed first, narrow first.
    pub const ALL: [IntType; 8] = [
        IntType::I8,
        IntType::I16,
        IntType::I32,
        IntType::I64,
        IntType::U8,
        IntType::U16,
        IntType::U32,
        IntType::U64,
    ];

    /// Width in bits (8, 16, 32 or 64).
    #[inline]
    pub fn bits(self) -> u32 {
        match self {
            IntType::I8 | IntType::U8 => 8,
            IntType::I16 | IntType::U16 => 16,
            IntType::I32 | IntType::U32 => 32,
            IntType::I64 | IntType::U64 => 64,
        }
    }

    /// Whether values are two's-complement signed.
    #[inline]
    pub fn signed(self) -> bool {
        matches!(
            self,
            IntType::I8 | IntType::I16 | IntType::I32 | IntType::I64
        )
    }

    /// The keyword naming this type in text and mangled names.
    pub fn name(self) -> &'static str {
        match self {
            IntType::I8 => "i8",
            IntType::I16 => "i16",
            IntType::I32 => "i32",
            IntType::I64 => "i64",
            IntType::U8 => "u8",
            IntType::U16 => "u16",
            IntType::U32 => "u32",
            IntType::U64 => "u64",
        }
    }

    /// Smallest representable value, as an `i128`.
    #[inline]
    pub fn min_value(self) -> i128 {
        if self.signed() {
            -(1i128 << (self.bits() - 1))
        } else {
            0
        }
    }

    /// Largest representable value, as an `i128`.
    #[inline]
    pub fn max_value(self) -> i128 {
        if self.signed() {
            (1i128 << (self.bits() - 1)) - 1
        } else {
            (1i128 << self.bits()) - 1
        }
    }

    /// Brings the low `bits()` bits of `raw` into the canonical 64-bit form
    /// used by the interpreter: sign-extended for signed types,
    /// zero-extended for unsigned ones.
    #[inline]
    pub fn canonical(self, raw: u64) -> u64 {
        let shift = 64 - self.bits();
        if self.signed() {
            (((raw << shift) as i64) >> shift) as u64
        } else {
            (raw << shift) >> shift
        }
    }
}

/// What a type parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Constraint {
    /// Any type that can live in a register or memory (not a function pointer).
    Any,
    /// An integer type.
    Int,
    /// `f32` or `f64`.
    Float,
    /// An integer or floating-point type.
    Num,
}

impl Constraint {
    /// The keyword naming this constraint.
    pub fn name(self) -> &'static str {
        match self {
            Constraint::Any => "any",
            Constraint::Int => "int",
            Constraint::Float => "float",
            Constraint::Num => "num",
        }
    }

    /// Whether a concrete type satisfies the constraint.
    pub fn admits(self, ty: &Type) -> bool {
        match self {
            Constraint::Any => ty.is_type_argument(),
            Constraint::Int => matches!(ty, Type::Int(_)),
            Constraint::Float => ty.is_float(),
            Constraint::Num => matches!(ty, Type::Int(_)) || ty.is_float(),
        }
    }

    /// Whether every type admitted by `self` is admitted by `other`.
    pub fn implies(self, other: Constraint) -> bool {
        match other {
            Constraint::Any => true,
            Constraint::Num => {
                matches!(self, Constraint::Int | Constraint::Float | Constraint::Num)
            }
            Constraint::Int => self == Constraint::Int,
            Constraint::Float => self == Constraint::Float,
        }
    }
}

/// A named type parameter of a template with its constraint.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TypeParam {
    /// Name used in the text form (`T`).
    pub name: String,
    /// What the parameter accepts.
    pub constraint: Constraint,
}

/// A generic struct applied to type arguments (`Pair<T, i32>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StructType {
    /// Name of the struct template.
    pub name: String,
    /// Type arguments, one per parameter of the struct.
    pub args: Vec<Type>,
}

/// Parameter and result types of a function.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Signature {
    /// Parameter types in order.
    pub params: Vec<Type>,
    /// Result type, `None` for a function returning nothing.
    pub ret: Option<Type>,
}

/// A type of the IR.
#[derive(Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// An integer.
    Int(IntType),
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary64.
    F64,
    /// `true` or `false`, one byte in memory.
    Bool,
    /// An untyped pointer (`rawptr`), what `malloc` returns.
    RawPtr,
    /// A pointer to values of the given type (`ptr<T>`).
    Ptr(Box<Type>),
    /// A pointer to a function with the given signature (`fn(T, T) -> i32`).
    Fn(Box<Signature>),
    /// The type parameter with this index in the enclosing template.
    Param(u32),
    /// A generic struct; lives in memory only, reached through pointers.
    /// Boxed, so that a `Type` is two words and the scalar types that make
    /// up most of a function's types are cheap to move and copy.
    Struct(Box<StructType>),
}

/// Cloning a scalar type is a copy, inlined where it happens (most types
/// an instantiation clones are scalars); only the boxed and named forms
/// go through a call.
impl Clone for Type {
    #[inline]
    fn clone(&self) -> Self {
        match *self {
            Type::Int(t) => Type::Int(t),
            Type::F32 => Type::F32,
            Type::F64 => Type::F64,
            Type::Bool => Type::Bool,
            Type::RawPtr => Type::RawPtr,
            Type::Param(i) => Type::Param(i),
            // Listed, not a wildcard: a new form must choose its side here,
            // or `clone_nested` would hand it back to this function.
            Type::Ptr(_) | Type::Fn(_) | Type::Struct(_) => self.clone_nested(),
        }
    }
}

impl Type {
    /// [`Clone::clone`] of a pointer, function or struct type.
    #[inline(never)]
    fn clone_nested(&self) -> Self {
        match self {
            Type::Ptr(inner) => Type::Ptr(inner.clone()),
            Type::Fn(sig) => Type::Fn(sig.clone()),
            Type::Struct(s) => Type::Struct(s.clone()),
            scalar => scalar.clone(),
        }
    }

    /// Shorthand for `Type::Int(IntType::I64)`, the index and size type.
    pub const I64: Type = Type::Int(IntType::I64);

    /// Every scalar type that has a keyword, in a fixed order.
    pub fn scalars() -> Vec<Type> {
        let mut all: Vec<Type> = IntType::ALL.iter().map(|&t| Type::Int(t)).collect();
        all.extend([Type::F32, Type::F64, Type::Bool, Type::RawPtr]);
        all
    }

    /// `ptr<self>`.
    #[inline]
    pub fn ptr_to(self) -> Type {
        Type::Ptr(Box::new(self))
    }

    /// Whether the type is `f32` or `f64`.
    #[inline]
    pub fn is_float(&self) -> bool {
        matches!(self, Type::F32 | Type::F64)
    }

    /// Whether the type is a pointer of any kind (data or function).
    #[inline]
    pub fn is_pointer(&self) -> bool {
        matches!(self, Type::RawPtr | Type::Ptr(_) | Type::Fn(_))
    }

    /// Whether a value of this type can be held in a virtual register
    /// (everything but a struct).
    #[inline]
    pub fn is_register(&self) -> bool {
        !matches!(self, Type::Struct(_))
    }

    /// Whether the type may be passed as a type argument: anything without
    /// function pointers or type parameters.
    pub fn is_type_argument(&self) -> bool {
        match self {
            Type::Int(_) | Type::F32 | Type::F64 | Type::Bool | Type::RawPtr => true,
            Type::Ptr(inner) => inner.is_type_argument(),
            Type::Struct(s) => s.args.iter().all(Type::is_type_argument),
            Type::Fn(_) | Type::Param(_) => false,
        }
    }

    /// Whether no type parameter occurs in the type.
    pub fn is_concrete(&self) -> bool {
        match self {
            Type::Param(_) => false,
            Type::Ptr(inner) => inner.is_concrete(),
            Type::Fn(sig) => sig.is_concrete(),
            Type::Struct(s) => s.args.iter().all(Type::is_concrete),
            _ => true,
        }
    }

    /// Nesting depth: 1 for a scalar, one more per pointer, function or
    /// struct level.
    pub fn depth(&self) -> usize {
        match self {
            Type::Ptr(inner) => 1 + inner.depth(),
            Type::Fn(sig) => {
                1 + sig
                    .params
                    .iter()
                    .chain(sig.ret.iter())
                    .map(Type::depth)
                    .max()
                    .unwrap_or(0)
            }
            Type::Struct(s) => 1 + s.args.iter().map(Type::depth).max().unwrap_or(0),
            _ => 1,
        }
    }

    /// Replaces every `Param(i)` by `args[i]`; parameters without an
    /// argument are left in place (the verifier reports them).
    #[inline]
    pub fn substitute(&self, args: &[Type]) -> Type {
        match self {
            Type::Param(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| args.get(i))
                .cloned()
                .unwrap_or_else(|| self.clone()),
            Type::Ptr(_) | Type::Fn(_) | Type::Struct(_) => self.substitute_nested(args),
            other => other.clone(),
        }
    }

    /// [`Type::substitute`] of a pointer, function or struct type.
    #[inline(never)]
    fn substitute_nested(&self, args: &[Type]) -> Type {
        match self {
            Type::Ptr(inner) => inner.substitute(args).ptr_to(),
            Type::Fn(sig) => Type::Fn(Box::new(sig.substitute(args))),
            Type::Struct(s) => Type::Struct(Box::new(StructType {
                name: s.name.clone(),
                args: s.args.iter().map(|a| a.substitute(args)).collect(),
            })),
            other => other.clone(),
        }
    }

    /// Makes `out` equal to `self.substitute(args)`, keeping the boxes of
    /// `out`'s pointer levels where both are pointers (an instantiation
    /// refilling a spare instance allocates no new ones).
    pub fn substitute_into(&self, args: &[Type], out: &mut Type) {
        match (self, out) {
            (Type::Ptr(generic), Type::Ptr(out)) => generic.substitute_into(args, out),
            (Type::Param(i), out) => match usize::try_from(*i).ok().and_then(|i| args.get(i)) {
                Some(arg) => arg.clone_into_place(out),
                None => out.replace_with(self.clone()),
            },
            (generic, out) => out.replace_with(generic.substitute(args)),
        }
    }

    /// Makes `out` equal to `self`, keeping the boxes of `out`'s pointer
    /// levels where both are pointers.
    #[inline]
    pub fn clone_into_place(&self, out: &mut Type) {
        match (self, out) {
            (Type::Ptr(inner), Type::Ptr(out)) => inner.clone_into_place(out),
            (ty, out) => out.replace_with(ty.clone()),
        }
    }

    /// `*self = new`, without a call to drop the old value when it owns
    /// nothing (a scalar or a parameter), which is most of the time.
    #[inline]
    pub fn replace_with(&mut self, new: Type) {
        let old = std::mem::replace(self, new);
        if old.owns_nothing() {
            // Nothing to free: dropping it would only be a call that
            // looks at the variant.
            std::mem::forget(old);
        }
    }

    /// Whether the type holds no box or string (dropping it frees nothing).
    #[inline]
    fn owns_nothing(&self) -> bool {
        !matches!(self, Type::Ptr(_) | Type::Fn(_) | Type::Struct(_))
    }

    /// Whether `self` is `generic.substitute(args)`, decided without
    /// building the substituted type.
    pub fn is_substitution_of(&self, generic: &Type, args: &[Type]) -> bool {
        match (generic, self) {
            (Type::Param(i), _) => {
                match usize::try_from(*i).ok().and_then(|i| args.get(i)) {
                    Some(arg) => arg == self,
                    // Left in place by `substitute`.
                    None => self == generic,
                }
            }
            (Type::Ptr(g), Type::Ptr(t)) => t.is_substitution_of(g, args),
            (Type::Fn(g), Type::Fn(t)) => t.is_substitution_of(g, args),
            (Type::Struct(g), Type::Struct(t)) => {
                g.name == t.name
                    && g.args.len() == t.args.len()
                    && t.args
                        .iter()
                        .zip(&g.args)
                        .all(|(t, g)| t.is_substitution_of(g, args))
            }
            (Type::Ptr(_) | Type::Fn(_) | Type::Struct(_), _) => false,
            (other, _) => other == self,
        }
    }

    /// Size in bytes of a scalar or pointer type; `None` for a struct or a
    /// type parameter, whose size depends on a layout.
    #[inline]
    pub fn scalar_size(&self) -> Option<u64> {
        match self {
            Type::Int(t) => Some(u64::from(t.bits() / 8)),
            Type::F32 => Some(4),
            Type::F64 | Type::RawPtr | Type::Ptr(_) | Type::Fn(_) => Some(8),
            Type::Bool => Some(1),
            Type::Param(_) | Type::Struct(_) => None,
        }
    }
}

impl Signature {
    /// Whether every parameter and the result are concrete.
    pub fn is_concrete(&self) -> bool {
        self.params
            .iter()
            .chain(self.ret.iter())
            .all(Type::is_concrete)
    }

    /// Whether `self` is `generic.substitute(args)`, decided without
    /// building the substituted signature.
    pub fn is_substitution_of(&self, generic: &Signature, args: &[Type]) -> bool {
        self.params.len() == generic.params.len()
            && self
                .params
                .iter()
                .zip(&generic.params)
                .all(|(t, g)| t.is_substitution_of(g, args))
            && match (&self.ret, &generic.ret) {
                (Some(t), Some(g)) => t.is_substitution_of(g, args),
                (None, None) => true,
                _ => false,
            }
    }

    /// The signature with type parameters replaced by `args`.
    pub fn substitute(&self, args: &[Type]) -> Signature {
        Signature {
            params: self.params.iter().map(|p| p.substitute(args)).collect(),
            ret: self.ret.as_ref().map(|r| r.substitute(args)),
        }
    }

    /// Makes `out` equal to `self.substitute(args)`, keeping its parameter
    /// vector and, through [`Type::substitute_into`], its types' boxes.
    pub fn substitute_into(&self, args: &[Type], out: &mut Signature) {
        room_for(&mut out.params, self.params.len());
        for (k, generic) in self.params.iter().enumerate() {
            match out.params.get_mut(k) {
                Some(param) => generic.substitute_into(args, param),
                None => out.params.push(generic.substitute(args)),
            }
        }
        match (&self.ret, &mut out.ret) {
            (Some(generic), Some(ret)) => generic.substitute_into(args, ret),
            (generic, ret) => *ret = generic.as_ref().map(|g| g.substitute(args)),
        }
    }
}

/// Cuts `v` to at most `n` items and makes room for `n`. A vector without
/// a buffer gets one of exactly `n` at once: reserving on an empty vector
/// takes the allocator's slower growth path, which a fresh instantiation
/// would pay for every vector it fills.
#[inline]
pub(crate) fn room_for<T>(v: &mut Vec<T>, n: usize) {
    if v.capacity() == 0 {
        *v = Vec::with_capacity(n);
    } else {
        v.truncate(n);
        v.reserve_exact(n - v.len());
    }
}

/// Displays a type with parameter names taken from a template's parameter
/// list (or `$0`, `$1`… when a name is missing).
pub struct TypeDisplay<'a> {
    /// The type to show.
    pub ty: &'a Type,
    /// Names of the enclosing template's type parameters.
    pub params: &'a [TypeParam],
}

impl fmt::Display for TypeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sub = |ty| TypeDisplay {
            ty,
            params: self.params,
        };
        match self.ty {
            Type::Int(t) => f.write_str(t.name()),
            Type::F32 => f.write_str("f32"),
            Type::F64 => f.write_str("f64"),
            Type::Bool => f.write_str("bool"),
            Type::RawPtr => f.write_str("rawptr"),
            Type::Ptr(inner) => write!(f, "ptr<{}>", sub(inner)),
            Type::Fn(sig) => write!(
                f,
                "fn{}",
                SignatureDisplay {
                    sig,
                    params: self.params
                }
            ),
            Type::Param(i) => match usize::try_from(*i).ok().and_then(|i| self.params.get(i)) {
                Some(p) => f.write_str(&p.name),
                None => write!(f, "${i}"),
            },
            Type::Struct(s) => {
                // A struct named like a type parameter in scope is written
                // `struct Name`, which reads back as the struct.
                if self.params.iter().any(|p| p.name == s.name) {
                    f.write_str("struct ")?;
                }
                f.write_str(&s.name)?;
                if !s.args.is_empty() {
                    f.write_str("<")?;
                    for (k, a) in s.args.iter().enumerate() {
                        if k > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{}", sub(a))?;
                    }
                    f.write_str(">")?;
                }
                Ok(())
            }
        }
    }
}

/// Displays a signature as `(A, B) -> R` with parameter names.
pub struct SignatureDisplay<'a> {
    /// The signature to show.
    pub sig: &'a Signature,
    /// Names of the enclosing template's type parameters.
    pub params: &'a [TypeParam],
}

impl fmt::Display for SignatureDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (k, p) in self.sig.params.iter().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            write!(
                f,
                "{}",
                TypeDisplay {
                    ty: p,
                    params: self.params
                }
            )?;
        }
        f.write_str(")")?;
        if let Some(r) = &self.sig.ret {
            write!(
                f,
                " -> {}",
                TypeDisplay {
                    ty: r,
                    params: self.params
                }
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        TypeDisplay {
            ty: self,
            params: &[],
        }
        .fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every type is two words: the forms that own storage keep it behind
    /// one box, so moving and copying the scalar types that make up most of
    /// a function's types stays cheap.
    #[test]
    fn a_type_is_two_words() {
        assert_eq!(
            std::mem::size_of::<Type>(),
            2 * std::mem::size_of::<usize>()
        );
    }
}
