//! Symbol names of instantiations.
//!
//! A mangled name is `$`-separated tokens: the template's name, one token
//! group per type argument, and for a method the method's name last.
//!
//! ```text
//! sum<f64>                       sum$f64
//! Vec<i64>::push                 Vec$i64$push
//! Pair<i32, f64>::first          Pair$i32$f64$first
//! Vec<Pair<i32, f64>>::push      Vec$Pair_2$i32$f64$push
//! sort<ptr<u8>>                  sort$ptr$u8
//! ```
//!
//! Type arguments are written in prefix form: a scalar is its keyword
//! (`i8` … `u64`, `f32`, `f64`, `bool`, `rawptr`), `ptr<T>` is the token
//! `ptr` followed by `T`, and a struct is `Name_N` (its name, `_`, its
//! argument count in decimal without leading zeros) followed by its `N`
//! arguments. Because every type token says how many follow it, a sequence
//! of types splits in exactly one way. The method name comes after the
//! arguments and can never be mistaken for one: the verifier rejects
//! method names that are type keywords or end in `_` and digits. Hence the
//! scheme is injective and [`demangle`] inverts [`mangle`]. Only `$`,
//! letters, digits and `_` occur, so names need no quoting in `note.sdn`.

use crate::error::{Error, ErrorKind};
use crate::ir::{IntType, StructType, TemplateName, Type};
use crate::limits;

/// Words that cannot name a struct or a free function: the type keywords
/// and the words of the text syntax that introduce types.
pub fn is_reserved(name: &str) -> bool {
    scalar(name).is_some()
        || matches!(
            name,
            "ptr" | "fn" | "native" | "struct" | "import" | "extern"
        )
}

/// The scalar type a keyword names (`i8` … `u64`, `f32`, `f64`, `bool`, `rawptr`).
pub(crate) fn scalar(token: &str) -> Option<Type> {
    // One `match`, which compiles to a length test and a word compare,
    // rather than a search through the names: every demangled name asks
    // this of each of its tokens.
    Some(match token {
        "i8" => Type::Int(IntType::I8),
        "i16" => Type::Int(IntType::I16),
        "i32" => Type::Int(IntType::I32),
        "i64" => Type::Int(IntType::I64),
        "u8" => Type::Int(IntType::U8),
        "u16" => Type::Int(IntType::U16),
        "u32" => Type::Int(IntType::U32),
        "u64" => Type::Int(IntType::U64),
        "f32" => Type::F32,
        "f64" => Type::F64,
        "bool" => Type::Bool,
        "rawptr" => Type::RawPtr,
        _ => return None,
    })
}

/// Whether `s` is an identifier: a letter or `_`, then letters, digits
/// and `_` (ASCII).
pub(crate) fn is_ident(s: &str) -> bool {
    // Bytes, not chars: any non-ASCII byte fails the test either way.
    let bytes = s.as_bytes();
    bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// Splits a struct token `Name_N` into the name and the count.
fn struct_token(token: &str) -> Option<(&str, usize)> {
    let (name, count) = token.rsplit_once('_')?;
    let canonical = !count.is_empty()
        && count.bytes().all(|b| b.is_ascii_digit())
        && (count == "0" || !count.starts_with('0'));
    if !canonical || !is_ident(name) || is_reserved(name) {
        return None;
    }
    Some((name, count.parse().ok()?))
}

/// Whether `token` begins a type in a mangled name (so it cannot be a
/// method name).
pub fn is_type_token(token: &str) -> bool {
    scalar(token).is_some() || token == "ptr" || struct_token(token).is_some()
}

fn push_type(out: &mut String, ty: &Type) -> Result<(), Error> {
    out.push('$');
    match ty {
        Type::Ptr(inner) => {
            out.push_str("ptr");
            push_type(out, inner)
        }
        Type::Struct(s) => {
            if !is_ident(&s.name) || is_reserved(&s.name) {
                return Err(Error::new(ErrorKind::BadName(s.name.clone())));
            }
            out.push_str(&s.name);
            out.push('_');
            // Writing to a String cannot fail.
            let _ = std::fmt::Write::write_fmt(out, format_args!("{}", s.args.len()));
            s.args.iter().try_for_each(|a| push_type(out, a))
        }
        other => match keyword(other) {
            Some(keyword) => {
                out.push_str(keyword);
                Ok(())
            }
            None => Err(Error::new(ErrorKind::NotTypeArgument(ty.to_string()))),
        },
    }
}

/// The keyword of a scalar type, the inverse of [`scalar`]; `None` for
/// pointers, functions, structs and type parameters.
fn keyword(ty: &Type) -> Option<&'static str> {
    Some(match ty {
        Type::Int(t) => t.name(),
        Type::F32 => "f32",
        Type::F64 => "f64",
        Type::Bool => "bool",
        Type::RawPtr => "rawptr",
        _ => return None,
    })
}

