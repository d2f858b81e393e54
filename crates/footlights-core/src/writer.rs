//! Group commit: one writer per registry turns the writes of many actors into one transaction.
//!
//! Actors hand their writes over and go on. New actors are recorded the same way: the writer
//! takes everything that is waiting (state writes and creates), keeps only the newest state
//! snapshot of each actor, commits the batch (one fsync with the SQLite driver), then tells
//! each actor's [`Gate`] which sequence became durable and each creator whether its actor was
//! created or its key was already taken.
//!
//! Each request is one [`Unit`]: an instance's writes carry its [`Fence`] (the generation it
//! started as), so the driver refuses them if a newer instance has started since. A refused
//! unit fails its gate with `actor.restarting`, a retryable error, and the instance stops.

use std::collections::HashMap;
use std::sync::Arc;

use footlights_protocol::ActionError;
use footlights_storage::{
    ActorId, ActorMeta, CreateOutcome, Driver, Fence, StorageError, Unit, UnitOutcome, Write,
};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use crate::gate::Gate;
use crate::metrics::StorageMetrics;

/// The most requests one commit takes, so a flood of writers cannot grow a batch forever.
const MAX_BATCH: usize = 4096;

pub(crate) struct WriteRequest {
    pub(crate) writes: Vec<Write>,
    /// The instance that made the writes; `None` for bookkeeping that holds whatever the
    /// generation (the generation bump of a start).
    pub(crate) fence: Option<Fence>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) seq: u64,
    /// The span of the message that made the writes, for tracing (see [`crate::trace`]);
    /// disabled when tracing is off.
    pub(crate) span: tracing::Span,
}

/// A new actor to record, with the writes that go with it.
struct CreateRequest {
    /// [`Write::CreateActor`] first, then writes for the new actor (its create input). If
    /// the key is taken, the driver ignores them: they name an actor that does not exist.
    writes: Vec<Write>,
    reply: oneshot::Sender<Result<CreateOutcome, ActionError>>,
}

/// What waits for the writer.
enum Job {
    Write(WriteRequest),
    Create(CreateRequest),
}

impl Job {
    fn writes(&self) -> &[Write] {
        match self {
            Job::Write(r) => &r.writes,
            Job::Create(r) => &r.writes,
        }
    }

    fn fence(&self) -> Option<&Fence> {
        match self {
            Job::Write(r) => r.fence.as_ref(),
            Job::Create(_) => None,
        }
    }

    fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(match self {
            Job::Write(r) => &mut r.writes,
            Job::Create(r) => &mut r.writes,
        })
    }
}

/// The error a fenced instance's callers get: the actor restarts; trying again reaches the
/// new instance.
fn fenced_error() -> ActionError {
    ActionError::new(
        "actor",
        "restarting",
        "the actor restarted elsewhere; try again",
    )
}

/// Sends writes to the writer task. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer task on the current runtime.
    #[cfg(test)]
    pub(crate) fn spawn(driver: Arc<dyn Driver>) -> Self {
        Writer::spawn_counted(driver, Arc::default())
    }

    /// Starts the writer task on the current runtime, counting each group commit in `metrics`.
    pub(crate) fn spawn_counted(driver: Arc<dyn Driver>, metrics: Arc<StorageMetrics>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(driver, rx, metrics));
        Writer { tx }
    }

    /// Queues a write; the gate hears when it is durable. If the writer is gone (the registry
    /// shut down), the write fails.
    pub(crate) fn submit(&self, req: WriteRequest) {
        if let Err(mpsc::error::SendError(Job::Write(req))) = self.tx.send(Job::Write(req)) {
            req.gate.mark_failed(req.seq, &ActionError::stopping());
        }
    }

    /// Records a new actor in the next group commit, together with `then` (writes for the new
    /// actor, dropped if the key is taken), and answers once that commit is durable: `Created`,
    /// or `Exists` with the actor that holds the key.
    ///
    /// # Errors
    /// `actor.stopping` if the writer is gone; `storage.unavailable` or an internal error if the
    /// commit failed.
    pub(crate) async fn create(
        &self,
        meta: ActorMeta,
        then: Vec<Write>,
    ) -> Result<CreateOutcome, ActionError> {
        let mut writes = Vec::with_capacity(1 + then.len());
        writes.push(Write::CreateActor { meta });
        writes.extend(then);
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::Create(CreateRequest { writes, reply }))
            .map_err(|_| ActionError::stopping())?;
        answer
            .await
            .unwrap_or_else(|_| Err(ActionError::stopping()))
    }
}

