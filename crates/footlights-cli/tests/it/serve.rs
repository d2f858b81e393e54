//! `footlights serve`: the ready line, the manager API and actions over HTTP, a clean stop on
//! SIGTERM, state and chat history kept across restarts, one server per data directory, and
//! start-up errors.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Bound on every wait for the child: start-up, a request, the stop.
pub(super) const LIMIT: Duration = Duration::from_secs(20);

pub(super) struct Footlights {
    pub(super) child: Child,
    pub(super) url: String,
}

/// `footlights serve --data-dir DATA_DIR ARGS` as the tests run it: no backtraces, no token
/// from the environment, warnings only, killed when dropped.
pub(super) fn serve_command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_footlights"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("FOOTLIGHTS_TOKEN")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    command
}

/// Starts `footlights serve` on a free port and waits for its ready line.
pub(super) async fn start(data_dir: &Path, extra: &[&str]) -> Footlights {
    let mut child = serve_command(data_dir, &[&["--port", "0"], extra].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn footlights");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(LIMIT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("ready line in time")
        .expect("read stdout")
        .expect("footlights exited before it was ready");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "the real port is printed: {url}");
    Footlights { child, url }
}

/// Runs `footlights serve ARGS --data-dir DATA_DIR` to its exit (bounded; killed if it does
/// not exit in time) and returns what it printed.
async fn serve_to_exit(args: &[&str], data_dir: &Path) -> std::process::Output {
    tokio::time::timeout(LIMIT, serve_command(data_dir, args).output())
        .await
        .expect("exit in time")
        .unwrap()
}

/// Sends `child` SIGTERM and waits (bounded) for its exit.
pub(super) async fn sigterm(child: &mut Child) -> ExitStatus {
    super::process::sigterm_within(child, LIMIT).await
}

impl Footlights {
    /// Sends SIGTERM and waits for the exit.
    pub(super) async fn terminate(mut self) -> ExitStatus {
        sigterm(&mut self.child).await
    }

    /// Kills the process (SIGKILL): nothing is closed or checkpointed.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = tokio::time::timeout(LIMIT, reqwest::get(format!("{}{path}", self.url)))
            .await
            .expect("answer in time")
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Calls an action statelessly through the query gateway, JSON-encoded.
    pub(super) async fn action(
        &self,
        actor: &str,
        key: &str,
        name: &str,
        args: Value,
    ) -> (u16, Value) {
        let url = format!(
            "{}/gateway/{actor}/action/{name}?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key={key}&rvt-crash-policy=sleep",
            self.url
        );
        let request = reqwest::Client::new()
            .post(url)
            .header("x-rivet-encoding", "json")
            .json(&json!({ "args": args }))
            .send();
        let response = tokio::time::timeout(LIMIT, request)
            .await
            .expect("answer in time")
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

#[tokio::test]
async fn serves_metadata_and_actions_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &[]).await;

