//! Serves the chat room actor and its browser demo on one port.
//!
//! `cargo run -p chat-room -- [--addr 127.0.0.1:6420] [--db chat-room.db] [--web-dir DIR]`,
//! after `npm ci && npm run build` in `examples/chat-room/web`. Prints
//! `listening on http://…` once it accepts connections (with `--addr
//! 127.0.0.1:0`, the port it picked). Stop with Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use chat_room::ChatRoom;
use clap::Parser;
use footlights::storage::SqliteDriver;
use footlights::{Registry, Server};

/// Serves the chat room actor and the browser demo.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6420")]
    addr: SocketAddr,
    /// The SQLite file holding the rooms' state.
    #[arg(long, default_value = "chat-room.db")]
    db: PathBuf,
    /// The built page (default: `web/dist` in this example's source folder).
    #[arg(long)]
    web_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let registry = Registry::builder()
        .actor::<ChatRoom>()
        .driver(SqliteDriver::open(&args.db).await?)
        .start()
        .await?;
    let web_dir = args.web_dir.unwrap_or_else(chat_room::web::default_dir);
    let server = Server::builder()
        .registry(registry)
        .fallback(chat_room::web::routes(web_dir))
        .build()?;
    // Prints `listening on http://…` on stdout (logs go to stderr), so a script such as the
    // browser test can read the address.
    footlights::serve_with(server, args.addr).await?;
    Ok(())
}
