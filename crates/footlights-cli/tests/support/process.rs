//! Child-process helpers shared by the test binaries of `footlights-cli` (each includes this
//! file with `#[path]`).

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Sends `child` SIGTERM and waits up to `limit` for its exit.
pub(crate) async fn sigterm_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    tokio::time::timeout(limit, child.wait())
        .await
        .expect("exit in time")
        .unwrap()
}
