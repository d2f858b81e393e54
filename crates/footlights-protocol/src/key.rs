//! Actor keys: the user-chosen address of an actor within its name.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The key of an actor: a list of strings chosen by the user, such as `["general"]`.
///
/// No key and the empty list are the same key; a plain string is a one-element key.
/// [`Display`](fmt::Display) writes the serialized form clients put on the wire (`"/"` for the
/// empty key, parts joined with `/`, with `\` and `/` escaped), and [`FromStr`] reads it.
///
/// ```
/// use footlights_protocol::ActorKey;
/// assert_eq!(ActorKey::from("general"), ActorKey::from(["general"]));
/// assert_eq!(ActorKey::default().to_string(), "/");
/// assert_eq!(ActorKey::from(["a/b", ""]).to_string(), "a\\/b/\\0");
/// let back: ActorKey = "a\\/b/\\0".parse().unwrap();
/// assert_eq!(back, ActorKey::from(["a/b", ""]));
/// ```
///
/// The parts are shared: a clone costs a reference count, not a copy, so the many places that
/// keep an actor's key (its context, the registry's key cache, the store's records) hold one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(from = "Vec<String>")]
pub struct ActorKey(Arc<[String]>);

/// A list of strings on the wire, as the derived form of a `Vec<String>` would be.
impl Serialize for ActorKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl ActorKey {
    /// A key from its parts.
    pub fn new(parts: Vec<String>) -> Self {
        ActorKey(parts.into())
    }

    /// The key's parts.
    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// `true` for the empty key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `prefix`'s parts are the first parts of this key.
    pub fn starts_with(&self, prefix: &ActorKey) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for ActorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("/");
        }
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            if part.is_empty() {
                f.write_str("\\0")?;
                continue;
            }
            for ch in part.chars() {
                match ch {
                    '\\' => f.write_str("\\\\")?,
                    '/' => f.write_str("\\/")?,
                    c => fmt::Write::write_char(f, c)?,
                }
            }
        }
        Ok(())
    }
}

impl FromStr for ActorKey {
    type Err = std::convert::Infallible;

    /// Parses the serialized form. Every string parses: unknown escapes are taken literally.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s == "/" {
            return Ok(ActorKey::default());
        }
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut separators = 0usize;
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('0') => {}
                    Some(other) => current.push(other),
                    None => current.push('\\'),
                },
                '/' => {
                    separators += 1;
                    parts.push(std::mem::take(&mut current));
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() || separators > 0 || parts.is_empty() {
            parts.push(current);
        }
        Ok(ActorKey(parts.into()))
    }
}

impl From<&str> for ActorKey {
    fn from(s: &str) -> Self {
        ActorKey(Arc::from([s.to_owned()]))
    }
}

impl From<String> for ActorKey {
    fn from(s: String) -> Self {
        ActorKey(Arc::from([s]))
    }
}

impl From<Vec<String>> for ActorKey {
    fn from(parts: Vec<String>) -> Self {
        ActorKey(parts.into())
    }
}

impl From<&[&str]> for ActorKey {
    fn from(parts: &[&str]) -> Self {
        ActorKey(parts.iter().map(|p| (*p).to_owned()).collect())
    }
}

impl<const N: usize> From<[&str; N]> for ActorKey {
    fn from(parts: [&str; N]) -> Self {
        ActorKey(parts.iter().map(|p| (*p).to_owned()).collect())
    }
}

impl From<()> for ActorKey {
    fn from((): ()) -> Self {
        ActorKey::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(parts: &[&str], wire: &str) {
        let key = ActorKey::from(parts);
        assert_eq!(key.to_string(), wire, "serializing {parts:?}");
        assert_eq!(wire.parse::<ActorKey>().unwrap(), key, "parsing {wire:?}");
    }

    #[test]
    fn protocol_examples() {
        round_trip(&[], "/");
        round_trip(&["a", "b"], "a/b");
        round_trip(&["a/b"], "a\\/b");
        round_trip(&[""], "\\0");
        round_trip(&["x", ""], "x/\\0");
        round_trip(&["back\\slash"], "back\\\\slash");
    }

    #[test]
    fn trailing_lone_backslash_is_literal() {
        assert_eq!("a\\".parse::<ActorKey>().unwrap(), ActorKey::from("a\\"));
    }

    #[test]
    fn no_key_and_empty_list_are_equal() {
        assert_eq!(ActorKey::from(()), ActorKey::new(vec![]));
        assert_eq!(ActorKey::from("x"), ActorKey::from(["x"]));
    }

    #[test]
    fn on_the_wire_a_key_is_a_list_of_strings() {
        let key = ActorKey::from(["room", "general"]);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, r#"["room","general"]"#);
        assert_eq!(serde_json::from_str::<ActorKey>(&json).unwrap(), key);
        let mut cbor = Vec::new();
        ciborium::into_writer(&key, &mut cbor).unwrap();
        let as_list: Vec<String> = ciborium::from_reader(cbor.as_slice()).unwrap();
        assert_eq!(as_list, ["room", "general"]);
        assert_eq!(
            ciborium::from_reader::<ActorKey, _>(cbor.as_slice()).unwrap(),
            key
        );
    }

    #[test]
    fn a_clone_shares_the_parts() {
        let key = ActorKey::from(["a", "b"]);
        let copy = key.clone();
        assert!(std::ptr::eq(key.parts(), copy.parts()));
    }

    proptest::proptest! {
        #[test]
        fn any_key_round_trips(parts in proptest::collection::vec(".*", 0..4)) {
            let key = ActorKey::new(parts);
            let parsed: ActorKey = key.to_string().parse().unwrap();
            proptest::prop_assert_eq!(parsed, key);
        }
    }
}
