//! The nom parser for the text form.
//!
//! Parsing runs in two steps. The grammar step turns text into raw items
//! whose registers, labels and fields are still names; the resolution step
//! numbers registers in definition order, maps labels to block indices and
//! field names to indices, and fills in call signatures the text leaves out
//! (taken from the callee's declaration). Both steps report line and column.

use std::collections::HashMap;

use nom::bytes::complete::{tag, take_while1};
use nom::character::complete::{digit1, hex_digit1};
use nom::error::{ErrorKind as NomKind, ParseError};
use nom::{IResult, Parser};

use crate::error::{Error, ErrorKind, Location, check_limit};
use crate::ir::{
    BinOp, Block, BlockCall, BlockId, Callee, CmpOp, Constraint, Declaration, Function, Inst, Item,
    Library, Linkage, Literal, MemoryDecl, Op, Reg, Signature, StructDef, StructType, TableDecl,
    TemplateName, Terminator, Type, TypeParam, UnOp,
};
use crate::limits;

/// A grammar error: where it happened and what was expected there.
#[derive(Debug)]
struct PErr<'a> {
    at: &'a str,
    expected: String,
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, kind: NomKind) -> Self {
        PErr {
            at: input,
            expected: kind.description().to_lowercase(),
        }
    }

    fn append(_: &'a str, _: NomKind, other: Self) -> Self {
        other
    }

    /// Of two failed alternatives, keep the one that got further.
    fn or(self, other: Self) -> Self {
        if other.at.len() < self.at.len() {
            other
        } else {
            self
        }
    }
}

type PResult<'a, T> = IResult<&'a str, T, PErr<'a>>;

#[cold]
fn fail<'a, T>(at: &'a str, expected: &str) -> PResult<'a, T> {
    Err(nom::Err::Error(PErr {
        at,
        expected: expected.to_owned(),
    }))
}

/// Skips blanks, newlines and `#` comments.
fn ws(mut i: &str) -> &str {
    loop {
        let t = i.trim_start();
        if let Some(rest) = t.strip_prefix('#') {
            i = rest.find('\n').map_or("", |n| &rest[n..]);
        } else {
            return t;
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A punctuation token after optional blanks.
fn sym<'a>(s: &'static str) -> impl Fn(&'a str) -> PResult<'a, &'a str> {
    move |i: &'a str| {
        let i = ws(i);
        match tag::<_, _, PErr<'a>>(s)(i) {
            Ok(r) => Ok(r),
            Err(_) => fail(i, &format!("`{s}`")),
        }
    }
}

/// A keyword: the word not followed by a name character.
fn kw<'a>(s: &'static str) -> impl Fn(&'a str) -> PResult<'a, &'a str> {
    move |i: &'a str| {
        let (rest, word) = sym(s)(i)?;
        if rest.starts_with(is_ident_char) {
            return fail(ws(i), &format!("`{s}`"));
        }
        Ok((rest, word))
    }
}

/// A name: a letter or `_`, then letters, digits and `_`.
fn ident(i: &str) -> PResult<'_, &str> {
    let i = ws(i);
    let (rest, name) = take_while1::<_, _, PErr<'_>>(is_ident_char)
        .parse(i)
        .or_else(|_| fail(i, "a name"))?;
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return fail(i, "a name");
    }
    if name.len() > limits::MAX_NAME_LEN {
        return fail(i, "a shorter name");
    }
    Ok((rest, name))
}

/// `%name` of a register.
fn reg(i: &str) -> PResult<'_, &str> {
    let i = ws(i);
    let (rest, _) = tag::<_, _, PErr<'_>>("%")(i).or_else(|_| fail(i, "a register `%name`"))?;
    take_while1::<_, _, PErr<'_>>(is_ident_char)
        .parse(rest)
        .or_else(|_| fail(i, "a register `%name`"))
}

/// `@symbol`: a concrete symbol, which may contain `$` and `.`.
fn symbol(i: &str) -> PResult<'_, &str> {
    let i = ws(i);
    let (rest, _) = tag::<_, _, PErr<'_>>("@")(i).or_else(|_| fail(i, "a symbol `@name`"))?;
    let (rest, name) =
        take_while1::<_, _, PErr<'_>>(|c: char| is_ident_char(c) || c == '$' || c == '.')
            .parse(rest)
            .or_else(|_| fail(i, "a symbol `@name`"))?;
    if name.len() > limits::MAX_NAME_LEN {
        return fail(i, "a shorter symbol");
    }
    Ok((rest, name))
}

/// An unsigned decimal or `0x` hexadecimal integer.
fn unsigned(i: &str) -> PResult<'_, u128> {
    let i = ws(i);
    let parsed = if let Some(hex) = i.strip_prefix("0x") {
        hex_digit1::<_, PErr<'_>>(hex).map(|(r, d)| (r, u128::from_str_radix(d, 16)))
    } else {
        digit1::<_, PErr<'_>>(i).map(|(r, d)| (r, d.parse::<u128>()))
    };
    match parsed {
        Ok((rest, Ok(v))) if v <= u128::from(u64::MAX) => Ok((rest, v)),
        _ => fail(i, "an integer that fits 64 bits"),
    }
}

/// An optionally negative integer in the range of `i64` ∪ `u64`.
fn integer(i: &str) -> PResult<'_, i128> {
    let i = ws(i);
    if let Some(rest) = i.strip_prefix('-') {
        let (rest, v) = unsigned(rest)?;
        let v = i128::try_from(v).map_or(i128::MAX, |v| -v);
        if v < i128::from(i64::MIN) {
            return fail(i, "an integer no smaller than the i64 minimum");
        }
        Ok((rest, v))
    } else {
        let (rest, v) = unsigned(i)?;
        Ok((rest, i128::try_from(v).unwrap_or(i128::MAX)))
    }
}

