//! Scenarios with a crowd on one actor: actions beside many idle connections, opening many
//! connections, and hibernation (the actor asleep under its open sockets).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::procfs;
use crate::proto::{HttpConn, WsConn};
use crate::scenarios::{Ctx, prewarm, ws_load};
use crate::stats::RunResult;

/// Opens `n` idle `/connect` WebSockets to one `counter` (50 handshakes at a time).
async fn open_idle(ctx: &Ctx, key: &str, n: usize) -> (Vec<WsConn>, u64, f64) {
    let t0 = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(50));
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (t, gate, key) = (ctx.target.clone(), gate.clone(), key.to_owned());
        set.spawn(async move {
            let _p = gate.acquire().await?;
            let mut h = HttpConn::lazy(&t.addr);
            t.connect(&mut h, "counter", &key).await
        });
    }
    let mut conns = Vec::new();
    let mut errors = 0;
    for c in set.join_all().await {
        match c {
            Ok(c) => conns.push(c),
            Err(_) => errors += 1,
        }
    }
    (conns, errors, t0.elapsed().as_secs_f64())
}

/// (b_idle) `idle` idle `/connect` WebSockets on one `counter`, then the 100-connection
/// `increment` load of [`ws_actions`](crate::scenarios::ws_actions) on the same actor: what idle connections cost the active
/// ones. The note gives the time the idle ones took to open.
pub(crate) async fn idle_actions(ctx: &Ctx, idle: usize) -> RunResult {
    let key = format!("idle-{}", ctx.nonce);
    let _ = prewarm(ctx, vec![key.clone()]).await;
    let (conns, errors, open_s) = open_idle(ctx, &key, idle).await;
    let open = conns.len();
    let id = format!("b_idle_{idle}_ws_100conn_1actor");
    let mut r = ws_load(ctx, &id, std::slice::from_ref(&key), 100, "increment").await;
    r.errors += errors;
    let note = format!("{open} idle connections on the actor, opened in {open_s:.2} s");
    r.note = if r.note.is_empty() {
        note
    } else {
        format!("{note}; {}", r.note)
    };
    for c in conns {
        c.close().await;
    }
    r
}

/// (b_open) The time to open `n` `/connect` WebSockets on one `counter` (50 handshakes at a
/// time); `ops` are the connections that opened, `secs` the time it took.
pub(crate) async fn open_many(ctx: &Ctx, n: usize) -> RunResult {
    let key = format!("open-{}", ctx.nonce);
    let _ = prewarm(ctx, vec![key.clone()]).await;
    let (conns, errors, open_s) = open_idle(ctx, &key, n).await;
    let open = conns.len();
    let mut r = RunResult {
        target: ctx.name.clone(),
        scenario: format!("b_open_{n}_ws_1actor"),
        ops: open as u64,
        secs: open_s,
        errors,
        server_rss_kb: procfs::sample(&ctx.pids).rss_kb,
        ..RunResult::default()
    };
    r.note = format!(
        "{open} of {n} connections to one actor opened in {open_s:.2} s ({:.0}/s)",
        open as f64 / open_s.max(f64::EPSILON)
    );
    for c in conns {
        c.close().await;
    }
    r
}

/// (h) Hibernation: `n` idle WebSockets on one `counter`, the server's RSS per connection with
/// the actor awake and then asleep (`goToSleep`; the sockets stay open), and the latency of a
/// call that wakes it (`wakes` times: put to sleep, let it settle, call) beside a call to the
/// awake actor. Footlights only: the peers have no such action.
pub(crate) async fn hibernation(ctx: &Ctx, n: usize, wakes: usize) -> Vec<RunResult> {
    let key = format!("h-{}", ctx.nonce);
    let before = procfs::sample(&ctx.pids).rss_kb;
    let (mut conns, errors, open_s) = open_idle(ctx, &key, n).await;
    let open = conns.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let awake = procfs::sample(&ctx.pids).rss_kb;
    let per = |rss: u64| (rss.saturating_sub(before) * 1024) as f64 / open.max(1) as f64;
    let mut out = Vec::new();
    let mut r = RunResult {
        target: ctx.name.clone(),
        scenario: format!("h_rss_{n}_ws_awake"),
        ops: open as u64,
        secs: open_s,
        errors,
        server_rss_kb: awake,
        bytes_per_unit: per(awake),
        ..RunResult::default()
    };
    r.note = format!(
        "{open} connections on one actor, awake; +{:.0} B per connection",
        per(awake)
    );
    out.push(r);

    // Asleep: the actor saves and sleeps; every socket stays open.
    let slept = match conns.first_mut() {
        Some(c) => c.action("goToSleep", vec![]).await.is_ok(),
        None => false,
    };
    let asleep = if slept {
        tokio::time::sleep(Duration::from_secs(2)).await;
        procfs::sample(&ctx.pids).rss_kb
    } else {
        0
    };
    let mut r = RunResult {
        target: ctx.name.clone(),
        scenario: format!("h_rss_{n}_ws_asleep"),
        ops: open as u64,
        server_rss_kb: asleep,
        bytes_per_unit: per(asleep),
        ..RunResult::default()
    };
    r.note = format!(
        "{open} connections on one actor, asleep (sockets kept); +{:.0} B per connection",
        per(asleep)
    );
    out.push(r);

    // Wake latency: a call on one socket after the actor went to sleep, against the same call
    // on the awake actor. Different sockets each time, so none is warmer than the others.
    let mut woken = Vec::new();
    let mut warm = Vec::new();
    let mut failures = 0;
    for i in 0..wakes.min(open.saturating_sub(1)) {
        let (first, rest) = conns.split_at_mut(1);
        let caller = &mut rest[i];
        if first[0].action("goToSleep", vec![]).await.is_err() {
            failures += 1;
            continue;
        }
        // The sleep follows the answer; give it time to finish before calling.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        match caller.action("getCount", vec![]).await {
            Ok(_) => woken.push(t0.elapsed().as_nanos() as u64),
            Err(_) => failures += 1,
        }
        let t0 = Instant::now();
        match caller.action("getCount", vec![]).await {
            Ok(_) => warm.push(t0.elapsed().as_nanos() as u64),
            Err(_) => failures += 1,
        }
    }
    let mut r = RunResult {
        target: ctx.name.clone(),
        scenario: "h_wake_latency".to_owned(),
        ops: woken.len() as u64,
        errors: failures,
        ..RunResult::default()
    };
    let mut awake_r = RunResult::default();
    awake_r.set_latencies(warm);
    r.set_latencies(woken);
    r.note = format!(
        "a call that wakes the actor (with {open} parked sockets) p50/p99 {:.2}/{:.2} ms; the next call p50/p99 {:.2}/{:.2} ms",
        r.p50_ms, r.p99_ms, awake_r.p50_ms, awake_r.p99_ms
    );
    out.push(r);
    for c in conns {
        c.close().await;
    }
    out
}
