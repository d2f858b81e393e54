//! The realtime messages ([`ToServer`], [`ToClient`]) in every encoding (§3.7, §7.4, §7.5).
//!
//! JSON and CBOR: `{"body":{"tag":"<Variant>","val":{…}}}` with camelCase fields. Protocol ids
//! are BigInts (`["$BigInt","7"]`, `0x1b` + 8 bytes), `Error.actionId` is always present
//! (`null` for connection errors), `Error.metadata` is left out when there is none, and event
//! arguments are always an array.
//!
//! BARE: a union tag, then the variant's fields in order; user values are CBOR `data`.

use super::bare::{BareReader, BareWriter};
use super::error::CodecError;
use super::frame::{
    Decode, Encode, read_cbor, read_optional_cbor, write_cbor, write_optional_cbor,
};
use super::node::Node;
use super::shape::{Fields, into_args};
use super::{ActorSpecifier, Dialect, LATEST_VERSION, OLDEST_VERSION, cbor, cbor_decode};
use crate::error::ActionError;
use crate::ids::{ActorId, ConnId};
use crate::message::{ToClient, ToServer};
use crate::value::Value;

/// The first version whose errors carry an `actor` field.
const ACTOR_FIELD_VERSION: u16 = 4;

/// Wraps a variant's fields as `{"body":{"tag":…,"val":…}}`.
fn envelope<'a>(tag: &'static str, val: Vec<(&'static str, Node<'a>)>) -> Node<'a> {
    Node::Object(vec![(
        "body",
        Node::Object(vec![("tag", Node::Str(tag)), ("val", Node::Object(val))]),
    )])
}

/// Unwraps `{"body":{"tag":…,"val":…}}` into the tag and the fields of `val`.
fn open_envelope(value: Value) -> Result<(String, Fields), CodecError> {
    let mut root = Fields::new(value, "message")?;
    let mut body = root.object("body")?;
    let tag = body.string("tag")?;
    let val = body.object("val")?;
    Ok((tag, val))
}

fn unknown_variant(union: &str, tag: &str) -> CodecError {
    CodecError::shape(format!("unknown {union} variant `{tag}`"))
}

fn unknown_bare_variant(r: &BareReader<'_>) -> CodecError {
    CodecError::Bare {
        offset: r.offset(),
        reason: "unknown union tag",
    }
}

/// The envelope fields of an error, shared with the HTTP error body.
pub(crate) fn error_fields<'a>(
    error: &'a ActionError,
    action_id: Option<Option<u64>>,
    actor: Option<&'a ActorSpecifier>,
) -> Vec<(&'static str, Node<'a>)> {
    let mut fields = vec![
        ("group", Node::Str(error.group())),
        ("code", Node::Str(error.code())),
        ("message", Node::Str(error.message())),
    ];
    if let Some(metadata) = error.metadata().filter(|m| **m != Value::Undefined) {
        fields.push(("metadata", Node::Value(metadata)));
    }
    if let Some(action_id) = action_id {
        fields.push(("actionId", action_id.map_or(Node::Null, Node::Id)));
    }
    if let Some(actor) = actor {
        let mut spec = vec![
            ("actorId", Node::Str(actor.actor_id.as_str())),
            ("generation", Node::Number(actor.generation)),
        ];
        if let Some(key) = &actor.key {
            spec.push(("key", Node::Str(key)));
        }
        fields.push(("actor", Node::Object(spec)));
    }
    fields
}

/// Reads the group, code, message and metadata of an error envelope.
pub(crate) fn read_error_fields(val: &mut Fields) -> Result<ActionError, CodecError> {
    let group = val.string("group")?;
    let code = val.string("code")?;
    let message = val.string("message")?;
    let metadata = val.take("metadata").filter(|m| *m != Value::Undefined);
    Ok(ActionError::new(group, code, message).with_metadata_value(metadata))
}

/// Writes an `optional<ActorSpecifier>`.
pub(crate) fn write_actor(w: &mut BareWriter, actor: Option<&ActorSpecifier>) {
    w.present(actor.is_some());
    if let Some(actor) = actor {
        w.str(actor.actor_id.as_str());
        w.uint(actor.generation);
        w.optional_str(actor.key.as_deref());
    }
}

