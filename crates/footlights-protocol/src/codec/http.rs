//! Bodies of the HTTP actor routes (§6.1, §6.2, §8.1) in every encoding.
//!
//! Each type has `encode` and `decode`. The BARE version written is the one passed in, clamped
//! into the versions the type exists in (1–4, or 3–4 for the queue types); answer with the
//! version of the request's prefix, or [`FALLBACK_VERSION`](super::FALLBACK_VERSION) when there
//! was none (§9).

use std::ops::RangeInclusive;

use super::bare::{BareReader, BareWriter};
use super::envelope::{error_fields, read_actor, read_error_fields, write_actor};
use super::error::CodecError;
use super::frame::{
    self, Decode, Encode, read_cbor, read_optional_cbor, write_cbor, write_optional_cbor,
};
use super::node::Node;
use super::shape::{Fields, into_args};
use super::{ActorSpecifier, Dialect, Encoding, LATEST_VERSION, OLDEST_VERSION, cbor};
use crate::error::ActionError;
use crate::value::Value;

/// The versions every action body and error body exists in.
const ALL_VERSIONS: RangeInclusive<u16> = OLDEST_VERSION..=LATEST_VERSION;
/// The versions the queue bodies exist in.
const QUEUE_VERSIONS: RangeInclusive<u16> = super::QUEUE_MIN_VERSION..=LATEST_VERSION;

/// Adds `encode` and `decode` to a body type.
macro_rules! wire_methods {
    ($ty:ident, $sender:literal) => {
        impl $ty {
            /// Encodes the body. `version` is used by BARE only (clamped into the versions the
            /// type exists in); `dialect` decides the escaping of user arrays in CBOR and BARE.
            pub fn encode(&self, encoding: Encoding, version: u16, dialect: Dialect) -> Vec<u8> {
                frame::encode(self, encoding, version, dialect)
            }

            /// Decodes a body, returning the BARE version prefix when there is one.
            ///
            #[doc = concat!("This body is sent by ", $sender, ".")]
            /// For CBOR, `dialect` decides whether `$`-tagged arrays are revived. For BARE
            /// bodies sent by clients the version prefix decides instead (4 = compat, 1–3 =
            /// native, §3.4); for bodies sent by servers `dialect` is used.
            ///
            /// # Errors
            /// Malformed bytes, a body of the wrong shape, or a BARE version the type does not
            /// exist in ([`CodecError::UnsupportedVersion`]).
            pub fn decode(
                bytes: &[u8],
                encoding: Encoding,
                dialect: Dialect,
            ) -> Result<(Self, Option<u16>), CodecError> {
                frame::decode(bytes, encoding, dialect)
            }
        }
    };
}

/// The body of `POST /action/{name}`: the action's positional arguments.
///
/// JSON `{"args":[…]}`, CBOR the same map, BARE `HttpActionRequest` (`args` as CBOR). When
/// decoding, missing or `null` args mean no arguments and a non-array is one argument.
///
/// ```
/// use footlights_protocol::Value;
/// use footlights_protocol::codec::{Dialect, Encoding, HttpActionRequest};
///
/// let (req, version) = HttpActionRequest::decode(br#"{"args":[5]}"#, Encoding::Json, Dialect::Compat)?;
/// assert_eq!(req.args, vec![Value::Int(5)]);
/// assert_eq!(version, None);
/// assert_eq!(req.encode(Encoding::Bare, 4, Dialect::Compat), [4, 0, 2, 0x81, 5]);
/// # Ok::<(), footlights_protocol::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpActionRequest {
    /// The positional arguments.
    pub args: Vec<Value>,
}

wire_methods!(HttpActionRequest, "clients");

impl Encode for HttpActionRequest {
    const VERSIONS: RangeInclusive<u16> = ALL_VERSIONS;
    const FROM_CLIENT: bool = true;

    fn node(&self) -> Node<'_> {
        Node::Object(vec![("args", Node::Args(&self.args))])
    }

    fn write_bare(&self, w: &mut BareWriter, _version: u16, dialect: Dialect) {
        w.data(&cbor::encode_args(&self.args, dialect));
    }
}

impl Decode for HttpActionRequest {
    const VERSIONS: RangeInclusive<u16> = ALL_VERSIONS;
    const FROM_CLIENT: bool = true;

    fn from_value(value: Value) -> Result<Self, CodecError> {
        let mut fields = Fields::new(value, "request")?;
        Ok(HttpActionRequest {
            args: into_args(fields.value("args")),
        })
    }

