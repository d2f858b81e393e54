//! A store written by format version 1 (`tests/fixtures/format-v1.db`, see the README beside
//! it) is upgraded in place when opened: everything in it is still there, the file records the
//! current version and takes new writes; opening it again changes nothing; and an upgrade that
//! fails leaves the file as it was.

use std::path::{Path, PathBuf};

use footlights_storage::{
    ActorId, ActorKey, ActorMeta, Alarm, CreateOutcome, Driver, FORMAT_VERSION, KvRange,
    StorageError, Unit, UnitOutcome, Write,
};
use footlights_storage_sqlite::SqliteDriver;
use rusqlite::types::Value;

/// The committed fixture. Never opened in place: opening writes beside it.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format-v1.db");

/// The key-value row of `a-chat`: the runtime's stored create input.
const INPUT_KEY: &[u8] = b"footlights.input";
const INPUT_VALUE: &[u8] = &[1, 0xf6];

fn counter() -> ActorMeta {
    ActorMeta {
        generation: 2,
        ..ActorMeta::new(
            ActorId::new("a-counter"),
            "counter",
            ActorKey::from(["room-1"]),
            1_700_000_000_000,
        )
    }
}

fn chat() -> ActorMeta {
    ActorMeta::new(
        ActorId::new("a-chat"),
        "chatRoom",
        ActorKey::from(["lobby", "west"]),
        1_700_000_000_001,
    )
}

fn empty() -> ActorMeta {
    ActorMeta::new(
        ActorId::new("a-empty"),
        "counter",
        ActorKey::default(),
        1_700_000_000_002,
    )
}

fn chat_alarm() -> Alarm {
    Alarm {
        id: "alarm-1".to_owned(),
        at_ms: 1_800_000_000_000,
        action: "tick".to_owned(),
        args: vec![9, 9],
    }
}

/// A copy of the fixture in a new temporary directory, still at format version 1.
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = super::temp_db();
    std::fs::copy(FIXTURE, &path).expect("copying the fixture");
    assert_eq!(
        super::read_format_version(&path),
        Some(1),
        "the fixture is not a version 1 store"
    );
    (dir, path)
}

