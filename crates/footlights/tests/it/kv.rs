//! The actor's key-value store through the public API: own writes, durability behind the
//! output gate, panics, limits, sleep, restart, destroy, paging, fencing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use footlights::prelude::*;
use footlights::storage::{Driver, MemoryDriver, SqliteDriver};
use footlights::{ActorId, ActorKey, ActorOptions, Kv};
use footlights_storage::{Unit, UnitOutcome};
use futures::TryStreamExt;
use futures::future::BoxFuture;
use tokio::sync::{Notify, mpsc};

use crate::support::until_awake;

/// Waits (bounded) until no actor is awake, on a runtime whose storage runs on other threads.
async fn until_asleep(registry: &Registry) {
    let wait = async {
        while registry.awake_count() > 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), wait)
        .await
        .expect("the actor never went to sleep");
}

/// Keeps notes in its store; the state counts the writes that reached it.
#[derive(Default, Serialize, Deserialize)]
pub struct Notes {
    writes: u64,
}

fn small_limits() -> ActorOptions {
    let mut o = ActorOptions::default();
    o.kv_max_bytes = 4_000;
    o.kv_max_message_bytes = 2_500;
    o
}

#[footlights::actor]
impl Notes {
    fn options() -> ActorOptions {
        small_limits()
    }

    #[action]
    async fn put(
        &mut self,
        ctx: &Ctx<Self>,
        key: String,
        value: String,
    ) -> Result<Option<String>, ActionError> {
        self.writes += 1;
        ctx.kv().put(&key, &value).await?;
        // Read back at once: seen before it is durable.
        ctx.kv().get(&key).await
    }

    /// Writes only to the store: the snapshot does not change.
    #[action]
    async fn put_only(
        &self,
        ctx: &Ctx<Self>,
        key: String,
        value: String,
    ) -> Result<(), ActionError> {
        ctx.kv().put(&key, &value).await
    }

    #[action]
    async fn get(&self, ctx: &Ctx<Self>, key: String) -> Result<Option<String>, ActionError> {
        ctx.kv().get(&key).await
    }

    #[action]
    async fn put_bytes(
        &self,
        ctx: &Ctx<Self>,
        key_len: u64,
        value_len: u64,
    ) -> Result<(), ActionError> {
        let key = vec![b'k'; key_len as usize];
        ctx.kv()
            .put_bytes(&key, vec![7u8; value_len as usize])
            .await
    }

    #[action]
    async fn put_then_panic(&mut self, ctx: &Ctx<Self>, key: String) -> Result<(), ActionError> {
        self.writes += 1;
        ctx.kv().put(&key, "from a panicking action").await?;
        panic!("after a put");
    }

    /// The same from an action that takes the state read-only.
    #[action]
    async fn read_put_then_panic(&self, ctx: &Ctx<Self>, key: String) -> Result<(), ActionError> {
        ctx.kv()
            .put(&key, "from a panicking read-only action")
            .await?;
        panic!("after a put");
    }

    #[action]
    async fn delete_prefix(&self, ctx: &Ctx<Self>, prefix: String) -> Result<(), ActionError> {
        ctx.kv()
            .delete_range(KvRange::prefix(prefix.as_bytes()))
            .await
    }

    #[action]
    async fn keys(
        &self,
        ctx: &Ctx<Self>,
        prefix: String,
        reverse: bool,
        limit: u64,
    ) -> Result<(Vec<String>, bool), ActionError> {
        let mut range = KvRange::prefix(prefix.as_bytes()).limit(limit as usize);
        if reverse {
            range = range.reverse();
        }
        let page = ctx.kv().list(range).await?;
        let keys = page
            .entries
            .iter()
            .map(|e| e.key_str().unwrap_or("?").to_owned())
            .collect();
        Ok((keys, page.more))
    }

