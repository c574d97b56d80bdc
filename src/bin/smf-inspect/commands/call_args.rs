//! Typed arguments for `instantiate --call`: text in, interpreter values
//! out, with host buffers for `ptr<T>` parameters that outlive the call.
//!
//! A scalar parameter takes a literal of its type (`-3`, `0xff`, `2.5`,
//! `nan`, `true`). A `ptr<T>` parameter of a scalar `T` takes an array
//! `[1, 2, 3]`, copied into a buffer whose contents are printed again after
//! the call (so `sort` shows its effect), or `null`.

use anyhow::{Context, anyhow, bail};
use jit::interp::Value;
use jit::ir::{Signature, Type};

/// A buffer passed by pointer, and the element type to read it back with.
pub struct Buffer {
    /// Index of the parameter it was passed as.
    pub param: usize,
    /// Element type.
    pub elem: Type,
    /// Number of elements.
    pub len: usize,
    /// Storage in 8-byte words so every scalar element is aligned.
    words: Vec<u64>,
}

impl Buffer {
    fn new(param: usize, elem: Type, bytes: &[u8], len: usize) -> Self {
        let words = bytes
            .chunks(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect();
        Self {
            param,
            elem,
            len,
            words,
        }
    }

    /// Address of the first element (stable: the storage is never resized).
    pub fn address(&self) -> u64 {
        self.words.as_ptr() as u64
    }

    /// The elements as they are now.
    pub fn elements(&self) -> Vec<Value> {
        self.bytes()
            .chunks_exact(scalar_size(&self.elem))
            .filter_map(|chunk| decode(&self.elem, chunk))
            .collect()
    }

    /// The elements' bytes, little-endian, as the callee reads them.
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        bytes.truncate(self.len * scalar_size(&self.elem));
        bytes
    }

    /// Overwrites the elements with `bytes` (a copy that was passed
    /// elsewhere, such as a WebAssembly memory, and came back), in place:
    /// the address stays the same. Bytes past the buffer are ignored.
    pub fn set_bytes(&mut self, bytes: &[u8]) {
        let bytes = bytes
            .get(..self.len * scalar_size(&self.elem))
            .unwrap_or(bytes);
        for (word, chunk) in self.words.iter_mut().zip(bytes.chunks(8)) {
            let mut w = word.to_le_bytes();
            w[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_le_bytes(w);
        }
    }
}

/// The values to call with, and the buffers they point into.
pub struct CallArgs {
    /// One value per parameter.
    pub values: Vec<Value>,
    /// Buffers behind `ptr<T>` parameters.
    pub buffers: Vec<Buffer>,
}

/// Parses one text argument per parameter of `sig`.
///
/// # Errors
/// A wrong number of arguments, a literal that does not fit its type, or a
/// parameter type that cannot be given on a command line.
pub fn parse(sig: &Signature, raw: &[String]) -> anyhow::Result<CallArgs> {
    if raw.len() != sig.params.len() {
        bail!(
            "--call needs {} arguments for ({}), got {}",
            sig.params.len(),
            sig.params
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            raw.len()
        );
    }
    let mut args = CallArgs {
        values: Vec::new(),
        buffers: Vec::new(),
    };
    for (i, (ty, text)) in sig.params.iter().zip(raw).enumerate() {
        let what = || format!("argument {} ({ty})", i + 1);
        let value = match ty {
            Type::Ptr(_) | Type::RawPtr if text.trim() == "null" => Value::Ptr(0),
            Type::Ptr(elem) if is_scalar(elem) => {
                let inner = text
                    .trim()
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .ok_or_else(|| anyhow!("{}: write an array like [1, 2, 3] or null", what()))?;
                let mut bytes = Vec::new();
                let mut len = 0;
                for item in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let v = scalar(elem, item)
                        .with_context(|| format!("{}, element {}", what(), len + 1))?;
                    bytes.extend_from_slice(&encode(&v));
                    len += 1;
                }
                let buffer = Buffer::new(i, (**elem).clone(), &bytes, len);
                let address = buffer.address();
                args.buffers.push(buffer);
                Value::Ptr(address)
            }
            t if is_scalar(t) => scalar(t, text.trim()).with_context(what)?,
            _ => bail!(
                "{}: only scalars, arrays of scalars and null can be given on the command line",
                what()
            ),
        };
        args.values.push(value);
    }
    Ok(args)
}

fn is_scalar(ty: &Type) -> bool {
    matches!(ty, Type::Int(_) | Type::F32 | Type::F64 | Type::Bool)
}

fn scalar_size(ty: &Type) -> usize {
    usize::try_from(ty.scalar_size().unwrap_or(8)).unwrap_or(8)
}

/// A literal of scalar type `ty`.
fn scalar(ty: &Type, text: &str) -> anyhow::Result<Value> {
    Ok(match ty {
        Type::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => bail!("'{text}' is not true or false"),
        },
        Type::F32 => Value::F32(
            text.parse::<f32>()
                .map_err(|_| anyhow!("'{text}' is not an f32"))?,
        ),
        Type::F64 => Value::F64(
            text.parse::<f64>()
                .map_err(|_| anyhow!("'{text}' is not an f64"))?,
        ),
        Type::Int(t) => {
            let n = parse_int(text).ok_or_else(|| anyhow!("'{text}' is not an integer"))?;
            let out_of_range = || anyhow!("{text} does not fit in {}", t.name());
            match t.name() {
                "i8" => Value::I8(i8::try_from(n).map_err(|_| out_of_range())?),
                "i16" => Value::I16(i16::try_from(n).map_err(|_| out_of_range())?),
                "i32" => Value::I32(i32::try_from(n).map_err(|_| out_of_range())?),
                "i64" => Value::I64(i64::try_from(n).map_err(|_| out_of_range())?),
                "u8" => Value::U8(u8::try_from(n).map_err(|_| out_of_range())?),
                "u16" => Value::U16(u16::try_from(n).map_err(|_| out_of_range())?),
                "u32" => Value::U32(u32::try_from(n).map_err(|_| out_of_range())?),
                _ => Value::U64(u64::try_from(n).map_err(|_| out_of_range())?),
            }
        }
        other => bail!("{other} is not a scalar"),
    })
}

