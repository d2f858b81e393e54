//! Runs the hand-written counter in process and prints a few counts.
//!
//! `cargo run -p counter-no-macros -- [--db path/to/state.db]`: with a state file, the count
//! survives restarts; without one, the state lives in memory.

use std::path::PathBuf;

use clap::Parser;
use counter_no_macros::{Counter, CounterActions};
use footlights::Registry;
use footlights::storage::SqliteDriver;

/// Runs the hand-written counter in process: three increments, then the count.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// A SQLite file for the counter's state, kept across runs (default: in memory).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut builder = Registry::builder().actor::<Counter>();
    if let Some(path) = args.db {
        builder = builder.driver(SqliteDriver::open(path).await?);
    }
    let registry = builder.start().await?;
    let counter = registry.client().get_or_create::<Counter>(["demo"]);
    for _ in 0..3 {
        println!("count is now {}", counter.increment(1).await?);
    }
    println!("final count {}", counter.get_count().await?);
    registry.shutdown().await;
    Ok(())
}
