//! The fan-out floor: what one small write to each of many loopback TCP sockets costs the
//! writer on this machine, with nothing else in the way. The readers are child processes, as
//! the fan-out scenario's subscribers are; on loopback the kernel charges much of the
//! receiving side's work (TCP receive, waking the reader) to the writing thread, so this is
//! the least server CPU a delivered event can cost when each subscriber gets its own write.

use std::io::{BufRead as _, BufReader, IoSlice, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::AsyncReadExt as _;

use crate::procfs;
use crate::stats::RunResult;

/// The bytes each socket gets per round: a WebSocket frame header and a payload the size of
/// the fan-out scenario's event.
const HEADER: [u8; 2] = [0x81, 62];
const PAYLOAD: [u8; 62] = [b'x'; 62];
/// The pause between rounds, as in the fan-out scenario, so that readers are idle again.
const PAUSE: Duration = Duration::from_millis(50);

/// Writes one frame to each of `conns` sockets, `rounds` times, and reports the writer's CPU
/// time per write.
pub(crate) fn write_floor(conns: usize, procs: usize, rounds: usize) -> anyhow::Result<RunResult> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let exe = std::env::current_exe()?;
    let mut children: Vec<Child> = Vec::new();
    let mut sockets: Vec<TcpStream> = Vec::with_capacity(conns);
    for i in 0..procs {
        let share = conns / procs + usize::from(i < conns % procs);
        let mut child = Command::new(&exe)
            .args([
                "floor-reader",
                "--addr",
                &addr,
                "--conns",
                &share.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start a reader process")?;
        for _ in 0..share {
            let (socket, _) = listener.accept()?;
            socket.set_nodelay(true)?;
            socket.set_nonblocking(true)?;
            sockets.push(socket);
        }
        let stdout = child.stdout.take().context("reader stdout")?;
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first)?;
        if first.trim() != "ready" {
            bail!("unexpected first line from a reader process: {first}");
        }
        children.push(child);
    }
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let (s0, c0, start) = (procfs::sample_self(), procfs::sample(&pids), Instant::now());
    let mut writes = 0u64;
    let mut short = 0u64;
    let mut writing = Duration::ZERO;
    for _ in 0..rounds {
        let round = Instant::now();
        for socket in &mut sockets {
            let bufs = [IoSlice::new(&HEADER), IoSlice::new(&PAYLOAD)];
            match socket.write_vectored(&bufs) {
                Ok(n) if n == HEADER.len() + PAYLOAD.len() => writes += 1,
                _ => short += 1,
            }
        }
        writing += round.elapsed();
        std::thread::sleep(PAUSE);
    }
    let (s1, c1, secs) = (
        procfs::sample_self(),
        procfs::sample(&pids),
        start.elapsed().as_secs_f64(),
    );
    for mut child in children {
        // Closing stdin asks the reader to stop.
        drop(child.stdin.take());
        let _ = child.wait();
    }
    let cpu = s1.cpu - s0.cpu;
    let per_write_us = cpu * 1e6 / writes.max(1) as f64;
    Ok(RunResult {
        target: "floor".into(),
        scenario: format!("write_floor_{conns}_{procs}proc"),
        ops: writes,
        secs,
        throughput: writes as f64 / writing.as_secs_f64().max(f64::EPSILON),
        errors: short,
        server_cpu_s: cpu,
        client_cpu_s: c1.cpu - c0.cpu,
        note: format!(
            "{per_write_us:.2} µs of the writer's CPU per 64-byte write to one of {conns} \
             loopback sockets read by {procs} processes ({writes} writes, {short} short)"
        ),
        ..RunResult::default()
    })
}

/// A reader process: opens `conns` connections to `addr`, reads and drops whatever arrives,
/// prints `ready` once all are open, and exits when its standard input closes.
pub(crate) async fn floor_reader(addr: &str, conns: usize) -> anyhow::Result<()> {
    for _ in 0..conns {
        let mut socket = tokio::net::TcpStream::connect(addr).await?;
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        });
    }
    println!("ready");
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
    })
    .await?;
    Ok(())
}
