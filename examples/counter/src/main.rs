//! Serves the counter actor over HTTP and WebSocket, with its state in a SQLite file.
//!
//! `cargo run -p counter -- [--addr 127.0.0.1:6420] [--db counter.db]`; prints `listening on
//! http://…` once ready. Stop with Ctrl-C or SIGTERM (the server closes connections and saves
//! every actor before it exits).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use counter::Counter;
use footlights::Registry;
use footlights::storage::SqliteDriver;

/// Serves the counter actor.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6420")]
    addr: SocketAddr,
    /// The SQLite file holding the actors' state.
    #[arg(long, default_value = "counter.db")]
    db: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = Registry::builder()
        .actor::<Counter>()
        .driver(SqliteDriver::open(&args.db).await?)
        .start()
        .await?;
    footlights::serve(registry, args.addr).await?;
    Ok(())
}
