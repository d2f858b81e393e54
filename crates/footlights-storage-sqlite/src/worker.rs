//! The thread that owns the SQLite connection.
//!
//! SQLite calls block (on the disk, on `fsync`, on other processes' locks), so they never run on
//! the async runtime. Each opened driver has one thread owning one connection; callers send it
//! jobs over a channel and await the answer on a oneshot. Commits serialize in SQLite anyway, so
//! one thread loses nothing for writes, and reads share it (they are short, indexed lookups).

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use footlights_storage::{Result, StorageError};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::Durability;
use crate::error::Error;
use crate::schema;

/// Work for the connection's thread. It sends its own answer.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A handle to the connection's thread; clones share the thread.
///
/// The thread lives while any handle does: when the last one drops, the channel closes, the
/// thread finishes the jobs already sent and closes the connection. Nothing is lost by not
/// closing explicitly, since every commit was durable when it returned.
#[derive(Debug, Clone)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread, which opens the database; returns once it is open.
    pub(crate) async fn start(
        path: PathBuf,
        busy_timeout: Duration,
        durability: Durability,
    ) -> Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened_tx, opened_rx) = oneshot::channel();
        thread::Builder::new()
            .name("footlights-sqlite".to_owned())
            .spawn(move || {
                let opened = schema::open(&path, busy_timeout, durability);
                let mut connection = match opened {
                    Ok(opened) => {
                        tracing::debug!(
                            path = %path.display(),
                            journal_mode = %opened.journal_mode,
                            created = opened.created,
                            ?busy_timeout,
                            ?durability,
                            "opened sqlite store"
                        );
                        if !opened.journal_mode.eq_ignore_ascii_case("wal") {
                            tracing::warn!(
                                path = %path.display(),
                                journal_mode = %opened.journal_mode,
                                "sqlite store is not in WAL mode"
                            );
                        }
                        // If the opener went away, the loop below ends at once.
                        let _ = opened_tx.send(Ok(()));
                        opened.connection
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = queue.recv() {
                    job(&mut connection);
                }
            })
            .map_err(StorageError::backend)?;
        opened_rx
            .await
            .map_err(|_| StorageError::backend(Error::WorkerStopped))??;
        Ok(Worker { jobs })
    }

    /// Runs `f` on the connection's thread and returns its result.
    ///
    /// If the returned future is dropped after the job was sent, the job still runs: a commit
    /// abandoned by its caller may still be applied.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (answer_tx, answer_rx) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            // The caller may have stopped waiting; the work is done either way.
            let _ = answer_tx.send(f(connection));
        });
        self.jobs
            .send(job)
            .map_err(|_| StorageError::backend(Error::WorkerStopped))?;
        answer_rx
            .await
            .map_err(|_| StorageError::backend(Error::WorkerStopped))?
    }
}
