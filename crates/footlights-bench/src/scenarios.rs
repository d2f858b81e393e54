//! The benchmark scenarios. Each returns one [`RunResult`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use footlights_protocol::{ToClient, Value};
use tokio::task::JoinSet;

use crate::procfs::{self, Sample};
use crate::proto::{HttpConn, Target};
use crate::stats::RunResult;

/// What every scenario needs.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The server.
    pub target: Target,
    /// Its name in the results.
    pub name: String,
    /// Its processes (for RSS and CPU).
    pub pids: Vec<u32>,
    /// Warm-up before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub secs: Duration,
    /// Distinguishes the keys of this invocation from earlier ones on the same server.
    pub nonce: String,
}

/// Latencies and errors of one worker.
#[derive(Debug, Default)]
struct Rec {
    lat: Vec<u64>,
    errors: u64,
}

/// The measured window: operations that start and end inside it count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    fn new(ctx: &Ctx) -> Window {
        let start = Instant::now() + ctx.warmup;
        Window {
            start,
            end: start + ctx.secs,
        }
    }

    fn record(&self, rec: &mut Rec, t0: Instant, ok: bool) {
        let t1 = Instant::now();
        if !ok {
            rec.errors += 1;
        } else if t0 >= self.start && t1 <= self.end {
            rec.lat.push((t1 - t0).as_nanos() as u64);
        }
    }

    fn running(&self) -> bool {
        Instant::now() < self.end
    }
}

/// Samples the server and this process at the window's edges while workers run.
async fn measure(ctx: &Ctx, w: Window, set: JoinSet<Rec>) -> (RunResult, Vec<Rec>) {
    tokio::time::sleep_until(w.start.into()).await;
    let (s0, c0) = (procfs::sample(&ctx.pids), procfs::sample_self());
    tokio::time::sleep_until(w.end.into()).await;
    let (s1, c1) = (procfs::sample(&ctx.pids), procfs::sample_self());
    let recs = set.join_all().await;
    (finish(ctx, w, s0, s1, c0, c1), recs)
}

pub(crate) fn finish(
    ctx: &Ctx,
    w: Window,
    s0: Sample,
    s1: Sample,
    c0: Sample,
    c1: Sample,
) -> RunResult {
    RunResult {
        target: ctx.name.clone(),
        secs: (w.end - w.start).as_secs_f64(),
        server_rss_kb: s1.rss_kb,
        server_cpu_s: s1.cpu - s0.cpu,
        client_cpu_s: c1.cpu - c0.cpu,
        ..RunResult::default()
    }
}

fn merge(mut r: RunResult, recs: Vec<Rec>, scenario: &str) -> RunResult {
    let mut lat = Vec::new();
    for rec in recs {
        r.errors += rec.errors;
        lat.extend(rec.lat);
    }
    r.ops = lat.len() as u64;
    r.throughput = r.ops as f64 / r.secs;
    r.scenario = scenario.to_owned();
    r.set_latencies(lat);
    r
}

/// Touches every key once (getCount over HTTP, 32 at a time) so actors exist before timing.
pub(crate) async fn prewarm(ctx: &Ctx, keys: Vec<String>) -> anyhow::Result<u64> {
    let keys = Arc::new(keys);
    let next = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..32 {
        let (t, keys, next) = (ctx.target.clone(), keys.clone(), next.clone());
        set.spawn(async move {
            let mut http = HttpConn::open(&t.addr).await?;
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(k) = keys.get(i) else { break };
                if t.http_action(&mut http, "counter", k, "getCount", vec![])
                    .await
                    .is_err()
                {
                    errors += 1;
                }
            }
            anyhow::Ok(errors)
        });
    }
    let mut errors = 0;
    for r in set.join_all().await {
        errors += r?;
    }
    Ok(errors)
}

/// (a, b) WebSocket actions: `conns` connections over `actors` actors, one action in flight each.
pub(crate) async fn ws_actions(ctx: &Ctx, id: &str, conns: usize, actors: usize) -> RunResult {
    ws_calls(ctx, id, conns, actors, "increment").await
}

