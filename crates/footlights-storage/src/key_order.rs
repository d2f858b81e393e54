//! The sortable byte form of actor keys, which drivers store beside each actor so that the
//! database orders and lists keys without knowing their structure (both the SQLite and the
//! PostgreSQL drivers store it as `actors.key_sort`).
//!
//! Each part is written with its bytes `0x00` and `0x01` escaped (`0x00` → `01 01`, `0x01` →
//! `01 02`) and ends with a `0x00`. Two properties follow, and both hold inside any database
//! that compares byte strings byte by byte, shorter first on a tie (SQLite's BLOBs, PostgreSQL's
//! `bytea`):
//!
//! - **Order**: encodings compare like the keys do ([`ActorKey`]'s `Ord`: part by part, a key
//!   before its extensions). Within a part, escaping keeps byte order (`00` < `01` < the rest),
//!   and the terminator `00` is smaller than any byte of an escaped part.
//! - **Prefix**: `p` is a prefix of `k` (whole parts) exactly when `encode(p)` is a byte prefix
//!   of `encode(k)`: `["a"]` → `61 00` is a prefix of `["a", "b"]` → `61 00 62 00` but not of
//!   `["ab"]` → `61 62 00`. So listing by prefix is one index range scan, see [`prefix_end`].

use crate::ActorKey;

/// Terminates every part.
const END: u8 = 0x00;
/// Starts an escape of `0x00` or `0x01`.
const ESCAPE: u8 = 0x01;

/// A stored key that no [`encode`] produced.
#[derive(Debug, thiserror::Error)]
#[error("corrupt stored actor key")]
pub struct CorruptKey;

/// The sortable encoding of `key`. The empty key encodes as no bytes.
///
/// ```
/// use footlights_storage::{ActorKey, key_order};
///
/// let room = key_order::encode(&ActorKey::from(["chat", "room-1"].as_slice()));
/// assert_eq!(room, b"chat\x00room-1\x00");
/// assert!(room.starts_with(&key_order::encode(&ActorKey::from(["chat"].as_slice()))));
/// assert_eq!(key_order::decode(&room).unwrap(), ActorKey::from(["chat", "room-1"].as_slice()));
/// ```
pub fn encode(key: &ActorKey) -> Vec<u8> {
    let len = key.parts().iter().map(|p| p.len() + 1).sum();
    let mut out = Vec::with_capacity(len);
    for part in key.parts() {
        for &byte in part.as_bytes() {
            match byte {
                0x00 | 0x01 => out.extend([ESCAPE, byte + 1]),
                other => out.push(other),
            }
        }
        out.push(END);
    }
    out
}

/// Reads back what [`encode`] wrote.
///
/// # Errors
/// [`CorruptKey`] for bytes no [`encode`] wrote.
pub fn decode(mut bytes: &[u8]) -> Result<ActorKey, CorruptKey> {
    let mut parts = Vec::new();
    let mut part = Vec::new();
    while let Some((&byte, rest)) = bytes.split_first() {
        bytes = rest;
        match byte {
            END => {
                parts.push(String::from_utf8(std::mem::take(&mut part)).map_err(|_| CorruptKey)?)
            }
            ESCAPE => {
                let (&escaped, rest) = bytes.split_first().ok_or(CorruptKey)?;
                bytes = rest;
                match escaped {
                    0x01 | 0x02 => part.push(escaped - 1),
                    _ => return Err(CorruptKey),
                }
            }
            other => part.push(other),
        }
    }
    if !part.is_empty() {
        return Err(CorruptKey);
    }
    Ok(ActorKey::new(parts))
}

/// The smallest encoding after every encoding that starts with `prefix` (itself an encoding),
/// or `None` when every key starts with it (the empty prefix).
///
/// A non-empty encoding ends with the part terminator `00`; replacing that byte with `01` gives a bound
/// that every extension of `prefix` is below and nothing else between `prefix` and it fits.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let (_, head) = prefix.split_last()?;
    let mut end = head.to_vec();
    end.push(END + 1);
    Some(end)
}