/// What callers get for a failed storage call: `storage.unavailable` (public, retryable) when
/// the store cannot take writes now, such as a full disk; an internal error, masked for clients,
/// otherwise. The details go to the log, never to clients.
pub(crate) fn storage_error(e: &StorageError) -> ActionError {
    if e.is_unavailable() {
        ActionError::storage_unavailable()
    } else {
        ActionError::internal(format!("storage: {e}"))
    }
}

/// Logs failed group commits once per episode: the first failure (or one with another cause)
/// at ERROR, the same failure again at DEBUG, and the first success after them at WARN.
#[derive(Debug, Default)]
struct FailureLog {
    /// The failure being repeated, as logged.
    current: Option<String>,
    /// Failed commits since it was logged at ERROR.
    repeated: u64,
}

impl FailureLog {
    fn failed(&mut self, e: &StorageError, requests: usize) {
        let cause = e.to_string();
        let source = std::error::Error::source(e);
        if self.current.as_deref() == Some(cause.as_str()) {
            self.repeated += 1;
            tracing::debug!(error = %cause, ?source, requests, "group commit failed again");
        } else {
            tracing::error!(
                error = %cause,
                ?source,
                requests,
                "group commit failed; further failures with this cause are logged at DEBUG until \
                 a commit succeeds"
            );
            self.current = Some(cause);
            self.repeated = 0;
        }
    }

    fn succeeded(&mut self) {
        if let Some(cause) = self.current.take() {
            tracing::warn!(
                failed_before = %cause,
                failed_again = self.repeated,
                "group commits succeed again"
            );
        }
    }
}

async fn run(
    driver: Arc<dyn Driver>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    metrics: Arc<StorageMetrics>,
) {
    let mut jobs = Vec::new();
    let mut failures = FailureLog::default();
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let units = coalesce(&mut jobs);
        let result = if units.iter().all(|u| u.writes.is_empty()) {
            Ok(vec![UnitOutcome::Applied(Vec::new()); units.len()])
        } else {
            let started = std::time::Instant::now();
            let span = tracing::debug_span!("commit", requests = jobs.len());
            let traced = commit_span(&jobs);
            let result = driver
                .commit_units(units)
                .instrument(span)
                .instrument(traced.clone())
                .await;
            if let Err(e) = &result {
                crate::trace::outcome(&traced, &Err::<(), _>(storage_error(e)));
            }
            metrics.committed(jobs.len(), started.elapsed(), result.is_ok());
            result
        };
        match result {
            Ok(outcomes) => {
                failures.succeeded();
                let mut outcomes = outcomes.into_iter();
                for job in jobs.drain(..) {
                    let outcome = outcomes.next();
                    match (job, outcome) {
                        (Job::Write(r), Some(UnitOutcome::Applied(_))) => {
                            r.gate.mark_durable(r.seq);
                        }
                        (Job::Write(r), Some(UnitOutcome::Fenced { current })) => {
                            tracing::warn!(actor = ?r.fence, ?current, "writes of a stale instance refused");
                            r.gate.mark_failed(r.seq, &fenced_error());
                        }
                        (Job::Create(r), Some(UnitOutcome::Applied(created))) => {
                            let answer = created.into_iter().next().ok_or_else(|| {
                                ActionError::internal("storage: no outcome for a create")
                            });
                            let _ = r.reply.send(answer);
                        }
                        (job, _) => {
                            tracing::error!("storage: no outcome for a unit");
                            fail(job, &ActionError::internal("storage: no outcome"));
                        }
                    }
                }
            }
            Err(e) => {
                failures.failed(&e, jobs.len());
                let error = storage_error(&e);
                for job in jobs.drain(..) {
                    fail(job, &error);
                }
            }
        }
    }
}

