//! Serves the job-processing actor over HTTP and WebSocket, with its state and queue in a
//! SQLite file.
//!
//! `cargo run -p job-worker -- [--addr 127.0.0.1:6420] [--db job-worker.db]`; prints
//! `listening on http://…` once ready. Stop with Ctrl-C or SIGTERM: the run loops get their
//! signal, a job in progress goes back to its queue, and every actor is saved.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use footlights::Registry;
use footlights::storage::SqliteDriver;
use job_worker::JobWorker;

/// Serves the job-processing actor.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6420")]
    addr: SocketAddr,
    /// The SQLite file holding the actors' state and queues.
    #[arg(long, default_value = "job-worker.db")]
    db: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = Registry::builder()
        .actor::<JobWorker>()
        .driver(SqliteDriver::open(&args.db).await?)
        .start()
        .await?;
    footlights::serve(registry, args.addr).await?;
    Ok(())
}
