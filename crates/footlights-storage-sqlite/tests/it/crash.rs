//! Commits survive the process dying without closing anything.
//!
//! `killed_process_keeps_committed_writes` runs this test binary again as a child process that
//! commits and then aborts (no destructors, no checkpoint, the WAL left behind), and checks the
//! writes in the file it leaves. `crash_image_keeps_committed_writes` copies the files of a
//! store that is still open, which is what a crash of the process leaves on disk.

use std::path::Path;
use std::process::Command;

use footlights_storage::{ActorId, ActorKey, ActorMeta, CreateOutcome, Driver, Write};
use footlights_storage_sqlite::SqliteDriver;
use futures::executor::block_on;

/// Tells the child which file to write; its absence makes the child test do nothing.
const CHILD_DB: &str = "FOOTLIGHTS_SQLITE_CRASH_CHILD_DB";
const COMMITS: u8 = 20;

fn actor() -> ActorMeta {
    ActorMeta::new(
        ActorId::new("crash-1"),
        "crash",
        ActorKey::from(["a", "b"]),
        7,
    )
}

/// Creates the actor and commits `COMMITS` batches to it.
async fn write(driver: &SqliteDriver) {
    assert_eq!(
        driver.create_actor(&actor()).await.expect("create_actor"),
        CreateOutcome::Created
    );
    for n in 1..=COMMITS {
        let id = actor().id;
        let batch = vec![
            Write::State {
                actor: id.clone(),
                bytes: vec![n; 1024],
            },
            Write::KvPut {
                actor: id.clone(),
                key: vec![n],
                value: vec![n],
            },
            Write::BumpGeneration { actor: id },
        ];
        driver.commit(batch).await.expect("commit");
    }
}

/// Checks that everything [`write`] committed is in the file at `path`.
async fn check(path: &Path) {
    let driver = SqliteDriver::open(path).await.expect("reopening");
    let id = actor().id;
    let expected = ActorMeta {
        generation: u64::from(COMMITS),
        ..actor()
    };
    assert_eq!(
        driver
            .find_actor("crash", &actor().key)
            .await
            .expect("find_actor"),
        Some(expected)
    );
    assert_eq!(
        driver.load_state(&id).await.expect("load_state"),
        Some(vec![COMMITS; 1024])
    );
    for n in 1..=COMMITS {
        assert_eq!(
            driver.kv_get(&id, &[n]).await.expect("kv_get"),
            Some(vec![n]),
            "kv {n}"
        );
    }
}

#[test]
#[ignore = "the child process of killed_process_keeps_committed_writes"]
fn child_commits_then_aborts() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return;
    };
    block_on(async {
        let driver = SqliteDriver::open(&path).await.unwrap();
        write(&driver).await;
        // Die with the connection open: nothing is closed, flushed or checkpointed.
        std::process::abort();
    });
}

#[test]
fn killed_process_keeps_committed_writes() {
    let (_dir, path) = super::temp_db();
    kill_after_writing(&path);
    block_on(check(&path));
}

/// Runs [`child_commits_then_aborts`] on the store at `path` in a child process, and checks
/// that it died.
pub(super) fn kill_after_writing(path: &Path) {
    let child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([
            "--exact",
            "crash::child_commits_then_aborts",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CHILD_DB, path)
        .output()
        .expect("running the child");
    assert!(
        !child.status.success(),
        "the child did not abort ({}):\n{}\n{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
}

#[test]
fn crash_image_keeps_committed_writes() {
    let (_dir, path) = super::temp_db();
    let (_image_dir, image) = super::temp_db();
    block_on(async {
        let driver = SqliteDriver::open(&path).await.unwrap();
        write(&driver).await;
        // Copy the database and its WAL while the driver is still open (its thread is idle).
        for suffix in ["", "-wal"] {
            let from = format!("{}{suffix}", path.display());
            let to = format!("{}{suffix}", image.display());
            std::fs::copy(&from, &to).unwrap();
        }
        check(&image).await;
        drop(driver);
    });
}