    #[action]
    fn writes(&self) -> u64 {
        self.writes
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

/// A log: numbered entries, paged through.
#[derive(Default, Serialize, Deserialize)]
pub struct Log {
    last: u64,
}

#[footlights::actor]
impl Log {
    #[action]
    async fn append(&mut self, ctx: &Ctx<Self>, n: u64) -> Result<u64, ActionError> {
        let kv: Kv<'_> = ctx.kv();
        let mut entries = Vec::new();
        for _ in 0..n {
            self.last += 1;
            entries.push((KvKey::new("e/").u64(self.last), self.last));
        }
        kv.put_many(entries).await?;
        Ok(self.last)
    }

    /// Walks every page of `size` entries, newest first, and returns the numbers seen.
    #[action]
    async fn walk_back(&self, ctx: &Ctx<Self>, size: u64) -> Result<Vec<u64>, ActionError> {
        let mut range = KvRange::prefix(b"e/").reverse().limit(size as usize);
        let mut seen = Vec::new();
        loop {
            let page = ctx.kv().list(range.clone()).await?;
            for e in &page.entries {
                seen.push(e.value::<u64>()?);
            }
            match page.next_range(&range) {
                Some(next) => range = next,
                None => return Ok(seen),
            }
        }
    }

    #[action]
    async fn sum(&self, ctx: &Ctx<Self>) -> Result<(u64, u64), ActionError> {
        let entries: Vec<KvEntry> = ctx
            .kv()
            .stream(KvRange::prefix(b"e/"))
            .try_collect()
            .await?;
        let mut sum = 0;
        for e in &entries {
            sum += e.value::<u64>()?;
        }
        Ok((entries.len() as u64, sum))
    }

    /// Deletes entries below `n` and lists what is left in the same message.
    #[action]
    async fn trim_below(&self, ctx: &Ctx<Self>, n: u64) -> Result<Vec<u64>, ActionError> {
        let end = KvKey::new("e/").u64(n);
        ctx.kv()
            .delete_range(KvRange::between(b"e/", Some(end.as_bytes())))
            .await?;
        let page = ctx.kv().list(KvRange::prefix(b"e/")).await?;
        page.entries.iter().map(|e| e.value()).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_sleep_and_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    {
        let registry = Registry::builder()
            .actor::<Notes>()
            .driver(SqliteDriver::open(&path).await.unwrap())
            .start()
            .await
            .unwrap();
        let notes = registry.client().get_or_create::<Notes>(["n"]);
        assert_eq!(
            notes.put("a".into(), "1".into()).await.unwrap().as_deref(),
            Some("1")
        );
        notes.put_only("b".into(), "2".into()).await.unwrap();
        notes.nap().await.unwrap();
        until_asleep(&registry).await;
        assert_eq!(
            notes.get("b".into()).await.unwrap().as_deref(),
            Some("2"),
            "after sleep"
        );
        registry.shutdown().await;
    }
    let registry = Registry::builder()
        .actor::<Notes>()
        .driver(SqliteDriver::open(&path).await.unwrap())
        .start()
        .await
        .unwrap();
    let notes = registry.client().get::<Notes>(["n"]);
    assert_eq!(notes.get("a".into()).await.unwrap().as_deref(), Some("1"));
    assert_eq!(notes.get("b".into()).await.unwrap().as_deref(), Some("2"));
    assert_eq!(notes.get("c".into()).await.unwrap(), None);
}

/// A registry on `driver` and the `Notes` actor under key `n`.
async fn notes_on(driver: impl Driver) -> (Registry, footlights::ActorHandle<Notes>) {
    let registry = Registry::builder()
        .actor::<Notes>()
        .driver(driver)
        .start()
        .await
        .unwrap();
    let notes = registry.client().get_or_create::<Notes>(["n"]);
    (registry, notes)
}

#[tokio::test]
async fn a_panicking_action_leaves_no_store_write() {
    let registry = Registry::builder().actor::<Notes>().start().await.unwrap();
    let notes = registry.client().get_or_create::<Notes>(["n"]);
    notes.put("k".into(), "before".into()).await.unwrap();
    let err = notes.put_then_panic("k".into()).await.unwrap_err();
    assert_eq!(err.code(), "internal_error");
    notes.put_then_panic("fresh".into()).await.unwrap_err();
    assert_eq!(
        notes.get("k".into()).await.unwrap().as_deref(),
        Some("before")
    );
    assert_eq!(notes.get("fresh".into()).await.unwrap(), None);
    assert_eq!(
        notes.writes().await.unwrap(),
        1,
        "the state rolled back too"
    );
    // An action that only reads the state drops its store writes when it panics, too.
    let err = notes.read_put_then_panic("k".into()).await.unwrap_err();
    assert_eq!(err.code(), "internal_error");
    notes.read_put_then_panic("other".into()).await.unwrap_err();
    assert_eq!(
        notes.get("k".into()).await.unwrap().as_deref(),
        Some("before")
    );
    assert_eq!(notes.get("other".into()).await.unwrap(), None);
}

#[tokio::test]
async fn limits_are_coded_errors() {
    let registry = Registry::builder().actor::<Notes>().start().await.unwrap();
    let notes = registry.client().get_or_create::<Notes>(["n"]);
    let code = |r: Result<(), ActionError>| r.unwrap_err().code().to_owned();
    assert_eq!(code(notes.put_bytes(2049, 1).await), "key_too_large");
    notes.put_bytes(2048, 1).await.unwrap();
    assert_eq!(
        code(notes.put_bytes(1, 128 * 1024 + 1).await),
        "value_too_large"
    );
    // 2,500 bytes a message; 4,000 in all (the 2,048-byte key above counts).
    assert_eq!(code(notes.put_bytes(1, 2_600).await), "message_too_large");
    notes.put_bytes(2, 1_000).await.unwrap();
    assert_eq!(code(notes.put_bytes(3, 1_000).await), "actor_too_large");
    let err = notes.put_bytes(3, 1_000).await.unwrap_err();
    assert_eq!(err.group(), "kv");
    // Overwriting the same key many times stays within the limit: the size is recounted
    // when the estimate reaches it.
    for _ in 0..20 {
        notes.put_bytes(2, 900).await.unwrap();
    }
    notes.delete_prefix("kk".into()).await.unwrap();
    notes.put_bytes(3, 1_000).await.unwrap();
}

#[tokio::test]
async fn destroying_the_actor_deletes_its_store() {
    let driver = MemoryDriver::new();
    let (registry, notes) = notes_on(driver.clone()).await;
    notes.put("k".into(), "v".into()).await.unwrap();
    let id = notes.resolve().await.unwrap();
    assert!(driver.kv_size(&id).await.unwrap() > 0);
    notes.destroy().await.unwrap();
    until_awake(&registry, 0).await;
    assert_eq!(driver.kv_size(&id).await.unwrap(), 0);
    assert!(
        driver
            .kv_list(&id, &KvRange::all())
            .await
            .unwrap()
            .is_empty()
    );
    let again = registry.client().get_or_create::<Notes>(["n"]);
    assert_eq!(
        again.get("k".into()).await.unwrap(),
        None,
        "a new actor under the same key"
    );
}

#[tokio::test]
async fn pages_and_streams_walk_everything_in_order() {
    let registry = Registry::builder().actor::<Log>().start().await.unwrap();
    let log = registry.client().get_or_create::<Log>(["l"]);
    for _ in 0..5 {
        log.append(200).await.unwrap();
    }
    let back = log.walk_back(64).await.unwrap();
    assert_eq!(back, (1..=1000).rev().collect::<Vec<u64>>());
    assert_eq!(log.sum().await.unwrap(), (1000, 1000 * 1001 / 2));
    let left = log.trim_below(990).await.unwrap();
    assert_eq!(
        left,
        (990..=1000).collect::<Vec<u64>>(),
        "a range delete seen by the same message"
    );
    assert_eq!(log.sum().await.unwrap(), (11, (990..=1000).sum()));
}

/// A driver whose commits wait while `hold` is set, telling `arrived` when one is waiting.
#[derive(Debug, Clone)]
struct Held {
    inner: MemoryDriver,
    hold: Arc<AtomicBool>,
    release: Arc<Notify>,
    arrived: mpsc::UnboundedSender<()>,
}

impl Driver for Held {
    fn actor<'a>(
        &'a self,
        id: &'a ActorId,
    ) -> BoxFuture<'a, footlights_storage::Result<Option<footlights_storage::ActorMeta>>> {
        self.inner.actor(id)
    }
    fn find_actor<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
    ) -> BoxFuture<'a, footlights_storage::Result<Option<footlights_storage::ActorMeta>>> {
        self.inner.find_actor(name, key)
    }
    crate::support::forward_driver_reads!(inner);
    fn commit_units(
        &self,
        units: Vec<Unit>,
    ) -> BoxFuture<'_, footlights_storage::Result<Vec<UnitOutcome>>> {
        Box::pin(async move {
            if self.hold.load(Ordering::SeqCst) {
                let released = self.release.notified();
                let _ = self.arrived.send(());
                released.await;
            }
            self.inner.commit_units(units).await
        })
    }
    fn delete_actor<'a>(
        &'a self,
        id: &'a ActorId,
    ) -> BoxFuture<'a, footlights_storage::Result<()>> {
        self.inner.delete_actor(id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_wait_for_store_writes_and_reads_see_them_before() {
    let (arrived, mut arrivals) = mpsc::unbounded_channel();
    let held = Held {
        inner: MemoryDriver::new(),
        hold: Arc::new(AtomicBool::new(false)),
        release: Arc::new(Notify::new()),
        arrived,
    };
    let registry = Registry::builder()
        .actor::<Notes>()
        .driver(held.clone())
        .start()
        .await
        .unwrap();
    let notes = registry.client().get_or_create::<Notes>(["n"]);
    assert_eq!(notes.writes().await.unwrap(), 0);

    held.hold.store(true, Ordering::SeqCst);
    let writer = notes.clone();
    let write = tokio::spawn(async move { writer.put_only("k".into(), "v".into()).await });
    arrivals.recv().await.unwrap();
    // The commit carrying the write is held in the driver: nothing of it is stored yet.
    let id = notes.resolve().await.unwrap();
    assert_eq!(held.inner.kv_size(&id).await.unwrap(), 0);
    let reader = notes.clone();
    let read = tokio::spawn(async move { reader.get("k".into()).await });
    held.hold.store(false, Ordering::SeqCst);
    assert!(
        !write.is_finished(),
        "the reply left before its write was durable"
    );
    held.release.notify_one();
    write.await.unwrap().unwrap();
    assert_eq!(read.await.unwrap().unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn a_stale_instance_is_fenced_and_its_callers_get_a_retryable_error() {
    let driver = MemoryDriver::new();
    let (registry, notes) = notes_on(driver.clone()).await;
    notes.put("a".into(), "1".into()).await.unwrap();
    let id = notes.resolve().await.unwrap();
    // Another instance of the same actor starts elsewhere: the generation moves on.
    driver
        .commit(vec![footlights_storage::Write::BumpGeneration {
            actor: id.clone(),
        }])
        .await
        .unwrap();
    let err = notes.put("b".into(), "2".into()).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "restarting"), "{err}");
    until_awake(&registry, 0).await;
    // The refused write left no trace; the actor starts again from what is stored.
    assert_eq!(notes.get("b".into()).await.unwrap(), None);
    assert_eq!(notes.get("a".into()).await.unwrap().as_deref(), Some("1"));
    assert_eq!(notes.writes().await.unwrap(), 1);
    notes.put("c".into(), "3".into()).await.unwrap();
    assert_eq!(notes.get("c".into()).await.unwrap().as_deref(), Some("3"));
}

/// A state that can be made large.
#[derive(Default, Serialize, Deserialize)]
pub struct Blob {
    bytes: Vec<u8>,
}

#[footlights::actor]
impl Blob {
    #[action]
    fn resize(&mut self, len: u64) -> u64 {
        self.bytes = vec![1; len as usize];
        len
    }
}

/// Collects what the log writes.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_snapshot_past_one_mib_is_warned_about_once() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // A current-thread runtime: the actor runs on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let registry = Registry::builder().actor::<Blob>().start().await.unwrap();
    let blob = registry.client().get_or_create::<Blob>(["b"]);
    let warnings = || {
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        text.matches("passed 1 MiB").count()
    };
    blob.resize(900 * 1024).await.unwrap();
    assert_eq!(warnings(), 0, "under 1 MiB");
    blob.resize(2 << 20).await.unwrap();
    assert_eq!(warnings(), 1);
    blob.resize(3 << 20).await.unwrap();
    blob.resize(10).await.unwrap();
    blob.resize(2 << 20).await.unwrap();
    assert_eq!(warnings(), 1, "once per actor type");
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("ctx.kv()"),
        "the warning points at the store: {text}"
    );
}

#[tokio::test]
async fn an_operator_destroys_a_sleeping_actor_with_its_store() {
    let driver = MemoryDriver::new();
    let (registry, notes) = notes_on(driver.clone()).await;
    notes.put("k".into(), "v".into()).await.unwrap();
    let id = notes.resolve().await.unwrap();
    notes.nap().await.unwrap();
    until_awake(&registry, 0).await;
    assert!(registry.destroy(&id).await.unwrap(), "it existed");
    assert!(driver.actor(&id).await.unwrap().is_none());
    assert_eq!(driver.kv_size(&id).await.unwrap(), 0);
    assert!(!registry.destroy(&id).await.unwrap(), "already gone");
    let err = registry
        .client()
        .get::<Notes>(["n"])
        .get("k".into())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}