    fn read_bare(r: &mut BareReader<'_>, _: u16, dialect: Dialect) -> Result<Self, CodecError> {
        Ok(HttpActionRequest {
            args: into_args(read_cbor(r, dialect)?),
        })
    }
}

/// The success body of `POST /action/{name}`: the action's output.
///
/// JSON `{"output":…}` (an `undefined` output is written `null`), CBOR the same map, BARE
/// `HttpActionResponse`. A missing output decodes as `undefined`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpActionResponse {
    /// What the action returned.
    pub output: Value,
}

wire_methods!(HttpActionResponse, "servers");

impl Encode for HttpActionResponse {
    const VERSIONS: RangeInclusive<u16> = ALL_VERSIONS;

    fn node(&self) -> Node<'_> {
        Node::Object(vec![("output", Node::Value(&self.output))])
    }

    fn write_bare(&self, w: &mut BareWriter, _version: u16, dialect: Dialect) {
        write_cbor(w, &self.output, dialect);
    }
}

impl Decode for HttpActionResponse {
    const VERSIONS: RangeInclusive<u16> = ALL_VERSIONS;
    const FROM_CLIENT: bool = false;

    fn from_value(value: Value) -> Result<Self, CodecError> {
        let mut fields = Fields::new(value, "response")?;
        Ok(HttpActionResponse {
            output: fields.value("output"),
        })
    }

    fn read_bare(r: &mut BareReader<'_>, _: u16, dialect: Dialect) -> Result<Self, CodecError> {
        Ok(HttpActionResponse {
            output: read_cbor(r, dialect)?,
        })
    }
}

/// The body of a non-2xx answer from an actor route (§8.1).
///
/// JSON `{"group","code","message","metadata"?,"actor"?}`, CBOR the same map, BARE
/// `HttpResponseError` (`actor` only in v4). The error should already be
/// [masked](ActionError::masked).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponseError {
    /// The error.
    pub error: ActionError,
    /// The actor that answered, if the server wants to say (informational).
    pub actor: Option<ActorSpecifier>,
}

impl HttpResponseError {
    /// An error body without actor information.
    pub fn new(error: ActionError) -> Self {
        HttpResponseError { error, actor: None }
    }
}

impl HttpResponseError {
    /// Encodes the body. `version` is used by BARE only (clamped into 1–4); `dialect` decides
    /// the escaping of user arrays in CBOR and BARE, and the wording of a masked internal error
    /// (see [`Dialect`]).
    pub fn encode(&self, encoding: Encoding, version: u16, dialect: Dialect) -> Vec<u8> {
        match super::worded_for(&self.error, dialect) {
            Some(error) => {
                let worded = HttpResponseError {
                    error,
                    actor: self.actor.clone(),
                };
                frame::encode(&worded, encoding, version, dialect)
            }
            None => frame::encode(self, encoding, version, dialect),
        }
    }

    /// Decodes a body, returning the BARE version prefix when there is one.
    ///
    /// This body is sent by servers. For CBOR and BARE, `dialect` decides whether `$`-tagged
    /// arrays are revived.
    ///
    /// # Errors
    /// Malformed bytes, a body of the wrong shape, or a BARE version outside 1–4
    /// ([`CodecError::UnsupportedVersion`]).
    pub fn decode(
        bytes: &[u8],
        encoding: Encoding,
        dialect: Dialect,
    ) -> Result<(Self, Option<u16>), CodecError> {
        frame::decode(bytes, encoding, dialect)
    }
}

impl Encode for HttpResponseError {
    const VERSIONS: RangeInclusive<u16> = ALL_VERSIONS;

    fn node(&self) -> Node<'_> {
        Node::Object(error_fields(&self.error, None, self.actor.as_ref()))
    }

    fn write_bare(&self, w: &mut BareWriter, version: u16, dialect: Dialect) {
        w.str(self.error.group());
        w.str(self.error.code());
        w.str(self.error.message());
        write_optional_cbor(w, self.error.metadata(), dialect);
        if version >= 4 {
            write_actor(w, self.actor.as_ref());
        }
    }
}

impl Decode for HttpResponseError {
    const VERSIONS: RangeInclusive<u16> = ALL_VERSIONS;
    const FROM_CLIENT: bool = false;

    fn from_value(value: Value) -> Result<Self, CodecError> {
        let mut fields = Fields::new(value, "error")?;
        let error = read_error_fields(&mut fields)?;
        Ok(HttpResponseError {
            error,
            actor: fields.actor()?,
        })
    }