/// Checks that the driver finds everything the fixture holds, as it was written.
async fn check_fixture_contents(driver: &SqliteDriver) {
    // Metadata, by id.
    for meta in [counter(), chat(), empty()] {
        assert_eq!(
            driver
                .actor(&meta.id)
                .await
                .expect("reading the upgraded store"),
            Some(meta.clone())
        );
    }
    assert_eq!(
        driver
            .actor(&ActorId::new("a-none"))
            .await
            .expect("reading the upgraded store"),
        None
    );

    // By name and key, including the empty key and the two-part key.
    for meta in [counter(), chat(), empty()] {
        assert_eq!(
            driver
                .find_actor(&meta.name, &meta.key)
                .await
                .expect("reading the upgraded store"),
            Some(meta.clone())
        );
    }
    assert_eq!(
        driver
            .find_actor("counter", &ActorKey::from(["room-2"]))
            .await
            .expect("reading the upgraded store"),
        None
    );
    assert_eq!(
        driver
            .find_actor("chatRoom", &ActorKey::from(["lobby"]))
            .await
            .expect("reading the upgraded store"),
        None,
        "a prefix of a key is another key"
    );

    // Listing by name and key prefix, in key order (the empty key first).
    assert_eq!(
        driver
            .list_actors("counter", &ActorKey::default())
            .await
            .expect("reading the upgraded store"),
        [empty(), counter()]
    );
    assert_eq!(
        driver
            .list_actors("counter", &ActorKey::from(["room-1"]))
            .await
            .expect("reading the upgraded store"),
        [counter()]
    );
    assert_eq!(
        driver
            .list_actors("chatRoom", &ActorKey::default())
            .await
            .expect("reading the upgraded store"),
        [chat()]
    );
    assert_eq!(
        driver
            .list_actors("chatRoom", &ActorKey::from(["lobby"]))
            .await
            .expect("reading the upgraded store"),
        [chat()]
    );
    assert_eq!(
        driver
            .list_actors("chatRoom", &ActorKey::from(["lobby", "west"]))
            .await
            .expect("reading the upgraded store"),
        [chat()]
    );
    assert!(
        driver
            .list_actors("chatRoom", &ActorKey::from(["lob"]))
            .await
            .expect("reading the upgraded store")
            .is_empty(),
        "key prefixes are whole parts"
    );
    assert!(
        driver
            .list_actors("nobody", &ActorKey::default())
            .await
            .expect("reading the upgraded store")
            .is_empty()
    );

    // States.
    assert_eq!(
        driver
            .load_state(&counter().id)
            .await
            .expect("reading the upgraded store"),
        Some(vec![1, 2, 3, 4])
    );
    assert_eq!(
        driver
            .load_state(&chat().id)
            .await
            .expect("reading the upgraded store"),
        Some(b"chat-state".to_vec())
    );
    assert_eq!(
        driver
            .load_state(&empty().id)
            .await
            .expect("reading the upgraded store"),
        None
    );

    // The one alarm.
    assert_eq!(
        driver
            .load_alarms(&chat().id)
            .await
            .expect("reading the upgraded store"),
        [chat_alarm()]
    );
    assert!(
        driver
            .load_alarms(&counter().id)
            .await
            .expect("reading the upgraded store")
            .is_empty()
    );
    assert!(
        driver
            .load_alarms(&empty().id)
            .await
            .expect("reading the upgraded store")
            .is_empty()
    );
    assert_eq!(
        driver
            .all_alarms()
            .await
            .expect("reading the upgraded store"),
        [(chat().id, chat_alarm())]
    );

    // The one key-value row, by key, by keys, by range; and the sizes.
    assert_eq!(
        driver
            .kv_get(&chat().id, INPUT_KEY)
            .await
            .expect("reading the upgraded store"),
        Some(INPUT_VALUE.to_vec())
    );
    assert_eq!(
        driver
            .kv_get_many(&chat().id, &[INPUT_KEY.to_vec(), b"missing".to_vec()])
            .await
            .expect("reading the upgraded store"),
        [Some(INPUT_VALUE.to_vec()), None]
    );
    let row = || (INPUT_KEY.to_vec(), INPUT_VALUE.to_vec());
    assert_eq!(
        driver
            .kv_list(&chat().id, &KvRange::all())
            .await
            .expect("reading the upgraded store"),
        [row()]
    );
    assert_eq!(
        driver
            .kv_list(&chat().id, &KvRange::prefix(b"footlights."))
            .await
            .expect("reading the upgraded store"),
        [row()]
    );
    assert_eq!(
        driver
            .kv_list(&chat().id, &KvRange::all().reverse().limit(1))
            .await
            .expect("reading the upgraded store"),
        [row()]
    );
    assert_eq!(
        driver
            .kv_size(&chat().id)
            .await
            .expect("reading the upgraded store"),
        18,
        "16-byte key + 2-byte value"
    );
    for meta in [counter(), empty()] {
        assert_eq!(
            driver
                .kv_get(&meta.id, INPUT_KEY)
                .await
                .expect("reading the upgraded store"),
            None
        );
        assert!(
            driver
                .kv_list(&meta.id, &KvRange::all())
                .await
                .expect("reading the upgraded store")
                .is_empty()
        );
        assert_eq!(
            driver
                .kv_size(&meta.id)
                .await
                .expect("reading the upgraded store"),
            0
        );
    }
    assert_eq!(
        driver
            .kv_size(&ActorId::new("a-none"))
            .await
            .expect("reading the upgraded store"),
        0
    );
}

/// Checks, with plain SQLite, that the file is a sound store of the current version: the
/// recorded version, `integrity_check`, the foreign keys, the version 2 tables, and each
/// actor's `kv_bytes` equal to its rows' sizes.
fn check_upgraded_file(path: &Path) {
    assert_eq!(super::read_format_version(path), Some(FORMAT_VERSION));
    assert_eq!(FORMAT_VERSION, 2, "this test upgrades to version 2");
    let conn = rusqlite::Connection::open(path).expect("reading the file with rusqlite");
    let integrity: Vec<String> = column(&conn, "PRAGMA integrity_check");
    assert_eq!(integrity, ["ok"]);
    let dangling: Vec<String> = column(&conn, "SELECT \"table\" FROM pragma_foreign_key_check");
    assert!(
        dangling.is_empty(),
        "rows without their actor: {dangling:?}"
    );

    let tables: Vec<String> = column(
        &conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
    );
    assert_eq!(
        tables,
        ["actors", "alarms", "footlights_meta", "kv", "state"],
        "the old key-value table is gone"
    );
    let kv_sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'kv'",
            [],
            |row| row.get(0),
        )
        .expect("reading the file with rusqlite");
    assert!(
        kv_sql.contains("WITHOUT ROWID"),
        "kv is not clustered on its key: {kv_sql}"
    );
    let wrong_sizes: Vec<String> = column(
        &conn,
        "SELECT id FROM actors WHERE kv_bytes IS NOT
             (SELECT coalesce(sum(length(key) + length(value)), 0) FROM kv WHERE actor_id = id)",
    );
    assert!(
        wrong_sizes.is_empty(),
        "kv_bytes differs from the rows' sizes for {wrong_sizes:?}"
    );
}

