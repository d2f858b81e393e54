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

/// Inside `impl Driver for T`: the reads of actors' data, alarms and stores, passed on to
/// `self.$inner` unchanged. For test drivers that wrap a real one to count or hold some calls.
macro_rules! forward_driver_reads {
    ($inner:ident) => {
        fn list_actors<'a>(
            &'a self,
            name: &'a str,
            key_prefix: &'a footlights::ActorKey,
        ) -> futures::future::BoxFuture<
            'a,
            footlights_storage::Result<Vec<footlights_storage::ActorMeta>>,
        > {
            self.$inner.list_actors(name, key_prefix)
        }
        fn load_state<'a>(
            &'a self,
            id: &'a footlights::ActorId,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<Option<Vec<u8>>>> {
            self.$inner.load_state(id)
        }
        fn load_alarms<'a>(
            &'a self,
            id: &'a footlights::ActorId,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<Vec<footlights_storage::Alarm>>>
        {
            self.$inner.load_alarms(id)
        }
        fn all_alarms(
            &self,
        ) -> futures::future::BoxFuture<
            '_,
            footlights_storage::Result<Vec<(footlights::ActorId, footlights_storage::Alarm)>>,
        > {
            self.$inner.all_alarms()
        }
        fn kv_get<'a>(
            &'a self,
            id: &'a footlights::ActorId,
            key: &'a [u8],
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<Option<Vec<u8>>>> {
            self.$inner.kv_get(id, key)
        }
        fn kv_list<'a>(
            &'a self,
            id: &'a footlights::ActorId,
            range: &'a footlights_storage::KvRange,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<footlights_storage::KvEntries>>
        {
            self.$inner.kv_list(id, range)
        }
        fn kv_size<'a>(
            &'a self,
            id: &'a footlights::ActorId,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<u64>> {
            self.$inner.kv_size(id)
        }
    };
}
pub(crate) use forward_driver_reads;