/// Reads an `optional<ActorSpecifier>`.
pub(crate) fn read_actor(r: &mut BareReader<'_>) -> Result<Option<ActorSpecifier>, CodecError> {
    if !r.present()? {
        return Ok(None);
    }
    Ok(Some(ActorSpecifier {
        actor_id: ActorId::new(r.str()?),
        generation: r.uint()?,
        key: r.optional_str()?,
    }))
}

impl Encode for ToServer {
    const VERSIONS: std::ops::RangeInclusive<u16> = OLDEST_VERSION..=LATEST_VERSION;
    const FROM_CLIENT: bool = true;

    fn node(&self) -> Node<'_> {
        match self {
            ToServer::ActionRequest { id, name, args } => envelope(
                "ActionRequest",
                vec![
                    ("id", Node::Id(*id)),
                    ("name", Node::Str(name)),
                    ("args", Node::Args(args)),
                ],
            ),
            ToServer::SubscriptionRequest {
                event_name,
                subscribe,
            } => envelope(
                "SubscriptionRequest",
                vec![
                    ("eventName", Node::Str(event_name)),
                    ("subscribe", Node::Bool(*subscribe)),
                ],
            ),
        }
    }

    fn write_bare(&self, w: &mut BareWriter, _version: u16, dialect: Dialect) {
        match self {
            ToServer::ActionRequest { id, name, args } => {
                w.uint(0);
                w.uint(*id);
                w.str(name);
                w.data(&cbor::encode_args(args, dialect));
            }
            ToServer::SubscriptionRequest {
                event_name,
                subscribe,
            } => {
                w.uint(1);
                w.str(event_name);
                w.bool(*subscribe);
            }
        }
    }
}

impl Decode for ToServer {
    const VERSIONS: std::ops::RangeInclusive<u16> = OLDEST_VERSION..=LATEST_VERSION;
    const FROM_CLIENT: bool = true;

    fn from_value(value: Value) -> Result<Self, CodecError> {
        let (tag, mut val) = open_envelope(value)?;
        match tag.as_str() {
            "ActionRequest" => Ok(ToServer::ActionRequest {
                id: val.u64("id")?,
                name: val.string("name")?,
                args: into_args(val.value("args")),
            }),
            "SubscriptionRequest" => Ok(ToServer::SubscriptionRequest {
                event_name: val.string("eventName")?,
                subscribe: val.bool("subscribe")?,
            }),
            other => Err(unknown_variant("ToServer", other)),
        }
    }

    fn read_bare(
        r: &mut BareReader<'_>,
        _version: u16,
        dialect: Dialect,
    ) -> Result<Self, CodecError> {
        match r.uint()? {
            0 => Ok(ToServer::ActionRequest {
                id: r.uint()?,
                name: r.str()?,
                args: into_args(cbor_decode::decode_value(r.data()?, dialect)?),
            }),
            1 => Ok(ToServer::SubscriptionRequest {
                event_name: r.str()?,
                subscribe: r.bool()?,
            }),
            _ => Err(unknown_bare_variant(r)),
        }
    }
}

/// A [`ToClient`] on its way out, with the optional actor of an error.
pub(crate) struct ToClientOut<'a> {
    pub(crate) message: &'a ToClient,
    pub(crate) actor: Option<&'a ActorSpecifier>,
}

