//! `SqliteDriver` passes the shared conformance suite, on a database file in a temporary
//! directory: every `open` opens that same file again.

use std::path::PathBuf;
use std::sync::Arc;

use footlights_storage::conformance::{Harness, run_all};
use footlights_storage::{Driver, Result};
use footlights_storage_sqlite::SqliteDriver;
use futures::future::BoxFuture;

struct SqliteHarness {
    /// Keeps the directory (and so the file) until the test ends.
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SqliteHarness {
    fn new() -> Self {
        let (_dir, path) = super::temp_db();
        SqliteHarness { _dir, path }
    }
}

impl Harness for SqliteHarness {
    fn open(&self) -> BoxFuture<'_, Result<Arc<dyn Driver>>> {
        Box::pin(async move {
            let driver: Arc<dyn Driver> = Arc::new(SqliteDriver::open(&self.path).await?);
            Ok(driver)
        })
    }

    fn format_version(&self) -> BoxFuture<'_, Option<u32>> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || super::read_format_version(&path))
                .await
                .expect("reading the format version panicked")
        })
    }

    fn set_format_version(&self, version: u32) -> BoxFuture<'_, ()> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || super::write_format_version(&path, version))
                .await
                .expect("writing the format version panicked");
        })
    }
}

footlights_storage::conformance_tests!(SqliteHarness::new());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_one_file() {
    run_all(&SqliteHarness::new()).await;
}
