//! The connection limit follows the open-file limit, and says so when the server starts.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::serve::{LIMIT, serve_command};

/// Starts `footlights serve` with `extra` and returns the `connection limit` log line's
/// `max_connections` and `open_file_limit` (the latter absent if the limit could not be read).
async fn logged_limit(extra: &[&str]) -> (u64, u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_command(
        &dir.path().join("data"),
        &[&["--port", "0"], extra].concat(),
    )
    .env("RUST_LOG", "footlights_cli=info")
    .env("NO_COLOR", "1")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn footlights");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let line = tokio::time::timeout(LIMIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("connection limit") {
                return line;
            }
        }
        panic!("no connection limit logged:\n{seen}");
    })
    .await
    .expect("logged in time");
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line:?}"))
    };
    let result = (field("max_connections"), field("open_file_limit"), seen);
    let _ = child.kill().await;
    result
}

#[tokio::test]
async fn by_default_the_limit_is_what_the_open_file_limit_leaves() {
    let (max, files, _) = logged_limit(&[]).await;
    assert!(files > 1024, "this machine's open-file limit: {files}");
    assert_eq!(
        max,
        files - 1024,
        "1,024 files kept for the store and sockets being set up"
    );
}

#[test]
fn room_is_kept_for_other_files() {
    assert_eq!(footlights_cli::connections_for_files(20_000), 18_976);
    assert_eq!(footlights_cli::connections_for_files(1_024), 768);
    assert_eq!(footlights_cli::connections_for_files(0), 1);
}

#[tokio::test]
async fn a_limit_given_is_kept_and_one_too_large_is_lowered() {
    let (max, _, _) = logged_limit(&["--max-connections", "100"]).await;
    assert_eq!(max, 100);
    let (max, files, seen) = logged_limit(&["--max-connections", "100000000"]).await;
    assert_eq!(max, footlights_cli::connections_for_files(files));
    assert!(seen.contains("lowered"), "{seen}");
}