    let (status, metadata) = server.get("/metadata?namespace=default").await;
    assert_eq!(status, 200);
    assert_eq!(metadata["runtime"], "rivetkit");
    let names = metadata["actorNames"].as_object().unwrap();
    let mut names: Vec<&str> = names.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "chatRoom",
            "counter",
            "jobQueue",
            "notes",
            "protectedActor",
            "secureRoom"
        ]
    );

    assert_eq!(
        server.action("counter", "c", "increment", json!([5])).await,
        (200, json!({ "output": 5 }))
    );
    // The notes actor's database, over HTTP.
    assert_eq!(
        server
            .action("notes", "n", "addNote", json!(["hello over the network"]))
            .await,
        (200, json!({ "output": 1 }))
    );
    let (status, found) = server
        .action("notes", "n", "search", json!(["network"]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["output"][0]["text"], "hello over the network");
    // And through the network client, typed.
    {
        use footlights_cli::demo::{Notes, NotesActions};
        let client = footlights::Client::builder(&server.url).build().unwrap();
        let notes = client.get_or_create::<Notes>(["n"]);
        assert_eq!(notes.add_note("second note".into()).await.unwrap(), 2);
        assert_eq!(notes.count().await.unwrap(), 2);
        assert!(notes.delete_note(1).await.unwrap());
        assert_eq!(notes.search("note".into()).await.unwrap()[0].id, 2);
    }
    assert!(dir.path().join("data/footlights.db").exists());

    let status = server.terminate().await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn state_survives_a_restart_on_the_same_data_dir() {
    state_survives_a_restart_with(&[]).await;
}

#[tokio::test]
async fn state_survives_a_restart_with_process_durability() {
    state_survives_a_restart_with(&["--durability", "process"]).await;
}

#[tokio::test]
async fn an_unknown_durability_is_refused() {
    assert_refused("--durability", "sometimes").await;
}

/// `footlights serve` with `option` set to `value` exits at once with a failure status and an
/// error that names the option.
async fn assert_refused(option: &str, value: &str) {
    let dir = tempfile::tempdir().unwrap();
    let arg = format!("{option}={value}");
    let out = serve_to_exit(&["--port", "0", &arg], dir.path()).await;
    assert!(!out.status.success(), "{arg}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(option), "{arg}: {stderr}");
}

async fn state_survives_a_restart_with(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), extra).await;
    for (amount, count) in [(3, 3), (4, 7)] {
        assert_eq!(
            server
                .action("counter", "kept", "increment", json!([amount]))
                .await,
            (200, json!({ "output": count }))
        );
    }
    assert!(server.terminate().await.success());

    let server = start(dir.path(), extra).await;
    assert_eq!(
        server
            .action("counter", "kept", "getCount", json!([]))
            .await,
        (200, json!({ "output": 7 }))
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn chat_history_beyond_one_page_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    // One page and a bit: the history is not capped at what `history` returns.
    for seq in 1..=105 {
        assert_eq!(
            server
                .action(
                    "chatRoom",
                    "kept",
                    "sendMessage",
                    json!([format!("m{seq}")])
                )
                .await,
            (
                200,
                json!({ "output": { "seq": seq, "from": "anon", "text": format!("m{seq}") } })
            )
        );
    }
    assert!(server.terminate().await.success());

    let server = start(dir.path(), &[]).await;
    let (status, latest) = server
        .action("chatRoom", "kept", "history", json!([]))
        .await;
    assert_eq!(status, 200);
    let latest = latest["output"].as_array().unwrap();
    assert_eq!(latest.len(), 100);
    assert_eq!(latest[0], json!({ "seq": 6, "from": "anon", "text": "m6" }));
    assert_eq!(latest[99]["seq"], 105);
    assert_eq!(
        server
            .action("chatRoom", "kept", "historyBefore", json!([6, 3]))
            .await,
        (
            200,
            json!({ "output": [
                { "seq": 5, "from": "anon", "text": "m5" },
                { "seq": 4, "from": "anon", "text": "m4" },
                { "seq": 3, "from": "anon", "text": "m3" },
            ] })
        )
    );
    assert_eq!(
        server
            .action("chatRoom", "kept", "sendMessage", json!(["again"]))
            .await,
        (
            200,
            json!({ "output": { "seq": 106, "from": "anon", "text": "again" } })
        )
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn test_actors_are_served_only_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let (status, error) = server.action("testActor", "t", "getInput", json!([])).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
    assert!(server.terminate().await.success());

    let server = start(dir.path(), &["--with-test-actors"]).await;
    let (status, error) = server
        .action(
            "testActor",
            "t",
            "userError",
            json!(["bad_thing", "no", {"n": 1}]),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        json!({"group": "user", "code": "bad_thing", "message": "no", "metadata": {"n": 1}})
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn secure_room_refuses_calls_without_a_valid_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let (status, error) = server.action("secureRoom", "r", "whoami", json!([])).await;
    assert_eq!(
        (status, error["group"].as_str(), error["code"].as_str()),
        (403, Some("auth"), Some("forbidden"))
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn a_data_dir_that_is_a_file_fails_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let output = serve_to_exit(&["--port", "0"], &file).await;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no ready line");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot create the data directory"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let first = start(&data_dir, &[]).await;
    assert_eq!(
        first.action("counter", "c", "increment", json!([2])).await,
        (200, json!({ "output": 2 }))
    );

    // `kill_on_drop`: should it wait for the lock instead of failing, the timeout stops it.
    let output = serve_to_exit(&["--port", "0"], &data_dir).await;
    assert!(!output.status.success(), "{:?}", output.status);
    assert!(output.stdout.is_empty(), "no ready line");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&data_dir.display().to_string()),
        "the error names the data directory: {stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "the data directory {} is in use by another process",
            data_dir.canonicalize().unwrap().display()
        )),
        "{stderr}"
    );

    // The first server is undisturbed, and its exit releases the directory.
    assert_eq!(
        first.action("counter", "c", "increment", json!([3])).await,
        (200, json!({ "output": 5 }))
    );
    assert!(first.terminate().await.success());
    let again = start(&data_dir, &[]).await;
    assert_eq!(
        again.action("counter", "c", "getCount", json!([])).await,
        (200, json!({ "output": 5 }))
    );
    assert!(again.terminate().await.success());
}

