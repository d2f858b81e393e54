//! A job-processing actor, as an application would write one: clients send jobs to its
//! durable queue `jobs`; its background run loop takes them one at a time, reports progress
//! to subscribed connections while it works, completes each job with its result (which a
//! sender that waits receives) and keeps the most recent results.
//!
//! The work itself is text statistics (words, characters, the longest word), done in up to
//! [`CHUNKS`] chunks with a `progress` event after each. A job may ask for a pause between
//! chunks (`stepMs`), which stands in for slow work such as calling another service.
//!
//! What the queue guarantees: a job leaves the queue only together with its result (one
//! durable step), so a job cut short (the actor going to sleep, a server restart, a crash) is
//! taken again by the next run loop, and each result is stored exactly once.
//!
//! | | Wire name | Shape |
//! |---|---|---|
//! | actor | `jobWorker` | |
//! | queue | `jobs` | [`Job`] `{id, text, stepMs?}` → [`JobResult`] `{id, words, characters, longest}` |
//! | event | `progress` | [`Progress`] `{job, percent}` |
//! | event | `finished` | [`Finished`] `(JobResult)` |
//! | action | `recent()` | the latest [`RECENT`] results, oldest first |
//! | action | `result(id)` | the stored result of job `id`, or `null` |
//! | action | `processed()` | how many jobs it has completed |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use footlights::{Registry, SendOutcome};
//! use job_worker::{JOBS, Job, JobWorker, JobWorkerActions};
//!
//! let registry = Registry::builder().actor::<JobWorker>().start().await?; // in memory
//! let worker = registry.client().get_or_create::<JobWorker>(["reports"]);
//! let job = Job::new("j1", "to be or not to be");
//! let outcome = worker.enqueue_and_wait(JOBS.as_str(), &job, Duration::from_secs(10)).await?;
//! let SendOutcome::Completed(Some(result)) = outcome else { panic!("{outcome:?}") };
//! assert_eq!(result.get("words").and_then(|w| w.as_i64()), Some(6));
//! assert_eq!(worker.processed().await?, 1);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use footlights::RunSignal;
use footlights::prelude::*;
use footlights::queue::{NextOptions, QueueName, QueueOptions, Queues};

/// Queue `jobs`, of [`Job`]s: the actor declares it and takes from it with this constant, so
/// the message type is checked where jobs are taken.
pub const JOBS: QueueName<Job> = QueueName::new("jobs");

/// How many results [`JobWorker`] keeps.
pub const RECENT: usize = 20;

/// How many chunks (and `progress` events) a job's work is split into, at most.
pub const CHUNKS: usize = 10;

/// The longest pause between chunks a job may ask for.
pub const MAX_STEP: Duration = Duration::from_secs(1);

/// A job, sent to queue `jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// The job's id, chosen by the sender; results and progress events carry it.
    pub id: String,
    /// The text to work on.
    pub text: String,
    /// A pause between chunks, in milliseconds (at most [`MAX_STEP`]); 0 by default.
    #[serde(default)]
    pub step_ms: u64,
}

impl Job {
    /// A job without pauses.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Job {
            id: id.into(),
            text: text.into(),
            step_ms: 0,
        }
    }

    /// The same job with a pause of `step` between chunks.
    #[must_use]
    pub fn with_step(mut self, step: Duration) -> Self {
        self.step_ms = u64::try_from(step.as_millis()).unwrap_or(u64::MAX);
        self
    }
}

/// What a job produced: the answer to a sender that waits, and what [`JobWorker`] keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The job's id.
    pub id: String,
    /// How many words its text has.
    pub words: u64,
    /// How many characters.
    pub characters: u64,
    /// Its longest word (the first of equal length); empty for a text without words.
    pub longest: String,
}

/// `progress`: how far job `job` is, after each chunk of work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct Progress {
    /// The job's id.
    pub job: String,
    /// Percent done: rises with each chunk, 100 after the last.
    pub percent: u8,
}

/// `finished`: a job's result, once it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct Finished(pub JobResult);

/// The job-processing actor. Its state is the recent results and a count, saved with each
/// job's completion.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct JobWorker {
    recent: VecDeque<JobResult>,
    processed: u64,
}

/// How a run of the work ended.
enum Worked {
    /// The result, ready to store.
    Done(JobResult),
    /// The actor is going to sleep or stopping: the job stays queued for the next start.
    Cancelled,
}

/// Does one job in chunks, with a `progress` event after each; stops between chunks when
/// `signal` fires.
async fn work(ctx: &Ctx<JobWorker>, job: &Job, signal: &RunSignal) -> Worked {
    let words: Vec<&str> = job.text.split_whitespace().collect();
    let total = words.len();
    let chunks = total.clamp(1, CHUNKS);
    let step = Duration::from_millis(job.step_ms).min(MAX_STEP);
    let mut longest = "";
    for i in 0..chunks {
        for word in &words[total * i / chunks..total * (i + 1) / chunks] {
            if word.chars().count() > longest.chars().count() {
                longest = word;
            }
        }
        if !step.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(step) => {}
                () = signal.cancelled() => return Worked::Cancelled,
            }
        }
        if signal.is_cancelled() {
            return Worked::Cancelled;
        }
        ctx.broadcast(Progress {
            job: job.id.clone(),
            percent: u8::try_from((i + 1) * 100 / chunks).unwrap_or(100),
        });
    }
    Worked::Done(JobResult {
        id: job.id.clone(),
        words: u64::try_from(total).unwrap_or(u64::MAX),
        characters: u64::try_from(job.text.chars().count()).unwrap_or(u64::MAX),
        longest: longest.to_owned(),
    })
}

#[footlights::actor(name = "jobWorker")]
impl JobWorker {
    fn queues(queues: &mut Queues<Self>) {
        // Completable: a job leaves the queue only with its completion, so one cut short is
        // delivered again rather than lost.
        queues.add(JOBS, QueueOptions::default().completable(true));
    }

    async fn run(ctx: Ctx<Self>, signal: RunSignal) -> Result<(), ActionError> {
        let options = NextOptions::default().signal(signal.clone());
        while let Some(job) = ctx.queue().next(JOBS, options.clone()).await? {
            let result = match work(&ctx, &job.body, &signal).await {
                Worked::Done(result) => result,
                // Dropping the message puts it back: the next start takes it again.
                Worked::Cancelled => return Ok(()),
            };
            job.complete_with(move |this: &mut JobWorker, ctx| {
                this.processed += 1;
                if this.recent.len() == RECENT {
                    this.recent.pop_front();
                }
                this.recent.push_back(result.clone());
                ctx.broadcast(Finished(result.clone()));
                Ok(result)
            })
            .await?;
        }
        Ok(())
    }

    /// The latest results (at most [`RECENT`]), oldest first.
    #[action]
    pub fn recent(&self) -> Vec<JobResult> {
        self.recent.iter().cloned().collect()
    }

    /// The stored result of job `id`, if it is among the recent ones.
    #[action]
    pub fn result(&self, id: String) -> Option<JobResult> {
        self.recent.iter().rev().find(|r| r.id == id).cloned()
    }

    /// How many jobs it has completed.
    #[action]
    pub fn processed(&self) -> u64 {
        self.processed
    }
}
