//! `LocalCluster` over `MemoryDriver` passes the cluster checks: one test per check, each on a
//! new store, plus all of them in sequence on one store.

use footlights_storage::conformance::{LocalClusterHarness, run_cluster_checks};

footlights_storage::cluster_conformance_tests!(LocalClusterHarness::new());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_cluster_checks_on_one_store() {
    run_cluster_checks(&LocalClusterHarness::new()).await;
}
