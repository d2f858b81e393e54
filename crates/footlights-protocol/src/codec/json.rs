//! [`Value`] ⇄ JSON text with the compat tagging of §3.2.
//!
//! Output follows `JSON.stringify` plus the client's replacer: `BigInt` becomes
//! `["$BigInt","…"]`, bytes `["$Uint8Array","<base64>"]`, a user array of two elements that starts
//! with a `$`-string gets one more `$`, `undefined` is dropped from objects and written `null`
//! elsewhere, dates become ISO strings, and non-finite numbers become `null`. No other tag is
//! ever written: the JavaScript clients throw away a whole message with an unknown one.
//! [`Value::Int`] is written as its exact digits even beyond ±2^53 (JavaScript rounds such a
//! number; values meant to stay exact should be [`Value::BigInt`]). A [`Value::Map`] becomes an
//! object with stringified keys and a [`Value::Set`] an array, rather than the `{}` that
//! `JSON.stringify` would give, so the data is not lost.
//!
//! Input is revived the other way round, and additionally understands `$ArrayBuffer`,
//! `$Undefined` and `$Set`. An unknown `$`-tag is an error.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::compat::{
    ObjectBuilder, TAG_BIGINT, TAG_UINT8ARRAY, base64_encode, needs_escape, revive_array,
};
use super::error::CodecError;
use super::node::Node;
use crate::value::Value;

/// Writes a value in a position where `undefined` has nowhere to go (top level, an object
/// field that is always present): it becomes `null`.
pub(crate) fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null | Value::Undefined => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => push_display(out, i),
        Value::Float(f) => write_f64(out, *f),
        Value::BigInt(i) => write_tagged(out, TAG_BIGINT, &i.to_string()),
        Value::String(s) => write_str(out, s),
        Value::Bytes(b) => write_tagged(out, TAG_UINT8ARRAY, &base64_encode(b)),
        Value::Array(items) | Value::Set(items) => write_array(out, items),
        Value::Object(fields) => {
            write_object(out, fields.iter().map(|(k, v)| (KeyRef::Str(k), v)));
        }
        Value::Map(entries) => {
            write_object(out, entries.iter().map(|(k, v)| (KeyRef::Value(k), v)))
        }
        Value::Date(ms) => match iso_date(*ms) {
            Some(text) => write_str(out, &text),
            None => out.push_str("null"),
        },
    }
}

/// Writes a user array (or a set, which JSON has no form for), escaping a leading `$`-string.
pub(crate) fn write_array(out: &mut String, items: &[Value]) {
    out.push('[');
    let escaped = needs_escape(items);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match (i, escaped) {
            (0, Some(marker)) => {
                out.push_str("\"$");
                push_escaped(out, marker);
                out.push('"');
            }
            _ => write_value(out, item),
        }
    }
    out.push(']');
}

/// An object key: a string field name, or a `Map` key that has to be stringified.
enum KeyRef<'a> {
    Str(&'a str),
    Value(&'a Value),
}

fn write_object<'a>(out: &mut String, fields: impl Iterator<Item = (KeyRef<'a>, &'a Value)>) {
    out.push('{');
    let mut first = true;
    for (key, value) in fields {
        if matches!(value, Value::Undefined) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        match key {
            KeyRef::Str(k) => write_str(out, k),
            KeyRef::Value(k) => write_str(out, &key_string(k)),
        }
        out.push(':');
        write_value(out, value);
    }
    out.push('}');
}

/// Roughly what JavaScript's `String(key)` gives, used when a `Map` is written as an object.
pub(crate) fn key_string(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        Value::Undefined => "undefined".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "NaN".to_owned(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
        }
        // invariant: |f| < 2^63, so the cast is exact for an integral f.
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => (*f as i64).to_string(),
        Value::Date(ms) => iso_date(*ms).unwrap_or_else(|| "Invalid Date".to_owned()),
        other => {
            let mut text = String::new();
            write_value(&mut text, other);
            text
        }
    }
}

