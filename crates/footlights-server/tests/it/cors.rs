//! CORS (§2.5) on every route, errors included.

use crate::support::{TestServer, bounded, http};

#[tokio::test]
async fn preflights_are_204_with_echoed_values_and_never_wake_actors() {
    let server = TestServer::start().await;
    let path = TestServer::query_path("/action/increment", "cors-preflight");
    let response = bounded(
        http()
            .request(reqwest::Method::OPTIONS, server.url(&path))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "x-rivet-encoding, x-rivet-conn-params",
            )
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 204);
    let h = response.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(
        h["access-control-allow-methods"],
        "GET, POST, PUT, DELETE, OPTIONS, PATCH"
    );
    assert_eq!(
        h["access-control-allow-headers"],
        "x-rivet-encoding, x-rivet-conn-params"
    );
    assert_eq!(h["access-control-expose-headers"], "*");
    assert_eq!(h["access-control-max-age"], "86400");
    assert_eq!(h["vary"], "origin");
    assert!(bounded(response.bytes()).await.unwrap().is_empty());

    let list = bounded(
        http()
            .get(server.url("/actors?name=room&key=cors-preflight"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(
        bounded(list.text()).await.unwrap(),
        r#"{"actors":[]}"#,
        "the preflight created an actor"
    );
}

#[tokio::test]
async fn preflights_without_origin_or_requested_headers_allow_any() {
    let server = TestServer::start().await;
    let response = bounded(
        http()
            .request(reqwest::Method::OPTIONS, server.url("/anything/at/all"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert_eq!(response.headers()["access-control-allow-headers"], "*");
    assert!(response.headers().get("vary").is_none());
}

#[tokio::test]
async fn every_response_echoes_the_origin_errors_included() {
    let server = TestServer::start().await;
    let id = server.room("cors").await;
    let requests = [
        http().get(server.url("/metadata")),
        http().get(server.url("/nowhere")),
        http()
            .post(server.url(&format!("/gateway/{id}/action/fail")))
            .body("{}"),
        http()
            .post(server.url("/gateway/missing/action/x"))
            .body("{}"),
        http().put(server.url("/actors")).body("garbage"),
    ];
    for request in requests {
        let response = bounded(request.header("origin", "http://localhost:3000").send())
            .await
            .unwrap();
        let h = response.headers();
        assert_eq!(
            h["access-control-allow-origin"],
            "http://localhost:3000",
            "{}",
            response.url()
        );
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-expose-headers"], "*");
        assert_eq!(h["vary"], "origin");
        assert_eq!(h["x-rivet-ray-id"].len(), 16);
    }
}
