//! An awake actor's queues in memory, mirrored in its key-value storage.
//!
//! Each message is stored under [`PREFIX`] and its sequence number (8 big-endian bytes), so a
//! listing of the prefix gives every queue's messages in the order they were sent. The
//! actor task is the only writer: sends and removals run as its messages, their storage
//! writes go out with the message's other writes, and their answers wait in the output gate.
//! Consumers take messages from memory on any task; taking needs no write.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use footlights_protocol::{ActionError, ActorId, Value};
use footlights_storage::Write;
use tokio::sync::{Notify, oneshot};

use crate::conn::ConnRequest;

/// The storage prefix of queue messages (outside the user's key space).
pub(crate) const PREFIX: &[u8] = b"footlights.queue/";

/// Who waits for a message's completion, and who waits for an answer of the actor task.
pub(crate) type ReplyTx = oneshot::Sender<Result<Value, ActionError>>;

/// A queue operation that runs as a message of the actor task.
pub(crate) enum Op {
    /// A client sends a message (with a short-lived connection, as a stateless action).
    Send {
        name: String,
        body: Value,
        params: Option<Value>,
        request: Box<ConnRequest>,
        /// Hears `Ok(Null)` once the message is durable.
        reply: ReplyTx,
        /// Hears the completion's response, for a send that waits.
        done: Option<ReplyTx>,
    },
    /// Removes taken messages, after running `update` on the state in the same message.
    Finish {
        seqs: Vec<u64>,
        /// A `Box<UpdateFn<A>>` for the actor's type `A`.
        update: Option<Box<dyn std::any::Any + Send>>,
        /// The response when there is no update (or the update gives none).
        response: Option<Value>,
        /// Hears the response once the removal is durable.
        reply: ReplyTx,
    },
}

/// One stored message.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) seq: u64,
    pub(crate) queue: String,
    pub(crate) body: Value,
}

/// The storage key of message `seq`.
pub(crate) fn key(seq: u64) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The stored form of a message: its queue and body.
pub(crate) fn encode(queue: &str, body: &Value) -> Result<Vec<u8>, ActionError> {
    crate::snapshot::encode_args(&[Value::String(queue.to_owned()), body.clone()])
}

fn decode(key: &[u8], bytes: &[u8]) -> Option<Stored> {
    let seq = crate::kv::KvKey::last_u64(key)?;
    let mut parts = crate::snapshot::decode_args(bytes).ok()?.into_iter();
    let Some(Value::String(queue)) = parts.next() else {
        return None;
    };
    let body = parts.next().unwrap_or(Value::Null);
    Some(Stored { seq, queue, body })
}

/// Reads every stored message of an actor, in order, a page at a time.
pub(crate) async fn load(
    driver: &dyn footlights_storage::Driver,
    id: &ActorId,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, footlights_storage::StorageError> {
    const PAGE: usize = 1024;
    let all = footlights_storage::KvRange::prefix(PREFIX);
    let mut range = all.clone().limit(PAGE);
    let mut out = Vec::new();
    loop {
        let page = driver.kv_list(id, &range).await?;
        let full = page.len() == PAGE;
        let last = page.last().map(|(k, _)| k.clone());
        out.extend(page);
        match last {
            Some(last) if full => range = all.clone().after(&last).limit(PAGE),
            _ => return Ok(out),
        }
    }
}

impl Op {
    /// The actor stopped before running the operation: answer `error`.
    pub(crate) fn refuse(self, error: &ActionError) {
        let reply = match self {
            Op::Send { reply, .. } | Op::Finish { reply, .. } => reply,
        };
        let _ = reply.send(Err(error.masked()));
    }
}

#[derive(Default)]
struct Inner {
    next_seq: u64,
    /// Messages not taken, per queue, oldest first.
    ready: HashMap<String, VecDeque<Stored>>,
    /// Messages taken and not yet removed.
    taken: HashMap<u64, Stored>,
    /// Messages per queue, taken ones included.
    counts: HashMap<String, usize>,
    /// Senders waiting for a completion, by message.
    waiters: HashMap<u64, ReplyTx>,
}

/// An actor's queues, made on first use: most actors have none, and an awake actor's memory
/// should not pay for them. Lives in the actor's shared data; dereferences to the
/// [`QueueState`].
#[derive(Default)]
pub(crate) struct LazyQueues(std::sync::OnceLock<Box<QueueState>>);

impl LazyQueues {
    /// The queues if they were ever used.
    pub(crate) fn peek(&self) -> Option<&QueueState> {
        self.0.get().map(|q| &**q)
    }
}

impl std::ops::Deref for LazyQueues {
    type Target = QueueState;

    fn deref(&self) -> &QueueState {
        self.0.get_or_init(Box::default)
    }
}

/// An actor's queues.
#[derive(Default)]
pub(crate) struct QueueState {
    inner: Mutex<Inner>,
    /// Woken when a message becomes ready, or the actor stops.
    pub(crate) notify: Notify,
    /// The actor is stopping: waits end.
    closed: AtomicBool,
    /// Consumers waiting for a message right now; such a wait does not keep the actor awake.
    waiting: AtomicUsize,
}

impl std::fmt::Debug for QueueState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueState").finish_non_exhaustive()
    }
}

