//! Deferred answers: an action that waits must not stall its actor.

use std::time::Duration;

use footlights::ActorOptions;
use footlights::prelude::*;
use tokio::sync::oneshot;

use crate::support::{let_run, settle};

#[derive(Default, Serialize, Deserialize)]
pub struct Latch {
    released: u32,
    #[serde(skip)]
    waiters: Vec<oneshot::Sender<String>>,
}

#[footlights::actor]
impl Latch {
    /// Answers once `release` is called, without blocking the actor meanwhile.
    #[action]
    fn wait_for_signal(&mut self) -> Deferred<String> {
        let (tx, rx) = oneshot::channel();
        self.waiters.push(tx);
        Deferred::new(async move { rx.await.map_err(|_| ActionError::internal("latch dropped")) })
    }

    #[action]
    fn release(&mut self, value: String) -> usize {
        self.released += 1;
        let n = self.waiters.len();
        for w in self.waiters.drain(..) {
            let _ = w.send(value.clone());
        }
        n
    }

    #[action]
    fn waiting(&self) -> usize {
        self.waiters.len()
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(5);
        o.action_timeout = Duration::from_secs(600);
        o
    }
}

#[tokio::test]
async fn a_waiting_action_is_released_by_a_later_action_on_the_same_connection() {
    let registry = Registry::builder().actor::<Latch>().start().await.unwrap();
    let conn = registry
        .client()
        .get_or_create::<Latch>(["l"])
        .connect()
        .await
        .unwrap();
    // join! polls the wait first, so its request is sent before the release.
    let (waited, released) = tokio::join!(conn.wait_for_signal(), conn.release("go".into()));
    assert_eq!(
        released.unwrap(),
        1,
        "the wait reached the actor first and did not block it"
    );
    assert_eq!(waited.unwrap(), "go");
}

#[tokio::test(start_paused = true)]
async fn an_actor_with_a_pending_wait_does_not_sleep() {
    let registry = Registry::builder().actor::<Latch>().start().await.unwrap();
    let latch = registry.client().get_or_create::<Latch>(["l"]);
    let waiter = tokio::spawn({
        let latch = latch.clone();
        async move { latch.wait_for_signal().await }
    });
    // Stateless call from the waiter is in flight once the actor reports it.
    settle("the wait reaching the actor", || async {
        latch.waiting().await.unwrap() == 1
    })
    .await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let_run().await;
    assert_eq!(registry.awake_count(), 1, "slept with a wait pending");
    assert_eq!(latch.release("late".into()).await.unwrap(), 1);
    assert_eq!(waiter.await.unwrap().unwrap(), "late");
}
