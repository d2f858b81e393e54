//! The cluster benchmark: two `footlights serve --postgres` nodes on this machine against a
//! PostgreSQL the harness starts (Debian's package; or `FOOTLIGHTS_TEST_POSTGRES_URL`).
//!
//! Measures, in one run and with the same client:
//! - HTTP actions through the owner and through the other node (which forwards): latency
//!   p50/p99 of one client calling in a loop, and actions/s with 64 concurrent clients;
//! - failover: after `kill -9` of the owner, the time until an increment through the
//!   survivor is acknowledged again (20 kills, a 2-second lease).
//!
//! Run with `cargo bench -p footlights-cli --bench cluster`. `ROUNDS`, `SECS` and `KILLS`
//! override the sizes.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use footlights_storage_postgres::test_support::{TestPostgres, TestSchema};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const LEASE_MS: &str = "2000";

struct Node {
    child: Child,
    url: String,
}

async fn node(dir: &Path, url: &str, schema: &str, name: &str) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_footlights"))
        .args([
            "serve",
            "--port",
            "0",
            "--postgres",
            url,
            "--postgres-schema",
            schema,
        ])
        .args([
            "--node-name",
            name,
            "--peer-addr",
            "127.0.0.1:0",
            "--lease-ms",
            LEASE_MS,
        ])
        .arg("--data-dir")
        .arg(dir)
        .env_remove("RUST_BACKTRACE")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first.strip_prefix("listening on ").unwrap().to_owned();
    // Keep reading stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Node { child, url }
}

fn action_url(node: &Node, key: &str, action: &str) -> String {
    format!(
        "{}/gateway/counter/action/{action}?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key={key}&rvt-crash-policy=sleep",
        node.url
    )
}

async fn call(client: &reqwest::Client, url: &str) -> bool {
    match client
        .post(url)
        .header("content-type", "application/json")
        .body(r#"{"args":[]}"#)
        .send()
        .await
    {
        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One client calling `action` `rounds` times in a loop: p50 and p99.
async fn latency(client: &reqwest::Client, url: &str, rounds: usize) -> (Duration, Duration) {
    for _ in 0..100 {
        assert!(call(client, url).await);
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        assert!(call(client, url).await);
        times.push(start.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

/// 64 clients calling `action` for `secs`: acknowledged calls per second.
async fn throughput(url: &str, secs: f64) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < end {
                    if call(&client, &url).await {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / secs
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env_usize("ROUNDS", 2000);
    let secs = env_usize("SECS", 3) as f64;
    let kills = env_usize("KILLS", 20);
    let pg = TestPostgres::shared_async().await;
    let schema = TestSchema::new(pg);
    let dir = tempfile::tempdir().unwrap();
    let a = node(dir.path(), pg.url(), schema.name(), "a").await;
    let b = node(dir.path(), pg.url(), schema.name(), "b").await;
    let client = reqwest::Client::new();
    // The owner is the node that first serves the actor.
    assert!(call(&client, &action_url(&a, "bench", "increment")).await);

    println!("## Cluster: HTTP actions through the owner and through another node");
    println!();
    println!("two nodes and PostgreSQL on this machine, one client process; counter actor");
    println!();
    println!("| action | path | p50 | p99 | actions/s, 64 clients |");
    println!("|---|---|---|---|---|");
    for action in ["getCount", "increment"] {
        let direct = action_url(&a, "bench", action);
        let forwarded = action_url(&b, "bench", action);
        let (d50, d99) = latency(&client, &direct, rounds).await;
        let (f50, f99) = latency(&client, &forwarded, rounds).await;
        let dt = throughput(&direct, secs).await;
        let ft = throughput(&forwarded, secs).await;
        println!("| {action} | owner | {} | {} | {dt:.0} |", ms(d50), ms(d99));
        println!(
            "| {action} | other node | {} | {} | {ft:.0} |",
            ms(f50),
            ms(f99)
        );
        println!(
            "| {action} | overhead | +{} | +{} | owner/other {:.2}× |",
            ms(f50.saturating_sub(d50)),
            ms(f99.saturating_sub(d99)),
            dt / ft
        );
    }
    drop(a);
    drop(b);

    println!();
    println!(
        "## Cluster: failover after kill -9 of the owner ({kills} kills, lease {LEASE_MS} ms)"
    );
    println!();
    let mut times = Vec::new();
    let survivor = node(dir.path(), pg.url(), schema.name(), "survivor").await;
    for round in 0..kills {
        let key = format!("failover-{round}");
        let mut owner = node(dir.path(), pg.url(), schema.name(), "owner").await;
        assert!(call(&client, &action_url(&owner, &key, "increment")).await);
        owner.child.start_kill().unwrap();
        owner.child.wait().await.unwrap();
        let killed = Instant::now();
        let url = action_url(&survivor, &key, "increment");
        while !call(&client, &url).await {
            assert!(killed.elapsed() < Duration::from_secs(30), "no failover");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        times.push(killed.elapsed());
    }
    times.sort();
    println!(
        "time until the actor answers again: min {}, p50 {}, max {}",
        ms(times[0]),
        ms(percentile(&times, 0.5)),
        ms(times[times.len() - 1])
    );
}
