//! The conformance suite every [`Driver`] runs (feature `conformance`).
//!
//! A driver crate implements [`Harness`] for its store and then either generates one test per
//! check with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```
//! // In tests/it/main.rs of a driver crate (with `footlights-storage` as a dev-dependency with
//! // the `conformance` feature):
//! mod conformance {
//!     footlights_storage::conformance_tests!(footlights_storage::conformance::MemoryHarness::new());
//! }
//! # fn main() {}
//! ```
//!
//! or runs every check in one test with [`run_all`]:
//!
//! ```
//! use footlights_storage::conformance::{MemoryHarness, block_on, run_all};
//!
//! // Or `#[tokio::test] async fn conformance() { run_all(&MyHarness::new()).await }`.
//! let harness = MemoryHarness::new();
//! block_on(run_all(&harness));
//! ```
//!
//! The checks are the public `async fn`s of this module; each takes a `&dyn Harness` and panics
//! when the driver does something the [`Driver`] contract does not allow. [`run_all`] runs them in
//! sequence on one store, so every check uses its own actor name and ids and tolerates data left
//! by the others. Checks spawn tasks with `tokio::spawn`, so they need a Tokio runtime;
//! [`conformance_tests!`](crate::conformance_tests) makes a multi-thread one per test.
//!
//! What the suite covers: saving and loading state, what a start reads (by id and by key), the `(name, key)` uniqueness (also under
//! concurrent creates through two handles), creates inside a batch (their outcomes, the data
//! written with them, atomicity), lookups, listing by key prefix and its order, alarms,
//! the key-value map (ranges both ways, prefixes ending in `0xFF`, paging, range deletes, the
//! size account), batches (order, atomicity of snapshot and key-value writes, writes for
//! unknown actors), fenced units, deleting, the generation, reopening after a crash (dropping every handle without closing), and the recorded
//! format version.
//!
//! Drivers that also implement [`Cluster`](crate::cluster::Cluster) run the cluster checks
//! too, through a [`ClusterHarness`] and
//! [`cluster_conformance_tests!`](crate::cluster_conformance_tests) (or
//! [`run_cluster_checks`]): one claim wins among sixteen concurrent claimers, a claim fences
//! the previous holder's writes, one fenced actor does not fail the rest of a batch, a release
//! frees an actor at once, a lease that ran out on the store's clock is detected, and actors
//! with due alarms and no live holder are found.

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::{Driver, MemoryDriver, Result};

mod actors;
mod cluster;
mod creates;
mod data;
mod durability;
mod kv;
mod support;

pub use actors::{
    bump_generation, create_duplicate_returns_existing,
    delete_actor_removes_everything_and_frees_key, find_actor_by_id_and_key, list_actors_in_pages,
    list_by_key_prefix_matches_whole_parts, list_by_name_ordered_by_key,
    same_key_other_name_is_another_actor, unique_key_under_concurrent_create,
};
pub use cluster::{
    ClusterHarness, LocalClusterHarness, Opened, claim_is_unique_under_concurrent_claimers,
    claiming_an_unknown_actor_is_not_found, due_orphans_are_found, expired_lease_is_detected,
    old_generation_is_fenced_after_a_claim, one_fenced_actor_does_not_fail_the_batch,
    release_makes_an_actor_claimable_at_once, run_cluster_checks,
};
pub use creates::{
    create_with_data_survives_reopen, creates_in_a_batch_report_outcomes,
    failed_batch_creates_nothing,
};
pub use data::{
    alarms_put_replace_delete, all_alarms_across_actors, batch_applies_writes_in_order,
    batch_is_atomic_for_readers, kv_put_get_delete, load_actor_by_key_reads_what_a_start_reads,
    load_actor_reads_meta_state_and_alarms, overwrite_keeps_newest, save_and_load_state,
    writes_for_unknown_actors_are_ignored,
};
pub use durability::{format_version_recorded_and_checked, reopen_after_crash};
pub use kv::{
    fenced_commit_from_an_old_generation_leaves_no_trace, kv_and_snapshot_fail_together,
    kv_delete_range_and_size, kv_get_many_in_order, kv_list_ranges_both_ways,
    kv_pages_visit_every_entry, kv_prefixes_ending_in_ff,
};

/// Opens the store under test, as many times as a check needs.
///
/// Every [`open`](Harness::open) opens **the same** underlying store: a check that drops every
/// driver it opened and opens again is testing persistence. A harness value is made fresh for
/// each test by [`conformance_tests!`](crate::conformance_tests), so it can own a temporary
/// directory or database.
pub trait Harness: Send + Sync {
    /// Opens the store the way an application would (for example `SqliteDriver::open(path)`).
    /// Several drivers opened from one harness may be alive at the same time.
    fn open(&self) -> BoxFuture<'_, Result<Arc<dyn Driver>>>;

