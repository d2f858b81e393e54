//! The wire encodings of the RivetKit client protocol: JSON, CBOR and BARE.
//!
//! ```
//! use footlights_protocol::{ToClient, ToServer, Value};
//! use footlights_protocol::codec::{self, Dialect, Encoding};
//!
//! // A 2.3.x client calls `increment(5)` over a BARE WebSocket.
//! let frame = [4, 0, 0, 0, 9, b'i', b'n', b'c', b'r', b'e', b'm', b'e', b'n', b't', 2, 0x81, 5];
//! let (msg, version) = codec::decode_to_server(&frame, Encoding::Bare, Dialect::Compat)?;
//! assert_eq!(version, Some(4));
//! let ToServer::ActionRequest { id, .. } = msg else { unreachable!() };
//!
//! // The reply, in the same version.
//! let reply = ToClient::ActionResponse { id, output: Value::Int(6) };
//! let bytes = codec::encode_to_client(&reply, Encoding::Bare, 4, Dialect::Compat);
//! assert_eq!(bytes, [4, 0, 2, 0, 1, 6]);
//!
//! // The same reply as JSON: ids are BigInts on the wire.
//! let json = codec::encode_to_client(&reply, Encoding::Json, 4, Dialect::Compat);
//! assert_eq!(json, br#"{"body":{"tag":"ActionResponse","val":{"id":["$BigInt","0"],"output":6}}}"#);
//! # Ok::<(), codec::CodecError>(())
//! ```
//!
//! What this module is:
//! - [`Encoding`] and [`Dialect`], the two per-peer choices (§3.1, §3.4), and the protocol
//!   versions (§9);
//! - encoders and decoders for the realtime messages ([`encode_to_client`],
//!   [`decode_to_server`], and the reverse pair for clients) and for the HTTP bodies
//!   ([`HttpActionRequest`], [`HttpActionResponse`], [`HttpResponseError`],
//!   [`HttpQueueSendRequest`], [`HttpQueueSendResponse`]);
//! - [`Value`] ⇄ JSON and [`Value`] ⇄ CBOR for other places user values travel (connection
//!   params, actor input).
//!
//! What it is not: framing or transport. Choosing the encoding from headers, the dialect from
//! the route and user agent, and the version to answer with is the server's job; the functions
//! here take them as arguments.
//!
//! Every decoder accepts arbitrary bytes: it returns an error rather than panicking, limits
//! nesting to 128 levels, and reserves no memory from lengths it has not checked.
//!
//! Section numbers (§) refer to the parts of the RivetKit client protocol: §3 encodings, §7
//! realtime messages, §8 errors, §9 BARE versions. `docs/http-api.md` in the repository
//! describes the wire format route by route.

mod bare;
mod cbor;
mod cbor_decode;
mod compat;
mod envelope;
mod error;
mod frame;
mod http;
mod json;
mod node;
mod shape;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod prop_tests;

use std::fmt;
use std::str::FromStr;

pub use error::CodecError;
pub use http::{
    HttpActionRequest, HttpActionResponse, HttpQueueSendRequest, HttpQueueSendResponse,
    HttpResponseError, QueueSendStatus,
};

use crate::error::ActionError;
use crate::ids::ActorId;
use crate::message::{ToClient, ToServer};
use crate::value::Value;

/// The newest client-protocol version (written by `rivetkit` 2.3.x).
pub const LATEST_VERSION: u16 = 4;
/// The oldest client-protocol version a BARE body may carry.
pub const OLDEST_VERSION: u16 = 1;
/// The version every supported client reads (2.0.33 writes and reads v2). Use it for BARE
/// output when nothing says the peer is newer: an error after an unparseable request, or a
/// WebSocket opened through a direct gateway URL (§9).
pub const FALLBACK_VERSION: u16 = 2;
/// The first version with the queue bodies.
pub const QUEUE_MIN_VERSION: u16 = 3;

/// The BARE version to answer an HTTP request with (§9): the version of the request body's
/// prefix, or [`FALLBACK_VERSION`] when the request had none (no body, another encoding, or a
/// body that could not be parsed). Never above what the peer wrote.
///
/// ```
/// use footlights_protocol::codec::{response_version, FALLBACK_VERSION};
/// assert_eq!(response_version(Some(4)), 4);
/// assert_eq!(response_version(None), FALLBACK_VERSION);
/// ```
pub fn response_version(request_version: Option<u16>) -> u16 {
    request_version.map_or(FALLBACK_VERSION, |v| {
        v.clamp(OLDEST_VERSION, LATEST_VERSION)
    })
}

