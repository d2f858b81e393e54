//! The inspector's JSON API over real HTTP: listing, reading, replacing state, calling
//! actions, destroying, and the token.

use footlights_server::AccessPolicy;
use serde_json::json;

use crate::support::{TestServer, bounded, http, json_body};

const TOKEN: &str = "inspect-me";

async fn status_and_code(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = bounded(request.send()).await.unwrap();
    let status = response.status().as_u16();
    let body = json_body(response).await;
    (status, body["code"].as_str().unwrap_or("").to_owned())
}

async fn ok_json(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = bounded(request.bearer_auth(TOKEN).send()).await.unwrap();
    let status = response.status();
    let body = json_body(response).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn guarded() -> TestServer {
    TestServer::with(|b| b.access(AccessPolicy::token(TOKEN))).await
}

#[tokio::test]
async fn actors_are_listed_by_type_prefix_and_page() {
    let server = guarded().await;
    for key in ["a", "b", "c"] {
        server.room(key).await;
    }
    let list = |query: &str| http().get(server.url(&format!("/inspector/api/actors{query}")));
    let names = ok_json(list("")).await;
    assert_eq!(names["names"], json!(["room"]));
    assert_eq!(names["actors"], json!([]));

    let first = ok_json(list("?name=room&limit=2")).await;
    let keys = |page: &serde_json::Value| -> Vec<String> {
        page["actors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(&first), ["a", "b"]);
    assert_eq!(first["actors"][0]["awake"], json!(true));
    assert!(first["actors"][0]["createdAt"].is_i64());
    let cursor = first["cursor"].as_str().unwrap().to_owned();
    let second = ok_json(list(&format!("?name=room&limit=2&cursor={cursor}"))).await;
    assert_eq!(keys(&second), ["c"]);
    assert_eq!(second["cursor"], json!(null));

    let exact = ok_json(list("?name=room&key=b")).await;
    assert_eq!(keys(&exact), ["b"]);
    let by_prefix = ok_json(list("?name=room&prefix=c")).await;
    assert_eq!(keys(&by_prefix), ["c"]);
    assert_eq!(
        status_and_code(list("?name=nope").bearer_auth(TOKEN)).await,
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn an_actor_is_read_changed_and_called_through_the_api() {
    let server = guarded().await;
    let id = server.room("r").await;
    let url = |rest: &str| server.url(&format!("/inspector/api/actors/{id}{rest}"));

    let detail = ok_json(http().get(url(""))).await;
    assert_eq!(detail["actor"]["id"], json!(id));
    assert_eq!(detail["actor"]["key"], json!("r"));
    assert_eq!(
        detail["state"]["count"],
        json!(0),
        "increment with no args adds 0"
    );
    assert_eq!(detail["connections"], json!([]));
    assert_eq!(detail["schedules"], json!([]));
    assert_eq!(detail["kv"], json!({ "entries": [], "next": null }));

    let called = ok_json(
        http()
            .post(url("/actions/increment"))
            .json(&json!({ "args": [5] })),
    )
    .await;
    assert_eq!(called, json!({ "output": 5 }));
    let detail = ok_json(http().get(url(""))).await;
    assert_eq!(detail["state"]["count"], json!(5));

    let replaced = ok_json(
        http()
            .put(url("/state"))
            .json(&json!({ "state": { "count": 40, "input": null } })),
    )
    .await;
    assert_eq!(replaced, json!({}));
    assert_eq!(
        server.call("r", "getCount").await,
        footlights::Value::Int(40)
    );

    // A state of the wrong shape is refused with a code, and the old one stays.
    let wrong = http()
        .put(url("/state"))
        .bearer_auth(TOKEN)
        .json(&json!({ "state": { "count": "many" } }));
    assert_eq!(
        status_and_code(wrong).await,
        (400, "invalid_request".into())
    );
    let no_state = http()
        .put(url("/state"))
        .bearer_auth(TOKEN)
        .json(&json!({}));
    assert_eq!(
        status_and_code(no_state).await,
        (400, "invalid_request".into())
    );
    assert_eq!(
        server.call("r", "getCount").await,
        footlights::Value::Int(40)
    );

    // An action's own error keeps its code.
    let failed = http()
        .post(url("/actions/fail"))
        .bearer_auth(TOKEN)
        .json(&json!({}));
    assert_eq!(status_and_code(failed).await.1, "boom");

    let deleted = ok_json(http().delete(url(""))).await;
    assert_eq!(deleted, json!({}));
    assert_eq!(
        status_and_code(http().get(url("")).bearer_auth(TOKEN)).await,
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn the_api_needs_the_token_when_the_server_has_one() {
    let server = guarded().await;
    let id = server.room("t").await;
    let get = || http().get(server.url(&format!("/inspector/api/actors/{id}")));
    assert_eq!(status_and_code(get()).await, (401, "unauthorized".into()));
    assert_eq!(
        status_and_code(get().bearer_auth("wrong")).await,
        (403, "forbidden".into())
    );
    let put = http()
        .put(server.url(&format!("/inspector/api/actors/{id}/state")))
        .json(&json!({ "state": { "count": 1 } }));
    assert_eq!(status_and_code(put).await, (401, "unauthorized".into()));
    assert_eq!(
        server.call("t", "getCount").await,
        footlights::Value::Int(0)
    );
    assert_eq!(ok_json(get()).await["actor"]["id"], json!(id));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_coded() {
    let server = TestServer::start().await;
    let status = |r: reqwest::RequestBuilder| status_and_code(r);
    assert_eq!(
        status(http().get(server.url("/inspector/api/nothing"))).await,
        (404, "not_found".into())
    );
    assert_eq!(
        status(http().post(server.url("/inspector/api/actors")))
            .await
            .0,
        405
    );
    assert_eq!(
        status(http().get(server.url("/inspector/api/actors/missing"))).await,
        (404, "not_found".into())
    );
}

#[tokio::test]
async fn the_page_is_served_without_data_and_redirects_to_its_directory() {
    let server = guarded().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let moved = bounded(no_redirects.get(server.url("/inspector?token=x")).send())
        .await
        .unwrap();
    assert_eq!(moved.status(), 308);
    assert_eq!(moved.headers()["location"], "inspector/?token=x");

    let page = bounded(http().get(server.url("/inspector/")).send())
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = bounded(page.text()).await.unwrap();
    assert!(html.contains(r#"<script src="inspector.js"></script>"#));

    let script = bounded(http().get(server.url("/inspector/inspector.js")).send())
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(bounded(script.text()).await.unwrap().contains("api/"));
    let missing = bounded(http().get(server.url("/inspector/other.js")).send())
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// Reads server-sent events from a response body, one `(event, data)` at a time, skipping
/// comments.
struct EventReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl EventReader {
    fn new(response: reqwest::Response) -> Self {
        use futures::StreamExt as _;
        EventReader {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event, within the test's bound; `None` when the stream ends.
    async fn next(&mut self) -> Option<(String, serde_json::Value)> {
        use futures::StreamExt as _;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if name.is_empty() {
                    continue;
                }
                return Some((name, serde_json::from_str(&data).unwrap()));
            }
            let chunk = bounded(self.body.next()).await?.unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn the_live_log_streams_actions_and_events_as_they_happen() {
    let server = guarded().await;
    let id = server.room("log").await;
    let url = |rest: &str| server.url(&format!("/inspector/api/actors/{id}{rest}"));
    let unauthorized = http().get(url("/log"));
    assert_eq!(
        status_and_code(unauthorized).await,
        (401, "unauthorized".into())
    );

    let response = bounded(http().get(url("/log")).bearer_auth(TOKEN).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut log = EventReader::new(response);

    // The watch is in place once the head arrived.
    assert_eq!(
        server.call("log", "getCount").await,
        footlights::Value::Int(0)
    );
    let (name, data) = log.next().await.unwrap();
    assert_eq!(name, "action");
    assert_eq!(data["name"], json!("getCount"));
    assert_eq!(data["caller"], json!("stateless"));
    assert_eq!(data["error"], json!(null));
    assert!(data["durationMs"].as_f64().unwrap() >= 0.0);
    assert!(data["at"].is_i64());

    // An action through the inspector's own form that broadcasts, then one that fails.
    let called = ok_json(
        http()
            .post(url("/actions/increment"))
            .json(&json!({ "args": [4] })),
    )
    .await;
    assert_eq!(called, json!({ "output": 4 }));
    let (name, data) = log.next().await.unwrap();
    assert_eq!(name, "event");
    assert_eq!(data["name"], json!("newCount"));
    assert_eq!(data["preview"], json!("[4]"));
    assert_eq!(data["size"], json!(3));
    assert_eq!(data["recipients"], json!(0));
    let (name, data) = log.next().await.unwrap();
    assert_eq!(
        (name.as_str(), &data["name"]),
        ("action", &json!("increment"))
    );

    let failed = http()
        .post(url("/actions/fail"))
        .bearer_auth(TOKEN)
        .json(&json!({}));
    assert_eq!(status_and_code(failed).await.1, "boom");
    let (_, data) = log.next().await.unwrap();
    assert_eq!(data["name"], json!("fail"));
    assert_eq!(data["error"], json!("user.boom"));

    // Destroyed: the stream says so and ends.
    ok_json(http().delete(url(""))).await;
    let (name, data) = log.next().await.unwrap();
    assert_eq!(
        (name.as_str(), data),
        ("end", json!({ "reason": "stopped" }))
    );
    assert!(log.next().await.is_none());
}

#[tokio::test]
async fn watchers_of_one_actor_are_capped() {
    let server = guarded().await;
    let id = server.room("many").await;
    let url = server.url(&format!("/inspector/api/actors/{id}/log"));
    let mut open = Vec::new();
    for _ in 0..footlights::inspect::MAX_WATCHERS {
        let response = bounded(http().get(&url).bearer_auth(TOKEN).send())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        open.push(response);
    }
    let refused = http().get(&url).bearer_auth(TOKEN);
    assert_eq!(
        status_and_code(refused).await,
        (429, "too_many_watchers".into())
    );
    let wrong_method = http().post(&url).bearer_auth(TOKEN);
    assert_eq!(status_and_code(wrong_method).await.0, 405);
}

#[tokio::test]
async fn connections_show_the_params_their_clients_sent() {
    use crate::support::{next_json, ws_connect};
    let server = guarded().await;
    let id = server.room("conns").await;
    // `{"seat":"12A"}`, percent-encoded in the protocol list as the official client sends it.
    let params = "rivet_conn_params.%7B%22seat%22%3A%2212A%22%7D";
    let (mut ws, _) = ws_connect(
        &server,
        &format!("/gateway/{id}/connect"),
        &["rivet", "rivet_encoding.json", params],
    )
    .await;
    let init = next_json(&mut ws).await;
    assert_eq!(init["body"]["tag"], "Init");
    let conn_id = init["body"]["val"]["connectionId"].clone();

    let detail = ok_json(http().get(server.url(&format!("/inspector/api/actors/{id}")))).await;
    let conns = detail["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{detail}");
    assert_eq!(conns[0]["id"], conn_id);
    assert_eq!(conns[0]["params"], json!({ "seat": "12A" }));
    assert_eq!(
        conns[0]["state"],
        json!(null),
        "the room does not show its connection state"
    );
}