fn parse_int(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i128>().ok()?,
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Little-endian bytes of a scalar value.
fn encode(v: &Value) -> Vec<u8> {
    match *v {
        Value::I8(x) => x.to_le_bytes().to_vec(),
        Value::I16(x) => x.to_le_bytes().to_vec(),
        Value::I32(x) => x.to_le_bytes().to_vec(),
        Value::I64(x) => x.to_le_bytes().to_vec(),
        Value::U8(x) => x.to_le_bytes().to_vec(),
        Value::U16(x) => x.to_le_bytes().to_vec(),
        Value::U32(x) => x.to_le_bytes().to_vec(),
        Value::U64(x) | Value::Ptr(x) => x.to_le_bytes().to_vec(),
        Value::F32(x) => x.to_le_bytes().to_vec(),
        Value::F64(x) => x.to_le_bytes().to_vec(),
        Value::Bool(x) => vec![u8::from(x)],
    }
}

/// The first `N` bytes of `bytes` as an array.
fn le<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    bytes.get(..N)?.try_into().ok()
}

/// The scalar of type `ty` at the start of `bytes`.
fn decode(ty: &Type, bytes: &[u8]) -> Option<Value> {
    Some(match ty {
        Type::Bool => Value::Bool(*bytes.first()? != 0),
        Type::F32 => Value::F32(f32::from_le_bytes(le(bytes)?)),
        Type::F64 => Value::F64(f64::from_le_bytes(le(bytes)?)),
        Type::Int(t) => match t.name() {
            "i8" => Value::I8(i8::from_le_bytes(le(bytes)?)),
            "i16" => Value::I16(i16::from_le_bytes(le(bytes)?)),
            "i32" => Value::I32(i32::from_le_bytes(le(bytes)?)),
            "i64" => Value::I64(i64::from_le_bytes(le(bytes)?)),
            "u8" => Value::U8(u8::from_le_bytes(le(bytes)?)),
            "u16" => Value::U16(u16::from_le_bytes(le(bytes)?)),
            "u32" => Value::U32(u32::from_le_bytes(le(bytes)?)),
            _ => Value::U64(u64::from_le_bytes(le(bytes)?)),
        },
        _ => return None,
    })
}

/// A value as the user would write it.
pub fn show(v: &Value) -> String {
    match v {
        Value::I8(x) => x.to_string(),
        Value::I16(x) => x.to_string(),
        Value::I32(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::U8(x) => x.to_string(),
        Value::U16(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::F32(x) => format!("{x:?}"),
        Value::F64(x) => format!("{x:?}"),
        Value::Bool(x) => x.to_string(),
        Value::Ptr(x) => format!("{x:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(params: &[&str]) -> Signature {
        Signature {
            params: params
                .iter()
                .map(|p| jit::text::parse_type(p).unwrap())
                .collect(),
            ret: None,
        }
    }

    #[test]
    fn scalars_at_their_limits() {
        let s = sig(&["i8", "u8", "i64", "u64", "f32", "bool"]);
        let raw: Vec<String> = [
            "-128",
            "255",
            "-0x8000000000000000",
            "18446744073709551615",
            "nan",
            "true",
        ]
        .map(String::from)
        .to_vec();
        let args = parse(&s, &raw).unwrap();
        assert_eq!(args.values[0], Value::I8(-128));
        assert_eq!(args.values[1], Value::U8(255));
        assert_eq!(args.values[2], Value::I64(i64::MIN));
        assert_eq!(args.values[3], Value::U64(u64::MAX));
        assert!(matches!(args.values[4], Value::F32(x) if x.is_nan()));
        assert_eq!(args.values[5], Value::Bool(true));
        for (ty, text) in [
            ("i8", "128"),
            ("u8", "-1"),
            ("u64", "18446744073709551616"),
            ("bool", "1"),
        ] {
            assert!(
                parse(&sig(&[ty]), &[text.to_owned()]).is_err(),
                "{ty} {text}"
            );
        }
    }

    #[test]
    fn arrays_round_trip_through_their_buffer() {
        let s = sig(&["ptr<i16>", "i64"]);
        let args = parse(&s, &["[3, -1, 32767]".to_owned(), "3".to_owned()]).unwrap();
        assert_eq!(args.buffers.len(), 1);
        let b = &args.buffers[0];
        assert_eq!(args.values[0], Value::Ptr(b.address()));
        assert_eq!(
            b.elements(),
            vec![Value::I16(3), Value::I16(-1), Value::I16(32767)]
        );
        let mut copy = parse(&s, &["[0, 0, 0]".to_owned(), "3".to_owned()]).unwrap();
        copy.buffers[0].set_bytes(&b.bytes());
        assert_eq!(copy.buffers[0].elements(), b.elements(), "bytes round trip");
        let empty = parse(&s, &["[]".to_owned(), "0".to_owned()]).unwrap();
        assert!(empty.buffers[0].elements().is_empty());
        assert_eq!(
            parse(&s, &["null".to_owned(), "0".to_owned()])
                .unwrap()
                .values[0],
            Value::Ptr(0)
        );
        assert!(parse(&s, &["[1, x]".to_owned(), "2".to_owned()]).is_err());
        assert!(parse(&s, &["1".to_owned()]).is_err(), "argument count");
    }
}
