//! Two nodes of a cluster in one process (one shared store, one shared membership): any node
//! serves any actor, forwarding to the node that holds it.

use std::sync::Arc;
use std::time::Duration;

use footlights::Registry;
use footlights_core::ClusterConfig;
use footlights_storage::cluster::{Cluster, LocalCluster, NodeInfo};
use footlights_storage::{Driver, MemoryDriver};
use serde_json::json;

use crate::support::{
    Room, TestServer, action_json, bounded, close_ws, http, json_body, send_text, subscribe_json,
    until_tag, ws_connect,
};

struct Pair {
    a: TestServer,
    b: TestServer,
}

/// A node serving its routes to clients and to its peers on one listener.
async fn node(name: &str, driver: &Arc<dyn Driver>, cluster: &Arc<dyn Cluster>) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = ClusterConfig::new(NodeInfo::new(name, addr)).lease(Duration::from_secs(30));
    let registry = Registry::builder()
        .actor::<Room>()
        .shared_driver(driver.clone())
        .cluster(cluster.clone(), config)
        .start()
        .await
        .unwrap();
    TestServer::on_listener(listener, registry, |b| b)
}

async fn pair() -> Pair {
    let driver: Arc<dyn Driver> = Arc::new(MemoryDriver::new());
    let cluster: Arc<dyn Cluster> = Arc::new(LocalCluster::new(driver.clone()));
    Pair {
        a: node("a", &driver, &cluster).await,
        b: node("b", &driver, &cluster).await,
    }
}

async fn increment(server: &TestServer, key: &str, by: i64) -> serde_json::Value {
    let path = TestServer::query_path("/action/increment", key);
    let response = bounded(
        http()
            .post(server.url(&path))
            .header("content-type", "application/json")
            .body(json!({ "args": [by] }).to_string())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200, "increment through {}", server.addr);
    json_body(response).await
}