    fn read_bare(
        r: &mut BareReader<'_>,
        version: u16,
        dialect: Dialect,
    ) -> Result<Self, CodecError> {
        let (group, code, message) = (r.str()?, r.str()?, r.str()?);
        let metadata = read_optional_cbor(r, dialect)?.filter(|m| *m != Value::Undefined);
        let actor = if version >= 4 { read_actor(r)? } else { None };
        Ok(HttpResponseError {
            error: ActionError::new(group, code, message).with_metadata_value(metadata),
            actor,
        })
    }
}

/// The body of `POST /queue/{name}` (protocol v3+).
///
/// JSON `{"body":…,"name":…,"wait":…,"timeout":…}` with absent options left out, CBOR the same
/// map, BARE `HttpQueueSendRequest`. The queue name in the path is authoritative.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpQueueSendRequest {
    /// The message.
    pub body: Value,
    /// The queue name, as the client repeats it.
    pub name: Option<String>,
    /// Whether to answer only once the actor has completed the message.
    pub wait: Option<bool>,
    /// How long to wait for completion, in milliseconds.
    pub timeout: Option<u64>,
}

wire_methods!(HttpQueueSendRequest, "clients");

impl Encode for HttpQueueSendRequest {
    const VERSIONS: RangeInclusive<u16> = QUEUE_VERSIONS;
    const FROM_CLIENT: bool = true;

    fn node(&self) -> Node<'_> {
        let mut fields = vec![("body", Node::Value(&self.body))];
        if let Some(name) = &self.name {
            fields.push(("name", Node::Str(name)));
        }
        if let Some(wait) = self.wait {
            fields.push(("wait", Node::Bool(wait)));
        }
        if let Some(timeout) = self.timeout {
            fields.push(("timeout", Node::Number(timeout)));
        }
        Node::Object(fields)
    }

    fn write_bare(&self, w: &mut BareWriter, _version: u16, dialect: Dialect) {
        write_cbor(w, &self.body, dialect);
        w.optional_str(self.name.as_deref());
        w.present(self.wait.is_some());
        if let Some(wait) = self.wait {
            w.bool(wait);
        }
        w.present(self.timeout.is_some());
        if let Some(timeout) = self.timeout {
            w.u64(timeout);
        }
    }
}

impl Decode for HttpQueueSendRequest {
    const VERSIONS: RangeInclusive<u16> = QUEUE_VERSIONS;
    const FROM_CLIENT: bool = true;

    fn from_value(value: Value) -> Result<Self, CodecError> {
        let mut fields = Fields::new(value, "request")?;
        Ok(HttpQueueSendRequest {
            body: fields.value("body"),
            name: fields.optional_string("name")?,
            wait: fields.optional_bool("wait")?,
            timeout: fields.optional_u64("timeout")?,
        })
    }

    fn read_bare(r: &mut BareReader<'_>, _: u16, dialect: Dialect) -> Result<Self, CodecError> {
        Ok(HttpQueueSendRequest {
            body: read_cbor(r, dialect)?,
            name: r.optional_str()?,
            wait: r.present()?.then(|| r.bool()).transpose()?,
            timeout: r.present()?.then(|| r.u64()).transpose()?,
        })
    }
}

/// How a queue send ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueueSendStatus {
    /// The message was enqueued (no wait) or the actor completed it.
    Completed,
    /// The wait timed out before the actor completed the message.
    TimedOut,
}

impl QueueSendStatus {
    /// The wire name: `completed` or `timedOut`.
    pub const fn as_str(self) -> &'static str {
        match self {
            QueueSendStatus::Completed => "completed",
            QueueSendStatus::TimedOut => "timedOut",
        }
    }

    fn from_wire(s: &str) -> Result<Self, CodecError> {
        match s {
            "completed" => Ok(QueueSendStatus::Completed),
            "timedOut" => Ok(QueueSendStatus::TimedOut),
            other => Err(CodecError::shape(format!(
                "queue status must be `completed` or `timedOut`, not `{other}`"
            ))),
        }
    }
}

/// The success body of `POST /queue/{name}`.
///
/// JSON `{"status":…,"response":…}` with `response` left out when absent, CBOR the same map,
/// BARE `HttpQueueSendResponse`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpQueueSendResponse {
    /// How the send ended.
    pub status: QueueSendStatus,
    /// The completion value, when the actor completed the message with one.
    pub response: Option<Value>,
}

wire_methods!(HttpQueueSendResponse, "servers");

