//! [`Value`] → CBOR, written the way JavaScript's cbor-x would write the same JS value (§3.3).
//!
//! The rules that matter to a browser:
//! - integers in [-2^32, 2^32) are CBOR integers (cbor-x reads them as `number`);
//! - other integers with |n| ≤ 2^53 are float64, as JavaScript itself writes them;
//! - [`Value::BigInt`] is always `0x1b`/`0x3b` + 8 bytes (cbor-x reads only that form as a
//!   `BigInt`), or a bignum tag (2/3) beyond 64 bits; a [`Value::Int`] beyond ±2^53 is written
//!   the same way so that no precision is lost;
//! - protocol ids are `0x1b` + 8 bytes, `null` is `0xf6`;
//! - floats are always float64 (NaN and infinities included: CBOR can carry them);
//! - bytes are a plain byte string (no typed-array tag), a set is tag 258, a date is tag 1 with
//!   seconds since the epoch;
//! - in the compat dialect, a user array of two elements starting with a `$`-string gets one
//!   more `$` (§3.4); in the native dialect nothing is escaped.
//!
//! Lengths use the shortest header. Decoding lives in `cbor_decode`.

use super::Dialect;
use super::compat::needs_escape;
use super::node::Node;
use crate::value::Value;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;

pub(crate) const TAG_DATE_EPOCH: u64 = 1;
pub(crate) const TAG_POSITIVE_BIGNUM: u64 = 2;
pub(crate) const TAG_NEGATIVE_BIGNUM: u64 = 3;
pub(crate) const TAG_SET: u64 = 258;

const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;
const UNDEFINED: u8 = 0xf7;
const FLOAT64: u8 = 0xfb;

/// 2^32: the first integer cbor-x would not write as a short CBOR integer.
const SHORT_INT_LIMIT: i64 = 1 << 32;
/// 2^53: the largest magnitude up to which every integer is exact in a float64.
const SAFE_INT_LIMIT: i64 = 1 << 53;
/// The largest magnitude of a valid JavaScript date, in milliseconds.
const MAX_DATE_MS: f64 = 8.64e15;

/// Encodes one value as a CBOR document.
pub(crate) fn encode_value(value: &Value, dialect: Dialect) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value, dialect);
    out
}

/// Encodes a list of values as one CBOR array document (arguments in BARE bodies).
pub(crate) fn encode_args(items: &[Value], dialect: Dialect) -> Vec<u8> {
    let mut out = Vec::new();
    write_array(&mut out, items, dialect);
    out
}

/// Appends one value.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value, dialect: Dialect) {
    match value {
        Value::Null => out.push(NULL),
        Value::Undefined => out.push(UNDEFINED),
        Value::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Value::Int(i) => write_int(out, *i),
        Value::Float(f) => write_f64(out, *f),
        Value::BigInt(i) => write_bigint(out, *i),
        Value::String(s) => write_text(out, s),
        Value::Bytes(b) => {
            write_head(out, MAJOR_BYTES, len_u64(b.len()));
            out.extend_from_slice(b);
        }
        Value::Array(items) => write_array(out, items, dialect),
        Value::Object(fields) => {
            write_head(out, MAJOR_MAP, len_u64(fields.len()));
            for (k, v) in fields {
                write_text(out, k);
                write_value(out, v, dialect);
            }
        }
        Value::Map(entries) => {
            write_head(out, MAJOR_MAP, len_u64(entries.len()));
            for (k, v) in entries {
                write_value(out, k, dialect);
                write_value(out, v, dialect);
            }
        }
        Value::Set(items) => {
            write_head(out, MAJOR_TAG, TAG_SET);
            // The set itself is not a user array, so it is never escaped; its elements are.
            write_array_raw(out, items, None, dialect);
        }
        Value::Date(ms) => {
            write_head(out, MAJOR_TAG, TAG_DATE_EPOCH);
            let whole_seconds = ms.fract() == 0.0 && ms % 1000.0 == 0.0 && ms.abs() <= MAX_DATE_MS;
            if whole_seconds {
                // invariant: |ms / 1000| <= 8.64e12, an exact integer well inside i64.
                write_int(out, (ms / 1000.0) as i64);
            } else {
                write_f64(out, ms / 1000.0);
            }
        }
    }
}

