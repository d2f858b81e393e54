//! Several `footlights serve --postgres` processes as one cluster, against a PostgreSQL the
//! test harness starts (or the one `FOOTLIGHTS_TEST_POSTGRES_URL` names). Each test has its own
//! schema, a short lease, bounded waits, and kills its processes when it ends.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use footlights_storage_postgres::test_support::{TestPostgres, TestSchema};
use rand::Rng as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::serve::{Footlights, LIMIT, serve_command};

/// The test lease: short, so that failover takes about two seconds.
const LEASE_MS: &str = "2000";

/// Starts one node of the cluster in `schema` and waits for its two ready lines.
async fn node(data_dir: &Path, schema: &TestSchema, name: &str) -> Footlights {
    node_on(data_dir, schema, name, "0").await
}

/// [`node`] reaching the database at `url`.
async fn node_with_url(data_dir: &Path, schema: &TestSchema, name: &str, url: &str) -> Footlights {
    start_node(data_dir, schema, name, "0", url, &[]).await.0
}

/// [`node`] on `port` (which other nodes may listen on too).
async fn node_on(data_dir: &Path, schema: &TestSchema, name: &str, port: &str) -> Footlights {
    let url = TestPostgres::shared_async().await.url().to_owned();
    start_node(data_dir, schema, name, port, &url, &[]).await.0
}

/// A node that advertises `advertise` as its peer address; returns it and the address its
/// peer link listens on.
async fn node_advertising(
    data_dir: &Path,
    schema: &TestSchema,
    name: &str,
    advertise: &str,
) -> (Footlights, String) {
    let url = TestPostgres::shared_async().await.url().to_owned();
    let extra = ["--peer-advertise", advertise];
    start_node(data_dir, schema, name, "0", &url, &extra).await
}

/// Starts a node and waits for its two ready lines; returns it and its peer link's address.
async fn start_node(
    data_dir: &Path,
    schema: &TestSchema,
    name: &str,
    port: &str,
    url: &str,
    extra: &[&str],
) -> (Footlights, String) {
    let args = [
        "--port",
        port,
        "--postgres",
        url,
        "--postgres-schema",
        schema.name(),
        "--node-name",
        name,
        "--peer-addr",
        "127.0.0.1:0",
        "--lease-ms",
        LEASE_MS,
    ];
    let mut child = serve_command(data_dir, &[&args[..], extra].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn footlights");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(LIMIT, lines.next_line())
            .await
            .expect("ready line in time")
            .expect("read stdout")
            .expect("footlights exited before it was ready")
    };
    let first = next().await;
    let url = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    let second = next().await;
    let peer = second
        .strip_prefix(&format!("cluster node {name}:"))
        .and_then(|rest| rest.split_once(", peer link listening on "))
        .map(|(_, peer)| peer.to_owned())
        .unwrap_or_else(|| panic!("unexpected second line {second:?}"));
    assert!(peer.starts_with("127.0.0.1:"), "{second}");
    // The node has created the tables: log every commit from here on.
    record_commits(schema).await;
    (Footlights { child, url }, peer)
}

/// What an increment through a node answered: the new count, or a retryable refusal.
async fn increment(node: &Footlights, key: &str) -> Result<i64, (u16, Value)> {
    let (status, body) = node.action("counter", key, "increment", json!([1])).await;
    match (status, body["output"].as_i64()) {
        (200, Some(count)) => Ok(count),
        _ => Err((status, body)),
    }
}

