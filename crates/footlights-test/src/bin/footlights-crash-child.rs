//! Hosts the counter actor on a SQLite file; see the crate docs for the line protocol.

use std::sync::Arc;

use counter_no_macros::{Counter, CounterActions};
use footlights::Registry;
use footlights::storage::{Durability, SqliteDriver};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: footlights-crash-child <db path> [power|process]";
    let path = args.next().ok_or(usage)?;
    let durability = match args.next().as_deref() {
        None | Some("power") => Durability::Power,
        Some("process") => Durability::Process,
        Some(_) => return Err(usage.into()),
    };
    let driver = SqliteDriver::builder(path)
        .durability(durability)
        .open()
        .await?;
    let registry = Registry::builder()
        .actor::<Counter>()
        .driver(driver)
        .start()
        .await?;
    let counter = registry
        .client()
        .get_or_create::<Counter>([footlights_test::CRASH_KEY]);
    let out = Arc::new(Mutex::new(tokio::io::stdout()));
    say(&out, "ready".into()).await;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let counter = counter.clone();
        let out = out.clone();
        match line.trim() {
            "inc" => {
                tokio::spawn(async move {
                    match counter.increment(1).await {
                        Ok(n) => say(&out, format!("ack {n}")).await,
                        Err(e) => say(&out, format!("error {e}")).await,
                    }
                });
            }
            "get" => match counter.get_count().await {
                Ok(n) => say(&out, format!("value {n}")).await,
                Err(e) => say(&out, format!("error {e}")).await,
            },
            other => say(&out, format!("error unknown command {other:?}")).await,
        }
    }
    registry.shutdown().await;
    Ok(())
}

async fn say(out: &Mutex<tokio::io::Stdout>, line: String) {
    let mut out = out.lock().await;
    let _ = out.write_all(format!("{line}\n").as_bytes()).await;
    let _ = out.flush().await;
}
