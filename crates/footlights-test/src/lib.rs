//! Test harness for Footlights.
//!
//! The `footlights-crash-child` binary (`footlights-crash-child <db path> [power|process]`, the
//! second argument the store's durability) hosts a registry with the counter actor on a SQLite
//! file and takes commands on standard input, one per line:
//! - `inc`: increment the counter by one; prints `ack N` once the new count `N` is
//!   acknowledged (increments run concurrently, so acks may arrive out of order);
//! - `get`: prints `value N`.
//! - `new KEY`: get-or-create the counter with key `KEY` and increment it by one; prints
//!   `created KEY ID N` once that is acknowledged (creates also run concurrently);
//! - `find KEY`: prints `found KEY ID N` (the actor's id and count) or `missing KEY`.
//!
//! It prints `ready` when it accepts commands. The crash test kills it with SIGKILL at random
//! moments and checks that no acknowledged increment, and no acknowledged actor, is lost.

/// The counter key the crash child uses.
pub const CRASH_KEY: &str = "crash";
