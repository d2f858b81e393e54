//! Integration tests of `footlights-storage`: one binary, one module per topic.

mod local_cluster_conformance;
mod memory_conformance;