#[tokio::test]
async fn queued_jobs_acknowledged_before_a_sigkill_are_all_done_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    let url = format!(
        "{}/gateway/jobQueue/queue/jobs?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=crash&rvt-crash-policy=sleep",
        server.url
    );
    let sends = (0..20).map(|n| {
        let request = reqwest::Client::new()
            .post(&url)
            .header("x-rivet-encoding", "json")
            .json(&json!({ "body": { "n": n }, "name": "jobs", "wait": false }))
            .send();
        async move {
            let response = tokio::time::timeout(LIMIT, request)
                .await
                .expect("answer in time")
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    });
    futures::future::join_all(sends).await;
    // Acknowledged means stored: whatever the run loop had not finished must come back.
    server.kill().await;

    let server = start(dir.path(), &[]).await;
    let mut done = json!(null);
    for _ in 0..200 {
        let (status, body) = server
            .action("jobQueue", "crash", "processed", json!([]))
            .await;
        assert_eq!(status, 200);
        done = body["output"].clone();
        if done == json!(20) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(
        done,
        json!(20),
        "every acknowledged job completed exactly once"
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn a_store_that_lost_its_log_is_refused_until_recover_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]).await;
    assert_eq!(
        server.action("counter", "c", "increment", json!([2])).await,
        (200, json!({ "output": 2 }))
    );
    server.kill().await;
    // The commits since the start are in the write-ahead log alone.
    std::fs::remove_file(dir.path().join("footlights.db-wal")).unwrap();

    let output = serve_to_exit(&["--port", "0"], dir.path()).await;
    assert!(!output.status.success(), "{:?}", output.status);
    assert!(output.stdout.is_empty(), "no ready line");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("footlights.db-wal"), "{stderr}");
    assert!(stderr.contains("is missing"), "{stderr}");
    assert!(stderr.contains("--recover"), "{stderr}");

    // Told to go on: what the state file holds, and from then on a healthy store.
    let server = start(dir.path(), &["--recover"]).await;
    assert_eq!(
        server.action("counter", "c", "increment", json!([5])).await,
        (200, json!({ "output": 5 }))
    );
    assert!(server.terminate().await.success());
    let server = start(dir.path(), &[]).await;
    assert_eq!(
        server.action("counter", "c", "getCount", json!([])).await,
        (200, json!({ "output": 5 }))
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn recover_is_described_in_the_help() {
    let output = serve_to_exit(&["--help"], Path::new(".")).await;
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--recover"), "{help}");
    assert!(help.contains("write-ahead log"), "{help}");
}

#[tokio::test]
async fn a_taken_port_fails_before_the_data_dir_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = serve_to_exit(&["--port", &port], &data_dir).await;
    drop(taken);
    assert!(!output.status.success(), "{:?}", output.status);
    assert!(output.stdout.is_empty(), "no ready line");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")),
        "the error names the address: {stderr}"
    );
    assert!(
        !data_dir.exists(),
        "no data directory is created when the port is taken"
    );
}

#[tokio::test]
async fn sigterm_ends_at_the_shutdown_timeout_while_a_request_is_half_sent() {
    use tokio::io::AsyncWriteExt;

    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--shutdown-timeout", "1"]).await;
    assert_eq!(
        server
            .action("counter", "cut", "increment", json!([4]))
            .await,
        (200, json!({ "output": 4 }))
    );
    let addr = server.url.strip_prefix("http://").unwrap().to_owned();
    let mut half = tokio::net::TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // Connections are accepted in order: once a later one is answered, the half-sent one is
    // being served.
    assert_eq!(server.get("/health").await.0, 200);

    // Well under the 10 s header read timeout: only the shutdown timeout can end the request.
    let started = std::time::Instant::now();
    let status = server.terminate().await;
    assert!(status.success(), "exit status {status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "stopped after {:?}",
        started.elapsed()
    );
    drop(half);

    let server = start(dir.path(), &[]).await;
    assert_eq!(
        server.action("counter", "cut", "getCount", json!([])).await,
        (200, json!({ "output": 4 }))
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn a_shutdown_timeout_that_is_not_a_positive_number_is_refused() {
    for value in ["soon", "0", "-1"] {
        assert_refused("--shutdown-timeout", value).await;
    }
}

#[tokio::test]
async fn a_token_guards_the_manager_api_and_on_request_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--token", "s3cret"]).await;
    let list = format!("{}/actors?name=counter", server.url);
    let status = |request: reqwest::RequestBuilder| async move {
        tokio::time::timeout(LIMIT, request.send())
            .await
            .expect("answer in time")
            .unwrap()
            .status()
            .as_u16()
    };
    let http = reqwest::Client::new();
    assert_eq!(status(http.get(&list)).await, 401);
    assert_eq!(status(http.get(&list).bearer_auth("wrong")).await, 403);
    assert_eq!(status(http.get(&list).bearer_auth("s3cret")).await, 200);
    assert_eq!(
        server
            .action("counter", "t", "increment", json!([1]))
            .await
            .0,
        200,
        "the gateway stays open without --gateway-token"
    );
    assert!(server.terminate().await.success());

    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "from-a-file\n").unwrap();
    let server = start(
        dir.path(),
        &[
            "--token-file",
            token_file.to_str().unwrap(),
            "--gateway-token",
        ],
    )
    .await;
    assert_eq!(
        server
            .action("counter", "t", "increment", json!([1]))
            .await
            .0,
        401
    );
    let url = format!(
        "{}/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=t&rvt-crash-policy=sleep&rvt-token=from-a-file",
        server.url
    );
    let request = http
        .post(url)
        .header("x-rivet-encoding", "json")
        .json(&json!({ "args": [1] }));
    assert_eq!(status(request).await, 200);
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn a_public_address_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // Bound only to be refused at once: nothing is sent to it.
    let output = serve_to_exit(&["--host", "0.0.0.0", "--port", "0"], &data_dir).await;
    assert!(!output.status.success(), "{:?}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without a token"), "{stderr}");
    assert!(stderr.contains("--insecure-open"), "{stderr}");
    assert!(!data_dir.exists(), "nothing is created");
}

