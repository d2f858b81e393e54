//! `footlights-bench`: a load generator that speaks the RivetKit client protocol (HTTP actions
//! through the gateway and the `/connect` WebSocket, JSON or BARE), so the same binary drives
//! Footlights and the RivetKit peers. Also serves the bare echo servers used as the ceiling,
//! measures SQLite fsync'd commits, runs the durability check and writes the report.
//!
//! `bench/run.sh` drives it; see `bench/RESULTS.md` for the figures.

mod ceiling;
mod cold;
mod crowd;
mod fanout;
mod floor;
mod procfs;
mod proto;
mod report;
mod scenarios;
mod stats;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use footlights_protocol::Value;
use footlights_protocol::codec::Encoding;

use crate::proto::{HttpConn, Mode, Target};
use crate::scenarios::Ctx;
use crate::stats::RunResult;

/// Load generator for the RivetKit client protocol.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs scenarios against a server; appends one JSON line per run to `--out`.
    Suite(SuiteArgs),
    /// Serves a bare hyper HTTP echo (the HTTP ceiling).
    HttpEcho {
        /// Port.
        #[arg(long)]
        port: u16,
    },
    /// Serves a bare WebSocket echo speaking `/connect` (the WebSocket ceiling).
    WsEcho {
        /// Port.
        #[arg(long)]
        port: u16,
        /// WebSocket read buffer per connection, bytes (tungstenite's default is 128 KiB).
        #[arg(long)]
        read_buffer: Option<usize>,
    },
    /// The fan-out floor: the writer's CPU per small write to each of `--conns` loopback
    /// sockets read by `--procs` child processes; appends a JSON line per run to `--out`.
    WriteFloor {
        /// Sockets.
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        /// Reader processes.
        #[arg(long, default_value_t = 2)]
        procs: usize,
        /// Rounds (one write to every socket each).
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// Runs.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// JSON lines output.
        #[arg(long)]
        out: PathBuf,
    },
    /// A reader process of `write-floor` (started by it).
    FloorReader {
        /// Address to connect to.
        #[arg(long)]
        addr: String,
        /// Connections.
        #[arg(long)]
        conns: usize,
    },
    /// Measures fsync'd SQLite commits per second; appends a JSON line to `--out`.
    Sqlite {
        /// Directory for the scratch database.
        #[arg(long)]
        dir: PathBuf,
        /// Seconds per run.
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// Runs.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// JSON lines output.
        #[arg(long)]
        out: PathBuf,
    },
    /// Durability: `write` increments and SIGKILLs `--pids` on the acknowledgement; `read`
    /// polls `getCount` until the restarted server answers.
    Durability {
        /// `write` or `read`.
        phase: String,
        #[command(flatten)]
        server: ServerArgs,
        /// Actor key.
        #[arg(long)]
        key: String,
    },
    /// One subscriber process of the multi-process fan-out (`d_proc`, `d10k`): opens
    /// `--conns` subscribed connections and reports each broadcast on standard output; ends
    /// when standard input closes.
    FanoutSubscriber {
        /// `host:port`.
        #[arg(long)]
        addr: String,
        /// Addressing mode.
        #[arg(long, value_enum, default_value = "query")]
        mode: Mode,
        /// `json` or `bare`.
        #[arg(long, default_value = "json")]
        encoding: String,
        /// Actor key of the counter.
        #[arg(long)]
        key: String,
        /// Connections to open.
        #[arg(long)]
        conns: usize,
    },
    /// Writes the markdown report from the JSON lines.
    Report {
        /// JSON lines input.
        #[arg(long)]
        input: PathBuf,
        /// Text with machine and load lines, copied into the report.
        #[arg(long)]
        machine: PathBuf,
        /// Markdown output.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// `host:port`.
    #[arg(long, default_value = "127.0.0.1:6420")]
    addr: String,
    /// Name in the results.
    #[arg(long)]
    name: String,
    /// Addressing mode.
    #[arg(long, value_enum, default_value = "query")]
    mode: Mode,
    /// Server process ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
}

