//! Runtime benchmark: the in-process figures of the foundation, printed as a table.
//!
//! `cargo bench -p footlights-test --bench runtime` (set `BENCH_SECONDS` to change the window
//! of each throughput run; default 3). Measures, on a SQLite file in a temp dir:
//! - read actions/s on one actor (64 concurrent in-process callers);
//! - durable write actions/s with 100 concurrent callers on one actor, and across 1,000 actors;
//! - durable commits/s during the write runs (commits reaching the driver);
//! - wake-from-sleep latency (a call to a sleeping actor until its answer), p50 / p99.
//!
//! Throughput figures are medians of three runs. Nothing here asserts a target: the report is
//! read and compared by people.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use footlights::prelude::*;
use footlights::storage::{Driver, SqliteDriver};
use futures::future::BoxFuture;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    count: i64,
}

#[footlights::actor]
impl Counter {
    #[action]
    fn increment(&mut self, amount: i64) -> i64 {
        self.count += amount;
        self.count
    }

    #[action]
    fn get_count(&self) -> i64 {
        self.count
    }

    #[action]
    fn nap(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }
}

/// A driver that counts the commits reaching the real one.
#[derive(Debug)]
struct Counting {
    inner: SqliteDriver,
    commits: AtomicU64,
}

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {$(
        fn $name<'a>(&'a self, $($arg: $ty),*) -> BoxFuture<'a, footlights_storage::Result<$out>> {
            self.inner.$name($($arg),*)
        }
    )*};
}

