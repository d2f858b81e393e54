//! Saving after each message: the snapshot, the state-change hook, and the way back to the
//! last save after a panic.

use super::*;

impl<A: Actor> Instance<A> {
    pub(super) fn begin(&mut self) {
        self.dirty = false;
        self.panicked = false;
        self.ctx.shared.gate.begin_message();
    }

    /// Ends a message: restores state after a panic, saves it if it changed, runs the
    /// state-change hook, and releases the message's outputs behind the save.
    pub(super) async fn end(&mut self) {
        let mut writes = self.ctx.shared.take_pending_writes();
        if self.panicked {
            self.restore().await;
        } else if self.dirty {
            match snapshot::encode(&self.actor) {
                Ok(bytes) if bytes != self.last_snapshot => {
                    let ctx = self.ctx.clone();
                    let hook = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        self.actor.on_state_change(&ctx)
                    }));
                    let bytes = if hook.is_ok() {
                        snapshot::encode(&self.actor).unwrap_or(bytes)
                    } else {
                        tracing::error!(actor = A::NAME, "state-change hook panicked");
                        bytes
                    };
                    writes.extend(self.ctx.shared.take_pending_writes());
                    writes.push(Write::State {
                        actor: self.ctx.shared.id.clone(),
                        bytes: bytes.clone(),
                    });
                    self.last_snapshot = bytes;
                }
                Ok(_) => {}
                Err(e) => tracing::error!(actor = A::NAME, error = %e, "state not saved"),
            }
        }
        if !writes.is_empty() {
            let gate = self.ctx.shared.gate.clone();
            let seq = gate.issue();
            self.reg.writer().submit(WriteRequest { writes, gate, seq });
        }
        self.ctx.shared.gate.end_message();
        self.dirty = false;
        self.panicked = false;
    }

    /// After a panic in code holding `&mut self`: back to the last saved state, vars rebuilt.
    pub(super) async fn restore(&mut self) {
        match snapshot::decode::<A>(&self.last_snapshot) {
            Ok(actor) => {
                self.actor = actor;
                let ctx = self.ctx.clone();
                let limit = self.options.action_timeout;
                let vars = guarded(
                    limit,
                    ActionError::action_timed_out,
                    self.actor.create_vars(&ctx),
                )
                .await;
                let wake = guarded(
                    limit,
                    ActionError::action_timed_out,
                    self.actor.on_wake(&ctx),
                )
                .await;
                if let Err(e) = vars.and(wake) {
                    tracing::error!(actor = A::NAME, error = %e, "restart hooks failed after a panic");
                }
                tracing::warn!(
                    actor = A::NAME,
                    "state restored to the last save after a panic"
                );
            }
            Err(e) => {
                tracing::error!(actor = A::NAME, error = %e, "cannot restore state after a panic; stopping");
                self.ctx
                    .shared
                    .sleep_requested
                    .store(true, Ordering::Release);
            }
        }
    }
}
