//! The alarm clock: wakes actors when their scheduled calls are due, even if they sleep.
//!
//! One task per registry keeps every pending alarm ordered by deadline. Deadlines are kept on
//! the runtime's monotonic clock (so tests can pause time); on startup they are rebuilt from
//! the wall-clock times stored with each alarm.

use std::collections::BTreeMap;
use std::time::Duration;

use footlights_protocol::ActorId;
use tokio::sync::mpsc;
use tokio::time::Instant;

struct Entry {
    actor_name: String,
    actor: ActorId,
    alarm: String,
}

enum Cmd {
    Add { deadline: Instant, entry: Entry },
}

/// Adds alarms to the clock. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct ClockHandle {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl ClockHandle {
    /// Starts the clock task; `fire(actor_name, actor_id, alarm_id)` runs when one is due.
    pub(crate) fn spawn(fire: impl Fn(&str, &ActorId, String) + Send + 'static) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, fire));
        ClockHandle { tx }
    }

    /// Fires `alarm` of `actor` after `delay`.
    pub(crate) fn add(&self, actor_name: &str, actor: &ActorId, alarm: &str, delay: Duration) {
        let entry = Entry {
            actor_name: actor_name.to_owned(),
            actor: actor.clone(),
            alarm: alarm.to_owned(),
        };
        let _ = self.tx.send(Cmd::Add {
            deadline: Instant::now() + delay,
            entry,
        });
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Cmd>, fire: impl Fn(&str, &ActorId, String)) {
    let mut due: BTreeMap<(Instant, u64), Entry> = BTreeMap::new();
    let mut seq = 0u64;
    loop {
        let next = due.keys().next().map(|(at, _)| *at);
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Add { deadline, entry }) => {
                    seq += 1;
                    due.insert((deadline, seq), entry);
                }
                None => return,
            },
            () = async { match next { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {
                let now = Instant::now();
                while let Some(entry) = due.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    let e = entry.remove();
                    fire(&e.actor_name, &e.actor, e.alarm);
                }
            }
        }
    }
}
