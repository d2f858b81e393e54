//! The consumer side: [`Queue`] (from [`Ctx::queue`]) and the messages it hands out.

use std::sync::Arc;

use footlights_protocol::{ActionError, Value};
use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::state::{Op, Taken};
use super::{NextOptions, QueueRef, aborted};
use crate::actor::Actor;
use crate::ctx::{Ctx, Shared};
use crate::instance::Msg;

/// A change of the state made beside the removal of a message, run by the actor task.
pub(crate) type UpdateFn<A> =
    Box<dyn FnOnce(&mut A, &Ctx<A>) -> Result<Value, ActionError> + Send + 'static>;

/// An actor's queues, seen from inside the actor. From [`Ctx::queue`]; cheap to clone and
/// `'static`, so a run loop or a deferred answer can keep it.
pub struct Queue<A: Actor> {
    ctx: Ctx<A>,
}

impl<A: Actor> Clone for Queue<A> {
    fn clone(&self) -> Self {
        Queue {
            ctx: self.ctx.clone(),
        }
    }
}

impl<A: Actor> std::fmt::Debug for Queue<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("actor", &A::NAME).finish()
    }
}

/// A message taken from a queue. Complete it with [`complete`](Self::complete) or
/// [`complete_with`](Self::complete_with); dropped without that, a message that had to be
/// completed goes back to the head of its queue.
pub struct QueueMessage<A: Actor, M> {
    /// The message.
    pub body: M,
    seq: u64,
    queue: String,
    /// Set while the message is stored and must be completed.
    pending: Option<Arc<Shared<A>>>,
    /// For completions of messages already removed when taken.
    shared: Arc<Shared<A>>,
}

impl<A: Actor, M: std::fmt::Debug> std::fmt::Debug for QueueMessage<A, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueMessage")
            .field("queue", &self.queue)
            .field("id", &self.seq)
            .field("body", &self.body)
            .finish()
    }
}

/// Whether this runs inside a message of the actor's own task (an action, a hook).
fn in_message<A: Actor>(shared: &Shared<A>) -> bool {
    crate::instance::IN_MESSAGE
        .try_with(|id| *id == shared.id)
        .unwrap_or(false)
}

/// Removes taken messages inside the running message: their removal is committed with it.
fn finish_in_place<A: Actor>(shared: &Shared<A>, seqs: &[u64], response: Value) {
    let mut writes = Vec::with_capacity(seqs.len());
    for seq in seqs {
        if let Some((write, waiter)) = shared.queues.remove(&shared.id, *seq, &shared.metrics) {
            writes.push(write);
            if let Some(waiter) = waiter {
                shared
                    .gate
                    .push(crate::gate::Output::Reply(waiter, Ok(response.clone())));
            }
        }
    }
    shared
        .pending_writes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(writes);
}

/// Sends an operation to the actor task and waits for its (gated) answer; inside the actor's
/// own message, does a removal in place (the actor task cannot answer itself).
async fn ask<A: Actor>(
    shared: &Shared<A>,
    op: impl FnOnce(super::state::ReplyTx) -> Op,
) -> Result<Value, ActionError> {
    if in_message(shared) {
        let (reply, _) = oneshot::channel();
        return match op(reply) {
            Op::Finish {
                seqs,
                update: None,
                response,
                ..
            } => {
                let response = response.unwrap_or(Value::Undefined);
                finish_in_place(shared, &seqs, response.clone());
                Ok(response)
            }
            _ => Err(ActionError::internal(
                "complete_with cannot run inside an action or hook; change the state there \
                 and use complete",
            )),
        };
    }
    let (reply, rx) = oneshot::channel();
    if shared.mailbox.send(Msg::Queue(op(reply))).is_err() {
        return Err(aborted());
    }
    rx.await.unwrap_or_else(|_| Err(aborted()))
}

impl<A: Actor> Queue<A> {
    pub(crate) fn new(ctx: Ctx<A>) -> Self {
        Queue { ctx }
    }

    /// Messages in queue `name`, taken ones not yet removed included.
    pub fn len(&self, name: &str) -> usize {
        self.ctx.shared.queues.len(name)
    }

    /// Whether queue `name` holds no message.
    pub fn is_empty(&self, name: &str) -> bool {
        self.len(name) == 0
    }

