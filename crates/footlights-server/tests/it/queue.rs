//! `POST /queue/{name}` (§6.2) in every encoding and gateway form: waits, limits, refusals,
//! and messages that outlive a sleep and a restart.

use std::time::Duration;

use footlights::prelude::*;
use footlights::queue::{NextOptions, QueueOptions, Queues};
use footlights::storage::SqliteDriver;
use footlights::{ActorOptions, ConnRequest, RunSignal};
use footlights_protocol::Value;
use footlights_protocol::codec::{
    Dialect, Encoding, HttpQueueSendRequest, HttpQueueSendResponse, HttpResponseError,
    QueueSendStatus,
};
use serde_json::json;

use crate::support::{Room, TestServer, bounded, http, json_body};

#[derive(Deserialize)]
pub struct Job {
    n: i64,
}

/// `worker`: doubles the jobs of queue `jobs` in its run loop; queue `inbox` (at most two
/// messages of at most 64 bytes) is only taken by `drain`. Params `{"reject": …}` are refused.
#[derive(Default, Serialize, Deserialize)]
pub struct Worker {
    processed: u64,
}

#[footlights::actor(conn = Conns<Value>)]
impl Worker {
    #[action]
    fn processed(&self) -> u64 {
        self.processed
    }

    #[action]
    async fn drain(&mut self, ctx: &Ctx<Self>) -> Result<Vec<String>, ActionError> {
        let taken = ctx.queue().try_next_batch::<String>("inbox", 100).await?;
        Ok(taken.into_iter().map(|m| m.body.clone()).collect())
    }

    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Value,
        _request: &ConnRequest,
    ) -> Result<(), ActionError> {
        if params.get("reject").is_some() {
            return Err(ActionError::forbidden("rejected by the test"));
        }
        Ok(())
    }

    fn queues(queues: &mut Queues<Self>) {
        queues.add::<Job>("jobs", QueueOptions::default());
        queues.add::<String>(
            "inbox",
            QueueOptions::default().max_len(2).max_message_bytes(64),
        );
    }

    async fn run(ctx: Ctx<Self>, signal: RunSignal) -> Result<(), ActionError> {
        let options = NextOptions::default().signal(signal);
        while let Some(job) = ctx.queue().next::<Job>("jobs", options.clone()).await? {
            let n = job.body.n;
            job.complete_with(move |this: &mut Worker, _| {
                this.processed += 1;
                Ok(json!({ "doubled": 2 * n }))
            })
            .await?;
        }
        Ok(())
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_millis(300);
        o
    }
}

async fn server_with(registry: footlights::RegistryBuilder) -> TestServer {
    let registry = registry
        .actor::<Room>()
        .actor::<Worker>()
        .start()
        .await
        .unwrap();
    TestServer::with_registry(registry, |b| b).await
}

fn worker_path(route: &str, key: &str) -> String {
    format!(
        "/gateway/worker{route}?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key={key}&rvt-crash-policy=sleep"
    )
}

async fn post(server: &TestServer, path: &str, encoding: &str, body: Vec<u8>) -> reqwest::Response {
    bounded(
        http()
            .post(server.url(path))
            .header("x-rivet-encoding", encoding)
            .body(body)
            .send(),
    )
    .await
    .unwrap()
}

async fn post_json(server: &TestServer, path: &str, body: serde_json::Value) -> reqwest::Response {
    post(server, path, "json", body.to_string().into_bytes()).await
}

async fn processed(server: &TestServer, key: &str) -> serde_json::Value {
    let response = post_json(
        server,
        &worker_path("/action/processed", key),
        json!({"args": []}),
    )
    .await;
    json_body(response).await["output"].clone()
}

