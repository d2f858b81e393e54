//! Fenced durable commits per second into PostgreSQL on the loopback, beside the same load on
//! the SQLite driver: each committer owns an actor and saves a 1 KiB state fenced with its
//! generation, waits until the commit returned, and saves again.
//!
//! Each load runs with 8 and with 64 committers, in these ways:
//!
//! - `group/1`: the committers hand their units to one writer task, which takes everything
//!   waiting and commits it as one `commit_units` batch (one transaction), as the runtime's
//!   writer does;
//! - `group/4` (PostgreSQL): four such writers, committers split among them, so that up to
//!   four transactions are in flight and the server groups their WAL flushes;
//! - `direct`: every committer calls `commit_units` with its own unit (a transaction each;
//!   PostgreSQL with a pool of one connection per committer).
//!
//! Run with `cargo bench -p footlights-storage-postgres --bench commits`. The server is the
//! one `FOOTLIGHTS_TEST_POSTGRES_URL` names, or one started from Debian's binaries in a
//! temporary directory with its default, durable settings (`fsync=on`,
//! `synchronous_commit=on`); SQLite uses its default (`synchronous=FULL`) in a temporary
//! directory on the same disk. `BENCH_SECONDS=<n>` sets each load's measured time (default 3).
#![allow(clippy::print_stdout, reason = "a benchmark prints its report")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, Unit, UnitOutcome, Write};
use footlights_storage_postgres::PostgresDriver;
use footlights_storage_postgres::test_support::{TestPostgres, TestSchema};
use footlights_storage_sqlite::SqliteDriver;
use tokio::sync::{mpsc, oneshot};

const STATE: usize = 1024;
const WARM_UP: Duration = Duration::from_millis(500);

/// A unit on its way to a writer, and where its outcome goes.
type Job = (Unit, oneshot::Sender<UnitOutcome>);

#[derive(Clone, Copy)]
enum Mode {
    /// This many writer tasks, each committing what its committers handed it in batches.
    Group(usize),
    /// Every committer commits its own unit.
    Direct,
}

impl Mode {
    fn name(self) -> String {
        match self {
            Mode::Group(w) => format!("group/{w}"),
            Mode::Direct => "direct".to_owned(),
        }
    }
}

/// What one load measured.
struct Report {
    commits: u64,
    transactions: u64,
    elapsed: Duration,
    /// Every commit's latency, sorted, in microseconds.
    latencies: Vec<u64>,
}

impl Report {
    fn percentile(&self, p: f64) -> f64 {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).copied().unwrap_or(0) as f64 / 1000.0
    }
}

/// A fenced unit saving a 1 KiB state whose first bytes are `seq` (so that every save
/// changes the stored bytes).
fn unit(actor: &ActorId, seq: u64) -> Unit {
    let mut bytes = vec![0xAB; STATE];
    bytes[..8].copy_from_slice(&seq.to_le_bytes());
    Unit::fenced(
        actor.clone(),
        0,
        vec![Write::State {
            actor: actor.clone(),
            bytes,
        }],
    )
}

/// Takes a job, then everything else waiting (up to a bound), commits it as one batch and
/// answers each job.
async fn writer(
    driver: Arc<dyn Driver>,
    mut jobs: mpsc::Receiver<Job>,
    batches: Arc<std::sync::atomic::AtomicU64>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (units, replies): (Vec<Unit>, Vec<_>) = batch.into_iter().unzip();
        let outcomes = driver.commit_units(units).await.expect("commit_units");
        batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            let _ = reply.send(outcome);
        }
    }
}

