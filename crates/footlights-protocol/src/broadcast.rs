//! [`SharedEvent`]: one event on its way to many connections, encoded once per wire format.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::codec::{Dialect, Encoding, LATEST_VERSION, OLDEST_VERSION, encode_to_client};
use crate::message::ToClient;
use crate::value::Value;

/// How many distinct wire forms an event has: JSON (one), CBOR (one per dialect) and BARE (one
/// per version and dialect).
const FORMS: usize = 1 + 2 + 2 * (LATEST_VERSION - OLDEST_VERSION + 1) as usize;

/// An event built once and shared by every connection it is sent to.
///
/// Cloning is a reference-count increment. [`encoded`](Self::encoded) encodes the event the
/// first time a wire format is asked for and hands out the same bytes afterwards, so a
/// broadcast to a thousand JSON connections costs one encoding.
///
/// ```
/// use footlights_protocol::codec::{Dialect, Encoding, encode_to_client};
/// use footlights_protocol::{SharedEvent, ToClient, Value};
///
/// let event = SharedEvent::new("newCount", vec![Value::Int(7)]);
/// let first = event.encoded(Encoding::Json, 4, Dialect::Compat);
/// let again = event.clone().encoded(Encoding::Json, 4, Dialect::Compat);
/// assert_eq!(first.as_ptr(), again.as_ptr(), "encoded once");
/// let plain = ToClient::Event { name: "newCount".into(), args: vec![Value::Int(7)] };
/// assert_eq!(first, encode_to_client(&plain, Encoding::Json, 4, Dialect::Compat));
/// ```
#[derive(Clone)]
pub struct SharedEvent {
    inner: Arc<Inner>,
}

struct Inner {
    /// Always a [`ToClient::Event`].
    message: ToClient,
    frames: [OnceLock<Bytes>; FORMS],
    /// [`ToClient::approx_size`] of `message`, counted once for every connection.
    size: OnceLock<usize>,
}

impl SharedEvent {
    /// An event with this wire name and these arguments.
    pub fn new(name: impl Into<String>, args: Vec<Value>) -> Self {
        SharedEvent {
            inner: Arc::new(Inner {
                message: ToClient::Event {
                    name: name.into(),
                    args,
                },
                frames: std::array::from_fn(|_| OnceLock::new()),
                size: OnceLock::new(),
            }),
        }
    }

    /// About how many bytes the event takes on the wire (see [`ToClient::approx_size`]),
    /// counted once and shared by every connection it goes to.
    pub fn approx_size(&self) -> usize {
        *self
            .inner
            .size
            .get_or_init(|| self.inner.message.approx_size())
    }

    /// The event's wire name.
    pub fn name(&self) -> &str {
        match &self.inner.message {
            ToClient::Event { name, .. } => name,
            _ => unreachable!("a shared event holds an event"),
        }
    }

    /// The event's arguments.
    pub fn args(&self) -> &[Value] {
        match &self.inner.message {
            ToClient::Event { args, .. } => args,
            _ => unreachable!("a shared event holds an event"),
        }
    }

    /// The same event as a plain, unshared [`ToClient::Event`] (a copy).
    pub fn to_event(&self) -> ToClient {
        self.inner.message.clone()
    }

    /// The event as [`encode_to_client`] writes it, encoded on the first call for each wire
    /// format and shared afterwards. Versions and dialects that do not change the bytes of an
    /// event (JSON ignores both, CBOR the version) share one encoding.
    pub fn encoded(&self, encoding: Encoding, version: u16, dialect: Dialect) -> Bytes {
        self.inner.frames[form(encoding, version, dialect)]
            .get_or_init(|| {
                Bytes::from(encode_to_client(
                    &self.inner.message,
                    encoding,
                    version,
                    dialect,
                ))
            })
            .clone()
    }
}

