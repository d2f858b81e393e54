//! Graceful shutdown: the stop signal every connection watches, and the count of open
//! WebSocket and SSE connections the server waits for before it stops the registry.
//!
//! Order (see [`Server::serve`](crate::Server::serve)): the host's shutdown future resolves →
//! the [`Stop`] signal fires and the listener stops accepting → in-flight HTTP requests finish
//! while every WebSocket and SSE connection closes with 1001 `ws.going_away` → once every HTTP
//! connection has ended and [`ConnTracker`] counts zero, or the shutdown timeout has passed and
//! a second [`Stop`] signal has cut the connections left, the registry saves and stops its
//! actors.

use std::sync::Arc;

use tokio::sync::watch;

/// The server is stopping. Cheap to clone; one per connection task.
#[derive(Debug, Clone)]
pub(crate) struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A signal and the switch that fires it.
    pub(crate) fn new() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    /// Whether the server is stopping.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the server is stopping (also if the switch is gone).
    pub(crate) async fn wait(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server is stopping.
    Stopping,
    /// `max_connections` are open.
    Full,
}

/// Counts open WebSocket and SSE connections, up to a maximum.
#[derive(Debug)]
pub(crate) struct ConnTracker {
    /// Shared with every [`ConnGuard`], which decrements it on drop.
    live: Arc<watch::Sender<usize>>,
    max: usize,
}

impl ConnTracker {
    pub(crate) fn new(max: usize) -> Self {
        ConnTracker {
            live: Arc::new(watch::channel(0).0),
            max,
        }
    }

    /// Takes a slot for a new connection, held until the guard drops. `kept` connections
    /// (kept by the runtime for their clients to resume) count against the maximum too.
    pub(crate) fn acquire(&self, stop: &Stop, kept: usize) -> Result<ConnGuard, Refusal> {
        if stop.is_stopping() {
            return Err(Refusal::Stopping);
        }
        let mut taken = false;
        self.live.send_if_modified(|n| {
            taken = n.saturating_add(kept) < self.max;
            if taken {
                *n += 1;
            }
            taken
        });
        if taken {
            Ok(ConnGuard {
                live: self.live.clone(),
                line: None,
            })
        } else {
            Err(Refusal::Full)
        }
    }

    /// How many connections are open.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        *self.live.borrow()
    }

    /// Resolves when no connection is open.
    pub(crate) async fn wait_idle(&self) {
        let mut rx = self.live.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// One open connection's slot in the [`ConnTracker`].
#[derive(Debug)]
pub(crate) struct ConnGuard {
    live: Arc<watch::Sender<usize>>,
    /// Counts and logs the connection, if it is one a client sees.
    line: Option<crate::logging::ConnLine>,
}

impl ConnGuard {
    /// Counts the connection in its transport's series while the slot is held, and logs it
    /// when the slot is given back.
    pub(crate) fn logged(mut self, line: crate::logging::ConnLine) -> Self {
        self.line = Some(line);
        self
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_are_counted_and_released() {
        let (switch, stop) = Stop::new();
        let tracker = ConnTracker::new(2);
        let a = tracker.acquire(&stop, 0).unwrap();
        let b = tracker.acquire(&stop, 0).unwrap();
        assert_eq!(tracker.acquire(&stop, 0).unwrap_err(), Refusal::Full);
        drop(b);
        assert_eq!(
            tracker.acquire(&stop, 1).unwrap_err(),
            Refusal::Full,
            "a connection kept for a resume takes a place"
        );
        let b = tracker.acquire(&stop, 0).unwrap();
        drop(a);
        assert_eq!(tracker.live(), 1);
        switch.send_replace(true);
        assert_eq!(tracker.acquire(&stop, 0).unwrap_err(), Refusal::Stopping);
        drop(b);
        tracker.wait_idle().await;
    }
}
