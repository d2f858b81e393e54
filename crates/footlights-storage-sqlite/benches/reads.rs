//! A call by key to an actor the caller does not know yet: `load_actor_by_key` on a store of
//! 100,000 actors (a key, a 64-byte state, no alarms), timed from the call to its answer, with
//! the database file read through a memory map (`map`, `mmap_bytes(1 << 30)`) and with
//! `pread` (`pread`, the default).
//!
//! - `reads/after_commit/*`: the writer commits one state write to another actor just before
//!   each lookup (not timed), as in a server where actions go on while actors wake. In WAL mode
//!   the read connection starts each lookup with an empty page cache.
//! - `reads/no_commit/*`: the same lookups with nothing written between them: the read
//!   connection keeps its pages.
//!
//! Run with `cargo bench -p footlights-storage-sqlite --bench reads`. The lookups pick their
//! actors at random (a fixed sequence), so most pages they need are not the ones the last
//! lookup read.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, Write};
use footlights_storage_sqlite::{Durability, SqliteDriver};
use futures::executor::block_on;

const ACTORS: u64 = 100_000;

/// The actor numbered `n`: its id, its key.
fn actor(n: u64) -> (ActorId, ActorKey) {
    (
        ActorId::new(format!("{:016x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15))),
        ActorKey::from(format!("user-{n}").as_str()),
    )
}

/// A fixed sequence of actor numbers spread over the whole store.
struct Picks(u64);

impl Picks {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % ACTORS
    }
}

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bench.db");
    {
        let driver = block_on(
            SqliteDriver::builder(&path)
                .durability(Durability::Process)
                .open(),
        )
        .expect("opening the store");
        for first in (0..ACTORS).step_by(1000) {
            let batch = (first..first + 1000)
                .flat_map(|n| {
                    let (id, key) = actor(n);
                    [
                        Write::CreateActor {
                            meta: ActorMeta::new(id.clone(), "bench", key, 0),
                        },
                        Write::State {
                            actor: id,
                            bytes: vec![0xAB; 64],
                        },
                    ]
                })
                .collect();
            block_on(driver.commit(batch)).expect("creating actors");
        }
    }

    let mut group = c.benchmark_group("reads");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (mode, mmap_bytes) in [("map", 1 << 30), ("pread", 0)] {
        let driver = block_on(
            SqliteDriver::builder(&path)
                .durability(Durability::Process)
                .mmap_bytes(mmap_bytes)
                .open(),
        )
        .expect("opening the store");
        for commit in [true, false] {
            let mut picks = Picks(1);
            let mut seq = 0u64;
            let name = if commit { "after_commit" } else { "no_commit" };
            group.bench_function(format!("{name}/{mode}"), |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        if commit {
                            seq += 1;
                            let (id, _) = actor(picks.next());
                            let bytes = seq.to_le_bytes().into_iter().cycle().take(64).collect();
                            block_on(driver.commit(vec![Write::State { actor: id, bytes }]))
                                .expect("commit");
                        }
                        let (_, key) = actor(picks.next());
                        let started = Instant::now();
                        let loaded =
                            block_on(driver.load_actor_by_key("bench", &key)).expect("lookup");
                        spent += started.elapsed();
                        assert!(loaded.is_some(), "every key was created");
                    }
                    spent
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, reads);
criterion_main!(benches);
