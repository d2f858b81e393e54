//! State survives a restart on the embedded SQLite store.

use footlights::prelude::*;
use footlights::storage::SqliteDriver;

#[derive(Default, Serialize, Deserialize)]
pub struct Tally {
    count: i64,
    history: Vec<i64>,
}

#[footlights::actor]
impl Tally {
    #[action]
    fn add(&mut self, n: i64) -> i64 {
        self.count += n;
        self.history.push(n);
        self.count
    }

    #[action]
    fn get(&self) -> (i64, usize) {
        (self.count, self.history.len())
    }

    #[action]
    async fn call_other(&self, ctx: &Ctx<Self>, key: String, n: i64) -> Result<i64, ActionError> {
        ctx.client()
            .get_or_create::<Tally>([key.as_str()])
            .add(n)
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let registry = Registry::builder()
            .actor::<Tally>()
            .driver(SqliteDriver::open(&path).await.unwrap())
            .start()
            .await
            .unwrap();
        let client = registry.client();
        let mut tasks = Vec::new();
        for key in 0..10 {
            for _ in 0..10 {
                let h = client.get_or_create::<Tally>([format!("t{key}").as_str()]);
                tasks.push(tokio::spawn(async move { h.add(1).await.unwrap() }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        registry.shutdown().await;
    }
    let registry = Registry::builder()
        .actor::<Tally>()
        .driver(SqliteDriver::open(&path).await.unwrap())
        .start()
        .await
        .unwrap();
    for key in 0..10 {
        let h = registry.client().get::<Tally>([format!("t{key}").as_str()]);
        assert_eq!(h.get().await.unwrap(), (10, 10), "actor t{key}");
    }
}

#[tokio::test]
async fn actors_call_each_other_through_ctx_client() {
    let registry = Registry::builder().actor::<Tally>().start().await.unwrap();
    let a = registry.client().get_or_create::<Tally>(["a"]);
    assert_eq!(a.call_other("b".into(), 4).await.unwrap(), 4);
    assert_eq!(
        registry.client().get::<Tally>(["b"]).get().await.unwrap(),
        (4, 1)
    );
}

/// A data directory emptied under a running registry: callers get the coded, retryable
/// `storage.unavailable` (HTTP 503), not a masked internal error, and nothing is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_data_directory_answers_storage_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let registry = Registry::builder()
        .actor::<Tally>()
        .driver(SqliteDriver::open(&path).await.unwrap())
        .start()
        .await
        .unwrap();
    let client = registry.client();
    let tally = client.get_or_create::<Tally>(["t"]);
    assert_eq!(tally.add(1).await.unwrap(), 1);

    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let unavailable = |e: &ActionError| (e.group(), e.code()) == ("storage", "unavailable");
    let err = tally.add(1).await.unwrap_err();
    assert!(unavailable(&err), "{err}");
    assert_eq!(err.http_status(), 503);
    assert!(footlights_client::is_transient(&err));
    // Asked again, and for a new actor: the same answer, never an acknowledgement.
    let err = tally.add(1).await.unwrap_err();
    assert!(unavailable(&err), "{err}");
    let err = client
        .get_or_create::<Tally>(["new"])
        .add(1)
        .await
        .unwrap_err();
    assert!(unavailable(&err), "{err}");
}
