//! Running actions and scheduled calls inside the actor task, each bounded by its timeout.

use super::*;
use crate::alarm::{AlarmData, Fired, MAX_RETRIES, backoff, now_ms, worth_retrying};
use crate::ctx::Shared;
use crate::inspect::{ActionRecord, Caller, LogRecord};
use footlights_storage::Alarm;

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
        let caller = match &conn {
            Some(c) if c.is_ephemeral() => Caller::Stateless,
            Some(_) => Caller::Connection,
            None => Caller::Schedule,
        };
        let done = move |shared: &Shared<A>, name: &str, result: &Result<Value, ActionError>| {
            let error = result.as_ref().err().map(|e| (e.group(), e.code()));
            let duration = started.elapsed();
            shared.metrics.action_done(duration, error);
            shared.tap.publish(|| {
                LogRecord::Action(ActionRecord {
                    at_ms: now_ms(),
                    name: name.to_owned(),
                    caller,
                    duration,
                    error: error.map(|(group, code)| format!("{group}.{code}")),
                })
            });
        };
        let Some(entry) = self.table.get(name) else {
            let result = Err(ActionError::action_not_found(name));
            done(&self.ctx.shared, name, &result);
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
                let r = guarded(
                    limit,
                    ActionError::action_timed_out,
                    f(&self.actor, &ctx, args),
                )
                .await;
                // A panic leaves no state to restore, but the store and database writes it
                // made go, as after a panic in a `&mut self` action.
                if r.as_ref().err().is_some_and(is_panic) {
                    self.ctx.shared.kv.discard_staged();
                    #[cfg(feature = "db")]
                    self.ctx.shared.db.discard_staged();
                }
                r
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
                let result = self.before_response(&ctx, name, v);
                done(&self.ctx.shared, name, &result);
                Invoked::Now(result)
            }
            Ok(Outcome::Later(fut)) => {
                let shared = self.ctx.shared.clone();
                let name = name.to_owned();
                Invoked::Later(Box::pin(async move {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let result = guarded(remaining, ActionError::action_timed_out, fut).await;
                    done(&shared, &name, &result);
                    result
                }))
            }
            Err(e) => {
                if is_panic(&e) {
                    tracing::error!(actor = A::NAME, action = name, "action panicked");
                }
                let result = Err(e);
                done(&self.ctx.shared, name, &result);
                Invoked::Now(result)
            }
        }
    }

    /// Passes a successful action's output through the actor's
    /// [`on_before_action_response`](Actor::on_before_action_response) hook; a panic there is an
    /// internal error.
    pub(super) fn before_response(
        &self,
        ctx: &Ctx<A>,
        action: &str,
        output: Value,
    ) -> Result<Value, ActionError> {
        let hook = AssertUnwindSafe(|| self.actor.on_before_action_response(ctx, action, output));
        std::panic::catch_unwind(hook).unwrap_or_else(|_| {
            tracing::error!(
                actor = A::NAME,
                action,
                "before-action-response hook panicked"
            );
            Err(ActionError::internal("panicked"))
        })
    }

    /// Runs a scheduled call or a repeating job's fire that is due. See the policy in
    /// [`crate::schedule`].
    pub(super) async fn fire_alarm(&mut self, alarm_id: String) {
        let shared = self.ctx.shared.clone();
        let Some(alarm) = shared.alarms().remove(&alarm_id) else {
            return;
        };
        let data = match AlarmData::decode(&alarm.args) {
            Ok(data) => data,
            Err(e) => {
                shared.push_write(Write::DeleteAlarm {
                    actor: shared.id.clone(),
                    alarm_id,
                });
                return tracing::error!(actor = A::NAME, error = %e, "alarm unreadable; dropped");
            }
        };
        let ran_ms = now_ms();
        let mut next_id = None;
        if let Some(repeat) = &data.repeat {
            // The next fire is armed before this one runs, so the action may delete or
            // re-set its own job.
            shared.push_write(Write::DeleteAlarm {
                actor: shared.id.clone(),
                alarm_id: alarm_id.clone(),
            });
            let mut repeat = repeat.clone();
            repeat.record(Fired {
                due_ms: alarm.at_ms,
                ran_ms,
                error: None,
            });
            match repeat.rule.next_after(alarm.at_ms, ran_ms) {
                Ok(at_ms) => {
                    let id = uuid::Uuid::new_v4().simple().to_string();
                    let next = AlarmData {
                        args: data.args.clone(),
                        attempt: 0,
                        repeat: Some(repeat),
                    };
                    match next.encode() {
                        Ok(args) => {
                            shared.arm_alarm(
                                Alarm {
                                    id: id.clone(),
                                    at_ms,
                                    action: alarm.action.clone(),
                                    args,
                                },
                                alarm.at_ms,
                            );
                            next_id = Some(id);
                        }
                        Err(e) => tracing::error!(actor = A::NAME, error = %e, "job not re-armed"),
                    }
                }
                Err(e) => {
                    tracing::warn!(actor = A::NAME, job = %repeat.name, error = %e, "job ends: its rule fires no more");
                }
            }
        }
        let run = AlarmRun {
            id: alarm_id,
            action: alarm.action,
            due_ms: alarm.at_ms,
            data,
            next_id,
        };
        let args = run.data.args.clone();
        // A trace of its own: nothing outside the actor asked for it.
        self.trace = self.traced("schedule", &tracing::Span::none(), Some(&run.action));
        let span = self.trace.clone();
        match self.invoke(&run.action, args, None).instrument(span).await {
            Invoked::Now(result) => {
                crate::trace::outcome(&self.trace, &result);
                self.alarm_done(run, result.map(drop));
            }
            Invoked::Later(fut) => {
                self.deferred
                    .action(Waiter::Alarm(Box::new(run)), String::new(), fut);
            }
        }
    }

    /// Settles a fired alarm once its action answered: a one-off call is deleted, or tried
    /// again later if it failed; a job's fire gets its outcome in the history.
    pub(super) fn alarm_done(&mut self, run: AlarmRun, result: Result<(), ActionError>) {
        let shared = &self.ctx.shared;
        if let Some(repeat) = &run.data.repeat {
            let Err(e) = result else { return };
            tracing::warn!(actor = A::NAME, job = %repeat.name, action = %run.action, error = %e, "job's action failed");
            // Note the failure in the history of the next fire, unless the action replaced it.
            let Some(next_id) = run.next_id else { return };
            let Some(mut next) = shared.alarms().get(&next_id).cloned() else {
                return;
            };
            let Ok(mut data) = AlarmData::decode(&next.args) else {
                return;
            };
            if let Some(last) = data
                .repeat
                .as_mut()
                .and_then(|r| r.history.iter_mut().rev().find(|f| f.due_ms == run.due_ms))
            {
                last.error = Some(format!("{}.{}", e.group(), e.code()));
            }
            if let Ok(args) = data.encode() {
                next.args = args;
                shared.store_alarm(next);
            }
            return;
        }
        let retry = match &result {
            Ok(()) => false,
            Err(e) => worth_retrying(e) && run.data.attempt < MAX_RETRIES,
        };
        if let Err(e) = &result {
            tracing::warn!(
                actor = A::NAME,
                action = %run.action,
                error = %e,
                failures = run.data.attempt + 1,
                retry,
                "scheduled action failed"
            );
        }
        if !retry {
            shared.push_write(Write::DeleteAlarm {
                actor: shared.id.clone(),
                alarm_id: run.id,
            });
            return;
        }
        let attempt = run.data.attempt + 1;
        let wait = i64::try_from(backoff(attempt).as_millis()).unwrap_or(i64::MAX);
        let data = AlarmData {
            attempt,
            ..run.data
        };
        match data.encode() {
            Ok(args) => shared.arm_alarm(
                Alarm {
                    id: run.id,
                    at_ms: now_ms().saturating_add(wait),
                    action: run.action,
                    args,
                },
                0,
            ),
            Err(e) => tracing::error!(actor = A::NAME, error = %e, "retry not armed"),
        }
    }
}

/// A fired alarm whose action is running: what settling it needs.
pub(super) struct AlarmRun {
    /// The alarm's id (a one-off call keeps it across retries).
    id: String,
    action: String,
    /// When it was due.
    due_ms: i64,
    data: AlarmData,
    /// For a job: the id of its next fire, armed before this one ran.
    next_id: Option<String>,
}
