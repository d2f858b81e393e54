//! Running actions and scheduled calls inside the actor task, each bounded by its timeout.

use super::*;
use crate::metrics::ActorTypeMetrics;

/// What running an action gave: its answer, or the deferred part still to poll.
pub(super) enum Invoked {
    Now(Result<Value, ActionError>),
    Later(BoxFuture<'static, Result<Value, ActionError>>),
}

/// Runs a hook or action future with a timeout, turning panics into internal errors.
///
/// The future is polled once before the timer is made: most hooks and actions finish at
/// once, and then cost no timer. The limit counts from that first poll.
pub(super) async fn guarded<T>(
    limit: Duration,
    on_timeout: fn() -> ActionError,
    fut: impl std::future::Future<Output = Result<T, ActionError>>,
) -> Result<T, ActionError> {
    let caught = |r: Result<Result<T, ActionError>, _>| match r {
        Err(_panic) => Err(ActionError::internal("panicked")),
        Ok(result) => result,
    };
    let mut fut = std::pin::pin!(AssertUnwindSafe(fut).catch_unwind());
    if let std::task::Poll::Ready(r) = futures::poll!(fut.as_mut()) {
        return caught(r);
    }
    match tokio::time::timeout(limit, fut).await {
        Err(_) => Err(on_timeout()),
        Ok(r) => caught(r),
    }
}

/// Whether `e` is what [`guarded`] makes of a panic.
pub(super) fn is_panic(e: &ActionError) -> bool {
    !e.is_public() && e.message() == "panicked"
}

impl<A: Actor> Instance<A> {
    /// Runs action `name`: at once, or up to its deferred part, which the caller polls.
    pub(super) async fn invoke(
        &mut self,
        name: &str,
        args: Vec<Value>,
        conn: Option<Conn<A>>,
    ) -> Invoked {
        let started = std::time::Instant::now();
        let done = move |metrics: &ActorTypeMetrics, result: &Result<Value, ActionError>| {
            let error = result.as_ref().err().map(|e| (e.group(), e.code()));
            metrics.action_done(started.elapsed(), error);
        };
        let Some(entry) = self.table.get(name) else {
            let result = Err(ActionError::action_not_found(name));
            done(&self.ctx.shared.metrics, &result);
            return Invoked::Now(result);
        };
        let limit = self
            .table
            .timeout_of(name)
            .unwrap_or(self.options.action_timeout);
        let deadline = Instant::now() + limit;
        let ctx = self.ctx.with_conn(conn);
        let outcome = match entry {
            Entry::Read(f) => {
                guarded(
                    limit,
                    ActionError::action_timed_out,
                    f(&self.actor, &ctx, args),
                )
                .await
            }
            Entry::Write(f) => {
                self.dirty = true;
                let r = guarded(
                    limit,
                    ActionError::action_timed_out,
                    f(&mut self.actor, &ctx, args),
                )
                .await;
                if r.as_ref().err().is_some_and(is_panic) {
                    self.panicked = true;
                }
                r
            }
        };
        match outcome {
            Ok(Outcome::Now(v)) => {
                let result = Ok(v);
                done(&self.ctx.shared.metrics, &result);
                Invoked::Now(result)
            }
            Ok(Outcome::Later(fut)) => {
                let metrics = self.ctx.shared.metrics.clone();
                Invoked::Later(Box::pin(async move {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let result = guarded(remaining, ActionError::action_timed_out, fut).await;
                    done(&metrics, &result);
                    result
                }))
            }
            Err(e) => {
                if is_panic(&e) {
                    tracing::error!(actor = A::NAME, action = name, "action panicked");
                }
                let result = Err(e);
                done(&self.ctx.shared.metrics, &result);
                Invoked::Now(result)
            }
        }
    }

    /// Runs a scheduled call that is due.
    pub(super) async fn fire_alarm(&mut self, alarm_id: String) {
        let alarm = self.ctx.shared.alarms().remove(&alarm_id);
        let Some(alarm) = alarm else { return };
        let shared = &self.ctx.shared;
        shared
            .pending_writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Write::DeleteAlarm {
                actor: shared.id.clone(),
                alarm_id,
            });
        let args = match snapshot::decode_args(&alarm.args) {
            Ok(args) => args,
            Err(e) => {
                return tracing::error!(actor = A::NAME, error = %e, "alarm arguments unreadable");
            }
        };
        match self.invoke(&alarm.action, args, None).await {
            Invoked::Now(Ok(_)) => {}
            Invoked::Now(Err(e)) => {
                tracing::warn!(actor = A::NAME, action = %alarm.action, error = %e, "scheduled action failed");
            }
            Invoked::Later(fut) => self.deferred.action(Waiter::Alarm(alarm.action), fut),
        }
    }
}