/// The byte bounds of one page of a listing by key prefix, as drivers scan their
/// `key_sort` index: keys from `start` (the prefix itself) up to `end` (excluded; `None` means
/// no upper bound), and only after `after` (excluded) when a previous page ended there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageBounds {
    /// The encoding of the prefix: the smallest key in the listing.
    pub start: Vec<u8>,
    /// The first encoding past the prefix ([`prefix_end`]).
    pub end: Option<Vec<u8>>,
    /// The last key of the previous page, if it lies in the listing.
    pub after: Option<Vec<u8>>,
}

/// The bounds of the page of keys under `prefix` that follows `after`.
///
/// ```
/// use footlights_storage::{ActorKey, key_order};
///
/// let prefix = ActorKey::from(["chat"].as_slice());
/// let last = ActorKey::from(["chat", "room-1"].as_slice());
/// let page = key_order::page_bounds(&prefix, Some(&last));
/// assert_eq!(page.start, b"chat\x00");
/// assert_eq!(page.end.as_deref(), Some(&b"chat\x01"[..]));
/// assert_eq!(page.after, Some(key_order::encode(&last)));
/// ```
pub fn page_bounds(prefix: &ActorKey, after: Option<&ActorKey>) -> PageBounds {
    let start = encode(prefix);
    let end = prefix_end(&start);
    let after = after.map(encode).filter(|a| *a >= start);
    PageBounds { start, end, after }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(parts: &[&str]) -> ActorKey {
        ActorKey::from(parts)
    }

    #[test]
    fn examples() {
        assert_eq!(encode(&key(&[])), b"");
        assert_eq!(encode(&key(&[""])), b"\x00");
        assert_eq!(encode(&key(&["a", "b"])), b"a\x00b\x00");
        assert_eq!(encode(&key(&["a\u{0}\u{1}"])), b"a\x01\x01\x01\x02\x00");
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"a\x00"), Some(b"a\x01".to_vec()));
    }

    #[test]
    fn part_prefix_is_byte_prefix() {
        let a = encode(&key(&["a"]));
        assert!(encode(&key(&["a", "b"])).starts_with(&a));
        assert!(!encode(&key(&["ab"])).starts_with(&a));
    }

    #[test]
    fn corrupt_encodings_are_rejected() {
        for bad in [&b"a"[..], b"\x01", b"\x01\x03\x00", b"\xff\x00"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    fn any_key() -> impl Strategy<Value = ActorKey> {
        // Small alphabets make shared prefixes, escapes and equal parts likely.
        let part = prop_oneof!["[ab\\x00\\x01/\\\\]{0,3}", ".{0,4}",];
        proptest::collection::vec(part, 0..4).prop_map(ActorKey::new)
    }

    proptest! {
        #[test]
        fn round_trips(k in any_key()) {
            prop_assert_eq!(decode(&encode(&k)).unwrap(), k);
        }

        #[test]
        fn order_is_key_order(a in any_key(), b in any_key()) {
            prop_assert_eq!(encode(&a).cmp(&encode(&b)), a.cmp(&b));
        }

        #[test]
        fn prefix_is_part_prefix(p in any_key(), k in any_key()) {
            let (ep, ek) = (encode(&p), encode(&k));
            prop_assert_eq!(ek.starts_with(&ep), k.starts_with(&p));
            let in_range = ek >= ep && prefix_end(&ep).is_none_or(|end| ek < end);
            prop_assert_eq!(in_range, k.starts_with(&p));

            let extended = ActorKey::new(p.parts().iter().chain(k.parts()).cloned().collect());
            let ee = encode(&extended);
            prop_assert!(ee.starts_with(&ep));
            prop_assert!(prefix_end(&ep).is_none_or(|end| ee < end));
        }
    }
}
