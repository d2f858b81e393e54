//! The actor's SQL database through the public API: reads of own writes, durability behind
//! the output gate, sleep, restart, panics, failed actions, limits, migrations, destroy.

// Test helpers outside `#[test]` functions may unwrap: a failure there is a test failure.
#![allow(unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use footlights::prelude::*;
use footlights::storage::{Driver, MemoryDriver, SqliteDriver};
use footlights::{ActorId, ActorKey, ActorOptions, Migration};
use footlights_storage::{KvEntries, Unit, UnitOutcome};
use futures::future::BoxFuture;
use tokio::sync::{Notify, mpsc};

/// Waits (bounded) until `n` actors are awake.
async fn until_awake(registry: &Registry, n: usize) {
    let wait = async {
        while registry.awake_count() != n {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the awake count never got there");
}

/// Keeps notes in a table; the state counts the actions that changed it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Book {
    changes: u64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Note {
    id: i64,
    text: String,
}

fn book_options() -> ActorOptions {
    let mut o = ActorOptions::default();
    o.db_migrations = vec![
        Migration::new(
            1,
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE)",
        ),
        Migration::new(2, "CREATE INDEX notes_by_text ON notes (text)"),
    ];
    // A small page cache: most reads go to storage.
    o.db_cache_bytes = 64 << 10;
    o
}

#[footlights::actor]
impl Book {
    fn options() -> ActorOptions {
        book_options()
    }

    #[action]
    async fn add(&mut self, ctx: &Ctx<Self>, text: String) -> Result<i64, ActionError> {
        self.changes += 1;
        ctx.db()
            .execute("INSERT INTO notes (text) VALUES (?1)", (text.clone(),))
            .await?;
        // Read back at once: seen before it is durable.
        let id: Option<i64> = ctx
            .db()
            .query_first("SELECT id FROM notes WHERE text = ?1", (text,))
            .await?;
        Ok(id.unwrap_or(-1))
    }

    #[action]
    async fn add_many(&mut self, ctx: &Ctx<Self>, n: u32, tag: String) -> Result<(), ActionError> {
        self.changes += 1;
        ctx.db()
            .transaction(move |tx| {
                let mut stmt = tx
                    .prepare("INSERT INTO notes (text) VALUES (?1)")
                    .map_err(|e| ActionError::internal(e.to_string()))?;
                for i in 0..n {
                    stmt.execute((format!("{tag} {i:06} {}", "x".repeat(100)),))
                        .map_err(|e| ActionError::internal(e.to_string()))?;
                }
                Ok(())
            })
            .await
    }

    #[action]
    async fn add_then_panic(&mut self, ctx: &Ctx<Self>, text: String) -> Result<(), ActionError> {
        self.changes += 1;
        ctx.db()
            .execute("INSERT INTO notes (text) VALUES (?1)", (text,))
            .await?;
        panic!("after the insert");
    }

    #[action]
    async fn add_then_panic_in_read(
        &self,
        ctx: &Ctx<Self>,
        text: String,
    ) -> Result<(), ActionError> {
        ctx.db()
            .execute("INSERT INTO notes (text) VALUES (?1)", (text,))
            .await?;
        panic!("after the insert, in an action that only reads the state");
    }

    #[action]
    async fn add_then_fail(&mut self, ctx: &Ctx<Self>, text: String) -> Result<(), ActionError> {
        self.changes += 1;
        ctx.db()
            .execute("INSERT INTO notes (text) VALUES (?1)", (text,))
            .await?;
        Err(ActionError::user("refused", "failed after the insert"))
    }

    #[action]
    async fn add_in_failed_transaction(
        &mut self,
        ctx: &Ctx<Self>,
        text: String,
    ) -> Result<(), ActionError> {
        ctx.db()
            .transaction(move |tx| {
                tx.execute("INSERT INTO notes (text) VALUES (?1)", (text,))
                    .map_err(|e| ActionError::internal(e.to_string()))?;
                Err::<(), _>(ActionError::user("refused", "rolled back"))
            })
            .await
    }

    #[action]
    async fn leave_open(&self, ctx: &Ctx<Self>, text: String) -> Result<(), ActionError> {
        ctx.db()
            .with_conn(move |conn| {
                conn.execute_batch("BEGIN")
                    .and_then(|()| conn.execute("INSERT INTO notes (text) VALUES (?1)", (text,)))
                    .map(drop)
                    .map_err(|e| ActionError::internal(e.to_string()))
            })
            .await
    }

    /// An insert from an action that only reads the state: gated all the same.
    #[action]
    async fn add_from_read(&self, ctx: &Ctx<Self>, text: String) -> Result<usize, ActionError> {
        ctx.db()
            .execute("INSERT INTO notes (text) VALUES (?1)", (text,))
            .await
    }

    /// Counts rows with `text` and tells the test at once, before the reply (which waits in
    /// the output gate) is released.
    #[action]
    async fn count_and_tell(&self, ctx: &Ctx<Self>, text: String) -> Result<i64, ActionError> {
        let n: i64 = ctx
            .db()
            .query_first("SELECT count(*) FROM notes WHERE text = ?1", (text,))
            .await?
            .unwrap_or(0);
        SEEN.store(n, Ordering::SeqCst);
        Ok(n)
    }

    #[action]
    async fn count(&self, ctx: &Ctx<Self>) -> Result<i64, ActionError> {
        Ok(ctx
            .db()
            .query_first("SELECT count(*) FROM notes", ())
            .await?
            .unwrap_or(0))
    }

    #[action]
    async fn find(&self, ctx: &Ctx<Self>, like: String) -> Result<Vec<Note>, ActionError> {
        ctx.db()
            .query(
                "SELECT id, text FROM notes WHERE text LIKE ?1 ORDER BY id LIMIT 5",
                (like,),
            )
            .await
    }

    #[action]
    async fn check(&self, ctx: &Ctx<Self>) -> Result<(String, i64), ActionError> {
        let rows = ctx.db().query_rows("PRAGMA integrity_check", ()).await?;
        let ok: String = rows[0].get(0)?;
        let migrations: i64 = ctx
            .db()
            .query_first("SELECT count(*) FROM footlights_migrations", ())
            .await?
            .unwrap_or(0);
        Ok((ok, migrations))
    }

    #[action]
    fn changes(&self) -> u64 {
        self.changes
    }

    #[action]
    fn nap(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }

    #[action]
    fn destroy(&self, ctx: &Ctx<Self>) {
        ctx.destroy();
    }
}

/// What [`Book::count_and_tell`] counted last (-1: nothing yet).
static SEEN: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(-1);

/// A database with tight limits.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Tight;

#[footlights::actor]
impl Tight {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.db_max_bytes = 64 << 10;
        o.db_max_rows = 10;
        o.db_statement_timeout = Duration::from_millis(50);
        o
    }

    #[action]
    async fn blob(&self, ctx: &Ctx<Self>, bytes: usize) -> Result<(), ActionError> {
        ctx.db()
            .execute_batch("CREATE TABLE IF NOT EXISTS blobs (b BLOB)")
            .await?;
        ctx.db()
            .execute(
                "INSERT INTO blobs (b) VALUES (zeroblob(?1))",
                (bytes as i64,),
            )
            .await
            .map(drop)
    }

    #[action]
    async fn rows(&self, ctx: &Ctx<Self>, n: i64) -> Result<usize, ActionError> {
        let rows = ctx
            .db()
            .query_rows(
                "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?1) \
                 SELECT i FROM c",
                (n,),
            )
            .await?;
        Ok(rows.len())
    }

    #[action]
    async fn spin(&self, ctx: &Ctx<Self>) -> Result<i64, ActionError> {
        // Billions of steps: only the time limit ends it.
        Ok(ctx
            .db()
            .query_first(
                "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) \
                 SELECT count(*) FROM (SELECT i FROM c LIMIT 4000000000)",
                (),
            )
            .await?
            .unwrap_or(0))
    }
}

