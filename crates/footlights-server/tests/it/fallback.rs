//! `ServerBuilder::fallback`: the host's own routes beside the actors, never in their way.

use axum::Router;
use axum::routing::get;
use serde_json::json;

use crate::support::{TestServer, bounded, http, json_body};

/// A web app's usual shape: a page at `/` and a catch-all for everything else.
fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "the page" }))
        .route("/{*path}", get(|| async { "catch-all" }))
}

async fn text(server: &TestServer, path: &str) -> (u16, String) {
    let response = bounded(http().get(server.url(path)).send()).await.unwrap();
    let status = response.status().as_u16();
    (status, bounded(response.text()).await.unwrap())
}

#[tokio::test]
async fn unclaimed_paths_reach_the_hosts_router_with_cors_headers() {
    let server = TestServer::with(|b| b.fallback(app())).await;
    assert_eq!(text(&server, "/").await, (200, "the page".into()));
    assert_eq!(text(&server, "/app.js").await, (200, "catch-all".into()));
    let response = bounded(
        http()
            .get(server.url("/"))
            .header("origin", "https://app.example")
            .send(),
    )
    .await
    .unwrap();
    let h = response.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert!(h.contains_key("x-rivet-ray-id"));
}

#[tokio::test]
async fn protocol_routes_win_over_a_catch_all() {
    let server = TestServer::with(|b| b.fallback(app())).await;
    let metadata = bounded(http().get(server.url("/metadata")).send())
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200);
    assert!(json_body(metadata).await.is_object());
    let id = server.room("fallback").await;
    let action = bounded(
        http()
            .post(server.url(&format!("/gateway/{id}/action/getCount")))
            .body(r#"{"args":[]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(json_body(action).await, json!({"output": 0}));
}

#[tokio::test]
async fn with_a_base_path_everything_outside_it_is_the_hosts() {
    let server = TestServer::with(|b| b.base_path("/api").fallback(app())).await;
    assert_eq!(text(&server, "/metadata").await, (200, "catch-all".into()));
    let inside = bounded(http().get(server.url("/api/metadata")).send())
        .await
        .unwrap();
    assert!(json_body(inside).await.is_object());
}

#[tokio::test]
async fn without_a_fallback_unclaimed_paths_are_route_not_found() {
    let server = TestServer::start().await;
    let response = bounded(http().get(server.url("/")).send()).await.unwrap();
    assert_eq!(response.status(), 404);
    let body = json_body(response).await;
    assert_eq!(
        (&body["group"], &body["code"]),
        (&json!("route"), &json!("not_found"))
    );
}
