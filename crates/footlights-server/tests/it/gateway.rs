//! The gateway (§5): both URL forms, query stripping, errors before the actor, header routing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use footlights_protocol::Value;
use footlights_protocol::codec::{Dialect, value_to_cbor};
use serde_json::json;

use crate::support::{TestServer, bounded, http, json_body, next_binary, ws_connect};

const ARGS_NONE: &str = r#"{"args":[]}"#;

#[tokio::test]
async fn the_direct_form_takes_an_encoded_id_and_an_optional_token() {
    let server = TestServer::start().await;
    let id = server.room("direct").await;
    for path in [
        format!("/gateway/{id}/action/increment"),
        format!("/gateway/{id}@some%20token/action/increment"),
    ] {
        let response = bounded(
            http()
                .post(server.url(&path))
                .body(r#"{"args":[1]}"#)
                .send(),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["x-rivet-actor"], id.as_str());
    }
    let count = bounded(
        http()
            .post(server.url(&format!("/gateway/{id}/action/getCount")))
            .body(ARGS_NONE)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(json_body(count).await, json!({"output": 2}));
}

#[tokio::test]
async fn an_unknown_id_is_actor_not_found() {
    let server = TestServer::start().await;
    let response = bounded(
        http()
            .post(server.url("/gateway/nope/action/getCount"))
            .body(ARGS_NONE)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 404);
    let error = json_body(response).await;
    assert_eq!(
        (error["group"].as_str(), error["code"].as_str()),
        (Some("actor"), Some("not_found"))
    );
}

#[tokio::test]
async fn the_query_form_creates_with_input_and_get_finds_it() {
    let server = TestServer::start().await;
    let input = Value::Array(vec![Value::String("$tag".into()), Value::Int(1)]);
    // The compat dialect escapes `$`-arrays; the actor must get the original back.
    let encoded = URL_SAFE_NO_PAD.encode(value_to_cbor(&input, Dialect::Compat));
    let create = format!(
        "/gateway/room/action/input?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=q1&rvt-input={encoded}&rvt-crash-policy=sleep"
    );
    let created = bounded(http().post(server.url(&create)).body(ARGS_NONE).send())
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    assert_eq!(json_body(created).await, json!({"output": ["$$tag", 1]}));

    let get = "/gateway/room/action/input?rvt-namespace=default&rvt-method=get&rvt-key=q1";
    let found = bounded(http().post(server.url(get)).body(ARGS_NONE).send())
        .await
        .unwrap();
    assert_eq!(json_body(found).await, json!({"output": ["$$tag", 1]}));

    let missing = "/gateway/room/action/input?rvt-namespace=default&rvt-method=get&rvt-key=none";
    let response = bounded(http().post(server.url(missing)).body(ARGS_NONE).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(json_body(response).await["code"], "not_found");
}

/// rivetkit 2.3.19 retries a `get` handle's HTTP call 24 times, 100 ms apart, while it is
/// answered `actor.not_found` (any error of group `actor` and a "stale actor" code), and
/// takes any other group as final (`client/actor-handle.ts`, `#shouldRetryDynamicLifecycleError`).
/// This server's lookups are final, so a query-form call that names no actor is
/// `guard.not_found`: the same code, a group the client does not retry.
#[tokio::test]
async fn a_query_form_http_call_that_names_no_actor_is_final() {
    let server = TestServer::start().await;
    let get = |route: &str| {
        format!("/gateway/room{route}?rvt-namespace=default&rvt-method=get&rvt-key=nobody")
    };
    for (method, route) in [("POST", "/action/input"), ("GET", "/request/echo")] {
        let request = http().request(method.parse().unwrap(), server.url(&get(route)));
        let response = bounded(request.body(ARGS_NONE).send()).await.unwrap();
        assert_eq!(response.status(), 404, "{route}");
        let error = json_body(response).await;
        assert_eq!(
            (error["group"].as_str(), error["code"].as_str()),
            (Some("guard"), Some("not_found")),
            "{route}: {error}"
        );
    }
    // An unknown actor type is final too, for `getOrCreate` (which 2.3.19 retries 60 times).
    let unknown = "/gateway/nosuchtype/action/x?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=k";
    let response = bounded(http().post(server.url(unknown)).body(ARGS_NONE).send())
        .await
        .unwrap();
    assert_eq!(json_body(response).await["group"], "guard");

    // Footlights' own client asks by `actor.not_found` (`is_not_found`), and gets it.
    let response = bounded(
        http()
            .post(server.url(&get("/action/input")))
            .header("user-agent", "footlights-client/0.1.0")
            .body(ARGS_NONE)
            .send(),
    )
    .await
    .unwrap();
    let error = json_body(response).await;
    assert_eq!(
        (error["group"].as_str(), error["code"].as_str()),
        (Some("actor"), Some("not_found"))
    );
    // By id, the code stays `actor.not_found` (2.3.19 makes one attempt there).
    let by_id = "/gateway/no-such-id/action/input";
    let response = bounded(http().post(server.url(by_id)).body(ARGS_NONE).send())
        .await
        .unwrap();
    assert_eq!(json_body(response).await["group"], "actor");
}

#[tokio::test]
async fn rvt_params_are_stripped_and_the_rest_forwarded_byte_for_byte() {
    let server = TestServer::start().await;
    let path = "/gateway/room/action/requestUri?q=1&rvt-namespace=default&rvt-method=getOrCreate&x=%2F+y&rvt-runner=default&rvt-key=fwd&z";
    let response = bounded(http().post(server.url(path)).body(ARGS_NONE).send())
        .await
        .unwrap();
    assert_eq!(
        json_body(response).await,
        json!({"output": "/action/requestUri?q=1&x=%2F+y&z"})
    );
    let id = server.room("fwd").await;
    let direct = format!("/gateway/{id}/action/requestUri?a=%20b");
    let response = bounded(http().post(server.url(&direct)).body(ARGS_NONE).send())
        .await
        .unwrap();
    assert_eq!(
        json_body(response).await,
        json!({"output": "/action/requestUri?a=%20b"})
    );
}

#[tokio::test]
async fn malformed_query_urls_get_guard_codes() {
    let server = TestServer::start().await;
    let cases = [
        (
            "rvt-namespace=default&rvt-method=getOrCreate&rvt-key=k",
            "query_missing_pool",
        ),
        (
            "rvt-namespace=default&rvt-method=get&rvt-runner=default",
            "query_get_disallowed_params",
        ),
        (
            "rvt-namespace=default&rvt-method=get&rvt-method=get",
            "query_duplicate_param",
        ),
        (
            "rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=r&rvt-input=***",
            "query_invalid_cbor_input",
        ),
        ("rvt-method=get", "query_invalid_params"),
    ];
    for (query, code) in cases {
        let url = server.url(&format!("/gateway/room/action/getCount?{query}"));
        let response = bounded(http().post(url).body(ARGS_NONE).send())
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{code}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let error = json_body(response).await;
        assert_eq!(
            (error["group"].as_str(), error["code"].as_str()),
            (Some("guard"), Some(code))
        );
    }
}

#[tokio::test]
async fn unknown_routes_never_create_the_actor() {
    let server = TestServer::start().await;
    let cases = [
        ("/queue/a/b", 404, "not_found"),
        ("/nothing/here", 404, "not_found"),
        ("/action/a/b", 404, "not_found"),
    ];
    for (route, status, code) in cases {
        let url = server.url(&TestServer::query_path(route, "untouched"));
        let response = bounded(http().post(url).body(ARGS_NONE).send())
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{route}");
        assert_eq!(json_body(response).await["code"], code, "{route}");
    }
    let list = bounded(
        http()
            .get(server.url("/actors?name=room&key=untouched"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(json_body(list).await, json!({"actors": []}));
    let outside = bounded(http().get(server.url("/elsewhere")).send())
        .await
        .unwrap();
    assert_eq!(outside.status(), 404);
}

#[tokio::test]
async fn header_routed_websockets_reach_the_actor_and_speak_v4() {
    let server = TestServer::start().await;
    let id = server.room("hdr").await;
    let actor = format!("rivet_actor.{id}");
    let (mut ws, selected) = ws_connect(
        &server,
        "/connect",
        &[
            "rivet",
            "rivet_encoding.bare",
            "rivet_target.actor",
            &actor,
            "rivet_skip_ready_wait",
        ],
    )
    .await;
    assert_eq!(selected.as_deref(), Some("rivet"));
    let init = next_binary(&mut ws).await;
    assert_eq!(&init[..3], &[4, 0, 0], "a v4 Init");
}

#[tokio::test]
async fn header_routed_http_uses_the_whole_path() {
    let server = TestServer::start().await;
    let id = server.room("hdr-http").await;
    let response = bounded(
        http()
            .post(server.url("/action/requestUri?k=v"))
            .header("x-rivet-target", "actor")
            .header("x-rivet-actor", &id)
            .body(ARGS_NONE)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(
        json_body(response).await,
        json!({"output": "/action/requestUri?k=v"})
    );
}
