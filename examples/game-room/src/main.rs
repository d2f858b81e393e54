//! Serves the game room and the leaderboard, and prints tokens to try them with.
//!
//! `cargo run -p game-room -- [--addr 127.0.0.1:6420] [--db game-room.db] [--secret S]`.
//! Without `--secret`, a random one is made at start, so tokens last one run. Stop with
//! Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use footlights::Registry;
use footlights::storage::SqliteDriver;
use game_room::token::{Claims, Role, sign};
use game_room::{GameRoom, Leaderboard};
use rand::RngCore;

/// Serves the game room and the leaderboard.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:6420")]
    addr: SocketAddr,
    /// The SQLite file holding the actors' state.
    #[arg(long, default_value = "game-room.db")]
    db: PathBuf,
    /// The secret tokens are signed with (default: a random one per run).
    #[arg(long)]
    secret: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let secret = match args.secret {
        Some(s) => s.into_bytes(),
        None => {
            let mut bytes = vec![0; 32];
            rand::rng().fill_bytes(&mut bytes);
            bytes
        }
    };
    for (player, role) in [
        ("root", Role::Admin),
        ("ann", Role::Player),
        ("bob", Role::Player),
    ] {
        let token = sign(
            &secret,
            &Claims {
                player: player.into(),
                role,
            },
        );
        println!("token for {player} ({role:?}): {token}");
    }
    game_room::install_secret(secret);

    let registry = Registry::builder()
        .actor::<GameRoom>()
        .actor::<Leaderboard>()
        .driver(SqliteDriver::open(&args.db).await?)
        .start()
        .await?;
    footlights::serve(registry, args.addr).await?;
    Ok(())
}
