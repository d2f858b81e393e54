//! Fan-out with the subscribers in other processes: one actor, many subscribed connections
//! spread over `procs` child processes of this binary, so the delivery latency is not bounded
//! by one client process.
//!
//! Each child ([`subscriber`]) opens its share of connections, subscribes them to the
//! counter's `newCount` and prints `ready <live> <failed>`. For every count it has seen on all
//! its live connections it prints `round <count> <t> <t> ...`, the times each connection
//! received it, in nanoseconds since the Unix epoch (one clock for every process on the
//! machine). The parent sends an `increment`, notes the time before sending and waits until
//! every child reported the new count. A child ends when its standard input closes.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use footlights_protocol::codec::Encoding;
use footlights_protocol::{ToClient, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::procfs;
use crate::proto::{HttpConn, Mode, Target};
use crate::scenarios::{Ctx, Window, finish};
use crate::stats::RunResult;

/// How long a child may take to open its connections.
const OPEN_LIMIT: Duration = Duration::from_secs(120);
/// How long a round may take until every child has reported it.
const ROUND_LIMIT: Duration = Duration::from_secs(10);
/// A child that is never told to stop ends after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(900);

/// Now, in nanoseconds since the Unix epoch.
fn epoch_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The count an event carries, when it is a `newCount`.
fn event_count(msg: &ToClient) -> Option<i64> {
    match msg.as_event()? {
        ("newCount", [Value::Int(n), ..]) => Some(*n),
        _ => None,
    }
}

/// The child's side: opens `conns` subscribed connections to `counter/key` on `addr` and
/// reports each count once all live connections have received it (see the module docs).
pub(crate) async fn subscriber(
    addr: &str,
    mode: Mode,
    encoding: Encoding,
    key: &str,
    conns: usize,
) -> anyhow::Result<()> {
    let target = Target::new(addr, mode, encoding);
    let (tx, mut rx) = mpsc::unbounded_channel::<(i64, u64)>();
    let (mut set, failed) = spawn_subscribers(&target, key, conns, tx, |m| {
        event_count(m).map(|n| (n, epoch_nanos()))
    })
    .await?;
    let live = conns - failed;
    println!("ready {live} {failed}");

    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut seen: HashMap<i64, Vec<u64>> = HashMap::new();
    let lifetime = tokio::time::sleep(CHILD_LIFETIME);
    tokio::pin!(lifetime);
    loop {
        tokio::select! {
            got = rx.recv() => {
                let Some((n, t)) = got else { break };
                let times = seen.entry(n).or_default();
                times.push(t);
                if times.len() == live {
                    let times = seen.remove(&n).unwrap_or_default();
                    let mut line = format!("round {n}");
                    for t in times {
                        line.push(' ');
                        line.push_str(&t.to_string());
                    }
                    println!("{line}");
                }
            }
            line = stdin.next_line() => {
                if !matches!(line, Ok(Some(_))) {
                    break;
                }
            }
            _ = &mut lifetime => break,
        }
    }
    set.abort_all();
    Ok(())
}

/// Opens `conns` connections to `counter/key` (50 handshakes at a time), each subscribed to
/// `newCount` and sending what `pick` makes of each message it receives to `tx`. Returns once
/// every one has opened or failed: the tasks and how many failed.
pub(crate) async fn spawn_subscribers<T: Send + 'static>(
    target: &Target,
    key: &str,
    conns: usize,
    tx: mpsc::UnboundedSender<T>,
    pick: fn(&ToClient) -> Option<T>,
) -> anyhow::Result<(JoinSet<()>, usize)> {
    let gate = Arc::new(tokio::sync::Semaphore::new(50));
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..conns {
        let (t, key, tx, gate, ready, failed) = (
            target.clone(),
            key.to_owned(),
            tx.clone(),
            gate.clone(),
            ready.clone(),
            failed.clone(),
        );
        set.spawn(async move {
            let opened = async {
                let _permit = gate.acquire().await?;
                let mut h = HttpConn::lazy(&t.addr);
                let mut c = t.connect(&mut h, "counter", &key).await?;
                c.subscribe("newCount").await?;
                c.action("getCount", vec![]).await?;
                anyhow::Ok(c)
            }
            .await;
            let mut c = match opened {
                Ok(c) => c,
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    ready.add_permits(1);
                    return;
                }
            };
            ready.add_permits(1);
            while let Ok(m) = c.recv().await {
                if let Some(v) = pick(&m)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
    }
    tokio::time::timeout(OPEN_LIMIT, ready.acquire_many(conns as u32))
        .await
        .context("connections did not open in time")??
        .forget();
    Ok((set, failed.load(Ordering::Relaxed) as usize))
}

/// A child process and the lines it prints.
struct Sub {
    child: Child,
    live: usize,
    failed: usize,
}

/// Starts `procs` children sharing `conns` connections; returns them once all are ready, and
/// a channel of `(count, receive times)` reports from all of them.
async fn start_children(
    ctx: &Ctx,
    key: &str,
    conns: usize,
    procs: usize,
) -> anyhow::Result<(Vec<Sub>, mpsc::UnboundedReceiver<(i64, Vec<u64>)>)> {
    let exe = std::env::current_exe()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut subs = Vec::new();
    for i in 0..procs {
        let share = conns / procs + usize::from(i < conns % procs);
        let mode = match ctx.target.mode {
            Mode::Query => "query",
            Mode::Put => "put",
        };
        let encoding = match ctx.target.encoding {
            Encoding::Json => "json",
            _ => "bare",
        };
        let mut child = Command::new(&exe)
            .args([
                "fanout-subscriber",
                "--addr",
                &ctx.target.addr,
                "--key",
                key,
            ])
            .args(["--mode", mode, "--encoding", encoding])
            .args(["--conns", &share.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start a subscriber process")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(OPEN_LIMIT, lines.next_line())
            .await
            .context("a subscriber process did not get ready in time")??
            .context("a subscriber process ended before it was ready")?;
        let mut words = first.split_whitespace();
        let (Some("ready"), Some(live), Some(failed)) = (words.next(), words.next(), words.next())
        else {
            bail!("unexpected first line from a subscriber process: {first}");
        };
        subs.push(Sub {
            child,
            live: live.parse()?,
            failed: failed.parse()?,
        });
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut words = line.split_whitespace();
                if words.next() != Some("round") {
                    continue;
                }
                let Some(Ok(n)) = words.next().map(str::parse::<i64>) else {
                    continue;
                };
                let times = words.filter_map(|w| w.parse().ok()).collect();
                if tx.send((n, times)).is_err() {
                    break;
                }
            }
        });
    }
    Ok((subs, rx))
}

/// (d_proc) Fan-out to `conns` subscribers of one actor held by `procs` child processes:
/// `rounds` broadcasts; the median over rounds of each round's p50 / p99 / max (time from
/// sending the `increment` until each connection had the event), the server's CPU per
/// delivered event, and the CPU of the subscriber processes.
pub(crate) async fn fanout_procs(
    ctx: &Ctx,
    conns: usize,
    rounds: usize,
    procs: usize,
) -> RunResult {
    let scenario = format!("d_fanout_{conns}_{procs}proc");
    let mut r = match run(ctx, conns, rounds, procs.max(1)).await {
        Ok(r) => r,
        Err(e) => RunResult {
            target: ctx.name.clone(),
            errors: 1,
            note: format!("failed: {e:#}"),
            ..RunResult::default()
        },
    };
    r.scenario = scenario;
    r
}

async fn run(ctx: &Ctx, conns: usize, rounds: usize, procs: usize) -> anyhow::Result<RunResult> {
    let key = format!("fanp-{}", ctx.nonce);
    let t_open = Instant::now();
    let (mut subs, mut reports) = start_children(ctx, &key, conns, procs).await?;
    let open_s = t_open.elapsed().as_secs_f64();
    let live: usize = subs.iter().map(|s| s.live).sum();
    let failed: usize = subs.iter().map(|s| s.failed).sum();
    let child_pids: Vec<u32> = subs.iter().filter_map(|s| s.child.id()).collect();

    let mut h = HttpConn::open(&ctx.target.addr).await?;
    let mut sender = ctx.target.connect(&mut h, "counter", &key).await?;
    let (s0, c0) = (procfs::sample(&ctx.pids), procfs::sample(&child_pids));
    let start = Instant::now();
    let (mut p50s, mut p99s, mut maxs) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors = failed as u64;
    let mut delivered = 0u64;
    let mut early: HashMap<i64, Vec<Vec<u64>>> = HashMap::new();
    for _ in 0..rounds {
        let t0 = epoch_nanos();
        let n = match sender.action("increment", vec![Value::Int(1)]).await {
            Ok(Value::Int(n)) => n,
            _ => {
                errors += 1;
                continue;
            }
        };
        let mut got = early.remove(&n).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + ROUND_LIMIT;
        while got.len() < subs.len() {
            match tokio::time::timeout_at(deadline, reports.recv()).await {
                Ok(Some((m, times))) if m == n => got.push(times),
                Ok(Some((m, times))) => early.entry(m).or_default().push(times),
                _ => break,
            }
        }
        if got.len() < subs.len() {
            errors += 1;
        }
        let lat: Vec<u64> = got
            .into_iter()
            .flatten()
            .map(|t| t.saturating_sub(t0))
            .collect();
        delivered += lat.len() as u64;
        let mut rr = RunResult::default();
        rr.set_latencies(lat);
        p50s.push(rr.p50_ms);
        p99s.push(rr.p99_ms);
        maxs.push(rr.max_ms);
        // Let the sockets settle so each round starts from quiet.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let end = Instant::now();
    let (s1, c1) = (procfs::sample(&ctx.pids), procfs::sample(&child_pids));
    for s in &mut subs {
        // Closing stdin asks the child to stop; kill_on_drop ends it otherwise.
        drop(s.child.stdin.take());
    }
    for s in &mut subs {
        if tokio::time::timeout(Duration::from_secs(10), s.child.wait())
            .await
            .is_err()
        {
            let _ = s.child.kill().await;
        }
    }
    let mut r = finish(ctx, Window { start, end }, s0, s1, c0, c1);
    r.ops = p50s.len() as u64;
    r.throughput = r.ops as f64 / r.secs;
    r.p50_ms = crate::stats::median(&mut p50s);
    r.p99_ms = crate::stats::median(&mut p99s);
    r.max_ms = crate::stats::median(&mut maxs);
    r.errors = errors;
    let per_event_us = r.server_cpu_s * 1e6 / delivered.max(1) as f64;
    r.note = format!(
        "{live} of {conns} connected in {open_s:.2} s over {procs} subscriber processes; \
         server CPU {per_event_us:.2} µs per delivered event ({delivered} events); \
         worst round max {:.1} ms",
        maxs.iter().copied().fold(0.0, f64::max)
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_count_events_carry_a_count() {
        let ev = ToClient::Event {
            name: "newCount".into(),
            args: vec![Value::Int(7)],
        };
        assert_eq!(event_count(&ev), Some(7));
        let other = ToClient::Event {
            name: "other".into(),
            args: vec![Value::Int(7)],
        };
        assert_eq!(event_count(&other), None);
        let no_args = ToClient::Event {
            name: "newCount".into(),
            args: vec![],
        };
        assert_eq!(event_count(&no_args), None);
    }
}
