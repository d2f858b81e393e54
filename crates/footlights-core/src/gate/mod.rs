//! The output gate: replies and events leave an actor only once every state write made before
//! them is durable.
//!
//! Each actor has one [`Gate`]. Writes get increasing sequence numbers when they are handed to
//! the writer ([`Gate::issue`]); outputs are tagged with the newest sequence issued at the time
//! they were produced and released, in order, when the writer reports that sequence durable
//! ([`Gate::mark_durable`]). The actor never waits for the disk: it goes on with its next
//! message while the writer commits.
//!
//! Outputs produced while a message runs are *staged* until the message ends, because the
//! write that message causes (if any) is only known then.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use footlights_client::CloseReason;
use footlights_protocol::{ActionError, ToClient, Value};
use tokio::sync::{mpsc, oneshot};

use crate::raw::{RawEvent, RawResponse};

mod sink;

pub(crate) use sink::ConnSink;

/// Something an actor sends out.
pub(crate) enum Output {
    /// The answer to an in-process caller.
    Reply(
        oneshot::Sender<Result<Value, ActionError>>,
        Result<Value, ActionError>,
    ),
    /// A message to one connection.
    ToConn(Arc<ConnSink>, ToClient),
    /// Close one connection, then tell the waiter.
    Close(Arc<ConnSink>, CloseReason, Option<oneshot::Sender<()>>),
    /// The answer to a raw HTTP request.
    RawReply(
        oneshot::Sender<Result<RawResponse, ActionError>>,
        Result<RawResponse, ActionError>,
    ),
    /// A message or close for a raw WebSocket.
    Raw(mpsc::UnboundedSender<RawEvent>, RawEvent),
}

impl Output {
    fn deliver(self) {
        match self {
            Output::Reply(tx, result) => {
                let _ = tx.send(result);
            }
            Output::ToConn(sink, msg) => sink.send(msg),
            Output::Close(sink, reason, done) => {
                sink.close(reason);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Output::RawReply(tx, result) => {
                let _ = tx.send(result);
            }
            Output::Raw(tx, event) => {
                let _ = tx.send(event);
            }
        }
    }

    /// What goes out instead when the write this output waited for failed with `error`.
    fn failed(self, error: &ActionError) -> Option<Output> {
        let error = error.masked();
        match self {
            Output::Reply(tx, _) => Some(Output::Reply(tx, Err(error))),
            Output::ToConn(sink, ToClient::ActionResponse { id, .. }) => Some(Output::ToConn(
                sink,
                ToClient::Error {
                    error,
                    action_id: Some(id),
                },
            )),
            Output::ToConn(_, ToClient::Event { .. } | ToClient::Broadcast(_)) => None,
            Output::RawReply(tx, _) => Some(Output::RawReply(tx, Err(error))),
            Output::Raw(_, RawEvent::Message(_)) => None,
            other => Some(other),
        }
    }
}

#[derive(Default)]
struct State {
    /// The newest write sequence handed to the writer.
    issued: u64,
    /// Every write up to this sequence is durable.
    durable: u64,
    /// Outputs waiting for their write, oldest first.
    queue: VecDeque<(u64, Output)>,
    /// Outputs of the message that is running, if one is.
    staging: Option<Vec<Output>>,
    /// The error of the first write that failed, if one did.
    failure: Option<ActionError>,
    /// Set while a task of its own sends a large release ([`HANDOFF_AT`]): what is released
    /// meanwhile goes behind it, here.
    #[expect(
        clippy::box_collection,
        reason = "8 bytes in every actor's gate instead of 32 for a queue that rarely exists"
    )]
    handoff: Option<Box<VecDeque<Output>>>,
}

/// From this many outputs released at once (a broadcast to many connections, say), they are
/// sent by a task of their own rather than by the thread that released them. That thread may
/// be the storage writer, which should get on with the next commit, and a connection's
/// transport may write the output to its socket right there (see
/// `footlights_client::DirectWriter`).
const HANDOFF_AT: usize = 64;

