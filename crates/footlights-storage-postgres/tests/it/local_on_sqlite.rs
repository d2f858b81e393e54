//! The single-process cluster over the embedded default: `LocalCluster` on a `SqliteDriver`
//! passes the same cluster checks as PostgreSQL (kept here, beside the other cluster runs, as
//! this crate already builds the SQLite driver for its benchmark).

use std::path::PathBuf;
use std::sync::Arc;

use footlights_storage::cluster::{Cluster, LocalCluster};
use footlights_storage::conformance::{ClusterHarness, Opened};
use footlights_storage::{Driver, Result};
use footlights_storage_sqlite::SqliteDriver;
use futures::future::BoxFuture;
use tokio::sync::OnceCell;

/// One SQLite file, opened once; the cluster lives as long as the harness, as it would in
/// the one process serving the file.
struct LocalOnSqlite {
    _dir: tempfile::TempDir,
    path: PathBuf,
    opened: OnceCell<(Arc<dyn Driver>, Arc<dyn Cluster>)>,
}

impl LocalOnSqlite {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("footlights.db");
        LocalOnSqlite {
            _dir: dir,
            path,
            opened: OnceCell::new(),
        }
    }
}

impl ClusterHarness for LocalOnSqlite {
    fn open(&self) -> BoxFuture<'_, Result<Opened>> {
        Box::pin(async move {
            let opened = self
                .opened
                .get_or_try_init(|| async {
                    let driver: Arc<dyn Driver> = Arc::new(SqliteDriver::open(&self.path).await?);
                    let cluster: Arc<dyn Cluster> = Arc::new(LocalCluster::new(driver.clone()));
                    Ok::<_, footlights_storage::StorageError>((driver, cluster))
                })
                .await?;
            Ok(opened.clone())
        })
    }
}

footlights_storage::cluster_conformance_tests!(LocalOnSqlite::new());
