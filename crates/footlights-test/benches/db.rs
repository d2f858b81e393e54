//! SQL database benchmark (`ctx.db()`): durable inserts beside the key-value store and the
//! snapshot, point queries and insert cost on a table of 1M rows, and the cold wake of an
//! actor holding a large database.
//!
//! `cargo bench -p footlights-test --bench db` (set `BENCH_SECONDS` to change each timed
//! window, default 2; `DB_BENCH_ROWS` for the big table, default 1,000,000). On a SQLite file
//! in a temp dir, with an fsync per commit:
//! - durable single-row inserts/s on one actor, one caller and 16 callers, beside one entry
//!   put with `ctx.kv()` and one field changed in the snapshot;
//! - an indexed point query on the big table: p50 of the query inside the action (the
//!   database call, warm) and of the whole action round trip;
//! - the p50 of one insert into a table of 1k rows and into the big table;
//! - cold wake: the actor with the big table put to sleep, then the time to the first answer
//!   of a point query (the database opened from storage);
//! - resident memory of a fresh process with an awake actor holding a small database, and
//!   with the big-table actor awake after 2,000 random point queries and 200 inserts
//!   (measured in a child process, so the memory the filling used does not count).
//!
//! Nothing here asserts a target: the report is read and compared by people.

use std::time::{Duration, Instant};

use footlights::prelude::*;
use footlights::storage::SqliteDriver;
use footlights::{ActorOptions, Migration};
use rand::Rng;

/// Rows in a table of the actor's database, with an index on `k`.
#[derive(Default, Serialize, Deserialize)]
struct Table {}

#[footlights::actor]
impl Table {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.db_migrations = vec![Migration::new(
            1,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, body TEXT NOT NULL); \
             CREATE INDEX t_k ON t (k);",
        )];
        o.db_cache_bytes = 8 << 20;
        o.action_timeout = Duration::from_secs(600);
        o.db_statement_timeout = Duration::from_secs(600);
        o
    }

    #[action]
    async fn insert(&self, ctx: &Ctx<Self>, k: i64, body: String) -> Result<usize, ActionError> {
        ctx.db()
            .execute("INSERT INTO t (k, body) VALUES (?1, ?2)", (k, body))
            .await
    }

    /// Inserts `n` rows in one transaction, `k` counting on from the highest.
    #[action]
    async fn fill(&self, ctx: &Ctx<Self>, n: i64) -> Result<i64, ActionError> {
        ctx.db()
            .transaction(move |tx| {
                let sql = |e: footlights::rusqlite::Error| ActionError::internal(e.to_string());
                let from: i64 = tx
                    .query_row("SELECT coalesce(max(k), 0) FROM t", [], |r| r.get(0))
                    .map_err(sql)?;
                let mut stmt = tx
                    .prepare("INSERT INTO t (k, body) VALUES (?1, ?2)")
                    .map_err(sql)?;
                for k in from + 1..=from + n {
                    stmt.execute((k, format!("row {k:012} {}", "y".repeat(40))))
                        .map_err(sql)?;
                }
                Ok(from + n)
            })
            .await
    }

    /// The id of the row with `k`, and how long the database call took, in ns.
    #[action]
    async fn point(&self, ctx: &Ctx<Self>, k: i64) -> Result<(Option<i64>, u64), ActionError> {
        let t0 = Instant::now();
        let id = ctx
            .db()
            .query_first("SELECT id FROM t WHERE k = ?1", (k,))
            .await?;
        Ok((id, t0.elapsed().as_nanos() as u64))
    }

    #[action]
    fn nap(&self, ctx: &Ctx<Self>) {
        ctx.sleep();
    }
}

/// One entry per write in the key-value store, from an action that leaves the state alone
/// (as the SQL insert does).
#[derive(Default, Serialize, Deserialize)]
struct KvLog {}

#[footlights::actor]
impl KvLog {
    #[action]
    async fn insert(&self, ctx: &Ctx<Self>, body: String) -> Result<(), ActionError> {
        let n: u64 = rand::rng().random();
        ctx.kv().put(KvKey::new("e/").u64(n), &body).await
    }
}

/// One small state rewritten per write.
#[derive(Default, Serialize, Deserialize)]
struct Snap {
    n: u64,
    last: String,
}