/// Writes the envelope tree of a message.
pub(crate) fn write_node(out: &mut String, node: &Node<'_>) {
    match node {
        Node::Object(fields) => {
            out.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key);
                out.push(':');
                write_node(out, value);
            }
            out.push('}');
        }
        Node::Str(s) => write_str(out, s),
        Node::Id(id) => write_tagged(out, TAG_BIGINT, &id.to_string()),
        Node::Number(n) => push_display(out, n),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Null => out.push_str("null"),
        Node::Value(v) => write_value(out, v),
        Node::Args(items) => write_array(out, items),
    }
}

fn write_tagged(out: &mut String, tag: &str, payload: &str) {
    out.push('[');
    write_str(out, tag);
    out.push(',');
    write_str(out, payload);
    out.push(']');
}

fn write_f64(out: &mut String, f: f64) {
    match serde_json::Number::from_f64(f) {
        Some(n) => push_display(out, &n),
        None => out.push_str("null"),
    }
}

fn push_display(out: &mut String, value: &impl fmt::Display) {
    // invariant: writing to a String never fails.
    let _ = write!(out, "{value}");
}

/// Writes a JSON string literal, escaping what `JSON.stringify` escapes.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                // invariant: writing to a String never fails.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// A date as `Date.prototype.toISOString` writes it, or `None` for an invalid date (which
/// `JSON.stringify` writes as `null`).
pub(crate) fn iso_date(ms: f64) -> Option<String> {
    const MAX_TIME: f64 = 8.64e15;
    const DAY_MS: i64 = 86_400_000;
    if !ms.is_finite() || ms.abs() > MAX_TIME {
        return None;
    }
    // invariant: |ms| <= 8.64e15 < 2^63 after the check above.
    let ms = ms.trunc() as i64;
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    let in_day = ms.rem_euclid(DAY_MS);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{}{:06}", if year < 0 { '-' } else { '+' }, year.abs())
    };
    Some(format!(
        "{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z"
    ))
}

/// The proleptic Gregorian date of a day count since 1970-01-01, using 400-year eras that
/// start on March 1st so that leap days fall at the end of each era's year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    const DAYS_PER_ERA: i64 = 146_097;
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses JSON text into a value, reviving compat tags.
///
/// Nesting is limited to 128 levels (serde_json's limit). Repeated object keys keep their first
/// position and their last value, as in `JSON.parse`. Integers that fit in an `i64` become
/// [`Value::Int`]; every other number becomes [`Value::Float`].
pub(crate) fn decode_value(bytes: &[u8]) -> Result<Value, CodecError> {
    let failure = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = JsonSeed { failure: &failure }
        .deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value));
    parsed.map_err(|e| failure.into_inner().unwrap_or(CodecError::Json(e)))
}

/// Builds values while parsing. A revive failure is kept aside in `failure` so the caller gets
/// the precise [`CodecError`] rather than serde's stringly one.
#[derive(Clone, Copy)]
struct JsonSeed<'f> {
    failure: &'f RefCell<Option<CodecError>>,
}

