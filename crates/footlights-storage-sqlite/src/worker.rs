//! The threads that own the SQLite connections.
//!
//! SQLite calls block (on the disk, on `fsync`, on other processes' locks), so they never run on
//! the async runtime. A connection is owned by one thread; callers send it jobs over a channel
//! and await the answer on a oneshot. An opened driver has two: one for writes (commits
//! serialize in SQLite anyway, so one thread loses nothing), and one for reads, so that a lookup
//! does not wait behind another caller's `fsync` (WAL lets readers run beside the writer).

use std::sync::mpsc;
use std::thread;

use footlights_storage::{Result, StorageError};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::Error;

/// Work for the connection's thread. It sends its own answer.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// What a connection's thread does just before it closes its connection: after the last job,
/// or while a panicking job unwinds.
pub(crate) type OnClose = Box<dyn FnOnce(&mut Connection) + Send>;

/// A handle to a connection's thread; clones share the thread.
///
/// The thread lives while any handle does: when the last one drops, the channel closes, the
/// thread finishes the jobs already sent, runs its [`OnClose`] and closes the connection.
/// Nothing is lost by not closing explicitly, since every commit was durable when it returned.
#[derive(Debug, Clone)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
}

/// The connection as its thread owns it. Dropping it, at the end of the thread or while a
/// panic unwinds it, runs the hook, then closes the connection, then drops `keep`.
struct Owned<K> {
    on_close: Option<OnClose>,
    connection: Connection,
    /// Only held, until the connection is closed.
    _keep: K,
}

impl<K> Drop for Owned<K> {
    fn drop(&mut self) {
        if let Some(on_close) = self.on_close.take() {
            on_close(&mut self.connection);
        }
        // Then the fields drop in their order: the connection before `keep` (the lock).
    }
}

impl Worker {
    /// Starts a thread named `name`, which opens its connection with `open`; returns once it
    /// is open, with what `open` returned beside the connection. The thread keeps `keep` until
    /// its connection is closed, and runs the [`OnClose`] `open` returned (if any) before
    /// closing it.
    pub(crate) async fn start<T, K, O>(name: &str, keep: K, open: O) -> Result<(Worker, T)>
    where
        T: Send + 'static,
        K: Send + 'static,
        O: FnOnce() -> Result<(Connection, T, Option<OnClose>)> + Send + 'static,
    {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened_tx, opened_rx) = oneshot::channel();
        thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut owned = match open() {
                    Ok((connection, info, on_close)) => {
                        // If the opener went away, the loop below ends at once.
                        let _ = opened_tx.send(Ok(info));
                        Owned {
                            on_close,
                            connection,
                            _keep: keep,
                        }
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = queue.recv() {
                    job(&mut owned.connection);
                }
            })
            .map_err(StorageError::backend)?;
        let info = opened_rx
            .await
            .map_err(|_| StorageError::backend(Error::WorkerStopped))??;
        Ok((Worker { jobs }, info))
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