async fn run(driver: Arc<dyn Driver>, actors: &[ActorId], mode: Mode, measure: Duration) -> Report {
    let transactions = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut senders = Vec::new();
    let mut writers = Vec::new();
    if let Mode::Group(count) = mode {
        for _ in 0..count {
            let (tx, rx) = mpsc::channel::<Job>(actors.len());
            senders.push(tx);
            writers.push(tokio::spawn(writer(
                driver.clone(),
                rx,
                transactions.clone(),
            )));
        }
    }
    let start = Instant::now();
    let measured_from = start + WARM_UP;
    let end = measured_from + measure;
    let mut committers = Vec::new();
    for (n, actor) in actors.iter().enumerate() {
        let (driver, actor, transactions) = (driver.clone(), actor.clone(), transactions.clone());
        let sender = senders.get(n % senders.len().max(1)).cloned();
        committers.push(tokio::spawn(async move {
            let (mut commits, mut latencies, mut seq) = (0u64, Vec::new(), 0u64);
            loop {
                let began = Instant::now();
                if began >= end {
                    break;
                }
                seq += 1;
                let outcome = match &sender {
                    Some(sender) => {
                        let (reply, answer) = oneshot::channel();
                        sender
                            .send((unit(&actor, seq), reply))
                            .await
                            .expect("writer gone");
                        answer.await.expect("writer dropped a job")
                    }
                    None => {
                        let mut outcomes = driver
                            .commit_units(vec![unit(&actor, seq)])
                            .await
                            .expect("commit_units");
                        transactions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        outcomes.pop().expect("one outcome")
                    }
                };
                assert_eq!(
                    outcome,
                    UnitOutcome::Applied(vec![]),
                    "a fenced unit was refused"
                );
                if began >= measured_from {
                    commits += 1;
                    latencies.push(began.elapsed().as_micros() as u64);
                }
            }
            (commits, latencies)
        }));
    }
    let counted_before = {
        tokio::time::sleep_until(measured_from.into()).await;
        transactions.load(std::sync::atomic::Ordering::Relaxed)
    };
    let mut report = Report {
        commits: 0,
        transactions: 0,
        elapsed: measure,
        latencies: Vec::new(),
    };
    for committer in committers {
        let (commits, latencies) = committer.await.expect("a committer panicked");
        report.commits += commits;
        report.latencies.extend(latencies);
    }
    report.elapsed = measured_from.elapsed();
    report.transactions = transactions.load(std::sync::atomic::Ordering::Relaxed) - counted_before;
    drop(senders);
    for w in writers {
        w.await.expect("a writer panicked");
    }
    report.latencies.sort_unstable();
    report
}

async fn create_actors(driver: &dyn Driver, n: usize, prefix: &str) -> Vec<ActorId> {
    let mut actors = Vec::new();
    for i in 0..n {
        let id = ActorId::new(format!("{prefix}-{i}"));
        let meta = ActorMeta::new(
            id.clone(),
            "bench",
            ActorKey::from(format!("{prefix}-{i}").as_str()),
            0,
        );
        driver.create_actor(&meta).await.expect("create_actor");
        actors.push(id);
    }
    actors
}

fn print(store: &str, committers: usize, mode: Mode, r: &Report) {
    let secs = r.elapsed.as_secs_f64();
    let batch = if r.transactions > 0 {
        r.commits as f64 / r.transactions as f64
    } else {
        0.0
    };
    println!(
        "{store:<10} {committers:>4}  {:<8} {:>10.0} {:>10.0} {:>8.1} {:>9.2} {:>9.2}",
        mode.name(),
        r.commits as f64 / secs,
        r.transactions as f64 / secs,
        batch,
        r.percentile(0.5),
        r.percentile(0.99),
    );
}

fn main() {
    let measure = Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too, briefly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let measure = if quick {
        Duration::from_millis(200)
    } else {
        measure
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let server = TestPostgres::from_env_or_start().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    runtime.block_on(async {
        println!("fenced durable commits of a 1 KiB state, {measure:?} per load");
        println!(
            "{:<10} {:>4}  {:<8} {:>10} {:>10} {:>8} {:>9} {:>9}",
            "store", "n", "mode", "commits/s", "txns/s", "batch", "p50 ms", "p99 ms"
        );
        for committers in [8usize, 64] {
            let schema = TestSchema::new(&server);
            let pg = PostgresDriver::builder(server.url())
                .schema(schema.name())
                .pool_size(committers)
                .connect()
                .await
                .expect("connecting to PostgreSQL");
            let pg: Arc<dyn Driver> = Arc::new(pg);
            let actors = create_actors(&*pg, committers, "pg").await;
            for mode in [Mode::Group(1), Mode::Group(4), Mode::Direct] {
                let r = run(pg.clone(), &actors, mode, measure).await;
                print("postgres", committers, mode, &r);
            }
            drop(pg);
            drop(schema);

            let path = dir.path().join(format!("bench-{committers}.db"));
            let sqlite: Arc<dyn Driver> =
                Arc::new(SqliteDriver::open(&path).await.expect("opening SQLite"));
            let actors = create_actors(&*sqlite, committers, "sqlite").await;
            for mode in [Mode::Group(1), Mode::Direct] {
                let r = run(sqlite.clone(), &actors, mode, measure).await;
                print("sqlite", committers, mode, &r);
            }
        }
    });
    drop(runtime);
    drop(server);
}