/// The first column of every row `sql` returns.
fn column<T: rusqlite::types::FromSql>(conn: &rusqlite::Connection, sql: &str) -> Vec<T> {
    conn.prepare(sql)
        .expect("reading the file with rusqlite")
        .query_map([], |row| row.get(0))
        .expect("reading the file with rusqlite")
        .collect::<Result<_, _>>()
        .expect("reading the file with rusqlite")
}

/// Everything in the file: its schema, and every row of every table (sorted, so that the
/// order rows are stored in does not matter).
fn dump(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("reading the file with rusqlite");
    let mut out: Vec<String> = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
        .expect("reading the file with rusqlite")
        .query_map([], |row| {
            Ok(format!(
                "schema {:?} {:?} {:?} {:?}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?
            ))
        })
        .expect("reading the file with rusqlite")
        .collect::<Result<_, _>>()
        .expect("reading the file with rusqlite");
    let tables: Vec<String> = column(
        &conn,
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name",
    );
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("reading the file with rusqlite");
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |row| {
                let values = (0..columns)
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("row {table} {values:?}"))
            })
            .expect("reading the file with rusqlite")
            .collect::<Result<_, _>>()
            .expect("reading the file with rusqlite");
        rows.sort();
        out.extend(rows);
    }
    out
}

fn schema_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("reading the file with rusqlite");
    conn.query_row("PRAGMA schema_version", [], |row| row.get(0))
        .expect("reading the file with rusqlite")
}

#[tokio::test]
async fn version_1_store_is_upgraded_with_everything_in_it() {
    let (_dir, path) = fixture_copy();
    let driver = SqliteDriver::open(&path).await.unwrap();
    check_fixture_contents(&driver).await;
    // A key taken in version 1 is still taken.
    let again = ActorMeta::new(
        ActorId::new("a-other"),
        "counter",
        ActorKey::from(["room-1"]),
        5,
    );
    assert_eq!(
        driver.create_actor(&again).await.unwrap(),
        CreateOutcome::Exists(counter())
    );
    drop(driver);
    check_upgraded_file(&path);
}