fn small_count(i: &str) -> PResult<'_, u32> {
    let (rest, v) = unsigned(i)?;
    match u32::try_from(v) {
        Ok(v) => Ok((rest, v)),
        Err(_) => fail(ws(i), "a 32-bit count"),
    }
}

/// A constant: `true`, `false`, `null`, `nan`, `inf`, `-inf`,
/// `float(0xBITS)`, a decimal float with `.` or an exponent, or an integer.
fn literal(i: &str) -> PResult<'_, Literal> {
    let i = ws(i);
    for (word, lit) in [
        ("true", Literal::Bool(true)),
        ("false", Literal::Bool(false)),
        ("null", Literal::Null),
        ("nan", Literal::Float(f64::NAN.to_bits())),
        ("inf", Literal::Float(f64::INFINITY.to_bits())),
        ("-inf", Literal::Float(f64::NEG_INFINITY.to_bits())),
    ] {
        if let Ok((rest, _)) = kw(word)(i) {
            return Ok((rest, lit));
        }
    }
    if let Ok((rest, _)) = sym("float(")(i) {
        let (rest, bits) = unsigned(rest)?;
        let (rest, _) = sym(")")(rest)?;
        let bits = u64::try_from(bits).unwrap_or(u64::MAX);
        return Ok((rest, Literal::Float(bits)));
    }
    let (rest, text) = take_while1::<_, _, PErr<'_>>(|c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')
    })
    .parse(i)
    .or_else(|_| fail(i, "a constant"))?;
    let is_hex = text.trim_start_matches('-').starts_with("0x");
    if !is_hex && text.contains(['.', 'e', 'E']) {
        return match text.parse::<f64>() {
            Ok(v) => Ok((rest, Literal::Float(v.to_bits()))),
            Err(_) => fail(i, "a float constant"),
        };
    }
    let (after, v) = integer(i)?;
    if after.starts_with(is_ident_char) {
        return fail(i, "a constant");
    }
    Ok((after, Literal::Int(v)))
}

fn constraint(i: &str) -> PResult<'_, Constraint> {
    let i = ws(i);
    for c in [
        Constraint::Any,
        Constraint::Int,
        Constraint::Float,
        Constraint::Num,
    ] {
        if let Ok((rest, _)) = kw(c.name())(i) {
            return Ok((rest, c));
        }
    }
    fail(i, "a constraint (any, int, float, num)")
}

/// `T: num` pairs between `<` and `>`; an omitted constraint is `any`.
fn type_params(i: &str) -> PResult<'_, Vec<TypeParam>> {
    let Ok((mut i, _)) = sym("<")(i) else {
        return Ok((i, Vec::new()));
    };
    let mut params = Vec::new();
    loop {
        let (rest, name) = ident(i)?;
        let (rest, c) = match sym(":")(rest) {
            Ok((rest, _)) => constraint(rest)?,
            Err(_) => (rest, Constraint::Any),
        };
        params.push(TypeParam {
            name: name.to_owned(),
            constraint: c,
        });
        if params.len() > limits::MAX_TYPE_PARAMS {
            return fail(i, "fewer type parameters");
        }
        if let Ok((rest, _)) = sym(",")(rest) {
            i = rest;
        } else {
            let (rest, _) = sym(">")(rest)?;
            return Ok((rest, params));
        }
    }
}

/// A comma-separated list between `open` and `close`.
fn list<'a, T>(
    i: &'a str,
    open: &'static str,
    close: &'static str,
    mut item: impl FnMut(&'a str) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let (mut i, _) = sym(open)(i)?;
    let mut out = Vec::new();
    if let Ok((rest, _)) = sym(close)(i) {
        return Ok((rest, out));
    }
    loop {
        let (rest, v) = item(i)?;
        out.push(v);
        if out.len() > limits::MAX_OPERANDS {
            return fail(i, "fewer list elements");
        }
        // A trailing comma before the closing bracket is allowed.
        if let Ok((rest, _)) = sym(",")(rest) {
            if let Ok((rest, _)) = sym(close)(rest) {
                return Ok((rest, out));
            }
            i = rest;
        } else {
            let (rest, _) = sym(close)(rest)?;
            return Ok((rest, out));
        }
    }
}

/// A type in the scope of the given type parameters.
fn ty<'a>(i: &'a str, scope: &[TypeParam], depth: usize) -> PResult<'a, Type> {
    let i = ws(i);
    if depth > limits::MAX_TYPE_DEPTH {
        return fail(i, "a less deeply nested type");
    }
    let (rest, name) = ident(i).or_else(|_| fail(i, "a type"))?;
    if let Some(t) = crate::mangle::scalar(name) {
        return Ok((rest, t));
    }
    match name {
        "ptr" => {
            let (rest, _) = sym("<")(rest)?;
            let (rest, inner) = ty(rest, scope, depth + 1)?;
            let (rest, _) = sym(">")(rest)?;
            Ok((rest, inner.ptr_to()))
        }
        "fn" => {
            let (rest, sig) = signature(rest, scope, depth + 1)?;
            Ok((rest, Type::Fn(Box::new(sig))))
        }
        _ => {
            // `struct Name`: the struct, even where a type parameter has
            // that name (what the printer writes then).
            let (rest, name) = match (name, ident(rest)) {
                // A keyword of a type is no struct's name: written plainly
                // it would read back as that type.
                ("struct", Ok((_, keyword)))
                    if crate::mangle::scalar(keyword).is_some()
                        || matches!(keyword, "ptr" | "fn" | "struct") =>
                {
                    return fail(ws(rest), "a struct name (not a type keyword)");
                }
                ("struct", Ok((after, strukt))) => (after, strukt),
                _ => {
                    if let Some(k) = scope.iter().position(|p| p.name == name) {
                        let k = u32::try_from(k).unwrap_or(u32::MAX);
                        return Ok((rest, Type::Param(k)));
                    }
                    (rest, name)
                }
            };
            let (rest, args) = if sym("<")(rest).is_ok() {
                list(rest, "<", ">", |i| ty(i, scope, depth + 1))?
            } else {
                (rest, Vec::new())
            };
            Ok((
                rest,
                Type::Struct(Box::new(StructType {
                    name: name.to_owned(),
                    args,
                })),
            ))
        }
    }
}

