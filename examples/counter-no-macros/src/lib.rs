//! The counter actor written by hand, without `#[footlights::actor]`.
//!
//! It shows what the macro generates: an [`ActorSpec`] (name and create input), an [`Actor`]
//! impl that registers the actions, one [`Action`] struct per action with its positional
//! arguments, and a [`Handler`] (may change state) or [`ReadHandler`] (reads only) impl per
//! action. Run the demo with `cargo run -p counter-no-macros`.

use footlights::{
    Action, ActionCaller, ActionError, ActionTable, Actor, ActorSpec, Conns, Ctx, Event, Handler,
    ReadHandler, Value,
};
use serde::{Deserialize, Serialize};

/// The counter's durable state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    count: i64,
}

/// Broadcast after every increment with the new count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCount(pub i64);

impl Event for NewCount {
    const NAME: &'static str = "newCount";
}

/// `increment(amount) -> new count`.
#[derive(Debug)]
pub struct Increment {
    /// How much to add.
    pub amount: i64,
}

impl Action for Increment {
    const NAME: &'static str = "increment";
    type Output = i64;

    fn into_args(self) -> Result<Vec<Value>, ActionError> {
        Ok(vec![Value::Int(self.amount)])
    }

    fn from_args(args: Vec<Value>) -> Result<Self, ActionError> {
        let first = args.into_iter().next().unwrap_or_default();
        Ok(Increment {
            amount: footlights::Value::deserialize_into(first)?,
        })
    }
}

/// `getCount() -> count`.
#[derive(Debug)]
pub struct GetCount;

impl Action for GetCount {
    const NAME: &'static str = "getCount";
    type Output = i64;

    fn into_args(self) -> Result<Vec<Value>, ActionError> {
        Ok(Vec::new())
    }

    fn from_args(_: Vec<Value>) -> Result<Self, ActionError> {
        Ok(GetCount)
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
        table.write::<Increment>().read::<GetCount>();
    }
}

impl Handler<Increment> for Counter {
    async fn handle(&mut self, ctx: &Ctx<Self>, msg: Increment) -> Result<i64, ActionError> {
        self.count += msg.amount;
        ctx.broadcast(NewCount(self.count));
        Ok(self.count)
    }
}

impl ReadHandler<GetCount> for Counter {
    async fn handle(&self, _: &Ctx<Self>, _: GetCount) -> Result<i64, ActionError> {
        Ok(self.count)
    }
}

/// Typed calls, as the macro would generate them: works on handles and connections.
pub trait CounterActions: ActionCaller<Counter> {
    /// Adds `amount` and returns the new count.
    fn increment(
        &self,
        amount: i64,
    ) -> impl std::future::Future<Output = Result<i64, ActionError>> + Send {
        self.call(Increment { amount })
    }

    /// The current count.
    fn get_count(&self) -> impl std::future::Future<Output = Result<i64, ActionError>> + Send {
        self.call(GetCount)
    }
}

impl<T: ActionCaller<Counter> + ?Sized> CounterActions for T {}