/// A message taken from memory: whether it must be completed (else it is removed at once).
pub(crate) struct Taken {
    pub(crate) stored: Stored,
    pub(crate) completable: bool,
}

/// Counts a consumer as waiting while it lives.
pub(crate) struct WaitGuard<'a>(&'a QueueState);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl QueueState {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fills the queues from stored entries (key, value), in key order.
    pub(crate) fn load(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) {
        let mut inner = self.lock();
        for (k, v) in entries {
            match decode(&k, &v) {
                Some(stored) => {
                    inner.next_seq = inner.next_seq.max(stored.seq + 1);
                    *inner.counts.entry(stored.queue.clone()).or_default() += 1;
                    inner
                        .ready
                        .entry(stored.queue.clone())
                        .or_default()
                        .push_back(stored);
                }
                None => tracing::error!(key = ?k, "a stored queue message did not load; skipped"),
            }
        }
    }

    /// Messages in queue `name`, taken ones not yet removed included.
    pub(crate) fn len(&self, name: &str) -> usize {
        self.lock().counts.get(name).copied().unwrap_or(0)
    }

    /// Adds a message (the caller stores it); returns the write that stores it.
    pub(crate) fn push(
        &self,
        actor: &ActorId,
        name: &str,
        body: Value,
        bytes: Vec<u8>,
        done: Option<ReplyTx>,
    ) -> Write {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        *inner.counts.entry(name.to_owned()).or_default() += 1;
        if let Some(done) = done {
            inner.waiters.insert(seq, done);
        }
        inner
            .ready
            .entry(name.to_owned())
            .or_default()
            .push_back(Stored {
                seq,
                queue: name.to_owned(),
                body,
            });
        drop(inner);
        self.notify.notify_waiters();
        Write::KvPut {
            actor: actor.clone(),
            key: key(seq),
            value: bytes,
        }
    }

    /// Takes up to `max` ready messages of queue `name`; `completable` says whether the queue
    /// keeps every message until completed.
    pub(crate) fn take(&self, name: &str, max: usize, completable: bool) -> Vec<Taken> {
        let mut inner = self.lock();
        let Inner {
            ready,
            taken,
            waiters,
            ..
        } = &mut *inner;
        let Some(queue) = ready.get_mut(name) else {
            return Vec::new();
        };
        let n = max.min(queue.len());
        queue
            .drain(..n)
            .map(|stored| {
                taken.insert(stored.seq, stored.clone());
                Taken {
                    completable: completable || waiters.contains_key(&stored.seq),
                    stored,
                }
            })
            .collect()
    }

    /// Puts a taken message back at the head of its queue (it was not completed).
    pub(crate) fn put_back(&self, seq: u64) {
        let mut inner = self.lock();
        if let Some(stored) = inner.taken.remove(&seq) {
            let queue = inner.ready.entry(stored.queue.clone()).or_default();
            let at = queue.partition_point(|s| s.seq < seq);
            queue.insert(at, stored);
            drop(inner);
            self.notify.notify_waiters();
        }
    }

    /// Removes a taken message; returns its write and the sender waiting for it, if any.
    /// The type's queue-depth gauge goes down with it.
    pub(crate) fn remove(
        &self,
        actor: &ActorId,
        seq: u64,
        metrics: &crate::metrics::ActorTypeMetrics,
    ) -> Option<(Write, Option<ReplyTx>)> {
        let mut inner = self.lock();
        let stored = inner.taken.remove(&seq)?;
        metrics.queued(&stored.queue, -1);
        if let Some(n) = inner.counts.get_mut(&stored.queue) {
            *n = n.saturating_sub(1);
        }
        let waiter = inner.waiters.remove(&seq);
        Some((
            Write::KvDelete {
                actor: actor.clone(),
                key: key(seq),
            },
            waiter,
        ))
    }