/// The count, asked through `node` until it answers (bounded by `within`).
async fn count_within(node: &Footlights, key: &str, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = node.action("counter", key, "getCount", json!([])).await;
        if status == 200 {
            return body["output"].as_i64().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no answer within {within:?}: {status} {body}"
        );
        assert_eq!(
            status, 503,
            "only retryable refusals while the actor moves: {body}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records every state commit with the generation and owner of the actor when it was made
/// (a trigger on the driver's `state` table), for [`check_commits`]. Idempotent.
async fn record_commits(schema: &TestSchema) {
    schema
        .client()
        .await
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS commit_log (
                 seq bigserial PRIMARY KEY, actor_id text, generation bigint, owner text, bytes bytea);
             CREATE OR REPLACE FUNCTION log_commit() RETURNS trigger AS $$ BEGIN
                 INSERT INTO commit_log (actor_id, generation, owner, bytes)
                     SELECT NEW.actor_id, a.generation, a.owner, NEW.bytes
                     FROM actors a WHERE a.id = NEW.actor_id;
                 RETURN NEW;
             END $$ LANGUAGE plpgsql;
             CREATE OR REPLACE TRIGGER log_commit AFTER INSERT OR UPDATE ON state
                 FOR EACH ROW EXECUTE FUNCTION log_commit();",
        )
        .await
        .unwrap();
}

/// Checks the commit log of every counter: its count strictly increases from commit to
/// commit, its generation never goes back, and one generation is always one owner's.
async fn check_commits(schema: &TestSchema) {
    let rows = schema
        .client()
        .await
        .query(
            "SELECT actor_id, generation, owner, bytes FROM commit_log ORDER BY seq",
            &[],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty(), "commits were logged");
    let mut last: std::collections::HashMap<String, (i64, Option<String>, i64)> =
        std::collections::HashMap::new();
    for row in rows {
        let (actor, generation, owner): (String, i64, Option<String>) =
            (row.get(0), row.get(1), row.get(2));
        let bytes: Vec<u8> = row.get(3);
        // A snapshot: a format byte, then the state in CBOR.
        let state: Value = ciborium::from_reader(&bytes[1..]).unwrap();
        let count = state["count"].as_i64().unwrap();
        if let Some((g, o, c)) = last.get(&actor) {
            assert!(
                generation >= *g,
                "{actor}: generation {generation} after {g}"
            );
            if generation == *g {
                assert_eq!(&owner, o, "{actor}: generation {g} written by two owners");
            }
            assert!(count > *c, "{actor}: count {count} committed after {c}");
        }
        last.insert(actor, (generation, owner, count));
    }
}

/// The owner and generation the database holds for the test's one counter.
async fn placement(schema: &TestSchema) -> (Option<String>, i64) {
    let client = schema.client().await;
    let row = client
        .query_one(
            "SELECT owner, generation FROM actors WHERE name = 'counter'",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_through_every_node_reach_one_instance_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let schema = TestSchema::new(TestPostgres::shared_async().await);
    let nodes = [
        node(dir.path(), &schema, "a").await,
        node(dir.path(), &schema, "b").await,
        node(dir.path(), &schema, "c").await,
    ];
    let nodes = &nodes;
    // 40 clients, 5 increments each, every call through a node picked at random.
    let clients = (0..40).map(|_| async move {
        let mut acked = 0;
        for _ in 0..5 {
            let pick = rand::rng().random_range(0..nodes.len());
            let deadline = Instant::now() + LIMIT;
            loop {
                match increment(&nodes[pick], "shared").await {
                    Ok(_) => break acked += 1,
                    Err((503, _)) if Instant::now() < deadline => tokio::task::yield_now().await,
                    Err(other) => panic!("increment failed: {other:?}"),
                }
            }
        }
        acked
    });
    let acked: i64 = futures::future::join_all(clients).await.into_iter().sum();
    assert_eq!(acked, 200);
    for node in nodes {
        assert_eq!(count_within(node, "shared", LIMIT).await, acked);
    }
    let (owner, generation) = placement(&schema).await;
    assert!(owner.is_some(), "one node holds the actor");
    assert_eq!(generation, 1, "one claim, so one activation");
    check_commits(&schema).await;
}

/// Increments through `node` until one is acknowledged (retryable refusals while the actor
/// moves are retried, bounded by `within`); returns the new count and how many were refused.
async fn increment_within(node: &Footlights, key: &str, within: Duration) -> (i64, u32) {
    let deadline = Instant::now() + within;
    let mut refused = 0;
    loop {
        match increment(node, key).await {
            Ok(count) => return (count, refused),
            Err((503, body)) => {
                assert!(
                    Instant::now() < deadline,
                    "no success within {within:?}: {body}"
                );
                refused += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("increment failed: {other:?}"),
        }
    }
}

/// A WebSocket connection to the counter `key` through `node`.
async fn connect(
    node: &Footlights,
    key: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let url = format!(
        "{}/gateway/counter/connect?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key={key}&rvt-crash-policy=sleep",
        node.url.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "rivet, rivet_encoding.json".parse().unwrap(),
    );
    let (ws, _) = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connected in time")
        .unwrap();
    ws
}

/// Reads `ws` until its close frame; returns the close code (1006 if it ended without one).
async fn close_code(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> u16 {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(frame))) => return frame.map_or(1005, |f| f.code.into()),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return 1006,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_of_the_owner_another_node_serves_the_actor_with_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let schema = TestSchema::new(TestPostgres::shared_async().await);
    let mut a = node(dir.path(), &schema, "a").await;
    let b = node(dir.path(), &schema, "b").await;
    let mut acked = 0;
    for _ in 0..3 {
        assert_eq!(increment(&a, "k9").await, Ok(acked + 1));
        acked += 1;
    }
    for _ in 0..2 {
        assert_eq!(
            increment(&b, "k9").await,
            Ok(acked + 1),
            "forwarded to the owner"
        );
        acked += 1;
    }
    let mut ws = connect(&b, "k9").await;
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    let killed = Instant::now();
    assert_eq!(
        close_code(&mut ws).await,
        1012,
        "the relayed socket is closed with service restart"
    );
    // The actor comes back on the survivor once the owner's lease has run out.
    let (count, refused) = increment_within(&b, "k9", LIMIT).await;
    let recovered = killed.elapsed();
    eprintln!("served again {recovered:?} after kill -9 ({refused} refusals meanwhile)");
    assert_eq!(count, acked + 1, "no acknowledged increment lost");
    let (owner, generation) = placement(&schema).await;
    assert!(owner.is_some_and(|o| o.starts_with("b:")));
    assert_eq!(generation, 2, "claimed once by each node");
    check_commits(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_hands_its_actors_over_without_waiting_for_its_lease() {
    let dir = tempfile::tempdir().unwrap();
    let schema = TestSchema::new(TestPostgres::shared_async().await);
    let a = node(dir.path(), &schema, "a").await;
    let b = node(dir.path(), &schema, "b").await;
    for n in 1..=4 {
        assert_eq!(increment(&a, "drain").await, Ok(n));
    }
    assert!(a.terminate().await.success());
    // Saved and released on the way out: the first call through the other node succeeds.
    assert_eq!(increment(&b, "drain").await, Ok(5));
    let (owner, generation) = placement(&schema).await;
    assert!(owner.is_some_and(|o| o.starts_with("b:")));
    assert_eq!(generation, 2);
    let client = schema.client().await;
    let nodes: Vec<String> = client
        .query("SELECT name FROM nodes", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(nodes, ["b"], "the drained node left the membership");
    check_commits(&schema).await;
}

/// Sends `signal` (`STOP`, `CONT`) to the node's process.
async fn signal(node: &Footlights, signal: &str) {
    let pid = node.child.id().unwrap().to_string();
    let status = tokio::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .await
        .unwrap();
    assert!(status.success());
}

/// The next JSON message on `ws` that answers an action or reports an error, or `None` if the
/// socket closed first.
async fn next_answer(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<Value> {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Text(text))) => {
                let msg: Value = serde_json::from_str(&text).unwrap();
                if matches!(
                    msg["body"]["tag"].as_str(),
                    Some("ActionResponse" | "Error")
                ) {
                    return Some(msg["body"].clone());
                }
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_is_replaced_and_after_it_resumes_none_of_its_writes_count() {
    use futures::SinkExt as _;
    let dir = tempfile::tempdir().unwrap();
    let schema = TestSchema::new(TestPostgres::shared_async().await);
    let a = node(dir.path(), &schema, "a").await;
    let b = node(dir.path(), &schema, "b").await;
    for n in 1..=3 {
        assert_eq!(increment(&a, "paused").await, Ok(n));
    }
    // A client connected to the owner directly: its messages reach the instance without a
    // placement check.
    let mut direct = connect(&a, "paused").await;
    let init = next_init(&mut direct).await;
    assert_eq!(init, "Init");

    signal(&a, "STOP").await;
    // Through the other node: forwarded to the paused owner until its lease ends, then
    // refused (retryably), then served by the other node from the last durable state.
    let (count, refused) = increment_within(&b, "paused", LIMIT).await;
    assert_eq!(count, 4);
    assert!(
        refused >= 1,
        "the first attempt waited on the paused owner and was refused"
    );
    signal(&a, "CONT").await;

    // Whatever the resumed node does with this increment, it does not succeed: its
    // instance's generation is superseded, so its commit is refused (or the node has already
    // stopped the instance on finding its lease gone).
    let action = json!({"body": {"tag": "ActionRequest", "val": {"id": ["$BigInt", "7"], "name": "increment", "args": [1]}}});
    let sent = direct
        .send(tokio_tungstenite::tungstenite::Message::Text(
            action.to_string().into(),
        ))
        .await;
    if sent.is_ok()
        && let Some(answer) = next_answer(&mut direct).await
    {
        assert_eq!(answer["tag"], "Error", "the stale owner answered {answer}");
    }

    // The final state is the survivor's history, through either node.
    assert_eq!(count_within(&b, "paused", LIMIT).await, 4);
    assert_eq!(count_within(&a, "paused", LIMIT).await, 4);
    // The resumed node joined again as a new incarnation.
    let client = schema.client().await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let rows = client
            .query("SELECT incarnation FROM nodes WHERE name = 'a'", &[])
            .await
            .unwrap();
        if rows.len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "node a did not join again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (owner, _) = placement(&schema).await;
    assert!(
        owner.is_some_and(|o| o.starts_with("b:")),
        "the survivor keeps the actor"
    );
    check_commits(&schema).await;
}

/// Reads `ws` until its first message; returns its tag.
async fn next_init(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> String {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(text))) => {
                let msg: Value = serde_json::from_str(&text).unwrap();
                return msg["body"]["tag"].as_str().unwrap_or_default().to_owned();
            }
            Some(Ok(_)) => {}
            other => panic!("socket ended before its first message: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_can_share_one_address() {
    let dir = tempfile::tempdir().unwrap();
    let schema = TestSchema::new(TestPostgres::shared_async().await);
    let a = node(dir.path(), &schema, "a").await;
    let port = a.url.rsplit(':').next().unwrap().to_owned();
    let b = node_on(dir.path(), &schema, "b", &port).await;
    let c = node_on(dir.path(), &schema, "c", &port).await;
    assert_eq!((&b.url, &c.url), (&a.url, &a.url));
    // Each call opens a connection of its own; the kernel hands it to one of the three.
    for n in 1..=30 {
        assert_eq!(increment(&a, "shared-port").await, Ok(n));
    }
    let (_, generation) = placement(&schema).await;
    assert_eq!(
        generation, 1,
        "one activation whichever node took each call"
    );
    check_commits(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_connected_through_another_node_carries_on_after_the_owner_dies() {
    use footlights::{Client, Value};
    use futures::StreamExt as _;

    let dir = tempfile::tempdir().unwrap();
    let schema = TestSchema::new(TestPostgres::shared_async().await);
    let mut a = node(dir.path(), &schema, "a").await;
    let b = node(dir.path(), &schema, "b").await;
    assert_eq!(increment(&a, "client").await, Ok(1));
    let client = Client::new(&b.url).unwrap();
    let handle = client.handle_for(footlights_client::Target::GetOrCreate {
        name: "counter".into(),
        key: footlights::ActorKey::new(vec!["client".into()]),
        input: None,
    });
    let conn = tokio::time::timeout(LIMIT, handle.connect())
        .await
        .unwrap()
        .unwrap();
    let mut counts = conn.on_raw("newCount");
    let next_count = async |counts: &mut footlights_client::RawEvents| {
        let args = tokio::time::timeout(LIMIT, counts.next())
            .await
            .expect("an event in time")
            .expect("the event stream ended");
        args.first().and_then(Value::as_i64)
    };
    let two = conn
        .action("increment", vec![Value::from(1)])
        .await
        .unwrap();
    assert_eq!(two.as_i64(), Some(2));
    assert_eq!(next_count(&mut counts).await, Some(2));

    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    // The other node closes the relayed socket (1012); the client reconnects with backoff
    // until the actor is claimed again after the dead node's lease, then its call goes
    // through. Refusals on the way are retryable.
    let deadline = Instant::now() + LIMIT;
    let three = loop {
        match tokio::time::timeout(LIMIT, conn.action("increment", vec![Value::from(1)]))
            .await
            .expect("an answer in time")
        {
            Ok(value) => break value,
            Err(e) => {
                assert!(Instant::now() < deadline, "no success in time: {e}");
                assert!(footlights_client::is_transient(&e), "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(three.as_i64(), Some(3), "nothing acknowledged was lost");
    assert_eq!(
        next_count(&mut counts).await,
        Some(3),
        "events flow on the new link"
    );
    conn.dispose().await;
    check_commits(&schema).await;
}

/// A TCP relay to the database that can be cut: while cut, every byte waits (as on a network
/// that drops packets), and flows again once healed.
struct DbLink {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DbLink {
    async fn to(upstream: String) -> DbLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = tokio::sync::watch::channel(false);
        let flag = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(Self::pipe(cr, sw, flag.subscribe()));
                tokio::spawn(Self::pipe(sr, cw, flag.subscribe()));
            }
        });
        DbLink { addr, cut, task }
    }

    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut cut: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if cut.wait_for(|cut| !*cut).await.is_err() {
                return;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

impl Drop for DbLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_database_stops_serving_and_another_takes_its_actors() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestPostgres::shared_async().await;
    let schema = TestSchema::new(pg);
    // The database's host:port, and the same URL through the cuttable link.
    let authority = pg
        .url()
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let link = DbLink::to(authority.clone()).await;
    let through_link = pg.url().replacen(&authority, &link.addr.to_string(), 1);
    let n1 = node_with_url(dir.path(), &schema, "n1", &through_link).await;
    let n2 = node(dir.path(), &schema, "n2").await;
    for n in 1..=3 {
        assert_eq!(increment(&n1, "cut").await, Ok(n));
    }

    link.set_cut(true);
    // Through the other node: once n1's lease has run out, n2 claims the actor and serves it
    // from the last durable state. An increment that n1 took but could not commit is never
    // acknowledged, so it does not count.
    let (count, _) = increment_within(&n2, "cut", LIMIT).await;
    assert_eq!(count, 4);
    // n1 cannot confirm its lease: it refuses (retryably) rather than serving.
    let (status, body) = n1.action("counter", "cut", "getCount", json!([])).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["group"], "actor");

    link.set_cut(false);
    // Healed: n1 finds its lease gone and joins again as a new incarnation; whatever it had
    // pending is refused by the generation check, and it serves the actor through n2.
    let client = schema.client().await;
    let deadline = Instant::now() + LIMIT;
    while client
        .query("SELECT 1 FROM nodes WHERE name = 'n1'", &[])
        .await
        .unwrap()
        .len()
        < 2
    {
        assert!(Instant::now() < deadline, "n1 did not join again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count_within(&n1, "cut", LIMIT).await, 4);
    assert_eq!(count_within(&n2, "cut", LIMIT).await, 4);
    check_commits(&schema).await;
}

/// A TCP relay in front of one node's peer link, which the node advertises instead of its
/// own address. While cut, every connection through it is dropped.
struct PeerLink {
    addr: std::net::SocketAddr,
    upstream: tokio::sync::watch::Sender<Option<String>>,
    cut: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl PeerLink {
    async fn start() -> PeerLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (upstream, _) = tokio::sync::watch::channel(None::<String>);
        let (cut, _) = tokio::sync::watch::channel(false);
        let (to, flag) = (upstream.clone(), cut.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let target = to.borrow().clone();
                let Some(target) = target.filter(|_| !*flag.borrow()) else {
                    continue; // dropped: the connection closes at once
                };
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let mut cut = flag.subscribe();
                tokio::spawn(async move {
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        PeerLink {
            addr,
            upstream,
            cut,
            task,
        }
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_its_peers_keeps_its_actors() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestPostgres::shared_async().await;
    let schema = TestSchema::new(pg);
    let link = PeerLink::start().await;
    let (n1, n1_peer) = node_advertising(dir.path(), &schema, "n1", &link.addr.to_string()).await;
    link.upstream.send_replace(Some(n1_peer));
    let n2 = node(dir.path(), &schema, "n2").await;
    for n in 1..=3 {
        assert_eq!(increment(&n1, "peers").await, Ok(n));
    }
    assert_eq!(
        increment(&n2, "peers").await,
        Ok(4),
        "forwarded through the link"
    );

    link.cut.send_replace(true);
    // n2 cannot reach n1, whose lease holds: it answers with a retryable error and does not
    // take the actor.
    for _ in 0..3 {
        let (status, body) = n2.action("counter", "peers", "increment", json!([1])).await;
        assert_eq!(status, 503, "{body}");
    }
    assert_eq!(
        increment(&n1, "peers").await,
        Ok(5),
        "n1 serves its actor on"
    );
    let (owner, generation) = placement(&schema).await;
    assert!(
        owner.is_some_and(|o| o.starts_with("n1:")),
        "not taken by n2"
    );
    assert_eq!(generation, 1);

    link.cut.send_replace(false);
    assert_eq!(increment_within(&n2, "peers", LIMIT).await.0, 6);
    check_commits(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_stream_through_another_node_ends_when_the_paused_owner_loses_its_lease() {
    use footlights::Value;
    use footlights_client::{ConnStatus, TransportKind};

    let dir = tempfile::tempdir().unwrap();
    let schema = TestSchema::new(TestPostgres::shared_async().await);
    let a = node(dir.path(), &schema, "a").await;
    let b = node(dir.path(), &schema, "b").await;
    assert_eq!(increment(&a, "sse-pause").await, Ok(1));
    let client = footlights::Client::builder(&b.url)
        .transports([TransportKind::Sse])
        .build()
        .unwrap();
    let handle = client.handle_for(footlights_client::Target::GetOrCreate {
        name: "counter".into(),
        key: footlights::ActorKey::new(vec!["sse-pause".into()]),
        input: None,
    });
    let conn = tokio::time::timeout(LIMIT, handle.connect())
        .await
        .unwrap()
        .unwrap();
    let two = conn
        .action("increment", vec![Value::from(1)])
        .await
        .unwrap();
    assert_eq!(
        two.as_i64(),
        Some(2),
        "an SSE connection through the other node"
    );
    let mut status = conn.status();
    assert!(matches!(*status.borrow(), ConnStatus::Connected { .. }));

    // A paused owner keeps its TCP connections open; the other node ends the stream once
    // the owner's lease is over, and the client reconnects (to the actor, now on b).
    signal(&a, "STOP").await;
    tokio::time::timeout(
        LIMIT,
        status.wait_for(|s| !matches!(s, ConnStatus::Connected { .. })),
    )
    .await
    .expect("the stream ended in time")
    .unwrap();
    let three = tokio::time::timeout(LIMIT, conn.action("increment", vec![Value::from(1)]))
        .await
        .expect("an answer in time");
    signal(&a, "CONT").await;
    assert_eq!(
        three.unwrap().as_i64(),
        Some(3),
        "served by b after a's lease"
    );
    conn.dispose().await;
    check_commits(&schema).await;
}
