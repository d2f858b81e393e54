//! The counter: the smallest useful Footlights actor, served over the network.
//!
//! It shows the six ideas a user needs first: the actor *is* a serde struct, `#[actor]` turns
//! an `impl` block into one, `#[action]` methods become typed actions, [`Ctx`] reaches the
//! world around the actor, [`NewCount`] is an event broadcast to connected clients, and the
//! binary (`src/main.rs`) serves it with `footlights-server`.
//!
//! Run it, then call it from any client:
//!
//! ```text
//! cargo run -p counter                       # http://127.0.0.1:6420, state in counter.db
//! cargo run -p counter -- --addr 127.0.0.1:0 --db /tmp/counter.db
//! curl -X POST 'http://127.0.0.1:6420/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=demo' \
//!      -H 'content-type: application/json' -d '{"args":[5]}'
//! ```
//!
//! From JavaScript, with the official client: `createClient("http://127.0.0.1:6420")
//! .counter.getOrCreate(["demo"]).increment(5)`. From Rust, see `tests/network.rs`.

use footlights::prelude::*;

/// The actor *is* its persisted state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    count: i64,
}

/// Broadcast to every subscribed connection after each increment (wire name `newCount`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct NewCount(pub i64);

#[footlights::actor]
impl Counter {
    /// Adds `amount` and returns the new count (wire name `increment`).
    #[action]
    pub fn increment(&mut self, ctx: &Ctx<Self>, amount: i64) -> i64 {
        self.count += amount;
        ctx.broadcast(NewCount(self.count));
        self.count
    }

    /// The current count (wire name `getCount`).
    #[action]
    pub fn get_count(&self) -> i64 {
        self.count
    }
}
