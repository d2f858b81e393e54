//! The value model user data travels in.
//!
//! JavaScript clients send more kinds of values than JSON has (bytes, big integers, dates,
//! `undefined`), and both encodings Footlights speaks (JSON with tags, CBOR) can carry them.
//! [`Value`] covers all of them so nothing is lost between a client and an actor.

use std::fmt;

mod de;

use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A dynamically typed value: an action argument or result, an event argument, error metadata,
/// connection params, or actor input.
///
/// Typed code rarely sees it: [`to_value`] and [`from_value`] convert any serde type.
///
/// ```
/// use footlights_protocol::Value;
/// let v = Value::from(5);
/// assert_eq!(v.as_i64(), Some(5));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// JavaScript `undefined`; treated as `null` by typed code.
    Undefined,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A value meant as a big integer (JavaScript `BigInt`).
    BigInt(i128),
    /// A UTF-8 string.
    String(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// An ordered list.
    Array(Vec<Value>),
    /// An object with string keys, in insertion order.
    Object(Vec<(String, Value)>),
    /// A map whose keys are not all strings (JavaScript `Map`).
    Map(Vec<(Value, Value)>),
    /// A set of values (JavaScript `Set`).
    Set(Vec<Value>),
    /// A point in time, in milliseconds since the Unix epoch (JavaScript `Date`).
    Date(f64),
}

impl Value {
    /// About how many bytes the value takes when encoded: its strings and byte strings at
    /// their length, every other item at a few bytes. Cheap (one walk, no encoding); for
    /// limits on what waits in memory, not for exact sizes.
    ///
    /// ```
    /// use footlights_protocol::Value;
    /// let v = Value::Array(vec![Value::from("hello"), Value::Int(1)]);
    /// assert!(v.approx_size() >= 5);
    /// ```
    pub fn approx_size(&self) -> usize {
        const ITEM: usize = 4;
        match self {
            Value::String(s) => ITEM + s.len(),
            Value::Bytes(b) => ITEM + b.len(),
            Value::Array(items) | Value::Set(items) => {
                ITEM + items.iter().map(Value::approx_size).sum::<usize>()
            }
            Value::Object(fields) => {
                ITEM + fields
                    .iter()
                    .map(|(k, v)| ITEM + k.len() + v.approx_size())
                    .sum::<usize>()
            }
            Value::Map(entries) => {
                ITEM + entries
                    .iter()
                    .map(|(k, v)| k.approx_size() + v.approx_size())
                    .sum::<usize>()
            }
            Value::Int(_) | Value::Float(_) | Value::Date(_) | Value::BigInt(_) => 9,
            Value::Null | Value::Undefined | Value::Bool(_) => 1,
        }
    }

    /// The value as an `i64`, if it is an integer (or an integral float).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::BigInt(i) => i64::try_from(i).ok(),
            Value::Float(f) if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER => Some(f as i64),
            _ => None,
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// `true` for `null` and `undefined`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null | Value::Undefined)
    }

    /// Looks a field up in an object.
    pub fn get(&self, field: &str) -> Option<&Value> {
        match self {
            Value::Object(fields) => fields.iter().find(|(k, _)| k == field).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Converts this value into a typed one. Same as [`from_value`].
    ///
    /// # Errors
    /// When the value does not have the shape `T` expects.
    pub fn deserialize_into<T: DeserializeOwned>(self) -> Result<T, ValueError> {
        from_value(self)
    }
}

/// The largest integer a JavaScript number holds exactly (2^53 − 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}

/// A value did not have the shape a typed conversion expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(String);

impl serde::de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ValueError(msg.to_string())
    }
}

impl ValueError {
    /// Builds an error from a message.
    pub fn new(message: impl fmt::Display) -> Self {
        ValueError(message.to_string())
    }
}

/// Like [`to_value`], but a [`Value`] is cloned as it is instead of going through serde, so
/// nothing JavaScript-specific (big integers, dates, sets, `undefined`) is lost.
///
/// # Errors
/// As [`to_value`].
pub fn to_value_exact<T: Serialize + 'static>(value: &T) -> Result<Value, ValueError> {
    match (value as &dyn std::any::Any).downcast_ref::<Value>() {
        Some(v) => Ok(v.clone()),
        None => to_value(value),
    }
}

/// Like [`from_value`], but when `T` is [`Value`] the value is returned as it is.
///
/// # Errors
/// As [`from_value`].
pub fn from_value_exact<T: DeserializeOwned + 'static>(value: Value) -> Result<T, ValueError> {
    let mut slot = Some(value);
    if let Some(same) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<T>>()
        && let Some(v) = same.take()
    {
        return Ok(v);
    }
    from_value(slot.unwrap_or_default())
}

/// Converts any serializable value into a [`Value`].
///
/// # Errors
/// When `T`'s `Serialize` implementation fails (for example a map with unsupported keys).
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    let cbor = ciborium::Value::serialized(value).map_err(ValueError::new)?;
    Ok(from_cbor(cbor))
}

/// Converts a [`Value`] into a typed value.
///
/// Integral floats are accepted where integers are expected, because JavaScript has a single
/// number type and writes large integers as floats.
///
/// # Errors
/// When the value does not have the shape `T` expects.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    T::deserialize(value)
}

