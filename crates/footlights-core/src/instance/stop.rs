//! Stopping an actor instance: sleep, shutdown, destroy.

use super::*;

/// What a sleeping actor leaves in the registry for its next instance (hibernation).
pub(super) struct Hibernated<A: Actor> {
    /// Connections whose clients' sockets stay open.
    pub(super) conns: Vec<crate::conn::Parked<A>>,
    /// Raw WebSockets that stay open, each with its connection.
    pub(super) sockets: Vec<crate::raw::ParkedSocket<A>>,
}

impl<A: Actor> Instance<A> {
    /// Sleeps if no message is waiting. Returns whether the actor stopped.
    pub(super) async fn try_sleep(&mut self) -> bool {
        let done = self.done_rx();
        if !self
            .reg
            .begin_stop(&self.ctx.shared.id, self.token, &self.rx, done, false)
        {
            return false;
        }
        tracing::debug!(actor = A::NAME, id = %self.ctx.shared.id, "actor going to sleep");
        self.begin();
        self.sleep_hook().await;
        let sockets = if self.options.hibernate_raw_websockets {
            self.park_raw_sockets()
        } else {
            Vec::new()
        };
        let conns = if self.options.hibernate_connections {
            self.park_conns()
        } else {
            Vec::new()
        };
        if !conns.is_empty() || !sockets.is_empty() {
            tracing::debug!(actor = A::NAME, id = %self.ctx.shared.id, conns = conns.len(), raw_sockets = sockets.len(), "connections kept open while the actor sleeps");
            let hibernated = Hibernated { conns, sockets };
            self.reg.park(&self.ctx.shared.id, Box::new(hibernated));
        }
        self.close_all(CloseReason::going_away(), true).await;
        self.end().await;
        self.reg
            .close_and_forward(A::NAME, &self.ctx.shared.id, &mut self.rx);
        self.finish().await;
        true
    }

    /// Hibernation: takes the connections that can wait for the next instance, leaving the
    /// others (ephemeral ones, ones some handle still holds) to be closed.
    fn park_conns(&mut self) -> Vec<crate::conn::Parked<A>> {
        let conns = self.ctx.shared.conns().take_all();
        // Sized once: a list grown by doubling would leave up to twice its size behind.
        let mut parked = Vec::with_capacity(conns.len());
        for conn in conns {
            match conn.park() {
                Ok(p) => parked.push(p),
                Err(conn) => self.ctx.shared.add_conn(conn),
            }
        }
        parked
    }

    /// Hibernation of raw WebSockets: takes each socket with its connection, leaving those
    /// whose connection some other handle still holds to be closed. The handles from before
    /// the sleep stop sending.
    fn park_raw_sockets(&mut self) -> Vec<crate::raw::ParkedSocket<A>> {
        let shared = &self.ctx.shared;
        let sockets = std::mem::take(&mut *shared.raw_sockets());
        let mut parked = Vec::new();
        for (id, (socket, conn)) in sockets {
            let conn_id = conn.id().clone();
            // The index's copy goes first, so that only this one holds the connection.
            shared.conns().remove(&conn_id);
            match conn.park_raw() {
                Ok(p) => parked.push(socket.park(p)),
                Err(conn) => {
                    shared.add_conn(conn.clone());
                    shared.raw_sockets().insert(id, (socket, conn));
                }
            }
        }
        parked
    }

    /// Runs the sleep hook inside the current message; its state changes are saved by `end`.
    async fn sleep_hook(&mut self) {
        self.dirty = true;
        let ctx = self.ctx.clone();
        let limit = self.options.action_timeout;
        let result = guarded(limit, ActionError::action_timed_out, async {
            self.actor.on_sleep(&ctx).await;
            Ok(())
        })
        .await;
        if let Err(e) = result {
            self.panicked |= is_panic(&e);
            tracing::warn!(actor = A::NAME, error = %e, "sleep hook failed");
        }
    }

    /// Stops now (registry shutdown or storage failure): saves what it can, closes links.
    pub(super) async fn stop(mut self, reason: CloseReason) {
        self.stop_run().await;
        let done = self.done_rx();
        self.reg
            .begin_stop(&self.ctx.shared.id, self.token, &self.rx, done, true);
        if !self.ctx.shared.gate.has_failed() {
            self.begin();
            self.sleep_hook().await;
            self.end().await;
        }
        self.close_all(reason, false).await;
        self.finish().await;
        // Messages that never ran: after a public write failure (`storage.unavailable`), that is
        // their answer too, so that callers learn why and when to retry.
        let error = self
            .ctx
            .shared
            .gate
            .failure_error()
            .filter(ActionError::is_public)
            .unwrap_or_else(ActionError::stopping);
        let rx = std::mem::replace(&mut self.rx, mailbox::channel().1);
        drain(rx, &error);
    }

