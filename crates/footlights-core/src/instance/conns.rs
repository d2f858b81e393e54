//! Connections inside the actor task: connect hooks, resume, grace periods, short-lived
//! connections of stateless calls.

use super::*;

impl<A: Actor> Instance<A> {
    pub(super) async fn connect(
        &mut self,
        conn_id: ConnId,
        link: u64,
        params: Option<Value>,
        request: &ConnRequest,
        (tx, backlog): (mpsc::UnboundedSender<LinkEvent>, Backlog),
    ) {
        let sink = ConnSink::new(tx, link, Some(self.reg.kept_counter()), backlog);
        if let Err(e) = self
            .open_conn(conn_id, params, request, Some(sink.clone()))
            .await
        {
            let e = for_client(A::NAME, e);
            let gate = &self.ctx.shared.gate;
            let reason = CloseReason::error(&e);
            gate.push(Output::ToConn(
                sink.clone(),
                ToClient::Error {
                    error: e,
                    action_id: None,
                },
            ));
            gate.push(Output::Close(sink, reason, None));
        }
    }

    /// Gives a kept connection a new link if the token matches. Its state and subscriptions
    /// are untouched; `Init` (same id and token) goes out first, then what was buffered.
    pub(super) fn resume(
        &mut self,
        conn_id: &ConnId,
        link: u64,
        token: &str,
        tx: &mpsc::UnboundedSender<LinkEvent>,
        backlog: &Backlog,
    ) -> bool {
        let Some(conn) = self.ctx.conn_by_id(conn_id) else {
            return false;
        };
        let Some(sink) = conn.sink() else {
            return false;
        };
        if conn.token() != token {
            return false;
        }
        let init = ToClient::Init {
            actor_id: self.ctx.shared.id.clone(),
            connection_id: conn_id.clone(),
            connection_token: Some(token.to_owned()),
        };
        if !sink.attach(tx.clone(), link, init, backlog.clone()) {
            return false;
        }
        self.detached.remove(conn_id);
        tracing::debug!(actor = A::NAME, %conn_id, "connection resumed");
        true
    }