/// Appends a user array, escaping it in the compat dialect.
fn write_array(out: &mut Vec<u8>, items: &[Value], dialect: Dialect) {
    let escaped = match dialect {
        Dialect::Compat => needs_escape(items),
        Dialect::Native => None,
    };
    write_array_raw(out, items, escaped, dialect);
}

fn write_array_raw(out: &mut Vec<u8>, items: &[Value], escaped: Option<&str>, dialect: Dialect) {
    write_head(out, MAJOR_ARRAY, len_u64(items.len()));
    for (i, item) in items.iter().enumerate() {
        match (i, escaped) {
            (0, Some(marker)) => {
                write_head(out, MAJOR_TEXT, len_u64(marker.len() + 1));
                out.push(b'$');
                out.extend_from_slice(marker.as_bytes());
            }
            _ => write_value(out, item, dialect),
        }
    }
}

/// Appends the envelope tree of a message.
pub(crate) fn write_node(out: &mut Vec<u8>, node: &Node<'_>, dialect: Dialect) {
    match node {
        Node::Object(fields) => {
            write_head(out, MAJOR_MAP, len_u64(fields.len()));
            for (k, v) in fields {
                write_text(out, k);
                write_node(out, v, dialect);
            }
        }
        Node::Str(s) => write_text(out, s),
        Node::Id(id) => write_u64_full(out, MAJOR_UNSIGNED, *id),
        Node::Number(n) => match i64::try_from(*n) {
            Ok(n) => write_int(out, n),
            Err(_) => write_u64_full(out, MAJOR_UNSIGNED, *n),
        },
        Node::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Node::Null => out.push(NULL),
        Node::Value(v) => write_value(out, v, dialect),
        Node::Args(items) => write_array(out, items, dialect),
    }
}

/// An integer as JavaScript + cbor-x would write the same `number` (see the module docs).
fn write_int(out: &mut Vec<u8>, n: i64) {
    if (-SHORT_INT_LIMIT..SHORT_INT_LIMIT).contains(&n) {
        if n >= 0 {
            write_head(out, MAJOR_UNSIGNED, n.unsigned_abs());
        } else {
            // `!n` is `-1 - n`, the CBOR encoding of a negative integer.
            write_head(out, MAJOR_NEGATIVE, (!n).unsigned_abs());
        }
    } else if (-SAFE_INT_LIMIT..=SAFE_INT_LIMIT).contains(&n) {
        // invariant: |n| <= 2^53, so the conversion is exact.
        write_f64(out, n as f64);
    } else {
        write_bigint(out, i128::from(n));
    }
}

/// A big integer: always the 8-byte form (or a bignum tag) so cbor-x reads a `BigInt`.
fn write_bigint(out: &mut Vec<u8>, n: i128) {
    let (major, tag, magnitude) = if n >= 0 {
        (MAJOR_UNSIGNED, TAG_POSITIVE_BIGNUM, n.unsigned_abs())
    } else {
        (MAJOR_NEGATIVE, TAG_NEGATIVE_BIGNUM, (!n).unsigned_abs())
    };
    match u64::try_from(magnitude) {
        Ok(m) => write_u64_full(out, major, m),
        Err(_) => {
            write_head(out, MAJOR_TAG, tag);
            let bytes = magnitude.to_be_bytes();
            let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
            write_head(out, MAJOR_BYTES, len_u64(significant.len()));
            out.extend_from_slice(&significant);
        }
    }
}

fn write_f64(out: &mut Vec<u8>, f: f64) {
    out.push(FLOAT64);
    out.extend_from_slice(&f.to_bits().to_be_bytes());
}

fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, MAJOR_TEXT, len_u64(s.len()));
    out.extend_from_slice(s.as_bytes());
}

/// A major type with its argument in the shortest form.
fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    if n < 24 {
        // invariant: n < 24 fits in the five low bits.
        out.push(major | n as u8);
    } else if let Ok(n) = u8::try_from(n) {
        out.extend_from_slice(&[major | 24, n]);
    } else if let Ok(n) = u16::try_from(n) {
        out.push(major | 25);
        out.extend_from_slice(&n.to_be_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        out.push(major | 26);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        write_u64_full(out, major >> 5, n);
    }
}