/// How messages and bodies are encoded for one peer (§3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Encoding {
    /// JSON text with compat tags (§3.2). The default when nothing is said.
    #[default]
    Json,
    /// A CBOR map of the same shape as the JSON form (§3.3).
    Cbor,
    /// BARE with a 2-byte version prefix; user values inside are CBOR (§3.5–3.7).
    Bare,
}

impl Encoding {
    /// The wire name: `json`, `cbor` or `bare`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Cbor => "cbor",
            Encoding::Bare => "bare",
        }
    }

    /// The `Content-Type` of bodies in this encoding.
    pub const fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Cbor | Encoding::Bare => "application/octet-stream",
        }
    }

    /// Whether WebSocket frames in this encoding are binary (JSON goes in text frames).
    pub const fn is_binary(self) -> bool {
        !matches!(self, Encoding::Json)
    }

    /// The encoding of an HTTP actor request from its `x-rivet-encoding` header: JSON when the
    /// header is absent or unknown, as 2.3.x servers do (§3.1).
    ///
    /// ```
    /// use footlights_protocol::codec::Encoding;
    /// assert_eq!(Encoding::from_header(Some("bare")), Encoding::Bare);
    /// assert_eq!(Encoding::from_header(Some("yaml")), Encoding::Json);
    /// assert_eq!(Encoding::from_header(None), Encoding::Json);
    /// ```
    pub fn from_header(value: Option<&str>) -> Encoding {
        value.and_then(|v| v.parse().ok()).unwrap_or_default()
    }
}

impl FromStr for Encoding {
    type Err = CodecError;

    /// Parses `json`, `cbor` or `bare` (surrounding whitespace ignored, case significant), as
    /// found in `x-rivet-encoding` or after `rivet_encoding.` in a subprotocol.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "json" => Ok(Encoding::Json),
            "cbor" => Ok(Encoding::Cbor),
            "bare" => Ok(Encoding::Bare),
            other => Err(CodecError::UnknownEncoding(other.to_owned())),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which generation of the official client a peer is: how it treats two-element arrays whose
/// first element is a `$`-string inside CBOR (§3.4), and which wording of the errors that
/// differ between generations it gets (§8.3, §8.5).
///
/// `rivetkit` 2.3.x runs a compat reviver over every CBOR document, so such user arrays must be
/// escaped (`$$`) for it and its `$`-tags revived; 2.2.x and older read CBOR natively. JSON is
/// the same in both dialects (always escaped and revived).
///
/// A [masked](ActionError::masked) internal error keeps its group and code and reads
/// [`INTERNAL_MESSAGE`](crate::INTERNAL_MESSAGE) in the compat dialect, as 2.3.x servers send
/// it; in the native dialect it becomes `internal.internal_error` with [`NATIVE_INTERNAL_MESSAGE`],
/// as the TypeScript servers of 2.0.x sent it. Every encoder here applies this to the errors
/// it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// `rivetkit` 2.3.x and newer: escape on output, revive on input. The recommended default.
    #[default]
    Compat,
    /// `rivetkit` 2.2.x and older: plain CBOR both ways.
    Native,
}

impl Dialect {
    /// The dialect a BARE version prefix implies: 4 and above compat, 3 and below native.
    pub const fn from_bare_version(version: u16) -> Dialect {
        if version >= LATEST_VERSION {
            Dialect::Compat
        } else {
            Dialect::Native
        }
    }

    /// The dialect a `User-Agent: RivetKit/x.y.z …` header implies, if it names a version:
    /// 2.3 and newer compat, older native.
    ///
    /// ```
    /// use footlights_protocol::codec::Dialect;
    /// assert_eq!(Dialect::from_user_agent("RivetKit/2.3.19 Mozilla/5.0"), Some(Dialect::Compat));
    /// assert_eq!(Dialect::from_user_agent("RivetKit/2.0.33"), Some(Dialect::Native));
    /// assert_eq!(Dialect::from_user_agent("curl/8.0"), None);
    /// ```
    pub fn from_user_agent(user_agent: &str) -> Option<Dialect> {
        let version = user_agent
            .split_whitespace()
            .find_map(|token| token.strip_prefix("RivetKit/"))?;
        let mut parts = version.split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        Some(if (major, minor) >= (2, 3) {
            Dialect::Compat
        } else {
            Dialect::Native
        })
    }
}

/// The message of a masked internal error for peers of the native dialect (`rivetkit` 2.2 and
/// older), word for word what their own servers sent.
pub const NATIVE_INTERNAL_MESSAGE: &str = "Internal error. Read the server logs for more details.";

