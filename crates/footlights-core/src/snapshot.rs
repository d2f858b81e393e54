//! How state snapshots and alarm arguments are stored: a format byte, then CBOR.

use footlights_protocol::{ActionError, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The first byte of every stored snapshot; bump it when the layout changes.
const SNAPSHOT_V1: u8 = 1;

pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ActionError> {
    let mut out = vec![SNAPSHOT_V1];
    ciborium::into_writer(value, &mut out)
        .map_err(|e| ActionError::internal(format!("state did not serialize: {e}")))?;
    Ok(out)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ActionError> {
    match bytes.split_first() {
        Some((&SNAPSHOT_V1, body)) => ciborium::from_reader(body)
            .map_err(|e| ActionError::internal(format!("stored state did not load: {e}"))),
        Some((v, _)) => Err(ActionError::internal(format!(
            "unknown snapshot format {v}"
        ))),
        None => Err(ActionError::internal("empty snapshot")),
    }
}

/// A list of values (a queue message's name and body), stored like a snapshot.
pub(crate) fn encode_args(args: &[Value]) -> Result<Vec<u8>, ActionError> {
    encode(args)
}

/// Reads what [`encode_args`] stored.
pub(crate) fn decode_args(bytes: &[u8]) -> Result<Vec<Value>, ActionError> {
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let bytes = encode(&(1, "a")).unwrap();
        assert_eq!(bytes[0], SNAPSHOT_V1);
        assert_eq!(
            decode::<(i32, String)>(&bytes).unwrap(),
            (1, "a".to_owned())
        );
        let mut future = bytes.clone();
        future[0] = 99;
        assert!(decode::<(i32, String)>(&future).is_err());
        assert!(decode::<(i32, String)>(&[]).is_err());
    }
}
