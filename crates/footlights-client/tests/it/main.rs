//! Integration tests: the network client against a real `footlights-server` on 127.0.0.1,
//! over WebSocket and SSE, in JSON, CBOR and BARE.
//!
//! Most tests run once per transport and encoding ([`matrix!`]) or once per encoding
//! ([`encodings!`]); faults come from a TCP proxy that can sever every connection
//! (`support::proxy`) and from restarting the server on the same listener.

// Helpers outside `#[test]` functions unwrap like the tests do.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

mod connections;
mod errors;
mod handles;
mod negotiation;
mod raw;
mod reconnect;
