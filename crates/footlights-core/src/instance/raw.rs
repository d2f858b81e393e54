//! Raw HTTP requests and raw WebSockets inside the actor task.

use super::*;

impl<A: Actor> Instance<A> {
    fn fresh_conn_id() -> ConnId {
        ConnId::new(random_id())
    }

    /// Runs the request handler with a short-lived connection. A response made later
    /// ([`RawReply::Later`]) is polled beside the mailbox, so the actor serves other messages
    /// meanwhile; the connection stays open until the response is out.
    pub(super) async fn raw_request(
        &mut self,
        params: Option<Value>,
        request: RawRequest,
        reply: RawReplyTx,
    ) {
        let conn_request = ConnRequest::new(
            request.method().clone(),
            request.uri().clone(),
            request.headers().clone(),
        );
        let gate = self.ctx.shared.gate.clone();
        let conn = match self
            .open_conn(Self::fresh_conn_id(), params, &conn_request, None)
            .await
        {
            Ok(conn) => conn,
            Err(e) => return gate.push(Output::RawReply(reply, Err(for_client(A::NAME, e)))),
        };
        let ctx = self.ctx.with_conn(Some(conn.clone()));
        self.dirty = true;
        let limit = self.options.action_timeout;
        let deadline = Instant::now() + limit;
        let result = guarded(
            limit,
            ActionError::action_timed_out,
            self.actor.on_request(&ctx, request),
        )
        .await;
        if result.as_ref().err().is_some_and(is_panic) {
            self.panicked = true;
        }
        let result = match result {
            Ok(RawReply::Later(later)) => {
                return self.deferred.request(reply, conn, later, deadline);
            }
            Ok(RawReply::Response(response)) => Ok(response),
            Ok(RawReply::NoResponse) => Err(crate::raw::no_response()),
            Ok(RawReply::NotDefined) => Err(crate::raw::request_not_defined()),
            Err(e) => Err(e),
        };
        gate.push(Output::RawReply(
            reply,
            result.map_err(|e| for_client(A::NAME, e)),
        ));
        self.close_ephemeral(&conn).await;
    }

    /// Runs the connect hooks and the open hook for a raw WebSocket. `Open` goes out first;
    /// a refusal or an error closes the socket with 1011 and `group.code`.
    pub(super) async fn ws_open(
        &mut self,
        id: u64,
        params: Option<Value>,
        request: ConnRequest,
        tx: mpsc::UnboundedSender<RawEvent>,
    ) {
        let shared = &self.ctx.shared;
        let socket = RawSocket::new(id, tx, shared.gate.clone(), shared.mailbox.clone());
        let refuse = |socket: &RawSocket, e: &ActionError| {
            socket.mark_closed();
            let reason = format!("{}.{}", e.group(), e.code());
            socket.emit(RawEvent::Closed { code: 1011, reason });
        };
        let conn = match self
            .open_conn(Self::fresh_conn_id(), params, &request, None)
            .await
        {
            Ok(conn) => conn,
            Err(e) => return refuse(&socket, &for_client(A::NAME, e)),
        };
        socket.emit(RawEvent::Open);
        let ctx = self.ctx.with_conn(Some(conn.clone()));
        self.dirty = true;
        let limit = self.options.connect_timeout;
        let accepted = guarded(
            limit,
            ActionError::callback_timed_out,
            self.actor.on_websocket(&ctx, &socket, &request),
        )
        .await;
        match accepted {
            Ok(true) => {
                self.ctx
                    .shared
                    .raw_sockets()
                    .insert(socket.id(), (socket, conn));
            }
            Ok(false) => {
                let e = ActionError::new(
                    "handler",
                    "websocket_not_defined",
                    "the actor has no WebSocket handler",
                );
                refuse(&socket, &e);
                self.close_ephemeral(&conn).await;
            }
            Err(e) => {
                self.panicked |= is_panic(&e);
                refuse(&socket, &for_client(A::NAME, e));
                self.close_ephemeral(&conn).await;
            }
        }
    }

    pub(super) async fn ws_message(&mut self, id: u64, msg: WsMessage) {
        let found = self.ctx.shared.raw_sockets().get(&id).cloned();
        let Some((socket, conn)) = found else {
            return;
        };
        let ctx = self.ctx.with_conn(Some(conn));
        self.dirty = true;
        let limit = self.options.action_timeout;
        let result = guarded(limit, ActionError::action_timed_out, async {
            self.actor.on_websocket_message(&ctx, &socket, msg).await;
            Ok(())
        })
        .await;
        if let Err(e) = result {
            self.panicked |= is_panic(&e);
            tracing::warn!(actor = A::NAME, error = %e, "raw WebSocket message handler failed");
        }
    }

    pub(super) async fn ws_closed(&mut self, id: u64, code: u16, reason: &str) {
        let found = self.ctx.shared.raw_sockets().remove(&id);
        let Some((socket, conn)) = found else {
            return;
        };
        socket.mark_closed();
        let ctx = self.ctx.with_conn(Some(conn.clone()));
        self.dirty = true;
        let limit = self.options.connect_timeout;
        let result = guarded(limit, ActionError::callback_timed_out, async {
            self.actor
                .on_websocket_close(&ctx, &socket, code, reason)
                .await;
            Ok(())
        })
        .await;
        if let Err(e) = result {
            self.panicked |= is_panic(&e);
        }
        self.close_ephemeral(&conn).await;
    }
}