/// `(A, B) -> R` after the `fn` keyword.
fn signature<'a>(i: &'a str, scope: &[TypeParam], depth: usize) -> PResult<'a, Signature> {
    let (rest, params) = list(i, "(", ")", |i| ty(i, scope, depth))?;
    let (rest, ret) = match sym("->")(rest) {
        Ok((rest, _)) => {
            let (rest, r) = ty(rest, scope, depth)?;
            (rest, Some(r))
        }
        Err(_) => (rest, None),
    };
    Ok((rest, Signature { params, ret }))
}

/// `: fn(…) -> …` after a call, optional.
fn call_sig<'a>(i: &'a str, scope: &[TypeParam]) -> PResult<'a, Option<Signature>> {
    let Ok((rest, _)) = sym(":")(i) else {
        return Ok((i, None));
    };
    let (rest, _) = kw("fn")(rest)?;
    let (rest, sig) = signature(rest, scope, 1)?;
    Ok((rest, Some(sig)))
}

/// `Owner::name` or `name`.
fn template_name(i: &str) -> PResult<'_, TemplateName> {
    let (rest, first) = ident(i)?;
    if let Ok((rest, _)) = sym("::")(rest) {
        let (rest, second) = ident(rest)?;
        return Ok((rest, TemplateName::method(first, second)));
    }
    Ok((rest, TemplateName::free(first)))
}

fn callee<'a>(i: &'a str, scope: &[TypeParam]) -> PResult<'a, Callee> {
    let i = ws(i);
    if i.starts_with('@') {
        let (rest, s) = symbol(i)?;
        return Ok((rest, Callee::Symbol(s.to_owned())));
    }
    if let Ok((rest, _)) = kw("native")(i) {
        let (rest, name) = ident(rest)?;
        return Ok((rest, Callee::Import(name.to_owned())));
    }
    let (rest, name) = template_name(i)?;
    let (rest, type_args) = if sym("<")(rest).is_ok() {
        list(rest, "<", ">", |i| ty(i, scope, 1))?
    } else {
        (rest, Vec::new())
    };
    Ok((rest, Callee::Template { name, type_args }))
}

/// How an operand after a struct's `field_addr` names the field.
#[derive(Debug)]
enum FieldRef<'a> {
    Name(&'a str),
    Index(u32),
}

/// An instruction as parsed: registers are still names.
struct RawInst<'a> {
    at: &'a str,
    result: Option<&'a str>,
    op: Op<&'a str>,
    field: Option<FieldRef<'a>>,
    sig_given: bool,
}

struct RawBlock<'a> {
    at: &'a str,
    label: &'a str,
    params: Vec<(&'a str, Type)>,
    insts: Vec<RawInst<'a>>,
    term_at: &'a str,
    term: Terminator<&'a str, &'a str>,
}

struct RawFunction<'a> {
    at: &'a str,
    header: Function,
    param_names: Vec<&'a str>,
    blocks: Vec<RawBlock<'a>>,
}

fn binop(word: &str) -> Option<BinOp> {
    Some(match word {
        "add" => BinOp::Add,
        "sub" => BinOp::Sub,
        "mul" => BinOp::Mul,
        "div" => BinOp::Div,
        "rem" => BinOp::Rem,
        "and" => BinOp::And,
        "or" => BinOp::Or,
        "xor" => BinOp::Xor,
        "shl" => BinOp::Shl,
        "shr" => BinOp::Shr,
        _ => return None,
    })
}

fn cmpop(word: &str) -> Option<CmpOp> {
    Some(match word {
        "eq" => CmpOp::Eq,
        "ne" => CmpOp::Ne,
        "lt" => CmpOp::Lt,
        "le" => CmpOp::Le,
        "gt" => CmpOp::Gt,
        "ge" => CmpOp::Ge,
        _ => return None,
    })
}

/// `[%index]` after an address, optional.
fn index_suffix(i: &str) -> PResult<'_, Option<&str>> {
    match sym("[")(i) {
        Ok((rest, _)) => {
            let (rest, r) = reg(rest)?;
            let (rest, _) = sym("]")(rest)?;
            Ok((rest, Some(r)))
        }
        Err(_) => Ok((i, None)),
    }
}

/// An operation as parsed, with how a `field_addr` names its field and
/// whether a call gave its signature.
type ParsedOp<'a> = (Op<&'a str>, Option<FieldRef<'a>>, bool);

/// The operation after `%r =` (or a statement without a result), tried
/// family by family.
fn op<'a>(i: &'a str, scope: &[TypeParam]) -> PResult<'a, ParsedOp<'a>> {
    let at = ws(i);
    let (i, word) = ident(at)?;
    for family in [value_op, memory_op, call_op, shared_op] {
        if let (rest, Some(parsed)) = family(word, i, scope)? {
            return Ok((rest, parsed));
        }
    }
    fail(at, "an instruction")
}