#[derive(Debug, clap::Args)]
struct SuiteArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Scenarios, comma-separated: a,a_bare,b,c,c64,c_bare,c_many,d,e,f (f wants a fresh
    /// server; c64 is c at 64 concurrent requests only).
    /// cold: 4,000 actors put to sleep, then one call to each (waking it), then the same calls
    /// again, then the same with 4,000 actors whose keys the server no longer remembers (70,000
    /// actors created since), with the server's CPU time per call; c_many100k: c at 64 concurrent requests over
    /// 100,000 actors (c_many100k_shuffled: called in an order unrelated to their creation),
    /// and c64_written the same on one actor, all with the server's bytes written per action.
    /// b_idle: the b load on one actor beside 0, 1,000 and 10,000 idle connections to it;
    /// b_open: opening 19,000 connections to one actor (both need a server allowing more than
    /// 10,000 connections, `footlights serve --max-connections 20000`, and an open-file limit
    /// of 20,000 for this process and the server).
    /// d_proc: d with the subscribers in `--fanout-procs` child processes; d10k: 10,000
    /// subscribers, in this process and then in child processes (server CPU per delivered
    /// event in the note).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Subscriber processes of the multi-process fan-out scenarios (`d_proc`, `d10k`).
    #[arg(long, default_value_t = 2)]
    fanout_procs: usize,
    /// Warm-up seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Runs per scenario.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// JSON lines output (appended).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Suite(a) => rt.block_on(suite(a)),
        Command::HttpEcho { port } => rt.block_on(ceiling::http_echo(port)),
        Command::WsEcho { port, read_buffer } => rt.block_on(ceiling::ws_echo(port, read_buffer)),
        Command::Sqlite {
            dir,
            secs,
            runs,
            out,
        } => {
            for run in 0..runs {
                let rate = ceiling::sqlite_commits(&dir, secs)?;
                let r = RunResult {
                    target: "ceiling".into(),
                    scenario: "sqlite_fsync_commits".into(),
                    run,
                    ops: (rate * secs) as u64,
                    secs,
                    throughput: rate,
                    ..RunResult::default()
                };
                append(&out, &r)?;
            }
            Ok(())
        }
        Command::FanoutSubscriber {
            addr,
            mode,
            encoding,
            key,
            conns,
        } => {
            let encoding = match encoding.as_str() {
                "json" => Encoding::Json,
                "bare" => Encoding::Bare,
                other => anyhow::bail!("unknown encoding {other}"),
            };
            rt.block_on(fanout::subscriber(&addr, mode, encoding, &key, conns))
        }
        Command::WriteFloor {
            conns,
            procs,
            rounds,
            runs,
            out,
        } => {
            for run in 0..runs {
                let mut r = floor::write_floor(conns, procs.max(1), rounds)?;
                r.run = run;
                println!("{}", r.note);
                append(&out, &r)?;
            }
            Ok(())
        }
        Command::FloorReader { addr, conns } => rt.block_on(floor::floor_reader(&addr, conns)),
        Command::Durability { phase, server, key } => {
            rt.block_on(durability(&phase, &server, &key))
        }
        Command::Report {
            input,
            machine,
            out,
        } => report::write(&input, &machine, &out),
    }
}

fn append(out: &PathBuf, r: &RunResult) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .with_context(|| format!("open {}", out.display()))?;
    writeln!(f, "{}", serde_json::to_string(r)?)?;
    eprintln!(
        "{:<18} {:<28} run {} {:>10.1}/s p50 {:.3} p99 {:.3} max {:.3} ms err {} rss {} KiB cpu {:.2}s client {:.2}s {}",
        r.target,
        r.scenario,
        r.run,
        r.throughput,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.errors,
        r.server_rss_kb,
        r.server_cpu_s,
        r.client_cpu_s,
        r.note
    );
    Ok(())
}

