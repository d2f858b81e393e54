//! An actor's mailbox: an unbounded many-to-one queue of [`Msg`] that costs little while idle.
//!
//! tokio's unbounded channel allocates a cache-padded header and a first block of 32 message
//! slots up front, well over a kilobyte per actor. This queue allocates one small header;
//! messages are boxed on the way in, so the buffer it keeps after its first message holds
//! pointers, not messages.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use futures::task::AtomicWaker;
use tokio::sync::mpsc::error::SendError;

use super::Msg;
use super::dormant::{PoolHandle, Revive, Ticket};

/// A new mailbox: the sending side (cloned for every sender) and the actor's receiving side.
pub(crate) fn channel() -> (Mailbox, MailboxRx) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            closed: false,
            dormant: None,
        }),
        waker: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
    });
    (
        Mailbox {
            inner: inner.clone(),
        },
        MailboxRx { inner },
    )
}

struct Inner {
    state: Mutex<State>,
    /// The receiving task, when it waits for a message.
    waker: AtomicWaker,
    /// Live [`Mailbox`] handles; the receiver sees the end of the stream when none is left.
    senders: AtomicUsize,
}

struct State {
    queue: VecDeque<Box<Msg>>,
    /// The receiver closed or dropped the mailbox: sends fail.
    closed: bool,
    /// Set while the receiving instance is dormant: the next send revives it.
    dormant: Option<Ticket>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending side of an actor's mailbox. Cheap to clone.
pub(crate) struct Mailbox {
    inner: Arc<Inner>,
}

impl Mailbox {
    /// Queues `msg`; fails (handing it back) once the actor closed or dropped its mailbox.
    // Same error as tokio's channel, so callers can take the message back and restart the actor.
    #[allow(clippy::result_large_err)]
    pub(crate) fn send(&self, msg: Msg) -> Result<(), SendError<Msg>> {
        let mut state = self.inner.lock();
        if state.closed {
            return Err(SendError(msg));
        }
        let was_empty = state.queue.is_empty();
        state.queue.push_back(Box::new(msg));
        let dormant = state.dormant.take();
        drop(state);
        // A revived instance reads the queue before it waits.
        if let Some(ticket) = dormant
            && ticket.revive()
        {
            return Ok(());
        }
        // The receiver only waits after it found the queue empty under the lock, so only
        // the push that ends an empty stretch needs to wake it.
        if was_empty {
            self.inner.waker.wake();
        }
        Ok(())
    }
}

impl Clone for Mailbox {
    fn clone(&self) -> Self {
        self.inner.senders.fetch_add(1, Ordering::Relaxed);
        Mailbox {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        if self.inner.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.waker.wake();
        }
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

/// The receiving side of an actor's mailbox, owned by the actor task.
pub(crate) struct MailboxRx {
    inner: Arc<Inner>,
}

impl MailboxRx {
    /// The next message, still boxed, or `None` once the queue is empty and closed or
    /// without senders. Cancel safe: a message is taken only when the future completes.
    pub(crate) async fn recv(&mut self) -> Option<Box<Msg>> {
        poll_fn(|cx| {
            if let Some(msg) = self.inner.lock().queue.pop_front() {
                return Poll::Ready(Some(msg));
            }
            self.inner.waker.register(cx.waker());
            let mut state = self.inner.lock();
            if let Some(msg) = state.queue.pop_front() {
                return Poll::Ready(Some(msg));
            }
            if state.closed || self.inner.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }

    /// The next message if one is waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Msg> {
        self.inner.lock().queue.pop_front().map(|msg| *msg)
    }

    /// Refuses further messages; those already queued can still be received.
    pub(crate) fn close(&mut self) {
        self.inner.lock().closed = true;
    }

    /// Whether no message is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.lock().queue.is_empty()
    }

    /// The mailbox's side of going dormant, usable once the receiver has moved into the
    /// instance that goes.
    pub(crate) fn door(&self) -> Door {
        Door {
            inner: self.inner.clone(),
        }
    }
}

/// Lets a receiving instance leave its task ([`super::dormant`]).
pub(crate) struct Door {
    inner: Arc<Inner>,
}

impl Door {
    /// Keeps `instance` (which holds this mailbox's receiver) in `pool` until the next send
    /// (or `deadline`) revives it. Refused, handing it back, while a message waits or once
    /// the mailbox is closed; the check and the handover are one step under the mailbox's
    /// lock, so no message can slip in between and wait for a task that is gone.
    pub(crate) fn park<R: Revive + 'static>(
        self,
        pool: &PoolHandle,
        instance: Box<R>,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(), Box<R>> {
        let mut state = self.inner.lock();
        if state.closed || !state.queue.is_empty() {
            return Err(instance);
        }
        state.dormant = Some(pool.keep(instance, deadline)?);
        drop(state);
        // The waker is the task that is ending; held, it would keep that task's memory.
        drop(self.inner.waker.take());
        Ok(())
    }
}

impl Drop for MailboxRx {
    fn drop(&mut self) {
        let queued = {
            let mut state = self.inner.lock();
            state.closed = true;
            std::mem::take(&mut state.queue)
        };
        // Dropped outside the lock: a message's drop may send to this mailbox again.
        drop(queued);
    }
}

impl std::fmt::Debug for MailboxRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxRx").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    fn alarm(id: &str) -> Msg {
        Msg::Alarm {
            alarm_id: id.to_owned(),
        }
    }