/// The operations that compute a value without memory or calls:
/// `const`, `neg`/`not`, `cmp`, `cast`/`bitcast`, `select` and the binary
/// operations; `None` for another word.
fn value_op<'a>(word: &str, i: &'a str, scope: &[TypeParam]) -> PResult<'a, Option<ParsedOp<'a>>> {
    let ty = |i| ty(i, scope, 1);
    let plain = |op| Some((op, None, false));
    Ok(match word {
        "const" => {
            let (i, t) = ty(i)?;
            let (i, value) = literal(i)?;
            (i, plain(Op::Const { ty: t, value }))
        }
        "neg" | "not" => {
            let op = if word == "neg" { UnOp::Neg } else { UnOp::Not };
            let (i, t) = ty(i)?;
            let (i, arg) = reg(i)?;
            (i, plain(Op::Unary { op, ty: t, arg }))
        }
        "cmp" => {
            let (i, c) = ident(i)?;
            let Some(op) = cmpop(c) else {
                return fail(ws(i), "a comparison (eq, ne, lt, le, gt, ge)");
            };
            let (i, t) = ty(i)?;
            let (i, lhs) = reg(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, rhs) = reg(i)?;
            (
                i,
                plain(Op::Cmp {
                    op,
                    ty: t,
                    lhs,
                    rhs,
                }),
            )
        }
        "cast" | "bitcast" => {
            let (i, from) = ty(i)?;
            let (i, arg) = reg(i)?;
            let (i, _) = kw("to")(i)?;
            let (i, to) = ty(i)?;
            let op = if word == "cast" {
                Op::Cast { from, to, arg }
            } else {
                Op::Bitcast { from, to, arg }
            };
            (i, plain(op))
        }
        "select" => {
            let (i, t) = ty(i)?;
            let (i, cond) = reg(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, if_true) = reg(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, if_false) = reg(i)?;
            (
                i,
                plain(Op::Select {
                    ty: t,
                    cond,
                    if_true,
                    if_false,
                }),
            )
        }
        _ => match binop(word) {
            Some(op) => {
                let (i, t) = ty(i)?;
                let (i, lhs) = reg(i)?;
                let (i, _) = sym(",")(i)?;
                let (i, rhs) = reg(i)?;
                (
                    i,
                    plain(Op::Binary {
                        op,
                        ty: t,
                        lhs,
                        rhs,
                    }),
                )
            }
            None => (i, None),
        },
    })
}

/// The operations on memory and its layout: `load`, `store`,
/// `elem_addr`, `field_addr`, `addr` and `size_of`/`align_of`; `None` for
/// another word.
fn memory_op<'a>(word: &str, i: &'a str, scope: &[TypeParam]) -> PResult<'a, Option<ParsedOp<'a>>> {
    let ty = |i| ty(i, scope, 1);
    let plain = |op| Some((op, None, false));
    Ok(match word {
        "load" => {
            let (i, t) = ty(i)?;
            let (i, addr) = reg(i)?;
            let (i, index) = index_suffix(i)?;
            (i, plain(Op::Load { ty: t, addr, index }))
        }
        "store" => {
            let (i, t) = ty(i)?;
            let (i, value) = reg(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, addr) = reg(i)?;
            let (i, index) = index_suffix(i)?;
            (
                i,
                plain(Op::Store {
                    ty: t,
                    addr,
                    index,
                    value,
                }),
            )
        }
        "elem_addr" => {
            let (i, elem) = ty(i)?;
            let (i, base) = reg(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, index) = reg(i)?;
            (i, plain(Op::ElemAddr { elem, base, index }))
        }
        "field_addr" => {
            let (i, t) = ty(i)?;
            let Type::Struct(strukt) = t else {
                return fail(ws(i), "a struct type before the pointer");
            };
            let (i, base) = reg(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, field) = match ident(i) {
                Ok((i, name)) => (i, FieldRef::Name(name)),
                Err(_) => {
                    let (i, k) = small_count(i)?;
                    (i, FieldRef::Index(k))
                }
            };
            (
                i,
                Some((
                    Op::FieldAddr {
                        strukt: *strukt,
                        field: 0,
                        base,
                    },
                    Some(field),
                    false,
                )),
            )
        }
        "addr" => {
            let (i, t) = ty(i)?;
            let (i, base) = reg(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, index) = match sym("_")(i) {
                Ok((i, _)) => (i, None),
                Err(_) => {
                    let (i, r) = reg(i)?;
                    (i, Some(r))
                }
            };
            let (i, _) = sym(",")(i)?;
            let (i, scale) = unsigned(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, disp) = integer(i)?;
            let scale = u64::try_from(scale).unwrap_or(u64::MAX);
            let Ok(disp) = i64::try_from(disp) else {
                return fail(ws(i), "a displacement in the i64 range");
            };
            (
                i,
                plain(Op::Addr {
                    ty: t,
                    base,
                    index,
                    scale,
                    disp,
                }),
            )
        }
        "size_of" | "align_of" => {
            let (i, t) = ty(i)?;
            let op = if word == "size_of" {
                Op::SizeOf { ty: t }
            } else {
                Op::AlignOf { ty: t }
            };
            (i, plain(op))
        }
        _ => (i, None),
    })
}

/// Calls and function addresses: `call`, `call_indirect` and
/// `func_addr`; `None` for another word.
fn call_op<'a>(word: &str, i: &'a str, scope: &[TypeParam]) -> PResult<'a, Option<ParsedOp<'a>>> {
    let plain = |op| Some((op, None, false));
    Ok(match word {
        "call" => {
            let (i, c) = callee(i, scope)?;
            let (i, args) = list(i, "(", ")", reg)?;
            let (i, sig) = call_sig(i, scope)?;
            let given = sig.is_some();
            (
                i,
                Some((
                    Op::Call {
                        callee: c,
                        sig: sig.unwrap_or_default(),
                        args,
                    },
                    None,
                    given,
                )),
            )
        }
        "call_indirect" => {
            let (i, target) = reg(i)?;
            let (i, args) = list(i, "(", ")", reg)?;
            let (i, sig) = call_sig(i, scope)?;
            let Some(sig) = sig else {
                return fail(ws(i), "`: fn(…)` giving the signature of an indirect call");
            };
            (i, plain(Op::CallIndirect { sig, target, args }))
        }
        "func_addr" => {
            let (i, c) = callee(i, scope)?;
            let (i, sig) = call_sig(i, scope)?;
            let given = sig.is_some();
            (
                i,
                Some((
                    Op::FuncAddr {
                        callee: c,
                        sig: sig.unwrap_or_default(),
                    },
                    None,
                    given,
                )),
            )
        }
        _ => (i, None),
    })
}

