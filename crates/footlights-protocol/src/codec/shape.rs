//! Reading JSON and CBOR envelopes once they are decoded into [`Value`] trees.
//!
//! Both formats share one shape (§3.3), so the message readers work on the decoded tree. They
//! are lenient where the JavaScript clients are: unknown fields are ignored, ids may be plain
//! numbers, `null` stands for an absent optional field.

use super::ActorSpecifier;
use super::error::CodecError;
use crate::ids::ActorId;
use crate::value::Value;

/// The fields of one object in a message, taken out one by one.
#[derive(Debug)]
pub(crate) struct Fields {
    /// What the object is, for error messages (`"body"`, `"val"`, ...).
    what: &'static str,
    fields: Vec<(String, Value)>,
}

impl Fields {
    /// The fields of `value`, which must be an object.
    pub(crate) fn new(value: Value, what: &'static str) -> Result<Self, CodecError> {
        match value {
            Value::Object(fields) => Ok(Fields { what, fields }),
            other => Err(CodecError::shape(format!(
                "`{what}` must be an object, not {}",
                kind(&other)
            ))),
        }
    }

    /// Removes and returns a field; `None` if it is absent.
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        let i = self.fields.iter().position(|(k, _)| k == key)?;
        Some(self.fields.swap_remove(i).1)
    }

    /// Removes a field; `None` if it is absent, `null` or `undefined`.
    fn take_present(&mut self, key: &str) -> Option<Value> {
        self.take(key).filter(|v| !v.is_null())
    }

    fn wrong(&self, key: &str, expected: &str, found: &Value) -> CodecError {
        CodecError::shape(format!(
            "`{}.{key}` must be {expected}, not {}",
            self.what,
            kind(found)
        ))
    }

    fn missing(&self, key: &str) -> CodecError {
        CodecError::shape(format!("`{}.{key}` is missing", self.what))
    }

    /// A required user value; an absent field reads as `undefined`.
    pub(crate) fn value(&mut self, key: &str) -> Value {
        self.take(key).unwrap_or(Value::Undefined)
    }

    pub(crate) fn string(&mut self, key: &str) -> Result<String, CodecError> {
        self.optional_string(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn optional_string(&mut self, key: &str) -> Result<Option<String>, CodecError> {
        match self.take_present(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong(key, "a string", &other)),
        }
    }

    pub(crate) fn bool(&mut self, key: &str) -> Result<bool, CodecError> {
        self.optional_bool(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn optional_bool(&mut self, key: &str) -> Result<Option<bool>, CodecError> {
        match self.take_present(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.wrong(key, "a boolean", &other)),
        }
    }

    /// A non-negative integer that fits in 64 bits: a protocol id (a BigInt on the wire, but a
    /// plain number is accepted), a generation, a timeout.
    pub(crate) fn u64(&mut self, key: &str) -> Result<u64, CodecError> {
        self.optional_u64(key)?.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn optional_u64(&mut self, key: &str) -> Result<Option<u64>, CodecError> {
        match self.take_present(key) {
            None => Ok(None),
            Some(v) => match to_u64(&v) {
                Some(n) => Ok(Some(n)),
                None => Err(self.wrong(key, "a non-negative 64-bit integer", &v)),
            },
        }
    }

    /// A nested object.
    pub(crate) fn object(&mut self, key: &'static str) -> Result<Fields, CodecError> {
        match self.take_present(key) {
            None => Err(self.missing(key)),
            Some(v) => Fields::new(v, key),
        }
    }

    /// An optional nested object.
    pub(crate) fn optional_object(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Fields>, CodecError> {
        self.take_present(key)
            .map(|v| Fields::new(v, key))
            .transpose()
    }

    /// The `actor` field of an error, if present.
    pub(crate) fn actor(&mut self) -> Result<Option<ActorSpecifier>, CodecError> {
        let Some(mut actor) = self.optional_object("actor")? else {
            return Ok(None);
        };
        Ok(Some(ActorSpecifier {
            actor_id: ActorId::new(actor.string("actorId")?),
            generation: actor.optional_u64("generation")?.unwrap_or(0),
            key: actor.optional_string("key")?,
        }))
    }
}

/// An integer value as a `u64`, if it is one (integral floats included).
fn to_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::Int(i) => u64::try_from(i).ok(),
        Value::BigInt(i) => u64::try_from(i).ok(),
        // invariant: the range check makes the cast exact.
        Value::Float(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => {
            Some(f as u64)
        }
        _ => None,
    }
}

/// An argument list: an array as it is, `null`/`undefined`/absent as no arguments, and any
/// other value as a single argument (§6.1).
pub(crate) fn into_args(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        Value::Null | Value::Undefined => Vec::new(),
        other => vec![other],
    }
}

/// A short name for a value's kind, for error messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Undefined => "undefined",
        Value::Bool(_) => "a boolean",
        Value::Int(_) | Value::Float(_) => "a number",
        Value::BigInt(_) => "a bigint",
        Value::String(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Map(_) => "a map",
        Value::Set(_) => "a set",
        Value::Date(_) => "a date",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_bigints_and_plain_numbers() {
        for v in [Value::BigInt(7), Value::Int(7), Value::Float(7.0)] {
            let mut f = Fields::new(Value::Object(vec![("id".into(), v)]), "val").unwrap();
            assert_eq!(f.u64("id").unwrap(), 7);
        }
        for v in [
            Value::Int(-1),
            Value::Float(1.5),
            Value::BigInt(1 << 64),
            "7".into(),
        ] {
            let mut f = Fields::new(Value::Object(vec![("id".into(), v)]), "val").unwrap();
            assert!(f.u64("id").is_err());
        }
    }

    #[test]
    fn errors_name_the_field() {
        let mut f = Fields::new(Value::Object(vec![("n".into(), Value::Int(1))]), "val").unwrap();
        let e = f.string("n").unwrap_err().to_string();
        assert_eq!(
            e,
            "unexpected message shape: `val.n` must be a string, not a number"
        );
        let e = f.string("name").unwrap_err().to_string();
        assert!(e.ends_with("`val.name` is missing"), "{e}");
        assert!(Fields::new(Value::Int(1), "body").is_err());
    }

    #[test]
    fn args_are_lenient() {
        assert_eq!(into_args(Value::Null), vec![]);
        assert_eq!(into_args(Value::Int(1)), vec![Value::Int(1)]);
        assert_eq!(
            into_args(Value::Array(vec![Value::Null])),
            vec![Value::Null]
        );
    }
}
