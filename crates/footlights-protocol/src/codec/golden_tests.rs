//! Every byte vector of the protocol notes' Appendix B, in both directions where both make
//! sense, plus the JSON lines of the same appendix.

use super::*;
use crate::error::ActionError;

fn unhex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn init() -> ToClient {
    ToClient::Init {
        actor_id: "a1".into(),
        connection_id: "c1".into(),
        connection_token: None,
    }
}

fn increment(id: u64, arg: Option<i64>) -> ToServer {
    ToServer::ActionRequest {
        id,
        name: "increment".into(),
        args: arg.into_iter().map(Value::Int).collect(),
    }
}

fn subscribe() -> ToServer {
    ToServer::SubscriptionRequest {
        event_name: "newCount".into(),
        subscribe: true,
    }
}

fn user_error_bad() -> ToClient {
    ToClient::Error {
        error: ActionError::user_error("bad"),
        action_id: Some(0),
    }
}

/// A ToClient vector: encoding gives the bytes and decoding gives the message back.
fn to_client_both_ways(message: &ToClient, version: u16, vector: &str) {
    let bytes = unhex(vector);
    assert_eq!(
        hex(&encode_to_client(
            message,
            Encoding::Bare,
            version,
            Dialect::Compat
        )),
        vector,
        "encode {message:?}"
    );
    let (decoded, v) = decode_to_client(&bytes, Encoding::Bare, Dialect::Compat).unwrap();
    assert_eq!((&decoded, v), (message, Some(version)));
}

/// A ToServer vector, both ways.
fn to_server_both_ways(message: &ToServer, vector: &str) {
    let bytes = unhex(vector);
    assert_eq!(
        hex(&encode_to_server(
            message,
            Encoding::Bare,
            4,
            Dialect::Compat
        )),
        vector,
        "encode {message:?}"
    );
    let (decoded, v) = decode_to_server(&bytes, Encoding::Bare, Dialect::Native).unwrap();
    assert_eq!((&decoded, v), (message, Some(4)));
}

#[test]
fn bare_v4_init() {
    to_client_both_ways(&init(), 4, "04 00 00 02 61 31 02 63 31");
}

#[test]
fn bare_v4_action_request() {
    to_server_both_ways(
        &increment(0, Some(5)),
        "04 00 00 00 09 69 6e 63 72 65 6d 65 6e 74 02 81 05",
    );
}

#[test]
fn bare_v4_action_request_with_a_two_byte_id() {
    let message = ToServer::ActionRequest {
        id: 300,
        name: "x".into(),
        args: vec![],
    };
    to_server_both_ways(&message, "04 00 00 ac 02 01 78 01 80");
}

#[test]
fn bare_v4_subscription_request() {
    to_server_both_ways(&subscribe(), "04 00 01 08 6e 65 77 43 6f 75 6e 74 01");
}

#[test]
fn bare_v4_action_response() {
    let message = ToClient::ActionResponse {
        id: 0,
        output: Value::Int(5),
    };
    to_client_both_ways(&message, 4, "04 00 02 00 01 05");
}

#[test]
fn bare_v4_event() {
    let message = ToClient::Event {
        name: "newCount".into(),
        args: vec![Value::Int(5)],
    };
    to_client_both_ways(&message, 4, "04 00 03 08 6e 65 77 43 6f 75 6e 74 02 81 05");
}

#[test]
fn bare_v4_error() {
    to_client_both_ways(
        &user_error_bad(),
        4,
        "04 00 01 04 75 73 65 72 0a 75 73 65 72 5f 65 72 72 6f 72 03 62 61 64 00 01 00 00",
    );
}

#[test]
fn bare_v2_error_for_2_0_33() {
    to_client_both_ways(
        &user_error_bad(),
        2,
        "02 00 01 04 75 73 65 72 0a 75 73 65 72 5f 65 72 72 6f 72 03 62 61 64 00 01 00",
    );
}

