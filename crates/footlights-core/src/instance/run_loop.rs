//! Driving the actor's [`run`](crate::Actor::run) loop beside the mailbox: start, restart
//! with backoff, and the wind-down before the actor sleeps or is destroyed. Policy in
//! [`crate::run`].

use super::*;
use crate::run::{NOT_DEFINED, RESTART_RESET, RunSignal, restart_delay};

/// How a run of the loop ended.
pub(super) enum RunEnd {
    /// The loop returned (or failed, or panicked).
    Returned(Result<(), ActionError>),
    /// The signal fired while it waited to restart.
    Cancelled,
}

/// The run loop's state. Owned by the actor task.
#[derive(Default)]
pub(super) struct Runner {
    /// The loop's future while it runs or waits to restart; polled in the actor's loop.
    fut: Option<BoxFuture<'static, RunEnd>>,
    /// Fires the loop's signal.
    cancel: Option<watch::Sender<bool>>,
    /// The type has no loop (the default hook answered): never started again.
    absent: bool,
    /// Consecutive ends of runs shorter than [`RESTART_RESET`].
    early_ends: u32,
    /// When the current run started.
    started: Option<Instant>,
    /// The signal fired; the loop has until then to return.
    pub(super) winding_until: Option<Instant>,
}

impl Runner {
    /// Whether a run is in progress (or waits to restart).
    pub(super) fn is_active(&self) -> bool {
        self.fut.is_some()
    }

    /// The end of the current run; pending for ever when none is in progress.
    pub(super) async fn ended(&mut self) -> RunEnd {
        match &mut self.fut {
            Some(fut) => fut.await,
            None => std::future::pending().await,
        }
    }
}

impl<A: Actor> Instance<A> {
    /// Starts the run loop after `delay` (unless the type has none).
    pub(super) fn start_run(&mut self, delay: Duration) {
        if self.runner.absent || self.table.run_absent.load(Ordering::Relaxed) {
            return;
        }
        let (cancel, signal) = RunSignal::new();
        let ctx = self.ctx.clone();
        self.runner.cancel = Some(cancel);
        self.runner.started = Some(Instant::now() + delay);
        self.runner.winding_until = None;
        self.runner.fut = Some(Box::pin(async move {
            if !delay.is_zero() {
                // Waiting to restart does not keep the actor awake.
                let _waiting = ctx.shared.queues.waiting();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = signal.cancelled() => return RunEnd::Cancelled,
                }
            }
            let run = AssertUnwindSafe(A::run(ctx, signal)).catch_unwind();
            RunEnd::Returned(run.await.unwrap_or_else(|_| {
                tracing::error!(actor = A::NAME, "run loop panicked");
                Err(ActionError::internal("run loop panicked"))
            }))
        }));
    }

    /// Whether the run loop keeps the actor awake: it runs, and is not waiting for a queue
    /// message (or for its restart).
    pub(super) fn run_holds_awake(&self) -> bool {
        self.runner.is_active()
            && self.runner.winding_until.is_none()
            && self
                .ctx
                .shared
                .queues
                .peek()
                .is_none_or(|q| q.waiters() == 0)
    }

    /// The run ended: restart it with backoff, unless it was told to stop.
    pub(super) fn run_ended(&mut self, end: RunEnd) {
        self.runner.fut = None;
        let winding = self.runner.winding_until.take().is_some();
        let cancelled = self.runner.cancel.take().is_some_and(|c| *c.borrow());
        match end {
            RunEnd::Returned(Err(e)) if e.message() == NOT_DEFINED && !e.is_public() => {
                self.runner.absent = true;
                self.table.run_absent.store(true, Ordering::Relaxed);
                return;
            }
            RunEnd::Returned(Err(e)) if !cancelled => {
                tracing::warn!(actor = A::NAME, error = %e, "run loop failed; restarting");
            }
            RunEnd::Returned(Ok(())) if !cancelled => {
                tracing::debug!(actor = A::NAME, "run loop returned; restarting");
            }
            _ => {}
        }
        if winding || cancelled {
            return;
        }
        let ran = self.runner.started.map_or(Duration::ZERO, |s| {
            Instant::now().saturating_duration_since(s)
        });
        if ran >= RESTART_RESET {
            self.runner.early_ends = 1;
        } else {
            self.runner.early_ends = self.runner.early_ends.saturating_add(1);
        }
        self.start_run(restart_delay(self.runner.early_ends));
    }

    /// Fires the run loop's signal and gives it the grace period; the actor keeps serving.
    /// Returns whether the loop is still running (the caller waits for it).
    pub(super) fn wind_down_run(&mut self) -> bool {
        if !self.runner.is_active() {
            return false;
        }
        if self.runner.winding_until.is_none() {
            if let Some(cancel) = &self.runner.cancel {
                cancel.send_replace(true);
            }
            self.runner.winding_until = Some(Instant::now() + self.options.run_grace);
        }
        true
    }

    /// The grace period passed: the loop is dropped.
    pub(super) fn abandon_run(&mut self) {
        if self.runner.fut.take().is_some() {
            tracing::warn!(
                actor = A::NAME,
                "run loop did not return within its grace period; dropped"
            );
        }
        self.runner.cancel = None;
        self.runner.winding_until = None;
    }

    /// Stops the run loop without serving messages (shutdown): signal, then at most the
    /// grace period.
    pub(super) async fn stop_run(&mut self) {
        if !self.wind_down_run() {
            return;
        }
        let grace = self.options.run_grace;
        if let Ok(end) = tokio::time::timeout(grace, self.runner.ended()).await {
            self.run_ended(end);
        }
        self.abandon_run();
    }
}
