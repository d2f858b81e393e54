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

/// The run loop's state, made when a run starts and dropped when the loop stops for good
/// (most actor types have no loop: their instances carry one pointer, not the state). Owned
/// by the actor task.
#[derive(Default)]
pub(super) struct Runner {
    running: Option<Box<Running>>,
    /// Consecutive ends of runs shorter than [`RESTART_RESET`].
    early_ends: u32,
}

/// A run in progress, or waiting to restart.
struct Running {
    /// The loop's future; polled in the actor's loop.
    fut: BoxFuture<'static, RunEnd>,
    /// Fires the loop's signal.
    cancel: watch::Sender<bool>,
    /// When the current run started.
    started: Instant,
    /// The signal fired; the loop has until then to return.
    winding_until: Option<Instant>,
}

impl Runner {
    /// Whether a run is in progress (or waits to restart).
    pub(super) fn is_active(&self) -> bool {
        self.running.is_some()
    }

    /// When the loop must have returned, once its signal fired.
    pub(super) fn winding_until(&self) -> Option<Instant> {
        self.running.as_ref().and_then(|r| r.winding_until)
    }

    /// The end of the current run; pending for ever when none is in progress.
    pub(super) async fn ended(&mut self) -> RunEnd {
        match &mut self.running {
            Some(running) => (&mut running.fut).await,
            None => std::future::pending().await,
        }
    }
}

impl<A: Actor> Instance<A> {
    /// Starts the run loop after `delay` (unless the type has none).
    fn start_run_after(&mut self, delay: Duration) {
        if self.table.run_absent.load(Ordering::Relaxed) {
            return;
        }
        let (cancel, signal) = RunSignal::new();
        let ctx = self.ctx.clone();
        let fut = Box::pin(async move {
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
        });
        self.runner.running = Some(Box::new(Running {
            fut,
            cancel,
            started: Instant::now() + delay,
            winding_until: None,
        }));
    }

    /// Starts the run loop (unless the type has none).
    pub(super) fn start_run(&mut self) {
        self.start_run_after(Duration::ZERO);
    }

    /// Whether the run loop keeps the actor awake: it runs, and is not waiting for a queue
    /// message (or for its restart).
    pub(super) fn run_holds_awake(&self) -> bool {
        self.runner.is_active()
            && self.runner.winding_until().is_none()
            && self
                .ctx
                .shared
                .queues
                .peek()
                .is_none_or(|q| q.waiters() == 0)
    }

    /// The run ended: restart it with backoff, unless it was told to stop.
    pub(super) fn run_ended(&mut self, end: RunEnd) {
        let Some(running) = self.runner.running.take() else {
            return;
        };
        let winding = running.winding_until.is_some();
        let cancelled = *running.cancel.borrow();
        match end {
            RunEnd::Returned(Err(e)) if e.message() == NOT_DEFINED && !e.is_public() => {
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
        let ran = Instant::now().saturating_duration_since(running.started);
        self.runner.early_ends = if ran >= RESTART_RESET {
            1
        } else {
            self.runner.early_ends.saturating_add(1)
        };
        self.start_run_after(restart_delay(self.runner.early_ends));
    }

    /// Fires the run loop's signal and gives it the grace period; the actor keeps serving.
    /// Returns whether the loop is still running (the caller waits for it).
    pub(super) fn wind_down_run(&mut self) -> bool {
        let grace = self.options.run_grace;
        let Some(running) = &mut self.runner.running else {
            return false;
        };
        if running.winding_until.is_none() {
            running.cancel.send_replace(true);
            running.winding_until = Some(Instant::now() + grace);
        }
        true
    }

    /// The grace period passed: the loop is dropped.
    pub(super) fn abandon_run(&mut self) {
        if self.runner.running.take().is_some() {
            tracing::warn!(
                actor = A::NAME,
                "run loop did not return within its grace period; dropped"
            );
        }
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
