//! Hosts the counter actor on a SQLite file; see the crate docs for the line protocol.

use std::sync::Arc;

use counter_no_macros::{Counter, CounterActions};
use footlights::Registry;
use footlights::storage::{Durability, SqliteDriver};
use footlights_test::{Ledger, LedgerActions, Table, TableActions, Ticker, TickerActions};
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
        .actor::<Ledger>()
        .actor::<Ticker>()
        .actor::<Table>()
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
            cmd if cmd.starts_with("new ") => {
                let key = cmd.strip_prefix("new ").unwrap_or_default().to_owned();
                let client = registry.client();
                tokio::spawn(async move {
                    let handle = client.get_or_create::<Counter>([key.as_str()]);
                    let done = async {
                        let n = handle.increment(1).await?;
                        Ok::<_, footlights::ActionError>((handle.resolve().await?, n))
                    };
                    match done.await {
                        Ok((id, n)) => say(&out, format!("created {key} {id} {n}")).await,
                        Err(e) => say(&out, format!("error {e}")).await,
                    }
                });
            }
            cmd if cmd.starts_with("find ") => {
                let key = cmd.strip_prefix("find ").unwrap_or_default();
                let handle = registry.client().get::<Counter>([key]);
                match handle.resolve().await {
                    Ok(id) => match handle.get_count().await {
                        Ok(n) => say(&out, format!("found {key} {id} {n}")).await,
                        Err(e) => say(&out, format!("error {e}")).await,
                    },
                    Err(e) if e.code() == "not_found" => say(&out, format!("missing {key}")).await,
                    Err(e) => say(&out, format!("error {e}")).await,
                }
            }
            cmd if cmd.starts_with("put ") => {
                let ledger = registry.client().get_or_create::<Ledger>(["ledger"]);
                match cmd.strip_prefix("put ").unwrap_or_default().parse::<u64>() {
                    Ok(n) => {
                        tokio::spawn(async move {
                            match ledger.put(n).await {
                                Ok(n) => say(&out, format!("stored {n}")).await,
                                Err(e) => say(&out, format!("error {e}")).await,
                            }
                        });
                    }
                    Err(e) => say(&out, format!("error {e}")).await,
                }
            }
            cmd if cmd.starts_with("sql-put ") => {
                let table = registry.client().get_or_create::<Table>(["table"]);
                match cmd
                    .strip_prefix("sql-put ")
                    .unwrap_or_default()
                    .parse::<u64>()
                {
                    Ok(n) => {
                        tokio::spawn(async move {
                            match table.insert(n).await {
                                Ok(n) => say(&out, format!("sql-stored {n}")).await,
                                Err(e) => say(&out, format!("error {e}")).await,
                            }
                        });
                    }
                    Err(e) => say(&out, format!("error {e}")).await,
                }
            }
            "sql-rows" => {
                let table = registry.client().get_or_create::<Table>(["table"]);
                match table.rows().await {
                    Ok((check, all)) => {
                        let all: Vec<String> = all.iter().map(u64::to_string).collect();
                        say(
                            &out,
                            format!("sql-rows {check} {}", all.join(" "))
                                .trim_end()
                                .to_owned(),
                        )
                        .await;
                    }
                    Err(e) => say(&out, format!("error {e}")).await,
                }
            }
            "entries" => {
                let ledger = registry.client().get_or_create::<Ledger>(["ledger"]);
                match ledger.entries().await {
                    Ok(all) => {
                        let all: Vec<String> = all.iter().map(u64::to_string).collect();
                        say(
                            &out,
                            format!("entries {}", all.join(" ")).trim_end().to_owned(),
                        )
                        .await;
                    }
                    Err(e) => say(&out, format!("error {e}")).await,
                }
            }
            cmd if cmd.starts_with("tick-every ") => {
                let ticker = registry.client().get_or_create::<Ticker>(["ticker"]);
                match cmd
                    .strip_prefix("tick-every ")
                    .unwrap_or_default()
                    .parse::<u64>()
                {
                    Ok(ms) => match ticker.every(ms).await {
                        Ok(()) => say(&out, "ticking".into()).await,
                        Err(e) => say(&out, format!("error {e}")).await,
                    },
                    Err(e) => say(&out, format!("error {e}")).await,
                }
            }
            "tick-status" => {
                let ticker = registry.client().get_or_create::<Ticker>(["ticker"]);
                match ticker.job_status().await {
                    Ok((ticks, history)) => {
                        let history = history.map_or("-".to_owned(), |h| h.to_string());
                        say(&out, format!("ticks {ticks} {history}")).await;
                    }
                    Err(e) => say(&out, format!("error {e}")).await,
                }
            }
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
