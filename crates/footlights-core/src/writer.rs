//! Group commit: one writer per registry turns the writes of many actors into one transaction.
//!
//! Actors hand their writes over and go on. The writer takes everything that is waiting,
//! keeps only the newest state snapshot of each actor, commits the batch (one fsync with the
//! SQLite driver), then tells each actor's [`Gate`] which sequence became durable.

use std::collections::HashMap;
use std::sync::Arc;

use footlights_storage::{ActorId, Driver, Write};
use tokio::sync::mpsc;

use crate::gate::Gate;

/// The most requests one commit takes, so a flood of writers cannot grow a batch forever.
const MAX_BATCH: usize = 4096;

pub(crate) struct WriteRequest {
    pub(crate) writes: Vec<Write>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) seq: u64,
}

/// Sends writes to the writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<WriteRequest>,
}

impl Writer {
    /// Starts the writer task on the current runtime.
    pub(crate) fn spawn(driver: Arc<dyn Driver>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(driver, rx));
        Writer { tx }
    }

    /// Queues a write; the gate hears when it is durable. If the writer is gone (the registry
    /// shut down), the write fails.
    pub(crate) fn submit(&self, req: WriteRequest) {
        if let Err(mpsc::error::SendError(req)) = self.tx.send(req) {
            req.gate.mark_failed(req.seq);
        }
    }
}

async fn run(driver: Arc<dyn Driver>, mut rx: mpsc::UnboundedReceiver<WriteRequest>) {
    let mut reqs = Vec::new();
    while rx.recv_many(&mut reqs, MAX_BATCH).await > 0 {
        let batch = coalesce(&mut reqs);
        let result = if batch.is_empty() {
            Ok(())
        } else {
            driver.commit(batch).await
        };
        match result {
            Ok(()) => reqs.drain(..).for_each(|r| r.gate.mark_durable(r.seq)),
            Err(e) => {
                tracing::error!(error = %e, source = ?std::error::Error::source(&e), writes = reqs.len(), "group commit failed");
                reqs.drain(..).for_each(|r| r.gate.mark_failed(r.seq));
            }
        }
    }
}

/// The writes of a batch, with every state snapshot but the newest of each actor dropped.
fn coalesce(reqs: &mut [WriteRequest]) -> Vec<Write> {
    let mut newest_state: HashMap<ActorId, (usize, usize)> = HashMap::new();
    for (i, req) in reqs.iter().enumerate() {
        for (j, w) in req.writes.iter().enumerate() {
            if let Write::State { actor, .. } = w {
                newest_state.insert(actor.clone(), (i, j));
            }
        }
    }
    let mut batch = Vec::new();
    for (i, req) in reqs.iter_mut().enumerate() {
        for (j, w) in std::mem::take(&mut req.writes).into_iter().enumerate() {
            let keep = match &w {
                Write::State { actor, .. } => newest_state.get(actor) == Some(&(i, j)),
                _ => true,
            };
            if keep {
                batch.push(w);
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(actor: &str, b: u8) -> Write {
        Write::State {
            actor: ActorId::new(actor),
            bytes: vec![b],
        }
    }

    #[test]
    fn only_the_newest_snapshot_per_actor_is_kept() {
        let gate = Gate::new();
        let mut reqs = vec![
            WriteRequest {
                writes: vec![state("a", 1), state("b", 1)],
                gate: gate.clone(),
                seq: 1,
            },
            WriteRequest {
                writes: vec![state("a", 2)],
                gate: gate.clone(),
                seq: 2,
            },
            WriteRequest {
                writes: vec![Write::DeleteAlarm {
                    actor: ActorId::new("a"),
                    alarm_id: "x".into(),
                }],
                gate,
                seq: 3,
            },
        ];
        let batch = coalesce(&mut reqs);
        assert_eq!(batch.len(), 3);
        assert!(batch.contains(&state("a", 2)));
        assert!(batch.contains(&state("b", 1)));
        assert!(!batch.contains(&state("a", 1)));
    }
}
