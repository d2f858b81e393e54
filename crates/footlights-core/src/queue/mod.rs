//! Durable queues: named, typed message queues inside each actor.
//!
//! An actor type declares the queues it accepts in [`Actor::queues`],
//! each with the type of its messages and its limits. Clients send to a queue (over
//! `POST /queue/{name}`, or [`Registry::send`](crate::Registry::send) in process); the actor
//! takes messages with [`Ctx::queue`](crate::Ctx::queue), usually from its
//! [`run`](crate::Actor::run) loop, and completes them, optionally with a response the
//! sender waits for.
//!
//! ```
//! use std::time::Duration;
//! use footlights_core::queue::{NextOptions, QueueName, QueueOptions, Queues};
//! use footlights_core::{Actor, ActionError, ActionTable, Conns, Ctx, RunSignal};
//! # use serde::{Deserialize, Serialize};
//! #[derive(Default, Serialize, Deserialize)]
//! struct Worker { done: u64 }
//! #[derive(Deserialize)]
//! struct Job { n: i64 }
//! /// Queue `jobs` and its message type, checked where messages are taken
//! /// ([`QueueName`]; a plain `"jobs"` with `next::<Job>` works too).
//! const JOBS: QueueName<Job> = QueueName::new("jobs");
//! # impl footlights_protocol::ActorSpec for Worker { const NAME: &'static str = "worker"; type Input = (); }
//!
//! impl Actor for Worker {
//!     type Conn = Conns;
//!     async fn create_state(_: &Ctx<Self>, _: &()) -> Result<Self, ActionError> { Ok(Worker::default()) }
//!     fn actions(_: &mut ActionTable<Self>) {}
//!
//!     fn queues(queues: &mut Queues<Self>) {
//!         queues.add(JOBS, QueueOptions::default());
//!     }
//!
//!     async fn run(ctx: Ctx<Self>, signal: RunSignal) -> Result<(), ActionError> {
//!         let options = NextOptions::default().signal(signal);
//!         while let Some(job) = ctx.queue().next(JOBS, options.clone()).await? {
//!             let n = job.body.n;
//!             // The state change, the removal of the message and the sender's answer are
//!             // one durable step.
//!             job.complete_with(move |this: &mut Worker, _ctx| {
//!                 this.done += 1;
//!                 Ok(n * 2)
//!             })
//!             .await?;
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! # Guarantees
//! - A send is acknowledged only once the message is durable (stored in the actor's key-value
//!   storage, committed by the group commit and released by the output gate).
//! - A message is removed durably: when it is taken, for queues that are not
//!   [`completable`](QueueOptions::completable) and messages nobody waits for; otherwise when
//!   it is completed. Until then a crash, a sleep or a restart delivers it again, in order.
//!   A message taken and dropped without being completed goes back to the head of its queue.
//! - Limits, as coded errors: a queue the actor does not declare (`auth.forbidden`), a body
//!   that is not the queue's message type (`queue.invalid_message`), a message over
//!   [`max_message_bytes`](QueueOptions::max_message_bytes) (`queue.message_too_large`), a
//!   full queue (`actor.overloaded` with metadata
//!   `{"channel":"dispatch_inbox","operation":"dispatch_queue_send"}`, which clients retry).

pub(crate) mod message;
pub(crate) mod state;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Duration;

use footlights_protocol::{ActionError, Value};
use serde::de::DeserializeOwned;

use crate::actor::Actor;
use crate::run::RunSignal;

pub use footlights_client::SendOutcome;
pub use message::{Queue, QueueMessage};

/// A queue's name with the type of its messages: declare a queue and take from it with the
/// same constant, and taking messages of another type does not compile.
///
/// ```
/// use footlights_core::queue::QueueName;
/// # #[derive(serde::Deserialize)]
/// # pub struct Job { n: i64 }
/// /// Queue `jobs`, of `Job`s.
/// pub const JOBS: QueueName<Job> = QueueName::new("jobs");
/// assert_eq!(JOBS.as_str(), "jobs");
/// // queues.add(JOBS, QueueOptions::default());                  in `Actor::queues`
/// // while let Some(job) = ctx.queue().next(JOBS, options).await? in the run loop: a
/// //                                                              `QueueMessage<_, Job>`
/// ```
///
/// Taking another type from it is a compile error:
///
/// ```compile_fail
/// # use footlights_core::queue::{NextOptions, QueueName};
/// # async fn f<A: footlights_core::Actor>(ctx: footlights_core::Ctx<A>) {
/// const JOBS: QueueName<u64> = QueueName::new("jobs");
/// let _ = ctx.queue().next::<String>(JOBS, NextOptions::default()).await;
/// # }
/// ```
///
/// Plain strings keep working wherever a queue name is taken, with the message type given
/// there (`next::<Job>("jobs", …)`).
pub struct QueueName<M> {
    name: &'static str,
    _message: PhantomData<fn() -> M>,
}

impl<M> QueueName<M> {
    /// The queue named `name`, whose messages are `M`s.
    pub const fn new(name: &'static str) -> Self {
        QueueName {
            name,
            _message: PhantomData,
        }
    }

    /// The queue's name.
    pub const fn as_str(&self) -> &'static str {
        self.name
    }
}

impl<M> Clone for QueueName<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for QueueName<M> {}

impl<M> std::fmt::Debug for QueueName<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("QueueName").field(&self.name).finish()
    }
}

impl<M> PartialEq for QueueName<M> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl<M> Eq for QueueName<M> {}