#[test]
fn bare_v4_http_action_request() {
    let vector = "04 00 02 81 05";
    let body = HttpActionRequest {
        args: vec![Value::Int(5)],
    };
    assert_eq!(
        hex(&body.encode(Encoding::Bare, 4, Dialect::Compat)),
        vector
    );
    let decoded = HttpActionRequest::decode(&unhex(vector), Encoding::Bare, Dialect::Native);
    assert_eq!(decoded.unwrap(), (body, Some(4)));
}

#[test]
fn bare_v4_http_action_response() {
    let vector = "04 00 01 05";
    let body = HttpActionResponse {
        output: Value::Int(5),
    };
    assert_eq!(
        hex(&body.encode(Encoding::Bare, 4, Dialect::Compat)),
        vector
    );
    let decoded = HttpActionResponse::decode(&unhex(vector), Encoding::Bare, Dialect::Compat);
    assert_eq!(decoded.unwrap(), (body, Some(4)));
}

#[test]
fn bare_v4_http_response_error_with_actor() {
    let vector =
        "04 00 05 61 63 74 6f 72 09 6e 6f 74 5f 66 6f 75 6e 64 02 6e 66 00 01 02 61 31 01 01 01 6b";
    let body = HttpResponseError {
        error: ActionError::actor_not_found("nf"),
        actor: Some(ActorSpecifier {
            actor_id: "a1".into(),
            generation: 1,
            key: Some("k".into()),
        }),
    };
    assert_eq!(
        hex(&body.encode(Encoding::Bare, 4, Dialect::Compat)),
        vector
    );
    let decoded = HttpResponseError::decode(&unhex(vector), Encoding::Bare, Dialect::Compat);
    assert_eq!(decoded.unwrap(), (body, Some(4)));
}

#[test]
fn bare_v4_http_queue_send_request() {
    let vector = "04 00 04 a1 61 61 01 01 01 71 01 01 01 e8 03 00 00 00 00 00 00";
    let body = HttpQueueSendRequest {
        body: Value::Object(vec![("a".into(), Value::Int(1))]),
        name: Some("q".into()),
        wait: Some(true),
        timeout: Some(1000),
    };
    assert_eq!(
        hex(&body.encode(Encoding::Bare, 4, Dialect::Compat)),
        vector
    );
    let decoded = HttpQueueSendRequest::decode(&unhex(vector), Encoding::Bare, Dialect::Native);
    assert_eq!(decoded.unwrap(), (body, Some(4)));
}

#[test]
fn bare_v4_http_queue_send_response() {
    let vector = "04 00 09 63 6f 6d 70 6c 65 74 65 64 00";
    let body = HttpQueueSendResponse {
        status: QueueSendStatus::Completed,
        response: None,
    };
    assert_eq!(
        hex(&body.encode(Encoding::Bare, 4, Dialect::Compat)),
        vector
    );
    let decoded = HttpQueueSendResponse::decode(&unhex(vector), Encoding::Bare, Dialect::Compat);
    assert_eq!(decoded.unwrap(), (body, Some(4)));
}

/// The cbor-x encoding of an ActionRequest, with its map16 headers and 8-byte id.
const CBOR_X_ACTION_REQUEST: &str = "b9 00 01 64 62 6f 64 79 b9 00 02 63 74 61 67 6d 41 63 74 69 6f 6e 52 65 71 75 65 73 74 63 76 61 6c b9 00 03 62 69 64 1b 00 00 00 00 00 00 00 00 64 6e 61 6d 65 69 69 6e 63 72 65 6d 65 6e 74 64 61 72 67 73 81 05";

#[test]
fn cbor_envelope_from_cbor_x_decodes() {
    for dialect in [Dialect::Compat, Dialect::Native] {
        let (msg, version) =
            decode_to_server(&unhex(CBOR_X_ACTION_REQUEST), Encoding::Cbor, dialect).unwrap();
        assert_eq!((msg, version), (increment(0, Some(5)), None));
    }
}

