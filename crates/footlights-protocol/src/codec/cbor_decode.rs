//! CBOR → [`Value`], accepting anything cbor-x (or any other encoder) writes.
//!
//! - Non-minimal length headers and indefinite lengths are accepted.
//! - Integers of 4 bytes or fewer become [`Value::Int`]; `0x1b`/`0x3b` integers and bignums
//!   (tags 2 and 3) become [`Value::BigInt`], as cbor-x reads them.
//! - Half, single and double floats become [`Value::Float`].
//! - Maps whose keys are all text become [`Value::Object`] (a repeated key keeps its first
//!   position and its last value); other maps become [`Value::Map`].
//! - Tag 1 is a date, tag 258 a set, tags 64–87 (typed arrays) over a byte string are bytes.
//!   Other tags are ignored and their content is used.
//! - Simple value 23 is [`Value::Undefined`]; other unassigned simple values are errors.
//! - In the compat dialect, `$`-tagged arrays are revived (§3.4).
//!
//! The decoder never panics, nests at most [`MAX_DEPTH`] levels, and never reserves memory from
//! a length it has not checked against the bytes actually present.

use super::Dialect;
use super::cbor::{TAG_DATE_EPOCH, TAG_NEGATIVE_BIGNUM, TAG_POSITIVE_BIGNUM, TAG_SET};
use super::compat::{ObjectBuilder, revive_array};
use super::error::CodecError;
use crate::value::Value;

/// How deeply arrays, maps and tags may nest.
pub(crate) const MAX_DEPTH: usize = 128;

const BREAK: u8 = 0xff;
const TYPED_ARRAY_TAGS: std::ops::RangeInclusive<u64> = 64..=87;

/// Decodes exactly one CBOR document; trailing bytes are an error.
pub(crate) fn decode_value(bytes: &[u8], dialect: Dialect) -> Result<Value, CodecError> {
    let mut decoder = Decoder {
        input: bytes,
        pos: 0,
        revive: dialect == Dialect::Compat,
    };
    let value = decoder.value(0, true)?;
    match bytes.len() - decoder.pos {
        0 => Ok(value),
        count => Err(CodecError::TrailingBytes { count }),
    }
}

struct Decoder<'a> {
    input: &'a [u8],
    /// Index of the next unread byte; never beyond `input.len()`.
    pos: usize,
    /// Whether `$`-tagged arrays are revived (compat dialect).
    revive: bool,
}

impl<'a> Decoder<'a> {
    fn error(&self, reason: &'static str) -> CodecError {
        CodecError::Cbor {
            offset: self.pos,
            reason,
        }
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        let b = *self
            .input
            .get(self.pos)
            .ok_or_else(|| self.error("truncated input"))?;
        self.pos += 1;
        Ok(b)
    }

