//! Heap held per idle awake actor, counted by a global allocator.
//!
//! Allocation sizes are deterministic for a given build, so the bound below is a real guard:
//! it fails if an awake actor starts holding much more memory than it does now. The figure is
//! the live heap (bytes allocated and not yet freed) per actor after 2,000 actors were created
//! and answered one action each, with the in-memory driver's own share subtracted.

// Helpers outside `#[test]` functions may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use footlights_client::Target;
use footlights_core::{
    ActionError, ActionTable, Actor, ActorId, ActorKey, ConnRequest, Conns, Ctx, Handler, Registry,
    Value,
};
use footlights_protocol::{Action, ActorSpec};
use footlights_storage::{ActorMeta, Driver, MemoryDriver, Write};
use serde::{Deserialize, Serialize};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not freed so far.
fn live() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    count: i64,
}

struct Increment(i64);

impl Action for Increment {
    const NAME: &'static str = "increment";
    type Output = i64;

    fn into_args(self) -> Result<Vec<Value>, ActionError> {
        Ok(vec![Value::Int(self.0)])
    }

    fn from_args(args: Vec<Value>) -> Result<Self, ActionError> {
        let first = args.into_iter().next().unwrap_or_default();
        Ok(Increment(first.deserialize_into()?))
    }
}

impl ActorSpec for Counter {
    const NAME: &'static str = "counter";
    type Input = ();
}

impl Actor for Counter {
    type Conn = Conns;

    async fn create_state(_: &Ctx<Self>, (): &()) -> Result<Self, ActionError> {
        Ok(Counter::default())
    }

    fn actions(table: &mut ActionTable<Self>) {
        table.write::<Increment>();
    }
}

impl Handler<Increment> for Counter {
    async fn handle(&mut self, _: &Ctx<Self>, msg: Increment) -> Result<i64, ActionError> {
        self.count += msg.0;
        Ok(self.count)
    }
}

const N: usize = 2000;

fn key(i: usize) -> ActorKey {
    ActorKey::from(format!("k-{i:05}").as_str())
}

/// Live heap per actor the in-memory driver keeps for what the runtime stores for one
/// counter: its metadata row and its state.
async fn driver_share() -> isize {
    let driver = MemoryDriver::new();
    let before = live();
    for i in 0..N {
        let id = ActorId::new(format!("{:032x}", i));
        let meta = ActorMeta::new(id.clone(), "counter", key(i), 0);
        driver.create_actor(&meta).await.unwrap();
        let bytes = vec![0xa1, 0x65, b'c', b'o', b'u', b'n', b't', 0x01];
        driver
            .commit(vec![
                Write::State {
                    actor: id.clone(),
                    bytes,
                },
                Write::BumpGeneration { actor: id },
            ])
            .await
            .unwrap();
    }
    let after = live();
    drop(driver);
    (after - before) / N as isize
}

#[tokio::test(flavor = "current_thread")]
async fn an_idle_awake_actor_holds_little_memory() {
    let driver_per_actor = driver_share().await;
    let registry = Registry::builder()
        .actor::<Counter>()
        .start()
        .await
        .unwrap();
    // One actor first, so one-time allocations (maps, the writer, the clock) are not counted.
    let call = |i: usize| {
        let registry = registry.clone();
        async move {
            let target = Target::GetOrCreate {
                name: "counter".to_owned(),
                key: key(i),
                input: None,
            };
            let v = registry
                .call(
                    &target,
                    "increment",
                    vec![Value::Int(1)],
                    None,
                    ConnRequest::local(),
                )
                .await
                .unwrap();
            assert_eq!(v, Value::Int(1));
        }
    };
    call(N).await;
    tokio::task::yield_now().await;
    let before = live();
    for i in 0..N {
        call(i).await;
    }
    // Let every writer batch and gate release finish.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let after = live();
    let per_actor = (after - before) / N as isize - driver_per_actor;
    eprintln!(
        "live heap per idle awake actor: {per_actor} B (driver share {driver_per_actor} B excluded)"
    );
    // About 2.7 KB when this was written (17 KB before the mailbox and task were slimmed).
    assert!(
        per_actor < 4096,
        "an idle awake actor holds {per_actor} B of heap"
    );
    drop(registry);
}
