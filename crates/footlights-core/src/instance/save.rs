//! Saving after each message: the snapshot, the state-change hook, and the way back to the
//! last save after a panic.

use super::*;
use footlights_storage::Fence;

/// The snapshot size past which the log suggests the key-value store.
const LARGE_SNAPSHOT: usize = 1 << 20;

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
            self.ctx.shared.kv.discard_staged();
            #[cfg(feature = "db")]
            self.ctx.shared.db.discard_staged();
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
                    self.warn_if_large(bytes.len());
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
        self.submit(writes);
        self.ctx.shared.gate.end_message();
        self.dirty = false;
        self.panicked = false;
    }

    /// Hands the message's writes and its key-value writes to the writer as one unit, fenced
    /// with this instance's generation.
    pub(super) fn submit(&self, mut writes: Vec<Write>) {
        let shared = &self.ctx.shared;
        if writes.is_empty() && !shared.kv.has_staged() && !shared.db_has_staged() {
            return;
        }
        let gate = shared.gate.clone();
        let seq = gate.issue();
        writes.extend(shared.kv.take_staged(seq));
        #[cfg(feature = "db")]
        writes.extend(shared.db.take_staged(seq));
        let fence = Some(Fence {
            actor: shared.id.clone(),
            generation: shared.generation,
        });
        self.reg.writer().submit(WriteRequest {
            writes,
            fence,
            gate,
            seq,
            span: self.trace.clone(),
        });
    }

    /// Warns once per actor type when a snapshot passes [`LARGE_SNAPSHOT`] bytes.
    fn warn_if_large(&self, len: usize) {
        if len > LARGE_SNAPSHOT
            && !self
                .table
                .warned_large_snapshot
                .swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                actor = A::NAME,
                id = %self.ctx.shared.id,
                bytes = len,
                "the state snapshot passed 1 MiB and is rewritten whole after every change; \
                 keep large or growing data in the actor's key-value store (ctx.kv())"
            );
        }
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