    fn peek(&self) -> Result<u8, CodecError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.error("truncated input"))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], CodecError> {
        let slice = usize::try_from(len)
            .ok()
            .and_then(|len| self.input.get(self.pos..self.pos.checked_add(len)?))
            .ok_or_else(|| self.error("length runs past the end of the input"))?;
        self.pos += slice.len();
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let bytes = self.take(N as u64)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// The argument of a head: `Some(n)`, or `None` for an indefinite length (info 31).
    fn argument(&mut self, info: u8) -> Result<Option<u64>, CodecError> {
        Ok(Some(match info {
            0..=23 => u64::from(info),
            24 => u64::from(self.byte()?),
            25 => u64::from(u16::from_be_bytes(self.array()?)),
            26 => u64::from(u32::from_be_bytes(self.array()?)),
            27 => u64::from_be_bytes(self.array()?),
            31 => return Ok(None),
            _ => return Err(self.error("reserved additional information")),
        }))
    }

    fn definite(&mut self, info: u8) -> Result<u64, CodecError> {
        self.argument(info)?
            .ok_or_else(|| self.error("indefinite length not allowed here"))
    }

    /// Capacity to reserve for `count` items of at least `min_size` bytes each: bounded by the
    /// input left and by a small constant, because up to [`MAX_DEPTH`] nested containers may
    /// each reserve at once before any item is read.
    fn capacity(&self, count: u64, min_size: usize) -> usize {
        const MAX_RESERVE: usize = 256;
        usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(self.remaining() / min_size)
            .min(MAX_RESERVE)
    }

    /// One data item. `revivable` is false only for the content of a set tag, which is not a
    /// user array (its elements still are revived).
    fn value(&mut self, depth: usize, revivable: bool) -> Result<Value, CodecError> {
        let initial = self.byte()?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        match major {
            0 => {
                let n = self.definite(info)?;
                Ok(if info == 27 {
                    Value::BigInt(i128::from(n))
                } else {
                    // invariant: info <= 26, so n < 2^32.
                    Value::Int(n as i64)
                })
            }
            1 => {
                let n = self.definite(info)?;
                Ok(if info == 27 {
                    Value::BigInt(-1 - i128::from(n))
                } else {
                    // invariant: info <= 26, so n < 2^32 and -1 - n fits.
                    Value::Int(-1 - n as i64)
                })
            }
            2 => self.string(info, 2).map(Value::Bytes),
            3 => {
                let bytes = self.string(info, 3)?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| self.error("text is not valid utf-8"))
            }
            4 => {
                let items = self.items(info, depth)?;
                if self.revive && revivable {
                    revive_array(items)
                } else {
                    Ok(Value::Array(items))
                }
            }
            5 => self.map(info, depth),
            6 => {
                let tag = self.definite(info)?;
                self.tagged(tag, depth)
            }
            _ => self.simple(info),
        }
    }

    /// A byte or text string (`major` 2 or 3), definite or chunked.
    fn string(&mut self, info: u8, major: u8) -> Result<Vec<u8>, CodecError> {
        if let Some(len) = self.argument(info)? {
            return Ok(self.take(len)?.to_vec());
        }
        let mut out = Vec::new();
        loop {
            let head = self.byte()?;
            if head == BREAK {
                return Ok(out);
            }
            if head >> 5 != major {
                return Err(self.error("chunk of the wrong type in an indefinite string"));
            }
            let len = self.definite(head & 0x1f)?;
            let chunk = self.take(len)?;
            if major == 3 && std::str::from_utf8(chunk).is_err() {
                return Err(self.error("text is not valid utf-8"));
            }
            out.extend_from_slice(chunk);
        }
    }

    fn enter(&self, depth: usize) -> Result<usize, CodecError> {
        if depth >= MAX_DEPTH {
            Err(CodecError::TooDeep { limit: MAX_DEPTH })
        } else {
            Ok(depth + 1)
        }
    }

    fn items(&mut self, info: u8, depth: usize) -> Result<Vec<Value>, CodecError> {
        let inner = self.enter(depth)?;
        match self.argument(info)? {
            Some(count) => {
                let mut items = Vec::with_capacity(self.capacity(count, 1));
                for _ in 0..count {
                    items.push(self.value(inner, true)?);
                }
                Ok(items)
            }
            None => {
                let mut items = Vec::new();
                while self.peek()? != BREAK {
                    items.push(self.value(inner, true)?);
                }
                self.pos += 1;
                Ok(items)
            }
        }
    }

    fn map(&mut self, info: u8, depth: usize) -> Result<Value, CodecError> {
        let inner = self.enter(depth)?;
        let mut entries = Vec::new();
        match self.argument(info)? {
            Some(count) => {
                entries.reserve(self.capacity(count, 2));
                for _ in 0..count {
                    let key = self.value(inner, true)?;
                    entries.push((key, self.value(inner, true)?));
                }
            }
            None => {
                while self.peek()? != BREAK {
                    let key = self.value(inner, true)?;
                    entries.push((key, self.value(inner, true)?));
                }
                self.pos += 1;
            }
        }
        if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
            let mut object = ObjectBuilder::default();
            for (key, value) in entries {
                if let Value::String(key) = key {
                    object.push(key, value);
                }
            }
            Ok(object.finish())
        } else {
            Ok(Value::Map(entries))
        }
    }

    fn tagged(&mut self, tag: u64, depth: usize) -> Result<Value, CodecError> {
        let inner = self.enter(depth)?;
        let content = self.value(inner, tag != TAG_SET)?;
        match (tag, content) {
            (TAG_DATE_EPOCH, Value::Int(s)) => Ok(Value::Date(s as f64 * 1000.0)),
            (TAG_DATE_EPOCH, Value::BigInt(s)) => Ok(Value::Date(s as f64 * 1000.0)),
            (TAG_DATE_EPOCH, Value::Float(s)) => Ok(Value::Date(seconds_to_ms(s))),
            (TAG_DATE_EPOCH, _) => Err(self.error("tag 1 needs a number")),
            (TAG_POSITIVE_BIGNUM | TAG_NEGATIVE_BIGNUM, Value::Bytes(b)) => {
                let magnitude = bignum_magnitude(&b)
                    .ok_or_else(|| self.error("bignum does not fit in 128 bits"))?;
                if tag == TAG_POSITIVE_BIGNUM {
                    Ok(Value::BigInt(magnitude))
                } else {
                    Ok(Value::BigInt(-1 - magnitude))
                }
            }
            (TAG_POSITIVE_BIGNUM | TAG_NEGATIVE_BIGNUM, _) => {
                Err(self.error("bignum tag needs a byte string"))
            }
            (TAG_SET, Value::Array(items)) => Ok(Value::Set(items)),
            (TAG_SET, _) => Err(self.error("set tag needs an array")),
            (t, bytes @ Value::Bytes(_)) if TYPED_ARRAY_TAGS.contains(&t) => Ok(bytes),
            (_, content) => Ok(content),
        }
    }

    fn simple(&mut self, info: u8) -> Result<Value, CodecError> {
        match info {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 => Ok(Value::Null),
            23 => Ok(Value::Undefined),
            25 => Ok(Value::Float(f16_to_f64(u16::from_be_bytes(self.array()?)))),
            26 => Ok(Value::Float(f64::from(f32::from_be_bytes(self.array()?)))),
            27 => Ok(Value::Float(f64::from_be_bytes(self.array()?))),
            31 => Err(self.error("unexpected break")),
            _ => Err(self.error("unsupported simple value")),
        }
    }
}

