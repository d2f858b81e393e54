//! Test harness for Footlights.
//!
//! The `footlights-crash-child` binary (`footlights-crash-child <db path> [power|process]`, the
//! second argument the store's durability) hosts a registry with the counter actor on a SQLite
//! file and takes commands on standard input, one per line:
//! - `inc`: increment the counter by one; prints `ack N` once the new count `N` is
//!   acknowledged (increments run concurrently, so acks may arrive out of order);
//! - `get`: prints `value N`.
//! - `new KEY`: get-or-create the counter with key `KEY` and increment it by one; prints
//!   `created KEY ID N` once that is acknowledged (creates also run concurrently);
//! - `find KEY`: prints `found KEY ID N` (the actor's id and count) or `missing KEY`.
//! - `put N`: stores entry `N` in the [`Ledger`] actor's key-value store; prints `stored N`
//!   once that is acknowledged (puts run concurrently);
//! - `entries`: prints `entries N1 N2 ...`, every entry in the ledger's store, in order.
//! - `sql-put N`: inserts row `N` into the [`Table`] actor's database (with a counter row
//!   updated in the same transaction); prints `sql-stored N` once that is acknowledged (inserts
//!   run concurrently);
//! - `sql-rows`: prints `sql-rows CHECK N1 N2 ...`: the database's `PRAGMA integrity_check`
//!   answer (`ok`, or `mismatch` when the counter disagrees with the rows), then every row.
//! - `tick-every MS`: sets the [`Ticker`] actor's repeating job to tick every `MS` ms; prints
//!   `ticking` once that is acknowledged;
//! - `tick-status`: prints `ticks N H` (the ticks so far and the job's history length, `-`
//!   when the job is not set).
//!
//! It prints `ready` when it accepts commands. The crash test kills it with SIGKILL at random
//! moments and checks that no acknowledged increment, and no acknowledged actor, is lost.

/// The counter key the crash child uses.
pub const CRASH_KEY: &str = "crash";

use footlights::prelude::*;

/// An actor that keeps numbered entries in its key-value store (and nothing in its state), for
/// the crash test of the store.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger {}

#[footlights::actor]
impl Ledger {
    /// Stores entry `n` (its value is `n` too) and returns it once durable.
    #[action]
    pub async fn put(&self, ctx: &Ctx<Self>, n: u64) -> Result<u64, ActionError> {
        ctx.kv().put(KvKey::new("n/").u64(n), &n).await?;
        Ok(n)
    }

    /// Every stored entry, in order, checking that each value matches its key.
    #[action]
    pub async fn entries(&self, ctx: &Ctx<Self>) -> Result<Vec<u64>, ActionError> {
        let mut range = KvRange::prefix(b"n/").limit(1000);
        let mut all = Vec::new();
        loop {
            let page = ctx.kv().list(range.clone()).await?;
            for entry in &page.entries {
                let n: u64 = entry.value()?;
                if KvKey::last_u64(&entry.key) != Some(n) {
                    return Err(ActionError::internal(format!(
                        "entry {n} under another key"
                    )));
                }
                all.push(n);
            }
            match page.next_range(&range) {
                Some(next) => range = next,
                None => return Ok(all),
            }
        }
    }
}

/// An actor that keeps numbered rows in its SQL database, for the crash test of the database:
/// each insert also bumps a counter row in the same transaction, and pads its row so that
/// pages split often.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Table {}

#[footlights::actor]
impl Table {
    fn options() -> footlights::ActorOptions {
        let mut o = footlights::ActorOptions::default();
        o.db_migrations = vec![footlights::Migration::new(
            1,
            "CREATE TABLE rows (n INTEGER PRIMARY KEY, pad BLOB NOT NULL); \
             CREATE INDEX rows_by_pad ON rows (pad); \
             CREATE TABLE total (one INTEGER PRIMARY KEY CHECK (one = 1), count INTEGER NOT NULL); \
             INSERT INTO total VALUES (1, 0);",
        )];
        o
    }

    /// Inserts row `n` and bumps the counter, in one transaction; returns `n` once durable.
    #[action]
    pub async fn insert(&self, ctx: &Ctx<Self>, n: u64) -> Result<u64, ActionError> {
        let n = i64::try_from(n).map_err(|_| ActionError::user("too_big", "n past i64"))?;
        ctx.db()
            .transaction(move |tx| {
                let sql = |e: footlights::rusqlite::Error| ActionError::internal(e.to_string());
                tx.execute(
                    "INSERT INTO rows (n, pad) VALUES (?1, randomblob(200 + ?1 % 300))",
                    (n,),
                )
                .map_err(sql)?;
                tx.execute("UPDATE total SET count = count + 1", ())
                    .map_err(sql)?;
                Ok(())
            })
            .await?;
        Ok(n as u64)
    }

    /// The integrity check's answer (`mismatch` if the counter disagrees with the rows) and
    /// every row's number, in order.
    #[action]
    pub async fn rows(&self, ctx: &Ctx<Self>) -> Result<(String, Vec<u64>), ActionError> {
        let check: Option<String> = ctx.db().query_first("PRAGMA integrity_check", ()).await?;
        let rows: Vec<u64> = ctx.db().query("SELECT n FROM rows ORDER BY n", ()).await?;
        let count: Option<u64> = ctx.db().query_first("SELECT count FROM total", ()).await?;
        let check = match check {
            Some(c) if c == "ok" && count != Some(rows.len() as u64) => "mismatch".to_owned(),
            Some(c) => c,
            None => "none".to_owned(),
        };
        Ok((check, rows))
    }
}

/// An actor with one repeating job that counts its fires, for the crash test of jobs: each
/// fire's count and the job's re-arm (with its history) are one commit.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ticker {
    ticks: u64,
}

#[footlights::actor]
impl Ticker {
    /// Sets job `tick` to fire every `ms` milliseconds.
    #[action]
    pub fn every(&mut self, ctx: &Ctx<Self>, ms: u64) -> Result<(), ActionError> {
        ctx.cron().every(
            "tick",
            std::time::Duration::from_millis(ms),
            ticker_actions::Tick {},
        )
    }

    /// The job's action.
    #[action]
    pub fn tick(&mut self) {
        self.ticks += 1;
    }

    /// The ticks so far and the job's history length (`None` when the job is not set).
    #[action]
    pub fn job_status(&self, ctx: &Ctx<Self>) -> (u64, Option<usize>) {
        (
            self.ticks,
            ctx.cron().get("tick").map(|job| job.history.len()),
        )
    }
}
