//! Property tests: random values and messages survive every encoding (up to the documented
//! normalisations), and every decoder returns `Ok` or `Err` on arbitrary bytes without
//! panicking.

use proptest::collection::vec;
use proptest::prelude::*;

use super::json::{iso_date, key_string};
use super::*;
use crate::error::ActionError;

// ---------------------------------------------------------------------------------------------
// Strategies

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,6}",
        "\\$\\$?[A-Za-z]{0,8}",
        Just("$BigInt".to_owned()),
        Just("$Uint8Array".to_owned()),
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Undefined),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-(1i64 << 40)..(1i64 << 40)).prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        any::<i128>().prop_map(Value::BigInt),
        any::<i64>().prop_map(|i| Value::BigInt(i.into())),
        arb_string().prop_map(Value::String),
        vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
        // Whole milliseconds, within ±1e14 (year ~5100), where seconds as a float64 keep
        // millisecond precision.
        (-100_000_000_000_000i64..100_000_000_000_000).prop_map(|ms| Value::Date(ms as f64)),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            (arb_string(), inner.clone()).prop_map(|(s, v)| Value::Array(vec![s.into(), v])),
            vec((arb_string(), inner.clone()), 0..5).prop_map(|fields| {
                let mut unique: Vec<(String, Value)> = Vec::new();
                for (k, v) in fields {
                    if !unique.iter().any(|(u, _)| *u == k) {
                        unique.push((k, v));
                    }
                }
                Value::Object(unique)
            }),
            vec((any::<i32>(), inner.clone()), 1..4).prop_map(|entries| {
                let mut unique: Vec<(Value, Value)> = Vec::new();
                for (k, v) in entries {
                    let k = Value::Int(k.into());
                    if !unique.iter().any(|(u, _)| *u == k) {
                        unique.push((k, v));
                    }
                }
                Value::Map(unique)
            }),
            vec(inner, 0..4).prop_map(Value::Set),
        ]
    })
}

fn arb_error() -> impl Strategy<Value = ActionError> {
    (
        "[a-z]{1,6}",
        "[a-z_]{1,10}",
        any::<String>(),
        proptest::option::of(arb_value()),
    )
        .prop_map(|(g, c, m, md)| ActionError::new(g, c, m).with_metadata_value(md))
}

fn arb_actor() -> impl Strategy<Value = Option<ActorSpecifier>> {
    proptest::option::of(
        // Generations travel as JavaScript numbers in JSON: exact up to 2^53.
        (
            "[a-z0-9]{1,8}",
            0..=(1u64 << 53),
            proptest::option::of(any::<String>()),
        )
            .prop_map(|(id, generation, key)| ActorSpecifier {
                actor_id: id.into(),
                generation,
                key,
            }),
    )
}

fn arb_to_server() -> impl Strategy<Value = ToServer> {
    prop_oneof![
        (any::<u64>(), any::<String>(), vec(arb_value(), 0..4))
            .prop_map(|(id, name, args)| ToServer::ActionRequest { id, name, args }),
        (any::<String>(), any::<bool>()).prop_map(|(event_name, subscribe)| {
            ToServer::SubscriptionRequest {
                event_name,
                subscribe,
            }
        }),
    ]
}

fn arb_to_client() -> impl Strategy<Value = ToClient> {
    prop_oneof![
        (
            "[a-z0-9]{1,8}",
            "[a-z0-9]{1,8}",
            proptest::option::of("[a-z0-9]{1,8}")
        )
            .prop_map(|(a, c, t)| ToClient::Init {
                actor_id: a.into(),
                connection_id: c.into(),
                connection_token: t,
            }),
        (arb_error(), proptest::option::of(any::<u64>()))
            .prop_map(|(error, action_id)| ToClient::Error { error, action_id }),
        (any::<u64>(), arb_value())
            .prop_map(|(id, output)| ToClient::ActionResponse { id, output }),
        (any::<String>(), vec(arb_value(), 0..4))
            .prop_map(|(name, args)| ToClient::Event { name, args }),
        (any::<String>(), vec(arb_value(), 0..4))
            .prop_map(|(name, args)| ToClient::Broadcast(crate::SharedEvent::new(name, args))),
    ]
}

fn arb_encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Json),
        Just(Encoding::Cbor),
        Just(Encoding::Bare)
    ]
}

fn arb_dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::Compat), Just(Dialect::Native)]
}

// ---------------------------------------------------------------------------------------------
// What each encoding is documented to change