/// One actor's output gate. See the module docs.
pub(crate) struct Gate {
    state: Mutex<State>,
    /// Wakes whoever waits in [`Gate::wait_durable`] when `durable` moves or a write fails.
    /// (A `Notify` beside the state rather than a `watch` channel of its own: every awake
    /// actor has a gate, and the channel's shared part took 250 bytes of each.)
    durable_moved: tokio::sync::Notify,
    /// Wakes the actor when a write fails, so it stops before it serves another message.
    failed: tokio::sync::Notify,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Gate {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Gate {
            state: Mutex::default(),
            durable_moved: tokio::sync::Notify::new(),
            failed: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends an output as soon as the writes before it are durable.
    pub(crate) fn push(&self, out: Output) {
        let mut st = self.lock();
        if let Some(staged) = &mut st.staging {
            staged.push(out);
        } else if st.issued <= st.durable && st.queue.is_empty() {
            match &mut st.handoff {
                Some(handoff) => handoff.push_back(out),
                None => out.deliver(),
            }
        } else {
            let seq = st.issued;
            st.queue.push_back((seq, out));
        }
    }

    /// Sends outputs, in order, as [`push`](Self::push) would one by one (under one lock).
    pub(crate) fn push_all(self: &Arc<Self>, outs: Vec<Output>) {
        let mut st = self.lock();
        if let Some(staged) = &mut st.staging {
            staged.extend(outs);
        } else {
            self.enqueue(&mut st, outs);
        }
    }

    /// Sends an output behind the writes issued so far, even while a message is running
    /// (after [`flush_staged`](Self::flush_staged), this keeps program order).
    pub(crate) fn push_unstaged(self: &Arc<Self>, out: Output) {
        let mut st = self.lock();
        self.enqueue(&mut st, vec![out]);
    }

    /// A message starts: hold its outputs until [`end_message`](Self::end_message).
    pub(crate) fn begin_message(&self) {
        self.lock().staging = Some(Vec::new());
    }

    /// A message ended (after its write, if any, was issued): release its outputs behind the
    /// newest write.
    pub(crate) fn end_message(self: &Arc<Self>) {
        let mut st = self.lock();
        let staged = st.staging.take().unwrap_or_default();
        self.enqueue(&mut st, staged);
    }

    /// Releases what the running message produced so far behind the writes issued so far
    /// (used by `disconnect().await`, which must not wait for the message to end).
    pub(crate) fn flush_staged(self: &Arc<Self>) {
        let mut st = self.lock();
        if let Some(staged) = st.staging.as_mut().map(std::mem::take) {
            self.enqueue(&mut st, staged);
        }
    }

    fn enqueue(self: &Arc<Self>, st: &mut State, outs: Vec<Output>) {
        let seq = st.issued;
        if seq <= st.durable && st.queue.is_empty() {
            self.release(st, outs);
        } else {
            st.queue.extend(outs.into_iter().map(|o| (seq, o)));
        }
    }

    /// Sends outputs whose writes are durable, in order behind anything still being sent: at
    /// once, or from a task of their own when there are many (see [`HANDOFF_AT`]).
    fn release(self: &Arc<Self>, st: &mut State, outs: Vec<Output>) {
        if let Some(handoff) = &mut st.handoff {
            handoff.extend(outs);
            return;
        }
        // The length first: looking up the runtime costs a thread-local read and a handle.
        let runtime = if outs.len() >= HANDOFF_AT {
            tokio::runtime::Handle::try_current().ok()
        } else {
            None
        };
        let Some(runtime) = runtime else {
            return outs.into_iter().for_each(Output::deliver);
        };
        st.handoff = Some(Box::new(outs.into()));
        let gate = self.clone();
        runtime.spawn(async move { gate.send_handoff() });
    }

    /// The handoff task: sends what was handed off until nothing more is.
    fn send_handoff(&self) {
        loop {
            let batch = {
                let mut st = self.lock();
                match st.handoff.as_mut() {
                    Some(handoff) if !handoff.is_empty() => std::mem::take(&mut **handoff),
                    _ => {
                        st.handoff = None;
                        return;
                    }
                }
            };
            batch.into_iter().for_each(Output::deliver);
        }
    }

    /// Takes the next write sequence number.
    pub(crate) fn issue(&self) -> u64 {
        let mut st = self.lock();
        st.issued += 1;
        st.issued
    }

    /// The writer made every write up to `seq` durable.
    pub(crate) fn mark_durable(self: &Arc<Self>, seq: u64) {
        let mut st = self.lock();
        let before = st.durable;
        if seq > st.durable {
            st.durable = seq;
        }
        let mut ready = Vec::new();
        while st.queue.front().is_some_and(|(s, _)| *s <= st.durable) {
            if let Some((_, out)) = st.queue.pop_front() {
                ready.push(out);
            }
        }
        if !ready.is_empty() {
            self.release(&mut st, ready);
        }
        if st.queue.is_empty() && st.queue.capacity() > 0 {
            // Nothing waits: an idle actor keeps no buffer (one allocation per busy spell).
            st.queue = VecDeque::new();
        }
        let moved = st.durable > before;
        drop(st);
        if moved {
            self.durable_moved.notify_waiters();
        }
    }

    /// The write `seq` failed: outputs waiting on it become `error` (events are dropped).
    pub(crate) fn mark_failed(self: &Arc<Self>, seq: u64, error: &ActionError) {
        let mut st = self.lock();
        let mut ready = Vec::new();
        while st.queue.front().is_some_and(|(s, _)| *s <= seq) {
            if let Some((_, out)) = st.queue.pop_front()
                && let Some(out) = out.failed(error)
            {
                ready.push(out);
            }
        }
        if !ready.is_empty() {
            self.release(&mut st, ready);
        }
        if seq > st.durable {
            st.durable = seq;
        }
        if st.failure.is_none() {
            st.failure = Some(error.clone());
        }
        drop(st);
        self.durable_moved.notify_waiters();
        self.failed.notify_one();
    }

    /// Completes once a write has failed (at once if one failed while nobody waited).
    pub(crate) async fn failure(&self) {
        self.failed.notified().await;
    }

    /// The newest sequence issued.
    pub(crate) fn issued(&self) -> u64 {
        self.lock().issued
    }

    /// Every write up to this sequence is durable (or failed).
    pub(crate) fn durable(&self) -> u64 {
        self.lock().durable
    }

    /// Waits until every write up to `seq` is durable.
    ///
    /// # Errors
    /// When a write failed: its error if it is public (such as `storage.unavailable`), an
    /// internal error otherwise.
    pub(crate) async fn wait_durable(&self, seq: u64) -> Result<(), ActionError> {
        loop {
            // Registered before the look, so a move between the look and the wait wakes it.
            let moved = self.durable_moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            {
                let st = self.lock();
                if let Some(failure) = &st.failure {
                    return Err(Some(failure.clone())
                        .filter(ActionError::is_public)
                        .unwrap_or_else(|| ActionError::internal("state could not be saved")));
                }
                if st.durable >= seq {
                    return Ok(());
                }
            }
            moved.await;
        }
    }

    /// The error of the first write that failed since the actor started, if one did.
    pub(crate) fn failure_error(&self) -> Option<ActionError> {
        self.lock().failure.clone()
    }

    /// Whether a write failed since the actor started.
    pub(crate) fn has_failed(&self) -> bool {
        self.lock().failure.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::WsMessage;
    use footlights_client::LinkEvent;

    /// `n` numbered outputs to one raw socket's channel, from `from` on.
    fn numbered(tx: &mpsc::UnboundedSender<RawEvent>, from: usize, n: usize) -> Vec<Output> {
        (from..from + n)
            .map(|i| {
                Output::Raw(
                    tx.clone(),
                    RawEvent::Message(WsMessage::Text(i.to_string())),
                )
            })
            .collect()
    }

    fn number(event: RawEvent) -> usize {
        match event {
            RawEvent::Message(WsMessage::Text(text)) => text.parse().unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_large_release_is_sent_by_a_task_and_later_outputs_follow_it() {
        let gate = Gate::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        gate.push_all(numbered(&tx, 0, HANDOFF_AT));
        assert!(rx.try_recv().is_err(), "handed to a task, not sent here");
        // Released while the task has not run yet: behind it.
        for out in numbered(&tx, HANDOFF_AT, 3) {
            gate.push(out);
        }
        for expected in 0..HANDOFF_AT + 3 {
            assert_eq!(number(rx.recv().await.unwrap()), expected);
        }
        tokio::task::yield_now().await;
        assert!(
            gate.lock().handoff.is_none(),
            "the task ended with nothing left"
        );
        gate.push_all(numbered(&tx, 0, 2));
        assert_eq!(
            number(rx.try_recv().unwrap()),
            0,
            "a small release goes at once"
        );
    }

    #[test]
    fn without_a_runtime_a_large_release_goes_at_once() {
        let gate = Gate::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        gate.push_all(numbered(&tx, 0, HANDOFF_AT * 2));
        for expected in 0..HANDOFF_AT * 2 {
            assert_eq!(number(rx.try_recv().unwrap()), expected);
        }
    }

    fn reply() -> (Output, oneshot::Receiver<Result<Value, ActionError>>) {
        let (tx, rx) = oneshot::channel();
        (Output::Reply(tx, Ok(Value::Int(1))), rx)
    }

    #[test]
    fn outputs_wait_for_the_write_before_them() {
        let gate = Gate::new();
        gate.begin_message();
        let (out, mut rx) = reply();
        gate.push(out);
        let seq = gate.issue();
        gate.end_message();
        assert!(
            rx.try_recv().is_err(),
            "released before the write was durable"
        );
        gate.mark_durable(seq);
        assert_eq!(rx.try_recv().unwrap().unwrap(), Value::Int(1));
        assert_eq!(
            gate.lock().queue.capacity(),
            0,
            "a drained queue keeps no buffer"
        );
    }

    #[test]
    fn outputs_without_pending_writes_go_at_once() {
        let gate = Gate::new();
        gate.begin_message();
        let (out, mut rx) = reply();
        gate.push(out);
        gate.end_message();
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn a_read_after_a_pending_write_waits_too() {
        let gate = Gate::new();
        let seq = gate.issue();
        let (out, mut rx) = reply();
        gate.push(out);
        assert!(rx.try_recv().is_err());
        gate.mark_durable(seq);
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn order_is_kept_across_writes() {
        let gate = Gate::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = ConnSink::new(tx, 0, None, Default::default());
        let s1 = gate.issue();
        gate.push(Output::ToConn(
            sink.clone(),
            ToClient::Event {
                name: "a".into(),
                args: vec![],
            },
        ));
        let s2 = gate.issue();
        gate.push(Output::ToConn(
            sink.clone(),
            ToClient::Event {
                name: "b".into(),
                args: vec![],
            },
        ));
        gate.mark_durable(s2);
        gate.mark_durable(s1);
        let names: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| match e {
                LinkEvent::Message(ToClient::Event { name, .. }) => name,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<LinkEvent>) -> Vec<ToClient> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| match e {
                LinkEvent::Message(msg) => msg,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_shared_event_waits_for_the_write_then_reaches_every_sink_before_the_reply() {
        use footlights_protocol::SharedEvent;
        use footlights_protocol::codec::{Dialect, Encoding};

        let gate = Gate::new();
        let links: Vec<_> = (0..3).map(|_| mpsc::unbounded_channel()).collect();
        let sinks: Vec<_> = links
            .iter()
            .map(|(tx, _)| ConnSink::new(tx.clone(), 0, None, Default::default()))
            .collect();
        gate.begin_message();
        let event = SharedEvent::new("tick", vec![Value::Int(1)]);
        gate.push_all(
            sinks
                .iter()
                .map(|s| Output::ToConn(s.clone(), ToClient::Broadcast(event.clone())))
                .collect(),
        );
        gate.push(Output::ToConn(
            sinks[0].clone(),
            ToClient::ActionResponse {
                id: 7,
                output: Value::Null,
            },
        ));
        let seq = gate.issue();
        gate.end_message();
        let mut rxs: Vec<_> = links.into_iter().map(|(_, rx)| rx).collect();
        assert!(
            rxs.iter_mut().all(|rx| rx.try_recv().is_err()),
            "released early"
        );

        gate.mark_durable(seq);
        let first = drain(&mut rxs[0]);
        assert!(matches!(first[1], ToClient::ActionResponse { id: 7, .. }));
        let mut frames = Vec::new();
        for (i, rx) in rxs.iter_mut().enumerate() {
            let got = if i == 0 { first.clone() } else { drain(rx) };
            assert_eq!(got.len(), if i == 0 { 2 } else { 1 });
            let ToClient::Broadcast(e) = &got[0] else {
                panic!("expected the shared event, got {:?}", got[0]);
            };
            assert_eq!(got[0].as_event(), Some(("tick", &[Value::Int(1)][..])));
            frames.push(e.encoded(Encoding::Json, 4, Dialect::Compat));
        }
        assert!(
            frames.windows(2).all(|w| w[0].as_ptr() == w[1].as_ptr()),
            "one encoding shared by every sink"
        );
    }

    #[test]
    fn a_failed_write_drops_shared_events() {
        let gate = Gate::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = ConnSink::new(tx, 0, None, Default::default());
        let seq = gate.issue();
        let event = footlights_protocol::SharedEvent::new("tick", vec![]);
        gate.push_all(vec![Output::ToConn(sink, ToClient::Broadcast(event))]);
        gate.mark_failed(seq, &ActionError::internal("state could not be saved"));
        assert!(drain(&mut rx).is_empty());
    }

    #[test]
    fn failed_write_turns_replies_into_errors() {
        let gate = Gate::new();
        let seq = gate.issue();
        let (out, mut rx) = reply();
        gate.push(out);
        gate.mark_failed(seq, &ActionError::internal("state could not be saved"));
        let err = rx.try_recv().unwrap().unwrap_err();
        assert_eq!(err.code(), "internal_error");
        assert!(gate.has_failed());
    }

    #[tokio::test]
    async fn waiters_get_the_first_failure_if_it_is_public() {
        let gate = Gate::new();
        let seq = gate.issue();
        gate.mark_failed(seq, &ActionError::storage_unavailable());
        gate.mark_failed(seq, &ActionError::internal("later"));
        let err = gate.wait_durable(seq).await.unwrap_err();
        assert_eq!((err.group(), err.code()), ("storage", "unavailable"));
        assert_eq!(
            gate.failure_error(),
            Some(ActionError::storage_unavailable())
        );

        let masked = Gate::new();
        let seq = masked.issue();
        masked.mark_failed(seq, &ActionError::internal("disk"));
        let err = masked.wait_durable(seq).await.unwrap_err();
        assert_eq!(err.code(), "internal_error");
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_its_write_is_durable_or_one_fails() {
        let gate = Gate::new();
        let (first, second) = (gate.issue(), gate.issue());
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_durable(second).await }
        });
        // Let the waiter register, then move `durable` short of its write: it keeps waiting.
        tokio::task::yield_now().await;
        gate.mark_durable(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        gate.mark_durable(second);
        let woken = |waiter| tokio::time::timeout(std::time::Duration::from_secs(10), waiter);
        assert!(woken(waiter).await.expect("woken").unwrap().is_ok());
        assert!(
            gate.wait_durable(first).await.is_ok(),
            "an earlier write is durable too"
        );

        let third = gate.issue();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_durable(third).await }
        });
        tokio::task::yield_now().await;
        gate.mark_failed(third, &ActionError::storage_unavailable());
        let err = woken(waiter).await.expect("woken").unwrap().unwrap_err();
        assert_eq!((err.group(), err.code()), ("storage", "unavailable"));
    }
}
