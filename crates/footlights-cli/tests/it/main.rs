//! Integration tests of the `footlights` binary: it is started as a child process, exactly as
//! scripts and the JavaScript compatibility tests start it.

// Test helpers outside `#[test]` functions may unwrap: a failure there is a test failure.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod actors;
mod cluster;
mod demo;
mod handover;
mod help;
mod http_api;
mod limits;
#[path = "../support/process.rs"]
mod process;
mod serve;
#[cfg(feature = "otel")]
mod traces;
