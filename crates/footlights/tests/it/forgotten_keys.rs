//! Calls by a key the registry no longer remembers: the lookup reads the sleeping actor whole,
//! in one read the instance then starts from, and never from a read older than the actor's
//! last writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use footlights::prelude::*;
use footlights::storage::{Driver, MemoryDriver};
use footlights::{ActorId, ActorKey};
use footlights_storage::{LoadedActor, Unit, UnitOutcome};
use futures::future::BoxFuture;
use tokio::sync::{Notify, mpsc};

#[derive(Default, Serialize, Deserialize)]
pub struct Tally {
    count: i64,
}

#[footlights::actor]
impl Tally {
    #[action]
    fn add(&mut self, n: i64) -> i64 {
        self.count += n;
        self.count
    }

    #[action]
    fn count(&self) -> i64 {
        self.count
    }

    #[action]
    fn nap(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }
}

/// A [`MemoryDriver`] that counts the reads of a start and, while `hold` is set, holds a key
/// lookup's answer (already read) until released, telling `arrived` when one is held.
#[derive(Debug, Clone)]
struct Reads {
    inner: MemoryDriver,
    find_actor: Arc<AtomicUsize>,
    load_actor: Arc<AtomicUsize>,
    load_actor_by_key: Arc<AtomicUsize>,
    hold: Arc<AtomicBool>,
    release: Arc<Notify>,
    arrived: mpsc::UnboundedSender<()>,
}

impl Reads {
    fn new() -> (Self, mpsc::UnboundedReceiver<()>) {
        let (arrived, arrivals) = mpsc::unbounded_channel();
        let reads = Reads {
            inner: MemoryDriver::new(),
            find_actor: Default::default(),
            load_actor: Default::default(),
            load_actor_by_key: Default::default(),
            hold: Default::default(),
            release: Default::default(),
            arrived,
        };
        (reads, arrivals)
    }

    /// (find_actor, load_actor, load_actor_by_key) calls so far, and back to zero.
    fn take_counts(&self) -> (usize, usize, usize) {
        (
            self.find_actor.swap(0, Ordering::SeqCst),
            self.load_actor.swap(0, Ordering::SeqCst),
            self.load_actor_by_key.swap(0, Ordering::SeqCst),
        )
    }
}

impl Driver for Reads {
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
        self.find_actor.fetch_add(1, Ordering::SeqCst);
        self.inner.find_actor(name, key)
    }
    fn load_actor<'a>(
        &'a self,
        id: &'a ActorId,
    ) -> BoxFuture<'a, footlights_storage::Result<Option<LoadedActor>>> {
        self.load_actor.fetch_add(1, Ordering::SeqCst);
        self.inner.load_actor(id)
    }
    fn load_actor_by_key<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
    ) -> BoxFuture<'a, footlights_storage::Result<Option<LoadedActor>>> {
        self.load_actor_by_key.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let read = self.inner.load_actor_by_key(name, key).await;
            if self.hold.swap(false, Ordering::SeqCst) {
                let released = self.release.notified();
                let _ = self.arrived.send(());
                released.await;
            }
            read
        })
    }
    crate::support::forward_driver_reads!(inner);
    fn commit_units(
        &self,
        units: Vec<Unit>,
    ) -> BoxFuture<'_, footlights_storage::Result<Vec<UnitOutcome>>> {
        self.inner.commit_units(units)
    }
    fn delete_actor<'a>(
        &'a self,
        id: &'a ActorId,
    ) -> BoxFuture<'a, footlights_storage::Result<()>> {
        self.inner.delete_actor(id)
    }
}

/// A registry that remembers no key, so every call by key looks its key up.
async fn forgetful(reads: &Reads) -> Registry {
    Registry::builder()
        .actor::<Tally>()
        .driver(reads.clone())
        .remembered_actors(0)
        .start()
        .await
        .unwrap()
}