    /// The format version recorded in the store, read without the driver; `None` if the store
    /// records none. Called while no driver is open.
    fn format_version(&self) -> BoxFuture<'_, Option<u32>>;

    /// Records `version` as the store's format version, bypassing the driver, as a newer or
    /// older build would have left it. Called while no driver is open.
    fn set_format_version(&self, version: u32) -> BoxFuture<'_, ()>;
}

/// The [`Harness`] of [`MemoryDriver`]: every `open` is another clone of one driver.
#[derive(Debug, Clone, Default)]
pub struct MemoryHarness {
    driver: MemoryDriver,
}

impl MemoryHarness {
    /// A harness over a new, empty [`MemoryDriver`].
    pub fn new() -> Self {
        MemoryHarness::default()
    }
}

impl Harness for MemoryHarness {
    fn open(&self) -> BoxFuture<'_, Result<Arc<dyn Driver>>> {
        Box::pin(async move {
            self.driver.check_format()?;
            let driver: Arc<dyn Driver> = Arc::new(self.driver.clone());
            Ok(driver)
        })
    }

    fn format_version(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async move { Some(self.driver.format_version()) })
    }

    fn set_format_version(&self, version: u32) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.driver.set_format_version(version) })
    }
}

/// Runs one check on a new multi-thread Tokio runtime; what the tests generated by
/// [`conformance_tests!`](crate::conformance_tests) call.
///
/// # Panics
///
/// If the runtime cannot be built, or if `check` panics.
pub fn block_on(check: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime for a conformance check");
    runtime.block_on(check);
}

/// The one list of checks. Calls `$callback!` (a macro at this crate's root) with `$args`
/// followed by the name of every check, so [`run_all`] and
/// [`conformance_tests!`](crate::conformance_tests) cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_checks {
    ($callback:ident ! $args:tt) => {
        $crate::$callback! {
            $args
            save_and_load_state
            load_actor_reads_meta_state_and_alarms
            load_actor_by_key_reads_what_a_start_reads
            overwrite_keeps_newest
            create_duplicate_returns_existing
            same_key_other_name_is_another_actor
            unique_key_under_concurrent_create
            creates_in_a_batch_report_outcomes
            create_with_data_survives_reopen
            failed_batch_creates_nothing
            find_actor_by_id_and_key
            list_by_name_ordered_by_key
            list_by_key_prefix_matches_whole_parts
            list_actors_in_pages
            alarms_put_replace_delete
            all_alarms_across_actors
            kv_put_get_delete
            kv_list_ranges_both_ways
            kv_prefixes_ending_in_ff
            kv_pages_visit_every_entry
            kv_delete_range_and_size
            kv_get_many_in_order
            fenced_commit_from_an_old_generation_leaves_no_trace
            kv_and_snapshot_fail_together
            batch_applies_writes_in_order
            batch_is_atomic_for_readers
            writes_for_unknown_actors_are_ignored
            delete_actor_removes_everything_and_frees_key
            bump_generation
            reopen_after_crash
            format_version_recorded_and_checked
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_run_all {
    (($harness:expr) $($check:ident)*) => {
        $( $crate::conformance::$check($harness).await; )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test_fns {
    (($harness:expr) $($check:ident)*) => {
        $(
            #[test]
            fn $check() {
                $crate::conformance::block_on(async {
                    let harness = $harness;
                    $crate::conformance::$check(&harness).await;
                });
            }
        )*
    };
}

/// Generates one `#[test]` per conformance check, each on a fresh harness.
///
/// `$harness` is an expression whose value implements
/// [`Harness`](crate::conformance::Harness). It is evaluated once per test, inside the test's
/// Tokio runtime, so it may `.await`. Invoke the macro in a module of its own: the tests are
/// named after the checks (`conformance::reopen_after_crash`, ...).
///
/// ```
/// mod conformance {
///     footlights_storage::conformance_tests!(footlights_storage::conformance::MemoryHarness::new());
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::__conformance_checks!(__conformance_test_fns!(($harness)));
    };
}

/// Runs every check, one after another, on the store of `harness`.
///
/// # Panics
///
/// When a check fails.
pub async fn run_all(harness: &dyn Harness) {
    crate::__conformance_checks!(__conformance_run_all!((harness)));
}
