//! What an operator sees: `/metrics` after known traffic and the start and sleep times of
//! `/actors` (the log lines are tested in `tests/logs.rs`, a process of their own).

use std::collections::BTreeMap;

use footlights_server::AccessPolicy;
use serde_json::{Value, json};

use crate::support::{
    TestServer, action_json, bounded, http, json_body, send_text, subscribe_json, until_tag,
    ws_connect,
};

/// The JSON encoding's WebSocket subprotocols.
const JSON: &[&str] = &["rivet", "rivet_encoding.json"];

/// The samples of a Prometheus text exposition, by `name{labels}` exactly as written.
///
/// Checks the shape of every line on the way: `# TYPE`/`# HELP`/`# UNIT` comments, `# EOF`
/// last, and otherwise `name[{labels}] value` with a number for the value.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut lines = text.lines().peekable();
    let mut saw_eof = false;
    while let Some(line) = lines.next() {
        if line == "# EOF" {
            assert!(lines.peek().is_none(), "# EOF is the last line");
            saw_eof = true;
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap();
            assert!(
                ["TYPE", "HELP", "UNIT"].contains(&kind),
                "unknown comment: {line}"
            );
            continue;
        }
        // The value follows the last space; label values here never hold one.
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
        };
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels: {line}");
        }
        assert!(
            samples.insert(series.to_owned(), value).is_none(),
            "a series written twice: {line}"
        );
    }
    assert!(saw_eof, "the exposition ends with # EOF");
    samples
}