#[tokio::test]
async fn upgraded_store_takes_new_writes() {
    let (_dir, path) = fixture_copy();
    let driver = SqliteDriver::open(&path).await.unwrap();
    let (counter_id, chat_id) = (counter().id, chat().id);

    driver
        .commit(vec![
            Write::KvPut {
                actor: counter_id.clone(),
                key: b"\x01a".to_vec(),
                value: b"xyz".to_vec(),
            },
            Write::KvPut {
                actor: counter_id.clone(),
                key: b"\x01b".to_vec(),
                value: vec![7; 10],
            },
            Write::State {
                actor: counter_id.clone(),
                bytes: vec![5, 6],
            },
        ])
        .await
        .unwrap();
    assert_eq!(driver.kv_size(&counter_id).await.unwrap(), 5 + 12);
    assert_eq!(
        driver.load_state(&counter_id).await.unwrap(),
        Some(vec![5, 6])
    );
    assert_eq!(
        driver.kv_list(&counter_id, &KvRange::all()).await.unwrap(),
        [
            (b"\x01a".to_vec(), b"xyz".to_vec()),
            (b"\x01b".to_vec(), vec![7; 10]),
        ]
    );

    // Replacing the row carried over from version 1 counts its old size out.
    driver
        .commit(vec![Write::KvPut {
            actor: chat_id.clone(),
            key: INPUT_KEY.to_vec(),
            value: vec![1, 2, 3, 4],
        }])
        .await
        .unwrap();
    assert_eq!(driver.kv_size(&chat_id).await.unwrap(), 16 + 4);

    driver
        .commit(vec![Write::KvDelete {
            actor: counter_id.clone(),
            key: b"\x01a".to_vec(),
        }])
        .await
        .unwrap();
    assert_eq!(driver.kv_size(&counter_id).await.unwrap(), 12);

    // Range deletes, bounded and to the end.
    driver
        .commit(vec![
            Write::KvDeleteRange {
                actor: counter_id.clone(),
                start: b"\x01".to_vec(),
                end: Some(b"\x02".to_vec()),
            },
            Write::KvDeleteRange {
                actor: chat_id.clone(),
                start: Vec::new(),
                end: None,
            },
        ])
        .await
        .unwrap();
    for id in [&counter_id, &chat_id] {
        assert_eq!(driver.kv_size(id).await.unwrap(), 0);
        assert!(
            driver
                .kv_list(id, &KvRange::all())
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(driver.kv_get(&chat_id, INPUT_KEY).await.unwrap(), None);

    // Fencing on the generation carried over from version 1.
    let outcomes = driver
        .commit_units(vec![
            Unit::fenced(
                counter_id.clone(),
                2,
                vec![Write::KvPut {
                    actor: counter_id.clone(),
                    key: b"\x01c".to_vec(),
                    value: vec![1],
                }],
            ),
            Unit::fenced(
                counter_id.clone(),
                1,
                vec![Write::KvPut {
                    actor: counter_id.clone(),
                    key: b"\x01stale".to_vec(),
                    value: vec![1],
                }],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            UnitOutcome::Applied(Vec::new()),
            UnitOutcome::Fenced { current: Some(2) }
        ]
    );
    driver
        .commit(vec![Write::BumpGeneration {
            actor: counter_id.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(driver.kv_size(&counter_id).await.unwrap(), 3);

    // New actors and alarms beside the old ones; deleting an old actor.
    let fresh = ActorMeta::new(
        ActorId::new("a-new"),
        "counter",
        ActorKey::from(["room-2"]),
        1_700_000_000_003,
    );
    let fresh_alarm = Alarm {
        id: "later".to_owned(),
        at_ms: 1_900_000_000_000,
        action: "tock".to_owned(),
        args: Vec::new(),
    };
    let created = driver
        .commit(vec![
            Write::CreateActor {
                meta: fresh.clone(),
            },
            Write::KvPut {
                actor: fresh.id.clone(),
                key: b"\x01k".to_vec(),
                value: b"v".to_vec(),
            },
            Write::PutAlarm {
                actor: fresh.id.clone(),
                alarm: fresh_alarm.clone(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(created, [CreateOutcome::Created]);
    assert_eq!(driver.kv_size(&fresh.id).await.unwrap(), 3);
    assert_eq!(
        driver.all_alarms().await.unwrap(),
        [
            (chat_id.clone(), chat_alarm()),
            (fresh.id.clone(), fresh_alarm.clone())
        ]
    );
    driver.delete_actor(&chat_id).await.unwrap();
    assert_eq!(driver.actor(&chat_id).await.unwrap(), None);
    assert_eq!(
        driver.all_alarms().await.unwrap(),
        [(fresh.id.clone(), fresh_alarm.clone())]
    );
    drop(driver);
    check_upgraded_file(&path);

    // All of it is in the file.
    let driver = SqliteDriver::open(&path).await.unwrap();
    assert_eq!(
        driver.actor(&counter_id).await.unwrap(),
        Some(ActorMeta {
            generation: 3,
            ..counter()
        })
    );
    assert_eq!(
        driver.load_state(&counter_id).await.unwrap(),
        Some(vec![5, 6])
    );
    assert_eq!(
        driver.kv_list(&counter_id, &KvRange::all()).await.unwrap(),
        [(b"\x01c".to_vec(), vec![1])]
    );
    assert_eq!(driver.kv_size(&counter_id).await.unwrap(), 3);
    assert_eq!(driver.actor(&fresh.id).await.unwrap(), Some(fresh.clone()));
    assert_eq!(driver.kv_size(&fresh.id).await.unwrap(), 3);
    assert_eq!(driver.actor(&chat_id).await.unwrap(), None);
    assert_eq!(driver.kv_size(&chat_id).await.unwrap(), 0);
    assert_eq!(
        driver
            .list_actors("counter", &ActorKey::default())
            .await
            .unwrap(),
        [
            empty(),
            ActorMeta {
                generation: 3,
                ..counter()
            },
            fresh
        ]
    );
    drop(driver);
    check_upgraded_file(&path);
}

#[tokio::test]
async fn reopening_an_upgraded_store_changes_nothing() {
    let (_dir, path) = fixture_copy();
    drop(SqliteDriver::open(&path).await.unwrap());
    // Closing records the clean close in the file: compare the files as closed.
    super::wait_closed(&path);
    let upgraded = dump(&path);
    let version = schema_version(&path);

    let driver = SqliteDriver::open(&path).await.unwrap();
    check_fixture_contents(&driver).await;
    drop(driver);
    super::wait_closed(&path);
    assert_eq!(dump(&path), upgraded);
    assert_eq!(
        schema_version(&path),
        version,
        "the second open changed the schema"
    );
    check_upgraded_file(&path);
}

/// Prepares a copy of the fixture with `sabotage` (SQL that makes one step of the upgrade
/// fail), opens it, and checks that the open fails and leaves the file exactly as it was: a
/// version 1 store with its rows in `kv`, which opens once the obstacle is gone.
async fn failed_upgrade_changes_nothing(sabotage: &str, repair: &str) {
    let (_dir, path) = fixture_copy();
    rusqlite::Connection::open(&path)
        .and_then(|conn| conn.execute_batch(sabotage))
        .expect("preparing the obstacle");
    let before = dump(&path);
    let version = schema_version(&path);

    let err = SqliteDriver::open(&path)
        .await
        .expect_err("the upgrade did not fail");
    assert!(matches!(err, StorageError::Backend(_)), "{err:?}");

    assert_eq!(super::read_format_version(&path), Some(1));
    let conn = rusqlite::Connection::open(&path).expect("opening the file with rusqlite");
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> = conn
        .prepare("SELECT actor_id, key, value FROM kv")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect()
        })
        .expect("reading table kv");
    assert_eq!(
        rows,
        [(
            "a-chat".to_owned(),
            INPUT_KEY.to_vec(),
            INPUT_VALUE.to_vec()
        )]
    );
    let integrity: Vec<String> = column(&conn, "PRAGMA integrity_check");
    assert_eq!(integrity, ["ok"]);
    drop(conn);
    assert_eq!(dump(&path), before, "the failed upgrade changed the file");
    assert_eq!(schema_version(&path), version);

    // Without the obstacle, the same file upgrades.
    rusqlite::Connection::open(&path)
        .and_then(|conn| conn.execute_batch(repair))
        .expect("removing the obstacle");
    let driver = SqliteDriver::open(&path)
        .await
        .expect("upgrading once the obstacle is gone");
    check_fixture_contents(&driver).await;
    drop(driver);
    check_upgraded_file(&path);
}

#[tokio::test]
async fn upgrade_failing_at_its_first_step_leaves_the_file_as_it_was() {
    // `ALTER TABLE kv RENAME TO kv_v1` finds the name taken.
    failed_upgrade_changes_nothing("CREATE TABLE kv_v1 (x INTEGER);", "DROP TABLE kv_v1;").await;
}

#[tokio::test]
async fn upgrade_failing_after_renaming_kv_leaves_the_file_as_it_was() {
    // The rename succeeds; adding `actors.kv_bytes` then finds the column there.
    failed_upgrade_changes_nothing(
        "ALTER TABLE actors ADD COLUMN kv_bytes INTEGER;",
        "ALTER TABLE actors DROP COLUMN kv_bytes;",
    )
    .await;
}

#[tokio::test]
async fn upgrade_failing_at_its_last_step_leaves_the_file_as_it_was() {
    // Every step but counting the sizes succeeds: the new `kv` is made and filled, the old one
    // dropped; then the update of `actors` is refused.
    failed_upgrade_changes_nothing(
        "CREATE TRIGGER no_updates BEFORE UPDATE ON actors
         BEGIN SELECT RAISE(ABORT, 'actors are read-only'); END;",
        "DROP TRIGGER no_updates;",
    )
    .await;
}
