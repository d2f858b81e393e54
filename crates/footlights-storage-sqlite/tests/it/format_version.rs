//! The file records the format version, and files of a newer version are refused untouched.

use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, FORMAT_VERSION, StorageError};
use footlights_storage_sqlite::SqliteDriver;

#[tokio::test]
async fn new_file_records_the_current_version() {
    let (_dir, path) = super::temp_db();
    drop(SqliteDriver::open(&path).await.unwrap());
    assert_eq!(super::read_format_version(&path), Some(FORMAT_VERSION));
}

#[tokio::test]
async fn file_stamped_with_a_newer_version_is_refused() {
    let (_dir, path) = super::temp_db();
    let driver = SqliteDriver::open(&path).await.unwrap();
    let meta = ActorMeta::new(ActorId::new("a"), "n", ActorKey::from("k"), 0);
    driver.create_actor(&meta).await.unwrap();
    drop(driver);

    super::write_format_version(&path, FORMAT_VERSION + 1);
    let err = SqliteDriver::open(&path).await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::UnsupportedFormat { found, supported }
                if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION
        ),
        "{err:?}"
    );
    assert_eq!(
        super::read_format_version(&path),
        Some(FORMAT_VERSION + 1),
        "the stamp changed"
    );

    super::write_format_version(&path, FORMAT_VERSION);
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_eq!(driver.actor(&meta.id).await.unwrap(), Some(meta));
}

#[tokio::test]
async fn newer_file_gets_none_of_our_tables() {
    // A file a newer build created (with other tables): opening it must not add ours.
    let (_dir, path) = super::temp_db();
    super::write_format_version(&path, FORMAT_VERSION + 1);
    let err = SqliteDriver::open(&path).await.unwrap_err();
    assert!(
        matches!(err, StorageError::UnsupportedFormat { .. }),
        "{err:?}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["footlights_meta"]);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_error() {
    let (_dir, path) = super::temp_db();
    std::fs::write(
        &path,
        b"this is not an sqlite database, not even close: 0123456789abcdef",
    )
    .unwrap();
    let err = SqliteDriver::open(&path).await.unwrap_err();
    assert!(matches!(err, StorageError::Backend(_)), "{err:?}");
}

#[tokio::test]
async fn builder_busy_timeout_bounds_the_wait_for_a_lock() {
    let (_dir, path) = super::temp_db();
    let driver = SqliteDriver::builder(&path)
        .busy_timeout(std::time::Duration::from_millis(100))
        .open()
        .await
        .unwrap();
    assert_eq!(driver.path(), path);

    // Another connection holds the write lock for the whole test.
    let mut other = rusqlite::Connection::open(&path).unwrap();
    let lock = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    let started = std::time::Instant::now();
    let meta = ActorMeta::new(ActorId::new("a"), "n", ActorKey::from("k"), 0);
    let err = driver.create_actor(&meta).await.unwrap_err();
    assert!(matches!(err, StorageError::Backend(_)), "{err:?}");
    assert!(
        started.elapsed() < footlights_storage_sqlite::DEFAULT_BUSY_TIMEOUT,
        "waited {:?}: the builder's timeout was not used",
        started.elapsed()
    );
    drop(lock);
    assert!(driver.create_actor(&meta).await.is_ok(), "the lock is gone");
}