/// A database whose statements may run long, in actions that may not.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Patient;

#[footlights::actor]
impl Patient {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.db_statement_timeout = Duration::from_secs(600);
        o
    }

    #[action(timeout_ms = 100)]
    async fn spin(&self, ctx: &Ctx<Self>) -> Result<i64, ActionError> {
        Ok(ctx
            .db()
            .query_first(
                "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) \
                 SELECT count(*) FROM (SELECT i FROM c LIMIT 4000000000)",
                (),
            )
            .await?
            .unwrap_or(0))
    }

    #[action]
    async fn one(&self, ctx: &Ctx<Self>) -> Result<i64, ActionError> {
        Ok(ctx.db().query_first("SELECT 1", ()).await?.unwrap_or(0))
    }
}

async fn book_on(driver: impl Driver) -> (Registry, footlights::ActorHandle<Book>) {
    let registry = Registry::builder()
        .actor::<Book>()
        .driver(driver)
        .start()
        .await
        .unwrap();
    let book = registry.client().get_or_create::<Book>(["b"]);
    (registry, book)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_survives_sleep_and_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.db");
    {
        let (registry, book) = book_on(SqliteDriver::open(&path).await.unwrap()).await;
        assert_eq!(book.add("first".into()).await.unwrap(), 1);
        assert_eq!(book.add("second".into()).await.unwrap(), 2);
        // Past the page cache: pages are read back from storage.
        book.add_many(2000, "bulk".into()).await.unwrap();
        book.nap().await.unwrap();
        until_awake(&registry, 0).await;
        assert_eq!(book.count().await.unwrap(), 2002, "after sleep");
        registry.shutdown().await;
    }
    let (_registry, book) = book_on(SqliteDriver::open(&path).await.unwrap()).await;
    assert_eq!(book.count().await.unwrap(), 2002, "after a restart");
    assert_eq!(
        book.find("sec%".into()).await.unwrap(),
        vec![Note {
            id: 2,
            text: "second".into()
        }]
    );
    assert_eq!(
        book.check().await.unwrap(),
        ("ok".to_owned(), 2),
        "each migration ran once"
    );
}

