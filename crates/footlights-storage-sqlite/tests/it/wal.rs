//! The write-ahead log at open: a log that would lose acknowledged commits (damaged, or
//! missing after an unclean stop) is refused, or opened with `recover`; what a crash leaves
//! (a torn last transaction, frames of an earlier generation) opens with every acknowledged
//! commit.
//!
//! A store whose last commits are only in its log is made as a crash leaves it: its files are
//! copied while its driver is still open ([`image`]), or its process is killed.

use std::path::{Path, PathBuf};

use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, StorageError, Write};
use footlights_storage_sqlite::{Durability, SqliteDriver};

/// Commits written to the log of each store here.
const COMMITS: u8 = 12;

fn actor() -> ActorMeta {
    ActorMeta::new(ActorId::new("w-1"), "wal", ActorKey::from("k"), 0)
}

/// Commit `n`: the actor's state becomes `[n; 1500]`, and key `[n]` is added with value `[n]`.
async fn commit(driver: &SqliteDriver, n: u8) {
    let id = actor().id;
    driver
        .commit(vec![
            Write::State {
                actor: id.clone(),
                bytes: vec![n; 1500],
            },
            Write::KvPut {
                actor: id,
                key: vec![n],
                value: vec![n],
            },
        ])
        .await
        .expect("commit");
}

/// Checks that the store holds commits 1 to `last` and none after.
async fn assert_commits(driver: &SqliteDriver, last: u8) {
    let id = actor().id;
    assert_eq!(
        driver.load_state(&id).await.expect("reading the store"),
        Some(vec![last; 1500]),
        "the state of commit {last}"
    );
    for n in 1..=COMMITS {
        let expected = (n <= last).then(|| vec![n]);
        assert_eq!(
            driver.kv_get(&id, &[n]).await.expect("reading the store"),
            expected,
            "key {n}"
        );
    }
}

/// Copies the files of the store at `from` (its log if `with_log`) to a new directory, as a
/// crash of its process would leave them, and returns the copy's database path.
fn copy_files(from: &Path, with_log: bool) -> (tempfile::TempDir, PathBuf) {
    let (dir, to) = super::temp_db();
    std::fs::copy(from, &to).expect("copying the store's files");
    if with_log {
        std::fs::copy(log_path(from), log_path(&to)).expect("copying the store's files");
    }
    (dir, to)
}

/// A crash image: a store with the actor and [`COMMITS`] commits that are only in its log.
async fn image(with_log: bool) -> (tempfile::TempDir, PathBuf) {
    let (_dir, path) = super::temp_db();
    let driver = SqliteDriver::open(&path).await.expect("writing the store");
    driver
        .create_actor(&actor())
        .await
        .expect("writing the store");
    for n in 1..=COMMITS {
        commit(&driver, n).await;
    }
    // Its threads are idle: the files are as a crash would leave them.
    let image = copy_files(&path, with_log);
    drop(driver);
    image
}

fn log_path(database: &Path) -> PathBuf {
    let mut log = database.as_os_str().to_owned();
    log.push("-wal");
    PathBuf::from(log)
}

/// A frame of a log, as its header says.
#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Where it starts in the file.
    offset: usize,
    /// Whether it ends a transaction.
    commit: bool,
    /// Whether its salts are the header's.
    current: bool,
}

/// The whole frames of the log `bytes`, read from their headers (no checksums).
fn frames(bytes: &[u8]) -> Vec<Frame> {
    let word =
        |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("a word of the log"));
    let frame_len = 24 + word(8) as usize;
    (0..(bytes.len() - 32) / frame_len)
        .map(|i| {
            let offset = 32 + i * frame_len;
            Frame {
                offset,
                commit: word(offset + 4) != 0,
                current: bytes[offset + 8..offset + 16] == bytes[16..24],
            }
        })
        .collect()
}

/// Flips bytes in the page of `frame` in the log of the store at `database`.
fn garble(database: &Path, frame: Frame) {
    let mut bytes = std::fs::read(log_path(database)).expect("rewriting the log");
    for b in &mut bytes[frame.offset + 24 + 64..frame.offset + 24 + 96] {
        *b ^= 0xa5;
    }
    std::fs::write(log_path(database), bytes).expect("rewriting the log");
}

/// The frames of the image's log, checking that it holds every commit.
fn image_frames(database: &Path) -> Vec<Frame> {
    let frames = frames(&std::fs::read(log_path(database)).expect("reading the log"));
    let commits = frames.iter().filter(|f| f.commit).count();
    // The create, the commits, and the driver's record that the store is in use.
    assert!(
        commits > usize::from(COMMITS),
        "{commits} commits in the log"
    );
    assert!(
        frames.last().expect("reading the log").commit,
        "the log ends with a commit"
    );
    frames
}