    fn alarm_id(msg: Option<impl Into<Box<Msg>>>) -> Option<String> {
        match *msg?.into() {
            Msg::Alarm { alarm_id } => Some(alarm_id),
            _ => None,
        }
    }

    #[tokio::test]
    async fn messages_arrive_in_order_and_end_with_the_last_sender() {
        let (tx, mut rx) = channel();
        let tx2 = tx.clone();
        tx.send(alarm("a")).unwrap();
        tx2.send(alarm("b")).unwrap();
        assert!(!rx.is_empty());
        assert_eq!(alarm_id(rx.recv().await).as_deref(), Some("a"));
        assert_eq!(alarm_id(rx.recv().await).as_deref(), Some("b"));
        assert!(rx.is_empty());
        drop(tx);
        let waiting = tokio::spawn(async move { rx.recv().await.is_none() });
        tokio::task::yield_now().await;
        drop(tx2);
        assert!(
            waiting.await.unwrap(),
            "the last sender's drop ends the stream"
        );
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_send() {
        let (tx, mut rx) = channel();
        let waiting = tokio::spawn(async move { alarm_id(rx.recv().await) });
        tokio::task::yield_now().await;
        tx.send(alarm("x")).unwrap();
        assert_eq!(waiting.await.unwrap().as_deref(), Some("x"));
    }

    #[tokio::test]
    async fn closing_refuses_new_messages_and_keeps_queued_ones() {
        let (tx, mut rx) = channel();
        tx.send(alarm("kept")).unwrap();
        rx.close();
        let refused = tx.send(alarm("refused")).unwrap_err();
        assert_eq!(alarm_id(Some(refused.0)).as_deref(), Some("refused"));
        assert_eq!(alarm_id(rx.try_recv()).as_deref(), Some("kept"));
        assert!(rx.try_recv().is_none());
        assert!(rx.recv().await.is_none());
    }

    /// Stands for a dormant instance: holds the receiver, and hands it out when revived.
    struct Sleeper {
        rx: MailboxRx,
        revived: Arc<Mutex<Option<MailboxRx>>>,
    }

    impl Revive for Sleeper {
        fn revive(self: Box<Self>, _: &tokio::runtime::Handle) {
            *self.revived.lock().unwrap() = Some(self.rx);
        }
    }

    #[tokio::test]
    async fn a_send_to_a_dormant_receiver_revives_it_with_the_message_queued() {
        let pool = PoolHandle::spawn();
        let (tx, rx) = channel();
        let revived = Arc::new(Mutex::new(None));
        let door = rx.door();
        let sleeper = Box::new(Sleeper {
            rx,
            revived: revived.clone(),
        });
        assert!(door.park(&pool, sleeper, None).is_ok());
        assert_eq!(pool.len(), 1);
        assert!(revived.lock().unwrap().is_none());
        tx.send(alarm("first")).unwrap();
        assert_eq!(pool.len(), 0, "the send took the receiver out of the pool");
        let mut rx = revived.lock().unwrap().take().expect("revived");
        // Later sends find the receiver running, as before.
        tx.send(alarm("second")).unwrap();
        assert_eq!(alarm_id(rx.recv().await).as_deref(), Some("first"));
        assert_eq!(alarm_id(rx.recv().await).as_deref(), Some("second"));
    }

    #[tokio::test]
    async fn a_receiver_with_a_message_waiting_cannot_go_dormant() {
        let pool = PoolHandle::spawn();
        let (tx, rx) = channel();
        tx.send(alarm("waiting")).unwrap();
        let door = rx.door();
        let sleeper = Box::new(Sleeper {
            rx,
            revived: Arc::default(),
        });
        let mut back = door.park(&pool, sleeper, None).expect_err("refused");
        assert_eq!(pool.len(), 0);
        assert_eq!(alarm_id(back.rx.recv().await).as_deref(), Some("waiting"));
    }

    #[tokio::test]
    async fn going_dormant_lets_go_of_the_waiting_task() {
        let pool = PoolHandle::spawn();
        let (_tx, rx) = channel();
        let door = rx.door();
        let inner = door.inner.clone();
        // A task that waited on the mailbox once, and then moves the receiver out.
        let rx = tokio::spawn(async move {
            let mut rx = rx;
            let waited = futures::poll!(std::pin::pin!(rx.recv()));
            assert!(waited.is_pending());
            rx
        })
        .await
        .unwrap();
        assert!(inner.waker.take().is_some(), "the task left its waker");
        inner.waker.register(futures::task::noop_waker_ref());
        let sleeper = Box::new(Sleeper {
            rx,
            revived: Arc::default(),
        });
        assert!(door.park(&pool, sleeper, None).is_ok());
        assert!(inner.waker.take().is_none(), "no waker kept");
    }

    #[tokio::test]
    async fn dropping_the_receiver_drops_queued_messages() {
        let (tx, rx) = channel();
        let (done, waiting) = oneshot::channel();
        tx.send(Msg::Stop { done }).unwrap();
        drop(rx);
        assert!(waiting.await.is_err(), "the queued message was dropped");
        assert!(tx.send(alarm("late")).is_err());
    }
}
