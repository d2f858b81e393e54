//! The encoding-generic plumbing shared by every message and HTTP body.
//!
//! Each wire type says how it looks as an envelope tree (JSON and CBOR) and as BARE; the two
//! functions here pick the encoding, handle the version prefix and reject trailing bytes.

use std::ops::RangeInclusive;

use super::bare::{BareReader, BareWriter};
use super::error::CodecError;
use super::node::Node;
use super::{Dialect, Encoding, cbor, cbor_decode, json};
use crate::value::Value;

/// A type that can be written in every encoding.
pub(crate) trait Encode {
    /// The BARE versions the type exists in; a requested version outside is clamped into it.
    const VERSIONS: RangeInclusive<u16>;

    /// Whether clients send this type. Their CBOR envelopes carry plain (native) CBOR in
    /// every client version, so these are written without compat escaping.
    const FROM_CLIENT: bool = false;

    /// The JSON/CBOR envelope.
    fn node(&self) -> Node<'_>;

    /// The BARE payload after the version prefix.
    fn write_bare(&self, w: &mut BareWriter, version: u16, dialect: Dialect);
}

/// A type that can be read from every encoding.
pub(crate) trait Decode: Sized {
    /// The BARE versions the type exists in; any other prefix is rejected.
    const VERSIONS: RangeInclusive<u16>;

    /// Whether clients send this type. For those, the BARE version prefix decides the dialect
    /// of the inner CBOR (§3.4: 4 is compat, 3 or less native). Types that servers send use
    /// the dialect the caller gives, because a server may pair any version with either dialect.
    const FROM_CLIENT: bool;

    /// Reads the decoded JSON/CBOR envelope.
    fn from_value(value: Value) -> Result<Self, CodecError>;

    /// Reads the BARE payload after the version prefix.
    fn read_bare(
        r: &mut BareReader<'_>,
        version: u16,
        dialect: Dialect,
    ) -> Result<Self, CodecError>;
}

/// Encodes `body`; `version` and `dialect` matter only where the encoding uses them.
pub(crate) fn encode<T: Encode + ?Sized>(
    body: &T,
    encoding: Encoding,
    version: u16,
    dialect: Dialect,
) -> Vec<u8> {
    match encoding {
        Encoding::Json => body.node().to_json(),
        Encoding::Cbor => body.node().to_cbor(if T::FROM_CLIENT {
            Dialect::Native
        } else {
            dialect
        }),
        Encoding::Bare => {
            let version = version.clamp(*T::VERSIONS.start(), *T::VERSIONS.end());
            let mut w = BareWriter::new(version);
            body.write_bare(&mut w, version, dialect);
            w.finish()
        }
    }
}

/// Decodes one `T`; the version is `Some` only for BARE.
pub(crate) fn decode<T: Decode>(
    bytes: &[u8],
    encoding: Encoding,
    dialect: Dialect,
) -> Result<(T, Option<u16>), CodecError> {
    match encoding {
        Encoding::Json => Ok((T::from_value(json::decode_value(bytes)?)?, None)),
        // Clients write their CBOR envelopes with plain CBOR (only the CBOR inside BARE
        // messages is compat-tagged by 2.3.x), so nothing in them is revived.
        Encoding::Cbor => {
            let dialect = if T::FROM_CLIENT {
                Dialect::Native
            } else {
                dialect
            };
            Ok((
                T::from_value(cbor_decode::decode_value(bytes, dialect)?)?,
                None,
            ))
        }
        Encoding::Bare => {
            let mut r = BareReader::new(bytes);
            let version = r.version()?;
            if !T::VERSIONS.contains(&version) {
                return Err(CodecError::UnsupportedVersion(version));
            }
            let dialect = if T::FROM_CLIENT {
                Dialect::from_bare_version(version)
            } else {
                dialect
            };
            let body = T::read_bare(&mut r, version, dialect)?;
            r.finish()?;
            Ok((body, Some(version)))
        }
    }
}

/// Reads a BARE `data` field holding one CBOR document.
pub(crate) fn read_cbor(r: &mut BareReader<'_>, dialect: Dialect) -> Result<Value, CodecError> {
    cbor_decode::decode_value(r.data()?, dialect)
}

/// Reads a BARE `optional<data>` field holding one CBOR document.
pub(crate) fn read_optional_cbor(
    r: &mut BareReader<'_>,
    dialect: Dialect,
) -> Result<Option<Value>, CodecError> {
    r.optional_data()?
        .map(|bytes| cbor_decode::decode_value(bytes, dialect))
        .transpose()
}

/// Writes a BARE `data` field holding `value` as CBOR.
pub(crate) fn write_cbor(w: &mut BareWriter, value: &Value, dialect: Dialect) {
    w.data(&cbor::encode_value(value, dialect));
}

/// Writes a BARE `optional<data>` field holding `value` as CBOR.
pub(crate) fn write_optional_cbor(w: &mut BareWriter, value: Option<&Value>, dialect: Dialect) {
    w.optional_data(value.map(|v| cbor::encode_value(v, dialect)).as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToServer;
    use crate::codec::decode_to_server;

    /// A client's CBOR envelope is plain CBOR: a `$`-array in it is user data, not a tag.
    #[test]
    fn client_cbor_envelopes_are_not_revived() {
        use ciborium::Value as C;
        let args = C::Array(vec![C::Array(vec![
            C::Text("$y".into()),
            C::Integer(1.into()),
        ])]);
        let val = C::Map(vec![
            (C::Text("id".into()), C::Integer(0.into())),
            (C::Text("name".into()), C::Text("ping".into())),
            (C::Text("args".into()), args),
        ]);
        let body = C::Map(vec![
            (C::Text("tag".into()), C::Text("ActionRequest".into())),
            (C::Text("val".into()), val),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&C::Map(vec![(C::Text("body".into()), body)]), &mut bytes).unwrap();
        let (msg, _) = decode_to_server(&bytes, Encoding::Cbor, Dialect::Compat).unwrap();
        let ToServer::ActionRequest { args, .. } = msg else {
            panic!("{msg:?}")
        };
        assert_eq!(
            args,
            vec![Value::Array(vec![Value::from("$y"), Value::Int(1)])]
        );
    }
}