    pub(super) async fn destroy(mut self) {
        let shared = self.ctx.shared.clone();
        let done = self.done_rx();
        self.reg
            .begin_stop(&shared.id, self.token, &self.rx, done, true);
        self.begin();
        let ctx = self.ctx.clone();
        let limit = self.options.action_timeout;
        let _ = guarded(limit, ActionError::action_timed_out, async {
            self.actor.on_destroy(&ctx).await;
            Ok(())
        })
        .await;
        self.close_all(crate::conn::disconnect_reason("actor destroyed"), false)
            .await;
        shared.take_pending_writes();
        shared.gate.end_message();
        let _ = shared.gate.wait_durable(shared.gate.issued()).await;
        if let Err(e) = self.reg.driver().delete_actor(&shared.id).await {
            tracing::error!(actor = A::NAME, id = %shared.id, error = %e, "actor not deleted");
        }
        self.reg.forget(A::NAME, &shared.key, &shared.id);
        tracing::debug!(actor = A::NAME, id = %shared.id, "actor destroyed");
        self.finish().await;
        if let Some(done) = self.destroyed.take() {
            let _ = done.send(());
        }
        let rx = std::mem::replace(&mut self.rx, mailbox::channel().1);
        drain(
            rx,
            &ActionError::actor_not_found(format!("actor {} was destroyed", shared.id)),
        );
    }

    /// Closes every connection; with `hooks`, runs their disconnect hooks.
    pub(super) async fn close_all(&mut self, reason: CloseReason, hooks: bool) {
        let sockets = std::mem::take(&mut *self.ctx.shared.raw_sockets());
        for (socket, _) in sockets.into_values() {
            socket.mark_closed();
            socket.emit(RawEvent::Closed {
                code: reason.code,
                reason: reason.reason.clone(),
            });
        }
        let conns = self.ctx.shared.conns().take_all();
        for conn in &conns {
            if let Some(sink) = conn.sink() {
                self.ctx
                    .shared
                    .gate
                    .push(Output::Close(sink.clone(), reason.clone(), None));
            }
        }
        if hooks {
            for conn in &conns {
                self.disconnect_hook(conn).await;
            }
        }
    }

    /// Waits for the last writes, then frees the slot for the next instance.
    pub(super) async fn finish(&mut self) {
        self.abandon_run();
        self.wait_background().await;
        self.ctx.shared.queues.close();
        // The messages stay stored; the gauge counts those of awake actors.
        if let Some(queues) = self.ctx.shared.queues.peek() {
            for (name, n) in queues.depths() {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                self.ctx.shared.metrics.queued(&name, -n);
            }
        }
        self.ctx.shared.tap.close();
        let gate = &self.ctx.shared.gate;
        let saved = gate.wait_durable(gate.issued()).await;
        if let Err(e) = &saved {
            tracing::error!(actor = A::NAME, error = %e, "last state not saved");
        }
        // In a cluster, a sleeping or stopped actor is claimable by any node at once, unless
        // its hibernating connections keep it here (its next instance claims it again).
        let shared = &self.ctx.shared;
        if let Some(membership) = self.reg.membership()
            && saved.is_ok()
            && !self.reg.has_parked(&shared.id)
        {
            membership.release(&shared.id, shared.generation).await;
        }
        self.reg
            .finish(&self.ctx.shared.id, self.token, &self.ctx.shared.metrics);
        if let Some(done) = &self.done {
            let _ = done.send(true);
        }
    }

    /// Waits (at most the run grace) for the tasks of `ctx.wait_until`, then drops the rest.
    async fn wait_background(&mut self) {
        let tasks = std::mem::take(
            &mut *self
                .ctx
                .shared
                .background
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if tasks.is_empty() {
            return;
        }
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let mut all = futures::future::join_all(tasks);
        if tokio::time::timeout(self.options.run_grace, &mut all)
            .await
            .is_err()
        {
            tracing::warn!(
                actor = A::NAME,
                "wait_until tasks outlived the grace period; dropped"
            );
            for a in aborts {
                a.abort();
            }
            // Aborted tasks end at their next poll: once they have, their futures are dropped.
            all.await;
        }
    }

    /// What the next instance of this actor waits on until this one has stopped.
    fn done_rx(&mut self) -> watch::Receiver<bool> {
        self.done
            .get_or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }
}

/// Answers every message left in a stopped actor's mailbox with `error`.
pub(super) fn drain(mut rx: MailboxRx, error: &ActionError) {
    rx.close();
    while let Some(msg) = rx.try_recv() {
        match msg {
            Msg::Action { reply, .. } => {
                let _ = reply.send(Err(error.masked()));
            }
            Msg::Connect { sink, .. } | Msg::Resume { sink, .. } => {
                let _ = sink.send(LinkEvent::Message(ToClient::Error {
                    error: error.masked(),
                    action_id: None,
                }));
                let _ = sink.send(LinkEvent::Closed(CloseReason::error(error)));
            }
            Msg::Stop { done } | Msg::Destroy { done } => {
                let _ = done.send(());
            }
            Msg::Request { reply, .. } => {
                let _ = reply.send(Err(error.masked()));
            }
            Msg::WsOpen { tx, .. } => {
                let reason = format!("{}.{}", error.group(), error.code());
                let _ = tx.send(RawEvent::Closed { code: 1011, reason });
            }
            Msg::WsMessage { .. } | Msg::WsClosed { .. } => {}
            Msg::Queue(op) => op.refuse(error),
            Msg::FromConn { .. }
            | Msg::ConnClosed { .. }
            | Msg::ConnLost { .. }
            | Msg::Alarm { .. } => {}
            // Dropping the reply tells the operator the actor is stopping.
            Msg::Inspect(_) => {}
        }
    }
}