#[test]
fn cbor_envelope_encodes_like_cbor_x_with_minimal_map_headers() {
    // Our encoder writes the shortest map headers; everything else is byte-identical.
    let expected = CBOR_X_ACTION_REQUEST
        .replace("b9 00 01", "a1")
        .replace("b9 00 02", "a2")
        .replace("b9 00 03", "a3");
    let bytes = encode_to_server(&increment(0, Some(5)), Encoding::Cbor, 4, Dialect::Compat);
    assert_eq!(hex(&bytes), expected);
}

#[test]
fn cbor_to_client_ids_are_eight_byte_integers_and_null_is_f6() {
    let reply = ToClient::ActionResponse {
        id: 7,
        output: Value::Int(6),
    };
    let bytes = encode_to_client(&reply, Encoding::Cbor, 4, Dialect::Compat);
    assert!(
        hex(&bytes).contains("62 69 64 1b 00 00 00 00 00 00 00 07"),
        "{}",
        hex(&bytes)
    );
    let err = ToClient::Error {
        error: ActionError::forbidden("Forbidden"),
        action_id: None,
    };
    let bytes = encode_to_client(&err, Encoding::Cbor, 4, Dialect::Compat);
    assert!(
        hex(&bytes).ends_with("68 61 63 74 69 6f 6e 49 64 f6"),
        "{}",
        hex(&bytes)
    );
    for message in [reply, err] {
        let bytes = encode_to_client(&message, Encoding::Cbor, 4, Dialect::Compat);
        let (back, _) = decode_to_client(&bytes, Encoding::Cbor, Dialect::Compat).unwrap();
        assert_eq!(back, message);
    }
}

#[test]
fn cbor_x_number_encodings() {
    let cases = [
        (Value::Int(5), "05"),
        (Value::Int(-1), "20"),
        (Value::Float(1.5), "fb 3f f8 00 00 00 00 00 00"),
        (Value::Int(1 << 32), "fb 41 f0 00 00 00 00 00 00"),
        (Value::Int(1_700_000_000_000), "fb 42 78 bc fe 56 80 00 00"),
    ];
    for (value, vector) in cases {
        assert_eq!(
            hex(&value_to_cbor(&value, Dialect::Compat)),
            vector,
            "{value:?}"
        );
    }
    let big = value_from_cbor(&unhex("1b 00 00 00 00 00 00 00 05"), Dialect::Compat);
    assert_eq!(big.unwrap(), Value::BigInt(5));
    let small = value_from_cbor(&unhex("1a 00 00 00 05"), Dialect::Compat);
    assert_eq!(small.unwrap(), Value::Int(5));
}

const JSON_ACTION_REQUEST: &str = r#"{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","0"],"name":"increment","args":[5]}}}"#;
const JSON_SUBSCRIPTION: &str =
    r#"{"body":{"tag":"SubscriptionRequest","val":{"eventName":"newCount","subscribe":true}}}"#;
const JSON_INIT: &str = r#"{"body":{"tag":"Init","val":{"actorId":"a1","connectionId":"c1"}}}"#;
const JSON_ACTION_RESPONSE: &str =
    r#"{"body":{"tag":"ActionResponse","val":{"id":["$BigInt","0"],"output":6}}}"#;
const JSON_EVENT: &str = r#"{"body":{"tag":"Event","val":{"name":"newCount","args":[6]}}}"#;
const JSON_ERROR: &str = r#"{"body":{"tag":"Error","val":{"group":"auth","code":"forbidden","message":"Forbidden","actionId":null}}}"#;

#[test]
fn json_client_to_server_lines() {
    for (line, message) in [
        (JSON_ACTION_REQUEST, increment(0, Some(5))),
        (JSON_SUBSCRIPTION, subscribe()),
    ] {
        let (decoded, version) =
            decode_to_server(line.as_bytes(), Encoding::Json, Dialect::Compat).unwrap();
        assert_eq!((&decoded, version), (&message, None));
        let encoded = encode_to_server(&message, Encoding::Json, 4, Dialect::Compat);
        assert_eq!(std::str::from_utf8(&encoded).unwrap(), line);
    }
}

