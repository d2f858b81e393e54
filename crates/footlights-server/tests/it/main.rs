//! Integration tests: a real server on 127.0.0.1:0, real HTTP and WebSocket clients.

// Test helpers are `pub` so every topic module can use them.
// Helpers outside `#[test]` functions unwrap like the tests do.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod access;
mod action;
mod cluster;
mod cors;
mod direct;
mod fallback;
mod gateway;
mod generations;
mod inspector;
mod manager;
mod observability;
mod park;
mod queue;
mod rate;
mod raw;
mod raw_hibernation;
mod resume;
mod robustness;
mod shutdown;
mod sse;
mod support;
mod timeouts;
mod ws;