fn from_cbor(v: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match v {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => {
            let wide = i128::from(i);
            i64::try_from(wide).map_or(Value::BigInt(wide), Value::Int)
        }
        C::Float(f) => Value::Float(f),
        C::Text(s) => Value::String(s),
        C::Bytes(b) => Value::Bytes(b),
        C::Array(items) => Value::Array(items.into_iter().map(from_cbor).collect()),
        C::Map(entries) => {
            if entries.iter().all(|(k, _)| k.is_text()) {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.into_text().unwrap_or_default(), from_cbor(v)))
                        .collect(),
                )
            } else {
                Value::Map(
                    entries
                        .into_iter()
                        .map(|(k, v)| (from_cbor(k), from_cbor(v)))
                        .collect(),
                )
            }
        }
        // Bignums (tags 2 and 3) are how large integers serialize.
        C::Tag(tag @ (2 | 3), inner) => match *inner {
            C::Bytes(b) if b.len() <= 15 => {
                let n = b
                    .iter()
                    .fold(0i128, |acc, byte| (acc << 8) | i128::from(*byte));
                Value::BigInt(if tag == 2 { n } else { -1 - n })
            }
            other => from_cbor(other),
        },
        C::Tag(_, inner) => from_cbor(*inner),
        _ => Value::Null,
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null | Value::Undefined => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::BigInt(i) => s.serialize_i128(*i),
            Value::String(v) => s.serialize_str(v),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Array(items) | Value::Set(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Date(ms) => s.serialize_f64(*ms),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::BigInt(v), Value::Int))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::BigInt(v.into()), Value::Int))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        let wide = i128::try_from(v).map_err(|_| E::custom("integer too large"))?;
        self.visit_i128(wide)
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
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries: Vec<(Value, Value)> = Vec::new();
        while let Some((k, v)) = map.next_entry()? {
            entries.push((k, v));
        }
        if entries.iter().all(|(k, _)| matches!(k, Value::String(_))) {
            Ok(Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| match k {
                        Value::String(s) => (s, v),
                        _ => unreachable!("checked above"),
                    })
                    .collect(),
            ))
        } else {
            Ok(Value::Map(entries))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Msg {
        from: String,
        text: String,
        at: Option<i64>,
    }

    #[test]
    fn structs_round_trip_as_objects_in_field_order() {
        let m = Msg {
            from: "ann".into(),
            text: "hi".into(),
            at: None,
        };
        let v = to_value(&m).unwrap();
        assert_eq!(
            v,
            Value::Object(vec![
                ("from".into(), "ann".into()),
                ("text".into(), "hi".into()),
                ("at".into(), Value::Null),
            ])
        );
        assert_eq!(from_value::<Msg>(v).unwrap(), m);
    }

    #[test]
    fn integral_floats_fill_integer_fields() {
        // cbor-x writes 2^32 as a float64.
        let v = Value::Float(4_294_967_296.0);
        assert_eq!(from_value::<i64>(v).unwrap(), 4_294_967_296);
        assert!(from_value::<i64>(Value::Float(1.5)).is_err());
        assert_eq!(from_value::<f64>(Value::Int(3)).unwrap(), 3.0);
    }

    #[test]
    fn wrong_shape_is_an_error_not_a_panic() {
        assert!(from_value::<Msg>(Value::Int(1)).is_err());
        assert!(from_value::<String>(Value::Array(vec![])).is_err());
    }

    #[test]
    fn undefined_reads_as_none() {
        assert_eq!(from_value::<Option<i64>>(Value::Undefined).unwrap(), None);
    }

    #[test]
    fn maps_with_non_string_keys_stay_maps() {
        let mut m = BTreeMap::new();
        m.insert(1i64, "a");
        let v = to_value(&m).unwrap();
        assert_eq!(v, Value::Map(vec![(Value::Int(1), "a".into())]));
        assert_eq!(from_value::<BTreeMap<i64, String>>(v).unwrap()[&1], "a");
    }

    #[test]
    fn exact_conversions_keep_javascript_values() {
        let v = Value::Set(vec![Value::BigInt(10), Value::Date(1.5), Value::Undefined]);
        assert_eq!(to_value_exact(&v).unwrap(), v);
        assert_eq!(from_value_exact::<Value>(v.clone()).unwrap(), v);
        assert_eq!(from_value_exact::<i64>(Value::Int(3)).unwrap(), 3);
        assert_eq!(to_value_exact(&7u8).unwrap(), Value::Int(7));
    }

    #[test]
    fn integers_beyond_64_bits_become_bigint() {
        let big: i128 = 1 << 70;
        assert_eq!(to_value(&big).unwrap(), Value::BigInt(big));
        assert_eq!(to_value(&-big).unwrap(), Value::BigInt(-big));
        assert_eq!(from_value::<i128>(Value::BigInt(big)).unwrap(), big);
    }

    #[test]
    fn large_unsigned_becomes_bigint() {
        let v = to_value(&u64::MAX).unwrap();
        assert_eq!(v, Value::BigInt(u64::MAX.into()));
        assert_eq!(from_value::<u64>(v).unwrap(), u64::MAX);
    }

    #[test]
    fn value_deserializes_from_json() {
        let v: Value = serde_json::from_str(r#"{"a":[1,2.5,"x",null,true]}"#).unwrap();
        assert_eq!(
            v,
            Value::Object(vec![(
                "a".into(),
                Value::Array(vec![
                    Value::Int(1),
                    Value::Float(2.5),
                    "x".into(),
                    Value::Null,
                    Value::Bool(true)
                ])
            )])
        );
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":[1,2.5,"x",null,true]}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn json_values_survive_to_value_and_back(n in proptest::prelude::any::<i64>(), s in ".*", b in proptest::prelude::any::<bool>()) {
            let t = (n, s.clone(), b, vec![n, n / 2]);
            let v = to_value(&t).unwrap();
            let back: (i64, String, bool, Vec<i64>) = from_value(v).unwrap();
            proptest::prop_assert_eq!(back, t);
        }
    }
}