#[tokio::test]
async fn json_sends_wait_for_the_completion_or_answer_once_stored() {
    let server = server_with(footlights::Registry::builder()).await;
    let response = post_json(
        &server,
        &worker_path("/queue/jobs", "json"),
        json!({"body": {"n": 21}, "name": "jobs", "wait": true, "timeout": 10_000}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        json_body(response).await,
        json!({"status": "completed", "response": {"doubled": 42}})
    );
    let response = post_json(
        &server,
        &worker_path("/queue/jobs", "json"),
        json!({"body": {"n": 1}, "name": "jobs", "wait": false}),
    )
    .await;
    assert_eq!(json_body(response).await, json!({"status": "completed"}));
    // Through the direct gateway form as well.
    let id = server
        .registry
        .resolve(&footlights_client::Target::GetOrCreate {
            name: "worker".into(),
            key: "json".into(),
            input: None,
        })
        .await
        .unwrap();
    let response = post_json(
        &server,
        &format!("/gateway/{id}/queue/jobs"),
        json!({"body": {"n": 2}, "wait": true}),
    )
    .await;
    assert_eq!(
        json_body(response).await,
        json!({"status": "completed", "response": {"doubled": 4}})
    );
    for _ in 0..200 {
        if processed(&server, "json").await == json!(3) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the no-wait job was never processed");
}

#[tokio::test]
async fn cbor_and_bare_sends_answer_in_their_encoding() {
    let server = server_with(footlights::Registry::builder()).await;
    // {"body":{"n":21},"name":"jobs","wait":true}, with cbor-x's map16 headers.
    let mut cbor = vec![0xb9, 0x00, 0x03, 0x64];
    cbor.extend_from_slice(b"body");
    cbor.extend_from_slice(&[0xb9, 0x00, 0x01, 0x61, b'n', 0x15, 0x64]);
    cbor.extend_from_slice(b"name");
    cbor.extend_from_slice(&[0x64]);
    cbor.extend_from_slice(b"jobs");
    cbor.extend_from_slice(&[0x64]);
    cbor.extend_from_slice(b"wait");
    cbor.push(0xf5);
    let response = post(&server, &worker_path("/queue/jobs", "cbor"), "cbor", cbor).await;
    assert_eq!(response.status(), 200);
    let bytes = bounded(response.bytes()).await.unwrap();
    let answer = HttpQueueSendResponse::decode(&bytes, Encoding::Cbor, Dialect::Compat)
        .unwrap()
        .0;
    assert_eq!(answer.status, QueueSendStatus::Completed);
    assert_eq!(
        answer.response.unwrap().get("doubled"),
        Some(&Value::Int(42))
    );

    for version in [3u16, 4] {
        let request = HttpQueueSendRequest {
            body: Value::Object(vec![("n".into(), Value::Int(5))]),
            name: Some("jobs".into()),
            wait: Some(true),
            timeout: Some(10_000),
        };
        let body = request.encode(Encoding::Bare, version, Dialect::Compat);
        let response = post(&server, &worker_path("/queue/jobs", "bare"), "bare", body).await;
        assert_eq!(response.status(), 200);
        let bytes = bounded(response.bytes()).await.unwrap();
        assert_eq!(
            u16::from_le_bytes([bytes[0], bytes[1]]),
            version,
            "answered in the client's version"
        );
        let (answer, _) =
            HttpQueueSendResponse::decode(&bytes, Encoding::Bare, Dialect::Compat).unwrap();
        assert_eq!(answer.status, QueueSendStatus::Completed);
        assert_eq!(
            answer.response.unwrap().get("doubled"),
            Some(&Value::Int(10))
        );
    }
    // A no-wait send in BARE: `completed` without a response, as the protocol's example.
    let request = HttpQueueSendRequest {
        body: Value::Object(vec![("n".into(), Value::Int(1))]),
        name: Some("jobs".into()),
        wait: Some(false),
        timeout: None,
    };
    let body = request.encode(Encoding::Bare, 4, Dialect::Compat);
    let response = post(&server, &worker_path("/queue/jobs", "bare"), "bare", body).await;
    let bytes = bounded(response.bytes()).await.unwrap();
    assert_eq!(
        bytes.as_ref(),
        [
            0x04, 0x00, 0x09, b'c', b'o', b'm', b'p', b'l', b'e', b't', b'e', b'd', 0x00
        ]
    );
}

#[tokio::test]
async fn refusals_and_limits_are_coded_errors() {
    let server = server_with(footlights::Registry::builder()).await;
    let send = |queue: &'static str, body: serde_json::Value| {
        let path = worker_path(&format!("/queue/{queue}"), "limits");
        let server = &server;
        async move { post_json(server, &path, json!({"body": body, "wait": false})).await }
    };
    let response = send("nope", json!(1)).await;
    assert_eq!(response.status(), 403);
    let e = json_body(response).await;
    assert_eq!(
        (e["group"].as_str(), e["code"].as_str()),
        (Some("auth"), Some("forbidden"))
    );

    let response = send("jobs", json!("not a job")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(json_body(response).await["code"], "invalid_message");

    let response = send("inbox", json!("x".repeat(100))).await;
    assert_eq!(response.status(), 400);
    let e = json_body(response).await;
    assert_eq!(
        (e["group"].as_str(), e["code"].as_str()),
        (Some("queue"), Some("message_too_large"))
    );

    for body in ["a", "b"] {
        assert_eq!(send("inbox", json!(body)).await.status(), 200);
    }
    let response = send("inbox", json!("c")).await;
    assert_eq!(response.status(), 503);
    let e = json_body(response).await;
    assert_eq!(
        (e["group"].as_str(), e["code"].as_str()),
        (Some("actor"), Some("overloaded"))
    );
    assert_eq!(
        e["metadata"],
        json!({"channel": "dispatch_inbox", "operation": "dispatch_queue_send"})
    );

    // The connect hooks run, as for a stateless action.
    let response = bounded(
        http()
            .post(server.url(&worker_path("/queue/inbox", "limits")))
            .header("x-rivet-encoding", "json")
            .header("x-rivet-conn-params", r#"{"reject":true}"#)
            .body(json!({"body": "d"}).to_string())
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 403);

    // A BARE error for a BARE request.
    let request = HttpQueueSendRequest {
        body: Value::Int(1),
        name: Some("nope".into()),
        wait: Some(false),
        timeout: None,
    };
    let body = request.encode(Encoding::Bare, 4, Dialect::Compat);
    let response = post(&server, &worker_path("/queue/nope", "limits"), "bare", body).await;
    assert_eq!(response.status(), 403);
    let bytes = bounded(response.bytes()).await.unwrap();
    let (e, _) = HttpResponseError::decode(&bytes, Encoding::Bare, Dialect::Compat).unwrap();
    assert_eq!(e.error.code(), "forbidden");
}

#[tokio::test]
async fn a_wait_that_times_out_says_so_and_the_message_stays() {
    let server = server_with(footlights::Registry::builder()).await;
    let path = worker_path("/queue/inbox", "timeout");
    let response = post_json(
        &server,
        &path,
        json!({"body": "m", "wait": true, "timeout": 50}),
    )
    .await;
    assert_eq!(json_body(response).await, json!({"status": "timedOut"}));
    let response = post_json(
        &server,
        &worker_path("/action/drain", "timeout"),
        json!({"args": []}),
    )
    .await;
    assert_eq!(json_body(response).await, json!({"output": ["m"]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_survive_a_sleep_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queues.db");
    let open = || async {
        footlights::Registry::builder().driver(SqliteDriver::open(&path).await.unwrap())
    };
    let server = server_with(open().await).await;
    let send = worker_path("/queue/inbox", "durable");
    assert_eq!(
        post_json(&server, &send, json!({"body": "one"}))
            .await
            .status(),
        200
    );
    // The worker sleeps after 300 ms idle; its run loop only waits for work.
    for _ in 0..500 {
        if server.registry.awake_count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.registry.awake_count(), 0, "the worker fell asleep");
    assert_eq!(
        post_json(&server, &send, json!({"body": "two"}))
            .await
            .status(),
        200
    );
    server.shutdown().await;

    let server = server_with(open().await).await;
    let response = post_json(
        &server,
        &worker_path("/action/drain", "durable"),
        json!({"args": []}),
    )
    .await;
    assert_eq!(json_body(response).await, json!({"output": ["one", "two"]}));
    server.shutdown().await;
}

#[tokio::test]
async fn the_rust_client_sends_and_waits_over_the_network() {
    let server = server_with(footlights::Registry::builder()).await;
    let client = footlights_client::Client::new(&server.url("")).unwrap();
    let handle = client.get_or_create::<Worker>(["rust"]);
    let out = bounded(handle.enqueue_and_wait("jobs", &json!({"n": 21}), Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(
        out,
        footlights_client::SendOutcome::Completed(Some(Value::Object(vec![(
            "doubled".into(),
            Value::Int(42)
        )])))
    );
    bounded(handle.enqueue("inbox", &"kept")).await.unwrap();
    let out = bounded(handle.enqueue_and_wait("inbox", &"waits", Duration::from_millis(50)))
        .await
        .unwrap();
    assert_eq!(out, footlights_client::SendOutcome::TimedOut);
    let e = bounded(handle.enqueue("nope", &1)).await.unwrap_err();
    assert_eq!(e.code(), "forbidden");
    assert_eq!(bounded(handle.processed()).await.unwrap(), 1);
}

/// `mailroom`: queue `letters`, taken only by `sort`; awake for a minute after each message.
#[derive(Default, Serialize, Deserialize)]
pub struct Mailroom {}

#[footlights::actor]
impl Mailroom {
    fn queues(queues: &mut Queues<Self>) {
        queues.add::<String>("letters", QueueOptions::default());
        queues.add::<String>("parcels", QueueOptions::default());
    }

    #[action]
    async fn sort(&mut self, ctx: &Ctx<Self>, max: usize) -> Result<Vec<String>, ActionError> {
        let taken = ctx.queue().try_next_batch::<String>("letters", max).await?;
        Ok(taken.into_iter().map(|m| m.body.clone()).collect())
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(60);
        o
    }
}

#[tokio::test]
async fn queues_show_in_the_inspector_and_their_depth_in_the_metrics() {
    use crate::observability::{sample, scrape};
    let registry = footlights::Registry::builder()
        .actor::<Room>()
        .actor::<Mailroom>()
        .start()
        .await
        .unwrap();
    let server = TestServer::with_registry(registry, |b| b).await;
    let path = |route: &str| {
        format!(
            "/gateway/mailroom{route}?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=m&rvt-crash-policy=sleep"
        )
    };
    for n in 1..=3 {
        let letter = format!("letter {n}");
        let response = post_json(
            &server,
            &path("/queue/letters"),
            json!({ "body": letter, "name": "letters", "wait": false }),
        )
        .await;
        assert_eq!(response.status(), 200);
    }
    let depth = r#"footlights_queue_messages{actor="mailroom",queue="letters"}"#;
    assert_eq!(sample(&scrape(&server, "").await, depth), 3.0);

    let id = server
        .registry
        .resolve(&footlights_client::Target::GetOrCreate {
            name: "mailroom".into(),
            key: "m".into(),
            input: None,
        })
        .await
        .unwrap();
    let detail = |query: &str| {
        let url = server.url(&format!("/inspector/api/actors/{id}{query}"));
        async move { json_body(bounded(http().get(url).send()).await.unwrap()).await }
    };
    let view = detail("?queue_limit=2").await;
    let queues = view["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 2, "both declared queues: {view}");
    assert_eq!(queues[1]["name"], json!("parcels"));
    assert_eq!(queues[1]["depth"], json!(0));
    let letters = &queues[0];
    assert_eq!(letters["name"], json!("letters"));
    assert_eq!(letters["depth"], json!(3));
    assert_eq!(letters["inFlight"], json!(0));
    assert_eq!(letters["more"], json!(true));
    let previews: Vec<&str> = letters["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["preview"].as_str().unwrap())
        .collect();
    assert_eq!(previews, [r#""letter 1""#, r#""letter 2""#]);
    assert_eq!(letters["messages"][0]["size"], json!(10));

    // The next page, of that queue only.
    let last = letters["messages"][1]["id"].as_u64().unwrap();
    let next = detail(&format!("?queue=letters&queue_limit=2&queue_after={last}")).await;
    let queues = next["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0]["messages"][0]["preview"], json!(r#""letter 3""#));
    assert_eq!(queues[0]["more"], json!(false));

    // Two taken (and removed at once): the gauge and the inspector follow.
    let sorted = post_json(&server, &path("/action/sort"), json!({ "args": [2] })).await;
    assert_eq!(
        json_body(sorted).await["output"],
        json!(["letter 1", "letter 2"])
    );
    assert_eq!(sample(&scrape(&server, "").await, depth), 1.0);
    assert_eq!(detail("").await["queues"][0]["depth"], json!(1));

    // A sleeping actor's messages are not counted; they are again once it wakes.
    server.registry.shutdown().await;
    assert_eq!(sample(&scrape(&server, "").await, depth), 0.0);
}
