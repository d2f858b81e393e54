//! The manager API (§4): metadata, health, devtools and `/actors`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use footlights_protocol::Value;
use footlights_protocol::codec::{Dialect, value_to_cbor};
use serde_json::json;

use crate::support::{TestServer, bounded, http, json_body};

#[tokio::test]
async fn metadata_names_the_runtime_and_the_actor_types() {
    let server = TestServer::start().await;
    let response = bounded(http().get(server.url("/metadata?namespace=default")).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json_body(response).await;
    assert_eq!(body["runtime"], "rivetkit");
    assert!(body["version"].is_string());
    assert_eq!(body["actorNames"], json!({"room": {"metadata": {}}}));
}

#[tokio::test]
async fn health_and_the_devtools_stub() {
    let server = TestServer::start().await;
    let health = json_body(
        bounded(http().get(server.url("/health")).send())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(health["status"], "ok");
    let devtools = bounded(http().get(server.url("/devtools/mod.js")).send())
        .await
        .unwrap();
    assert_eq!(devtools.status(), 200);
    assert_eq!(devtools.headers()["content-type"], "application/javascript");
    assert!(bounded(devtools.bytes()).await.unwrap().is_empty());
}

#[tokio::test]
async fn put_gets_or_creates_and_the_input_reaches_the_actor() {
    let server = TestServer::start().await;
    let input = Value::Object(vec![("mode".into(), Value::String("ranked".into()))]);
    let body = json!({
        "name": "room",
        "key": "a\\/b/c",
        "runner_name_selector": "default",
        "crash_policy": "sleep",
        "input": STANDARD.encode(value_to_cbor(&input, Dialect::Compat)),
    });
    let first = bounded(
        http()
            .put(server.url("/actors?namespace=default"))
            .json(&body)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(first.status(), 200);
    let first = json_body(first).await;
    assert_eq!(first["created"], true);
    assert_eq!(first["actor"]["name"], "room");
    assert_eq!(first["actor"]["key"], "a\\/b/c");
    assert!(first["actor"]["create_ts"].is_number());
    let id = first["actor"]["actor_id"].as_str().unwrap().to_owned();

    let again = json_body(
        bounded(
            http()
                .put(server.url("/actors?namespace=default"))
                .json(&body)
                .send(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(again["created"], false);
    assert_eq!(again["actor"]["actor_id"], id.as_str());

    let seen = json_body(
        bounded(
            http()
                .post(server.url(&format!("/gateway/{id}/action/input")))
                .body(r#"{"args":[]}"#)
                .send(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(seen, json!({"output": {"mode": "ranked"}}));
}

#[tokio::test]
async fn post_creates_and_refuses_a_duplicate_key() {
    let server = TestServer::start().await;
    let body = json!({"name": "room", "key": "dup", "runner_name_selector": "default", "crash_policy": "sleep"});
    let created = bounded(http().post(server.url("/actors")).json(&body).send())
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let created = json_body(created).await;
    let id = created["actor"]["actor_id"].as_str().unwrap().to_owned();
    assert!(created.get("created").is_none());

    let duplicate = bounded(http().post(server.url("/actors")).json(&body).send())
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 400);
    assert_eq!(duplicate.headers()["content-type"], "application/json");
    let error = json_body(duplicate).await;
    assert_eq!(error["group"], "actor");
    assert_eq!(error["code"], "duplicate_key");
    assert_eq!(error["metadata"]["existing_actor_id"], id.as_str());
    assert_eq!(error["metadata"]["key"], "dup");
}

#[tokio::test]
async fn get_looks_up_by_ids_by_key_and_by_name() {
    let server = TestServer::start().await;
    let a = server.room("a").await;
    let empty_key = json_body(
        bounded(
            http()
                .post(server.url("/actors"))
                .json(&json!({"name": "room", "key": "/"}))
                .send(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        empty_key["actor"]["key"], "/",
        "the empty key serializes as `/`"
    );

    let by_id = json_body(
        bounded(
            http()
                .get(server.url(&format!("/actors?actor_ids={a}&namespace=default")))
                .send(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(by_id["actors"].as_array().unwrap().len(), 1);
    assert_eq!(by_id["actors"][0]["key"], "a");

    let by_key = json_body(
        bounded(
            http()
                .get(server.url("/actors?name=room&key=a&namespace=default"))
                .send(),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(by_key["actors"][0]["actor_id"], a.as_str());

    let by_name = json_body(
        bounded(http().get(server.url("/actors?name=room")).send())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_name["actors"].as_array().unwrap().len(), 2);

    for missing in ["/actors?actor_ids=nope", "/actors?name=room&key=nope"] {
        let response = bounded(http().get(server.url(missing)).send())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{missing}");
        assert_eq!(
            json_body(response).await,
            json!({"actors": []}),
            "{missing}"
        );
    }
    let response = bounded(http().get(server.url("/actors?name=ghost")).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        json_body(response).await,
        json!({"actors": [], "pagination": {"cursor": null}})
    );
}

#[tokio::test]
async fn listing_by_name_comes_in_pages() {
    let server = TestServer::start().await;
    let mut keys = Vec::new();
    for i in 0..7 {
        let key = format!("k{i}");
        server.room(&key).await;
        keys.push(key);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = "/actors?name=room&limit=3".to_owned();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", percent_encode(c)));
        }
        let page = json_body(bounded(http().get(server.url(&url)).send()).await.unwrap()).await;
        let actors = page["actors"].as_array().unwrap();
        assert!(actors.len() <= 3);
        seen.extend(actors.iter().map(|a| a["key"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["pagination"]["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the listing never ended");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, keys);
    let bad = bounded(http().get(server.url("/actors?name=room&limit=x")).send())
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn malformed_manager_requests_are_json_errors() {
    let server = TestServer::start().await;
    let cases = [
        (
            http().put(server.url("/actors")).body("{not json"),
            400,
            "invalid_request",
        ),
        (
            http()
                .put(server.url("/actors"))
                .body(r#"{"name":"room","input":"%%%"}"#),
            400,
            "invalid_request",
        ),
        (
            http()
                .put(server.url("/actors"))
                .body(r#"{"name":"ghost","key":"k"}"#),
            404,
            "not_found",
        ),
        (http().get(server.url("/actors")), 400, "invalid_request"),
        (
            http().get(server.url("/actors?actor_ids=a&name=room")),
            400,
            "invalid_request",
        ),
        (
            http().get(server.url("/actors?key=a")),
            400,
            "invalid_request",
        ),
        (
            http().delete(server.url("/actors")),
            405,
            "method_not_allowed",
        ),
        (
            http().post(server.url("/metadata")),
            405,
            "method_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let response = bounded(request.send()).await.unwrap();
        assert_eq!(response.status(), status, "{code}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert!(response.headers().contains_key("x-rivet-ray-id"));
        assert_eq!(json_body(response).await["code"], code);
    }
}

#[tokio::test]
async fn a_base_path_prefixes_every_route() {
    let server = TestServer::with(|b| b.base_path("/api/rivet/")).await;
    let ok = bounded(http().get(server.url("/api/rivet/metadata")).send())
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let outside = bounded(http().get(server.url("/metadata")).send())
        .await
        .unwrap();
    assert_eq!(outside.status(), 404);
    let id = server.room("k").await;
    let action = bounded(
        http()
            .post(server.url(&format!("/api/rivet/gateway/{id}/action/getCount")))
            .body(r#"{"args":[]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(json_body(action).await, json!({"output": 0}));
}