    /// When the earliest grace period ends, if a connection is detached.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.detached.next_expiry()
    }

    /// Ends the connections whose grace period is over and were not resumed.
    pub(super) async fn expire_detached(&mut self) {
        self.begin();
        let now = Instant::now();
        for conn_id in self.detached.take_expired(now) {
            let still_detached = self
                .ctx
                .conn_by_id(&conn_id)
                .and_then(|c| c.sink().cloned())
                .is_some_and(|s| s.is_detached());
            if still_detached && let Some(conn) = self.remove_conn(&conn_id) {
                if let Some(sink) = conn.sink() {
                    sink.close(crate::conn::disconnect_reason("resume window ended"));
                }
                self.disconnect_hook(&conn).await;
            }
        }
        self.end().await;
    }

    pub(super) async fn stateless_action(
        &mut self,
        name: String,
        args: Vec<Value>,
        params: Option<Value>,
        request: ConnRequest,
        reply: oneshot::Sender<Result<Value, ActionError>>,
    ) {
        let conn_id = ConnId::new(random_id());
        let conn = match self.open_conn(conn_id, params, &request, None).await {
            Ok(conn) => conn,
            Err(e) => {
                let e = Err(for_client(A::NAME, e));
                crate::trace::outcome(&self.trace, &e);
                return self.ctx.shared.gate.push(Output::Reply(reply, e));
            }
        };
        match self.invoke(&name, args, Some(conn.clone())).await {
            Invoked::Now(result) => {
                let result = result.map_err(|e| for_client(A::NAME, e));
                crate::trace::outcome(&self.trace, &result);
                self.ctx.shared.gate.push(Output::Reply(reply, result));
                self.close_ephemeral(&conn).await;
            }
            Invoked::Later(fut) => self.deferred.action(Waiter::Reply(reply, conn), name, fut),
        }
    }

    /// Asks the actor's [`can_subscribe`](Actor::can_subscribe) hook; a panic there refuses
    /// the subscription with an internal error.
    pub(super) fn may_subscribe(&self, conn: &Conn<A>, event: &str) -> Result<(), ActionError> {
        let ctx = self.ctx.with_conn(Some(conn.clone()));
        let hook = AssertUnwindSafe(|| self.actor.can_subscribe(&ctx, conn, event));
        std::panic::catch_unwind(hook).unwrap_or_else(|_| {
            tracing::error!(actor = A::NAME, event, "subscription hook panicked");
            Err(ActionError::internal("panicked"))
        })
    }

    /// Sends `conn` the error `e`, closes it with `e`'s code (1011) and runs its disconnect
    /// hook; then ends the current message.
    pub(super) async fn refuse_conn(&mut self, conn: Conn<A>, e: ActionError) {
        let e = for_client(A::NAME, e);
        if let Some(sink) = conn.sink() {
            let gate = &self.ctx.shared.gate;
            let reason = CloseReason::error(&e);
            let error = ToClient::Error {
                error: e,
                action_id: None,
            };
            gate.push(Output::ToConn(sink.clone(), error));
            gate.push(Output::Close(sink.clone(), reason, None));
        }
        if let Some(conn) = self.remove_conn(conn.id()) {
            self.disconnect_hook(&conn).await;
        }
        self.end().await;
    }

    pub(super) fn reply_conn(
        &self,
        sink: &Arc<ConnSink>,
        id: u64,
        result: Result<Value, ActionError>,
    ) {
        let msg = match result {
            Ok(output) => ToClient::ActionResponse { id, output },
            Err(e) => ToClient::Error {
                error: for_client(A::NAME, e),
                action_id: Some(id),
            },
        };
        self.ctx.shared.gate.push(Output::ToConn(sink.clone(), msg));
    }

    /// Runs the connect hooks and adds the connection. For real connections `Init` goes out
    /// right after the connection joins the list, before the connect hook runs.
    pub(super) async fn open_conn(
        &mut self,
        conn_id: ConnId,
        params: Option<Value>,
        request: &ConnRequest,
        sink: Option<Arc<ConnSink>>,
    ) -> Result<Conn<A>, ActionError> {
        // Kept for the inspector, for realtime connections only: a stateless call pays no copy.
        let sent_params = if sink.is_some() { params.clone() } else { None };
        let span = match &sink {
            Some(_) => request.span().clone(),
            None => tracing::Span::none(),
        };
        let params = match params {
            Some(given) => from_value(given),
            // No params at all: `null` (for `Option` and `Value` params), or else an empty
            // object, so a params struct whose fields all have defaults accepts it.
            None => from_value(Value::Null).or_else(|_| from_value(Value::Object(Vec::new()))),
        }
        .map_err(|e| ActionError::invalid_request(format!("connection params: {e}")))?;
        let limit = self.options.connect_timeout;
        let ctx = self.ctx.clone();
        self.dirty = true;
        let auth = guarded(
            limit,
            ActionError::callback_timed_out,
            self.actor.on_before_connect(&ctx, &params, request),
        )
        .await
        .inspect_err(|e| self.panicked |= is_panic(e))?;
        let state = guarded(
            limit,
            ActionError::callback_timed_out,
            self.actor.create_conn_state(&ctx, &params, request),
        )
        .await
        .inspect_err(|e| self.panicked |= is_panic(e))?;
        let shared = &self.ctx.shared;
        let conn = Conn::new(
            conn_id,
            (params, sent_params),
            auth,
            state,
            sink.clone(),
            shared.gate.clone(),
            shared.mailbox.clone(),
            shared.tap.clone(),
            span,
        );
        shared.add_conn(conn.clone());
        if let Some(sink) = &sink {
            let init = ToClient::Init {
                actor_id: shared.id.clone(),
                connection_id: conn.id().clone(),
                connection_token: Some(conn.token().to_owned()),
            };
            shared.gate.push(Output::ToConn(sink.clone(), init));
        }
        let connected = guarded(
            limit,
            ActionError::callback_timed_out,
            self.actor.on_connect(&ctx, &conn),
        )
        .await;
        if let Err(e) = connected {
            self.panicked |= is_panic(&e);
            self.remove_conn(conn.id());
            return Err(e);
        }
        Ok(conn)
    }

    /// Removes a connection and its subscriptions from the actor's index.
    pub(super) fn remove_conn(&self, id: &ConnId) -> Option<Conn<A>> {
        self.ctx.shared.conns().remove(id)
    }

    pub(super) async fn close_ephemeral(&mut self, conn: &Conn<A>) {
        if self.remove_conn(conn.id()).is_some() {
            self.disconnect_hook(conn).await;
        }
    }

    pub(super) async fn disconnect_hook(&mut self, conn: &Conn<A>) {
        self.dirty = true;
        let ctx = self.ctx.clone();
        let limit = self.options.connect_timeout;
        let result = guarded(limit, ActionError::callback_timed_out, async {
            self.actor.on_disconnect(&ctx, conn).await;
            Ok(())
        })
        .await;
        if let Err(e) = result {
            self.panicked |= is_panic(&e);
            tracing::warn!(actor = A::NAME, error = %e, "disconnect hook failed");
        }
    }
}
