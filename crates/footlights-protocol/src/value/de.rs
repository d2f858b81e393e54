//! `Value` as a serde `Deserializer`: how typed code reads dynamic values.
//!
//! The rules are lenient where JavaScript is loose: an integral float fills an integer field
//! (JS writes integers above 2^32 as floats), any number fills a float field, `undefined` reads
//! as `null`, and object keys that hold numbers fill integer map keys.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use super::{MAX_SAFE_INTEGER, Value, ValueError};

fn integral(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER).then_some(f as i64)
}

macro_rules! deserialize_integer {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self {
                Value::Float(f) => match integral(f) {
                    Some(i) => visitor.visit_i64(i),
                    None => Err(de::Error::invalid_type(de::Unexpected::Float(f), &visitor)),
                },
                other => other.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Value {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null | Value::Undefined => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::Float(f) | Value::Date(f) => visitor.visit_f64(f),
            Value::BigInt(i) => match (i64::try_from(i), u64::try_from(i)) {
                (Ok(v), _) => visitor.visit_i64(v),
                (_, Ok(v)) => visitor.visit_u64(v),
                _ => visitor.visit_i128(i),
            },
            Value::String(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Array(items) | Value::Set(items) => {
                let len = items.len();
                let mut seq = SeqDeserializer(items.into_iter());
                let out = visitor.visit_seq(&mut seq)?;
                if seq.0.len() == 0 {
                    Ok(out)
                } else {
                    Err(de::Error::invalid_length(
                        len,
                        &"fewer elements in sequence",
                    ))
                }
            }
            Value::Object(fields) => visitor.visit_map(ObjectDeserializer {
                iter: fields.into_iter(),
                value: None,
            }),
            Value::Map(entries) => visitor.visit_map(MapDeserializer {
                iter: entries.into_iter(),
                value: None,
            }),
        }
    }

    deserialize_integer! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Int(i) => visitor.visit_f64(i as f64),
            Value::BigInt(i) => visitor.visit_f64(i as f64),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null | Value::Undefined => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null | Value::Undefined => visitor.visit_unit(),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::String(variant) => visitor.visit_enum(EnumDeserializer {
                variant,
                value: None,
            }),
            Value::Object(mut fields) if fields.len() == 1 => {
                let (variant, value) = fields.pop().unwrap_or_default();
                visitor.visit_enum(EnumDeserializer {
                    variant,
                    value: Some(value),
                })
            }
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"an enum variant",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        drop(self);
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool char str string bytes byte_buf seq tuple tuple_struct map struct identifier
    }
}

impl Value {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Value::Null | Value::Undefined => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Int(i) => de::Unexpected::Signed(*i),
            Value::Float(f) | Value::Date(f) => de::Unexpected::Float(*f),
            Value::BigInt(_) => de::Unexpected::Other("big integer"),
            Value::String(s) => de::Unexpected::Str(s),
            Value::Bytes(b) => de::Unexpected::Bytes(b),
            Value::Array(_) | Value::Set(_) => de::Unexpected::Seq,
            Value::Object(_) | Value::Map(_) => de::Unexpected::Map,
        }
    }
}

impl IntoDeserializer<'_, ValueError> for Value {
    type Deserializer = Value;
    fn into_deserializer(self) -> Value {
        self
    }
}

struct SeqDeserializer(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for SeqDeserializer {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        self.0.next().map(|v| seed.deserialize(v)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct ObjectDeserializer {
    iter: std::vec::IntoIter<(String, Value)>,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for ObjectDeserializer {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(KeyDeserializer(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        seed.deserialize(self.value.take().unwrap_or_default())
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapDeserializer {
    iter: std::vec::IntoIter<(Value, Value)>,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for MapDeserializer {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        seed.deserialize(self.value.take().unwrap_or_default())
    }
}

/// An object key: a string that also fills integer and boolean map keys.
struct KeyDeserializer(String);

macro_rules! parse_key {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self.0.parse::<$ty>() {
                Ok(v) => visitor.$visit(v),
                Err(_) => visitor.visit_string(self.0),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for KeyDeserializer {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_string(self.0)
    }

    parse_key! {
        deserialize_i8 => visit_i64: i64, deserialize_i16 => visit_i64: i64,
        deserialize_i32 => visit_i64: i64, deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u64: u64, deserialize_u16 => visit_u64: u64,
        deserialize_u32 => visit_u64: u64, deserialize_u64 => visit_u64: u64,
        deserialize_bool => visit_bool: bool,
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_enum(EnumDeserializer {
            variant: self.0,
            value: None,
        })
    }

    forward_to_deserialize_any! {
        i128 u128 f32 f64 char str string bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct EnumDeserializer {
    variant: String,
    value: Option<Value>,
}

impl<'de> EnumAccess<'de> for EnumDeserializer {
    type Error = ValueError;
    type Variant = VariantDeserializer;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantDeserializer), ValueError> {
        let variant = seed.deserialize(KeyDeserializer(self.variant))?;
        Ok((variant, VariantDeserializer(self.value)))
    }
}

struct VariantDeserializer(Option<Value>);

impl<'de> VariantAccess<'de> for VariantDeserializer {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.0 {
            None | Some(Value::Null | Value::Undefined) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(
                other.unexpected(),
                &"a unit variant",
            )),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        seed.deserialize(self.0.unwrap_or_default())
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.0.unwrap_or_default().deserialize_any(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.0.unwrap_or_default().deserialize_any(visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use serde::{Deserialize, Serialize};

    use crate::value::{from_value, to_value};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect { w: i64, h: i64 },
        Pair(i32, i32),
    }

    #[test]
    fn enums_round_trip() {
        for s in [
            Shape::Dot,
            Shape::Circle(1.5),
            Shape::Rect { w: 2, h: 3 },
            Shape::Pair(1, 2),
        ] {
            let v = to_value(&s).unwrap();
            assert_eq!(from_value::<Shape>(v).unwrap(), s);
        }
    }

    #[test]
    fn integer_map_keys_read_from_object_keys() {
        let v = Value::Object(vec![("7".into(), Value::from("x"))]);
        let m: BTreeMap<u32, String> = from_value(v).unwrap();
        assert_eq!(m[&7], "x");
    }

    #[test]
    fn sets_read_as_sequences() {
        let v = Value::Set(vec![Value::Int(1), Value::Int(2)]);
        let s: HashSet<i64> = from_value(v).unwrap();
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn extra_tuple_elements_are_an_error() {
        let v = Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
        assert!(from_value::<(i64, i64)>(v).is_err());
    }

    #[test]
    fn non_integral_float_is_not_an_integer() {
        assert!(from_value::<u8>(Value::Float(2.5)).is_err());
        assert!(from_value::<u8>(Value::Int(300)).is_err());
    }

    #[test]
    fn bigint_fills_u64() {
        assert_eq!(
            from_value::<u64>(Value::BigInt(u64::MAX.into())).unwrap(),
            u64::MAX
        );
    }
}