#[test]
fn json_server_to_client_lines() {
    let lines = [
        (JSON_INIT, init()),
        (
            JSON_ACTION_RESPONSE,
            ToClient::ActionResponse {
                id: 0,
                output: Value::Int(6),
            },
        ),
        (
            JSON_EVENT,
            ToClient::Event {
                name: "newCount".into(),
                args: vec![Value::Int(6)],
            },
        ),
        (
            JSON_ERROR,
            ToClient::Error {
                error: ActionError::forbidden("Forbidden"),
                action_id: None,
            },
        ),
    ];
    for (line, message) in lines {
        let encoded = encode_to_client(&message, Encoding::Json, 4, Dialect::Compat);
        assert_eq!(std::str::from_utf8(&encoded).unwrap(), line);
        let (decoded, _) =
            decode_to_client(line.as_bytes(), Encoding::Json, Dialect::Compat).unwrap();
        assert_eq!(decoded, message);
    }
}

#[test]
fn json_ids_may_be_plain_numbers_on_input() {
    let line = r#"{"body":{"tag":"ActionRequest","val":{"id":7,"name":"increment","args":[5]}}}"#;
    let (decoded, _) = decode_to_server(line.as_bytes(), Encoding::Json, Dialect::Compat).unwrap();
    assert_eq!(decoded, increment(7, Some(5)));
}

#[test]
fn json_http_bodies() {
    let (req, _) =
        HttpActionRequest::decode(br#"{"args":[5]}"#, Encoding::Json, Dialect::Compat).unwrap();
    assert_eq!(req.args, vec![Value::Int(5)]);
    assert_eq!(
        req.encode(Encoding::Json, 4, Dialect::Compat),
        br#"{"args":[5]}"#
    );

    let resp = HttpActionResponse {
        output: Value::Int(6),
    };
    assert_eq!(
        resp.encode(Encoding::Json, 4, Dialect::Compat),
        br#"{"output":6}"#
    );
    let decoded = HttpActionResponse::decode(br#"{"output":6}"#, Encoding::Json, Dialect::Compat);
    assert_eq!(decoded.unwrap(), (resp, None));

    let line = r#"{"group":"user","code":"user_error","message":"Simple error message"}"#;
    let err = HttpResponseError::new(ActionError::user_error("Simple error message"));
    assert_eq!(
        err.encode(Encoding::Json, 4, Dialect::Compat),
        line.as_bytes()
    );
    let decoded = HttpResponseError::decode(line.as_bytes(), Encoding::Json, Dialect::Compat);
    assert_eq!(decoded.unwrap(), (err, None));
}

#[test]
fn bare_v1_init_carries_a_connection_token() {
    let message = ToClient::Init {
        actor_id: "a1".into(),
        connection_id: "c1".into(),
        connection_token: Some("t".into()),
    };
    to_client_both_ways(&message, 1, "01 00 00 02 61 31 02 63 31 01 74");
    // v2+ drops it.
    let v2 = encode_to_client(&message, Encoding::Bare, 2, Dialect::Native);
    assert_eq!(hex(&v2), "02 00 00 02 61 31 02 63 31");
}

#[test]
fn bare_versions_outside_the_range_are_rejected_or_clamped() {
    let mut frame = unhex("04 00 01 08 6e 65 77 43 6f 75 6e 74 01");
    for bad in [0u8, 5, 255] {
        frame[0] = bad;
        assert!(matches!(
            decode_to_server(&frame, Encoding::Bare, Dialect::Compat),
            Err(CodecError::UnsupportedVersion(v)) if v == u16::from(bad)
        ));
    }
    let clamped = encode_to_client(&init(), Encoding::Bare, 9, Dialect::Compat);
    assert_eq!(&clamped[..2], [4, 0]);
    let mut trailing = unhex("04 00 01 08 6e 65 77 43 6f 75 6e 74 01");
    trailing.push(0);
    assert!(matches!(
        decode_to_server(&trailing, Encoding::Bare, Dialect::Compat),
        Err(CodecError::TrailingBytes { count: 1 })
    ));
}
