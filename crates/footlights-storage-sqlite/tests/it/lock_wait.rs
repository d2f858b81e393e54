//! Opening a store that another process holds: at once an error, or with `lock_wait` a wait
//! until the holder lets go. The other process is played by a second handle on the lock file,
//! which the lock treats as a stranger.

use std::fs::File;
use std::time::Duration;

use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, StorageError};
use footlights_storage_sqlite::SqliteDriver;

/// The lock file of `footlights.db` in `dir`, locked through a handle of its own.
fn held_by_a_stranger(dir: &std::path::Path) -> File {
    let lock = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("footlights.db.lock"))
        .expect("opening the lock file");
    lock.try_lock().expect("locking it");
    lock
}

#[tokio::test]
async fn without_a_wait_a_held_store_fails_at_once() {
    let (dir, path) = super::temp_db();
    let stranger = held_by_a_stranger(dir.path());
    assert!(SqliteDriver::in_use_elsewhere(&path).unwrap());
    let err = SqliteDriver::open(&path).await.unwrap_err();
    assert!(matches!(err, StorageError::Backend(_)), "{err:?}");
    let message = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(message.contains("another process"), "{message}");
    drop(stranger);
    assert!(!SqliteDriver::in_use_elsewhere(&path).unwrap());
}

#[tokio::test]
async fn a_wait_that_runs_out_fails_like_no_wait() {
    let (dir, path) = super::temp_db();
    let _stranger = held_by_a_stranger(dir.path());
    let err = SqliteDriver::builder(&path)
        .lock_wait(Duration::from_millis(30))
        .open()
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Backend(_)), "{err:?}");
    assert!(
        !path.exists(),
        "the database was not touched while it was held"
    );
}

#[tokio::test]
async fn a_wait_opens_once_the_holder_lets_go() {
    let (dir, path) = super::temp_db();
    let stranger = held_by_a_stranger(dir.path());
    let opening = tokio::spawn(
        SqliteDriver::builder(&path)
            .lock_wait(Duration::from_secs(60))
            .open(),
    );
    // Still waiting while the stranger holds it: the opener has not taken the lock.
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(
        !opening.is_finished(),
        "opened while another process held it"
    );
    assert!(SqliteDriver::in_use_elsewhere(&path).unwrap());
    drop(stranger);
    let driver = tokio::time::timeout(Duration::from_secs(30), opening)
        .await
        .expect("opened soon after the holder let go")
        .unwrap()
        .unwrap();
    let meta = ActorMeta::new(ActorId::new("a1"), "n", ActorKey::from("k"), 0);
    driver.create_actor(&meta).await.unwrap();
    assert!(driver.actor(&ActorId::new("a1")).await.unwrap().is_some());
    assert!(
        !SqliteDriver::in_use_elsewhere(&path).unwrap(),
        "held by this process now"
    );
}