/// The database follows the actor to PostgreSQL with no extra step: its pages are entries of
/// the actor's storage there too, read back after a sleep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_lives_on_postgres_too() {
    use footlights_storage_postgres::PostgresDriver;
    use footlights_storage_postgres::test_support::{TestPostgres, TestSchema};
    let server = TestPostgres::shared_async().await;
    let schema = TestSchema::new(server);
    let driver = PostgresDriver::builder(server.url())
        .schema(schema.name())
        .connect()
        .await
        .unwrap();
    let (registry, book) = book_on(driver).await;
    book.add("on postgres".into()).await.unwrap();
    book.add_many(1000, "bulk".into()).await.unwrap();
    book.nap().await.unwrap();
    until_awake(&registry, 0).await;
    assert_eq!(
        book.count().await.unwrap(),
        1001,
        "read back from PostgreSQL"
    );
    assert_eq!(book.find("on postgres".into()).await.unwrap()[0].id, 1);
    assert_eq!(book.check().await.unwrap(), ("ok".to_owned(), 2));
    registry.shutdown().await;
}

#[tokio::test]
async fn a_panic_drops_the_messages_pages_and_an_error_keeps_them() {
    let (_registry, book) = book_on(MemoryDriver::new()).await;
    book.add("kept".into()).await.unwrap();
    let err = book.add_then_panic("lost".into()).await.unwrap_err();
    assert_eq!(err.code(), "internal_error");
    assert_eq!(book.count().await.unwrap(), 1);
    assert!(book.find("lost".into()).await.unwrap().is_empty());
    assert_eq!(
        book.changes().await.unwrap(),
        1,
        "the state rolled back too"
    );
    // The connection works after the panic, and the text is free again.
    book.add("lost".into()).await.unwrap();
    book.add_then_panic_in_read("lost too".into())
        .await
        .unwrap_err();
    assert!(book.find("lost too".into()).await.unwrap().is_empty());
    assert_eq!(book.count().await.unwrap(), 2);

    // An action returning an error keeps its changes, as it keeps its state changes.
    let err = book.add_then_fail("failed".into()).await.unwrap_err();
    assert_eq!(err.code(), "refused");
    assert_eq!(book.find("failed".into()).await.unwrap().len(), 1);
    assert_eq!(book.changes().await.unwrap(), 3);
    assert_eq!(book.count().await.unwrap(), 3);

    // A transaction returning an error is rolled back.
    let err = book
        .add_in_failed_transaction("undone".into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "refused");
    assert!(book.find("undone".into()).await.unwrap().is_empty());

    // A transaction left open is rolled back, with a coded error.
    let err = book.leave_open("open".into()).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("db", "transaction_open"));
    assert!(book.find("open".into()).await.unwrap().is_empty());

    // A constraint violation is coded.
    let err = book.add("kept".into()).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("db", "constraint"));
    assert_eq!(book.count().await.unwrap(), 3);
    assert_eq!(book.check().await.unwrap().0, "ok");
}

