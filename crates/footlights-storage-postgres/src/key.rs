//! The sortable byte form of actor keys, stored in `actors.key_sort`.
//!
//! A key is written part after part; each part is its UTF-8 bytes with `0x00` written as
//! `01 01` and `0x01` as `01 02`, followed by a `0x00` terminator. PostgreSQL compares `bytea`
//! values byte by byte, shorter first on a tie, so:
//!
//! - the byte forms sort as the keys do ([`ActorKey`]'s order: part by part, a key before its
//!   extensions), because the escapes keep the order of the bytes they stand for and the
//!   terminator sorts below every byte of a part;
//! - `p` is a whole-part prefix of `k` exactly when the form of `p` is a byte prefix of the form
//!   of `k` (`["a"]` → `61 00` starts `["a", "b"]` → `61 00 62 00`, not `["ab"]` → `61 62 00`),
//!   so listing by prefix is one range scan of the unique `(name, key_sort)` index, up to
//!   [`prefix_end`].
//!
//! This is the same form the SQLite driver stores, so both order and list keys alike.

use footlights_storage::ActorKey;

/// Ends each part.
const TERMINATOR: u8 = 0x00;
/// Starts the two-byte form of `0x00` and `0x01`.
const ESCAPE: u8 = 0x01;

/// Bytes in `actors.key_sort` that [`encode`] did not write.
#[derive(Debug, thiserror::Error)]
#[error("a stored actor key is corrupt")]
pub(crate) struct CorruptKey;

/// The sortable form of `key`; the empty key is the empty byte string.
pub(crate) fn encode(key: &ActorKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.parts().iter().map(|p| p.len() + 1).sum());
    for part in key.parts() {
        for &b in part.as_bytes() {
            if b <= 0x01 {
                out.push(ESCAPE);
                out.push(b + 1);
            } else {
                out.push(b);
            }
        }
        out.push(TERMINATOR);
    }
    out
}

/// The key whose sortable form is `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Result<ActorKey, CorruptKey> {
    let mut parts = Vec::new();
    let mut part = Vec::new();
    let mut rest = bytes.iter();
    while let Some(&b) = rest.next() {
        match b {
            TERMINATOR => {
                let done = std::mem::take(&mut part);
                parts.push(String::from_utf8(done).map_err(|_| CorruptKey)?);
            }
            ESCAPE => match rest.next() {
                Some(&e @ (0x01 | 0x02)) => part.push(e - 1),
                _ => return Err(CorruptKey),
            },
            other => part.push(other),
        }
    }
    if part.is_empty() {
        Ok(ActorKey::new(parts))
    } else {
        Err(CorruptKey)
    }
}

/// The first byte string after every form that starts with `prefix` (itself a form), or
/// `None` for the empty prefix, which every form starts with. A non-empty form ends with the
/// terminator; raising it to `0x01` gives a bound above every extension of `prefix` and below
/// everything else after it.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let (_, head) = prefix.split_last()?;
    let mut end = Vec::with_capacity(prefix.len());
    end.extend_from_slice(head);
    end.push(TERMINATOR + 1);
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(parts: &[&str]) -> ActorKey {
        ActorKey::from(parts)
    }

    #[test]
    fn forms_round_trip_and_sort_like_keys() {
        let keys = [
            key(&[]),
            key(&[""]),
            key(&["", ""]),
            key(&["\u{0}"]),
            key(&["\u{0}", "a"]),
            key(&["\u{1}"]),
            key(&["a"]),
            key(&["a", ""]),
            key(&["a", "b"]),
            key(&["a\u{0}"]),
            key(&["a\u{1}b"]),
            key(&["ab"]),
            key(&["é"]),
        ];
        for a in &keys {
            assert_eq!(&decode(&encode(a)).unwrap(), a);
            for b in &keys {
                assert_eq!(encode(a).cmp(&encode(b)), a.cmp(b), "{a:?} vs {b:?}");
                let (fa, fb) = (encode(a), encode(b));
                let in_range = fb >= fa && prefix_end(&fa).is_none_or(|end| fb < end);
                assert_eq!(in_range, b.starts_with(a), "{a:?} prefix of {b:?}");
            }
        }
    }

    #[test]
    fn corrupt_forms_are_refused() {
        for bad in [&b"a"[..], b"\x01", b"\x01\x03\x00", b"\xff\x00"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
