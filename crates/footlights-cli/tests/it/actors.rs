//! `footlights actors …` against a real `footlights serve`: list, get, call, delete, the token,
//! and the exit statuses and error lines scripts rely on.

use std::process::Output;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::serve::{LIMIT, start};

const TOKEN: &str = "ops-token";

/// Runs `footlights actors --url URL ARGS` to its exit (bounded), with no token or URL from
/// the environment.
async fn actors(url: &str, args: &[&str]) -> Output {
    let run = Command::new(env!("CARGO_BIN_EXE_footlights"))
        .arg("actors")
        .args(["--url", url])
        .args(args)
        .env_remove("FOOTLIGHTS_TOKEN")
        .env_remove("FOOTLIGHTS_URL")
        .env_remove("RUST_BACKTRACE")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(LIMIT, run)
        .await
        .expect("exit in time")
        .unwrap()
}

/// Runs a command that must succeed; returns its standard output.
async fn ok(url: &str, args: &[&str]) -> String {
    let output = actors(url, args).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// The exit status and standard error of a command that must fail, with nothing on stdout.
async fn failing(url: &str, args: &[&str]) -> (i32, String) {
    let output = actors(url, args).await;
    assert!(output.stdout.is_empty(), "{args:?} printed a result");
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn actors_are_listed_read_called_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &["--token", TOKEN]).await;
    let url = server.url.clone();
    for key in ["a", "b"] {
        let (status, _) = server.action("counter", key, "increment", json!([3])).await;
        assert_eq!(status, 200);
    }
    let t = ["--token", TOKEN];
    let with_token = |args: &[&'static str]| [&t[..], args].concat();

    let listed = ok(&url, &with_token(&["list", "--name", "counter"])).await;
    let lines: Vec<Vec<&str>> = listed.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert_eq!(
        (lines[0][0], lines[0][1], lines[0][3]),
        ("counter", "a", "awake")
    );
    assert_eq!(lines[1][1], "b");
    // Every type's actors without --name; JSON lines with --json.
    let all = ok(&url, &with_token(&["list", "--json"])).await;
    let all: Vec<Value> = all.lines().map(json_of).collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1]["key"], json!("b"));
    assert_eq!(all[1]["id"], json!(lines[1][2]));

    let state = ok(&url, &with_token(&["get", "counter", "a"])).await;
    assert_eq!(json_of(&state), json!({ "count": 3 }));

    let output = ok(
        &url,
        &with_token(&["call", "counter", "a", "increment", "4"]),
    )
    .await;
    assert_eq!(json_of(&output), json!(7));
    let state = ok(&url, &with_token(&["get", "counter", "a"])).await;
    assert_eq!(json_of(&state), json!({ "count": 7 }));
    let output = ok(&url, &with_token(&["call", "counter", "a", "getCount"])).await;
    assert_eq!(json_of(&output), json!(7));

    assert_eq!(ok(&url, &with_token(&["delete", "counter", "a"])).await, "");
    let listed = ok(&url, &with_token(&["list", "--name", "counter"])).await;
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let (status, stderr) = failing(&url, &with_token(&["get", "counter", "a"])).await;
    assert_eq!(status, 5);
    assert!(stderr.starts_with("error: actor.not_found: "), "{stderr}");

    let status = server.terminate().await;
    assert!(status.success());
}

#[tokio::test]
async fn failures_have_codes_and_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &["--token", TOKEN]).await;
    let url = server.url.clone();
    let (status, _) = server.action("counter", "x", "increment", json!([1])).await;
    assert_eq!(status, 200);

    let (status, stderr) = failing(&url, &["list"]).await;
    assert_eq!(status, 4);
    assert!(stderr.starts_with("error: auth.unauthorized: "), "{stderr}");
    let (status, stderr) = failing(&url, &["--token", "wrong", "get", "counter", "x"]).await;
    assert_eq!(status, 4);
    assert!(stderr.starts_with("error: auth.forbidden: "), "{stderr}");
    // The token from the environment works as --token does.
    let run = Command::new(env!("CARGO_BIN_EXE_footlights"))
        .args(["actors", "get", "counter", "x"])
        .env("FOOTLIGHTS_URL", &url)
        .env("FOOTLIGHTS_TOKEN", TOKEN)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(LIMIT, run).await.unwrap().unwrap();
    assert!(output.status.success());
    assert_eq!(
        json_of(std::str::from_utf8(&output.stdout).unwrap()),
        json!({ "count": 1 })
    );

    let t = ["--token", TOKEN];
    let (status, stderr) = failing(
        &url,
        &[&t[..], &["call", "counter", "x", "increment", "{oops"]].concat(),
    )
    .await;
    assert_eq!(status, 2);
    assert!(stderr.contains("argument 1 is not JSON"), "{stderr}");
    let (status, stderr) = failing(
        &url,
        &[&t[..], &["call", "counter", "x", "noSuchAction"]].concat(),
    )
    .await;
    assert_eq!(status, 1);
    assert!(
        stderr.starts_with("error: actor.action_not_found: "),
        "{stderr}"
    );
    let (status, _) = failing(&url, &[&t[..], &["list", "--name", "nope"]].concat()).await;
    assert_eq!(status, 5);

    let status = server.terminate().await;
    assert!(status.success());

    // Nothing listens there any more.
    let (status, stderr) = failing(&url, &[&t[..], &["list"]].concat()).await;
    assert_eq!(status, 3);
    assert!(stderr.starts_with("error: cannot reach "), "{stderr}");
}

/// `serve --sleep-timeout` replaces the demo types' 30 s idle timeout: with 1 s, the live log
/// of a counter called once ends (the actor stopped) long before its type's own timeout would
/// come (the wait is bounded well under it), and the counter wakes with its count.
#[tokio::test]
async fn serve_sleep_timeout_puts_idle_demo_actors_to_sleep_sooner() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        &dir.path().join("data"),
        &["--token", TOKEN, "--sleep-timeout", "1"],
    )
    .await;
    let url = server.url.clone();
    let (status, _) = server
        .action("counter", "nap", "increment", json!([5]))
        .await;
    assert_eq!(status, 200);
    let listed = ok(&url, &["--token", TOKEN, "list", "--name", "counter"]).await;
    let id = listed.split('\t').nth(2).expect("an id column").to_owned();
    // Watching wakes the actor if it already slept; the stream ends when it stops.
    let watch = reqwest::Client::new()
        .get(format!("{url}/inspector/api/actors/{id}/log"))
        .bearer_auth(TOKEN)
        .send();
    let response = tokio::time::timeout(LIMIT, watch)
        .await
        .expect("head in time")
        .unwrap();
    assert_eq!(response.status(), 200);
    let log = tokio::time::timeout(LIMIT, response.text())
        .await
        .expect("asleep well before the type's own 30 s")
        .unwrap();
    assert!(
        log.ends_with("event: end\ndata: {\"reason\":\"stopped\"}\n\n"),
        "{log}"
    );
    assert_eq!(
        server.action("counter", "nap", "getCount", json!([])).await,
        (200, json!({ "output": 5 }))
    );
    assert!(server.terminate().await.success());
}
