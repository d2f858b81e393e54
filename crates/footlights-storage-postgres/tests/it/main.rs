//! Integration tests of `footlights-storage-postgres`: one binary, one module per topic. They
//! run against the PostgreSQL that `test_support` starts once for the binary (or the one
//! `FOOTLIGHTS_TEST_POSTGRES_URL` names), each test in a schema of its own.

mod cluster;
mod conformance;
mod local_on_sqlite;
mod node_fence;
mod races;
mod schema;
mod unavailable;

use std::sync::Arc;

use footlights_storage::Result;
use footlights_storage_postgres::PostgresDriver;
use footlights_storage_postgres::test_support::{TestPostgres, TestSchema};

/// One store: a schema on the shared server. Every `open` connects another driver (another
/// pool) to it, as another process would.
struct Store {
    schema: TestSchema,
    url: &'static str,
}

impl Store {
    async fn new() -> Self {
        let server = TestPostgres::shared_async().await;
        Store {
            schema: TestSchema::new(server),
            url: server.url(),
        }
    }

    async fn open(&self) -> Result<Arc<PostgresDriver>> {
        let driver = PostgresDriver::builder(self.url)
            .schema(self.schema.name())
            .pool_size(4)
            .connect()
            .await?;
        Ok(Arc::new(driver))
    }
}
