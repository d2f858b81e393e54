//! Answers still being computed beside the mailbox: deferred actions and raw HTTP responses
//! made later. The actor polls them in its loop and stays awake while any is pending.

use super::*;

/// The sending half of a raw HTTP request's answer.
pub(super) type RawReplyTx = oneshot::Sender<Result<RawResponse, ActionError>>;

/// Who waits for a deferred action's answer.
pub(super) enum Waiter<A: Actor> {
    /// The caller of a stateless action, and the action's short-lived connection (closed once
    /// the answer is out).
    Reply(oneshot::Sender<Result<Value, ActionError>>, Conn<A>),
    /// An action on a connection: where the answer goes, and the request's id.
    Conn(Arc<ConnSink>, u64),
    /// A scheduled call or job fire (its outcome settles the alarm).
    Alarm(Box<super::invoke::AlarmRun>),
}

/// A deferred answer that is ready, with who waits for it.
pub(super) enum Finished<A: Actor> {
    /// An action's answer, and the action's name.
    Action(Waiter<A>, String, Result<Value, ActionError>),
    /// A raw HTTP response, its requester, and the request's short-lived connection.
    Request(RawReplyTx, Conn<A>, Result<RawResponse, ActionError>),
}

type Pending<A> = BoxFuture<'static, Finished<A>>;

/// Deferred answers being computed. The set is made on first use: most actors never defer.
pub(super) struct Deferreds<A: Actor>(pub(super) Option<FuturesUnordered<Pending<A>>>);

impl<A: Actor> Deferreds<A> {
    pub(super) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(FuturesUnordered::is_empty)
    }

    fn push(&mut self, fut: Pending<A>) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(fut);
    }

    /// Polls the deferred answer of action `name` beside the mailbox; `waiter` gets it.
    pub(super) fn action(
        &mut self,
        waiter: Waiter<A>,
        name: String,
        fut: BoxFuture<'static, Result<Value, ActionError>>,
    ) {
        self.push(Box::pin(async move {
            Finished::Action(waiter, name, fut.await)
        }));
    }

    /// Polls a raw HTTP response beside the mailbox, within the time left until `deadline`.
    pub(super) fn request(
        &mut self,
        reply: RawReplyTx,
        conn: Conn<A>,
        later: Deferred<RawResponse>,
        deadline: Instant,
    ) {
        self.push(Box::pin(async move {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = guarded(
                remaining,
                ActionError::action_timed_out,
                later.into_future(),
            )
            .await;
            Finished::Request(reply, conn, result)
        }));
    }

    /// The next finished answer; `None` when none is pending.
    pub(super) async fn next(&mut self) -> Option<Finished<A>> {
        match &mut self.0 {
            Some(set) => set.next().await,
            None => None,
        }
    }
}

impl<A: Actor> Instance<A> {
    /// Sends a deferred answer that is ready to whoever waits for it.
    pub(super) async fn complete(&mut self, finished: Finished<A>) {
        self.begin();
        match finished {
            Finished::Action(Waiter::Reply(reply, conn), name, result) => {
                let ctx = self.ctx.with_conn(Some(conn.clone()));
                let result = result.and_then(|v| self.before_response(&ctx, &name, v));
                let result = result.map_err(|e| for_client(A::NAME, e));
                self.ctx.shared.gate.push(Output::Reply(reply, result));
                self.close_ephemeral(&conn).await;
            }
            Finished::Action(Waiter::Conn(sink, id), name, result) => {
                let ctx = self.ctx.clone();
                let result = result.and_then(|v| self.before_response(&ctx, &name, v));
                self.reply_conn(&sink, id, result);
            }
            Finished::Action(Waiter::Alarm(run), _, result) => {
                self.alarm_done(*run, result.map(drop));
            }
            Finished::Request(reply, conn, result) => {
                let result = result.map_err(|e| for_client(A::NAME, e));
                self.ctx.shared.gate.push(Output::RawReply(reply, result));
                self.close_ephemeral(&conn).await;
            }
        }
        self.end().await;
    }
}