/// Like [`ws_actions`] with any action (`getCount` writes nothing, so no fsync is waited for).
pub(crate) async fn ws_calls(
    ctx: &Ctx,
    id: &str,
    conns: usize,
    actors: usize,
    action: &'static str,
) -> RunResult {
    let keys: Vec<String> = (0..actors)
        .map(|i| format!("ws-{}-{i}", ctx.nonce))
        .collect();
    let _ = prewarm(ctx, keys.clone()).await;
    ws_load(ctx, id, &keys, conns, action).await
}

/// The load of [`ws_calls`] on actors that exist: `conns` connections round robin over `keys`,
/// one `action` in flight each.
pub(crate) async fn ws_load(
    ctx: &Ctx,
    id: &str,
    keys: &[String],
    conns: usize,
    action: &'static str,
) -> RunResult {
    let actors = keys.len();
    let mut opened = Vec::new();
    let mut open_errors = 0;
    let mut http = HttpConn::open(&ctx.target.addr).await.ok();
    for i in 0..conns {
        let Some(h) = http.as_mut() else { break };
        match ctx.target.connect(h, "counter", &keys[i % actors]).await {
            Ok(c) => opened.push(c),
            Err(_) => open_errors += 1,
        }
    }
    let w = Window::new(ctx);
    let mut set = JoinSet::new();
    for mut c in opened {
        set.spawn(async move {
            let mut rec = Rec::default();
            while w.running() {
                let t0 = Instant::now();
                let args = if action == "increment" {
                    vec![Value::Int(1)]
                } else {
                    vec![]
                };
                let ok = c.action(action, args).await.is_ok();
                w.record(&mut rec, t0, ok);
                if !ok {
                    break;
                }
            }
            c.close().await;
            rec
        });
    }
    let (r, recs) = measure(ctx, w, set).await;
    let mut r = merge(r, recs, id);
    r.errors += open_errors;
    if open_errors > 0 {
        r.note = format!("{open_errors} of {conns} connects failed");
    }
    r
}

/// (c) HTTP actions at concurrency `conc` over `actors` actors (round robin).
pub(crate) async fn http_actions(ctx: &Ctx, id: &str, conc: usize, actors: usize) -> RunResult {
    http_actions_written(ctx, id, conc, actors, false, async || ())
        .await
        .0
}

/// [`http_actions`], also returning what `mark` read at the start and at the end of the
/// measured window (bytes written, counts from the server's metrics). With `shuffled`, the
/// actors are called in an order unrelated to the order they were created in (a fixed
/// permutation), so that the actors called together are not neighbours in storage.
pub(crate) async fn http_actions_written<M>(
    ctx: &Ctx,
    id: &str,
    conc: usize,
    actors: usize,
    shuffled: bool,
    mark: impl AsyncFn() -> M,
) -> (RunResult, (M, M)) {
    let mut keys: Vec<String> = (0..actors)
        .map(|i| format!("h-{}-{i}", ctx.nonce))
        .collect();
    let _ = prewarm(ctx, keys.clone()).await;
    if shuffled {
        shuffle(&mut keys);
    }
    let keys = Arc::new(keys);
    let w = Window::new(ctx);
    let mut set = JoinSet::new();
    for wi in 0..conc {
        let (t, keys) = (ctx.target.clone(), keys.clone());
        set.spawn(async move {
            let mut rec = Rec::default();
            let Ok(mut http) = HttpConn::open(&t.addr).await else {
                rec.errors += 1;
                return rec;
            };
            let mut i = wi;
            while w.running() {
                let k = &keys[i % keys.len()];
                i += conc;
                let t0 = Instant::now();
                let ok = t
                    .http_action(&mut http, "counter", k, "increment", vec![Value::Int(1)])
                    .await
                    .is_ok();
                w.record(&mut rec, t0, ok);
            }
            rec
        });
    }
    tokio::time::sleep_until(w.start.into()).await;
    let m0 = mark().await;
    let (r, recs) = measure(ctx, w, set).await;
    // After the workers' last calls (at most one per worker past the window's end).
    let m1 = mark().await;
    (merge(r, recs, id), (m0, m1))
}

