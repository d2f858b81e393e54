//! `counter`: one number, changed by everyone, with an event on every change.

use footlights::prelude::*;

/// A shared count. The actor's state is this struct, saved after every change.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    count: i64,
}

/// `newCount`: broadcast with the new count after every increment.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct NewCount(pub i64);

#[footlights::actor]
impl Counter {
    /// Adds `amount` (1 if left out) and returns the new count.
    #[action]
    pub fn increment(&mut self, ctx: &Ctx<Self>, amount: Option<i64>) -> i64 {
        self.count = self.count.saturating_add(amount.unwrap_or(1));
        ctx.broadcast(NewCount(self.count));
        self.count
    }

    /// The current count.
    #[action]
    pub fn get_count(&self) -> i64 {
        self.count
    }

    /// Puts the counter to sleep now, as its idle timeout would: the count is saved, connected
    /// clients stay connected (hibernation), and the next call wakes it.
    #[action]
    pub fn go_to_sleep(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }
}