/// The operations on shared memories and tables: `mem_load`,
/// `mem_store`, `mem_size`, `mem_grow`, `table_get`, `table_set`,
/// `table_size`, `table_grow` and `call_table`; `None` for another word.
fn shared_op<'a>(word: &str, i: &'a str, scope: &[TypeParam]) -> PResult<'a, Option<ParsedOp<'a>>> {
    let plain = |op| Some((op, None, false));
    // `name, %reg`: the memory or table and one operand.
    let named_reg = |i: &'a str| -> PResult<'a, (String, &'a str)> {
        let (i, name) = ident(i)?;
        let (i, _) = sym(",")(i)?;
        let (i, r) = reg(i)?;
        Ok((i, (name.to_owned(), r)))
    };
    Ok(match word {
        "mem_load" => {
            let (i, t) = ty(i, scope, 1)?;
            let (i, (memory, offset)) = named_reg(i)?;
            (
                i,
                plain(Op::MemLoad {
                    ty: t,
                    memory,
                    offset,
                }),
            )
        }
        "mem_store" => {
            let (i, t) = ty(i, scope, 1)?;
            let (i, value) = reg(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, (memory, offset)) = named_reg(i)?;
            (
                i,
                plain(Op::MemStore {
                    ty: t,
                    memory,
                    offset,
                    value,
                }),
            )
        }
        "mem_size" | "table_size" => {
            let (i, name) = ident(i)?;
            let name = name.to_owned();
            let op = if word == "mem_size" {
                Op::MemSize { memory: name }
            } else {
                Op::TableSize { table: name }
            };
            (i, plain(op))
        }
        "mem_grow" => {
            let (i, (memory, delta)) = named_reg(i)?;
            (i, plain(Op::MemGrow { memory, delta }))
        }
        "table_grow" => {
            let (i, (table, delta)) = named_reg(i)?;
            (i, plain(Op::TableGrow { table, delta }))
        }
        "table_get" => {
            let (i, (table, index)) = named_reg(i)?;
            (i, plain(Op::TableGet { table, index }))
        }
        "table_set" => {
            let (i, (table, index)) = named_reg(i)?;
            let (i, _) = sym(",")(i)?;
            let (i, value) = reg(i)?;
            (
                i,
                plain(Op::TableSet {
                    table,
                    index,
                    value,
                }),
            )
        }
        "call_table" => {
            let (i, (table, index)) = named_reg(i)?;
            let (i, args) = list(i, "(", ")", reg)?;
            let (i, sig) = call_sig(i, scope)?;
            let given = sig.is_some();
            (
                i,
                Some((
                    Op::CallTable {
                        table,
                        sig: sig.unwrap_or_default(),
                        index,
                        args,
                    },
                    None,
                    given,
                )),
            )
        }
        _ => (i, None),
    })
}

fn block_call(i: &str) -> PResult<'_, BlockCall<&str, &str>> {
    let (i, block) = ident(i)?;
    let (i, args) = if sym("(")(i).is_ok() {
        list(i, "(", ")", reg)?
    } else {
        (i, Vec::new())
    };
    Ok((i, BlockCall { block, args }))
}

/// A terminator, or `None` (without consuming) when the line is not one.
fn terminator(i: &str) -> PResult<'_, Option<Terminator<&str, &str>>> {
    if let Ok((i, _)) = kw("br")(i) {
        let (i, t) = block_call(i)?;
        return Ok((i, Some(Terminator::Br(t))));
    }
    if let Ok((i, _)) = kw("cond_br")(i) {
        let (i, cond) = reg(i)?;
        let (i, _) = sym(",")(i)?;
        let (i, then) = block_call(i)?;
        let (i, _) = sym(",")(i)?;
        let (i, otherwise) = block_call(i)?;
        return Ok((
            i,
            Some(Terminator::CondBr {
                cond,
                then,
                otherwise,
            }),
        ));
    }
    if let Ok((i, _)) = kw("ret")(i) {
        if ws(i).starts_with('%') {
            let (i, r) = reg(i)?;
            return Ok((i, Some(Terminator::Ret(Some(r)))));
        }
        return Ok((i, Some(Terminator::Ret(None))));
    }
    if let Ok((i, _)) = kw("trap")(i) {
        if ws(i).starts_with(|c: char| c.is_ascii_digit()) {
            let (i, code) = small_count(i)?;
            return Ok((i, Some(Terminator::Trap(code))));
        }
        return Ok((i, Some(Terminator::Trap(0))));
    }
    Ok((i, None))
}