/// A major type with an 8-byte argument, whatever its value (`0x1b`/`0x3b` + 8 bytes).
fn write_u64_full(out: &mut Vec<u8>, major: u8, n: u64) {
    out.push((major << 5) | 27);
    out.extend_from_slice(&n.to_be_bytes());
}

fn len_u64(len: usize) -> u64 {
    // invariant: usize is at most 64 bits on every supported target.
    u64::try_from(len).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn enc(v: Value) -> String {
        hex(&encode_value(&v, Dialect::Compat))
    }

    #[test]
    fn numbers_follow_cbor_x() {
        assert_eq!(enc(Value::Int(5)), "05");
        assert_eq!(enc(Value::Int(-1)), "20");
        assert_eq!(enc(Value::Int(24)), "18 18");
        assert_eq!(enc(Value::Int(-(1 << 32))), "3a ff ff ff ff");
        assert_eq!(enc(Value::Int((1 << 32) - 1)), "1a ff ff ff ff");
        assert_eq!(enc(Value::Float(1.5)), "fb 3f f8 00 00 00 00 00 00");
        assert_eq!(enc(Value::Int(1 << 32)), "fb 41 f0 00 00 00 00 00 00");
        assert_eq!(
            enc(Value::Int(1_700_000_000_000)),
            "fb 42 78 bc fe 56 80 00 00"
        );
        assert_eq!(enc(Value::Int((1 << 53) + 1)), "1b 00 20 00 00 00 00 00 01");
        assert_eq!(enc(Value::Int(i64::MIN)), "3b 7f ff ff ff ff ff ff ff");
    }

    #[test]
    fn bigints_always_use_the_long_forms() {
        assert_eq!(enc(Value::BigInt(5)), "1b 00 00 00 00 00 00 00 05");
        assert_eq!(enc(Value::BigInt(-1)), "3b 00 00 00 00 00 00 00 00");
        assert_eq!(
            enc(Value::BigInt(1 << 64)),
            "c2 49 01 00 00 00 00 00 00 00 00"
        );
        assert_eq!(
            enc(Value::BigInt(-(1 << 64) - 1)),
            "c3 49 01 00 00 00 00 00 00 00 00"
        );
        assert_eq!(enc(Value::BigInt(-(1 << 64))), "3b ff ff ff ff ff ff ff ff");
    }

    #[test]
    fn other_kinds() {
        assert_eq!(enc(Value::Null), "f6");
        assert_eq!(enc(Value::Undefined), "f7");
        assert_eq!(enc(Value::Bool(true)), "f5");
        assert_eq!(enc(Value::Bytes(vec![1, 2])), "42 01 02");
        assert_eq!(enc("é".into()), "62 c3 a9");
        assert_eq!(enc(Value::Set(vec![Value::Int(1)])), "d9 01 02 81 01");
        assert_eq!(enc(Value::Date(1000.0)), "c1 01");
        assert_eq!(enc(Value::Date(1500.0)), "c1 fb 3f f8 00 00 00 00 00 00");
        assert_eq!(
            enc(Value::Object(vec![("a".into(), Value::Int(1))])),
            "a1 61 61 01"
        );
        assert_eq!(
            enc(Value::Map(vec![(Value::Int(1), Value::Null)])),
            "a1 01 f6"
        );
        let long = "x".repeat(300);
        assert!(enc(long.into()).starts_with("79 01 2c 78"));
    }

    #[test]
    fn escaping_depends_on_the_dialect() {
        let v = Value::Array(vec!["$a".into(), Value::Int(1)]);
        assert_eq!(hex(&encode_value(&v, Dialect::Compat)), "82 63 24 24 61 01");
        assert_eq!(hex(&encode_value(&v, Dialect::Native)), "82 62 24 61 01");
        let set = Value::Set(vec!["$a".into(), Value::Int(1)]);
        assert_eq!(
            hex(&encode_value(&set, Dialect::Compat)),
            "d9 01 02 82 62 24 61 01"
        );
    }

    #[test]
    fn node_ids_are_eight_bytes() {
        let mut out = Vec::new();
        write_node(&mut out, &Node::Id(0), Dialect::Compat);
        assert_eq!(hex(&out), "1b 00 00 00 00 00 00 00 00");
        out.clear();
        write_node(&mut out, &Node::Number(1), Dialect::Compat);
        assert_eq!(hex(&out), "01");
    }
}
