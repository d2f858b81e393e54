//! The compat tagging of §3.2 and §3.4, shared by the JSON and CBOR codecs.
//!
//! JavaScript values that a format cannot carry travel as two-element arrays whose first element
//! is a marker string starting with `$`. A user array that merely looks like that gets one more
//! `$` in front of its marker. Decoding works bottom-up, like `JSON.parse` with a reviver: the
//! payload of a tagged array has already been revived when the tag is looked at.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use super::error::CodecError;
use crate::value::Value;

/// Standard alphabet; emits padding, accepts input with or without it (Node is lenient too).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Tag for a JavaScript `BigInt`: `["$BigInt", "<decimal>"]`.
pub(crate) const TAG_BIGINT: &str = "$BigInt";
/// Tag for a `Uint8Array`, the one Footlights emits for bytes.
pub(crate) const TAG_UINT8ARRAY: &str = "$Uint8Array";
const TAG_ARRAYBUFFER: &str = "$ArrayBuffer";
const TAG_UNDEFINED: &str = "$Undefined";
const TAG_SET: &str = "$Set";

/// Whether a user array must be escaped on output: two elements, the first a `$`-string.
pub(crate) fn needs_escape(items: &[Value]) -> Option<&str> {
    match items {
        [Value::String(s), _] if s.starts_with('$') => Some(s),
        _ => None,
    }
}

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Revives a decoded array if it is compat-tagged; returns it unchanged otherwise.
///
/// # Errors
/// An unknown tag ([`CodecError::UnknownTag`]) or a malformed payload.
pub(crate) fn revive_array(items: Vec<Value>) -> Result<Value, CodecError> {
    match <[Value; 2]>::try_from(items) {
        Ok([Value::String(tag), payload]) if tag.starts_with('$') => revive(tag, payload),
        Ok(pair) => Ok(Value::Array(pair.into())),
        Err(items) => Ok(Value::Array(items)),
    }
}

fn revive(tag: String, payload: Value) -> Result<Value, CodecError> {
    if let Some(escaped) = tag.strip_prefix("$$") {
        let mut unescaped = String::with_capacity(escaped.len() + 1);
        unescaped.push('$');
        unescaped.push_str(escaped);
        return Ok(Value::Array(vec![Value::String(unescaped), payload]));
    }
    match tag.as_str() {
        TAG_BIGINT => match payload {
            Value::String(digits) => {
                parse_bigint(&digits)
                    .map(Value::BigInt)
                    .ok_or(CodecError::BadTagPayload {
                        tag: TAG_BIGINT,
                        reason: "expected decimal digits that fit in 128 bits",
                    })
            }
            _ => Err(CodecError::BadTagPayload {
                tag: TAG_BIGINT,
                reason: "expected a string",
            }),
        },
        TAG_UINT8ARRAY => decode_base64(TAG_UINT8ARRAY, &payload),
        TAG_ARRAYBUFFER => decode_base64(TAG_ARRAYBUFFER, &payload),
        TAG_UNDEFINED => Ok(Value::Undefined),
        TAG_SET => match payload {
            Value::Array(items) => Ok(Value::Set(items)),
            _ => Err(CodecError::BadTagPayload {
                tag: TAG_SET,
                reason: "expected an array",
            }),
        },
        _ => Err(CodecError::UnknownTag(tag)),
    }
}

fn decode_base64(tag: &'static str, payload: &Value) -> Result<Value, CodecError> {
    let Value::String(text) = payload else {
        return Err(CodecError::BadTagPayload {
            tag,
            reason: "expected a string",
        });
    };
    BASE64
        .decode(text)
        .map(Value::Bytes)
        .map_err(|_| CodecError::BadTagPayload {
            tag,
            reason: "invalid base64",
        })
}

/// Collects an object's fields with JavaScript's rule for repeated keys: the key keeps its first
/// position and takes its last value.
#[derive(Debug, Default)]
pub(crate) struct ObjectBuilder {
    fields: Vec<(String, Value)>,
    /// Built once the object is large enough for linear scans to matter.
    index: Option<HashMap<String, usize>>,
}

/// Up to this many fields, repeated keys are found by a linear scan.
const LINEAR_SCAN_LIMIT: usize = 16;