#[tokio::test]
async fn rate_limits_are_set_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--rate-limit-per-actor", "1"]).await;
    let mut refused = 0;
    for _ in 0..12 {
        let (status, body) = server
            .action("counter", "busy", "increment", json!([1]))
            .await;
        if status == 429 {
            assert_eq!(body["code"], "rate_limited");
            refused += 1;
        }
    }
    assert!(refused >= 5, "only {refused} of 12 refused");
    assert_eq!(
        server
            .action("counter", "other", "increment", json!([1]))
            .await
            .0,
        200
    );
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn json_logs_name_each_request_and_metrics_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_command(
        &dir.path().join("data"),
        &["--port", "0", "--log-format", "json", "--token", "s3cret"],
    )
    .env("RUST_LOG", "info,footlights::requests=debug")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn footlights");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(LIMIT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .unwrap();
    let url = line.strip_prefix("listening on ").unwrap().to_owned();
    let mut server = Footlights { child, url };
    assert_eq!(
        server
            .action("counter", "logged", "increment", json!([3]))
            .await,
        (200, json!({ "output": 3 }))
    );
    let metrics = |token: &'static str| {
        let request = reqwest::Client::new()
            .get(format!("{}/metrics", server.url))
            .bearer_auth(token)
            .send();
        async move {
            let response = tokio::time::timeout(LIMIT, request).await.unwrap().unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    assert_eq!(metrics("wrong").await.0, 403);
    let (status, text) = metrics("s3cret").await;
    assert_eq!(status, 200);
    assert!(
        text.lines()
            .any(|l| l == r#"footlights_actions_total{actor="counter"} 1"#),
        "{text}"
    );

    let mut stderr = BufReader::new(server.child.stderr.take().unwrap()).lines();
    let mut child = server.child;
    let status = sigterm(&mut child).await;
    assert!(status.success(), "exit status {status:?}");
    let mut lines = Vec::new();
    while let Some(line) = tokio::time::timeout(LIMIT, stderr.next_line())
        .await
        .expect("stderr ends")
        .unwrap()
    {
        assert!(
            !line.contains('\u{1b}'),
            "no colours off a terminal: {line}"
        );
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        lines.push(value);
    }
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    let action = requests
        .iter()
        .find(|l| l["fields"]["action"] == "increment")
        .unwrap_or_else(|| panic!("a line for the action: {lines:#?}"));
    assert_eq!(action["level"], "DEBUG");
    assert_eq!(action["fields"]["actor"], "counter");
    assert_eq!(action["fields"]["key"], "logged");
    assert_eq!(action["fields"]["status"], 200);
    assert!(requests.iter().any(|l| l["fields"]["path"] == "/metrics"
        && l["fields"]["status"] == 403
        && l["level"] == "INFO"));
    assert!(
        !lines.iter().any(|l| l.to_string().contains("s3cret")),
        "the token is never logged"
    );
}

#[tokio::test]
async fn state_survives_a_restart_with_a_one_mib_store_cache() {
    state_survives_a_restart_with(&["--store-cache-mib", "1"]).await;
}

#[tokio::test]
async fn a_store_cache_of_nothing_is_refused() {
    assert_refused("--store-cache-mib", "0").await;
}
