//! `ctx.db()`: a SQLite database private to each actor, stored in the actor's storage.
//!
//! For data that wants tables, indexes and queries: a chat room's messages, a document's
//! blocks, a searchable memory. Statements take bound parameters; rows come back as serde
//! types (by column name) or as [`DbRow`]s read by column.
//!
//! ```
//! use footlights_core::{Actor, Ctx, Migration};
//! # use footlights_core::{ActionError, ActionTable, Conns};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Default, Serialize, Deserialize)] struct Notes;
//! # impl footlights_protocol::ActorSpec for Notes { const NAME: &'static str = "notes"; type Input = (); }
//! # impl Actor for Notes {
//! #     type Conn = Conns;
//! #     async fn create_state(_: &Ctx<Self>, _: &()) -> Result<Self, ActionError> { Ok(Notes) }
//! #     fn actions(_: &mut ActionTable<Self>) {}
//! #     fn options() -> footlights_core::ActorOptions {
//! #         let mut o = footlights_core::ActorOptions::default();
//! #         o.db_migrations = vec![Migration::new(1, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")];
//! #         o
//! #     }
//! # }
//!
//! #[derive(Deserialize)]
//! struct Note { id: i64, text: String }
//!
//! impl Notes {
//!     async fn add(&self, ctx: &Ctx<Self>, text: String) -> Result<i64, ActionError> {
//!         ctx.db().execute("INSERT INTO notes (text) VALUES (?1)", (text,)).await?;
//!         ctx.db().query_first("SELECT last_insert_rowid()", ()).await.map(Option::unwrap_or_default)
//!     }
//!
//!     async fn search(&self, ctx: &Ctx<Self>, word: String) -> Result<Vec<Note>, ActionError> {
//!         ctx.db()
//!             .query("SELECT id, text FROM notes WHERE text LIKE '%' || ?1 || '%'", (word,))
//!             .await
//!     }
//! }
//! ```
//!
//! # Guarantees
//! - The pages a message changes are written to the actor's storage (under keys outside the
//!   [key-value store](crate::Kv)'s space) in the same transaction as its state snapshot and
//!   key-value writes, fenced like them; its replies and events leave only once they are
//!   durable. A crash at any point leaves the database as the last durable message left it.
//! - Each call ([`execute`](Db::execute), [`query`](Db::query),
//!   [`transaction`](Db::transaction), [`with_conn`](Db::with_conn)) is atomic: a transaction
//!   left open at its end is rolled back and the call fails with `db.transaction_open`.
//! - The same rule as for the state: an action that returns an error keeps the changes it
//!   made (roll back with a [`transaction`](Db::transaction) returning the error); an action
//!   that panics loses them, with its state changes and key-value writes.
//! - The database follows the actor to any storage driver and is deleted when the actor is
//!   destroyed; sleeping keeps it.
//! - An awake actor keeps at most
//!   [`db_cache_bytes`](crate::ActorOptions::db_cache_bytes) of pages in memory, plus the
//!   pages the running message changed and those not yet durable.
//! - Limits, as coded errors: a database over
//!   [`db_max_bytes`](crate::ActorOptions::db_max_bytes) (`db.too_large`), a call running
//!   past [`db_statement_timeout`](crate::ActorOptions::db_statement_timeout)
//!   (`db.statement_timeout`), a query returning more than
//!   [`db_max_rows`](crate::ActorOptions::db_max_rows) rows (`db.too_many_rows`); a constraint
//!   violation is `db.constraint`. Other SQL errors are internal errors (masked for clients).
//! - [`ActorOptions::db_migrations`](crate::ActorOptions::db_migrations) run at start, before
//!   any hook, each once: applied versions are recorded in the table `footlights_migrations`.
//!
//! Statements run on a blocking thread, one at a time per actor, and read pages that are not
//! cached from storage there; the actor's task waits for them without blocking the runtime.
//! The database's pages count toward the key-value store's size estimate
//! ([`kv_max_bytes`](crate::ActorOptions::kv_max_bytes)), since both live in the actor's
//! key-value storage.

pub(crate) mod inspect;
mod state;

use std::borrow::Cow;
use std::sync::Arc;

use footlights_protocol::{ActionError, Value, from_value};
use rusqlite::types::{FromSql, ValueRef};
use rusqlite::{Connection, ErrorCode, Params, Transaction};
use serde::de::DeserializeOwned;

pub(crate) use state::{DbLimits, DbState, LEN_KEY, Parts};

/// An actor's database, from [`Ctx::db`](crate::Ctx::db). See the [module docs](self).
#[derive(Debug, Clone, Copy)]
pub struct Db<'a> {
    parts: &'a Parts,
    limits: DbLimits,
}

