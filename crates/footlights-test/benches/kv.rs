//! Key-value store benchmark: what a write costs as an actor's data grows, done with
//! `ctx.kv()` and done the old way (a `Vec` in the state snapshot), plus listing and memory.
//!
//! `cargo bench -p footlights-test --bench kv` (set `BENCH_SECONDS` to change each timed
//! window; default 2). On a SQLite file in a temp dir, with an fsync per commit:
//! - appends of one 200-byte entry to one actor that already holds N entries, N = 0, 10k,
//!   100k, 1M: one caller (appends/s and p50 latency) and 64 callers (appends/s);
//! - the same append done the old way, the entries in a `Vec` in the snapshot, at 1k, 10k
//!   and 100k entries;
//! - listing 100 entries at a random place in an actor holding 1M: p50 and p99;
//! - resident memory of a fresh process with an awake empty actor, and with the 1M-entry
//!   actor awake after appends and listings (measured in a child process, so the memory the
//!   filling used does not count).
//!
//! Nothing here asserts a target: the report is read and compared by people.

use std::time::{Duration, Instant};

use footlights::prelude::*;
use footlights::storage::SqliteDriver;
use rand::Rng;

/// Appends numbered entries to its store; the state is the last number.
#[derive(Default, Serialize, Deserialize)]
struct Journal {
    last: u64,
}

#[footlights::actor]
impl Journal {
    #[action]
    async fn append(&mut self, ctx: &Ctx<Self>, body: String) -> Result<u64, ActionError> {
        self.last += 1;
        ctx.kv().put(KvKey::new("e/").u64(self.last), &body).await?;
        Ok(self.last)
    }

    /// Appends `n` copies of `body` in one message.
    #[action]
    async fn fill(&mut self, ctx: &Ctx<Self>, n: u64, body: String) -> Result<u64, ActionError> {
        let mut entries = Vec::with_capacity(n as usize);
        for _ in 0..n {
            self.last += 1;
            entries.push((KvKey::new("e/").u64(self.last), body.as_str()));
        }
        ctx.kv().put_many(entries).await?;
        Ok(self.last)
    }

    /// Lists 100 entries from entry `from` on; returns how many.
    #[action]
    async fn page(&self, ctx: &Ctx<Self>, from: u64) -> Result<u64, ActionError> {
        let range = KvRange::prefix(b"e/")
            .start(std::ops::Bound::Included(
                KvKey::new("e/").u64(from).into_bytes(),
            ))
            .limit(100);
        Ok(ctx.kv().list(range).await?.entries.len() as u64)
    }

    #[action]
    fn last(&self) -> u64 {
        self.last
    }
}

/// The old way: every entry in the state, which is rewritten whole after each change.
#[derive(Default, Serialize, Deserialize)]
struct VecJournal {
    entries: Vec<String>,
}

#[footlights::actor]
impl VecJournal {
    #[action]
    fn append(&mut self, body: String) -> u64 {
        self.entries.push(body);
        self.entries.len() as u64
    }

    #[action]
    fn fill(&mut self, n: u64, body: String) -> u64 {
        self.entries.extend((0..n).map(|_| body.clone()));
        self.entries.len() as u64
    }
}

