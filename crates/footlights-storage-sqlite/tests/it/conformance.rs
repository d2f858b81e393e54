//! `SqliteDriver` passes the shared conformance suite, on a database file in a temporary
//! directory: every `open` opens that same file again. Once more with reads through a memory
//! map.

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
    /// `SqliteDriverBuilder::mmap_bytes`.
    mmap_bytes: u64,
}

impl SqliteHarness {
    fn new() -> Self {
        let (_dir, path) = super::temp_db();
        SqliteHarness {
            _dir,
            path,
            mmap_bytes: footlights_storage_sqlite::DEFAULT_MMAP_BYTES,
        }
    }
}

impl Harness for SqliteHarness {
    fn open(&self) -> BoxFuture<'_, Result<Arc<dyn Driver>>> {
        Box::pin(async move {
            let driver: Arc<dyn Driver> = Arc::new(
                SqliteDriver::builder(&self.path)
                    .mmap_bytes(self.mmap_bytes)
                    .open()
                    .await?,
            );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_with_reads_through_a_memory_map() {
    let harness = SqliteHarness {
        mmap_bytes: 256 << 20,
        ..SqliteHarness::new()
    };
    run_all(&harness).await;
}
