//! Restarting without refusing a connection: a second `footlights serve` on the same address
//! and data directory listens beside the first and takes over when the first is stopped; a
//! supervisor's socket (systemd socket activation) is used as it is passed.

use std::path::Path;
use std::process::Stdio;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};

use crate::serve::{Footlights, LIMIT, serve_command, sigterm, start};

/// `footlights serve` on a given port, stdout piped, not yet ready.
fn spawn(port: u16, data_dir: &Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = serve_command(data_dir, &["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn footlights");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("a line in time")
        .expect("read stdout")
        .expect("footlights exited before printing it")
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

/// Writes a whole `increment(by)` request on a new connection and returns the connection, its
/// answer not yet read.
async fn send_increment(port: u16, by: i64) -> TcpStream {
    let body = json!({ "args": [by] }).to_string();
    let request = format!(
        "POST /gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=handover&rvt-crash-policy=sleep HTTP/1.1\r\n\
         host: 127.0.0.1:{port}\r\ncontent-type: application/json\r\nx-rivet-encoding: json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::time::timeout(LIMIT, TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("connected in time")
        .expect("the connection is accepted, not refused");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Reads an answer to its end: the status and the action's output.
async fn answer(mut stream: TcpStream) -> (u16, serde_json::Value) {
    let mut text = String::new();
    tokio::time::timeout(LIMIT, stream.read_to_string(&mut text))
        .await
        .expect("answered in time")
        .expect("an answer, not a reset");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    (status, body["output"].clone())
}

#[tokio::test]
async fn a_second_server_takes_over_without_refusing_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let first = start(&data_dir, &[]).await;
    let port = port_of(&first.url);
    assert_eq!(
        first
            .action("counter", "handover", "increment", json!([1]))
            .await,
        (200, json!({ "output": 1 }))
    );

    let (mut second, mut second_out) = spawn(port, &data_dir);
    assert_eq!(
        next_line(&mut second_out).await,
        format!("taking over http://127.0.0.1:{port} once the server serving it stops")
    );
    // Both listen now. This request reaches one of them, and waits there if it is the second.
    let before = send_increment(port, 10).await;

    let Footlights { child: mut old, .. } = first;
    let exit = sigterm(&mut old).await;
    assert!(exit.success(), "{exit:?}");

    // Only the second listens now; it may still be opening the store.
    let after = send_increment(port, 100).await;
    assert_eq!(
        next_line(&mut second_out).await,
        format!("listening on http://127.0.0.1:{port}")
    );
    let (status_before, out_before) = answer(before).await;
    let (status_after, out_after) = answer(after).await;
    assert_eq!((status_before, status_after), (200, 200));
    // The first server saved 1 (and 11 if it served `before`); nothing was counted twice.
    let mut outputs = [out_before.as_i64().unwrap(), out_after.as_i64().unwrap()];
    outputs.sort_unstable();
    assert!(
        outputs == [11, 111] || outputs == [101, 111],
        "both increments counted once, on the saved state: {outputs:?}"
    );
    let total = answer(send_increment(port, 0).await).await;
    assert_eq!(total, (200, json!(111)));

    let exit = sigterm(&mut second).await;
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn another_data_dir_on_a_taken_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(&dir.path().join("one"), &[]).await;
    let port = port_of(&first.url);
    let other = dir.path().join("two");
    let output = tokio::time::timeout(
        LIMIT,
        serve_command(&other, &["--port", &port.to_string()]).output(),
    )
    .await
    .expect("exit in time")
    .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no ready line");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("address in use"), "{stderr}");
    assert!(!other.exists(), "nothing created");
    // The first one still serves alone.
    assert_eq!(
        first.action("counter", "c", "increment", json!([1])).await,
        (200, json!({ "output": 1 }))
    );
    assert!(first.terminate().await.success());
}

#[tokio::test]
async fn a_socket_passed_by_the_supervisor_is_used() {
    // systemd's own tool passes a listening socket as systemd does (LISTEN_FDS); the server
    // must use it and ignore `--port`. The tool takes no port 0: a port the system has just
    // handed out (and taken back) is the free one. It starts the server when the first
    // connection comes, which waits in the socket's backlog meanwhile.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("systemd-socket-activate")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(env!("CARGO_BIN_EXE_footlights"))
        // A port that must not be used: the passed socket wins.
        .args(["serve", "--port", "1", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("RUST_BACKTRACE")
        .env_remove("FOOTLIGHTS_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("systemd-socket-activate (Debian package systemd) runs");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    // "Listening on 127.0.0.1:PORT as 3.": the socket is there.
    let announced = tokio::time::timeout(LIMIT, err.next_line())
        .await
        .expect("the socket is announced in time")
        .unwrap()
        .expect("a line on stderr");
    assert!(
        announced.contains(&format!("127.0.0.1:{port}")),
        "{announced}"
    );
    let first = send_increment(port, 5).await;
    let line = next_line(&mut out).await;
    assert_eq!(line, format!("listening on http://127.0.0.1:{port}"));
    assert_eq!(answer(first).await, (200, json!(5)));
    assert_eq!(answer(send_increment(port, 1).await).await, (200, json!(6)));
    let exit = sigterm(&mut child).await;
    assert!(exit.success(), "{exit:?}");
}