/// The first frame of the transaction that ends at commit frame `end`.
fn transaction_start(frames: &[Frame], end: usize) -> usize {
    frames[..end]
        .iter()
        .rposition(|f| f.commit)
        .map_or(0, |previous| previous + 1)
}

/// The message of a refused open.
fn refusal(result: footlights_storage::Result<SqliteDriver>) -> String {
    let err = result.expect_err("the store opened");
    assert!(matches!(err, StorageError::Backend(_)), "{err:?}");
    std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Damages the log of a crash image in the first frame of the transaction of commit `n` (of
/// [`COMMITS`]), and returns the offset of that frame and how many commit frames follow it.
fn damage_commit(database: &Path, n: u8) -> (usize, usize) {
    let frames = image_frames(database);
    let ends: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].commit).collect();
    // The last commits of the log are the driver's commits 1 to COMMITS.
    let end = ends[ends.len() - usize::from(COMMITS - n + 1)];
    let start = transaction_start(&frames, end);
    garble(database, frames[start]);
    let after = ends.iter().filter(|&&i| i >= start).count();
    (frames[start].offset, after)
}

#[tokio::test]
async fn a_log_with_commits_opens_with_every_one() {
    let (_dir, path) = image(true).await;
    image_frames(&path);
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_commits(&driver, COMMITS).await;
}

#[tokio::test]
async fn a_log_cut_in_its_last_frame_opens_with_the_commits_before() {
    // A crash while the last commit was written: it never returned, and is dropped.
    let (_dir, path) = image(true).await;
    image_frames(&path);
    let log = log_path(&path);
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_commits(&driver, COMMITS - 1).await;
}

#[tokio::test]
async fn a_torn_frame_in_the_last_transaction_opens_with_the_commits_before() {
    // A power cut while the last commit was written: its commit frame reached the disk, an
    // earlier frame of it did not.
    let (_dir, path) = image(true).await;
    let frames = image_frames(&path);
    let start = transaction_start(&frames, frames.len() - 1);
    assert!(
        start < frames.len() - 1,
        "the last transaction has one frame"
    );
    garble(&path, frames[start]);
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_commits(&driver, COMMITS - 1).await;
}

#[tokio::test]
async fn a_damaged_frame_with_commits_after_it_is_refused() {
    let (_dir, path) = image(true).await;
    let (offset, after) = damage_commit(&path, 5);
    let damaged = std::fs::read(log_path(&path)).unwrap();

    let message = refusal(SqliteDriver::open(&path).await);
    let log = log_path(&path).display().to_string();
    assert!(message.contains(&log), "names the log: {message}");
    assert!(
        message.contains(&format!("at byte {offset}:")),
        "names the offset {offset}: {message}"
    );
    assert!(
        message.contains(&format!("the {after} commits after it")),
        "counts the {after} commits: {message}"
    );
    assert!(message.contains("recover"), "says how to go on: {message}");
    // Nothing was written: the log is as it was, and refused again.
    assert_eq!(std::fs::read(log_path(&path)).unwrap(), damaged);
    refusal(SqliteDriver::open(&path).await);
    assert_eq!(std::fs::read(log_path(&path)).unwrap(), damaged);
}

/// The copies of the log kept beside the store at `database`.
fn kept_copies(database: &Path) -> Vec<PathBuf> {
    let dir = database.parent().expect("listing the data directory");
    std::fs::read_dir(dir)
        .expect("listing the data directory")
        .map(|entry| entry.expect("listing the data directory").path())
        .filter(|p| {
            let name = p
                .file_name()
                .expect("listing the data directory")
                .to_string_lossy()
                .into_owned();
            name.starts_with("footlights.db-wal.damaged-")
        })
        .collect()
}

#[tokio::test]
async fn recover_opens_a_damaged_log_with_the_commits_before_and_keeps_a_copy() {
    let (_dir, path) = image(true).await;
    damage_commit(&path, 5);
    let damaged = std::fs::read(log_path(&path)).unwrap();

    let driver = SqliteDriver::builder(&path)
        .recover(true)
        .open()
        .await
        .unwrap();
    assert_commits(&driver, 4).await;
    let copies = kept_copies(&path);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(std::fs::read(&copies[0]).unwrap(), damaged);

    // It goes on as a healthy store.
    commit(&driver, 5).await;
    drop(driver);
    super::wait_closed(&path);
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_commits(&driver, 5).await;
}