/// The slot of a wire format in [`Inner::frames`].
fn form(encoding: Encoding, version: u16, dialect: Dialect) -> usize {
    let dialect = match dialect {
        Dialect::Compat => 0,
        Dialect::Native => 1,
    };
    match encoding {
        Encoding::Json => 0,
        Encoding::Cbor => 1 + dialect,
        Encoding::Bare => {
            // Encoding clamps the version the same way.
            let version =
                usize::from(version.clamp(OLDEST_VERSION, LATEST_VERSION) - OLDEST_VERSION);
            3 + 2 * version + dialect
        }
    }
}

impl fmt::Debug for SharedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedEvent")
            .field("name", &self.name())
            .field("args", &self.args())
            .finish()
    }
}

/// Events are equal when their names and arguments are.
impl PartialEq for SharedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.inner.message == other.inner.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{FALLBACK_VERSION, decode_to_client};

    const ENCODINGS: [Encoding; 3] = [Encoding::Json, Encoding::Cbor, Encoding::Bare];
    const DIALECTS: [Dialect; 2] = [Dialect::Compat, Dialect::Native];

    fn sample() -> (String, Vec<Value>) {
        // A `$`-tagged user array: escaped differently per dialect in CBOR and BARE.
        let tagged = Value::Array(vec![Value::from("$BigInt"), Value::from("x")]);
        let args = vec![
            Value::Int(-3),
            Value::from("héllo"),
            tagged,
            Value::Bytes(vec![0, 1, 255]),
        ];
        ("newCount".to_owned(), args)
    }

    #[test]
    fn every_form_matches_a_fresh_encoding_of_the_plain_event() {
        let (name, args) = sample();
        let shared = SharedEvent::new(name.clone(), args.clone());
        let plain = ToClient::Event { name, args };
        // Twice over, so the second pass reads the cache; versions out of range are clamped.
        for _ in 0..2 {
            for encoding in ENCODINGS {
                for dialect in DIALECTS {
                    for version in 0..=LATEST_VERSION + 1 {
                        assert_eq!(
                            shared.encoded(encoding, version, dialect),
                            encode_to_client(&plain, encoding, version, dialect),
                            "{encoding} v{version} {dialect:?}"
                        );
                        assert_eq!(
                            encode_to_client(
                                &ToClient::Broadcast(shared.clone()),
                                encoding,
                                version,
                                dialect
                            ),
                            encode_to_client(&plain, encoding, version, dialect),
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn forms_are_distinct_where_the_bytes_differ() {
        let (name, args) = sample();
        let shared = SharedEvent::new(name, args);
        let bare_v2 = shared.encoded(Encoding::Bare, 2, Dialect::Native);
        let bare_v4 = shared.encoded(Encoding::Bare, 4, Dialect::Native);
        assert_ne!(bare_v2, bare_v4, "the version prefix differs");
        let compat = shared.encoded(Encoding::Cbor, 4, Dialect::Compat);
        let native = shared.encoded(Encoding::Cbor, 4, Dialect::Native);
        assert_ne!(compat, native, "`$` arrays are escaped only for compat");
        let mut slots: Vec<usize> = ENCODINGS
            .iter()
            .flat_map(|&e| {
                DIALECTS.iter().flat_map(move |&d| {
                    (OLDEST_VERSION..=LATEST_VERSION).map(move |v| form(e, v, d))
                })
            })
            .collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots, (0..FORMS).collect::<Vec<_>>());
    }

    #[test]
    fn cached_bytes_are_shared_and_decode_back() {
        let (name, args) = sample();
        let shared = SharedEvent::new(name.clone(), args.clone());
        let a = shared.encoded(Encoding::Bare, FALLBACK_VERSION, Dialect::Native);
        let b = shared
            .clone()
            .encoded(Encoding::Bare, FALLBACK_VERSION, Dialect::Native);
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "the second call reuses the first encoding"
        );
        let (decoded, version) = decode_to_client(&a, Encoding::Bare, Dialect::Native).unwrap();
        assert_eq!(version, Some(FALLBACK_VERSION));
        assert_eq!(decoded, ToClient::Event { name, args });
        assert_eq!(decoded.as_event(), ToClient::Broadcast(shared).as_event());
    }
}
