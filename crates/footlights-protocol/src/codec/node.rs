//! The tree of an outgoing JSON or CBOR envelope, borrowed from the message it describes.
//!
//! JSON and CBOR envelopes have the same shape (§3.3), so messages are first described as a
//! [`Node`] tree and then written by either encoder. User values are borrowed, not cloned.

use super::Dialect;
use super::cbor;
use super::json;
use crate::value::Value;

/// One node of an envelope.
#[derive(Debug)]
pub(crate) enum Node<'a> {
    /// A map with text keys, in this order. Absent optional fields are simply not pushed.
    Object(Vec<(&'static str, Node<'a>)>),
    /// A protocol string.
    Str(&'a str),
    /// A protocol id: `["$BigInt","n"]` in JSON, `0x1b` + 8 bytes in CBOR (§7.5).
    Id(u64),
    /// A plain number such as a generation or a timeout.
    Number(u64),
    /// A protocol boolean.
    Bool(bool),
    /// `null` (`0xf6` in CBOR, never `undefined`).
    Null,
    /// A user value.
    Value(&'a Value),
    /// A user argument list, written as a user array.
    Args(&'a [Value]),
}

impl Node<'_> {
    /// Encodes the tree as JSON text.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = String::new();
        json::write_node(&mut out, self);
        out.into_bytes()
    }

    /// Encodes the tree as one CBOR document.
    pub(crate) fn to_cbor(&self, dialect: Dialect) -> Vec<u8> {
        let mut out = Vec::new();
        cbor::write_node(&mut out, self, dialect);
        out
    }
}