    /// The next message of queue `name`, waiting for one. `None` when the timeout passes or
    /// the signal fires first. Inside an action or hook it does not wait (the actor cannot
    /// take a send while its own message waits): wait in the [`run`](crate::Actor::run)
    /// loop or a [`Deferred`](crate::Deferred) answer.
    ///
    /// # Errors
    /// `actor.aborted` when the actor stops while waiting; `queue.invalid_message` when the
    /// message is not an `M` (it stays queued); storage failures.
    pub async fn next<M: DeserializeOwned>(
        &self,
        name: impl QueueRef<M>,
        options: NextOptions,
    ) -> Result<Option<QueueMessage<A, M>>, ActionError> {
        Ok(self
            .next_batch::<M>(name.queue_name(), 1, options)
            .await?
            .pop())
    }

    /// Up to `max` messages of queue `name`, waiting for the first. Empty when the timeout
    /// passes or the signal fires first.
    ///
    /// # Errors
    /// As [`next`](Self::next).
    pub async fn next_batch<M: DeserializeOwned>(
        &self,
        name: impl QueueRef<M>,
        max: usize,
        options: NextOptions,
    ) -> Result<Vec<QueueMessage<A, M>>, ActionError> {
        let name = name.queue_name();
        if in_message(&self.ctx.shared) {
            // The actor cannot receive a message while one of its own waits for it.
            return self.try_next_batch(name, max).await;
        }
        let state = &self.ctx.shared.queues;
        let deadline = options.timeout.map(|t| Instant::now() + t);
        let _waiting = state.waiting();
        loop {
            let notified = state.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if state.is_closed() {
                return Err(aborted());
            }
            let batch = self.try_next_batch(name, max).await?;
            if !batch.is_empty() || max == 0 {
                return Ok(batch);
            }
            let cancelled = async {
                match &options.signal {
                    Some(signal) => signal.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            let timeout = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = notified => {}
                () = cancelled => return Ok(Vec::new()),
                () = timeout => return Ok(Vec::new()),
            }
        }
    }

    /// The next message of queue `name` if one is ready, without waiting.
    ///
    /// # Errors
    /// As [`next`](Self::next).
    pub async fn try_next<M: DeserializeOwned>(
        &self,
        name: impl QueueRef<M>,
    ) -> Result<Option<QueueMessage<A, M>>, ActionError> {
        Ok(self.try_next_batch::<M>(name.queue_name(), 1).await?.pop())
    }

    /// Up to `max` ready messages of queue `name`, without waiting.
    ///
    /// # Errors
    /// As [`next`](Self::next).
    pub async fn try_next_batch<M: DeserializeOwned>(
        &self,
        name: impl QueueRef<M>,
        max: usize,
    ) -> Result<Vec<QueueMessage<A, M>>, ActionError> {
        let name = name.queue_name();
        let shared = &self.ctx.shared;
        let completable = shared
            .queue_specs
            .get(name)
            .is_some_and(|s| s.options.completable);
        let taken = shared.queues.take(name, max, completable);
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        // Decode first: a message of another type stays where it was.
        let mut bodies = Vec::with_capacity(taken.len());
        for t in &taken {
            match footlights_protocol::from_value::<M>(t.stored.body.clone()) {
                Ok(body) => bodies.push(body),
                Err(e) => {
                    for t in &taken {
                        shared.queues.put_back(t.stored.seq);
                    }
                    return Err(ActionError::new(
                        "queue",
                        "invalid_message",
                        format!("queue `{name}` message: {e}"),
                    ));
                }
            }
        }
        let removable: Vec<u64> = taken
            .iter()
            .filter(|t| !t.completable)
            .map(|t| t.stored.seq)
            .collect();
        if !removable.is_empty() {
            let removed = ask(shared, |reply| Op::Finish {
                seqs: removable.clone(),
                update: None,
                response: None,
                reply,
            })
            .await;
            if let Err(e) = removed {
                for t in &taken {
                    shared.queues.put_back(t.stored.seq);
                }
                return Err(e);
            }
        }
        Ok(taken
            .into_iter()
            .zip(bodies)
            .map(
                |(
                    Taken {
                        stored,
                        completable,
                    },
                    body,
                )| QueueMessage {
                    body,
                    seq: stored.seq,
                    queue: stored.queue,
                    pending: completable.then(|| shared.clone()),
                    shared: shared.clone(),
                },
            )
            .collect())
    }

    /// The messages of queue `name` as they come, until the signal in `options` fires (a
    /// timeout in `options` bounds each wait).
    ///
    /// ```no_run
    /// # async fn f<A: footlights_core::Actor>(ctx: footlights_core::Ctx<A>, signal: footlights_core::RunSignal) -> Result<(), footlights_core::ActionError> {
    /// use futures::TryStreamExt;
    /// use footlights_core::queue::NextOptions;
    /// let jobs = ctx.queue().stream::<u64>("jobs", NextOptions::default().signal(signal));
    /// let mut jobs = std::pin::pin!(jobs);
    /// while let Some(job) = jobs.try_next().await? {
    ///     let n = job.body;
    ///     job.complete(&(n + 1)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stream<M: DeserializeOwned + Send + 'static>(
        &self,
        name: impl QueueRef<M>,
        options: NextOptions,
    ) -> impl Stream<Item = Result<QueueMessage<A, M>, ActionError>> + Send + 'static {
        let queue = self.clone();
        let name = name.queue_name().to_owned();
        futures::stream::unfold(Some(()), move |more| {
            let queue = queue.clone();
            let name = name.clone();
            let options = options.clone();
            async move {
                more?;
                loop {
                    match queue.next::<M>(&name, options.clone()).await {
                        Ok(Some(m)) => return Some((Ok(m), Some(()))),
                        Ok(None) if options.signal.as_ref().is_some_and(|s| s.is_cancelled()) => {
                            return None;
                        }
                        Ok(None) => {}
                        Err(e) => return Some((Err(e), None)),
                    }
                }
            }
        })
    }
}