#[tokio::test]
async fn with_process_durability_a_log_with_a_hole_opens_and_a_copy_is_kept() {
    // Synced at checkpoints only, a log may lose any of its frames in a power cut.
    let (_dir, path) = image(true).await;
    damage_commit(&path, 5);
    let driver = SqliteDriver::builder(&path)
        .durability(Durability::Process)
        .open()
        .await
        .unwrap();
    assert_commits(&driver, 4).await;
    assert_eq!(kept_copies(&path).len(), 1);
}

#[tokio::test]
async fn frames_of_an_earlier_generation_after_the_log_open_with_every_commit() {
    let (_dir, path) = super::temp_db();
    let driver = SqliteDriver::open(&path).await.unwrap();
    driver.create_actor(&actor()).await.unwrap();
    for n in 1..=COMMITS {
        commit(&driver, n).await;
    }
    // Copied into the database file: the next commit writes the log again from its start,
    // with new salts, and the frames past its end stay.
    let other = rusqlite::Connection::open(&path).unwrap();
    let (busy, frames, copied): (i64, i64, i64) = other
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .unwrap();
    assert_eq!((busy, frames), (0, copied), "the whole log was copied");
    drop(other);
    commit(&driver, 1).await;
    commit(&driver, 2).await;
    let (_image_dir, image) = copy_files(&path, true);
    drop(driver);

    let frames = frames_of(&image);
    let current = frames.iter().take_while(|f| f.current).count();
    assert!(current > 0, "the log was written again");
    assert!(
        frames[current..].iter().filter(|f| f.commit).count() > 2,
        "older commit frames follow the log: {frames:?}"
    );
    let driver = SqliteDriver::open(&image).await.unwrap();
    let id = actor().id;
    assert_eq!(driver.load_state(&id).await.unwrap(), Some(vec![2; 1500]));
    for n in 1..=COMMITS {
        assert_eq!(driver.kv_get(&id, &[n]).await.unwrap(), Some(vec![n]));
    }
}

fn frames_of(database: &Path) -> Vec<Frame> {
    frames(&std::fs::read(log_path(database)).expect("reading the log"))
}

#[tokio::test]
async fn a_log_deleted_after_an_unclean_stop_is_refused() {
    let (_dir, path) = image(false).await;
    assert!(!log_path(&path).exists());
    let message = refusal(SqliteDriver::open(&path).await);
    assert!(
        message.contains(&log_path(&path).display().to_string()),
        "names the log: {message}"
    );
    assert!(message.contains("missing"), "{message}");
    assert!(message.contains("recover"), "says how to go on: {message}");
    // Refused again: the refusal changed nothing.
    refusal(SqliteDriver::open(&path).await);

    // Told to go on: what the database file holds (the commits were in the log).
    let driver = SqliteDriver::builder(&path)
        .recover(true)
        .open()
        .await
        .unwrap();
    assert_eq!(driver.actor(&actor().id).await.unwrap(), None);
    driver.create_actor(&actor()).await.unwrap();
    commit(&driver, 1).await;
    drop(driver);
    super::wait_closed(&path);
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_eq!(
        driver.load_state(&actor().id).await.unwrap(),
        Some(vec![1; 1500])
    );
}

#[tokio::test]
async fn a_log_deleted_after_the_process_was_killed_is_refused() {
    let (_dir, path) = super::temp_db();
    super::crash::kill_after_writing(&path);
    assert!(log_path(&path).exists(), "a killed process leaves its log");
    std::fs::remove_file(log_path(&path)).unwrap();
    let message = refusal(SqliteDriver::open(&path).await);
    assert!(message.contains("missing"), "{message}");
}

#[tokio::test]
async fn a_clean_close_leaves_no_log_and_opens_again() {
    let (_dir, path) = super::temp_db();
    let driver = SqliteDriver::open(&path).await.unwrap();
    driver.create_actor(&actor()).await.unwrap();
    for n in 1..=COMMITS {
        commit(&driver, n).await;
    }
    drop(driver);
    super::wait_closed(&path);
    assert!(!log_path(&path).exists(), "SQLite deleted the log");
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_commits(&driver, COMMITS).await;

    // Two drivers on the file: the first to close leaves it in use.
    let second = SqliteDriver::open(&path).await.unwrap();
    drop(driver);
    commit(&second, 1).await;
    drop(second);
    super::wait_closed(&path);
    assert!(!log_path(&path).exists(), "SQLite deleted the log");
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_eq!(
        driver.load_state(&actor().id).await.unwrap(),
        Some(vec![1; 1500])
    );
}
