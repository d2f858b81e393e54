//! Queue operations as messages of the actor task: sends (stored with the message's writes)
//! and removals of taken messages (with an optional change of the state).

use super::*;
use crate::queue::message::UpdateFn;
use crate::queue::state::{self, Op};

impl<A: Actor> Instance<A> {
    pub(super) async fn queue_op(&mut self, op: Op) {
        match op {
            Op::Send {
                name,
                body,
                params,
                request,
                reply,
                done,
            } => {
                let conn = match self
                    .open_conn(ConnId::new(random_id()), params, &request, None)
                    .await
                {
                    Ok(conn) => conn,
                    Err(e) => {
                        let e = for_client(A::NAME, e);
                        return self.ctx.shared.gate.push(Output::Reply(reply, Err(e)));
                    }
                };
                let result = self.enqueue(&name, body, done).map(|()| Value::Null);
                let result = result.map_err(|e| for_client(A::NAME, e));
                self.ctx.shared.gate.push(Output::Reply(reply, result));
                self.close_ephemeral(&conn).await;
            }
            Op::Finish {
                seqs,
                update,
                response,
                reply,
            } => {
                let result = self.finish_queued(&seqs, update, response);
                self.ctx.shared.gate.push(Output::Reply(reply, result));
            }
        }
    }

    /// Checks a message against its queue's declaration and limits, and stores it.
    fn enqueue(
        &mut self,
        name: &str,
        body: Value,
        done: Option<state::ReplyTx>,
    ) -> Result<(), ActionError> {
        let shared = &self.ctx.shared;
        let Some(spec) = shared.queue_specs.get(name) else {
            return Err(ActionError::forbidden(format!(
                "the actor does not accept queue `{name}`"
            )));
        };
        (spec.check)(&body)?;
        let bytes = state::encode(name, &body)?;
        let limit = spec.options.max_message_bytes;
        if bytes.len() > limit {
            #[derive(serde::Serialize)]
            struct Over {
                bytes: usize,
                limit: usize,
            }
            return Err(ActionError::new(
                "queue",
                "message_too_large",
                format!(
                    "a message of {} bytes is over queue `{name}`'s limit of {limit}",
                    bytes.len()
                ),
            )
            .with_metadata(&Over {
                bytes: bytes.len(),
                limit,
            }));
        }
        if shared.queues.len(name) >= spec.options.max_len {
            return Err(crate::queue::full(name, spec.options.max_len));
        }
        let write = shared.queues.push(&shared.id, name, body, bytes, done);
        shared.metrics.queued(name, 1);
        shared
            .pending_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(write);
        Ok(())
    }

    /// Runs `update` on the state, then removes the messages `seqs` and answers their waiting
    /// senders with the response; nothing is removed if `update` fails.
    fn finish_queued(
        &mut self,
        seqs: &[u64],
        update: Option<Box<dyn std::any::Any + Send>>,
        response: Option<Value>,
    ) -> Result<Value, ActionError> {
        let mut out = response.unwrap_or(Value::Undefined);
        if let Some(update) = update {
            let Ok(update) = update.downcast::<UpdateFn<A>>() else {
                return Err(ActionError::internal("queue update of another actor type"));
            };
            self.dirty = true;
            let ctx = self.ctx.clone();
            let actor = &mut self.actor;
            match std::panic::catch_unwind(AssertUnwindSafe(move || (*update)(actor, &ctx))) {
                Ok(Ok(value)) => out = value,
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    tracing::error!(actor = A::NAME, "queue completion panicked");
                    self.panicked = true;
                    return Err(ActionError::internal("queue completion panicked"));
                }
            }
        }
        let shared = &self.ctx.shared;
        let mut writes = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some((write, waiter)) = shared.queues.remove(&shared.id, *seq, &shared.metrics) {
                writes.push(write);
                if let Some(waiter) = waiter {
                    shared.gate.push(Output::Reply(waiter, Ok(out.clone())));
                }
            }
        }
        shared
            .pending_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(writes);
        Ok(out)
    }
}