fn window() -> Duration {
    let secs = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn body() -> String {
    "x".repeat(200)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One caller appending for a window: (appends/s, p50).
async fn sequential<F, Fut>(append: F) -> (f64, Duration)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut lat = Vec::new();
    let started = Instant::now();
    while started.elapsed() < window() || lat.len() < 5 {
        let t0 = Instant::now();
        append().await;
        lat.push(t0.elapsed());
    }
    let rate = lat.len() as f64 / started.elapsed().as_secs_f64();
    lat.sort();
    (rate, percentile(&lat, 0.5))
}

/// 64 callers appending for a window: appends/s.
async fn concurrent(handle: &footlights::ActorHandle<Journal>) -> f64 {
    let deadline = Instant::now() + window();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                h.append(body()).await.expect("append");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("caller");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn registry(path: &std::path::Path) -> Registry {
    Registry::builder()
        .actor::<Journal>()
        .actor::<VecJournal>()
        .driver(SqliteDriver::open(path).await.expect("open sqlite"))
        .start()
        .await
        .expect("start")
}

/// Fills `journal` up to `n` entries, in messages of 5,000.
async fn fill_to(journal: &footlights::ActorHandle<Journal>, n: u64) {
    let mut have = journal.last().await.expect("last");
    while have < n {
        let step = (n - have).min(5_000);
        have = journal.fill(step, body()).await.expect("fill");
    }
}

/// Resident memory of this process, from `/proc/self/statm`.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The child process of the memory measure: opens the filled store and prints
/// `rss <empty actor awake> <1M-entry actor awake>`.
async fn memory_child(path: &str) {
    // The parent's store closes on its own threads after its last handle dropped: give it a
    // bounded while to let go of the file.
    let mut driver = None;
    for _ in 0..200 {
        match SqliteDriver::open(path).await {
            Ok(d) => {
                driver = Some(d);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let reg = Registry::builder()
        .actor::<Journal>()
        .driver(driver.expect("the parent never released the store"))
        .start()
        .await
        .expect("start");
    let client = reg.client();
    let empty = client.get_or_create::<Journal>(["empty"]);
    empty.append(body()).await.expect("append");
    let before = rss_bytes();
    let big = client.get::<Journal>(["n1000000"]);
    let last = big.last().await.expect("wake");
    let mut rng = rand::rng();
    for _ in 0..200 {
        big.page(rng.random_range(1..=last)).await.expect("page");
    }
    for _ in 0..200 {
        big.append(body()).await.expect("append");
    }
    let after = rss_bytes();
    println!("rss {before} {after}");
}

/// The timed runs; every handle on the store is dropped when this returns, so that the
/// memory child can open it.
async fn measure_in_process(path: &std::path::Path) -> Vec<(String, String)> {
    let reg = registry(path).await;
    let client = reg.client();
    let mut rows: Vec<(String, String)> = Vec::new();

    // Appends with the store, each size on its own actor.
    let mut base: Option<(f64, f64)> = None;
    let mut big = None;
    for n in [0u64, 10_000, 100_000, 1_000_000] {
        let journal = client.get_or_create::<Journal>([format!("n{n}").as_str()]);
        let filling = Instant::now();
        fill_to(&journal, n).await;
        eprintln!("filled to {n} in {:.1} s", filling.elapsed().as_secs_f64());
        for _ in 0..20 {
            journal.append(body()).await.expect("warm up");
        }
        let (rate, p50) = sequential(|| async {
            journal.append(body()).await.expect("append");
        })
        .await;
        let many = concurrent(&journal).await;
        let (rate0, many0) = *base.get_or_insert((rate, many));
        rows.push((
            format!("ctx.kv() append, actor holding {n} entries: 1 caller / 64 callers"),
            format!(
                "{rate:.0}/s, p50 {:.3} ms / {many:.0}/s (vs N=0: {:.2}× / {:.2}×)",
                ms(p50),
                rate / rate0,
                many / many0
            ),
        ));
        big = Some(journal);
    }
    let big = big.expect("the 1M actor");

    // Listing 100 entries at a random place among 1M.
    let last = big.last().await.expect("last");
    let mut rng = rand::rng();
    let mut lat = Vec::new();
    for _ in 0..500 {
        let from = rng.random_range(1..=last.saturating_sub(100).max(1));
        let t0 = Instant::now();
        let got = big.page(from).await.expect("page");
        lat.push(t0.elapsed());
        assert_eq!(got, 100, "a page of 100");
    }
    lat.sort();
    rows.push((
        format!("list 100 entries at a random place, actor holding {last} entries"),
        format!(
            "p50 {:.3} ms, p99 {:.3} ms (500 listings)",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        ),
    ));

    // The old way: the entries in the snapshot.
    let old = client.get_or_create::<VecJournal>(["old"]);
    for n in [1_000u64, 10_000, 100_000] {
        let have = old.fill(0, body()).await.expect("len");
        old.fill(n.saturating_sub(have), body())
            .await
            .expect("fill");
        let (rate, p50) = sequential(|| async {
            old.append(body()).await.expect("append");
        })
        .await;
        rows.push((
            format!("old way (Vec in the snapshot) append, {n} entries: 1 caller"),
            format!("{rate:.0}/s, p50 {:.3} ms", ms(p50)),
        ));
    }
    reg.shutdown().await;
    rows
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Ok(path) = std::env::var("FOOTLIGHTS_KV_BENCH_CHILD") {
        return memory_child(&path).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kv.db");
    let mut rows = measure_in_process(&path).await;
    // Memory, in a fresh process on the same file.
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env("FOOTLIGHTS_KV_BENCH_CHILD", &path)
        .output()
        .expect("memory child");
    let text = String::from_utf8_lossy(&out.stdout);
    let figures: Vec<u64> = text
        .lines()
        .find_map(|l| l.strip_prefix("rss "))
        .map(|l| l.split(' ').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    if let [before, after] = figures[..] {
        rows.push((
            "RSS, fresh process: empty actor awake / + 1M-entry actor awake (200 listings, 200 appends)".into(),
            format!(
                "{:.1} MB / {:.1} MB ({:+.1} MB)",
                before as f64 / 1e6,
                after as f64 / 1e6,
                (after as f64 - before as f64) / 1e6
            ),
        ));
    } else {
        rows.push((
            "RSS".into(),
            format!("child failed: {}", String::from_utf8_lossy(&out.stderr)),
        ));
    }

    println!("\n| measure | value |\n|---|---|");
    for (k, v) in &rows {
        println!("| {k} | {v} |");
    }
    println!(
        "\nmachine: {} cores; window {:?} per timed run; SQLite, fsync per commit",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        window()
    );
}