async fn suite(a: SuiteArgs) -> anyhow::Result<()> {
    let nonce = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let base = Ctx {
        target: Target::new(&a.server.addr, a.server.mode, Encoding::Json),
        name: a.server.name.clone(),
        pids: a.server.pids.clone(),
        warmup: Duration::from_secs_f64(a.warmup),
        secs: Duration::from_secs_f64(a.secs),
        nonce,
    };
    let bare = Ctx {
        target: base.target.with_encoding(Encoding::Bare),
        ..base.clone()
    };
    for s in &a.only {
        // Memory is a growth measured from a fresh server; a second run would see a warm one.
        let runs = if s == "f" || s == "f_ws" { 1 } else { a.runs };
        for run in 0..runs {
            let ctx = Ctx {
                nonce: format!("{}-{s}-{run}", base.nonce),
                ..base.clone()
            };
            let bctx = Ctx {
                nonce: ctx.nonce.clone(),
                ..bare.clone()
            };
            let results: Vec<RunResult> = match s.as_str() {
                "a" => vec![scenarios::ws_actions(&ctx, "a_ws_seq_1conn_json", 1, 1).await],
                "a_read" => vec![
                    scenarios::ws_calls(&ctx, "a_ws_seq_1conn_getCount_json", 1, 1, "getCount")
                        .await,
                ],
                "a_bare" => vec![scenarios::ws_actions(&bctx, "a_ws_seq_1conn_bare", 1, 1).await],
                "b" => vec![
                    scenarios::ws_actions(&ctx, "b_ws_100conn_1actor", 100, 1).await,
                    scenarios::ws_actions(&ctx, "b_ws_100conn_100actors", 100, 100).await,
                ],
                "b_idle" => vec![
                    crowd::idle_actions(&ctx, 0).await,
                    crowd::idle_actions(&ctx, 1_000).await,
                    crowd::idle_actions(&ctx, 10_000).await,
                ],
                "b_open" => vec![crowd::open_many(&ctx, 19_000).await],
                "c" => vec![
                    scenarios::http_actions(&ctx, "c_http_c1_1actor_json", 1, 1).await,
                    scenarios::http_actions(&ctx, "c_http_c64_1actor_json", 64, 1).await,
                ],
                "c64" => vec![scenarios::http_actions(&ctx, "c_http_c64_1actor_json", 64, 1).await],
                "c_bare" => vec![
                    scenarios::http_actions(&bctx, "c_http_c1_1actor_bare", 1, 1).await,
                    scenarios::http_actions(&bctx, "c_http_c64_1actor_bare", 64, 1).await,
                ],
                "c_many" => vec![
                    scenarios::http_actions(&ctx, "c_http_c1_1000actors", 1, 1000).await,
                    scenarios::http_actions(&ctx, "c_http_c64_1000actors", 64, 1000).await,
                ],
                "c_many100k" => vec![
                    cold::many_actors(&ctx, "c_http_c64_100000actors", 64, 100_000, false).await,
                ],
                "c_many100k_shuffled" => vec![
                    cold::many_actors(&ctx, "c_http_c64_100000actors_shuffled", 64, 100_000, true)
                        .await,
                ],
                "c64_written" => {
                    vec![cold::many_actors(&ctx, "c_http_c64_1actor_written", 64, 1, false).await]
                }
                "cold" => cold::cold_calls(&ctx, 4000, 70_000).await,
                "d" => vec![scenarios::fanout(&ctx, 1000, 20).await],
                "d_proc" => vec![fanout::fanout_procs(&ctx, 1000, 20, a.fanout_procs).await],
                "d10k" => vec![
                    scenarios::fanout(&ctx, 10_000, 20).await,
                    fanout::fanout_procs(&ctx, 10_000, 20, a.fanout_procs).await,
                ],
                "e" => vec![scenarios::creation(&ctx, run).await],
                "f" => scenarios::memory(&ctx).await,
                "f_ws" => vec![scenarios::memory_ws(&ctx).await],
                "h" => crowd::hibernation(&ctx, 10_000, 50).await,
                "h_small" => crowd::hibernation(&ctx, 1_000, 20).await,
                other => anyhow::bail!("unknown scenario {other}"),
            };
            for mut r in results {
                r.run = run;
                append(&a.out, &r)?;
            }
        }
    }
    Ok(())
}

async fn durability(phase: &str, s: &ServerArgs, key: &str) -> anyhow::Result<()> {
    let t = Target::new(&s.addr, s.mode, Encoding::Json);
    match phase {
        "write" => {
            let mut h = HttpConn::open(&s.addr).await?;
            let v0 = t
                .http_action(&mut h, "counter", key, "increment", vec![Value::Int(5)])
                .await?;
            let v1 = t
                .http_action(&mut h, "counter", key, "increment", vec![Value::Int(7)])
                .await?;
            // SIGKILL right after the acknowledgement.
            for p in &s.pids {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .status();
            }
            println!("written {v0:?} then {v1:?}; killed {:?}", s.pids);
            println!("ACKED {}", value_text(&v1));
        }
        "read" => {
            let start = Instant::now();
            loop {
                let res = async {
                    let mut h = HttpConn::open(&s.addr).await?;
                    t.http_action(&mut h, "counter", key, "getCount", vec![])
                        .await
                }
                .await;
                match res {
                    Ok(v) => {
                        println!(
                            "READ {} after {:.2} s",
                            value_text(&v),
                            start.elapsed().as_secs_f64()
                        );
                        break;
                    }
                    Err(e) if start.elapsed() < Duration::from_secs(90) => {
                        tracing_free_sleep(&e).await;
                    }
                    Err(e) => anyhow::bail!("not readable after 90 s: {e}"),
                }
            }
        }
        other => anyhow::bail!("unknown phase {other}"),
    }
    Ok(())
}

async fn tracing_free_sleep(_e: &anyhow::Error) {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        other => format!("{other:?}"),
    }
}
