//! `footlights new`: a crate written outside this workspace builds against this checkout, its
//! test passes, and its server answers an action over HTTP.
//!
//! A test binary of its own, so cargo runs it alone: its build has the machine to itself, and
//! the timed tests of `tests/it` do not run beside it.

// Test helpers outside `#[test]` functions may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Bound on every wait for a child process other than the build.
#[path = "support/process.rs"]
mod process;

const LIMIT: Duration = Duration::from_secs(30);

/// Bound on building and testing the new crate. It shares the workspace's target directory,
/// so crates built with the same features are reused; the new crate asks tokio for fewer
/// features than the workspace's tests do, so tokio and what is built on it (about 85 crates)
/// are compiled again.
const BUILD_LIMIT: Duration = Duration::from_secs(900);

/// The repository's root: two levels above this crate.
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The target directory this test was built in (`<target>/debug/footlights` is the binary),
/// so the new crate reuses what is compiled there.
fn target_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_footlights"));
    binary.parent().unwrap().parent().unwrap().to_path_buf()
}

/// `footlights new ARGS`, run to its exit (bounded).
async fn footlights_new(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let run = Command::new(env!("CARGO_BIN_EXE_footlights"))
        .arg("new")
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(LIMIT, run)
        .await
        .expect("footlights new exits in time")
        .unwrap()
}

/// Runs `cargo ARGS` on the new crate, offline first (every dependency is in the local cache
/// once the workspace is built), then online if the cache lacks one.
async fn cargo(manifest: &Path, args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut last = None;
    for offline in [true, false] {
        let mut command = Command::new(&cargo);
        command
            .args(args)
            .arg("--manifest-path")
            .arg(manifest)
            .env("CARGO_TARGET_DIR", target_dir())
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("RUST_BACKTRACE")
            .kill_on_drop(true);
        if offline {
            command.arg("--offline");
        }
        let output = tokio::time::timeout(BUILD_LIMIT, command.output())
            .await
            .expect("cargo finishes in time")
            .unwrap();
        if output.status.success() {
            return;
        }
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let retry = offline && stderr.contains("offline");
        last = Some(format!("{stdout}\n{stderr}"));
        if !retry {
            break;
        }
    }
    panic!("cargo {args:?} failed:\n{}", last.unwrap_or_default());
}

#[tokio::test]
async fn a_new_crate_outside_the_workspace_builds_tests_and_serves() {
    let outside = tempfile::tempdir().unwrap();
    let root = checkout();
    assert!(
        !outside.path().canonicalize().unwrap().starts_with(&root),
        "the temporary directory must be outside the workspace"
    );
    let dir = outside.path().join("hello-actors");

    let output = footlights_new(&[
        "hello-actors".as_ref(),
        "--path".as_ref(),
        dir.as_os_str(),
        "--footlights-path".as_ref(),
        root.as_os_str(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("wrote the crate hello-actors"), "{stdout}");
    for file in [
        "Cargo.toml",
        "src/lib.rs",
        "src/main.rs",
        "tests/counter.rs",
        "README.md",
    ] {
        assert!(dir.join(file).is_file(), "{file} is written");
    }
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let facade = root.join("crates/footlights");
    assert!(
        manifest.contains(&format!("path = \"{}\"", facade.display())),
        "{manifest}"
    );

    // The same versions as the workspace, so the compiled dependencies are reused.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let manifest_path = dir.join("Cargo.toml");
    // `cargo test` builds the binary too.
    cargo(&manifest_path, &["test", "--quiet"]).await;

    // Its server, on a free port, answers an action over HTTP.
    let binary = target_dir().join("debug").join("hello-actors");
    let mut child = Command::new(&binary)
        .current_dir(outside.path())
        .env("FOOTLIGHTS_ADDR", "127.0.0.1:0")
        .env("FOOTLIGHTS_DB", outside.path().join("state.db"))
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(LIMIT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .expect("the server exited before it was ready");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );

    let client = reqwest::Client::new();
    for (amount, count) in [(5, 5), (2, 7)] {
        let request = client
            .post(format!(
                "{url}/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=room-1&rvt-crash-policy=sleep"
            ))
            .header("x-rivet-encoding", "json")
            .json(&json!({ "args": [amount] }))
            .send();
        let response = tokio::time::timeout(LIMIT, request)
            .await
            .expect("answer in time")
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["output"], count, "{body}");
    }

    let status = process::sigterm_within(&mut child, LIMIT).await;
    assert!(status.success(), "stops cleanly on SIGTERM: {status}");
    // Logs went to standard error, which is not a terminal here: no colour codes.
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .await
        .unwrap();
    assert!(!logs.is_empty(), "the server logs at info");
    assert!(!logs.contains('\u{1b}'), "no ANSI escapes: {logs:?}");
}