#[tokio::test]
async fn limits_are_coded_errors() {
    let registry = Registry::builder().actor::<Tight>().start().await.unwrap();
    let tight = registry.client().get_or_create::<Tight>(["t"]);
    tight.blob(10_000).await.unwrap();
    let err = tight.blob(100_000).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("db", "too_large"), "{err}");
    tight.blob(10_000).await.unwrap();

    assert_eq!(tight.rows(10).await.unwrap(), 10);
    let err = tight.rows(11).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("db", "too_many_rows"));

    let err = tight.spin().await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("db", "statement_timeout"));
    assert_eq!(tight.rows(3).await.unwrap(), 3, "usable after a timeout");
}

/// An action that times out interrupts its statement: the connection is free at once, not
/// after the statement's own (long) limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_timeout_interrupts_its_statement() {
    let registry = Registry::builder()
        .actor::<Patient>()
        .start()
        .await
        .unwrap();
    let patient = registry.client().get_or_create::<Patient>(["p"]);
    assert_eq!(patient.one().await.unwrap(), 1);
    let err = patient.spin().await.unwrap_err();
    assert_eq!(err.code(), "action_timed_out");
    let next = tokio::time::timeout(Duration::from_secs(20), patient.one())
        .await
        .expect("the statement kept the connection");
    assert_eq!(next.unwrap(), 1);
}

#[tokio::test]
async fn destroying_the_actor_deletes_its_database() {
    let driver = MemoryDriver::new();
    let (registry, book) = book_on(driver.clone()).await;
    book.add("a".into()).await.unwrap();
    let id = book.resolve().await.unwrap();
    assert!(driver.kv_size(&id).await.unwrap() > 4096);
    book.destroy().await.unwrap();
    until_awake(&registry, 0).await;
    assert_eq!(driver.kv_size(&id).await.unwrap(), 0);
    let again = registry.client().get_or_create::<Book>(["b"]);
    assert_eq!(
        again.count().await.unwrap(),
        0,
        "a new actor, a new database"
    );
}

/// A driver whose commits wait while `hold` is set, telling `arrived` when one is waiting.
#[derive(Debug, Clone)]
struct Held {
    inner: MemoryDriver,
    hold: Arc<AtomicBool>,
    release: Arc<Notify>,
    arrived: mpsc::UnboundedSender<()>,
}

type R<T> = footlights_storage::Result<T>;

