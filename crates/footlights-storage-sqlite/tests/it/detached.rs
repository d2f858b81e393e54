//! Files deleted or replaced under an open store: commits are refused, never acknowledged and
//! then lost.

use std::fs;
use std::path::Path;

use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, StorageError, Write};
use footlights_storage_sqlite::SqliteDriver;

async fn driver_with_actor(path: &Path) -> (SqliteDriver, ActorId) {
    let driver = SqliteDriver::open(path).await.expect("opening the store");
    let meta = ActorMeta::new(ActorId::new("a"), "n", ActorKey::from("k"), 0);
    driver.create_actor(&meta).await.expect("creating an actor");
    driver
        .commit(vec![state(&meta.id, 1)])
        .await
        .expect("saving its state");
    (driver, meta.id)
}

fn state(actor: &ActorId, b: u8) -> Write {
    Write::State {
        actor: actor.clone(),
        bytes: vec![b],
    }
}

fn assert_unavailable(result: footlights_storage::Result<impl std::fmt::Debug>, what: &str) {
    match result {
        Err(StorageError::Unavailable { reason, .. }) => {
            assert!(reason.contains(what), "{reason}");
        }
        other => panic!("expected storage unavailable ({what}), got {other:?}"),
    }
}

#[tokio::test]
async fn a_deleted_data_directory_refuses_commits() {
    let (dir, path) = super::temp_db();
    let (driver, actor) = driver_with_actor(&path).await;
    for entry in fs::read_dir(dir.path()).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    assert_unavailable(driver.commit(vec![state(&actor, 2)]).await, "footlights.db");
    // Every later write too, and deletes as well.
    assert_unavailable(driver.commit(vec![state(&actor, 3)]).await, "footlights.db");
    assert_unavailable(driver.delete_actor(&actor).await, "footlights.db");
}

#[tokio::test]
async fn a_database_moved_away_refuses_commits_until_it_is_back() {
    let (dir, path) = super::temp_db();
    let (driver, actor) = driver_with_actor(&path).await;
    let away = dir.path().join("moved.db");
    fs::rename(&path, &away).unwrap();
    assert_unavailable(driver.commit(vec![state(&actor, 2)]).await, "deleted");

    // Another file in its place is not the one the store has open.
    fs::write(&path, b"").unwrap();
    assert_unavailable(driver.commit(vec![state(&actor, 3)]).await, "replaced");

    // The same file back: writes go on, and the refused ones were not applied.
    fs::rename(&away, &path).unwrap();
    assert_eq!(driver.load_state(&actor).await.unwrap(), Some(vec![1]));
    driver.commit(vec![state(&actor, 4)]).await.unwrap();
    drop(driver);
    let reopened = SqliteDriver::open(&path).await.unwrap();
    assert_eq!(reopened.load_state(&actor).await.unwrap(), Some(vec![4]));
}

#[tokio::test]
async fn a_deleted_lock_file_refuses_commits() {
    // Without its lock file, a second process could open the same data and write beside us.
    let (_dir, path) = super::temp_db();
    let (driver, actor) = driver_with_actor(&path).await;
    let lock = path.with_file_name("footlights.db.lock");
    fs::remove_file(&lock).unwrap();
    assert_unavailable(driver.commit(vec![state(&actor, 2)]).await, "lock");
    fs::write(&lock, b"").unwrap();
    assert_unavailable(driver.commit(vec![state(&actor, 2)]).await, "lock");
}

#[tokio::test]
async fn a_deleted_write_ahead_log_refuses_commits() {
    let (dir, path) = super::temp_db();
    let (driver, actor) = driver_with_actor(&path).await;
    let wal = dir.path().join("footlights.db-wal");
    assert!(wal.exists(), "the store is in WAL mode");
    fs::remove_file(&wal).unwrap();
    // What it would acknowledge now would go to a log nobody can find at the next start.
    assert_unavailable(
        driver.commit(vec![state(&actor, 2)]).await,
        "write-ahead log",
    );
}
