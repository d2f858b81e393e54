//! The `counter` binary as a person runs it: it prints the address it listens on, stops
//! cleanly on SIGTERM, and names the address when the port is taken.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Bound on every wait for the child.
const LIMIT: Duration = Duration::from_secs(30);

fn counter(addr: &str, db: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_counter"));
    command
        .args(["--addr", addr, "--db"])
        .arg(db)
        .env("RUST_LOG", "warn")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn a_taken_port_is_reported_with_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = tokio::time::timeout(LIMIT, counter(&addr, &dir.path().join("c.db")).output())
        .await
        .expect("exits in time")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}: ")),
        "{stderr}"
    );
}

#[tokio::test]
async fn prints_the_address_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = counter("127.0.0.1:0", &dir.path().join("c.db"))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(LIMIT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("ready line in time")
        .unwrap()
        .expect("a ready line");
    let url = line
        .strip_prefix("listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("{line}"));
    assert_ne!(url, "0", "the port it picked is printed");

    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exits in time")
        .unwrap();
    assert!(status.success(), "{status}");
}
