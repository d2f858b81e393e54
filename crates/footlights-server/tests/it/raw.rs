//! Raw routes: `/request/*` reaches the actor's HTTP handler and its response comes back
//! unchanged; `/websocket/*` bridges frames both ways.

use crate::support::*;

#[tokio::test]
async fn raw_requests_are_passed_through_both_ways() {
    let server = TestServer::start().await;
    let url = server.url(
        "/gateway/room/request/echo/path?q=1&rvt-namespace=default&rvt-method=getOrCreate\
         &rvt-runner=default&r=2&rvt-key=raw",
    );
    let response = bounded(
        http()
            .put(url)
            .header("x-rivet-conn-params", r#"{"who":"ann"}"#)
            .body("payload")
            .send(),
    )
    .await
    .unwrap();
    let status = response.status();
    if status != 202 {
        panic!("{status}: {}", response.text().await.unwrap());
    }
    assert_eq!(response.headers()["x-raw"], "yes");
    let body = response.text().await.unwrap();
    // The actor sees the path without `/request` and only the non-`rvt-` query pairs.
    assert_eq!(body, r#"PUT /echo/path?q=1&r=2 Some("ann") payload"#);
}

#[tokio::test]
async fn the_original_request_url_header_names_the_url_the_actor_sees() {
    let server = TestServer::start().await;
    let url = server.url(&TestServer::query_path("/request/ignored", "raw"));
    let response = bounded(
        http()
            .get(url)
            .header(
                "x-rivet-internal-original-request-url",
                "http://example.invalid/echo/original?z=9",
            )
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 202);
    let body = response.text().await.unwrap();
    assert!(
        body.starts_with("GET http://example.invalid/echo/original?z=9 "),
        "{body}"
    );
}

#[tokio::test]
async fn a_path_the_handler_does_not_take_is_a_404_that_is_not_a_stale_actor_code() {
    let server = TestServer::start().await;
    let url = server.url(&TestServer::query_path("/request/other", "raw"));
    let response = bounded(http().get(url).send()).await.unwrap();
    assert_eq!(response.status(), 404);
    let error = json_body(response).await;
    assert_eq!(
        (error["group"].as_str(), error["code"].as_str()),
        (Some("handler"), Some("request_not_defined"))
    );
}

#[tokio::test]
async fn a_handler_that_makes_no_response_is_a_500_with_a_coded_error() {
    let server = TestServer::start().await;
    let url = server.url(&TestServer::query_path("/request/nothing", "raw"));
    let response = bounded(http().get(url).send()).await.unwrap();
    assert_eq!(response.status(), 500);
    let error = json_body(response).await;
    assert_eq!(
        (error["group"].as_str(), error["code"].as_str()),
        (Some("handler"), Some("invalid_request_handler_response"))
    );
}

#[tokio::test]
async fn raw_websockets_echo_text_and_binary_and_close_with_the_actor_code() {
    let server = TestServer::start().await;
    let path = TestServer::query_path("/websocket/echo", "raw-ws");
    let (mut ws, selected) = ws_connect(&server, &path, &["rivet", "rivet_encoding.bare"]).await;
    assert_eq!(selected.as_deref(), Some("rivet"));
    send_text(&mut ws, "hello").await;
    assert!(matches!(next_frame(&mut ws).await, Frame::Text(t) if t == "hello"));
    send_binary(&mut ws, vec![0, 159, 255]).await;
    assert!(matches!(next_frame(&mut ws).await, Frame::Binary(b) if b == [0, 159, 255]));
    send_text(&mut ws, "close").await;
    assert_eq!(next_close(&mut ws).await, (4000, "asked to".to_owned()));
}

#[tokio::test]
async fn a_refused_raw_websocket_is_closed_with_1011_and_the_code() {
    let server = TestServer::start().await;
    let path = TestServer::query_path("/websocket/nope", "raw-ws");
    let (mut ws, selected) = ws_connect(&server, &path, &["rivet"]).await;
    assert_eq!(selected.as_deref(), Some("rivet"));
    let (code, reason) = next_close(&mut ws).await;
    assert_eq!(
        (code, reason.as_str()),
        (1011, "handler.websocket_not_defined")
    );
}
