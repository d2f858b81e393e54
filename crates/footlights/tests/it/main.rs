//! Integration tests of the runtime through the public API: the registry, the in-process
//! client and the `#[actor]` macro.

// Test helpers outside `#[test]` functions may unwrap: a failure there is a test failure.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod actions;
mod connections;
mod deferred;
mod durability;
mod hibernation;
mod idle;
mod keys;
mod kv;
mod lifecycle;
mod queue;
mod raw;
mod resume;
mod schedule;
mod support;