/// Fisher-Yates with a fixed xorshift generator: the same permutation every run.
fn shuffle<T>(items: &mut [T]) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// (d) Fan-out: 1000 subscribed connections on one actor, 20 broadcasts. Reports the median
/// over rounds of each round's p50 / p99 / max (time until every connection had the event).
pub(crate) async fn fanout(ctx: &Ctx, conns: usize, rounds: usize) -> RunResult {
    let key = format!("fan-{}", ctx.nonce);
    let t_open = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let (mut set, failed) =
        match crate::fanout::spawn_subscribers(&ctx.target, &key, conns, tx, |m| {
            matches!(m, ToClient::Event { .. }).then(Instant::now)
        })
        .await
        {
            Ok(opened) => opened,
            Err(e) => {
                return RunResult {
                    target: ctx.name.clone(),
                    scenario: format!("d_fanout_{conns}"),
                    errors: conns as u64,
                    note: format!("failed: {e:#}"),
                    ..RunResult::default()
                };
            }
        };
    let open_s = t_open.elapsed().as_secs_f64();
    let live = conns - failed;
    let (s0, c0) = (procfs::sample(&ctx.pids), procfs::sample_self());
    let start = Instant::now();
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut maxs = Vec::new();
    let mut errors = 0;
    let mut sender = match HttpConn::open(&ctx.target.addr).await {
        Ok(mut h) => ctx.target.connect(&mut h, "counter", &key).await.ok(),
        Err(_) => None,
    };
    for _ in 0..rounds {
        let Some(s) = sender.as_mut() else { break };
        let t0 = Instant::now();
        if s.action("increment", vec![Value::Int(1)]).await.is_err() {
            errors += 1;
            continue;
        }
        let mut lat = Vec::with_capacity(live);
        while lat.len() < live {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(t)) => lat.push((t.saturating_duration_since(t0)).as_nanos() as u64),
                _ => {
                    errors += 1;
                    break;
                }
            }
        }
        let mut rr = RunResult::default();
        rr.set_latencies(lat);
        p50s.push(rr.p50_ms);
        p99s.push(rr.p99_ms);
        maxs.push(rr.max_ms);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let end = Instant::now();
    let (s1, c1) = (procfs::sample(&ctx.pids), procfs::sample_self());
    set.abort_all();
    let mut r = finish(ctx, Window { start, end }, s0, s1, c0, c1);
    r.scenario = format!("d_fanout_{conns}");
    r.ops = p50s.len() as u64;
    r.throughput = r.ops as f64 / r.secs;
    r.p50_ms = crate::stats::median(&mut p50s);
    r.p99_ms = crate::stats::median(&mut p99s);
    r.max_ms = crate::stats::median(&mut maxs);
    r.errors = errors + failed as u64;
    r.note = format!(
        "{live} of {conns} connected in {open_s:.2} s; worst round max {:.1} ms",
        maxs.iter().copied().fold(0.0, f64::max)
    );
    r
}

/// Creates `n` new actors (getOrCreate + increment) with concurrency `conc`, for at most `cap`.
/// Returns the result and how many were created.
async fn create_actors(ctx: &Ctx, prefix: &str, n: usize, conc: usize, cap: Duration) -> RunResult {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + cap;
    let (s0, c0) = (procfs::sample(&ctx.pids), procfs::sample_self());
    let mut set = JoinSet::new();
    for _ in 0..conc {
        let (t, next, prefix) = (ctx.target.clone(), next.clone(), prefix.to_owned());
        set.spawn(async move {
            let mut rec = Rec::default();
            let Ok(mut http) = HttpConn::open(&t.addr).await else {
                rec.errors += 1;
                return rec;
            };
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    break;
                }
                let t0 = Instant::now();
                let key = format!("{prefix}-{i}");
                let res = t
                    .http_action(&mut http, "counter", &key, "increment", vec![Value::Int(1)])
                    .await;
                match res {
                    Ok(_) => rec.lat.push(t0.elapsed().as_nanos() as u64),
                    Err(_) => rec.errors += 1,
                }
            }
            rec
        });
    }
    let recs = set.join_all().await;
    let end = Instant::now();
    let (s1, c1) = (procfs::sample(&ctx.pids), procfs::sample_self());
    let r = finish(ctx, Window { start, end }, s0, s1, c0, c1);
    merge(r, recs, "")
}