/// JSON: `undefined` is dropped from objects and `null` elsewhere, dates become ISO strings,
/// sets become arrays, maps become objects with stringified keys.
fn json_norm(v: &Value) -> Value {
    match v {
        Value::Undefined => Value::Null,
        Value::Date(ms) => iso_date(*ms).map_or(Value::Null, Value::String),
        Value::Array(items) | Value::Set(items) => {
            Value::Array(items.iter().map(json_norm).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(_, v)| *v != Value::Undefined)
                .map(|(k, v)| (k.clone(), json_norm(v)))
                .collect(),
        ),
        Value::Map(entries) => Value::Object(
            entries
                .iter()
                .filter(|(_, v)| *v != Value::Undefined)
                .map(|(k, v)| (key_string(k), json_norm(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// CBOR: integers outside [-2^32, 2^32) become floats up to 2^53 and BigInts beyond.
fn cbor_norm(v: &Value) -> Value {
    match v {
        Value::Int(n) if !(-(1i64 << 32)..(1i64 << 32)).contains(n) => {
            if n.unsigned_abs() <= 1 << 53 {
                Value::Float(*n as f64)
            } else {
                Value::BigInt((*n).into())
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(cbor_norm).collect()),
        Value::Set(items) => Value::Set(items.iter().map(cbor_norm).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), cbor_norm(v)))
                .collect(),
        ),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| (cbor_norm(k), cbor_norm(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn norm(v: &Value, encoding: Encoding) -> Value {
    match encoding {
        Encoding::Json => json_norm(v),
        _ => cbor_norm(v),
    }
}

fn norm_to_server(m: &ToServer, encoding: Encoding) -> ToServer {
    match m {
        ToServer::ActionRequest { id, name, args } => ToServer::ActionRequest {
            id: *id,
            name: name.clone(),
            args: args.iter().map(|a| norm(a, encoding)).collect(),
        },
        other => other.clone(),
    }
}

fn norm_to_client(m: &ToClient, encoding: Encoding, version: u16) -> ToClient {
    match m {
        ToClient::Init {
            actor_id,
            connection_id,
            connection_token,
        } => ToClient::Init {
            actor_id: actor_id.clone(),
            connection_id: connection_id.clone(),
            connection_token: match (encoding, version) {
                (Encoding::Bare, 2..) => None,
                _ => connection_token.clone(),
            },
        },
        ToClient::Error { error, action_id } => {
            let metadata = error
                .metadata()
                .filter(|m| **m != Value::Undefined)
                .map(|m| norm(m, encoding));
            ToClient::Error {
                error: ActionError::new(
                    error.group().to_owned(),
                    error.code().to_owned(),
                    error.message().to_owned(),
                )
                .with_metadata_value(metadata),
                action_id: *action_id,
            }
        }
        ToClient::ActionResponse { id, output } => ToClient::ActionResponse {
            id: *id,
            output: norm(output, encoding),
        },
        ToClient::Event { name, args } => ToClient::Event {
            name: name.clone(),
            args: args.iter().map(|a| norm(a, encoding)).collect(),
        },
        // Decodes as the plain event it shares.
        ToClient::Broadcast(event) => norm_to_client(&event.to_event(), encoding, version),
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips

proptest! {
    #[test]
    fn json_values_round_trip(v in arb_value()) {
        let text = value_to_json(&v);
        prop_assert_eq!(value_from_json(text.as_bytes()).unwrap(), json_norm(&v));
    }

    #[test]
    fn cbor_values_round_trip(v in arb_value(), dialect in arb_dialect()) {
        let bytes = value_to_cbor(&v, dialect);
        prop_assert_eq!(value_from_cbor(&bytes, dialect).unwrap(), cbor_norm(&v));
    }

    #[test]
    fn to_server_round_trips(
        m in arb_to_server(),
        encoding in arb_encoding(),
        version in 1u16..=4,
    ) {
        // Clients' BARE bodies are read in the dialect their version implies.
        let dialect = Dialect::from_bare_version(version);
        let bytes = encode_to_server(&m, encoding, version, dialect);
        let (back, v) = decode_to_server(&bytes, encoding, dialect).unwrap();
        prop_assert_eq!(back, norm_to_server(&m, encoding));
        prop_assert_eq!(v, (encoding == Encoding::Bare).then_some(version));
    }

    #[test]
    fn shared_events_encode_like_plain_ones(
        name in any::<String>(),
        args in vec(arb_value(), 0..4),
        encoding in arb_encoding(),
        version in 0u16..=5,
        dialect in arb_dialect(),
    ) {
        let shared = crate::SharedEvent::new(name.clone(), args.clone());
        let plain = encode_to_client(&ToClient::Event { name, args }, encoding, version, dialect);
        prop_assert_eq!(&shared.encoded(encoding, version, dialect)[..], &plain[..]);
        prop_assert_eq!(&shared.encoded(encoding, version, dialect)[..], &plain[..]);
    }

    #[test]
    fn to_client_round_trips(
        m in arb_to_client(),
        actor in arb_actor(),
        encoding in arb_encoding(),
        version in 1u16..=4,
        dialect in arb_dialect(),
    ) {
        let bytes = encode_to_client_with_actor(&m, actor.as_ref(), encoding, version, dialect);
        let (back, back_actor, _) =
            decode_to_client_with_actor(&bytes, encoding, dialect).unwrap();
        prop_assert_eq!(back, norm_to_client(&m, encoding, version));
        let expected_actor = match (&m, encoding) {
            (ToClient::Error { .. }, Encoding::Bare) if version < 4 => None,
            (ToClient::Error { .. }, _) => actor,
            _ => None,
        };
        prop_assert_eq!(back_actor, expected_actor);
    }

    #[test]
    fn http_bodies_round_trip(
        args in vec(arb_value(), 0..4),
        output in arb_value(),
        error in arb_error(),
        queue_name in proptest::option::of("[a-z]{0,5}"),
        wait in proptest::option::of(any::<bool>()),
        timeout in proptest::option::of(any::<u64>()),
        encoding in arb_encoding(),
        version in 3u16..=4,
    ) {
        let dialect = Dialect::from_bare_version(version);

        let req = HttpActionRequest { args };
        let (back, _) =
            HttpActionRequest::decode(&req.encode(encoding, version, dialect), encoding, dialect)
                .unwrap();
        let expected: Vec<Value> = req.args.iter().map(|a| norm(a, encoding)).collect();
        prop_assert_eq!(back.args, expected);

        let resp = HttpActionResponse { output };
        let (back, _) =
            HttpActionResponse::decode(&resp.encode(encoding, version, dialect), encoding, dialect)
                .unwrap();
        prop_assert_eq!(back.output, norm(&resp.output, encoding));

        let body = HttpResponseError::new(error);
        let (back, _) =
            HttpResponseError::decode(&body.encode(encoding, version, dialect), encoding, dialect)
                .unwrap();
        let expected = norm_to_client(
            &ToClient::Error { error: body.error.clone(), action_id: None },
            encoding,
            version,
        );
        prop_assert_eq!(ToClient::Error { error: back.error, action_id: None }, expected);

        let send = HttpQueueSendRequest {
            body: resp.output.clone(),
            name: queue_name,
            wait,
            timeout,
        };
        let (back, _) =
            HttpQueueSendRequest::decode(&send.encode(encoding, version, dialect), encoding, dialect)
                .unwrap();
        prop_assert_eq!(back.body, norm(&send.body, encoding));
        prop_assert_eq!((back.name, back.wait), (send.name, send.wait));
        // JSON and CBOR carry timeouts as JavaScript numbers: exact up to 2^53.
        if encoding == Encoding::Bare || timeout.is_none_or(|t| t <= 1 << 53) {
            prop_assert_eq!(back.timeout, timeout);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input never panics

/// Runs every decoder over `bytes`; only a panic fails.
fn decode_everything(bytes: &[u8]) {
    let _ = value_from_json(bytes);
    for dialect in [Dialect::Compat, Dialect::Native] {
        let _ = value_from_cbor(bytes, dialect);
        for encoding in [Encoding::Json, Encoding::Cbor, Encoding::Bare] {
            let _ = decode_to_server(bytes, encoding, dialect);
            let _ = decode_to_client_with_actor(bytes, encoding, dialect);
            let _ = HttpActionRequest::decode(bytes, encoding, dialect);
            let _ = HttpActionResponse::decode(bytes, encoding, dialect);
            let _ = HttpResponseError::decode(bytes, encoding, dialect);
            let _ = HttpQueueSendRequest::decode(bytes, encoding, dialect);
            let _ = HttpQueueSendResponse::decode(bytes, encoding, dialect);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        decode_everything(&bytes);
    }

    #[test]
    fn arbitrary_bare_payloads_never_panic(version in 0u8..=5, body in vec(any::<u8>(), 0..128)) {
        let mut bytes = vec![version, 0];
        bytes.extend(body);
        decode_everything(&bytes);
    }

    #[test]
    fn json_like_text_never_panics(text in "[\\[\\]{}\",:0-9a-zA-Z$. -]{0,96}") {
        decode_everything(text.as_bytes());
    }

    #[test]
    fn mutated_messages_never_panic(
        m in arb_to_client(),
        encoding in arb_encoding(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode_to_client(&m, encoding, 4, Dialect::Compat);
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        decode_everything(&bytes);
        bytes.truncate(cut.index(bytes.len() + 1));
        decode_everything(&bytes);
    }
}
