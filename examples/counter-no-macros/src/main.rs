//! Runs the hand-written counter in process and prints a few counts.
//!
//! `cargo run -p counter-no-macros [path/to/state.db]`: with a path, the count survives
//! restarts.

use counter_no_macros::{Counter, CounterActions};
use footlights::Registry;
use footlights::storage::SqliteDriver;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = Registry::builder().actor::<Counter>();
    if let Some(path) = std::env::args().nth(1) {
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