/// The value of a bignum's big-endian magnitude, if it fits in an `i128`.
fn bignum_magnitude(bytes: &[u8]) -> Option<i128> {
    let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    if significant.len() > 16 {
        return None;
    }
    let magnitude = significant
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    i128::try_from(magnitude).ok()
}

/// Seconds (as a float) to milliseconds. JavaScript dates are whole milliseconds, so the result
/// is rounded: this also removes the float noise of the division by 1000 on the other side.
fn seconds_to_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round()
}

/// IEEE 754 half precision to double.
fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    let magnitude = match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + fraction / 1024.0) * 2f64.powi(exponent - 15),
    };
    sign * magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    fn dec(s: &str) -> Value {
        decode_value(&unhex(s), Dialect::Compat).unwrap()
    }

    #[test]
    fn integers_follow_cbor_x() {
        assert_eq!(dec("1b 00 00 00 00 00 00 00 05"), Value::BigInt(5));
        assert_eq!(dec("1a 00 00 00 05"), Value::Int(5));
        assert_eq!(dec("3a ff ff ff ff"), Value::Int(-(1 << 32)));
        assert_eq!(dec("3b ff ff ff ff ff ff ff ff"), Value::BigInt(-(1 << 64)));
        assert_eq!(dec("c2 42 01 00"), Value::BigInt(256));
        assert_eq!(dec("c3 40"), Value::BigInt(-1));
        let max = format!("c2 50 {}", ["ff"; 16].join(" "));
        assert!(decode_value(&unhex(&max), Dialect::Native).is_err());
    }

    #[test]
    fn floats_of_every_width() {
        assert_eq!(dec("f9 3c 00"), Value::Float(1.0));
        assert_eq!(dec("f9 00 01"), Value::Float(5.960_464_477_539_063e-8));
        assert_eq!(dec("f9 fc 00"), Value::Float(f64::NEG_INFINITY));
        assert!(matches!(dec("f9 7e 00"), Value::Float(f) if f.is_nan()));
        assert_eq!(dec("fa 3f c0 00 00"), Value::Float(1.5));
        assert_eq!(dec("fb 3f f8 00 00 00 00 00 00"), Value::Float(1.5));
    }

    #[test]
    fn non_minimal_and_indefinite_forms() {
        let obj = Value::Object(vec![("a".into(), Value::Int(1))]);
        assert_eq!(dec("b9 00 01 61 61 01"), obj);
        assert_eq!(dec("bf 61 61 01 ff"), obj);
        assert_eq!(dec("7f 61 61 62 62 63 ff"), Value::String("abc".into()));
        assert_eq!(dec("5f 41 01 ff"), Value::Bytes(vec![1]));
        assert_eq!(
            dec("9f 01 9f ff ff"),
            Value::Array(vec![Value::Int(1), Value::Array(vec![])])
        );
        assert_eq!(dec("18 05"), Value::Int(5));
    }

    #[test]
    fn tags_and_simple_values() {
        assert_eq!(dec("d8 40 42 01 02"), Value::Bytes(vec![1, 2]));
        assert_eq!(dec("d9 01 02 81 01"), Value::Set(vec![Value::Int(1)]));
        assert_eq!(dec("c1 1a 65 53 f1 00"), Value::Date(1_700_000_000_000.0));
        assert_eq!(dec("c1 fb 3f f8 00 00 00 00 00 00"), Value::Date(1500.0));
        assert_eq!(dec("c0 61 78"), Value::String("x".into()));
        assert_eq!(dec("f7"), Value::Undefined);
        assert_eq!(
            dec("a1 01 02"),
            Value::Map(vec![(Value::Int(1), Value::Int(2))])
        );
    }

    #[test]
    fn compat_reviving_is_per_dialect() {
        let bytes = unhex("82 63 24 24 61 01");
        assert_eq!(
            decode_value(&bytes, Dialect::Compat).unwrap(),
            Value::Array(vec!["$a".into(), Value::Int(1)])
        );
        assert_eq!(
            decode_value(&bytes, Dialect::Native).unwrap(),
            Value::Array(vec!["$$a".into(), Value::Int(1)])
        );
        let big = unhex("82 67 24 42 69 67 49 6e 74 61 37");
        assert_eq!(
            decode_value(&big, Dialect::Compat).unwrap(),
            Value::BigInt(7)
        );
        let unknown = unhex("82 62 24 78 01");
        assert!(matches!(
            decode_value(&unknown, Dialect::Compat),
            Err(CodecError::UnknownTag(_))
        ));
        // A set's own array is not revived, its elements are.
        assert_eq!(
            dec("d9 01 02 82 62 24 61 01"),
            Value::Set(vec!["$a".into(), Value::Int(1)])
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            "",
            "1b 00",
            "5a ff ff ff ff",
            "7b ff ff ff ff ff ff ff ff",
            "9b ff ff ff ff ff ff ff ff",
            "62 c3 28",
            "1c",
            "ff",
            "f8 20",
            "f0",
            "9f 01",
            "5f 61 61 ff",
            "c1 61 61",
            "d9 01 02 01",
            "01 02",
            "3f",
        ] {
            assert!(
                decode_value(&unhex(bad), Dialect::Compat).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn depth_is_limited() {
        let mut ok = vec![0x81; MAX_DEPTH];
        ok.push(0x01);
        assert!(decode_value(&ok, Dialect::Native).is_ok());
        let mut deep = vec![0x81; MAX_DEPTH + 1];
        deep.push(0x01);
        assert!(matches!(
            decode_value(&deep, Dialect::Native),
            Err(CodecError::TooDeep { limit: MAX_DEPTH })
        ));
        // Huge claimed lengths at every level reserve little memory and then fail.
        let claims: Vec<u8> = [0x9a, 0xff, 0xff, 0xff, 0xff].repeat(MAX_DEPTH);
        assert!(decode_value(&claims, Dialect::Native).is_err());
        let tags = vec![0xc6; 100_000];
        assert!(matches!(
            decode_value(&tags, Dialect::Native),
            Err(CodecError::TooDeep { .. })
        ));
    }
}
