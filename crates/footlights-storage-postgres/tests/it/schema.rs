//! Connecting creates the schema and its tables once, whoever connects first and however many
//! connect at once; stores in different schemas are apart.

use footlights_storage::{ActorId, ActorKey, ActorMeta, CreateOutcome, Driver, StorageError};
use footlights_storage_postgres::PostgresDriver;
use footlights_storage_postgres::test_support::{TestPostgres, TestSchema};

use super::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connects_create_the_store_once() {
    let store = Store::new().await;
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let (url, schema) = (store.url, store.schema.name().to_owned());
            tokio::spawn(async move {
                PostgresDriver::builder(url)
                    .schema(schema)
                    .pool_size(1)
                    .connect()
                    .await
            })
        })
        .collect();
    for open in opens {
        open.await
            .expect("a connect panicked")
            .expect("a connect failed");
    }
    let client = store.schema.client().await;
    let rows = client
        .query("SELECT value FROM footlights_meta", &[])
        .await
        .expect("reading footlights_meta");
    assert_eq!(rows.len(), 1, "one format version row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_in_two_schemas_are_apart() {
    let server = TestPostgres::shared_async().await;
    let (one, two) = (TestSchema::new(server), TestSchema::new(server));
    let meta = ActorMeta::new(ActorId::new("same"), "n", ActorKey::from("k"), 0);
    for schema in [&one, &two] {
        let driver = PostgresDriver::builder(server.url())
            .schema(schema.name())
            .connect()
            .await
            .expect("connect");
        assert_eq!(driver.schema(), schema.name());
        assert_eq!(
            driver.create_actor(&meta).await.expect("create"),
            CreateOutcome::Created
        );
    }
}

#[tokio::test]
async fn a_schema_name_that_is_not_an_identifier_is_refused() {
    let result = PostgresDriver::builder("postgres://nobody@127.0.0.1:1/none")
        .schema("a\"; DROP TABLE x; --")
        .connect()
        .await;
    assert!(
        matches!(result, Err(StorageError::Backend(_))),
        "{result:?}"
    );
}
