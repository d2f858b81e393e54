//! `MemoryDriver` passes the shared conformance suite: one test per check, each on a new store,
//! plus the whole suite in sequence on one store (checks must not disturb each other).

use footlights_storage::conformance::{MemoryHarness, run_all};

footlights_storage::conformance_tests!(MemoryHarness::new());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_one_store() {
    run_all(&MemoryHarness::new()).await;
}

#[tokio::test]
async fn run_all_on_a_current_thread_runtime() {
    run_all(&MemoryHarness::new()).await;
}
