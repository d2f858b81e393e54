//! Rate limits per client address and per actor, answered with `actor.rate_limited`.

use footlights_server::Rate;

use crate::support::{TestServer, bounded, http, json_body};

/// Sends `n` requests one after another; returns how many got 429 and the first 429's body.
async fn refusals(
    n: usize,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> (usize, serde_json::Value) {
    let mut count = 0;
    let mut first = serde_json::Value::Null;
    for _ in 0..n {
        let response = bounded(request().send()).await.unwrap();
        if response.status() == 429 {
            count += 1;
            if first.is_null() {
                first = json_body(response).await;
            }
        }
    }
    (count, first)
}

#[tokio::test]
async fn one_client_address_is_held_to_its_rate() {
    let server = TestServer::with(|b| b.rate_limit_per_client(Rate::per_second(1).burst(3))).await;
    // A burst of three, then about one a second: most of twenty back-to-back calls are refused.
    let (refused, body) = refusals(20, || http().get(server.url("/actors?name=room"))).await;
    assert!(refused >= 10, "only {refused} of 20 refused");
    assert_eq!(body["group"], "actor");
    assert_eq!(body["code"], "rate_limited");
    assert!(
        body["metadata"]["retryAfterMs"].as_u64().is_some(),
        "{body}"
    );
    // Health checks are not counted.
    let health = bounded(http().get(server.url("/health")).send())
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn one_actor_is_held_to_its_rate_and_others_are_not() {
    let server = TestServer::with(|b| b.rate_limit_per_actor(Rate::per_second(1).burst(2))).await;
    let call = |key: &str| {
        let path = TestServer::query_path("/action/increment", key);
        let url = server.url(&path);
        move || http().post(url.clone()).body(r#"{"args":[1]}"#)
    };
    let (refused, body) = refusals(20, call("busy")).await;
    assert!(refused >= 10, "only {refused} of 20 refused");
    assert_eq!(body["code"], "rate_limited");
    // Refused calls never reached the actor: its count is what the accepted calls added.
    let count = server.call("busy", "getCount").await;
    assert_eq!(
        count,
        footlights_protocol::Value::from((20 - refused) as i64)
    );
    let (refused, _) = refusals(2, call("quiet")).await;
    assert_eq!(refused, 0, "another actor has its own budget");
}

/// Sends 20 actions at once over one WebSocket to a server set up by `configure`; returns how
/// many were answered and how many refused with `rate_limited` (each with its action id).
async fn ws_burst(
    configure: impl FnOnce(footlights_server::ServerBuilder) -> footlights_server::ServerBuilder,
    key: &str,
) -> (usize, usize) {
    use crate::support::{action_json, next_json, send_text, until_tag, ws_connect};
    let server = TestServer::with(configure).await;
    let path = TestServer::query_path("/connect", key);
    // The connect itself is one request.
    let (mut ws, _) = ws_connect(&server, &path, &["rivet", "rivet_encoding.json"]).await;
    until_tag(&mut ws, "Init").await;
    for id in 0..20 {
        send_text(
            &mut ws,
            &action_json(id, "increment", serde_json::json!([1])),
        )
        .await;
    }
    let (mut answered, mut refused) = (0, 0);
    while answered + refused < 20 {
        let msg = next_json(&mut ws).await;
        let body = &msg["body"];
        match body["tag"].as_str() {
            Some("ActionResponse") => answered += 1,
            Some("Error") => {
                assert_eq!(body["val"]["code"], "rate_limited", "{msg}");
                assert!(!body["val"]["actionId"].is_null(), "{msg}");
                refused += 1;
            }
            _ => {}
        }
    }
    (answered, refused)
}

#[tokio::test]
async fn actions_over_a_connection_count_against_the_actors_rate() {
    let (answered, refused) = ws_burst(
        |b| b.rate_limit_per_actor(Rate::per_second(1).burst(3)),
        "ws-busy",
    )
    .await;
    assert!(refused >= 10, "only {refused} of 20 refused");
    // The connection goes on: refusals are per action.
    assert!(answered >= 1);
}

#[tokio::test]
async fn actions_over_a_connection_count_against_the_clients_rate() {
    let (answered, refused) = ws_burst(
        |b| b.rate_limit_per_client(Rate::per_second(1).burst(3)),
        "ws-chatty",
    )
    .await;
    assert!(refused >= 10, "only {refused} of 20 refused");
    assert!(answered >= 1);
}
