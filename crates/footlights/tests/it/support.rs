//! Helpers shared by the runtime tests. None of them waits on the wall clock: they let the
//! runtime run (yielding) for a bounded number of turns.

use std::future::Future;

/// Lets the runtime run until `check` holds; panics naming `what` after a bound.
pub(crate) async fn settle<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..10_000 {
        if check().await {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{what} never happened");
}

/// Gives every ready task a chance to run, before asserting that something did *not* happen.
pub(crate) async fn let_run() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

/// Lets the runtime run until the registry has `n` awake actors.
pub(crate) async fn until_awake(registry: &footlights::Registry, n: usize) {
    settle(&format!("{n} awake actors"), || async {
        registry.awake_count() == n
    })
    .await;
}
