//! Integration tests of the runtime through the public API: the registry, the in-process
//! client and the `#[actor]` macro.

// Test helpers outside `#[test]` functions may unwrap: a failure there is a test failure.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod actions;
mod connections;
mod cron;
mod deferred;
mod dormant;
mod durability;
mod forgotten_keys;
mod hibernation;
mod hooks;
mod idle;
mod inspect;
mod keys;
mod kv;
mod lifecycle;
mod queue;
mod raw;
mod raw_hibernation;
mod resume;
mod schedule;
mod shutdown;
mod support;