/// (e) Actor creation rate: 2,000 new keys at concurrency 32.
pub(crate) async fn creation(ctx: &Ctx, run: u32) -> RunResult {
    let prefix = format!("e-{}-{run}", ctx.nonce);
    let mut r = create_actors(ctx, &prefix, 2000, 32, Duration::from_secs(15)).await;
    r.scenario = "e_create_2000_c32".to_owned();
    r.note = format!("{} of 2000 created in {:.2} s", r.ops, r.secs);
    r
}

/// (f) Memory with 10,000 actors, with 10,000 more, then with 2,000 idle WebSockets (20 actors).
pub(crate) async fn memory(ctx: &Ctx) -> Vec<RunResult> {
    let mut out = Vec::new();
    let idle = procfs::sample(&ctx.pids).rss_kb;
    let mut idle_r = finish(
        ctx,
        Window {
            start: Instant::now(),
            end: Instant::now() + Duration::from_millis(1),
        },
        Sample::default(),
        Sample::default(),
        Sample::default(),
        Sample::default(),
    );
    idle_r.scenario = "f_rss_idle".to_owned();
    idle_r.server_rss_kb = idle;
    out.push(idle_r);

    let before = procfs::sample(&ctx.pids).rss_kb;
    let prefix = format!("m-{}", ctx.nonce);
    let first = rss_growth(ctx, &prefix, "f_rss_10k_actors", before, "actors created").await;
    let after_first = first.server_rss_kb;
    out.push(first);
    // 10,000 more: their growth leaves out what the first ones paid once (the load
    // generator's HTTP connections' buffers, SQLite's caches filling, the runtime's own
    // growth), so it is the slope of memory in the number of actors.
    let more = format!("{prefix}-more");
    let what = "more actors created beside the first 10000";
    out.push(rss_growth(ctx, &more, "f_rss_10k_more_actors", after_first, what).await);
    out.push(memory_ws(ctx).await);
    out
}

/// (f) Creates 10,000 counters named `prefix-N` and, 2 s later, reports as `scenario` the
/// server's RSS growth over `before` (KiB) per actor created.
async fn rss_growth(ctx: &Ctx, prefix: &str, scenario: &str, before: u64, what: &str) -> RunResult {
    let mut r = create_actors(ctx, prefix, 10_000, 32, Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = procfs::sample(&ctx.pids).rss_kb;
    r.scenario = scenario.to_owned();
    r.server_rss_kb = after;
    let per = (after.saturating_sub(before) * 1024) as f64 / r.ops.max(1) as f64;
    r.bytes_per_unit = per;
    r.note = format!("{} {what}; +{per:.0} B per actor", r.ops);
    r
}

/// (f) RSS growth with 2,000 idle `/connect` WebSockets over 20 actors.
pub(crate) async fn memory_ws(ctx: &Ctx) -> RunResult {
    let before = procfs::sample(&ctx.pids).rss_kb;
    let t0 = Instant::now();
    let mut conns = Vec::new();
    let mut errors = 0;
    let gate = Arc::new(tokio::sync::Semaphore::new(50));
    let mut set = JoinSet::new();
    for i in 0..2000 {
        let (t, gate) = (ctx.target.clone(), gate.clone());
        let key = format!("mw-{}-{}", ctx.nonce, i % 20);
        set.spawn(async move {
            let _p = gate.acquire().await?;
            let mut h = HttpConn::lazy(&t.addr);
            t.connect(&mut h, "counter", &key).await
        });
    }
    for c in set.join_all().await {
        match c {
            Ok(c) => conns.push(c),
            Err(_) => errors += 1,
        }
    }
    let open_s = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = procfs::sample(&ctx.pids).rss_kb;
    let n = conns.len();
    let mut r = RunResult {
        target: ctx.name.clone(),
        scenario: "f_rss_2000_ws".to_owned(),
        ops: n as u64,
        secs: open_s,
        errors,
        server_rss_kb: after,
        ..RunResult::default()
    };
    let per = (after.saturating_sub(before) * 1024) as f64 / n.max(1) as f64;
    r.bytes_per_unit = per;
    r.note =
        format!("{n} connections open (20 actors) in {open_s:.2} s; +{per:.0} B per connection");
    for c in conns {
        c.close().await;
    }
    r
}
