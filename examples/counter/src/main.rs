//! Serves the counter actor over HTTP and WebSocket, with its state in a SQLite file.
//!
//! `cargo run -p counter -- [--addr 127.0.0.1:6420] [--db counter.db]`; stop with Ctrl-C or
//! SIGTERM (the server closes connections and saves every actor before it exits).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use counter::Counter;
use footlights::Registry;
use footlights::storage::SqliteDriver;
use footlights_server::Server;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let registry = Registry::builder()
        .actor::<Counter>()
        .driver(SqliteDriver::open(&args.db).await?)
        .start()
        .await?;
    let server = Server::builder().registry(registry).build()?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!("counter: listening on http://{}", listener.local_addr()?);
    server
        .serve(listener, footlights_server::shutdown_signal())
        .await?;
    Ok(())
}
