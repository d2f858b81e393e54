//! The `counter-no-macros` binary's arguments: `--help` prints help and touches no file, `--db`
//! keeps the count across runs.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

/// Bound on each run of the binary.
const LIMIT: Duration = Duration::from_secs(30);

/// Runs the binary in `dir` with `args` and returns what it printed, after checking that it
/// succeeded.
async fn run(dir: &Path, args: &[&str]) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_counter-no-macros"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(LIMIT, run)
        .await
        .expect("exits in time")
        .expect("runs");
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[tokio::test]
async fn help_prints_usage_and_creates_no_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let help = run(dir.path(), &["--help"]).await;
    assert!(help.contains("Usage: counter-no-macros"), "{help}");
    assert!(help.contains("--db <PATH>"), "{help}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read the directory")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert!(left.is_empty(), "--help left files behind: {left:?}");
}

#[tokio::test]
async fn the_count_survives_runs_with_a_state_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let first = run(dir.path(), &["--db", "state.db"]).await;
    assert!(first.contains("final count 3"), "{first}");
    let second = run(dir.path(), &["--db", "state.db"]).await;
    assert!(second.contains("final count 6"), "{second}");
}
