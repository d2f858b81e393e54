//! The background run loop: [`Actor::run`](crate::Actor::run) and its [`RunSignal`].
//!
//! # Policy
//! - The loop starts after the wake hook, each time the actor starts, and runs beside the
//!   mailbox: actions keep being served while it runs.
//! - While it runs the actor stays awake, except while the loop waits for a queue message
//!   ([`Queue::next`](crate::queue::Queue::next) and friends) or for its restart: an actor
//!   whose loop only waits for work may sleep, and a message sent to its queue wakes it.
//! - Before the actor sleeps, stops or is destroyed, the signal fires; the loop then has
//!   [`ActorOptions::run_grace`](crate::ActorOptions::run_grace) to return, while the
//!   actor keeps serving messages; after that it is dropped.
//! - If the loop returns (or fails, or panics) on its own, it is started again after a delay:
//!   1 s, doubling on each consecutive early end up to 30 s; a loop that ran at least a
//!   minute starts again after 1 s. Failures are logged.

use std::time::Duration;

use tokio::sync::watch;

/// The first restart delay of a run loop that ended on its own.
pub(crate) const RESTART_MIN: Duration = Duration::from_secs(1);
/// The longest restart delay.
pub(crate) const RESTART_MAX: Duration = Duration::from_secs(30);
/// A loop that ran this long restarts after [`RESTART_MIN`] again.
pub(crate) const RESTART_RESET: Duration = Duration::from_secs(60);

/// What the default [`Actor::run`](crate::Actor::run) answers: the actor has no loop.
pub(crate) fn not_defined() -> footlights_protocol::ActionError {
    footlights_protocol::ActionError::internal(NOT_DEFINED)
}

/// The message of [`not_defined`], by which the runtime knows it.
pub(crate) const NOT_DEFINED: &str = "footlights.run_not_defined";

/// The delay before the run loop's next start, after `early_ends` consecutive early ends.
pub(crate) fn restart_delay(early_ends: u32) -> Duration {
    RESTART_MIN
        .saturating_mul(1u32 << early_ends.saturating_sub(1).min(16))
        .min(RESTART_MAX)
}

/// Fires when the actor is going to sleep, stop or be destroyed: the run loop should return.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct RunSignal(watch::Receiver<bool>);

impl RunSignal {
    pub(crate) fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, RunSignal(rx))
    }

    /// A signal that never fires (for tests and loops driven by hand).
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        // Kept alive for ever: the receiver sees no change and no close.
        std::mem::forget(tx);
        RunSignal(rx)
    }

    /// Whether the signal fired.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the signal fires.
    pub async fn cancelled(&self) {
        let mut rx = self.0.clone();
        // An error means the actor is gone: as good as fired.
        let _ = rx.wait_for(|fired| *fired).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delay_doubles_within_bounds() {
        assert_eq!(restart_delay(0), RESTART_MIN);
        assert_eq!(restart_delay(1), RESTART_MIN);
        assert_eq!(restart_delay(2), RESTART_MIN * 2);
        assert_eq!(restart_delay(3), RESTART_MIN * 4);
        assert_eq!(restart_delay(6), RESTART_MAX);
        assert_eq!(restart_delay(u32::MAX), RESTART_MAX);
    }

    #[tokio::test]
    async fn a_signal_fires_once_sent() {
        let (tx, signal) = RunSignal::new();
        assert!(!signal.is_cancelled());
        let waiting = tokio::spawn({
            let s = signal.clone();
            async move { s.cancelled().await }
        });
        tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(signal.is_cancelled());
    }
}