fn raw_block<'a>(i: &'a str, scope: &[TypeParam]) -> PResult<'a, RawBlock<'a>> {
    let at = ws(i);
    let (i, label) = ident(at)?;
    let (i, params) = if sym("(")(i).is_ok() {
        list(i, "(", ")", |i| {
            let (i, name) = reg(i)?;
            let (i, _) = sym(":")(i)?;
            let (i, t) = ty(i, scope, 1)?;
            Ok((i, (name, t)))
        })?
    } else {
        (i, Vec::new())
    };
    let (mut i, _) = sym(":")(i)?;
    let mut insts = Vec::new();
    loop {
        let term_at = ws(i);
        if let (rest, Some(term)) = terminator(term_at)? {
            return Ok((
                rest,
                RawBlock {
                    at,
                    label,
                    params,
                    insts,
                    term_at,
                    term,
                },
            ));
        }
        if insts.len() >= limits::MAX_INSTS {
            return fail(term_at, "fewer instructions");
        }
        let (rest, result) = if term_at.starts_with('%') {
            let (rest, r) = reg(term_at)?;
            let (rest, _) = sym("=")(rest)?;
            (rest, Some(r))
        } else {
            (term_at, None)
        };
        let (rest, (op, field, sig_given)) = op(rest, scope)?;
        insts.push(RawInst {
            at: term_at,
            result,
            op,
            field,
            sig_given,
        });
        i = rest;
    }
}

fn raw_function(i: &str) -> PResult<'_, RawFunction<'_>> {
    let at = ws(i);
    let (i, _) = kw("fn")(at)?;
    let (i, name) = template_name(i)?;
    let (i, type_params) = type_params(i)?;
    let (i, params) = list(i, "(", ")", |i| {
        let (i, n) = reg(i)?;
        let (i, _) = sym(":")(i)?;
        let (i, t) = ty(i, &type_params, 1)?;
        Ok((i, (n, t)))
    })?;
    let (i, ret) = match sym("->")(i) {
        Ok((i, _)) => {
            let (i, t) = ty(i, &type_params, 1)?;
            (i, Some(t))
        }
        Err(_) => (i, None),
    };
    let (mut i, _) = sym("{")(i)?;
    let mut blocks = Vec::new();
    loop {
        if let Ok((rest, _)) = sym("}")(i) {
            let (param_names, param_types) = params.into_iter().unzip();
            let sig = Signature {
                params: param_types,
                ret,
            };
            let header = Function {
                name,
                type_params,
                sig,
                blocks: Vec::new(),
            };
            return Ok((
                rest,
                RawFunction {
                    at,
                    header,
                    param_names,
                    blocks,
                },
            ));
        }
        if blocks.len() >= limits::MAX_BLOCKS {
            return fail(ws(i), "fewer blocks");
        }
        let (rest, b) = raw_block(i, &type_params)?;
        blocks.push(b);
        i = rest;
    }
}

fn struct_def(i: &str) -> PResult<'_, StructDef> {
    let (i, _) = kw("struct")(i)?;
    let (i, name) = ident(i)?;
    let (i, type_params) = type_params(i)?;
    let (i, fields) = list(i, "{", "}", |i| {
        let (i, f) = ident(i)?;
        let (i, _) = sym(":")(i)?;
        let (i, t) = ty(i, &type_params, 1)?;
        Ok((i, (f.to_owned(), t)))
    })?;
    Ok((
        i,
        StructDef {
            name: name.to_owned(),
            type_params,
            fields,
        },
    ))
}

/// `, initial[, maximum]` after a memory or table definition.
fn sizes(i: &str) -> PResult<'_, Linkage> {
    let count = |i| {
        let at = ws(i);
        let (i, n) = unsigned(i)?;
        match u64::try_from(n) {
            Ok(n) => Ok((i, n)),
            Err(_) => fail(at, "a size within u64"),
        }
    };
    let (i, initial) = count(i)?;
    let (i, maximum) = match sym(",")(i) {
        Ok((i, _)) => {
            let (i, m) = count(i)?;
            (i, Some(m))
        }
        Err(_) => (i, None),
    };
    Ok((i, Linkage::Define { initial, maximum }))
}

/// `[import] memory name[ initial[, maximum]]` or
/// `[import] table name fn(…) -> …[, initial[, maximum]]`.
fn shared_decl(i: &str, import: bool) -> PResult<'_, Item> {
    if let Ok((i, _)) = kw("memory")(i) {
        let (i, name) = ident(i)?;
        let (i, linkage) = if import {
            (i, Linkage::Import)
        } else {
            sizes(i)?
        };
        let name = name.to_owned();
        return Ok((i, Item::Memory(MemoryDecl { name, linkage })));
    }
    let (i, _) = kw("table")(i)?;
    let (i, name) = ident(i)?;
    let (i, _) = kw("fn")(i)?;
    let (i, sig) = signature(i, &[], 1)?;
    let (i, linkage) = if import {
        (i, Linkage::Import)
    } else {
        let (i, _) = sym(",")(i)?;
        sizes(i)?
    };
    let name = name.to_owned();
    Ok((i, Item::Table(TableDecl { name, sig, linkage })))
}

/// `import fn name(…) -> …`, `extern fn @name(…) -> …`, or a memory or
/// table imported or defined.
fn declaration(i: &str) -> PResult<'_, Item> {
    if kw("memory")(i).is_ok() || kw("table")(i).is_ok() {
        return shared_decl(i, false);
    }
    let (i, is_import) = match kw("import")(i) {
        Ok((i, _)) => (i, true),
        Err(_) => (kw("extern")(i)?.0, false),
    };
    if is_import && (kw("memory")(i).is_ok() || kw("table")(i).is_ok()) {
        return shared_decl(i, true);
    }
    let (i, _) = kw("fn")(i)?;
    let (i, name) = if is_import { ident(i)? } else { symbol(i)? };
    let (i, sig) = signature(i, &[], 1)?;
    let decl = Declaration {
        name: name.to_owned(),
        sig,
    };
    Ok((
        i,
        if is_import {
            Item::Import(decl)
        } else {
            Item::Extern(decl)
        },
    ))
}

enum RawItem<'a> {
    Function(RawFunction<'a>),
    Other(Item),
}