/// The symbol name of `template` instantiated with `args`.
///
/// # Errors
///
/// [`ErrorKind::NotTypeArgument`] for a function pointer or type parameter
/// among the arguments, [`ErrorKind::BadName`] for names outside the scheme
/// (not identifiers, reserved words, a method name that reads as a type).
pub fn mangle(template: &TemplateName, args: &[Type]) -> Result<String, Error> {
    let mut out = String::new();
    mangle_into(&mut out, template, args)?;
    Ok(out)
}

/// [`mangle`] into `out`, replacing what it held and keeping its buffer.
///
/// # Errors
///
/// As [`mangle`]; `out` is then left with part of the name.
pub fn mangle_into(out: &mut String, template: &TemplateName, args: &[Type]) -> Result<(), Error> {
    let base = template.owner.as_deref().unwrap_or(&template.name);
    if !is_ident(base) || is_reserved(base) {
        return Err(Error::new(ErrorKind::BadName(base.to_owned())));
    }
    // Room for the usual case (scalar and pointer arguments) without
    // growing the string (allocated at that size if it has no buffer).
    let room = base.len() + 8 * args.len() + template.name.len() + 1;
    if out.capacity() == 0 {
        *out = String::with_capacity(room);
    } else {
        out.clear();
        out.reserve(room);
    }
    out.push_str(base);
    for a in args {
        push_type(out, a)?;
    }
    if template.owner.is_some() {
        if !is_ident(&template.name) || is_type_token(&template.name) {
            return Err(Error::new(ErrorKind::BadName(template.name.clone())));
        }
        out.push('$');
        out.push_str(&template.name);
    }
    Ok(())
}

/// The `$`-separated tokens of a name, as `name.split('$')` gives them,
/// with a byte search: names are short and ASCII, and the general
/// character searcher costs more than it finds here.
struct Dollars<'a>(Option<&'a str>);

impl<'a> Iterator for Dollars<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.0?;
        match rest.bytes().position(|b| b == b'$') {
            Some(at) => {
                // `$` is one byte, so both sides are whole characters.
                self.0 = rest.get(at + 1..);
                rest.get(..at)
            }
            None => self.0.take(),
        }
    }
}

struct Tokens<'a> {
    name: &'a str,
    tokens: std::iter::Peekable<Dollars<'a>>,
}

impl Tokens<'_> {
    #[cold]
    fn err(&self, reason: &'static str) -> Error {
        Error::new(ErrorKind::Demangle {
            name: self.name.to_owned(),
            reason,
        })
    }

    fn ty(&mut self, depth: usize) -> Result<Type, Error> {
        if depth > limits::MAX_TYPE_DEPTH {
            return Err(self.err("types nest too deeply"));
        }
        let token = self
            .tokens
            .next()
            .ok_or_else(|| self.err("a type argument is missing"))?;
        if let Some(t) = scalar(token) {
            return Ok(t);
        }
        if token == "ptr" {
            return Ok(self.ty(depth + 1)?.ptr_to());
        }
        let (name, count) = struct_token(token).ok_or_else(|| self.err("a token is not a type"))?;
        if count > limits::MAX_TYPE_PARAMS {
            return Err(self.err("a struct has too many type arguments"));
        }
        let args = (0..count)
            .map(|_| self.ty(depth + 1))
            .collect::<Result<_, _>>()?;
        Ok(Type::Struct(Box::new(StructType {
            name: name.to_owned(),
            args,
        })))
    }
}

