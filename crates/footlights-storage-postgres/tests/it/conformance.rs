//! `PostgresDriver` passes the shared conformance suite, unchanged: one test per check, each in
//! a new schema, plus the whole suite in sequence in one schema.

use std::sync::Arc;

use footlights_storage::conformance::{Harness, run_all};
use footlights_storage::{Driver, Result};
use futures::future::BoxFuture;

use super::Store;

impl Harness for Store {
    fn open(&self) -> BoxFuture<'_, Result<Arc<dyn Driver>>> {
        Box::pin(async move {
            let driver: Arc<dyn Driver> = Store::open(self).await?;
            Ok(driver)
        })
    }

    fn format_version(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async move {
            let client = self.schema.client().await;
            let row = client
                .query_opt(
                    "SELECT value FROM footlights_meta WHERE name = 'format_version'",
                    &[],
                )
                .await
                .expect("reading the format version");
            row.map(|r| {
                let v: i64 = r.get(0);
                u32::try_from(v).expect("a u32 version")
            })
        })
    }

    fn set_format_version(&self, version: u32) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let client = self.schema.client().await;
            client
                .execute(
                    "UPDATE footlights_meta SET value = $1 WHERE name = 'format_version'",
                    &[&i64::from(version)],
                )
                .await
                .expect("writing the format version");
        })
    }
}

footlights_storage::conformance_tests!(Store::new().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_in_one_schema() {
    run_all(&Store::new().await).await;
}