/// The span of a group commit, for tracing: a child of the first traced message it commits,
/// linked to the other traced messages (a span has one parent; the commit serves them all).
/// Disabled, without looking at the jobs, when tracing is off.
fn commit_span(jobs: &[Job]) -> tracing::Span {
    if !crate::trace::enabled() {
        return tracing::Span::none();
    }
    let mut traced = jobs.iter().filter_map(|job| match job {
        Job::Write(r) if !r.span.is_disabled() => Some(&r.span),
        Job::Write(_) | Job::Create(_) => None,
    });
    let first = traced.next();
    let span = tracing::trace_span!(
        target: crate::trace::TARGET,
        parent: first.and_then(tracing::Span::id),
        "commit",
        requests = jobs.len(),
        error.type = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    for other in traced {
        span.follows_from(other);
    }
    span
}

fn fail(job: Job, error: &ActionError) {
    match job {
        Job::Write(r) => r.gate.mark_failed(r.seq, error),
        Job::Create(r) => {
            let _ = r.reply.send(Err(error.clone()));
        }
    }
}

/// One unit per job, in arrival order, with every state snapshot but the newest of each
/// instance dropped. Only create jobs carry [`Write::CreateActor`], one each, so the driver's
/// outcomes come back in the order of the jobs.
fn coalesce(jobs: &mut [Job]) -> Vec<Unit> {
    // Keyed by actor and fence: snapshots of two instances of one actor are never merged.
    let mut newest_state: HashMap<(ActorId, Option<u64>), (usize, usize)> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let generation = job.fence().map(|f| f.generation);
        for (j, w) in job.writes().iter().enumerate() {
            if let Write::State { actor, .. } = w {
                newest_state.insert((actor.clone(), generation), (i, j));
            }
        }
    }
    let mut units = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter_mut().enumerate() {
        let is_create = matches!(job, Job::Create(_));
        let fence = job.fence().cloned();
        let generation = fence.as_ref().map(|f| f.generation);
        let writes = job
            .take_writes()
            .into_iter()
            .enumerate()
            .filter(|(j, w)| match w {
                Write::State { actor, .. } => {
                    newest_state.get(&(actor.clone(), generation)) == Some(&(i, *j))
                }
                // Outcomes are matched to create jobs in order: only they may create.
                Write::CreateActor { .. } => is_create,
                _ => true,
            })
            .map(|(_, w)| w)
            .collect();
        units.push(Unit { fence, writes });
    }
    units
}

#[cfg(test)]
mod tests {
    use footlights_storage::{ActorKey, MemoryDriver};

    use super::*;

    fn state(actor: &str, b: u8) -> Write {
        Write::State {
            actor: ActorId::new(actor),
            bytes: vec![b],
        }
    }

    fn write_job(writes: Vec<Write>, gate: &Arc<Gate>, seq: u64) -> Job {
        Job::Write(WriteRequest {
            writes,
            fence: None,
            gate: gate.clone(),
            seq,
            span: tracing::Span::none(),
        })
    }

    fn flat(units: Vec<Unit>) -> Vec<Write> {
        units.into_iter().flat_map(|u| u.writes).collect()
    }

    fn meta(id: &str, key: &str) -> ActorMeta {
        ActorMeta::new(ActorId::new(id), "counter", ActorKey::from(key), 0)
    }

    #[test]
    fn only_the_newest_snapshot_per_actor_is_kept() {
        let gate = Gate::new();
        let mut jobs = vec![
            write_job(vec![state("a", 1), state("b", 1)], &gate, 1),
            write_job(vec![state("a", 2)], &gate, 2),
            write_job(
                vec![Write::DeleteAlarm {
                    actor: ActorId::new("a"),
                    alarm_id: "x".into(),
                }],
                &gate,
                3,
            ),
        ];
        let batch = flat(coalesce(&mut jobs));
        assert_eq!(batch.len(), 3);
        assert!(batch.contains(&state("a", 2)));
        assert!(batch.contains(&state("b", 1)));
        assert!(!batch.contains(&state("a", 1)));
    }

    #[test]
    fn creates_keep_their_order_and_their_writes() {
        let gate = Gate::new();
        let create = |m: &ActorMeta, then: Vec<Write>| {
            let mut writes = vec![Write::CreateActor { meta: m.clone() }];
            writes.extend(then);
            Job::Create(CreateRequest {
                writes,
                reply: oneshot::channel().0,
            })
        };
        let (a, b) = (meta("a", "ka"), meta("b", "kb"));
        let mut jobs = vec![
            create(&a, vec![state("a", 1)]),
            write_job(vec![state("x", 1)], &gate, 1),
            create(&b, vec![]),
        ];
        let batch = flat(coalesce(&mut jobs));
        assert_eq!(
            batch,
            vec![
                Write::CreateActor { meta: a },
                state("a", 1),
                state("x", 1),
                Write::CreateActor { meta: b },
            ]
        );
    }

