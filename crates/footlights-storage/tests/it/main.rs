//! Integration tests of `footlights-storage`: one binary, one module per topic.

mod memory_conformance;
