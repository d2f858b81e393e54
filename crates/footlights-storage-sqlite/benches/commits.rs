//! Durable commits per second on a real file (WAL, `synchronous=FULL`), with 1 KiB values.
//!
//! - `commits/1_write`: one state write per commit; the throughput criterion prints is
//!   commits/s.
//! - `commits/100_writes`: one hundred state writes (to 100 actors) per commit; the throughput
//!   is writes/s (divide by 100 for commits/s).
//!
//! Run with `cargo bench -p footlights-storage-sqlite --bench commits`. The numbers depend on
//! how fast the disk under the temporary directory syncs.
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, Write};
use footlights_storage_sqlite::SqliteDriver;
use futures::executor::block_on;

const VALUE: usize = 1024;

fn commits(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let driver =
        block_on(SqliteDriver::open(dir.path().join("bench.db"))).expect("opening the store");
    let actors: Vec<ActorId> = (0..100)
        .map(|n| {
            let meta = ActorMeta::new(
                ActorId::new(format!("a{n}")),
                "bench",
                ActorKey::from(n.to_string().as_str()),
                0,
            );
            block_on(driver.create_actor(&meta)).expect("creating an actor");
            meta.id
        })
        .collect();
    // Every value differs from the one it replaces: SQLite skips rewriting a row with
    // identical bytes, and a commit that changes no page writes and syncs nothing.
    let batch = |writes: usize, seq: u64| -> Vec<Write> {
        actors
            .iter()
            .cycle()
            .take(writes)
            .map(|actor| Write::State {
                actor: actor.clone(),
                bytes: seq
                    .to_le_bytes()
                    .into_iter()
                    .chain(std::iter::repeat(0xAB))
                    .take(VALUE)
                    .collect(),
            })
            .collect()
    };
    let mut seq = 0u64;

    let mut group = c.benchmark_group("commits");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for writes in [1usize, 100] {
        let name = if writes == 1 {
            "1_write".to_owned()
        } else {
            format!("{writes}_writes")
        };
        group.throughput(Throughput::Elements(writes as u64));
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    seq += 1;
                    batch(writes, seq)
                },
                |batch| block_on(driver.commit(batch)).expect("commit"),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, commits);
criterion_main!(benches);