/// `error` as a peer of `dialect` should read it: a masked internal error for a native peer is
/// worded the way that generation's servers worded it; anything else is unchanged (`None`).
fn worded_for(error: &ActionError, dialect: Dialect) -> Option<ActionError> {
    (dialect == Dialect::Native && error.is_masked())
        .then(|| ActionError::new("internal", "internal_error", NATIVE_INTERNAL_MESSAGE))
}

/// The actor that produced an error, as v4 errors may carry it (§3.7 `ActorSpecifier`).
///
/// Informational: clients only log it. It is written in JSON and CBOR whenever it is given,
/// and in BARE only from version 4.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActorSpecifier {
    /// The actor's id.
    pub actor_id: ActorId,
    /// How many times the actor has been (re)started.
    pub generation: u64,
    /// The actor's serialized key, if it has one.
    pub key: Option<String>,
}

/// Encodes a message for a client.
///
/// `version` is the BARE version to write (ignored by JSON and CBOR); versions outside 1–4 are
/// clamped into that range. Version 1 writes `Init.connectionToken` (empty when `None`).
/// `dialect` decides the escaping of user arrays in CBOR and in BARE's inner CBOR. JSON output
/// is always valid UTF-8, ready for a text frame.
pub fn encode_to_client(
    message: &ToClient,
    encoding: Encoding,
    version: u16,
    dialect: Dialect,
) -> Vec<u8> {
    encode_to_client_with_actor(message, None, encoding, version, dialect)
}

/// Like [`encode_to_client`], and an [`ToClient::Error`] also carries `actor` (JSON, CBOR, and
/// BARE v4). `actor` is ignored for the other messages.
pub fn encode_to_client_with_actor(
    message: &ToClient,
    actor: Option<&ActorSpecifier>,
    encoding: Encoding,
    version: u16,
    dialect: Dialect,
) -> Vec<u8> {
    let worded = match message {
        ToClient::Error { error, action_id } => {
            worded_for(error, dialect).map(|error| ToClient::Error {
                error,
                action_id: *action_id,
            })
        }
        _ => None,
    };
    let message = worded.as_ref().unwrap_or(message);
    let out = envelope::ToClientOut { message, actor };
    frame::encode(&out, encoding, version, dialect)
}

/// Decodes a message from a server, returning the BARE version when there is one.
///
/// `dialect` is the one this client announced: it decides whether `$`-tagged arrays in CBOR
/// (and in BARE's inner CBOR) are revived. The `actor` of an error is dropped; see
/// [`decode_to_client_with_actor`].
///
/// # Errors
/// Malformed bytes, an unknown message, or a BARE version other than 1–4.
pub fn decode_to_client(
    bytes: &[u8],
    encoding: Encoding,
    dialect: Dialect,
) -> Result<(ToClient, Option<u16>), CodecError> {
    decode_to_client_with_actor(bytes, encoding, dialect).map(|(m, _, v)| (m, v))
}

/// Like [`decode_to_client`], also returning the `actor` of an error.
///
/// # Errors
/// As [`decode_to_client`].
pub fn decode_to_client_with_actor(
    bytes: &[u8],
    encoding: Encoding,
    dialect: Dialect,
) -> Result<(ToClient, Option<ActorSpecifier>, Option<u16>), CodecError> {
    let (decoded, version) = frame::decode::<envelope::ToClientIn>(bytes, encoding, dialect)?;
    Ok((decoded.message, decoded.actor, version))
}

/// Encodes a message for a server (what a Rust client sends).
///
/// `version` is the BARE version (the layouts are identical in 1–4; out-of-range values are
/// clamped); `dialect` decides the escaping of user arrays in CBOR and BARE.
pub fn encode_to_server(
    message: &ToServer,
    encoding: Encoding,
    version: u16,
    dialect: Dialect,
) -> Vec<u8> {
    frame::encode(message, encoding, version, dialect)
}

/// Decodes a message from a client, returning the BARE version prefix when there is one.
///
/// CBOR envelopes from clients are plain CBOR in every client version, so nothing in them is
/// revived (`dialect` is not used for them). For BARE the version prefix decides the dialect
/// of the inner CBOR: 4 means compat, 1–3 native. JSON is always revived.
/// Ids may arrive as BigInts or as plain numbers; missing or `null` args mean no arguments.
///
/// # Errors
/// Malformed bytes, an unknown message, or a BARE version other than 1–4. Answer them with
/// [`CodecError::to_action_error`] (`actor.invalid_request`).
pub fn decode_to_server(
    bytes: &[u8],
    encoding: Encoding,
    dialect: Dialect,
) -> Result<(ToServer, Option<u16>), CodecError> {
    frame::decode(bytes, encoding, dialect)
}

