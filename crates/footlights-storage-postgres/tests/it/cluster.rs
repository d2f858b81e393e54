//! `PostgresDriver` as a `Cluster` passes the cluster checks: one test per check, each in a
//! new schema, plus all of them in sequence in one schema (after the driver suite, so that
//! they meet the data it leaves).

use std::sync::Arc;

use footlights_storage::Driver;
use footlights_storage::Result;
use footlights_storage::cluster::Cluster;
use footlights_storage::conformance::{ClusterHarness, Opened, run_all, run_cluster_checks};
use futures::future::BoxFuture;

use super::Store;

impl ClusterHarness for Store {
    fn open(&self) -> BoxFuture<'_, Result<Opened>> {
        Box::pin(async move {
            let driver = Store::open(self).await?;
            let cluster: Arc<dyn Cluster> = driver.clone();
            let driver: Arc<dyn Driver> = driver;
            Ok((driver, cluster))
        })
    }
}

footlights_storage::cluster_conformance_tests!(Store::new().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_checks_after_the_driver_suite_in_one_schema() {
    let store = Store::new().await;
    run_all(&store).await;
    run_cluster_checks(&store).await;
}