    #[tokio::test]
    async fn creates_waiting_together_share_a_commit_and_one_wins() {
        let driver = MemoryDriver::new();
        let writer = Writer::spawn(Arc::new(driver.clone()));
        let input = |id: &str| Write::KvPut {
            actor: ActorId::new(id),
            key: b"input".to_vec(),
            value: id.as_bytes().to_vec(),
        };
        let (first, second) = tokio::join!(
            writer.create(meta("a1", "k"), vec![input("a1")]),
            writer.create(meta("a2", "k"), vec![input("a2")]),
        );
        // Both were queued before the writer ran (one thread): one batch, first one wins.
        assert_eq!(first.unwrap(), CreateOutcome::Created);
        assert_eq!(second.unwrap(), CreateOutcome::Exists(meta("a1", "k")));
        assert_eq!(
            driver.kv_get(&ActorId::new("a1"), b"input").await.unwrap(),
            Some(b"a1".to_vec())
        );
        assert_eq!(driver.actor(&ActorId::new("a2")).await.unwrap(), None);
        assert_eq!(
            driver.kv_get(&ActorId::new("a2"), b"input").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn a_stale_instance_is_refused_while_the_rest_of_the_batch_lands() {
        let driver = MemoryDriver::new();
        let writer = Writer::spawn(Arc::new(driver.clone()));
        writer.create(meta("a", "ka"), vec![]).await.unwrap();
        writer.create(meta("b", "kb"), vec![]).await.unwrap();
        driver
            .commit(vec![Write::BumpGeneration {
                actor: ActorId::new("a"),
            }])
            .await
            .unwrap();
        let fenced = |actor: &str, generation| {
            Some(Fence {
                actor: ActorId::new(actor),
                generation,
            })
        };
        let (stale, current, other) = (Gate::new(), Gate::new(), Gate::new());
        for (gate, fence, write) in [
            (&stale, fenced("a", 0), state("a", 1)),
            (&current, fenced("a", 1), state("a", 2)),
            (&other, fenced("b", 0), state("b", 3)),
        ] {
            let seq = gate.issue();
            writer.submit(WriteRequest {
                writes: vec![write],
                fence,
                gate: gate.clone(),
                seq,
                span: tracing::Span::none(),
            });
        }
        let refused = stale.wait_durable(1).await.unwrap_err();
        assert!(stale.has_failed());
        current.wait_durable(1).await.unwrap();
        other.wait_durable(1).await.unwrap();
        let _ = refused;
        assert_eq!(
            driver.load_state(&ActorId::new("a")).await.unwrap(),
            Some(vec![2]),
            "the current instance's snapshot, not the stale one's"
        );
        assert_eq!(
            driver.load_state(&ActorId::new("b")).await.unwrap(),
            Some(vec![3])
        );
    }

    #[test]
    fn snapshots_of_two_instances_of_one_actor_are_not_merged() {
        let gate = Gate::new();
        let job = |b: u8, generation| {
            Job::Write(WriteRequest {
                writes: vec![state("a", b)],
                fence: Some(Fence {
                    actor: ActorId::new("a"),
                    generation,
                }),
                gate: gate.clone(),
                seq: 1,
                span: tracing::Span::none(),
            })
        };
        let mut jobs = vec![job(1, 0), job(2, 1)];
        let units = coalesce(&mut jobs);
        assert_eq!(units[0].writes, vec![state("a", 1)]);
        assert_eq!(units[1].writes, vec![state("a", 2)]);
    }

    /// A [`MemoryDriver`] whose commits fail with [`StorageError::Unavailable`] while `down`.
    #[derive(Debug, Clone, Default)]
    struct Flaky {
        inner: MemoryDriver,
        down: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Driver for Flaky {
        fn actor<'a>(
            &'a self,
            id: &'a ActorId,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<Option<ActorMeta>>> {
            self.inner.actor(id)
        }
        fn find_actor<'a>(
            &'a self,
            name: &'a str,
            key: &'a ActorKey,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<Option<ActorMeta>>> {
            self.inner.find_actor(name, key)
        }
        fn list_actors<'a>(
            &'a self,
            name: &'a str,
            key_prefix: &'a ActorKey,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<Vec<ActorMeta>>> {
            self.inner.list_actors(name, key_prefix)
        }
        fn load_state<'a>(
            &'a self,
            id: &'a ActorId,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<Option<Vec<u8>>>> {
            self.inner.load_state(id)
        }
        fn load_alarms<'a>(
            &'a self,
            id: &'a ActorId,
        ) -> futures::future::BoxFuture<
            'a,
            footlights_storage::Result<Vec<footlights_storage::Alarm>>,
        > {
            self.inner.load_alarms(id)
        }
        fn all_alarms(
            &self,
        ) -> futures::future::BoxFuture<
            '_,
            footlights_storage::Result<Vec<(ActorId, footlights_storage::Alarm)>>,
        > {
            self.inner.all_alarms()
        }
        fn kv_get<'a>(
            &'a self,
            id: &'a ActorId,
            key: &'a [u8],
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<Option<Vec<u8>>>> {
            self.inner.kv_get(id, key)
        }
        fn kv_list<'a>(
            &'a self,
            id: &'a ActorId,
            range: &'a footlights_storage::KvRange,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<footlights_storage::KvEntries>>
        {
            self.inner.kv_list(id, range)
        }
        fn kv_size<'a>(
            &'a self,
            id: &'a ActorId,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<u64>> {
            self.inner.kv_size(id)
        }
        fn commit_units(
            &self,
            units: Vec<Unit>,
        ) -> futures::future::BoxFuture<'_, footlights_storage::Result<Vec<UnitOutcome>>> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Box::pin(async { Err(StorageError::unavailable("the disk is full")) });
            }
            self.inner.commit_units(units)
        }
        fn delete_actor<'a>(
            &'a self,
            id: &'a ActorId,
        ) -> futures::future::BoxFuture<'a, footlights_storage::Result<()>> {
            self.inner.delete_actor(id)
        }
    }

    #[tokio::test]
    async fn an_unavailable_store_answers_a_coded_retryable_error() {
        let driver = Flaky::default();
        let writer = Writer::spawn(Arc::new(driver.clone()));
        driver.down.store(true, std::sync::atomic::Ordering::SeqCst);

        // A reply waiting for its write gets the coded error, unmasked.
        let gate = Gate::new();
        let seq = gate.issue();
        let (reply, answer) = oneshot::channel();
        gate.push(crate::gate::Output::Reply(
            reply,
            Ok(footlights_protocol::Value::Null),
        ));
        writer.submit(WriteRequest {
            writes: vec![state("a", 1)],
            fence: None,
            gate: gate.clone(),
            seq,
            span: tracing::Span::none(),
        });
        let err = answer.await.unwrap().unwrap_err();
        assert_eq!(
            (err.group(), err.code()),
            ("storage", "unavailable"),
            "{err}"
        );
        assert!(err.is_public());
        assert_eq!(err.http_status(), 503);
        assert!(!err.message().contains("disk"), "no server details: {err}");

        // So does a create, in a later failing commit.
        let err = writer.create(meta("b", "kb"), vec![]).await.unwrap_err();
        assert_eq!(
            (err.group(), err.code()),
            ("storage", "unavailable"),
            "{err}"
        );

        // Back up: commits go through again.
        driver
            .down
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let created = writer.create(meta("b", "kb"), vec![]).await.unwrap();
        assert_eq!(created, CreateOutcome::Created);
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_create_in_it() {
        let driver = MemoryDriver::new();
        let writer = Writer::spawn(Arc::new(driver.clone()));
        writer.create(meta("taken", "k1"), vec![]).await.unwrap();
        // Queued together (one thread), so one batch; the second create reuses an id and the
        // driver refuses the whole batch.
        let (fresh, reused) = tokio::join!(
            writer.create(meta("fresh", "k2"), vec![]),
            writer.create(meta("taken", "k3"), vec![]),
        );
        assert!(reused.is_err(), "{reused:?}");
        assert!(fresh.is_err(), "{fresh:?}");
        assert_eq!(driver.actor(&ActorId::new("fresh")).await.unwrap(), None);
        // The writer goes on after a failed batch.
        let again = writer.create(meta("fresh", "k2"), vec![]).await.unwrap();
        assert_eq!(again, CreateOutcome::Created);
    }
}
