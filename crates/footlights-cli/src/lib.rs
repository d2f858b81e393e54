//! The `footlights` command line.
//!
//! ```text
//! footlights serve [--host 127.0.0.1] [--port 6420] [--data-dir ./data] [--with-test-actors]
//!                  [--durability power|process] [--shutdown-timeout 10] [--log-format text|json]
//!                  [--remembered-actors 65536] [--store-cache-mib 64]
//! footlights new NAME [--path DIR] [--footlights-path DIR | --footlights-git URL]
//! footlights actors [--url URL] [--token TOKEN] list|get|call|delete ...
//! ```
//!
//! `footlights serve` runs a Footlights server with the [demo actors](demo) on one address,
//! keeping their state in `<data-dir>/footlights.db` (SQLite). One server at a time uses a data
//! directory: a second `footlights serve` on the same one but another address exits at once
//! with an error saying that the directory is in use by another process. Once it accepts
//! connections it prints exactly one line to standard output,
//!
//! ```text
//! listening on http://127.0.0.1:6420
//! ```
//!
//! with the address it really bound (so `--port 0` shows the port the system chose). Scripts
//! and tests wait for that line. Logs go to standard error, as text or, with
//! `--log-format json`, one JSON object per line; set `RUST_LOG` to choose what is logged
//! (default `info`: one line per request and per connection with its request id, warnings,
//! errors). `GET /metrics` serves Prometheus metrics (behind the token when one is set). Ctrl-C or SIGTERM stops the server gracefully: realtime clients are
//! told to reconnect (close code 1001, `ws.going_away`), requests in flight finish, every awake
//! actor is saved, and the process exits with status 0. Connections still open after
//! `--shutdown-timeout` seconds (a request half sent, say) are cut so that the stop always ends;
//! the actors are saved all the same. A second signal during that stop ends the process at
//! once (status 130).
//!
//! **Restarting without dropping a client.** A second `footlights serve` started with the same
//! address *and* data directory as a running one takes over from it: it listens beside it
//! (`SO_REUSEPORT`), prints
//!
//! ```text
//! taking over http://127.0.0.1:6420 once the server serving it stops
//! ```
//!
//! and waits (up to `--handover-timeout`, 60 s) for the data directory. Send the old server
//! SIGTERM: it stops accepting at once, so every new connection reaches the new one, which
//! holds them until the old one has saved its actors, then opens the store and prints its
//! `listening on` line. Under systemd, socket activation does the same with no reset possible:
//! a socket passed in `LISTEN_FDS` is used instead of `--host`/`--port`
//! ([`footlights_server::listen`]).
//!
//! Any RivetKit client reaches the actors with the printed URL as its endpoint:
//!
//! ```js
//! import { createClient } from "rivetkit/client";
//! const client = createClient("http://127.0.0.1:6420");
//! const counter = client.counter.getOrCreate(["demo"]);
//! console.log(await counter.increment(1));
//! ```
//!
//! **Looking at a running server.** `footlights actors list`, `get NAME KEY` (the state as
//! JSON), `call NAME KEY ACTION [ARG_JSON ...]` and `delete NAME KEY` work against a server's
//! inspector API, with `--url` and `--token` (or `FOOTLIGHTS_URL` and `FOOTLIGHTS_TOKEN`);
//! each exits with a status a script can test ([`actors`]). The same server shows its
//! inspector page at `/inspector`.
//!
//! **Starting a project of your own.** `footlights new NAME [--path DIR]` writes a crate with
//! one actor, a server `main` (`footlights::serve`), a test and a README ([`new`]). It takes
//! `footlights` from the checkout this program was built from (or `--footlights-path DIR`, or
//! `--footlights-git URL`), and from crates.io when neither is at hand.
//!
//! What this crate is: the binary, plus the demo registry and the setup code as a library so
//! other tests can serve the same actors. What it is not: a place for application actors (write
//! your own binary with `footlights::serve`: `footlights new` starts one), or a process
//! supervisor.

pub mod actors;
pub mod demo;
pub mod new;
mod serve;

pub use serve::{Bound, Listening, Origin, ServeOptions, Telemetry, connections_for_files};