pub(crate) async fn scrape(server: &TestServer, token: &str) -> BTreeMap<String, f64> {
    let response = bounded(http().get(server.url("/metrics")).bearer_auth(token).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    parse_exposition(&bounded(response.text()).await.unwrap())
}

pub(crate) fn sample(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no series {series} in {samples:#?}"))
}

/// Scrapes until `series` has `value`, within the test limit: what a connection's end
/// changes is counted when its task has finished, just after the client saw the close.
async fn scrape_until(server: &TestServer, token: &str, series: &str, value: f64) {
    bounded(async {
        loop {
            if scrape(server, token).await.get(series) == Some(&value) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
}

/// Calls an action over HTTP on a connection of its own, closed after the answer (a socket's
/// bytes are counted when it closes, or every 64 KiB).
async fn post_action(server: &TestServer, key: &str, action: &str, args: Value) -> u16 {
    let path = TestServer::query_path(&format!("/action/{action}"), key);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = bounded(
        client
            .post(server.url(&path))
            .header("x-rivet-encoding", "json")
            .body(json!({ "args": args }).to_string())
            .send(),
    )
    .await
    .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn metrics_count_known_traffic_behind_the_admin_token() {
    let server = TestServer::with(|b| b.access(AccessPolicy::token("adm"))).await;
    // No token, a wrong one: refused and counted.
    let response = bounded(http().get(server.url("/metrics")).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = bounded(http().get(server.url("/metrics")).bearer_auth("no").send())
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Over HTTP: three good actions, one user error, one unknown action.
    for n in 1..=3 {
        assert_eq!(
            post_action(&server, "m", "increment", json!([n])).await,
            200
        );
    }
    assert_eq!(post_action(&server, "m", "fail", json!([])).await, 400);
    assert_eq!(
        post_action(&server, "m", "noSuchAction", json!([])).await,
        404
    );
    // Over a WebSocket: a subscriber, and one action that broadcasts to it.
    let path = TestServer::query_path("/connect", "m");
    let (mut ws, _) = ws_connect(&server, &path, JSON).await;
    until_tag(&mut ws, "Init").await;
    send_text(&mut ws, &subscribe_json("newCount", true)).await;
    send_text(&mut ws, &action_json(1, "increment", json!([10]))).await;
    assert_eq!(until_tag(&mut ws, "Event").await["args"], json!([16]));
    until_tag(&mut ws, "ActionResponse").await;

    let during = scrape(&server, "adm").await;
    assert_eq!(
        sample(
            &during,
            r#"footlights_connections_open{transport="websocket"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&during, r#"footlights_actors_awake{actor="room"}"#),
        1.0
    );
    crate::support::close_ws(&mut ws).await;
    scrape_until(
        &server,
        "adm",
        r#"footlights_connections_open{transport="websocket"}"#,
        0.0,
    )
    .await;

    let m = scrape(&server, "adm").await;
    let room = |name: &str| sample(&m, &format!(r#"footlights_{name}{{actor="room"}}"#));
    assert_eq!(room("actions_total"), 6.0, "5 over HTTP, 1 over the socket");
    assert_eq!(room("action_duration_seconds_count"), 6.0);
    assert_eq!(
        sample(
            &m,
            r#"footlights_action_duration_seconds_bucket{le="+Inf",actor="room"}"#
        ),
        6.0
    );
    assert!(room("action_duration_seconds_sum") > 0.0);
    assert_eq!(
        sample(
            &m,
            r#"footlights_action_errors_total{actor="room",code="user.boom"}"#
        ),
        1.0
    );
    assert_eq!(
        m.iter()
            .filter(|(k, _)| k.starts_with("footlights_action_errors_total"))
            .map(|(_, v)| v)
            .sum::<f64>(),
        2.0,
        "the user error and the unknown action: {m:#?}"
    );
    assert_eq!(
        room("events_sent_total"),
        1.0,
        "one subscriber, one broadcast"
    );
    assert_eq!(room("actor_wakes_total"), 1.0);
    assert_eq!(room("actor_sleeps_total"), 0.0);
    assert_eq!(room("actors_awake"), 1.0);
    // Its connection keeps its task.
    assert_eq!(room("actors_dormant"), 0.0);
    assert_eq!(
        sample(
            &m,
            r#"footlights_connections_opened_total{transport="websocket"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            r#"footlights_connections_opened_total{transport="sse"}"#
        ),
        0.0
    );
    for (reason, n) in [
        ("unauthorized", 1.0),
        ("forbidden", 1.0),
        ("rate_limit_client", 0.0),
    ] {
        assert_eq!(
            sample(
                &m,
                &format!(r#"footlights_requests_refused_total{{reason="{reason}"}}"#)
            ),
            n,
            "{reason}"
        );
    }
    // Every increment (and the actor's creation and start) was committed.
    let commits = sample(&m, "footlights_storage_commits_total");
    assert!(commits >= 4.0, "{commits}");
    assert_eq!(
        sample(&m, "footlights_storage_commit_batch_size_count"),
        commits
    );
    assert_eq!(
        sample(&m, "footlights_storage_commit_duration_seconds_count"),
        commits
    );
    assert_eq!(sample(&m, "footlights_storage_commit_failures_total"), 0.0);
    // Buckets are cumulative and end with everything.
    let buckets: Vec<f64> = m
        .iter()
        .filter(|(k, _)| k.starts_with("footlights_storage_commit_batch_size_bucket"))
        .map(|(_, v)| *v)
        .collect();
    assert!(buckets.len() > 2);
    assert!(buckets.iter().all(|b| *b <= commits));
    // Five requests and a WebSocket, each well over 100 bytes each way, on sockets now closed.
    bounded(async {
        loop {
            let m = scrape(&server, "adm").await;
            if sample(&m, "footlights_received_bytes_total") > 600.0
                && sample(&m, "footlights_sent_bytes_total") > 600.0
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await;
    if cfg!(target_os = "linux") {
        assert!(sample(&m, "footlights_process_resident_memory_bytes") > 1e6);
        assert!(sample(&m, "footlights_process_open_fds") >= 3.0);
        assert!(sample(&m, "footlights_process_threads") >= 1.0);
    }

    // A sleep is counted, and the next call wakes the actor again.
    server.registry.shutdown().await;
    let m = scrape(&server, "adm").await;
    assert_eq!(
        sample(&m, r#"footlights_actor_sleeps_total{actor="room"}"#),
        1.0
    );
    assert_eq!(sample(&m, r#"footlights_actors_awake{actor="room"}"#), 0.0);
    assert_eq!(post_action(&server, "m", "getCount", json!([])).await, 200);
    let m = scrape(&server, "adm").await;
    assert_eq!(
        sample(&m, r#"footlights_actor_wakes_total{actor="room"}"#),
        2.0
    );
    assert_eq!(sample(&m, r#"footlights_actors_awake{actor="room"}"#), 1.0);
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_are_open_without_a_token() {
    let server = TestServer::start().await;
    let m = scrape(&server, "anything").await;
    assert_eq!(sample(&m, r#"footlights_actions_total{actor="room"}"#), 0.0);
    let response = bounded(http().post(server.url("/metrics")).send())
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    server.shutdown().await;
}

#[tokio::test]
async fn actors_report_when_they_started_and_slept() {
    let server = TestServer::start().await;
    let id = server.room("times").await;
    let actor = |server: &TestServer, id: String| {
        let url = server.url(&format!("/actors?actor_ids={id}"));
        async move {
            let body = json_body(bounded(http().get(url).send()).await.unwrap()).await;
            body["actors"][0].clone()
        }
    };
    let awake = actor(&server, id.clone()).await;
    let created = awake["create_ts"].as_i64().unwrap();
    let started = awake["start_ts"].as_i64().expect("awake: a start time");
    assert!(started >= created);
    assert_eq!(awake["sleep_ts"], Value::Null, "awake: no sleep time");

    server.registry.shutdown().await;
    let asleep = actor(&server, id.clone()).await;
    assert_eq!(asleep["start_ts"].as_i64(), Some(started));
    let slept = asleep["sleep_ts"].as_i64().expect("asleep: a sleep time");
    assert!(slept >= started);

    // Woken again: a new start, no sleep.
    server.call("times", "getCount").await;
    let woken = actor(&server, id.clone()).await;
    assert!(woken["start_ts"].as_i64().unwrap() >= slept);
    assert_eq!(woken["sleep_ts"], Value::Null);
    server.shutdown().await;
}