impl<M> AsRef<str> for QueueName<M> {
    fn as_ref(&self) -> &str {
        self.name
    }
}

impl<M> std::fmt::Display for QueueName<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// A queue name that messages of type `M` may be taken from (or declared with): a
/// [`QueueName<M>`], which fixes `M`, or a plain string, which takes any.
pub trait QueueRef<M> {
    /// The queue's name.
    fn queue_name(&self) -> &str;
}

impl<M> QueueRef<M> for QueueName<M> {
    fn queue_name(&self) -> &str {
        self.name
    }
}

impl<M> QueueRef<M> for &QueueName<M> {
    fn queue_name(&self) -> &str {
        self.name
    }
}

impl<M> QueueRef<M> for &str {
    fn queue_name(&self) -> &str {
        self
    }
}

impl<M> QueueRef<M> for String {
    fn queue_name(&self) -> &str {
        self
    }
}

impl<M> QueueRef<M> for &String {
    fn queue_name(&self) -> &str {
        self
    }
}

/// Limits and behaviour of one queue.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueOptions {
    /// How many messages the queue holds, taken ones not yet completed included (1,000 by
    /// default). A send to a full queue gets `actor.overloaded`.
    pub max_len: usize,
    /// The largest message body, in bytes of its stored form (64 KiB by default); a larger one
    /// gets `queue.message_too_large`.
    pub max_message_bytes: usize,
    /// Whether every message stays stored until completed (`false` by default: a message is
    /// removed when taken, unless its sender waits for the completion).
    pub completable: bool,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_len: 1_000,
            max_message_bytes: 64 << 10,
            completable: false,
        }
    }
}

impl QueueOptions {
    /// Sets [`max_len`](Self::max_len).
    #[must_use]
    pub fn max_len(mut self, n: usize) -> Self {
        self.max_len = n;
        self
    }

    /// Sets [`max_message_bytes`](Self::max_message_bytes).
    #[must_use]
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// Sets [`completable`](Self::completable).
    #[must_use]
    pub fn completable(mut self, yes: bool) -> Self {
        self.completable = yes;
        self
    }
}

type Check = fn(&Value) -> Result<(), ActionError>;

/// One declared queue.
#[derive(Debug, Clone)]
pub(crate) struct QueueSpec {
    pub(crate) options: QueueOptions,
    pub(crate) check: Check,
}

/// The queues an actor type accepts, filled in by [`Actor::queues`].
pub struct Queues<A: Actor> {
    pub(crate) specs: HashMap<String, QueueSpec>,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Actor> std::fmt::Debug for Queues<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.specs.keys()).finish()
    }
}

fn check<M: DeserializeOwned>(body: &Value) -> Result<(), ActionError> {
    footlights_protocol::from_value::<M>(body.clone())
        .map(drop)
        .map_err(|e| ActionError::new("queue", "invalid_message", format!("queue message: {e}")))
}

impl<A: Actor> Queues<A> {
    pub(crate) fn new() -> Self {
        Queues {
            specs: HashMap::new(),
            _actor: PhantomData,
        }
    }

    /// Accepts queue `name`, whose messages are `M`s: a send whose body is not an `M` is
    /// refused with `queue.invalid_message`. `name` is a [`QueueName<M>`] (which fixes `M`)
    /// or a string (`add::<Job>("jobs", …)`).
    pub fn add<M: DeserializeOwned + 'static>(
        &mut self,
        name: impl QueueRef<M>,
        options: QueueOptions,
    ) -> &mut Self {
        self.specs.insert(
            name.queue_name().to_owned(),
            QueueSpec {
                options,
                check: check::<M>,
            },
        );
        self
    }

    /// Whether queue `name` is declared.
    pub fn contains(&self, name: &str) -> bool {
        self.specs.contains_key(name)
    }
}

/// How [`Queue::next`] and friends wait.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NextOptions {
    /// Give up (answer `None` / an empty batch) after this long; wait for ever if `None`.
    pub timeout: Option<Duration>,
    /// Give up when this signal fires (the run loop's cancellation, say).
    pub signal: Option<RunSignal>,
}

impl NextOptions {
    /// Sets [`timeout`](Self::timeout).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`signal`](Self::signal).
    #[must_use]
    pub fn signal(mut self, signal: RunSignal) -> Self {
        self.signal = Some(signal);
        self
    }
}

/// Options of one send ([`Registry::send`](crate::Registry::send)).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SendOptions {
    /// Wait for the actor to complete the message, at most this long.
    pub wait: Option<Duration>,
}

impl SendOptions {
    /// Waits for the completion, at most `timeout`.
    #[must_use]
    pub fn wait(timeout: Duration) -> Self {
        SendOptions {
            wait: Some(timeout),
        }
    }
}

/// The error of a full queue: `actor.overloaded`, with the metadata the official client retries.
pub(crate) fn full(name: &str, limit: usize) -> ActionError {
    #[derive(serde::Serialize)]
    struct Overload {
        channel: &'static str,
        operation: &'static str,
    }
    ActionError::new(
        "actor",
        "overloaded",
        format!("queue `{name}` is full ({limit} messages)"),
    )
    .with_metadata(&Overload {
        channel: "dispatch_inbox",
        operation: "dispatch_queue_send",
    })
}

/// The error of a wait interrupted by the actor stopping or a signal.
pub(crate) fn aborted() -> ActionError {
    ActionError::new("actor", "aborted", "the queue wait was interrupted")
}