/// Encodes a value as compat-tagged JSON text (§3.2).
///
/// ```
/// use footlights_protocol::Value;
/// use footlights_protocol::codec::value_to_json;
/// let v = Value::Array(vec![Value::BigInt(1), Value::Bytes(vec![1]), Value::Float(f64::NAN)]);
/// assert_eq!(value_to_json(&v), r#"[["$BigInt","1"],["$Uint8Array","AQ=="],null]"#);
/// ```
pub fn value_to_json(value: &Value) -> String {
    let mut out = String::new();
    json::write_value(&mut out, value);
    out
}

/// Decodes JSON text, reviving compat tags (§3.2).
///
/// # Errors
/// Malformed JSON, nesting beyond 128 levels, or an unknown or malformed `$`-tag.
pub fn value_from_json(bytes: &[u8]) -> Result<Value, CodecError> {
    json::decode_value(bytes)
}

/// Encodes a value as one CBOR document the way cbor-x would write it (§3.3).
pub fn value_to_cbor(value: &Value, dialect: Dialect) -> Vec<u8> {
    cbor::encode_value(value, dialect)
}

/// Decodes one CBOR document, reviving `$`-tagged arrays in the compat dialect (§3.3, §3.4).
///
/// # Errors
/// Malformed CBOR, trailing bytes, nesting beyond 128 levels, or (compat) an unknown `$`-tag.
pub fn value_from_cbor(bytes: &[u8], dialect: Dialect) -> Result<Value, CodecError> {
    cbor_decode::decode_value(bytes, dialect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_parse_strictly() {
        assert_eq!("cbor".parse::<Encoding>().unwrap(), Encoding::Cbor);
        assert_eq!(" bare ".parse::<Encoding>().unwrap(), Encoding::Bare);
        assert!(matches!(
            "JSON".parse::<Encoding>(),
            Err(CodecError::UnknownEncoding(e)) if e == "JSON"
        ));
        assert_eq!(Encoding::Bare.to_string(), "bare");
        assert!(Encoding::Cbor.is_binary() && !Encoding::Json.is_binary());
    }

    #[test]
    fn masked_errors_are_worded_for_the_peers_generation() {
        let masked = ActionError::internal("the password is hunter2").masked();
        let error = ToClient::Error {
            error: masked.clone(),
            action_id: Some(3),
        };
        let compat = encode_to_client(&error, Encoding::Json, 4, Dialect::Compat);
        let compat = String::from_utf8(compat).unwrap();
        assert!(
            compat.contains(
                r#""group":"core","code":"internal_error","message":"An internal error occurred""#
            ),
            "{compat}"
        );
        for encoding in [Encoding::Json, Encoding::Cbor, Encoding::Bare] {
            let bytes = encode_to_client(&error, encoding, 2, Dialect::Native);
            let (decoded, _) = decode_to_client(&bytes, encoding, Dialect::Native).unwrap();
            let ToClient::Error { error, action_id } = decoded else {
                panic!("{decoded:?}")
            };
            assert_eq!(
                (error.group(), error.code(), error.message(), action_id),
                (
                    "internal",
                    "internal_error",
                    NATIVE_INTERNAL_MESSAGE,
                    Some(3)
                )
            );
            let body = HttpResponseError::new(masked.clone()).encode(encoding, 2, Dialect::Native);
            let (body, _) = HttpResponseError::decode(&body, encoding, Dialect::Native).unwrap();
            assert_eq!(
                (body.error.group(), body.error.message()),
                ("internal", NATIVE_INTERNAL_MESSAGE)
            );
        }
        // Public errors read the same for every generation.
        let public = ActionError::user("full", "the room is full");
        let body =
            HttpResponseError::new(public.clone()).encode(Encoding::Json, 2, Dialect::Native);
        let (body, _) = HttpResponseError::decode(&body, Encoding::Json, Dialect::Native).unwrap();
        assert_eq!(body.error, public);
    }

    #[test]
    fn dialects_from_versions_and_user_agents() {
        assert_eq!(Dialect::from_bare_version(4), Dialect::Compat);
        assert_eq!(Dialect::from_bare_version(3), Dialect::Native);
        assert_eq!(
            Dialect::from_user_agent("RivetKit/2.2.9"),
            Some(Dialect::Native)
        );
        assert_eq!(
            Dialect::from_user_agent("RivetKit/3.0.0"),
            Some(Dialect::Compat)
        );
        assert_eq!(Dialect::from_user_agent("RivetKit/x"), None);
    }
}
