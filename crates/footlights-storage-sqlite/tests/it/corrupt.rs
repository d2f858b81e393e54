//! A damaged database file is refused at open, with a message naming it.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write as _};
use std::path::Path;

use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, StorageError, Write};
use footlights_storage_sqlite::SqliteDriver;

/// A closed store with a few hundred pages of actors and state, most of them in the database
/// file (a short write-ahead log is copied into it often), where the tests damage them.
async fn store_with_data(path: &Path) {
    let driver = SqliteDriver::builder(path)
        .checkpoint_pages(64)
        .open()
        .await
        .expect("opening the store");
    for n in 0..200 {
        let meta = ActorMeta::new(
            ActorId::new(format!("a{n}")),
            "n",
            ActorKey::from(n.to_string().as_str()),
            0,
        );
        driver.create_actor(&meta).await.expect("creating an actor");
        driver
            .commit(vec![Write::State {
                actor: meta.id,
                bytes: vec![n as u8; 3000],
            }])
            .await
            .expect("saving its state");
    }
}

#[tokio::test]
async fn a_healthy_file_opens() {
    let (_dir, path) = super::temp_db();
    store_with_data(&path).await;
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_eq!(
        driver.load_state(&ActorId::new("a7")).await.unwrap(),
        Some(vec![7; 3000])
    );
}

#[tokio::test]
async fn a_file_with_garbage_in_its_pages_is_refused_at_open() {
    let (_dir, path) = super::temp_db();
    store_with_data(&path).await;
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 100 * 4096, "the store has many pages: {len} bytes");
    // Past the header page: SQLite opens the file and reads its schema as usual.
    let mut file = OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(len / 2)).unwrap();
    file.write_all(&[0x5A; 3 * 4096]).unwrap();
    file.sync_all().unwrap();
    drop(file);

    let err = SqliteDriver::open(&path).await.unwrap_err();
    assert!(matches!(err, StorageError::Backend(_)), "{err:?}");
    let message = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(message.contains("corrupt"), "{message}");
    assert!(
        message.contains(&path.display().to_string()),
        "names the file: {message}"
    );

    // Told to go on, it opens: what is readable is served.
    let driver = SqliteDriver::builder(&path)
        .recover(true)
        .open()
        .await
        .unwrap();
    assert_eq!(
        driver.load_state(&ActorId::new("a1")).await.unwrap(),
        Some(vec![1; 3000])
    );
    drop(driver);
    super::wait_closed(&path);

    // Files over the check's limit open unchecked.
    SqliteDriver::builder(&path)
        .quick_check_limit(len - 1)
        .open()
        .await
        .unwrap();
}