/// One versioned step of an actor type's schema, in
/// [`ActorOptions::db_migrations`](crate::ActorOptions::db_migrations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Its version: migrations run in increasing order, each once.
    pub version: u32,
    /// The SQL it runs (one or more statements), in one transaction with its record.
    pub sql: Cow<'static, str>,
}

impl Migration {
    /// Migration `version`, running `sql`.
    pub fn new(version: u32, sql: impl Into<Cow<'static, str>>) -> Self {
        Migration {
            version,
            sql: sql.into(),
        }
    }
}

/// A row of [`Db::query_rows`]: its columns by index or name.
#[derive(Debug, Clone, PartialEq)]
pub struct DbRow {
    columns: Arc<[String]>,
    values: Vec<rusqlite::types::Value>,
}

impl DbRow {
    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The raw values, in column order.
    pub fn values(&self) -> &[rusqlite::types::Value] {
        &self.values
    }

    /// Column `index` as a `T`.
    ///
    /// # Errors
    /// An internal error if there is no such column or it is not a `T`.
    pub fn get<T: FromSql>(&self, index: usize) -> Result<T, ActionError> {
        let value = self
            .values
            .get(index)
            .ok_or_else(|| ActionError::internal(format!("no column {index}")))?;
        T::column_result(ValueRef::from(value))
            .map_err(|e| ActionError::internal(format!("column {index}: {e}")))
    }

    /// The column named `name` as a `T`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_named<T: FromSql>(&self, name: &str) -> Result<T, ActionError> {
        let index = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| ActionError::internal(format!("no column {name:?}")))?;
        self.get(index)
    }

    /// The row as a `T`: an object of the columns by name, or for a one-column row also
    /// the column's value alone (so a `count(*)` reads as a number).
    ///
    /// # Errors
    /// An internal error if the row is not a `T`.
    pub fn to<T: DeserializeOwned>(&self) -> Result<T, ActionError> {
        let object = Value::Object(
            self.columns
                .iter()
                .cloned()
                .zip(self.values.iter().map(to_value))
                .collect(),
        );
        match from_value(object) {
            Ok(t) => Ok(t),
            Err(e) => match self.values.as_slice() {
                [one] => from_value(to_value(one))
                    .map_err(|e| ActionError::internal(format!("row did not load: {e}"))),
                _ => Err(ActionError::internal(format!("row did not load: {e}"))),
            },
        }
    }
}

fn to_value(v: &rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) => Value::Int(*i),
        V::Real(f) => Value::Float(*f),
        V::Text(s) => Value::String(s.clone()),
        V::Blob(b) => Value::Bytes(b.clone()),
    }
}

/// The coded error of a SQLite failure.
pub(crate) fn sql_error(e: rusqlite::Error) -> ActionError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => ActionError::new(
            "db",
            "too_large",
            "the actor's database would grow past its size limit",
        ),
        Some(ErrorCode::OperationInterrupted) => ActionError::new(
            "db",
            "statement_timeout",
            "a database call ran past the actor type's statement time limit",
        ),
        Some(ErrorCode::ConstraintViolation) => ActionError::new("db", "constraint", e.to_string()),
        _ => ActionError::internal(format!("database: {e}")),
    }
}

fn too_many_rows(limit: usize) -> ActionError {
    ActionError::new(
        "db",
        "too_many_rows",
        format!("a query may return at most {limit} rows; add a LIMIT"),
    )
}

/// Runs `sql` and reads its rows, up to `max_rows`.
fn read_rows<P: Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    max_rows: usize,
) -> Result<Vec<DbRow>, ActionError> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_error)?;
    let columns: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let width = columns.len();
    let mut rows = stmt.query(params).map_err(sql_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_error)? {
        if out.len() == max_rows {
            return Err(too_many_rows(max_rows));
        }
        let values = (0..width)
            .map(|i| row.get::<_, rusqlite::types::Value>(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql_error)?;
        out.push(DbRow {
            columns: columns.clone(),
            values,
        });
    }
    Ok(out)
}