fn raw_items(mut i: &str) -> PResult<'_, Vec<RawItem<'_>>> {
    let mut items = Vec::new();
    loop {
        i = ws(i);
        if i.is_empty() {
            return Ok((i, items));
        }
        if items.len() >= limits::MAX_ITEMS {
            return fail(i, "fewer items");
        }
        let (rest, item) = if kw("fn")(i).is_ok() {
            let (rest, f) = raw_function(i)?;
            (rest, RawItem::Function(f))
        } else if kw("struct")(i).is_ok() {
            let (rest, s) = struct_def(i)?;
            (rest, RawItem::Other(Item::Struct(s)))
        } else if ["import", "extern", "memory", "table"]
            .iter()
            .any(|w| kw(w)(i).is_ok())
        {
            let (rest, d) = declaration(i)?;
            (rest, RawItem::Other(d))
        } else {
            return fail(i, "`fn`, `struct`, `import`, `extern`, `memory` or `table`");
        };
        items.push(item);
        i = rest;
    }
}

/// Line and column (both from 1) of `at`, a suffix of `text`.
fn position(text: &str, at: &str) -> Location {
    let offset = text.len().saturating_sub(at.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Location::Text { line, column }
}

/// Numbers a function's registers and blocks and fills in call signatures.
struct Names<'t, 'l> {
    text: &'t str,
    lib: &'l Library,
    regs: HashMap<&'t str, Reg>,
    labels: HashMap<&'t str, BlockId>,
}

impl<'t> Names<'t, '_> {
    fn err(&self, at: &'t str, kind: ErrorKind) -> Error {
        Error {
            kind,
            location: position(self.text, at),
        }
    }

    fn define(&mut self, name: &'t str, at: &'t str) -> Result<Reg, Error> {
        let next = u32::try_from(self.regs.len()).unwrap_or(u32::MAX);
        check_limit("register count", self.regs.len() + 1, limits::MAX_REGS)
            .map_err(|e| e.or_at(position(self.text, at)))?;
        if self.regs.insert(name, Reg(next)).is_some() {
            return Err(self.err(
                at,
                ErrorKind::Redefined {
                    what: "register",
                    name: format!("%{name}"),
                },
            ));
        }
        Ok(Reg(next))
    }

    fn use_reg(&self, name: &'t str, at: &'t str) -> Result<Reg, Error> {
        self.regs.get(name).copied().ok_or_else(|| {
            self.err(
                at,
                ErrorKind::Unknown {
                    what: "register",
                    name: format!("%{name}"),
                },
            )
        })
    }

    fn label(&self, name: &'t str, at: &'t str) -> Result<BlockId, Error> {
        self.labels.get(name).copied().ok_or_else(|| {
            self.err(
                at,
                ErrorKind::Unknown {
                    what: "label",
                    name: name.to_owned(),
                },
            )
        })
    }

    fn block_call(&self, t: BlockCall<&'t str, &'t str>, at: &'t str) -> Result<BlockCall, Error> {
        Ok(BlockCall {
            block: self.label(t.block, at)?,
            args: t
                .args
                .into_iter()
                .map(|r| self.use_reg(r, at))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The declared signature of a callee, in the caller's terms.
    fn declared_sig(&self, callee: &Callee, at: &'t str) -> Result<Signature, Error> {
        let unknown = |name: String| {
            self.err(
                at,
                ErrorKind::Unknown {
                    what: "callee",
                    name,
                },
            )
        };
        match callee {
            Callee::Template { name, type_args } => self
                .lib
                .function(name)
                .map(|f| f.sig.substitute(type_args))
                .ok_or_else(|| unknown(name.to_string())),
            Callee::Import(name) => self
                .lib
                .import(name)
                .map(|d| d.sig.clone())
                .ok_or_else(|| unknown(name.clone())),
            Callee::Symbol(name) => self
                .lib
                .extern_symbol(name)
                .map(|d| d.sig.clone())
                .ok_or_else(|| unknown(format!("@{name}"))),
        }
    }

    fn inst(&mut self, raw: RawInst<'t>) -> Result<Inst, Error> {
        let at = raw.at;
        let mut op = raw.op.map_regs(|r| self.use_reg(r, at))?;
        match &mut op {
            Op::FieldAddr { strukt, field, .. } => {
                *field =
                    match raw.field {
                        Some(FieldRef::Index(k)) => k,
                        Some(FieldRef::Name(name)) => {
                            let def = self.lib.struct_def(&strukt.name).ok_or_else(|| {
                                self.err(
                                    at,
                                    ErrorKind::Unknown {
                                        what: "struct",
                                        name: strukt.name.clone(),
                                    },
                                )
                            })?;
                            let k = def.fields.iter().position(|(f, _)| f == name).ok_or_else(
                                || {
                                    self.err(
                                        at,
                                        ErrorKind::Unknown {
                                            what: "field",
                                            name: name.to_owned(),
                                        },
                                    )
                                },
                            )?;
                            u32::try_from(k).unwrap_or(u32::MAX)
                        }
                        None => 0,
                    };
            }
            Op::Call { callee, sig, .. } | Op::FuncAddr { callee, sig } if !raw.sig_given => {
                *sig = self.declared_sig(callee, at)?;
            }
            Op::CallTable { table, sig, .. } if !raw.sig_given => {
                *sig = self
                    .lib
                    .table(table)
                    .map(|t| t.sig.clone())
                    .ok_or_else(|| {
                        self.err(
                            at,
                            ErrorKind::Unknown {
                                what: "table",
                                name: table.clone(),
                            },
                        )
                    })?;
            }
            _ => {}
        }
        Ok(Inst { result: None, op })
    }

    fn function(mut self, raw: RawFunction<'t>) -> Result<Function, Error> {
        for (k, b) in raw.blocks.iter().enumerate() {
            let id = BlockId(u32::try_from(k).unwrap_or(u32::MAX));
            if self.labels.insert(b.label, id).is_some() {
                return Err(self.err(
                    b.at,
                    ErrorKind::Redefined {
                        what: "label",
                        name: b.label.to_owned(),
                    },
                ));
            }
        }
        for name in &raw.param_names {
            self.define(name, raw.at)?;
        }
        // Registers are numbered by definition before any use is resolved, so
        // a block may use a value defined by a block printed after it.
        let mut blocks = Vec::new();
        let mut bodies = Vec::new();
        for b in raw.blocks {
            let params = b
                .params
                .into_iter()
                .map(|(n, t)| Ok((self.define(n, b.at)?, t)))
                .collect::<Result<Vec<_>, Error>>()?;
            let mut results = Vec::new();
            for inst in &b.insts {
                results.push(match inst.result {
                    Some(name) => Some(self.define(name, inst.at)?),
                    None => None,
                });
            }
            blocks.push(params);
            bodies.push((b.insts, results, b.term, b.term_at));
        }
        let mut out = Vec::new();
        for (params, (insts, results, term, term_at)) in blocks.into_iter().zip(bodies) {
            let mut body = Vec::new();
            for (raw_inst, result) in insts.into_iter().zip(results) {
                let at = raw_inst.at;
                let mut inst = self.inst(raw_inst)?;
                inst.result = result;
                if inst.op.has_result() != inst.result.is_some() {
                    let what = if inst.result.is_some() {
                        "produces no value to name"
                    } else {
                        "produces a value that must be named"
                    };
                    return Err(self.err(at, ErrorKind::ResultMismatch(what)));
                }
                body.push(inst);
            }
            let term = match term {
                Terminator::Br(t) => Terminator::Br(self.block_call(t, term_at)?),
                Terminator::CondBr {
                    cond,
                    then,
                    otherwise,
                } => Terminator::CondBr {
                    cond: self.use_reg(cond, term_at)?,
                    then: self.block_call(then, term_at)?,
                    otherwise: self.block_call(otherwise, term_at)?,
                },
                Terminator::Ret(v) => {
                    Terminator::Ret(v.map(|r| self.use_reg(r, term_at)).transpose()?)
                }
                Terminator::Trap(code) => Terminator::Trap(code),
            };
            out.push(Block {
                params,
                insts: body,
                term,
            });
        }
        Ok(Function {
            blocks: out,
            ..raw.header
        })
    }
}

/// Parses a whole library in the text form.
///
/// # Errors
///
/// [`ErrorKind::Syntax`] with line and column where the grammar fails,
/// [`ErrorKind::Unknown`] / [`ErrorKind::Redefined`] for names that do not
/// resolve, [`ErrorKind::DuplicateItem`] and [`ErrorKind::Limit`].
pub fn parse_library(text: &str) -> Result<Library, Error> {
    check_limit("text length", text.len(), limits::MAX_TEXT_LEN)?;
    let raw = match raw_items(text) {
        Ok((_, items)) => items,
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
            return Err(Error {
                kind: ErrorKind::Syntax(e.expected),
                location: position(text, e.at),
            });
        }
        Err(nom::Err::Incomplete(_)) => {
            return Err(Error {
                kind: ErrorKind::Syntax("more text".into()),
                location: position(text, ""),
            });
        }
    };
    // Headers first, so bodies can look up any callee's signature and any
    // struct's fields regardless of declaration order.
    let headers: Vec<Item> = raw
        .iter()
        .map(|r| match r {
            RawItem::Function(f) => Item::Function(f.header.clone()),
            RawItem::Other(item) => item.clone(),
        })
        .collect();
    let index = Library::new(headers)?;
    let mut items = Vec::new();
    for r in raw {
        items.push(match r {
            RawItem::Function(f) => {
                let names = Names {
                    text,
                    lib: &index,
                    regs: HashMap::new(),
                    labels: HashMap::new(),
                };
                Item::Function(names.function(f)?)
            }
            RawItem::Other(item) => item,
        });
    }
    Library::new(items)
}

/// Parses one type written in the text form, such as `Pair<i32, f64>`.
/// There are no type parameters in scope, so every name other than a
/// keyword is a struct.
///
/// # Errors
///
/// [`ErrorKind::Syntax`] when the text is not exactly one type.
pub fn parse_type(text: &str) -> Result<Type, Error> {
    let syntax = |e: PErr<'_>| Error {
        kind: ErrorKind::Syntax(e.expected),
        location: position(text, e.at),
    };
    match ty(text, &[], 1) {
        Ok((rest, t)) if ws(rest).is_empty() => Ok(t),
        Ok((rest, _)) => Err(syntax(PErr {
            at: ws(rest),
            expected: "the end of the type".into(),
        })),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(syntax(e)),
        Err(nom::Err::Incomplete(_)) => Err(syntax(PErr {
            at: "",
            expected: "a type".into(),
        })),
    }
}

/// Parses type arguments joined by commas (`i32,Pair<i32, f64>`), the
/// form of a `note.sdn` `type_args` cell; commas inside `<…>` or `(…)`
/// belong to the nested type.
///
/// # Errors
///
/// As [`parse_type`] for each argument.
pub fn parse_type_args(text: &str) -> Result<Vec<Type>, Error> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut depth = 0i64;
    let mut start = 0;
    for (k, c) in text.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(parse_type(text.get(start..k).unwrap_or(""))?);
                start = k + 1;
            }
            _ => {}
        }
    }
    out.push(parse_type(text.get(start..).unwrap_or(""))?);
    check_limit("type argument count", out.len(), limits::MAX_TYPE_PARAMS)?;
    Ok(out)
}