/// Splits a mangled name into the template and its type arguments.
///
/// # Errors
///
/// [`ErrorKind::Demangle`] when the name does not follow the scheme.
pub fn demangle(name: &str) -> Result<(TemplateName, Vec<Type>), Error> {
    let mut template = TemplateName::free("");
    // Every argument is one token at least: room for them at once.
    let mut args = Vec::with_capacity(name.bytes().filter(|&b| b == b'$').count());
    demangle_into(name, &mut template, &mut args)?;
    Ok((template, args))
}

/// [`demangle`] into `template` and `args`, replacing what they held and
/// keeping their buffers (a caller demangling many names allocates for
/// the first only).
///
/// # Errors
///
/// As [`demangle`]; `template` and `args` then hold part of the name.
pub fn demangle_into(
    name: &str,
    template: &mut TemplateName,
    args: &mut Vec<Type>,
) -> Result<(), Error> {
    let mut t = Tokens {
        name,
        tokens: Dollars(Some(name)).peekable(),
    };
    if name.len() > limits::MAX_NAME_LEN * 16 {
        return Err(t.err("the name is too long"));
    }
    let base = t.tokens.next().unwrap_or("");
    if !is_ident(base) || is_reserved(base) {
        return Err(t.err("the template name is not an identifier"));
    }
    args.clear();
    while t.tokens.peek().is_some_and(|tok| is_type_token(tok)) {
        if args.len() >= limits::MAX_TYPE_PARAMS {
            return Err(t.err("too many type arguments"));
        }
        args.push(t.ty(1)?);
    }
    let (owner, own) = match t.tokens.next() {
        None => (None, base),
        Some(method) if is_ident(method) => (Some(base), method),
        Some(_) => return Err(t.err("a token is neither a type nor a method name")),
    };
    if t.tokens.next().is_some() {
        return Err(t.err("tokens follow the method name"));
    }
    match (owner, &mut template.owner) {
        (None, held) => *held = None,
        (Some(owner), Some(held)) => copy_into(held, owner),
        (Some(owner), held) => *held = Some(owner.to_owned()),
    }
    copy_into(&mut template.name, own);
    Ok(())
}

/// Replaces `to`'s text with `from`, keeping its buffer.
fn copy_into(to: &mut String, from: &str) {
    to.clear();
    to.push_str(from);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_the_tokens_split_gives() {
        for name in [
            "",
            "$",
            "$$",
            "a",
            "a$",
            "$a",
            "sum$f64",
            "Vec$i64$push",
            "a$$b",
            "é$ü$",
            "x$y$z$",
        ] {
            let ours: Vec<&str> = Dollars(Some(name)).collect();
            let split: Vec<&str> = name.split('$').collect();
            assert_eq!(ours, split, "{name:?}");
        }
    }

    #[test]
    fn scalar_keywords_are_exactly_the_scalar_types_names() {
        for t in IntType::ALL {
            assert_eq!(scalar(t.name()), Some(Type::Int(t)));
        }
        for (name, ty) in [
            ("f32", Type::F32),
            ("f64", Type::F64),
            ("bool", Type::Bool),
            ("rawptr", Type::RawPtr),
        ] {
            assert_eq!(scalar(name), Some(ty));
        }
        for other in ["", "i", "i128", "I8", "u8 ", "f16", "ptr", "boolean"] {
            assert_eq!(scalar(other), None, "{other:?}");
        }
    }
}
