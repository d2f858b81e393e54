//! A server that goes away makes the driver `Unavailable` (retryable), not broken: once the
//! server is back, the same driver serves again, with everything committed before.

use std::time::{Duration, Instant};

use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, StorageError, Write};
use footlights_storage_postgres::PostgresDriver;
use footlights_storage_postgres::test_support::TestPostgres;

fn state(actor: &ActorId, bytes: &[u8]) -> Vec<Write> {
    vec![Write::State {
        actor: actor.clone(),
        bytes: bytes.to_vec(),
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_unavailable_and_a_restarted_one_serves_again() {
    // A server of its own, which this test stops and starts.
    let server = tokio::task::spawn_blocking(TestPostgres::start)
        .await
        .expect("starting panicked")
        .unwrap_or_else(|e| panic!("{e}"));
    let driver = PostgresDriver::builder(server.url())
        .pool_size(2)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect("connect");
    let meta = ActorMeta::new(ActorId::new("a"), "n", ActorKey::from("k"), 0);
    driver.create_actor(&meta).await.expect("create");
    driver
        .commit(state(&meta.id, b"before"))
        .await
        .expect("commit");

    let mut server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop();
        server
    })
    .await
    .expect("stopping panicked");
    let err = driver
        .commit(state(&meta.id, b"while down"))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "a commit while down: {err:?}");
    let err = driver.load_state(&meta.id).await.unwrap_err();
    assert!(
        matches!(err, StorageError::Unavailable { .. }),
        "a read while down: {err:?}"
    );

    let server = tokio::task::spawn_blocking(move || {
        server.restart().unwrap_or_else(|e| panic!("{e}"));
        server
    })
    .await
    .expect("restarting panicked");
    // The pool drops the connections the stop closed and makes new ones.
    let started = Instant::now();
    loop {
        match driver.commit(state(&meta.id, b"after")).await {
            Ok(_) => break,
            Err(e) if e.is_unavailable() && started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the driver did not recover: {e:?}"),
        }
    }
    assert_eq!(
        driver.load_state(&meta.id).await.expect("load"),
        Some(b"after".to_vec())
    );
    drop(driver);
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .expect("dropping panicked");
}
