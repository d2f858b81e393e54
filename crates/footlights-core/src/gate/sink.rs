//! [`ConnSink`]: where an actor's messages to one connection go, attached to a client link or
//! kept (buffered) for a resume.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use footlights_client::{Backlog, CloseReason, LinkEvent};
use footlights_protocol::ToClient;
use tokio::sync::{mpsc, oneshot};

/// How many messages a detached connection keeps for its client; past that it is closed.
const DETACHED_BUFFER: usize = 1024;
/// How many bytes (as [`ToClient::approx_size`] counts them) a detached connection keeps for
/// its client; past that it is closed. Bounds the memory a client that went away can hold.
const DETACHED_BYTES: usize = 4 << 20;

/// Where an actor's messages to one connection go.
///
/// A sink is *attached* to a client link, or *detached* after the link dropped without a
/// clean close: messages are then buffered until the client resumes the connection (and gets
/// them after its new `Init`), or the grace period ends.
#[derive(Debug)]
pub(crate) struct ConnSink {
    state: Mutex<SinkState>,
}

#[derive(Debug)]
struct SinkState {
    tx: Option<mpsc::UnboundedSender<LinkEvent>>,
    /// Set while the link is parked (its actor asleep, its channel let go): where a fresh
    /// channel goes once there is something to send.
    next: Option<oneshot::Sender<mpsc::UnboundedReceiver<LinkEvent>>>,
    /// Which client link is attached; reports from older links are ignored.
    link: u64,
    closed: bool,
    buffer: VecDeque<ToClient>,
    /// The buffered messages' [`ToClient::approx_size`], added up.
    buffered_bytes: usize,
    /// The registry's count of connections kept for a resume, and whether this one is in it.
    kept: Option<Arc<AtomicUsize>>,
    counted: bool,
    /// What waits for the attached link's transport.
    backlog: Backlog,
}