impl<'a> Db<'a> {
    pub(crate) fn new(parts: &'a Parts, limits: DbLimits) -> Self {
        Db { parts, limits }
    }

    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, ActionError> + Send + 'static,
    ) -> Result<R, ActionError> {
        self.parts.run(self.limits, f).await
    }

    /// Runs one statement with bound parameters (a tuple such as `(name, 3)`, an array, or
    /// `()`); returns the number of rows it changed. Statements are prepared once and cached.
    ///
    /// # Errors
    /// `db.too_large`, `db.statement_timeout`, `db.constraint`; SQL errors as internal errors.
    pub async fn execute<P: Params + Send + 'static>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<usize, ActionError> {
        let sql = sql.to_owned();
        self.run(move |conn| {
            conn.prepare_cached(&sql)
                .and_then(|mut s| s.execute(params))
                .map_err(sql_error)
        })
        .await
    }

    /// Runs statements separated by `;`, without parameters (a schema, say).
    ///
    /// # Errors
    /// As [`execute`](Self::execute).
    pub async fn execute_batch(&self, sql: &str) -> Result<(), ActionError> {
        let sql = sql.to_owned();
        self.run(move |conn| conn.execute_batch(&sql).map_err(sql_error))
            .await
    }

    /// The rows of a query, each as a `T` (see [`DbRow::to`]).
    ///
    /// # Errors
    /// `db.too_many_rows`, `db.statement_timeout`; an internal error for a row that is not a
    /// `T` or a SQL error.
    pub async fn query<T: DeserializeOwned + Send + 'static, P: Params + Send + 'static>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<T>, ActionError> {
        self.query_rows(sql, params)
            .await?
            .iter()
            .map(DbRow::to)
            .collect()
    }

    /// The first row of a query as a `T`, if there is one.
    ///
    /// # Errors
    /// As [`query`](Self::query).
    pub async fn query_first<T: DeserializeOwned + Send + 'static, P: Params + Send + 'static>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Option<T>, ActionError> {
        let sql = sql.to_owned();
        let row = self
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
                let columns: Arc<[String]> =
                    stmt.column_names().into_iter().map(str::to_owned).collect();
                let width = columns.len();
                let mut rows = stmt.query(params).map_err(sql_error)?;
                let Some(row) = rows.next().map_err(sql_error)? else {
                    return Ok(None);
                };
                let values = (0..width)
                    .map(|i| row.get::<_, rusqlite::types::Value>(i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sql_error)?;
                Ok(Some(DbRow { columns, values }))
            })
            .await?;
        row.as_ref().map(DbRow::to).transpose()
    }

    /// The rows of a query, read by column.
    ///
    /// # Errors
    /// `db.too_many_rows`, `db.statement_timeout`; SQL errors as internal errors.
    pub async fn query_rows<P: Params + Send + 'static>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<DbRow>, ActionError> {
        let sql = sql.to_owned();
        let max_rows = self.limits.max_rows;
        self.run(move |conn| read_rows(conn, &sql, params, max_rows))
            .await
    }

    /// Runs `f` in a transaction: committed if it returns `Ok`, rolled back if it returns an
    /// error (or panics).
    ///
    /// ```no_run
    /// # async fn f(db: footlights_core::Db<'_>) -> Result<(), footlights_core::ActionError> {
    /// use footlights_core::ActionError;
    /// db.transaction(|tx| {
    ///     let sql = |e: rusqlite::Error| ActionError::internal(e.to_string());
    ///     tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", ()).map_err(sql)?;
    ///     tx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 2", ()).map_err(sql)?;
    ///     Ok(())
    /// })
    /// .await
    /// # }
    /// ```
    ///
    /// # Errors
    /// `f`'s error, or as [`execute`](Self::execute).
    pub async fn transaction<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, ActionError> + Send + 'static,
    ) -> Result<R, ActionError> {
        self.run(move |conn| {
            let tx = conn.transaction().map_err(sql_error)?;
            let out = f(&tx)?;
            tx.commit().map_err(sql_error)?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` with the plain [`rusqlite::Connection`], for anything the methods above do
    /// not cover. A transaction it leaves open is rolled back (`db.transaction_open`).
    ///
    /// # Errors
    /// `f`'s error, or `db.transaction_open`.
    pub async fn with_conn<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, ActionError> + Send + 'static,
    ) -> Result<R, ActionError> {
        self.run(f).await
    }
}

/// Runs the migrations not applied yet, in version order, each in a transaction with its
/// record.
pub(crate) async fn migrate(db: Db<'_>, migrations: &[Migration]) -> Result<(), ActionError> {
    let mut migrations = migrations.to_vec();
    migrations.sort_by_key(|m| m.version);
    db.run(move |conn| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS footlights_migrations \
                 (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
        )
        .map_err(sql_error)?;
        let applied: i64 = conn
            .query_row(
                "SELECT coalesce(max(version), -1) FROM footlights_migrations",
                [],
                |r| r.get(0),
            )
            .map_err(sql_error)?;
        for m in migrations.iter().filter(|m| i64::from(m.version) > applied) {
            let tx = conn.transaction().map_err(sql_error)?;
            tx.execute_batch(&m.sql).map_err(|e| {
                ActionError::internal(format!("migration {} failed: {e}", m.version))
            })?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            tx.execute(
                "INSERT INTO footlights_migrations (version, applied_at_ms) VALUES (?1, ?2)",
                (m.version, now),
            )
            .map_err(sql_error)?;
            tx.commit().map_err(sql_error)?;
            tracing::debug!(version = m.version, "database migration applied");
        }
        Ok(())
    })
    .await
}