#[footlights::actor]
impl Snap {
    #[action]
    fn insert(&mut self, body: String) -> u64 {
        self.n += 1;
        self.last = body;
        self.n
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
    "x".repeat(100)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `callers` callers running `op` for a window: (ops/s, p50).
async fn load<F, Fut>(callers: usize, op: F) -> (f64, Duration)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let deadline = Instant::now() + window();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline || lat.is_empty() {
                let t0 = Instant::now();
                op().await;
                lat.push(t0.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("caller"));
    }
    let rate = lat.len() as f64 / started.elapsed().as_secs_f64();
    lat.sort();
    (rate, percentile(&lat, 0.5))
}

async fn registry(path: &std::path::Path) -> Registry {
    Registry::builder()
        .actor::<Table>()
        .actor::<KvLog>()
        .actor::<Snap>()
        .driver(SqliteDriver::open(path).await.expect("open sqlite"))
        .start()
        .await
        .expect("start")
}

/// p50 of single inserts into `table` (one caller), after a warm-up.
async fn insert_p50(table: &footlights::ActorHandle<Table>) -> Duration {
    for _ in 0..20 {
        table.insert(-1, body()).await.expect("warm up");
    }
    let t = table.clone();
    load(1, move || {
        let t = t.clone();
        async move {
            let k = rand::rng().random_range(0..i64::MAX);
            t.insert(k, body()).await.expect("insert");
        }
    })
    .await
    .1
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

/// The child process of the memory measure: prints `rss <small awake> <big awake and used>`.
async fn memory_child(path: &str, rows: i64) {
    // The parent's store closes on its own threads: give it a bounded while to let go.
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
        .actor::<Table>()
        .driver(driver.expect("the parent never released the store"))
        .start()
        .await
        .expect("start");
    let client = reg.client();
    let small = client.get::<Table>(["small"]);
    small.point(1).await.expect("small");
    let before = rss_bytes();
    let big = client.get::<Table>(["big"]);
    let mut rng = rand::rng();
    for _ in 0..2000 {
        big.point(rng.random_range(1..=rows)).await.expect("point");
    }
    for _ in 0..200 {
        big.insert(rng.random_range(0..i64::MAX), body())
            .await
            .expect("insert");
    }
    let after = rss_bytes();
    println!("rss {before} {after}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Ok(path) = std::env::var("FOOTLIGHTS_DB_BENCH_CHILD") {
        let rows = std::env::var("DB_BENCH_ROWS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        return memory_child(&path, rows).await;
    }
    let big_rows: i64 = std::env::var("DB_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.db");
    let reg = registry(&path).await;
    let client = reg.client();
    let mut rows: Vec<(String, String)> = Vec::new();

    // Durable single writes: SQL, KV, snapshot; 1 and 16 callers.
    for callers in [1usize, 16] {
        let table = client.get_or_create::<Table>([format!("ins{callers}").as_str()]);
        table.insert(0, body()).await.expect("create");
        let (sql, sql_p50) = load(callers, move || {
            let t = table.clone();
            async move {
                t.insert(1, body()).await.expect("insert");
            }
        })
        .await;
        let kv = client.get_or_create::<KvLog>([format!("kv{callers}").as_str()]);
        kv.insert(body()).await.expect("create");
        let (kv_rate, kv_p50) = load(callers, move || {
            let k = kv.clone();
            async move {
                k.insert(body()).await.expect("put");
            }
        })
        .await;
        let snap = client.get_or_create::<Snap>([format!("snap{callers}").as_str()]);
        snap.insert(body()).await.expect("create");
        let (snap_rate, snap_p50) = load(callers, move || {
            let s = snap.clone();
            async move {
                s.insert(body()).await.expect("write");
            }
        })
        .await;
        rows.push((
            format!("durable single-row writes, one actor, {callers} caller(s): SQL insert / KV put / snapshot"),
            format!(
                "{sql:.0}/s (p50 {:.3} ms) / {kv_rate:.0}/s (p50 {:.3} ms) / {snap_rate:.0}/s (p50 {:.3} ms)",
                ms(sql_p50),
                ms(kv_p50),
                ms(snap_p50)
            ),
        ));
    }

    // Insert cost on a small table.
    let small = client.get_or_create::<Table>(["small"]);
    small.fill(1_000).await.expect("fill");
    let small_p50 = insert_p50(&small).await;

    // The big table, in transactions of 50k rows.
    let big = client.get_or_create::<Table>(["big"]);
    let filling = Instant::now();
    let mut have = 0;
    while have < big_rows {
        have = big.fill((big_rows - have).min(50_000)).await.expect("fill");
    }
    let fill_secs = filling.elapsed().as_secs_f64();
    eprintln!("filled {have} rows in {fill_secs:.1} s");
    let db_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    rows.push((
        format!("fill {have} rows (transactions of 50k rows)"),
        format!(
            "{fill_secs:.1} s ({:.0} rows/s); storage file {:.0} MB",
            have as f64 / fill_secs,
            db_bytes as f64 / 1e6
        ),
    ));
    // Alternating windows on the two tables, so that both see the same storage (its
    // write-ahead log is busy for a while after the fill); the median of three each.
    let mut small_after = Vec::new();
    let mut bigs = Vec::new();
    for _ in 0..3 {
        bigs.push(insert_p50(&big).await);
        small_after.push(insert_p50(&small).await);
    }
    small_after.sort();
    bigs.sort();
    let (small_after, big_p50) = (small_after[1], bigs[1]);
    rows.push((
        format!(
            "single insert p50 (1 caller, indexed table): 1k rows / {have} rows (alternating windows after the fill; 1k rows before the fill)"
        ),
        format!(
            "{:.3} ms / {:.3} ms ({:.2}×; {:.3} ms before)",
            ms(small_after),
            ms(big_p50),
            big_p50.as_secs_f64() / small_after.as_secs_f64(),
            ms(small_p50)
        ),
    ));

    // Point queries, warm: first touch every probe once, then measure.
    let mut rng = rand::rng();
    let probes: Vec<i64> = (0..2000).map(|_| rng.random_range(1..=have)).collect();
    for k in &probes[..500] {
        big.point(*k).await.expect("warm");
    }
    let mut inside = Vec::new();
    let mut round = Vec::new();
    for k in &probes[..500] {
        let t0 = Instant::now();
        let (id, ns) = big.point(*k).await.expect("point");
        round.push(t0.elapsed());
        inside.push(Duration::from_nanos(ns));
        assert!(id.is_some(), "row {k} missing");
    }
    inside.sort();
    round.sort();
    rows.push((
        format!("indexed point query, {have} rows, warm: database call / action round trip"),
        format!(
            "p50 {:.3} ms, p99 {:.3} ms / p50 {:.3} ms, p99 {:.3} ms",
            ms(percentile(&inside, 0.5)),
            ms(percentile(&inside, 0.99)),
            ms(percentile(&round, 0.5)),
            ms(percentile(&round, 0.99))
        ),
    ));

    // Cold wake: sleep, then the first answer.
    big.nap().await.expect("nap");
    let wait = async {
        while reg.awake_count() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the actors never slept");
    let t0 = Instant::now();
    let (id, _) = big.point(probes[1000]).await.expect("cold point");
    let cold = t0.elapsed();
    assert!(id.is_some());
    let mut cold_lat = Vec::new();
    for k in &probes[1001..1101] {
        let t0 = Instant::now();
        big.point(*k).await.expect("point");
        cold_lat.push(t0.elapsed());
    }
    cold_lat.sort();
    rows.push((
        format!(
            "cold wake, {have} rows ({:.0} MB stored): first answer / p50 of the next 100 point queries (cold pages)",
            db_bytes as f64 / 1e6
        ),
        format!(
            "{:.2} ms / {:.3} ms",
            ms(cold),
            ms(percentile(&cold_lat, 0.5))
        ),
    ));
    reg.shutdown().await;
    // Every handle on the store goes, so that the memory child can open it.
    drop((big, small, client, reg));

    // Memory, in a fresh process on the same file.
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env("FOOTLIGHTS_DB_BENCH_CHILD", &path)
        .env("DB_BENCH_ROWS", have.to_string())
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
            format!(
                "RSS, fresh process: small-database actor awake / + {have}-row actor awake (2000 point queries, 200 inserts; 8 MiB page cache)"
            ),
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
        "\nmachine: {} cores; window {:?} per timed run; SQLite driver, fsync per commit",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        window()
    );
}