impl<'de> DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        revive_array(items).map_err(|e| {
            let message = e.to_string();
            self.failure.borrow_mut().get_or_insert(e);
            de::Error::custom(message)
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = ObjectBuilder::default();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            object.push(key, value);
        }
        Ok(object.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> String {
        let mut s = String::new();
        write_value(&mut s, v);
        s
    }

    fn dec(s: &str) -> Value {
        decode_value(s.as_bytes()).unwrap()
    }

    fn obj(fields: &[(&str, Value)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn writes_tags_escapes_and_js_rules() {
        let v = obj(&[
            ("big", Value::BigInt(-(1 << 70))),
            ("bytes", Value::Bytes(vec![0, 255])),
            ("esc", Value::Array(vec!["$x".into(), Value::Int(1)])),
            ("gone", Value::Undefined),
            (
                "arr",
                Value::Array(vec![Value::Undefined, Value::Float(f64::NAN)]),
            ),
            ("inf", Value::Float(f64::INFINITY)),
            ("f", Value::Float(1.5)),
            ("s", "a\"b\\c\n\u{1}é".into()),
            ("set", Value::Set(vec!["$y".into(), Value::Null])),
            ("map", Value::Map(vec![(Value::Int(1), Value::Bool(true))])),
            ("date", Value::Date(1_700_000_000_000.0)),
        ]);
        assert_eq!(
            enc(&v),
            concat!(
                r#"{"big":["$BigInt","-1180591620717411303424"],"bytes":["$Uint8Array","AP8="],"#,
                r#""esc":["$$x",1],"arr":[null,null],"inf":null,"f":1.5,"s":"a\"b\\c\n\u0001é","#,
                r#""set":["$$y",null],"map":{"1":true},"date":"2023-11-14T22:13:20.000Z"}"#
            )
        );
        assert_eq!(enc(&Value::Undefined), "null");
    }

    #[test]
    fn revives_tags_and_unescapes() {
        let v = dec(
            r#"{"a":["$BigInt","7"],"b":["$ArrayBuffer","AQ=="],"c":["$$$x",["$Uint8Array","Ag=="]],
               "d":["$Undefined",0],"e":["$Set",[1,["$BigInt","2"]]],"f":[1,2],"g":18446744073709551615}"#,
        );
        assert_eq!(
            v,
            obj(&[
                ("a", Value::BigInt(7)),
                ("b", Value::Bytes(vec![1])),
                ("c", Value::Array(vec!["$$x".into(), Value::Bytes(vec![2])])),
                ("d", Value::Undefined),
                ("e", Value::Set(vec![Value::Int(1), Value::BigInt(2)])),
                ("f", Value::Array(vec![Value::Int(1), Value::Int(2)])),
                ("g", Value::Float(18_446_744_073_709_551_615.0)),
            ])
        );
    }

    #[test]
    fn unknown_tags_and_bad_text_are_errors() {
        assert!(matches!(
            decode_value(br#"{"x":[["$Map",[]]]}"#),
            Err(CodecError::UnknownTag(t)) if t == "$Map"
        ));
        assert!(matches!(
            decode_value(br#"["$BigInt","x"]"#),
            Err(CodecError::BadTagPayload { .. })
        ));
        assert!(matches!(decode_value(b"[1] x"), Err(CodecError::Json(_))));
        assert!(matches!(decode_value(b""), Err(CodecError::Json(_))));
        assert!(matches!(decode_value(b"1e999"), Err(CodecError::Json(_))));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            decode_value(deep.as_bytes()),
            Err(CodecError::Json(_))
        ));
    }

    #[test]
    fn iso_dates_match_javascript() {
        let cases = [
            (0.0, "1970-01-01T00:00:00.000Z"),
            (-1.0, "1969-12-31T23:59:59.999Z"),
            (951_782_400_000.0, "2000-02-29T00:00:00.000Z"),
            (8.64e15, "+275760-09-13T00:00:00.000Z"),
            (-8.64e15, "-271821-04-20T00:00:00.000Z"),
            (-62_167_219_200_000.0, "0000-01-01T00:00:00.000Z"),
            (-62_198_755_200_000.0, "-000001-01-01T00:00:00.000Z"),
            (253_402_300_799_999.0, "9999-12-31T23:59:59.999Z"),
            (253_402_300_800_000.0, "+010000-01-01T00:00:00.000Z"),
            (1.9, "1970-01-01T00:00:00.001Z"),
        ];
        for (ms, text) in cases {
            assert_eq!(iso_date(ms).as_deref(), Some(text), "{ms}");
        }
        assert_eq!(iso_date(8.64e15 + 1.0), None);
        assert_eq!(iso_date(f64::NAN), None);
    }

    #[test]
    fn map_keys_are_stringified_like_javascript() {
        assert_eq!(key_string(&Value::Float(2.0)), "2");
        assert_eq!(key_string(&Value::Float(0.5)), "0.5");
        assert_eq!(key_string(&Value::Float(f64::NEG_INFINITY)), "-Infinity");
        assert_eq!(key_string(&Value::Null), "null");
        assert_eq!(key_string(&Value::Array(vec![Value::Int(1)])), "[1]");
    }
}