#[tokio::test]
async fn actions_through_either_node_reach_one_instance() {
    let Pair { a, b } = pair().await;
    assert_eq!(increment(&a, "one", 1).await, json!({"output": 1}));
    assert_eq!(increment(&b, "one", 2).await, json!({"output": 3}));
    assert_eq!(increment(&a, "one", 3).await, json!({"output": 6}));
    assert_eq!(
        a.registry.awake_count(),
        1,
        "the first node holds the actor"
    );
    assert_eq!(b.registry.awake_count(), 0, "the second node forwarded");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_websocket_through_another_node_gets_replies_and_events() {
    let Pair { a, b } = pair().await;
    increment(&a, "ws", 10).await;
    let path = TestServer::query_path("/connect", "ws");
    let (mut ws, protocol) = ws_connect(&b, &path, &["rivet", "rivet_encoding.json"]).await;
    assert_eq!(protocol.as_deref(), Some("rivet"));
    until_tag(&mut ws, "Init").await;
    send_text(&mut ws, &subscribe_json("newCount", true)).await;
    send_text(&mut ws, &action_json(1, "getCount", json!([]))).await;
    assert_eq!(until_tag(&mut ws, "ActionResponse").await["output"], 10);
    // A change made through the owner reaches the socket relayed by the other node.
    increment(&a, "ws", 5).await;
    let event = until_tag(&mut ws, "Event").await;
    assert_eq!(event, json!({"name": "newCount", "args": [15]}));
    assert_eq!(b.registry.awake_count(), 0);
    close_ws(&mut ws).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn when_the_owner_leaves_another_node_takes_the_actor_with_its_state() {
    let Pair { a, b } = pair().await;
    increment(&a, "moves", 4).await;
    // A graceful stop saves the actor and releases it: no lease to wait out.
    a.shutdown().await;
    assert_eq!(increment(&b, "moves", 1).await, json!({"output": 5}));
    assert_eq!(b.registry.awake_count(), 1);
    b.shutdown().await;
}

#[tokio::test]
async fn a_forwarded_request_for_an_actor_that_moved_is_not_forwarded_again() {
    let Pair { a, b } = pair().await;
    increment(&a, "loop", 1).await;
    let path = TestServer::query_path("/action/getCount", "loop");
    let response = bounded(
        http()
            .post(b.url(&path))
            .header(footlights_server::FORWARDED_HEADER, "1")
            .header("content-type", "application/json")
            .body(r#"{"args":[]}"#)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 503);
    let body = json_body(response).await;
    assert_eq!(
        (body["group"].as_str(), body["code"].as_str()),
        (Some("actor"), Some("restarting")),
        "{body}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn the_in_process_client_reaches_actors_held_by_another_node() {
    use crate::support::RoomActions as _;
    use futures::StreamExt as _;
    let Pair { a, b } = pair().await;
    // The second node holds the actor.
    increment(&b, "in-process", 1).await;
    let client = a.registry.client();
    let room = client.get_or_create::<Room>(["in-process"]);
    assert_eq!(room.increment(2).await.unwrap(), 3);
    let conn = bounded(room.connect()).await.unwrap();
    let mut counts = conn.events::<crate::support::NewCount>();
    assert_eq!(bounded(conn.increment(4)).await.unwrap(), 7);
    let crate::support::NewCount(n) = bounded(counts.next()).await.unwrap();
    assert_eq!(n, 7);
    assert_eq!(
        a.registry.awake_count(),
        0,
        "every call went to the other node"
    );
    conn.dispose().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_sse_connection_through_another_node_gets_replies_and_events() {
    use crate::support::RoomActions as _;
    use futures::StreamExt as _;
    let Pair { a, b } = pair().await;
    increment(&a, "sse", 1).await;
    let client = footlights::Client::builder(&format!("http://{}", b.addr))
        .transports([footlights::TransportKind::Sse])
        .build()
        .unwrap();
    let room = client.get_or_create::<Room>(["sse"]);
    let conn = bounded(room.connect()).await.unwrap();
    let mut counts = conn.events::<crate::support::NewCount>();
    assert_eq!(bounded(conn.increment(2)).await.unwrap(), 3);
    let crate::support::NewCount(n) = bounded(counts.next()).await.unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        b.registry.awake_count(),
        0,
        "the stream and its posts went to the owner"
    );
    conn.dispose().await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn raw_requests_raw_websockets_and_the_manager_api_work_through_another_node() {
    use crate::support::{Frame, next_close, next_frame, send_text};
    let Pair { a, b } = pair().await;
    increment(&a, "raw", 1).await;
    // Raw HTTP, answered by the actor on the first node.
    let path = TestServer::query_path("/request/echo/x", "raw");
    let response = bounded(http().post(b.url(&path)).body("hi").send())
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-raw"], "yes");
    let text = bounded(response.text()).await.unwrap();
    assert!(
        text.starts_with("POST /echo/x") && text.ends_with(" hi"),
        "{text}"
    );
    // A raw WebSocket, relayed.
    let path = TestServer::query_path("/websocket/echo", "raw");
    let (mut ws, _) = ws_connect(&b, &path, &["rivet", "rivet_encoding.bare"]).await;
    send_text(&mut ws, "hello").await;
    assert!(matches!(next_frame(&mut ws).await, Frame::Text(t) if t == "hello"));
    send_text(&mut ws, "close").await;
    assert_eq!(next_close(&mut ws).await, (4000, "asked to".to_owned()));
    // The manager API reads the shared store: either node lists the actor.
    for node in [&a, &b] {
        let listed = json_body(
            bounded(
                http()
                    .get(node.url("/actors?name=room&key=raw&namespace=default"))
                    .send(),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(listed["actors"].as_array().unwrap().len(), 1, "{listed}");
    }
    assert_eq!(b.registry.awake_count(), 0);
    a.shutdown().await;
    b.shutdown().await;
}
