//! Cold calls and many actors: what the first call to a sleeping actor costs the server, and
//! durable actions spread over many actors, with the bytes the server writes per action.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::procfs;
use crate::proto::HttpConn;
use crate::scenarios::{Ctx, prewarm};
use crate::stats::RunResult;

/// Calls `action` once on each of `keys`, 32 at a time over HTTP; returns the failures.
async fn call_each(ctx: &Ctx, keys: &Arc<Vec<String>>, action: &'static str) -> u64 {
    let next = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..32 {
        let (t, keys, next) = (ctx.target.clone(), keys.clone(), next.clone());
        set.spawn(async move {
            let Ok(mut http) = HttpConn::open(&t.addr).await else {
                return 1;
            };
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(k) = keys.get(i) else { break };
                if t.http_action(&mut http, "counter", k, action, vec![])
                    .await
                    .is_err()
                {
                    errors += 1;
                }
            }
            errors
        });
    }
    set.join_all().await.into_iter().sum()
}

/// One call (`getCount`) to each of `keys` in turn on one HTTP connection, with the server's
/// CPU time and bytes written over the whole pass.
async fn one_pass(ctx: &Ctx, keys: &[String], scenario: String) -> RunResult {
    let mut http = match HttpConn::open(&ctx.target.addr).await {
        Ok(h) => h,
        Err(_) => {
            return RunResult {
                target: ctx.name.clone(),
                scenario,
                errors: keys.len() as u64,
                ..RunResult::default()
            };
        }
    };
    let mut lat = Vec::with_capacity(keys.len());
    let mut errors = 0;
    let (s0, c0, w0) = (
        procfs::sample(&ctx.pids),
        procfs::sample_self(),
        procfs::written(&ctx.pids),
    );
    let start = Instant::now();
    for k in keys {
        let t0 = Instant::now();
        match ctx
            .target
            .http_action(&mut http, "counter", k, "getCount", vec![])
            .await
        {
            Ok(_) => lat.push(t0.elapsed().as_nanos() as u64),
            Err(_) => errors += 1,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (s1, c1, w1) = (
        procfs::sample(&ctx.pids),
        procfs::sample_self(),
        procfs::written(&ctx.pids),
    );
    let ops = lat.len() as u64;
    let mut r = RunResult {
        target: ctx.name.clone(),
        scenario,
        ops,
        secs,
        throughput: ops as f64 / secs.max(f64::EPSILON),
        errors,
        server_rss_kb: s1.rss_kb,
        server_cpu_s: s1.cpu - s0.cpu,
        client_cpu_s: c1.cpu - c0.cpu,
        ..RunResult::default()
    };
    r.set_latencies(lat);
    let per = |v: f64| v / ops.max(1) as f64;
    r.note = format!(
        "server CPU {:.0} µs per call; written per call {:.0} B (wchar), {:.0} B (write_bytes)",
        per(r.server_cpu_s * 1e6),
        per((w1.0 - w0.0) as f64),
        per((w1.1 - w0.1) as f64),
    );
    r
}

/// (cold) What the first call to a sleeping actor costs the server, in two cases:
/// - `n` counters created and put to sleep (`goToSleep`), then one `getCount` to each, one at
///   a time (each wakes its actor), then the same calls again to the awake actors;
/// - `n` more counters put to sleep, then `crowd` more counters created (and put to sleep), so
///   that the first ones' keys are no longer among the 65,536 the server remembers (as after a restart, or
///   with more actors than that), then one call to each of the first ones.
///
/// Reports the server's CPU time per call of each pass (from `/proc`, over the whole pass).
pub(crate) async fn cold_calls(ctx: &Ctx, n: usize, crowd: usize) -> Vec<RunResult> {
    let keys = |tag: &str, n: usize| -> Arc<Vec<String>> {
        Arc::new(
            (0..n)
                .map(|i| format!("cold-{tag}-{}-{i}", ctx.nonce))
                .collect(),
        )
    };
    let remembered = keys("r", n);
    let _ = prewarm(ctx, remembered.to_vec()).await;
    let slept_errors = call_each(ctx, &remembered, "goToSleep").await;
    // The sleep follows each answer; give the last ones time to finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut cold = one_pass(ctx, &remembered, format!("cold_call_{n}actors")).await;
    cold.errors += slept_errors;
    let warm = one_pass(ctx, &remembered, format!("warm_call_{n}actors")).await;

    let forgotten = keys("f", n);
    let _ = prewarm(ctx, forgotten.to_vec()).await;
    let slept_errors = call_each(ctx, &forgotten, "goToSleep").await;
    let crowd_keys = keys("crowd", crowd);
    let _ = prewarm(ctx, crowd_keys.to_vec()).await;
    // The crowd goes to sleep now rather than during the measured pass (its idle timeout).
    let _ = call_each(ctx, &crowd_keys, "goToSleep").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut evicted = one_pass(ctx, &forgotten, format!("cold_call_{n}actors_key_evicted")).await;
    evicted.errors += slept_errors;
    evicted.note = format!("{}; after {crowd} other actors were created", evicted.note);
    vec![cold, warm, evicted]
}

/// (c_many100k) Durable HTTP actions (`increment`) at concurrency `conc`, round robin over
/// `actors` counters, with the server's bytes written per action.
/// With `shuffled`, in an order unrelated to the order they were created in.
pub(crate) async fn many_actors(
    ctx: &Ctx,
    id: &str,
    conc: usize,
    actors: usize,
    shuffled: bool,
) -> RunResult {
    let pids = ctx.pids.clone();
    let addr = ctx.target.addr.clone();
    let (mut r, (before, after)) =
        crate::scenarios::http_actions_written(ctx, id, conc, actors, shuffled, async || {
            (procfs::written(&pids), counter_wakes(&addr).await)
        })
        .await;
    let written = (
        after.0.0.saturating_sub(before.0.0),
        after.0.1.saturating_sub(before.0.1),
    );
    let per = |v: u64| v as f64 / r.ops.max(1) as f64;
    r.note = format!(
        "written per action {:.0} B (wchar), {:.0} B (write_bytes)",
        per(written.0),
        per(written.1)
    );
    // Actors asleep when called: those created first may have slept before the window if
    // creating them all took longer than their idle timeout.
    if let (Some(b), Some(a)) = (before.1, after.1) {
        let woken = a.saturating_sub(b);
        r.note.push_str(&format!(
            "; {woken} actors woken in the window ({:.0} % of calls)",
            100.0 * per(woken)
        ));
    }
    r
}

/// `counter` instances started so far, from the server's `/metrics` (`None` for a server
/// without them).
async fn counter_wakes(addr: &str) -> Option<u64> {
    let mut http = HttpConn::open(addr).await.ok()?;
    let (status, body) = http
        .request("GET", "/metrics", &[], bytes::Bytes::new())
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    counter_wakes_in(&String::from_utf8_lossy(&body))
}

/// The `counter` series of `footlights_actor_wakes_total` in a `/metrics` answer.
fn counter_wakes_in(text: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with("footlights_actor_wakes_total{") && l.contains("actor=\"counter\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

#[cfg(test)]
mod tests {
    use super::counter_wakes_in;

    #[test]
    fn the_counter_wakes_are_read_from_the_metrics_text() {
        let text = "# TYPE footlights_actor_wakes_total counter\n\
            footlights_actor_wakes_total{actor=\"chatRoom\"} 7\n\
            footlights_actor_wakes_total{actor=\"counter\"} 120345\n\
            footlights_actors_awake{actor=\"counter\"} 3\n";
        assert_eq!(counter_wakes_in(text), Some(120_345));
        assert_eq!(
            counter_wakes_in("footlights_actors_awake{actor=\"counter\"} 3"),
            None
        );
    }
}