/// Waits (bounded) until no actor is awake.
async fn until_asleep(registry: &Registry) {
    let wait = async {
        while registry.awake_count() > 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the actor never went to sleep");
}

/// Bounds a wait of the test.
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} never happened"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_by_a_forgotten_key_wakes_the_actor_from_one_read() {
    let (reads, _arrivals) = Reads::new();
    let registry = forgetful(&reads).await;
    let client = registry.client();
    assert_eq!(client.get_or_create::<Tally>("a").add(5).await.unwrap(), 5);
    client.get::<Tally>("a").nap().await.unwrap();
    until_asleep(&registry).await;
    reads.take_counts();

    assert_eq!(client.get::<Tally>("a").count().await.unwrap(), 5);
    assert_eq!(
        reads.take_counts(),
        (0, 0, 1),
        "(find_actor, load_actor, load_actor_by_key): the lookup's read is the start's"
    );
    // Awake now, its key is remembered: the running instance answers, nothing is read.
    assert_eq!(client.get::<Tally>("a").add(1).await.unwrap(), 6);
    assert_eq!(reads.take_counts(), (0, 0, 0));
    // A get-or-create of a taken key reads it the same way.
    client.get::<Tally>("a").nap().await.unwrap();
    until_asleep(&registry).await;
    reads.take_counts();
    assert_eq!(client.get_or_create::<Tally>("a").count().await.unwrap(), 6);
    assert_eq!(reads.take_counts(), (0, 0, 1));
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_read_before_the_actor_last_wrote_is_not_started_from() {
    let (reads, mut arrivals) = Reads::new();
    let registry = forgetful(&reads).await;
    let client = registry.client();
    let id = client.get_or_create::<Tally>("a").resolve().await.unwrap();
    let by_id = client.get_for_id::<Tally>(id.clone());
    assert_eq!(by_id.add(5).await.unwrap(), 5);
    by_id.nap().await.unwrap();
    until_asleep(&registry).await;

    // A lookup reads the sleeping actor (count 5) and is held before it answers...
    reads.hold.store(true, Ordering::SeqCst);
    let lookup = tokio::spawn({
        let client = client.clone();
        async move { client.get::<Tally>("a").resolve().await }
    });
    bounded("the held lookup", arrivals.recv()).await;
    // ...while the actor wakes by id, writes and goes back to sleep.
    assert_eq!(by_id.add(1).await.unwrap(), 6);
    by_id.nap().await.unwrap();
    until_asleep(&registry).await;
    reads.release.notify_one();
    let looked_up = bounded("the lookup's answer", lookup).await.unwrap();
    assert_eq!(looked_up.unwrap(), id);

    // The next instance reads the store again rather than starting from the older read.
    reads.take_counts();
    assert_eq!(by_id.count().await.unwrap(), 6);
    assert_eq!(reads.take_counts(), (0, 1, 0), "a fresh load_actor");
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_read_before_the_actor_was_destroyed_does_not_bring_it_back() {
    let (reads, mut arrivals) = Reads::new();
    let registry = forgetful(&reads).await;
    let client = registry.client();
    let id = client.get_or_create::<Tally>("a").resolve().await.unwrap();
    assert_eq!(client.get::<Tally>("a").add(5).await.unwrap(), 5);
    client.get::<Tally>("a").nap().await.unwrap();
    until_asleep(&registry).await;

    reads.hold.store(true, Ordering::SeqCst);
    let lookup = tokio::spawn({
        let client = client.clone();
        async move { client.get::<Tally>("a").resolve().await }
    });
    bounded("the held lookup", arrivals.recv()).await;
    assert!(registry.destroy(&id).await.unwrap(), "destroyed");
    until_asleep(&registry).await;
    reads.release.notify_one();
    // The lookup answers with what it read, the id of the actor then.
    assert_eq!(
        bounded("the lookup's answer", lookup)
            .await
            .unwrap()
            .unwrap(),
        id
    );

    let err = client.get_for_id::<Tally>(id).count().await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "not_found"));
    let err = client.get::<Tally>("a").count().await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "not_found"));
    registry.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_of_awake_actors_stay_remembered_past_the_bound() {
    let (reads, _arrivals) = Reads::new();
    let registry = forgetful(&reads).await;
    let client = registry.client();
    let keys = ["a", "b", "c"];
    for k in keys {
        assert_eq!(client.get_or_create::<Tally>(k).add(1).await.unwrap(), 1);
        assert_eq!(client.get::<Tally>(k).count().await.unwrap(), 1);
    }
    reads.take_counts();
    for k in keys {
        assert_eq!(client.get::<Tally>(k).count().await.unwrap(), 1);
    }
    assert_eq!(
        reads.take_counts(),
        (0, 0, 0),
        "the awake actors' keys are remembered, though the registry remembers none asleep"
    );
    for k in keys {
        client.get::<Tally>(k).nap().await.unwrap();
    }
    until_asleep(&registry).await;
    reads.take_counts();
    assert_eq!(client.get::<Tally>("a").count().await.unwrap(), 1);
    assert_eq!(
        reads.take_counts(),
        (0, 0, 1),
        "asleep, their keys are forgotten down to the bound"
    );
    registry.shutdown().await;
}