impl ObjectBuilder {
    pub(crate) fn push(&mut self, key: String, value: Value) {
        let found = match &self.index {
            Some(index) => index.get(&key).copied(),
            None => self.fields.iter().position(|(k, _)| *k == key),
        };
        if let Some(slot) = found.and_then(|i| self.fields.get_mut(i)) {
            slot.1 = value;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.fields.len());
        } else if self.fields.len() >= LINEAR_SCAN_LIMIT {
            let mut index: HashMap<String, usize> = self
                .fields
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            index.insert(key.clone(), self.fields.len());
            self.index = Some(index);
        }
        self.fields.push((key, value));
    }

    pub(crate) fn finish(self) -> Value {
        Value::Object(self.fields)
    }
}

/// Parses `-?[0-9]+` into an `i128`, without accepting `+`, spaces or an empty string.
pub(crate) fn parse_bigint(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(tag: &str, payload: Value) -> Vec<Value> {
        vec![Value::String(tag.into()), payload]
    }

    #[test]
    fn revives_every_known_tag() {
        let cases = [
            (pair("$BigInt", "-12".into()), Value::BigInt(-12)),
            (pair("$Uint8Array", "AQI=".into()), Value::Bytes(vec![1, 2])),
            (pair("$ArrayBuffer", "AQI".into()), Value::Bytes(vec![1, 2])),
            (pair("$Undefined", Value::Int(0)), Value::Undefined),
            (
                pair("$Set", Value::Array(vec![Value::Int(1)])),
                Value::Set(vec![Value::Int(1)]),
            ),
            (
                pair("$$x", Value::Int(1)),
                Value::Array(pair("$x", Value::Int(1))),
            ),
            (
                pair("$$", Value::Null),
                Value::Array(pair("$", Value::Null)),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(revive_array(input).unwrap(), expected);
        }
    }

    #[test]
    fn leaves_ordinary_arrays_alone() {
        for items in [
            vec![],
            vec![Value::String("$x".into())],
            vec![Value::String("x".into()), Value::Int(1)],
            vec![Value::Int(1), Value::String("$x".into())],
            vec![Value::String("$x".into()), Value::Int(1), Value::Int(2)],
        ] {
            assert_eq!(revive_array(items.clone()).unwrap(), Value::Array(items));
        }
    }

    #[test]
    fn unknown_and_malformed_tags_are_errors() {
        assert!(matches!(
            revive_array(pair("$Date", Value::Int(0))),
            Err(CodecError::UnknownTag(t)) if t == "$Date"
        ));
        assert!(matches!(
            revive_array(pair("$", Value::Int(0))),
            Err(CodecError::UnknownTag(_))
        ));
        for bad in ["", "+1", "1.0", " 1", "0x10", "-", "1e3"] {
            assert!(
                revive_array(pair("$BigInt", bad.into())).is_err(),
                "{bad:?}"
            );
        }
        assert!(revive_array(pair("$BigInt", Value::Int(1))).is_err());
        assert!(revive_array(pair("$Uint8Array", "!!".into())).is_err());
        assert!(revive_array(pair("$Set", Value::Int(1))).is_err());
        let too_big = "1".repeat(40);
        assert!(revive_array(pair("$BigInt", too_big.into())).is_err());
    }

    #[test]
    fn escape_rule_matches_only_dollar_pairs() {
        assert_eq!(needs_escape(&pair("$a", Value::Null)), Some("$a"));
        assert_eq!(needs_escape(&pair("a", Value::Null)), None);
        assert_eq!(needs_escape(&[Value::String("$a".into())]), None);
        assert_eq!(base64_encode(&[1, 2]), "AQI=");
    }

    #[test]
    fn repeated_keys_keep_first_position_and_last_value() {
        for n in [3usize, 40] {
            let mut b = ObjectBuilder::default();
            for i in 0..n {
                b.push(format!("k{i}"), Value::Int(i as i64));
            }
            b.push("k1".into(), Value::Null);
            b.push("k0".into(), Value::Bool(true));
            let Value::Object(fields) = b.finish() else {
                panic!()
            };
            assert_eq!(fields.len(), n);
            assert_eq!(fields[0], ("k0".into(), Value::Bool(true)));
            assert_eq!(fields[1], ("k1".into(), Value::Null));
            assert_eq!(fields[2], ("k2".into(), Value::Int(2)));
        }
    }
}
