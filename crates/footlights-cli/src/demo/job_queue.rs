//! `jobQueue`: a run loop that works through the jobs clients send to its queue.

use footlights::RunSignal;
use footlights::prelude::*;
use footlights::queue::{NextOptions, QueueOptions, Queues};

/// A job sent to queue `jobs`: `{ n }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The number to double.
    pub n: i64,
}

/// What completing a job answers: `{ doubled: 2n }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doubled {
    /// Twice the job's `n`.
    pub doubled: i64,
}

/// Doubles every job of queue `jobs` in its run loop and counts them. The count is saved
/// with each completion, in the same durable step as the job's removal: each job is counted
/// exactly once, crashes included.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct JobQueue {
    processed: u64,
}

#[footlights::actor]
impl JobQueue {
    /// How many jobs it has completed.
    #[action]
    pub fn processed(&self) -> u64 {
        self.processed
    }

    fn queues(queues: &mut Queues<Self>) {
        // Completable: a job leaves the queue only with its completion, so a crash in between
        // delivers it again rather than losing it.
        queues.add::<Job>("jobs", QueueOptions::default().completable(true));
    }

    async fn run(ctx: Ctx<Self>, signal: RunSignal) -> Result<(), ActionError> {
        let options = NextOptions::default().signal(signal);
        while let Some(job) = ctx.queue().next::<Job>("jobs", options.clone()).await? {
            let n = job.body.n;
            job.complete_with(move |this: &mut JobQueue, _| {
                this.processed += 1;
                Ok(Doubled {
                    doubled: n.saturating_mul(2),
                })
            })
            .await?;
        }
        Ok(())
    }
}
