//! Repeating jobs at scale: many actors, each with an interval job, on a SQLite file with an
//! fsync per commit. Reports how late fires run (from each job's own history: when it ran
//! minus when it was due) and the server CPU they cost.
//!
//! `cargo bench -p footlights-test --bench jobs`. Env: `BENCH_ACTORS` (10000),
//! `BENCH_INTERVAL_MS` (5000), `BENCH_SECONDS` (the measured window, 30).
//!
//! Nothing here asserts a target: the report is read and compared by people.

use std::time::{Duration, Instant, SystemTime};

use footlights::prelude::*;
use footlights::storage::SqliteDriver;
use futures::StreamExt as _;

/// Counts the fires of its one job.
#[derive(Default, Serialize, Deserialize)]
struct Pulse {
    fires: u64,
}

#[footlights::actor]
impl Pulse {
    #[action]
    fn start(&mut self, ctx: &Ctx<Self>, every_ms: u64) -> Result<(), ActionError> {
        ctx.cron().every(
            "pulse",
            Duration::from_millis(every_ms),
            pulse_actions::Beat {},
        )
    }

    #[action]
    fn beat(&mut self) {
        self.fires += 1;
    }

    /// The job's recent fires as (due, ran), in ms since the Unix epoch.
    #[action]
    fn fires(&self, ctx: &Ctx<Self>) -> Vec<(u64, u64)> {
        let ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        };
        ctx.cron()
            .get("pulse")
            .map(|job| job.history.iter().map(|f| (ms(f.due), ms(f.ran))).collect())
            .unwrap_or_default()
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's CPU time (user + system), from `/proc/self/stat` (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let actors = env("BENCH_ACTORS", 10_000);
    let every_ms = env("BENCH_INTERVAL_MS", 5_000);
    let window = Duration::from_secs(env("BENCH_SECONDS", 30));
    let dir = tempfile::tempdir()?;
    let driver = SqliteDriver::builder(dir.path().join("jobs.db"))
        .open()
        .await?;
    let registry = Registry::builder()
        .actor::<Pulse>()
        .driver(driver)
        .start()
        .await?;
    let client = registry.client();

    let setup = Instant::now();
    futures::stream::iter(0..actors)
        .map(|i| {
            let handle = client.get_or_create::<Pulse>(format!("p{i}"));
            async move { handle.start(every_ms).await }
        })
        .buffer_unordered(64)
        .for_each(|r| async move { r.expect("start") })
        .await;
    let setup = setup.elapsed();

    // One interval so every job has been set and has fired once, then the measured window.
    tokio::time::sleep(Duration::from_millis(every_ms)).await;
    let from_ms = now_ms();
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let cpu = cpu_time() - cpu0;
    let elapsed = t0.elapsed();
    let to_ms = now_ms();

    let mut lateness: Vec<u64> = Vec::new();
    let histories: Vec<Vec<(u64, u64)>> = futures::stream::iter(0..actors)
        .map(|i| {
            let handle = client.get::<Pulse>(format!("p{i}"));
            async move { handle.fires().await.expect("fires") }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    for (due, ran) in histories.into_iter().flatten() {
        if due >= from_ms && due < to_ms {
            lateness.push(ran.saturating_sub(due));
        }
    }
    lateness.sort_unstable();
    let fires = lateness.len() as u64;
    let expected = actors * window.as_millis() as u64 / every_ms;
    let cpu_per_fire = cpu.as_secs_f64() * 1e6 / fires.max(1) as f64;

    println!(
        "## Repeating jobs: {actors} actors, one job each every {every_ms} ms \
         (`cargo bench -p footlights-test --bench jobs`, in process, SQLite with an fsync per commit)"
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| setting up {actors} actors and their jobs | {:.1} s |",
        setup.as_secs_f64()
    );
    println!(
        "| fires due in the {:.0} s window (expected {expected}) | {fires} |",
        elapsed.as_secs_f64()
    );
    println!(
        "| lateness p50 (ran − due) | {} ms |",
        percentile(&lateness, 0.50)
    );
    println!("| lateness p99 | {} ms |", percentile(&lateness, 0.99));
    println!(
        "| lateness max | {} ms |",
        lateness.last().copied().unwrap_or(0)
    );
    println!("| server CPU per fire | {cpu_per_fire:.0} µs |");
    println!(
        "| server CPU, share of one core | {:.1} % |",
        cpu.as_secs_f64() * 100.0 / elapsed.as_secs_f64()
    );
    registry.shutdown().await;
    Ok(())
}
