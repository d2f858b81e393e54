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

/// Asks for `path` from `origin` (a GET, or a preflight) and returns the CORS headers.
async fn cors_headers(server: &TestServer, origin: &str, preflight: bool) -> (u16, Vec<String>) {
    let request = if preflight {
        http()
            .request(reqwest::Method::OPTIONS, server.url("/metadata"))
            .header("access-control-request-method", "GET")
    } else {
        http().get(server.url("/metadata"))
    };
    let response = bounded(request.header("origin", origin).send())
        .await
        .unwrap();
    let names = response
        .headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect();
    (response.status().as_u16(), names)
}

#[tokio::test]
async fn the_null_origin_is_never_allowed() {
    let server = TestServer::start().await;
    for preflight in [false, true] {
        let (status, cors) = cors_headers(&server, "null", preflight).await;
        assert!(cors.is_empty(), "preflight {preflight}: {cors:?}");
        assert_eq!(status, if preflight { 204 } else { 200 });
    }
    let (_, cors) = cors_headers(&server, "http://localhost:3000", false).await;
    assert!(cors.contains(&"access-control-allow-origin".to_owned()));
}

#[tokio::test]
async fn an_allow_list_echoes_only_its_origins() {
    let server = TestServer::with(|b| b.cors_origins(["https://app.example"])).await;
    for preflight in [false, true] {
        let (_, allowed) = cors_headers(&server, "https://app.example", preflight).await;
        assert!(
            allowed.contains(&"access-control-allow-origin".to_owned())
                && allowed.contains(&"access-control-allow-credentials".to_owned()),
            "preflight {preflight}: {allowed:?}"
        );
        let (_, other) = cors_headers(&server, "https://evil.example", preflight).await;
        assert!(other.is_empty(), "preflight {preflight}: {other:?}");
    }
    let response = bounded(
        http()
            .get(server.url("/metadata"))
            .header("origin", "https://app.example")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}