impl Encode for ToClientOut<'_> {
    const VERSIONS: std::ops::RangeInclusive<u16> = OLDEST_VERSION..=LATEST_VERSION;

    fn node(&self) -> Node<'_> {
        match self.message {
            ToClient::Init {
                actor_id,
                connection_id,
                connection_token,
            } => {
                let mut val = vec![
                    ("actorId", Node::Str(actor_id.as_str())),
                    ("connectionId", Node::Str(connection_id.as_str())),
                ];
                if let Some(token) = connection_token {
                    val.push(("connectionToken", Node::Str(token)));
                }
                envelope("Init", val)
            }
            ToClient::Error { error, action_id } => {
                envelope("Error", error_fields(error, Some(*action_id), self.actor))
            }
            ToClient::ActionResponse { id, output } => envelope(
                "ActionResponse",
                vec![("id", Node::Id(*id)), ("output", Node::Value(output))],
            ),
            ToClient::Event { name, args } => event_node(name, args),
            ToClient::Broadcast(event) => event_node(event.name(), event.args()),
        }
    }

    fn write_bare(&self, w: &mut BareWriter, version: u16, dialect: Dialect) {
        match self.message {
            ToClient::Init {
                actor_id,
                connection_id,
                connection_token,
            } => {
                w.uint(0);
                w.str(actor_id.as_str());
                w.str(connection_id.as_str());
                if version == 1 {
                    w.str(connection_token.as_deref().unwrap_or_default());
                }
            }
            ToClient::Error { error, action_id } => {
                w.uint(1);
                w.str(error.group());
                w.str(error.code());
                w.str(error.message());
                write_optional_cbor(w, error.metadata(), dialect);
                w.optional_uint(*action_id);
                if version >= ACTOR_FIELD_VERSION {
                    write_actor(w, self.actor);
                }
            }
            ToClient::ActionResponse { id, output } => {
                w.uint(2);
                w.uint(*id);
                write_cbor(w, output, dialect);
            }
            ToClient::Event { name, args } => write_event(w, name, args, dialect),
            ToClient::Broadcast(event) => write_event(w, event.name(), event.args(), dialect),
        }
    }
}

fn event_node<'a>(name: &'a str, args: &'a [Value]) -> Node<'a> {
    envelope(
        "Event",
        vec![("name", Node::Str(name)), ("args", Node::Args(args))],
    )
}

fn write_event(w: &mut BareWriter, name: &str, args: &[Value], dialect: Dialect) {
    w.uint(3);
    w.str(name);
    w.data(&cbor::encode_args(args, dialect));
}

/// A decoded [`ToClient`] with the optional actor of an error.
pub(crate) struct ToClientIn {
    pub(crate) message: ToClient,
    pub(crate) actor: Option<ActorSpecifier>,
}

impl Decode for ToClientIn {
    const VERSIONS: std::ops::RangeInclusive<u16> = OLDEST_VERSION..=LATEST_VERSION;
    const FROM_CLIENT: bool = false;

    fn from_value(value: Value) -> Result<Self, CodecError> {
        let (tag, mut val) = open_envelope(value)?;
        let mut actor = None;
        let message = match tag.as_str() {
            "Init" => ToClient::Init {
                actor_id: ActorId::new(val.string("actorId")?),
                connection_id: ConnId::new(val.string("connectionId")?),
                connection_token: val.optional_string("connectionToken")?,
            },
            "Error" => {
                let error = read_error_fields(&mut val)?;
                let action_id = val.optional_u64("actionId")?;
                actor = val.actor()?;
                ToClient::Error { error, action_id }
            }
            "ActionResponse" => ToClient::ActionResponse {
                id: val.u64("id")?,
                output: val.value("output"),
            },
            "Event" => ToClient::Event {
                name: val.string("name")?,
                args: into_args(val.value("args")),
            },
            other => return Err(unknown_variant("ToClient", other)),
        };
        Ok(ToClientIn { message, actor })
    }

    fn read_bare(
        r: &mut BareReader<'_>,
        version: u16,
        dialect: Dialect,
    ) -> Result<Self, CodecError> {
        let mut actor = None;
        let message = match r.uint()? {
            0 => ToClient::Init {
                actor_id: ActorId::new(r.str()?),
                connection_id: ConnId::new(r.str()?),
                connection_token: if version == 1 {
                    Some(r.str()?).filter(|t| !t.is_empty())
                } else {
                    None
                },
            },
            1 => {
                let (group, code, message) = (r.str()?, r.str()?, r.str()?);
                let metadata = read_optional_cbor(r, dialect)?.filter(|m| *m != Value::Undefined);
                let action_id = r.optional_uint()?;
                if version >= ACTOR_FIELD_VERSION {
                    actor = read_actor(r)?;
                }
                ToClient::Error {
                    error: ActionError::new(group, code, message).with_metadata_value(metadata),
                    action_id,
                }
            }
            2 => ToClient::ActionResponse {
                id: r.uint()?,
                output: read_cbor(r, dialect)?,
            },
            3 => ToClient::Event {
                name: r.str()?,
                args: into_args(read_cbor(r, dialect)?),
            },
            _ => return Err(unknown_bare_variant(r)),
        };
        Ok(ToClientIn { message, actor })
    }
}
