//! The job worker through a real server on 127.0.0.1:0 and the network client: progress
//! events in order and the result of a send that waits; a job cut short by a server restart
//! is done by the next server, once.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use footlights::storage::SqliteDriver;
use footlights::{Client, Registry, SendOutcome};
use footlights_server::Server;
use futures::StreamExt;
use job_worker::{Finished, JOBS, Job, JobResult, JobWorker, JobWorkerActions, Progress};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every step is bounded, so a hang fails the test instead of stalling CI.
async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("step timed out")
}

/// A running server: its URL, and how to stop it.
struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<footlights_server::Result<()>>,
}

impl Running {
    async fn start(db: &std::path::Path) -> Running {
        let registry = Registry::builder()
            .actor::<JobWorker>()
            .driver(SqliteDriver::open(db).await.unwrap())
            .start()
            .await
            .unwrap();
        let server = Server::builder().registry(registry).build().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Running { url, stop, task }
    }

    /// Graceful shutdown: returns once every actor is saved.
    async fn stop(self) {
        let _ = self.stop.send(());
        bounded(self.task).await.unwrap().unwrap();
    }
}

const TEXT: &str = "the quick brown fox jumps over the lazy dog while twenty four words of \
                    text travel through ten chunks of work in a queue";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reports_progress_in_order_and_answers_the_sender_that_waits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::start(&dir.path().join("jobs.db")).await;
    let client = Client::new(&server.url).unwrap();
    let worker = client.get_or_create::<JobWorker>(["reports"]);

    // Subscribe first; an action on the same connection answers only after the subscriptions
    // sent before it are in place.
    let conn = bounded(worker.connect()).await.unwrap();
    let mut progress = conn.events::<Progress>();
    let mut finished = conn.events::<Finished>();
    assert_eq!(bounded(conn.processed()).await.unwrap(), 0);

    let job = Job::new("j1", TEXT);
    let outcome = bounded(worker.enqueue_and_wait(JOBS.as_str(), &job, Duration::from_secs(15)))
        .await
        .unwrap();
    let SendOutcome::Completed(Some(response)) = outcome else {
        panic!("not completed: {outcome:?}");
    };
    let result: JobResult = footlights_protocol::from_value(response).unwrap();
    let expected = JobResult {
        id: "j1".into(),
        words: 24,
        characters: u64::try_from(TEXT.chars().count()).unwrap(),
        longest: "through".into(),
    };
    assert_eq!(result, expected);

    // Ten chunks: 10 %, 20 %, … 100 %, in order, then the stored result.
    let mut seen = Vec::new();
    while seen.last() != Some(&100) {
        let Progress { job, percent } = bounded(progress.next()).await.unwrap();
        assert_eq!(job, "j1");
        seen.push(percent);
    }
    assert_eq!(seen, (1..=10).map(|i| i * 10).collect::<Vec<u8>>());
    assert_eq!(
        bounded(finished.next()).await.unwrap(),
        Finished(expected.clone())
    );

    // The result is kept, and a send that does not wait is processed too.
    assert_eq!(
        bounded(worker.result("j1".into())).await.unwrap(),
        Some(expected.clone())
    );
    bounded(worker.enqueue(JOBS.as_str(), &Job::new("j2", "")))
        .await
        .unwrap();
    let Finished(second) = bounded(finished.next()).await.unwrap();
    assert_eq!((second.id.as_str(), second.words), ("j2", 0));
    let recent = bounded(worker.recent()).await.unwrap();
    assert_eq!(
        recent.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["j1", "j2"]
    );
    assert_eq!(bounded(worker.processed()).await.unwrap(), 2);

    conn.dispose().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cut_short_by_a_restart_is_done_once_by_the_next_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let server = Running::start(&db).await;
    let client = Client::new(&server.url).unwrap();
    let worker = client.get_or_create::<JobWorker>(["slow"]);
    let conn = bounded(worker.connect()).await.unwrap();
    let mut progress = conn.events::<Progress>();
    assert_eq!(bounded(conn.processed()).await.unwrap(), 0);

    // Ten chunks, 300 ms each: stopped after the first, well before the last.
    let job = Job::new("long", TEXT).with_step(Duration::from_millis(300));
    bounded(worker.enqueue(JOBS.as_str(), &job)).await.unwrap();
    let first = bounded(progress.next()).await.unwrap();
    assert_eq!((first.job.as_str(), first.percent), ("long", 10));
    conn.dispose().await;
    server.stop().await;

    // The next server: the job was not completed, so it is still queued and taken again.
    let server = Running::start(&db).await;
    let client = Client::new(&server.url).unwrap();
    let worker = client.get_or_create::<JobWorker>(["slow"]);
    let conn = bounded(worker.connect()).await.unwrap();
    let mut finished = conn.events::<Finished>();
    if bounded(conn.result("long".into())).await.unwrap().is_none() {
        let Finished(done) = bounded(finished.next()).await.unwrap();
        assert_eq!(done.id, "long");
    }
    let result = bounded(conn.result("long".into())).await.unwrap().unwrap();
    assert_eq!(result.words, 24);
    assert_eq!(
        bounded(conn.processed()).await.unwrap(),
        1,
        "done exactly once"
    );
    conn.dispose().await;
    server.stop().await;
}