impl SinkState {
    /// Counts the connection as kept for a resume, or not.
    fn set_kept(&mut self, kept: bool) {
        if kept == self.counted {
            return;
        }
        self.counted = kept;
        if let Some(count) = &self.kept {
            if kept {
                count.fetch_add(1, Ordering::Relaxed);
            } else {
                count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl SinkState {
    /// A parked link gets a fresh channel, so that what follows reaches it.
    fn unpark(&mut self) {
        if self.tx.is_some() {
            return;
        }
        if let Some(next) = self.next.take() {
            let (tx, rx) = mpsc::unbounded_channel();
            // A transport that has gone leaves the sink without a link, as a failed send does.
            if next.send(rx).is_ok() {
                self.tx = Some(tx);
            }
        }
    }
}

impl Drop for SinkState {
    fn drop(&mut self) {
        self.set_kept(false);
    }
}

impl ConnSink {
    /// A sink attached to link `link`; while it is kept for a resume it counts in `kept`.
    pub(crate) fn new(
        tx: mpsc::UnboundedSender<LinkEvent>,
        link: u64,
        kept: Option<Arc<AtomicUsize>>,
        backlog: Backlog,
    ) -> Arc<Self> {
        Arc::new(ConnSink {
            state: Mutex::new(SinkState {
                tx: Some(tx),
                next: None,
                link,
                closed: false,
                buffer: VecDeque::new(),
                buffered_bytes: 0,
                kept,
                counted: false,
                backlog,
            }),
        })
    }

    /// Whether `link` is the client link attached now.
    pub(crate) fn is_link(&self, link: u64) -> bool {
        self.lock().link == link
    }

    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn send(&self, msg: ToClient) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.unpark();
        let msg = match &st.tx {
            Some(tx) => {
                // A transport that writes to its socket itself takes what it can at once
                // (a broadcast to a connection with nothing queued); the rest is queued.
                if st.backlog.write_now(&msg) {
                    return;
                }
                // Counted before it can be taken, so the count never goes below zero.
                st.backlog.sent(&msg);
                match tx.send(LinkEvent::Message(msg)) {
                    Ok(()) => return,
                    Err(mpsc::error::SendError(LinkEvent::Message(msg))) => {
                        st.backlog.taken(&msg);
                        msg
                    }
                    Err(_) => return,
                }
            }
            None => msg,
        };
        // The client is gone for now: keep the message for a resume.
        st.tx = None;
        let size = msg.approx_size();
        if st.buffer.len() >= DETACHED_BUFFER || st.buffered_bytes + size > DETACHED_BYTES {
            st.closed = true;
            st.buffer.clear();
            st.buffered_bytes = 0;
            st.set_kept(false);
        } else {
            st.buffered_bytes += size;
            st.buffer.push_back(msg);
        }
    }

    /// Sends the close; later messages are dropped.
    pub(crate) fn close(&self, reason: CloseReason) {
        let mut st = self.lock();
        if !st.closed {
            st.closed = true;
            st.buffer.clear();
            st.buffered_bytes = 0;
            st.set_kept(false);
            st.unpark();
            if let Some(tx) = st.tx.take() {
                let _ = tx.send(LinkEvent::Closed(reason));
            }
        }
    }

    /// The client link dropped without a clean close: the connection is kept for a resume.
    pub(crate) fn detach(&self) {
        let mut st = self.lock();
        st.tx = None;
        st.next = None;
        if !st.closed {
            st.set_kept(true);
        }
    }

    pub(crate) fn is_detached(&self) -> bool {
        let st = self.lock();
        st.tx.is_none() && st.next.is_none() && !st.closed
    }

    /// Hibernation: the actor goes to sleep with this connection kept. If the link's
    /// transport can take it ([`Backlog::accepts_parking`]), the link's channel is let go (the
    /// transport reads what it holds, then waits for the next one) and a fresh one is made
    /// when the next message comes, so a sleeping connection keeps no channel.
    pub(crate) fn park(&self) {
        let mut st = self.lock();
        if st.closed || st.tx.is_none() || !st.backlog.accepts_parking() {
            return;
        }
        let (next_tx, next) = oneshot::channel();
        // Before the sender goes: a transport that sees the channel end must find it. One
        // that has not yet taken an earlier park keeps its channel.
        if !st.backlog.park(next) {
            return;
        }
        st.tx = None;
        st.next = Some(next_tx);
    }

    /// A client resumed the connection on a new link: `init` first, then what was buffered.
    /// Returns `false` if the connection was closed meanwhile.
    pub(crate) fn attach(
        &self,
        tx: mpsc::UnboundedSender<LinkEvent>,
        link: u64,
        init: ToClient,
        backlog: Backlog,
    ) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.unpark();
        if let Some(old) = st.tx.take() {
            let _ = old.send(LinkEvent::Closed(CloseReason::normal(
                "connection.superseded",
            )));
        }
        st.link = link;
        st.set_kept(false);
        st.backlog = backlog;
        st.backlog.sent(&init);
        let _ = tx.send(LinkEvent::Message(init));
        st.buffered_bytes = 0;
        let buffered = std::mem::take(&mut st.buffer);
        for msg in buffered {
            st.backlog.sent(&msg);
            let _ = tx.send(LinkEvent::Message(msg));
        }
        st.tx = Some(tx);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use footlights_protocol::Value;

    fn event(bytes: usize) -> ToClient {
        ToClient::Event {
            name: "big".into(),
            args: vec![Value::String("x".repeat(bytes))],
        }
    }

    #[test]
    fn a_detached_connection_keeps_a_bounded_number_of_bytes_then_closes() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let kept = Arc::new(AtomicUsize::new(0));
        let sink = ConnSink::new(tx, 1, Some(kept.clone()), Backlog::default());
        sink.detach();
        assert!(sink.is_detached());
        assert_eq!(kept.load(Ordering::Relaxed), 1);
        for _ in 0..3 {
            sink.send(event(1 << 20));
        }
        assert!(sink.is_detached(), "3 MiB fit");
        sink.send(event(1 << 20));
        assert!(!sink.is_detached(), "past 4 MiB the connection is closed");
        assert_eq!(
            kept.load(Ordering::Relaxed),
            0,
            "and no longer counted as kept"
        );
        assert!(sink.lock().buffer.is_empty(), "its buffer is freed");
    }

    fn parking(backlog: &Backlog) -> (Arc<ConnSink>, mpsc::UnboundedReceiver<LinkEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ConnSink::new(tx, 1, None, backlog.clone()), rx)
    }

    fn message(event: Option<LinkEvent>) -> Option<ToClient> {
        match event {
            Some(LinkEvent::Message(msg)) => Some(msg),
            _ => None,
        }
    }

    #[test]
    fn a_parked_link_lets_its_channel_go_and_a_fresh_one_delivers_in_order() {
        let backlog = Backlog::default();
        backlog.accept_parking();
        let (sink, mut rx) = parking(&backlog);
        sink.send(event(1));
        sink.park();
        assert!(sink.lock().tx.is_none(), "the sink holds no sender");
        assert!(!sink.is_detached(), "a parked connection is still attached");
        // The transport reads what the channel held, then finds it ended.
        assert_eq!(message(rx.try_recv().ok()), Some(event(1)));
        assert_eq!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected));
        let mut next = backlog.take_parked().expect("parked");
        assert!(
            next.try_recv().is_err(),
            "no channel until there is a message"
        );
        for n in 2..5 {
            sink.send(event(n));
        }
        let mut rx = next
            .try_recv()
            .expect("a fresh channel once there is a message");
        for n in 2..5 {
            assert_eq!(message(rx.try_recv().ok()), Some(event(n)));
        }
        sink.close(CloseReason::normal("done"));
        assert!(matches!(rx.try_recv(), Ok(LinkEvent::Closed(_))));
    }

    #[test]
    fn a_second_park_before_the_transport_took_the_first_keeps_the_channel() {
        let backlog = Backlog::default();
        backlog.accept_parking();
        let (sink, _rx) = parking(&backlog);
        sink.park();
        sink.send(event(1));
        sink.park();
        assert!(sink.lock().tx.is_some(), "the fresh channel is kept");
        sink.send(event(2));
        let mut next = backlog.take_parked().expect("the first park");
        let mut rx = next.try_recv().expect("the fresh channel");
        assert_eq!(message(rx.try_recv().ok()), Some(event(1)));
        assert_eq!(message(rx.try_recv().ok()), Some(event(2)));
    }

    #[test]
    fn a_close_reaches_a_parked_link() {
        let backlog = Backlog::default();
        backlog.accept_parking();
        let (sink, _rx) = parking(&backlog);
        sink.park();
        let mut next = backlog.take_parked().expect("parked");
        sink.close(CloseReason::going_away());
        let mut rx = next.try_recv().expect("a channel for the close");
        assert!(matches!(rx.try_recv(), Ok(LinkEvent::Closed(_))));
    }

    #[test]
    fn a_link_whose_transport_cannot_park_keeps_its_channel() {
        let backlog = Backlog::default();
        let (sink, mut rx) = parking(&backlog);
        sink.park();
        assert!(backlog.take_parked().is_none());
        assert_eq!(rx.try_recv(), Err(mpsc::error::TryRecvError::Empty));
        sink.send(event(1));
        assert_eq!(message(rx.try_recv().ok()), Some(event(1)));
    }

    #[test]
    fn a_parked_link_whose_transport_went_away_keeps_messages_for_a_resume() {
        let backlog = Backlog::default();
        backlog.accept_parking();
        let kept = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = ConnSink::new(tx, 1, Some(kept.clone()), backlog.clone());
        sink.park();
        drop((rx, backlog.take_parked()));
        sink.send(event(1));
        assert!(sink.is_detached());
        assert_eq!(sink.lock().buffer.len(), 1);
        sink.detach();
        assert_eq!(kept.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn small_messages_are_bounded_by_count() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let sink = ConnSink::new(tx, 1, None, Backlog::default());
        sink.detach();
        for _ in 0..DETACHED_BUFFER {
            sink.send(event(1));
        }
        assert!(sink.is_detached());
        sink.send(event(1));
        assert!(!sink.is_detached());
    }
}
