//! Integration tests of the runtime through the public API: the registry, the in-process
//! client and the `#[actor]` macro.

#![allow(unreachable_pub)]

mod actions;
mod connections;
mod deferred;
mod durability;
mod keys;
mod lifecycle;
mod resume;
mod schedule;