impl Driver for Counting {
    forward! {
        create_actor(meta: &'a footlights_storage::ActorMeta) -> footlights_storage::CreateOutcome;
        actor(id: &'a footlights::ActorId) -> Option<footlights_storage::ActorMeta>;
        find_actor(name: &'a str, key: &'a footlights::ActorKey) -> Option<footlights_storage::ActorMeta>;
        load_actor(id: &'a footlights::ActorId) -> Option<footlights_storage::LoadedActor>;
        load_actor_by_key(name: &'a str, key: &'a footlights::ActorKey) -> Option<footlights_storage::LoadedActor>;
        list_actors(name: &'a str, key_prefix: &'a footlights::ActorKey) -> Vec<footlights_storage::ActorMeta>;
        load_state(id: &'a footlights::ActorId) -> Option<Vec<u8>>;
        load_alarms(id: &'a footlights::ActorId) -> Vec<footlights_storage::Alarm>;
        kv_get(id: &'a footlights::ActorId, key: &'a [u8]) -> Option<Vec<u8>>;
        kv_get_many(id: &'a footlights::ActorId, keys: &'a [Vec<u8>]) -> Vec<Option<Vec<u8>>>;
        kv_list(id: &'a footlights::ActorId, range: &'a footlights_storage::KvRange) -> Vec<(Vec<u8>, Vec<u8>)>;
        kv_size(id: &'a footlights::ActorId) -> u64;
        delete_actor(id: &'a footlights::ActorId) -> ();
    }

    fn all_alarms(
        &self,
    ) -> BoxFuture<
        '_,
        footlights_storage::Result<Vec<(footlights::ActorId, footlights_storage::Alarm)>>,
    > {
        self.inner.all_alarms()
    }

    fn commit_units(
        &self,
        units: Vec<footlights_storage::Unit>,
    ) -> BoxFuture<'_, footlights_storage::Result<Vec<footlights_storage::UnitOutcome>>> {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.inner.commit_units(units)
    }
}

fn window() -> Duration {
    let secs = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// Runs `callers` tasks calling `op(caller, i)` until the window ends; returns calls/s.
async fn throughput<F, Fut>(callers: usize, op: F) -> f64
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let (op, done) = (op.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < deadline {
                op(caller, i).await;
                i += 1;
            }
            done.fetch_add(i, Ordering::Relaxed);
        }));
    }
    for t in tasks {
        t.await.expect("caller task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn registry(dir: &std::path::Path, name: &str) -> (Registry, Arc<Counting>) {
    let driver = Arc::new(Counting {
        inner: SqliteDriver::open(dir.join(name))
            .await
            .expect("open sqlite"),
        commits: AtomicU64::new(0),
    });
    let registry = Registry::builder()
        .actor::<Counter>()
        .shared_driver(driver.clone())
        .start()
        .await
        .expect("start");
    (registry, driver)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rows: Vec<(String, String)> = Vec::new();

    // Reads on one actor.
    let (reg, _) = registry(dir.path(), "reads.db").await;
    let counter = reg.client().get_or_create::<Counter>(["reads"]);
    counter.increment(1).await.expect("warm up");
    let mut runs = Vec::new();
    for _ in 0..3 {
        let c = counter.clone();
        runs.push(
            throughput(64, move |_, _| {
                let c = c.clone();
                async move {
                    c.get_count().await.expect("read");
                }
            })
            .await,
        );
    }
    rows.push((
        "read actions/s, one actor, 64 callers".into(),
        format!("{:.0}", median(runs)),
    ));

    // Durable writes, one actor, 100 callers.
    let (reg, driver) = registry(dir.path(), "one.db").await;
    let counter = reg.client().get_or_create::<Counter>(["one"]);
    counter.increment(1).await.expect("warm up");
    let mut runs = Vec::new();
    let mut commit_rates = Vec::new();
    for _ in 0..3 {
        let c = counter.clone();
        let before = driver.commits.load(Ordering::Relaxed);
        let t0 = Instant::now();
        runs.push(
            throughput(100, move |_, _| {
                let c = c.clone();
                async move {
                    c.increment(1).await.expect("write");
                }
            })
            .await,
        );
        let commits = driver.commits.load(Ordering::Relaxed) - before;
        commit_rates.push(commits as f64 / t0.elapsed().as_secs_f64());
    }
    rows.push((
        "durable write actions/s, one actor, 100 callers".into(),
        format!("{:.0}", median(runs)),
    ));
    rows.push((
        "  durable commits/s during that run".into(),
        format!("{:.0}", median(commit_rates)),
    ));

    // Durable writes across 1,000 actors.
    let (reg, driver) = registry(dir.path(), "many.db").await;
    let client = reg.client();
    let handles: Arc<Vec<_>> = Arc::new(
        (0..1000)
            .map(|i| client.get_or_create::<Counter>([format!("a{i}").as_str()]))
            .collect(),
    );
    for h in handles.iter() {
        h.increment(1).await.expect("create");
    }
    let mut runs = Vec::new();
    let mut commit_rates = Vec::new();
    for _ in 0..3 {
        let hs = handles.clone();
        let before = driver.commits.load(Ordering::Relaxed);
        let t0 = Instant::now();
        runs.push(
            throughput(100, move |caller, i| {
                let h = hs[(caller * 10 + (i as usize % 10)) % hs.len()].clone();
                async move {
                    h.increment(1).await.expect("write");
                }
            })
            .await,
        );
        let commits = driver.commits.load(Ordering::Relaxed) - before;
        commit_rates.push(commits as f64 / t0.elapsed().as_secs_f64());
    }
    rows.push((
        "durable write actions/s, 1,000 actors, 100 callers".into(),
        format!("{:.0}", median(runs)),
    ));
    rows.push((
        "  durable commits/s during that run".into(),
        format!("{:.0}", median(commit_rates)),
    ));

    // Wake from sleep.
    let (reg, _) = registry(dir.path(), "wake.db").await;
    let counter = reg.client().get_or_create::<Counter>(["sleepy"]);
    counter.increment(1).await.expect("create");
    let mut lat = Vec::new();
    for _ in 0..200 {
        counter.nap().await.expect("nap");
        while reg.awake_count() > 0 {
            tokio::task::yield_now().await;
        }
        let t0 = Instant::now();
        counter.get_count().await.expect("wake");
        lat.push(t0.elapsed());
    }
    lat.sort();
    rows.push((
        "wake from sleep, p50 / p99 (200 wakes)".into(),
        format!(
            "{:.3} ms / {:.3} ms",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3
        ),
    ));

    println!("\n| measure | value |\n|---|---|");
    for (k, v) in &rows {
        println!("| {k} | {v} |");
    }
    println!(
        "\nmachine: {} cores; window {:?} per run, medians of 3 runs",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        window()
    );
}