impl Encode for HttpQueueSendResponse {
    const VERSIONS: RangeInclusive<u16> = QUEUE_VERSIONS;

    fn node(&self) -> Node<'_> {
        let mut fields = vec![("status", Node::Str(self.status.as_str()))];
        if let Some(response) = &self.response {
            fields.push(("response", Node::Value(response)));
        }
        Node::Object(fields)
    }

    fn write_bare(&self, w: &mut BareWriter, _version: u16, dialect: Dialect) {
        w.str(self.status.as_str());
        write_optional_cbor(w, self.response.as_ref(), dialect);
    }
}

impl Decode for HttpQueueSendResponse {
    const VERSIONS: RangeInclusive<u16> = QUEUE_VERSIONS;
    const FROM_CLIENT: bool = false;

    fn from_value(value: Value) -> Result<Self, CodecError> {
        let mut fields = Fields::new(value, "response")?;
        Ok(HttpQueueSendResponse {
            status: QueueSendStatus::from_wire(&fields.string("status")?)?,
            response: fields.take("response"),
        })
    }

    fn read_bare(r: &mut BareReader<'_>, _: u16, dialect: Dialect) -> Result<Self, CodecError> {
        Ok(HttpQueueSendResponse {
            status: QueueSendStatus::from_wire(&r.str()?)?,
            response: read_optional_cbor(r, dialect)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_action_request_args_are_lenient() {
        let cases: [(&[u8], Vec<Value>); 4] = [
            (b"{}", vec![]),
            (br#"{"args":null}"#, vec![]),
            (br#"{"args":5}"#, vec![Value::Int(5)]),
            (br#"{"args":[1,"x"]}"#, vec![Value::Int(1), "x".into()]),
        ];
        for (body, args) in cases {
            let (req, _) =
                HttpActionRequest::decode(body, Encoding::Json, Dialect::Compat).unwrap();
            assert_eq!(req.args, args);
        }
        assert!(HttpActionRequest::decode(b"[1]", Encoding::Json, Dialect::Compat).is_err());
    }

    #[test]
    fn queue_bodies_need_v3() {
        let req = HttpQueueSendRequest::default();
        let bytes = req.encode(Encoding::Bare, 2, Dialect::Native);
        assert_eq!(&bytes[..2], [3, 0]);
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert!(matches!(
            HttpQueueSendRequest::decode(&v2, Encoding::Bare, Dialect::Native),
            Err(CodecError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn queue_status_is_exact() {
        let ok = br#"{"status":"timedOut"}"#;
        let (resp, _) = HttpQueueSendResponse::decode(ok, Encoding::Json, Dialect::Compat).unwrap();
        assert_eq!(resp.status, QueueSendStatus::TimedOut);
        assert_eq!(resp.response, None);
        let bad = br#"{"status":"done"}"#;
        assert!(HttpQueueSendResponse::decode(bad, Encoding::Json, Dialect::Compat).is_err());
        let full = HttpQueueSendResponse {
            status: QueueSendStatus::Completed,
            response: Some(Value::Int(1)),
        };
        assert_eq!(
            full.encode(Encoding::Json, 4, Dialect::Compat),
            br#"{"status":"completed","response":1}"#
        );
    }

    #[test]
    fn error_bodies_in_json_leave_out_absent_fields() {
        let body = HttpResponseError::new(ActionError::user_error("Simple error message"));
        assert_eq!(
            body.encode(Encoding::Json, 4, Dialect::Compat),
            br#"{"group":"user","code":"user_error","message":"Simple error message"}"#
        );
        let with = HttpResponseError {
            error: ActionError::forbidden("no").with_metadata_value(Some(Value::Int(1))),
            actor: Some(ActorSpecifier {
                actor_id: "a1".into(),
                generation: 2,
                key: None,
            }),
        };
        let json = with.encode(Encoding::Json, 4, Dialect::Compat);
        assert_eq!(
            std::str::from_utf8(&json).unwrap(),
            r#"{"group":"auth","code":"forbidden","message":"no","metadata":1,"actor":{"actorId":"a1","generation":2}}"#
        );
        let (back, _) = HttpResponseError::decode(&json, Encoding::Json, Dialect::Compat).unwrap();
        assert_eq!(back, with);
        // v3 BARE has no actor field.
        let v3 = with.encode(Encoding::Bare, 3, Dialect::Native);
        let (back, v) = HttpResponseError::decode(&v3, Encoding::Bare, Dialect::Native).unwrap();
        assert_eq!((back.actor, v), (None, Some(3)));
    }
}