    /// Every queue holding messages, with how many (taken ones included).
    pub(crate) fn depths(&self) -> Vec<(String, usize)> {
        let inner = self.lock();
        inner
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| (name.clone(), *n))
            .collect()
    }

    /// Queue `name` for the inspector: its depth and up to `limit` of its messages after
    /// `after`, oldest first, taken ones included.
    pub(crate) fn view(
        &self,
        name: String,
        after: Option<u64>,
        limit: usize,
    ) -> crate::inspect::QueueView {
        let inner = self.lock();
        let from = after.map_or(0, |a| a.saturating_add(1));
        let mut listed: Vec<(&Stored, bool)> = inner
            .taken
            .values()
            .filter(|s| s.queue == name && s.seq >= from)
            .map(|s| (s, true))
            .collect();
        let in_flight = inner.taken.values().filter(|s| s.queue == name).count();
        if let Some(ready) = inner.ready.get(&name) {
            // Oldest first: no more than `limit + 1` of them are needed.
            let start = ready.partition_point(|s| s.seq < from);
            listed.extend(ready.range(start..).take(limit + 1).map(|s| (s, false)));
        }
        listed.sort_unstable_by_key(|(s, _)| s.seq);
        let more = listed.len() > limit;
        let messages = listed
            .into_iter()
            .take(limit)
            .map(|(s, in_flight)| {
                let (size, preview) = crate::inspect::preview(&s.body);
                crate::inspect::QueuedView {
                    id: s.seq,
                    in_flight,
                    size,
                    preview,
                }
            })
            .collect();
        crate::inspect::QueueView {
            depth: inner.counts.get(&name).copied().unwrap_or(0),
            name,
            in_flight,
            messages,
            more,
        }
    }

    /// Counts a consumer as waiting until the guard drops.
    pub(crate) fn waiting(&self) -> WaitGuard<'_> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        WaitGuard(self)
    }

    /// How many consumers wait for a message.
    pub(crate) fn waiters(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// The actor stops: waits end with `actor.aborted`, senders waiting for completions stop
    /// waiting (their messages stay stored).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.lock().waiters.clear();
        self.notify.notify_waiters();
    }

    /// Whether the actor stopped.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ActorId {
        ActorId::new("a")
    }

    #[test]
    fn messages_keep_their_order_across_a_reload() {
        let q = QueueState::default();
        let mut stored = Vec::new();
        for n in 0..3 {
            let body = Value::Int(n);
            let bytes = encode("jobs", &body).unwrap();
            match q.push(&id(), "jobs", body, bytes, None) {
                Write::KvPut { key, value, .. } => stored.push((key, value)),
                _ => unreachable!(),
            }
        }
        let again = QueueState::default();
        again.load(stored);
        assert_eq!(again.len("jobs"), 3);
        let taken = again.take("jobs", 10, false);
        let bodies: Vec<_> = taken.iter().map(|t| t.stored.body.clone()).collect();
        assert_eq!(bodies, vec![Value::Int(0), Value::Int(1), Value::Int(2)]);
        assert!(taken.iter().all(|t| !t.completable));
    }

    #[test]
    fn a_message_put_back_is_taken_first_and_removal_answers_its_sender() {
        let q = QueueState::default();
        let (tx, mut rx) = oneshot::channel();
        q.push(&id(), "q", Value::Int(1), Vec::new(), Some(tx));
        q.push(&id(), "q", Value::Int(2), Vec::new(), None);
        let first = q.take("q", 1, false).pop().unwrap();
        assert!(first.completable, "a waited-for message must be completed");
        q.put_back(first.stored.seq);
        let both = q.take("q", 5, false);
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].stored.seq, first.stored.seq);
        let (write, waiter) = q
            .remove(
                &id(),
                first.stored.seq,
                &crate::metrics::ActorTypeMetrics::new("t"),
            )
            .unwrap();
        assert!(matches!(write, Write::KvDelete { .. }));
        waiter.unwrap().send(Ok(Value::Int(9))).unwrap();
        assert_eq!(rx.try_recv().unwrap().unwrap(), Value::Int(9));
        assert_eq!(q.len("q"), 1);
        assert!(
            q.remove(
                &id(),
                first.stored.seq,
                &crate::metrics::ActorTypeMetrics::new("t")
            )
            .is_none()
        );
    }

    #[test]
    fn the_inspector_view_lists_taken_and_ready_messages_in_order_and_pages() {
        let q = QueueState::default();
        for n in 0..4 {
            q.push(&id(), "q", Value::Int(n), Vec::new(), None);
        }
        q.push(&id(), "other", Value::Int(9), Vec::new(), None);
        let taken = q.take("q", 1, true).pop().unwrap();
        let page = q.view("q".into(), None, 2);
        assert_eq!((page.depth, page.in_flight, page.more), (4, 1, true));
        let listed: Vec<_> = page
            .messages
            .iter()
            .map(|m| (m.preview.as_str(), m.in_flight))
            .collect();
        assert_eq!(listed, [("0", true), ("1", false)]);
        assert_eq!(page.messages[0].id, taken.stored.seq);
        let next = q.view("q".into(), Some(page.messages[1].id), 2);
        let listed: Vec<_> = next.messages.iter().map(|m| m.preview.as_str()).collect();
        assert_eq!(listed, ["2", "3"]);
        assert!(!next.more);
        let mut depths = q.depths();
        depths.sort();
        assert_eq!(depths, [("other".to_owned(), 1), ("q".to_owned(), 4)]);
    }
}
