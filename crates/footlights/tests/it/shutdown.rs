//! A shutdown (what a server runs when it stops: `Registry::shutdown`) waits for the tasks of
//! `ctx.wait_until`, at most the run grace, whether the actor is awake or already on its way
//! to sleep.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use footlights::prelude::*;
use footlights::{ActorOptions, Registry};
use tokio::sync::Notify;
use tokio::time::Instant;

/// One slot per test (the actor's key picks it), so the tests can run side by side.
const SLOTS: usize = 3;

/// Set by a task once its work is done.
static WROTE: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
/// Set when a task is dropped before it finished.
static DROPPED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
/// Notified by the sleep hook.
static SLEEPING: LazyLock<[Notify; SLOTS]> = LazyLock::new(Default::default);

const GRACE: Duration = Duration::from_secs(5);

/// Sets its slot of [`DROPPED`] when dropped.
struct OnDrop(usize);

impl Drop for OnDrop {
    fn drop(&mut self) {
        DROPPED[self.0].store(true, Ordering::SeqCst);
    }
}

#[derive(Default, Serialize, Deserialize)]
pub struct Lingerer {}

/// The slot of the actor's key (`"0"`, `"1"`, …).
fn slot(ctx: &Ctx<Lingerer>) -> usize {
    ctx.key().to_string().parse().unwrap()
}

#[footlights::actor]
impl Lingerer {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.run_grace = GRACE;
        o
    }

    async fn on_sleep(&mut self, ctx: &Ctx<Self>) {
        SLEEPING[slot(ctx)].notify_one();
    }

    /// Starts a task that does its work after `millis` of simulated time (never, without);
    /// with `sleep`, the actor goes to sleep at once.
    #[action]
    fn linger(&self, ctx: &Ctx<Self>, millis: Option<u64>, sleep: bool) {
        let slot = slot(ctx);
        ctx.wait_until(async move {
            let guard = OnDrop(slot);
            match millis {
                Some(millis) => tokio::time::sleep(Duration::from_millis(millis)).await,
                None => std::future::pending().await,
            }
            WROTE[slot].store(true, Ordering::SeqCst);
            std::mem::forget(guard);
        });
        if sleep {
            ctx.sleep();
        }
    }
}

async fn registry() -> Registry {
    Registry::builder()
        .actor::<Lingerer>()
        .start()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_waits_for_the_tasks_of_an_awake_actor() {
    let registry = registry().await;
    let actor = registry.client().get_or_create::<Lingerer>(["0"]);
    actor.linger(Some(2_000), false).await.unwrap();
    registry.shutdown().await;
    assert!(WROTE[0].load(Ordering::SeqCst), "the task finished first");
    assert!(!DROPPED[0].load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_waits_for_the_tasks_of_an_actor_going_to_sleep() {
    let registry = registry().await;
    let actor = registry.client().get_or_create::<Lingerer>(["1"]);
    actor.linger(Some(2_000), true).await.unwrap();
    // The actor is stopping: its sleep hook ran and it now waits for the task.
    tokio::time::timeout(Duration::from_secs(1), SLEEPING[1].notified())
        .await
        .expect("the actor went to sleep");
    assert!(!WROTE[1].load(Ordering::SeqCst));
    registry.shutdown().await;
    assert!(WROTE[1].load(Ordering::SeqCst), "the task finished first");
    assert!(!DROPPED[1].load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_task_that_never_settles_is_dropped_at_the_grace() {
    let registry = registry().await;
    let actor = registry.client().get_or_create::<Lingerer>(["2"]);
    actor.linger(None, true).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), SLEEPING[2].notified())
        .await
        .expect("the actor went to sleep");
    let start = Instant::now();
    registry.shutdown().await;
    let took = start.elapsed();
    assert!(DROPPED[2].load(Ordering::SeqCst), "the task was dropped");
    assert!(!WROTE[2].load(Ordering::SeqCst));
    assert!(
        took <= GRACE + Duration::from_secs(1),
        "cut off at the grace: {took:?}"
    );
    assert!(
        took >= GRACE / 2,
        "the shutdown waited for the task: {took:?}"
    );
}