impl Driver for Held {
    fn actor<'a>(
        &'a self,
        id: &'a ActorId,
    ) -> BoxFuture<'a, R<Option<footlights_storage::ActorMeta>>> {
        self.inner.actor(id)
    }
    fn find_actor<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
    ) -> BoxFuture<'a, R<Option<footlights_storage::ActorMeta>>> {
        self.inner.find_actor(name, key)
    }
    fn list_actors<'a>(
        &'a self,
        name: &'a str,
        key_prefix: &'a ActorKey,
    ) -> BoxFuture<'a, R<Vec<footlights_storage::ActorMeta>>> {
        self.inner.list_actors(name, key_prefix)
    }
    fn load_state<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, R<Option<Vec<u8>>>> {
        self.inner.load_state(id)
    }
    fn load_alarms<'a>(
        &'a self,
        id: &'a ActorId,
    ) -> BoxFuture<'a, R<Vec<footlights_storage::Alarm>>> {
        self.inner.load_alarms(id)
    }
    fn all_alarms(&self) -> BoxFuture<'_, R<Vec<(ActorId, footlights_storage::Alarm)>>> {
        self.inner.all_alarms()
    }
    fn kv_get<'a>(&'a self, id: &'a ActorId, key: &'a [u8]) -> BoxFuture<'a, R<Option<Vec<u8>>>> {
        self.inner.kv_get(id, key)
    }
    fn kv_list<'a>(&'a self, id: &'a ActorId, range: &'a KvRange) -> BoxFuture<'a, R<KvEntries>> {
        self.inner.kv_list(id, range)
    }
    fn kv_size<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, R<u64>> {
        self.inner.kv_size(id)
    }
    fn commit_units(&self, units: Vec<Unit>) -> BoxFuture<'_, R<Vec<UnitOutcome>>> {
        Box::pin(async move {
            if self.hold.load(Ordering::SeqCst) {
                let released = self.release.notified();
                let _ = self.arrived.send(());
                released.await;
            }
            self.inner.commit_units(units).await
        })
    }
    fn delete_actor<'a>(&'a self, id: &'a ActorId) -> BoxFuture<'a, R<()>> {
        self.inner.delete_actor(id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_wait_for_database_writes_and_reads_see_them_before() {
    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    let held = Held {
        inner: MemoryDriver::new(),
        hold: Arc::new(AtomicBool::new(false)),
        release: Arc::new(Notify::new()),
        arrived,
    };
    let (_registry, book) = book_on(held.clone()).await;
    assert_eq!(book.count().await.unwrap(), 0);
    let id = book.resolve().await.unwrap();
    let all = KvRange::all();
    let stored = || held.inner.kv_list(&id, &all);
    let before = stored().await.unwrap();

    held.hold.store(true, Ordering::SeqCst);
    let writer = book.clone();
    let write = tokio::spawn(async move { writer.add("held".into()).await });
    arrivals.recv().await.unwrap();
    // The commit carrying the pages is held in the driver: nothing of it is stored yet.
    assert_eq!(stored().await.unwrap(), before);
    // A panic in the next message drops the connection and its page cache: the read after it
    // finds the held pages in the actor's own not-yet-durable writes, not in the driver.
    let panicker = book.clone();
    let panicked = tokio::spawn(async move { panicker.add_then_panic("gone".into()).await });
    let reader = book.clone();
    let read = tokio::spawn(async move { reader.find("held".into()).await });
    let teller = book.clone();
    let told = tokio::spawn(async move { teller.count_and_tell("held".into()).await });
    let wait = async {
        while SEEN.load(Ordering::SeqCst) < 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the count never ran");
    assert_eq!(
        SEEN.load(Ordering::SeqCst),
        1,
        "after the panic, the row is read from the actor's own unsettled pages"
    );
    assert!(!told.is_finished(), "its reply waits for the held commit");
    held.hold.store(false, Ordering::SeqCst);
    assert!(
        !write.is_finished(),
        "the reply left before its pages were durable"
    );
    held.release.notify_one();
    assert_eq!(write.await.unwrap().unwrap(), 1);
    assert_eq!(
        read.await.unwrap().unwrap().len(),
        1,
        "the next message saw the row"
    );
    assert_eq!(
        panicked.await.unwrap().unwrap_err().code(),
        "internal_error"
    );
    let after = stored().await.unwrap();
    assert_ne!(after, before, "the pages are stored");

    // The same from an action that only reads the state.
    held.hold.store(true, Ordering::SeqCst);
    let writer = book.clone();
    let write = tokio::spawn(async move { writer.add_from_read("quiet".into()).await });
    arrivals.recv().await.unwrap();
    assert_eq!(stored().await.unwrap(), after);
    held.hold.store(false, Ordering::SeqCst);
    assert!(
        !write.is_finished(),
        "the reply of a read action left before its pages were durable"
    );
    held.release.notify_one();
    assert_eq!(write.await.unwrap().unwrap(), 1);
    assert_eq!(book.count().await.unwrap(), 2);
}

/// The inspector's view: the tables with their row counts, a page of one table's rows, and a
/// coded error for a table the database does not have (a name is never put into SQL unless
/// the schema lists it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_lists_tables_and_pages_rows() {
    use footlights::inspect::InspectOptions;

    let (registry, book) = book_on(MemoryDriver::new()).await;
    book.add_many(5, "n".into()).await.unwrap();
    let id = book.resolve().await.unwrap();

    let view = registry
        .inspect(&id, InspectOptions::default())
        .await
        .unwrap();
    let db = view.db.expect("the book has a database");
    let notes = db.tables.iter().find(|t| t.name == "notes").unwrap();
    assert_eq!((notes.kind.as_str(), notes.rows), ("table", 5));
    assert!(db.rows.is_none(), "no table asked for");

    let mut options = InspectOptions::default();
    options.db_table = Some("notes".into());
    options.db_offset = 3;
    options.db_limit = 10;
    let page = registry
        .inspect(&id, options)
        .await
        .unwrap()
        .db
        .unwrap()
        .rows
        .unwrap();
    assert_eq!(page.columns, ["id", "text"]);
    assert_eq!(page.rows.len(), 2, "rows 4 and 5");
    assert_eq!(page.rows[0][0], footlights::Value::Int(4));
    assert!(!page.more);

    let mut options = InspectOptions::default();
    options.db_table = Some("notes\"; DROP TABLE notes; --".into());
    let err = registry.inspect(&id, options).await.unwrap_err();
    assert_eq!(err.code(), "no_such_table", "{err}");
    assert_eq!(book.count().await.unwrap(), 5, "the table is still there");
}
