//! Durable queues: the round trip of a message sent with `wait` (stored, taken by the actor's
//! run loop, completed, answered) and the sustained rate of sends and completions on one
//! actor, on a SQLite file with an fsync per commit, in process.
//!
//! `cargo bench -p footlights-test --bench queues`. Env: `BENCH_ROUND_TRIPS` (2000),
//! `BENCH_SECONDS` (the sustained window, 5), `BENCH_SENDERS` (16).
//!
//! Nothing here asserts a target: the report is read and compared by people.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use footlights::RunSignal;
use footlights::prelude::*;
use footlights::queue::{NextOptions, QueueOptions, Queues};
use footlights::storage::SqliteDriver;

#[derive(Serialize, Deserialize)]
struct Job {
    n: i64,
}

#[derive(Serialize, Deserialize)]
struct Doubled {
    doubled: i64,
}

/// Completes each job with its double.
#[derive(Default, Serialize, Deserialize)]
struct Doubler {
    done: u64,
}

#[footlights::actor]
impl Doubler {
    fn queues(queues: &mut Queues<Self>) {
        queues.add::<Job>(
            "jobs",
            QueueOptions::default().completable(true).max_len(100_000),
        );
    }

    async fn run(ctx: Ctx<Self>, signal: RunSignal) -> Result<(), ActionError> {
        let options = NextOptions::default().signal(signal);
        while let Some(job) = ctx.queue().next::<Job>("jobs", options.clone()).await? {
            let n = job.body.n;
            job.complete_with(move |this: &mut Doubler, _| {
                this.done += 1;
                Ok(Doubled { doubled: 2 * n })
            })
            .await?;
        }
        Ok(())
    }

    #[action]
    fn done(&self) -> u64 {
        self.done
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let trips = env("BENCH_ROUND_TRIPS", 2000);
    let window = Duration::from_secs(env("BENCH_SECONDS", 5));
    let senders = env("BENCH_SENDERS", 16);
    let dir = tempfile::tempdir()?;
    let driver = SqliteDriver::builder(dir.path().join("queues.db"))
        .open()
        .await?;
    let registry = Registry::builder()
        .actor::<Doubler>()
        .driver(driver)
        .start()
        .await?;
    let client = registry.client();

    // Round trips: one sender, each message waited for.
    let rt = client.get_or_create::<Doubler>("round-trips");
    rt.done().await?;
    let mut latencies = Vec::with_capacity(trips as usize);
    for n in 0..trips as i64 {
        let t = Instant::now();
        let out = rt
            .enqueue_and_wait("jobs", &Job { n }, Duration::from_secs(10))
            .await?;
        latencies.push(t.elapsed());
        assert!(
            matches!(out, footlights::queue::SendOutcome::Completed(Some(_))),
            "job {n} was not completed: {out:?}"
        );
    }
    latencies.sort_unstable();

    // Sustained: `senders` concurrent senders without waiting, for the window.
    let load = client.get_or_create::<Doubler>("sustained");
    load.done().await?;
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (load, sent, stop) = (load.clone(), sent.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    match load.enqueue("jobs", &Job { n }).await {
                        Ok(()) => {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        // A full queue: the actor is behind; let it catch up.
                        Err(e) if e.code() == "overloaded" => tokio::task::yield_now().await,
                        Err(e) => panic!("send failed: {e}"),
                    }
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let send_secs = t0.elapsed().as_secs_f64();
    let sent = sent.load(Ordering::Relaxed);
    let done_in_window = load.done().await?;
    // Then until every stored job is completed (bounded at a minute).
    let mut done = done_in_window;
    while done < sent && t0.elapsed() < window + Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        done = load.done().await?;
    }
    let all_secs = t0.elapsed().as_secs_f64();

    println!(
        "## Durable queues (`cargo bench -p footlights-test --bench queues`, in process, SQLite with an fsync per commit)"
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| send with wait → taken by the run loop → completed → answered, p50 ({trips} in a row) | {:.2} ms |",
        percentile(&latencies, 0.50)
    );
    println!("| same, p99 | {:.2} ms |", percentile(&latencies, 0.99));
    println!(
        "| durable sends/s, {senders} senders without wait, one actor | {:.0} |",
        sent as f64 / send_secs
    );
    println!(
        "| completions/s over the same run (until all {sent} were done: {:.1} s) | {:.0} |",
        all_secs,
        done as f64 / all_secs
    );
    registry.shutdown().await;
    Ok(())
}
