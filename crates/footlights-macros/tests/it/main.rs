//! Tests of the code `#[actor]` and `#[derive(Event)]` generate, through the `footlights`
//! facade: wire names, argument lists, handler kinds, the typed client methods, a run in a real
//! registry, and the compile errors (`ui`).
//!
//! One module per topic; the actors they share are defined here.

mod actions;
mod client;
mod events;
mod hooks;
mod runtime;
mod ui;

use footlights::__private::core::{Ctx, Deferred};
use footlights::__private::protocol::ActionError;
use serde::{Deserialize, Serialize};

use crate::events::NewCount;

/// The counter from the style guide.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    count: i64,
}

#[footlights::actor]
impl Counter {
    /// Adds `amount` and returns the new count.
    #[action]
    fn increment(&mut self, ctx: &Ctx<Self>, amount: i64) -> i64 {
        self.count += amount;
        ctx.broadcast(NewCount(self.count));
        self.count
    }

    #[action]
    fn get_count(&self) -> i64 {
        self.count
    }

    /// Sets the count back to zero and says so with an event without arguments.
    #[action]
    fn reset(&mut self, ctx: &Ctx<Self>) {
        self.count = 0;
        ctx.broadcast(CountReset);
    }
}

/// The count went back to zero: an event without arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, footlights::Event)]
pub struct CountReset;

/// An application error that converts into `ActionError`.
#[derive(Debug)]
pub enum RoomError {
    /// The message was empty.
    Empty,
}

impl From<RoomError> for ActionError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::Empty => ActionError::user("empty", "the message is empty"),
        }
    }
}

/// An actor exercising every argument and result shape.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ChatRoom {
    messages: Vec<String>,
}

#[footlights::actor(name = "room", input = String)]
impl ChatRoom {
    /// Sends a message; `reply_to` may be left out.
    #[action]
    async fn send(&mut self, text: String, reply_to: Option<u64>) -> Result<u64, RoomError> {
        if text.is_empty() {
            return Err(RoomError::Empty);
        }
        let _ = reply_to;
        self.messages.push(text);
        Ok(self.messages.len() as u64)
    }

    #[action(name = "history")]
    async fn messages(&self, ctx: &Ctx<Self>) -> Vec<String> {
        let _ = ctx;
        self.messages.clone()
    }

    #[action]
    fn clear(&mut self) {
        self.messages.clear();
    }

    #[action]
    fn wait_for_next(&mut self) -> Deferred<String> {
        Deferred::new(async { Ok(String::from("next")) })
    }

    #[action]
    fn try_wait(&mut self, give_up: bool) -> Result<Deferred<u32>, ActionError> {
        if give_up {
            return Err(ActionError::user("gave_up", "gave up"));
        }
        Ok(Deferred::new(async { Ok(7) }))
    }

    #[action]
    fn snapshot(&self) -> Self {
        ChatRoom {
            messages: self.messages.clone(),
        }
    }

    /// Not an action: stays a plain method.
    fn len(&self) -> usize {
        self.messages.len()
    }
}
