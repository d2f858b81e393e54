//! Access control: the manager token, the gateway token wherever clients put it, and a check
//! of the host's own.

use footlights_protocol::ActionError;
use footlights_server::{AccessPolicy, Area};
use serde_json::json;

use crate::support::{Frame, TestServer, bounded, http, json_body, next_frame, ws_connect};

const TOKEN: &str = "s3cret/+token";

async fn status_and_code(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = bounded(request.send()).await.unwrap();
    let status = response.status().as_u16();
    let body = json_body(response).await;
    (status, body["code"].as_str().unwrap_or("").to_owned())
}

fn action_body() -> serde_json::Value {
    json!({ "args": [1] })
}

#[tokio::test]
async fn the_manager_api_needs_the_token_and_the_gateway_stays_open_by_default() {
    let server = TestServer::with(|b| b.access(AccessPolicy::token(TOKEN))).await;
    let list = || http().get(server.url("/actors?name=room"));
    assert_eq!(status_and_code(list()).await, (401, "unauthorized".into()));
    assert_eq!(
        status_and_code(list().bearer_auth("wrong")).await,
        (403, "forbidden".into())
    );
    let ok = bounded(list().bearer_auth(TOKEN).send()).await.unwrap();
    assert_eq!(ok.status(), 200);
    let create = http()
        .put(server.url("/actors"))
        .json(&json!({"name": "room", "key": "k", "runner_name_selector": "default", "crash_policy": "sleep"}));
    assert_eq!(status_and_code(create).await, (401, "unauthorized".into()));
    // Nothing was created by the refused call.
    assert!(
        server
            .registry
            .driver()
            .find_actor("room", &"k".into())
            .await
            .unwrap()
            .is_none()
    );

    let path = TestServer::query_path("/action/increment", "open");
    let response = bounded(http().post(server.url(&path)).json(&action_body()).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the gateway is open unless asked");
    // Metadata and health are not the manager API.
    let meta = bounded(http().get(server.url("/metadata")).send())
        .await
        .unwrap();
    assert_eq!(meta.status(), 200);
}

#[tokio::test]
async fn a_gateway_token_is_taken_from_every_place_clients_put_it() {
    let server = TestServer::with(|b| b.access(AccessPolicy::token(TOKEN).gateway(true))).await;
    let id = server.room("g").await;
    let query = TestServer::query_path("/action/increment", "g");
    let encoded: String = TOKEN
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();

    let post = |path: &str| http().post(server.url(path)).json(&action_body());
    assert_eq!(
        status_and_code(post(&query)).await,
        (401, "unauthorized".into())
    );
    assert_eq!(
        status_and_code(post(&query).header("x-rivet-token", "nope")).await,
        (403, "forbidden".into())
    );
    for request in [
        post(&query).header("x-rivet-token", TOKEN),
        post(&format!("{query}&rvt-token={encoded}")),
        post(&format!("/gateway/{id}@{encoded}/action/increment")),
    ] {
        let response = bounded(request.send()).await.unwrap();
        assert_eq!(response.status(), 200, "{}", response.url());
    }
    assert_eq!(
        status_and_code(post(&format!("/gateway/{id}@wrong/action/increment"))).await,
        (403, "forbidden".into())
    );

    // WebSockets: refused without a token (an accepted upgrade closed with the code), let in
    // with the `rivet_token.` subprotocol.
    let connect = TestServer::query_path("/connect", "g");
    let (mut ws, _) = ws_connect(&server, &connect, &["rivet", "rivet_encoding.json"]).await;
    match next_frame(&mut ws).await {
        Frame::Close(code, reason) => {
            assert_eq!(code, 1011);
            assert!(reason.starts_with("auth.unauthorized"), "{reason}");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    let protocol = format!("rivet_token.{encoded}");
    let (mut ws, _) = ws_connect(
        &server,
        &connect,
        &["rivet", "rivet_encoding.json", &protocol],
    )
    .await;
    match next_frame(&mut ws).await {
        Frame::Text(init) => assert!(init.contains("Init"), "{init}"),
        other => panic!("expected Init, got {other:?}"),
    }
}

#[tokio::test]
async fn a_check_of_the_hosts_own_runs_for_every_request() {
    let policy = AccessPolicy::open().check(|req| match (req.area, req.token) {
        (Area::Gateway, Some(t)) if t.starts_with("user-") => Ok(()),
        (Area::Gateway, _) => Err(ActionError::forbidden("a user token is needed")),
        (Area::Manager, _) => Ok(()),
        _ => Err(ActionError::forbidden("unknown area")),
    });
    let server = TestServer::with(|b| b.access(policy)).await;
    let query = TestServer::query_path("/action/increment", "c");
    let post = || http().post(server.url(&query)).json(&action_body());
    assert_eq!(status_and_code(post()).await, (403, "forbidden".into()));
    let response = bounded(post().header("x-rivet-token", "user-ann").send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let list = bounded(http().get(server.url("/actors?name=room")).send())
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
}

#[tokio::test]
async fn operators_delete_actors_with_the_manager_token() {
    let server = TestServer::with(|b| b.access(AccessPolicy::token(TOKEN))).await;
    let id = server.room("doomed").await;
    let increment = || async {
        let path = TestServer::query_path("/action/increment", "doomed");
        let response = bounded(http().post(server.url(&path)).json(&action_body()).send())
            .await
            .unwrap();
        json_body(response).await["output"].clone()
    };
    assert_eq!(increment().await, json!(1));
    assert_eq!(increment().await, json!(2));
    let delete = |id: &str| http().delete(server.url(&format!("/actors/{id}")));
    assert_eq!(
        status_and_code(delete(&id)).await,
        (401, "unauthorized".into())
    );
    let ok = bounded(delete(&id).bearer_auth(TOKEN).send())
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(json_body(ok).await, json!({}));
    let meta = server
        .registry
        .actor_meta(&footlights_protocol::ActorId::new(id.as_str()))
        .await
        .unwrap();
    assert!(meta.is_none(), "the actor is gone");
    assert_eq!(
        status_and_code(delete(&id).bearer_auth(TOKEN)).await,
        (404, "not_found".into())
    );
    let get = http()
        .get(server.url(&format!("/actors/{id}")))
        .bearer_auth(TOKEN);
    assert_eq!(status_and_code(get).await.0, 405);
    // The key is free again: a new actor starts from scratch.
    assert_eq!(increment().await, json!(1));
}