impl<A: Actor, M> QueueMessage<A, M> {
    /// The message's id, unique within the actor.
    pub fn id(&self) -> u64 {
        self.seq
    }

    /// The queue it came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Whether the message is still stored until completed (its sender waits, or its queue is
    /// [`completable`](super::QueueOptions::completable)).
    pub fn needs_completion(&self) -> bool {
        self.pending.is_some()
    }

    /// Completes the message with `response`, which a sender that waits receives. Returns once
    /// the removal is durable.
    ///
    /// # Errors
    /// `actor.aborted` if the actor stopped first (the message stays stored); an internal
    /// error if `response` does not serialize.
    pub async fn complete<R: Serialize + 'static>(self, response: &R) -> Result<(), ActionError> {
        let value = footlights_protocol::to_value_exact(response)
            .map_err(|e| ActionError::internal(format!("queue response did not serialize: {e}")))?;
        self.finish(None, Some(value)).await.map(drop)
    }

    /// Completes the message without a response.
    ///
    /// # Errors
    /// As [`complete`](Self::complete).
    pub async fn ack(self) -> Result<(), ActionError> {
        self.finish(None, None).await.map(drop)
    }

    /// Runs `update` on the actor's state and completes the message with what it returns, in
    /// one step: the state change, the removal and the sender's answer are durable together.
    /// If `update` fails (or panics), nothing changes and the message goes back to its queue.
    ///
    /// # Errors
    /// `update`'s error; otherwise as [`complete`](Self::complete).
    pub async fn complete_with<R, F>(self, update: F) -> Result<R, ActionError>
    where
        R: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(&mut A, &Ctx<A>) -> Result<R, ActionError> + Send + 'static,
    {
        let update: UpdateFn<A> = Box::new(move |actor, ctx| {
            let out = update(actor, ctx)?;
            footlights_protocol::to_value_exact(&out).map_err(|e| {
                ActionError::internal(format!("queue response did not serialize: {e}"))
            })
        });
        let value = self.finish(Some(update), None).await?;
        footlights_protocol::from_value(value)
            .map_err(|e| ActionError::internal(format!("queue response did not load: {e}")))
    }

    async fn finish(
        mut self,
        update: Option<UpdateFn<A>>,
        response: Option<Value>,
    ) -> Result<Value, ActionError> {
        let seqs = if self.pending.is_some() {
            vec![self.seq]
        } else {
            Vec::new()
        };
        let update = update.map(|u| Box::new(u) as Box<dyn std::any::Any + Send>);
        let result = ask(&self.shared, |reply| Op::Finish {
            seqs,
            update,
            response,
            reply,
        })
        .await;
        if result.is_ok() {
            self.pending = None;
        }
        result
    }
}

impl<A: Actor, M> Drop for QueueMessage<A, M> {
    fn drop(&mut self) {
        if let Some(shared) = self.pending.take() {
            shared.queues.put_back(self.seq);
        }
    }
}
