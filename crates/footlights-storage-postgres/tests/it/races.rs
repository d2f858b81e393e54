//! What the row locks of `commit_units` and `claim` guarantee when they race: no write of an
//! old holder lands after a claim returned, and batches of several nodes over the same actors
//! all commit (no deadlock reaches the caller) with the size account exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use footlights_storage::cluster::{Claim, Cluster, NodeInfo};
use footlights_storage::{
    ActorId, ActorKey, ActorMeta, Driver, Fence, KvRange, Unit, UnitOutcome, Write,
};

use super::Store;

fn save(fence: &Fence, seq: u64) -> Vec<Unit> {
    vec![Unit {
        fence: Some(fence.clone()),
        writes: vec![Write::State {
            actor: fence.actor.clone(),
            bytes: seq.to_be_bytes().to_vec(),
        }],
    }]
}

/// A holder keeps committing while another node claims the actor: every commit either lands
/// before the claim returns or is refused, so what the new holder loads after its claim is
/// the last commit the old one was told had landed, and stays so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_write_of_the_old_holder_lands_after_a_claim() {
    let store = Store::new().await;
    let old_side = store.open().await.expect("connect");
    let new_side = store.open().await.expect("connect");
    let ttl = Duration::from_secs(600);
    for round in 0..20u32 {
        let meta = ActorMeta::new(
            ActorId::new(format!("a{round}")),
            "n",
            ActorKey::from(round.to_string().as_str()),
            0,
        );
        old_side.create_actor(&meta).await.expect("create");
        let old = old_side
            .register(&NodeInfo::new("old", "127.0.0.1:1"), ttl)
            .await
            .expect("register")
            .incarnation;
        let new = new_side
            .register(&NodeInfo::new("new", "127.0.0.1:2"), ttl)
            .await
            .expect("register")
            .incarnation;
        let Claim::Claimed(fence) = old_side.claim(&meta.id, &old).await.expect("claim") else {
            panic!("the first claim failed");
        };
        let applied = Arc::new(AtomicU64::new(0));
        let writer = {
            let (driver, applied) = (old_side.for_node(old.clone()), applied.clone());
            tokio::spawn(async move {
                for seq in 1.. {
                    match driver
                        .commit_units(save(&fence, seq))
                        .await
                        .expect("commit")
                        .as_slice()
                    {
                        [UnitOutcome::Applied(_)] => applied.store(seq, Ordering::SeqCst),
                        [UnitOutcome::Fenced { .. }] => return,
                        other => panic!("{other:?}"),
                    }
                }
            })
        };
        while applied.load(Ordering::SeqCst) == 0 && !writer.is_finished() {
            tokio::task::yield_now().await;
        }
        assert!(
            !writer.is_finished(),
            "round {round}: the holder's first commit was refused"
        );
        // The old holder dies (for the others) while it is still writing.
        new_side.deregister(&old).await.expect("deregister");
        let Claim::Claimed(_) = new_side.claim(&meta.id, &new).await.expect("claim") else {
            panic!("round {round}: the claim of a dead holder's actor failed");
        };
        let loaded = new_side.load_state(&meta.id).await.expect("load");
        writer.await.expect("the writer panicked");
        let last = applied.load(Ordering::SeqCst).to_be_bytes().to_vec();
        assert_eq!(
            loaded,
            Some(last.clone()),
            "round {round}: loaded after the claim"
        );
        assert_eq!(
            new_side.load_state(&meta.id).await.expect("load"),
            Some(last),
            "round {round}: a write landed after the claim"
        );
        new_side.deregister(&new).await.expect("deregister");
    }
}

/// Two drivers commit batches that name the same actors in opposite orders, with key-value
/// writes: every batch commits, and each actor's size account matches its entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_batches_all_commit_with_exact_sizes() {
    let store = Store::new().await;
    let first = store.open().await.expect("connect");
    let second = store.open().await.expect("connect");
    let actors: Vec<ActorId> = (0..4).map(|n| ActorId::new(format!("x{n}"))).collect();
    for (n, id) in actors.iter().enumerate() {
        let meta = ActorMeta::new(id.clone(), "n", ActorKey::from(n.to_string().as_str()), 0);
        first.create_actor(&meta).await.expect("create");
    }
    let run = |driver: Arc<footlights_storage_postgres::PostgresDriver>, reverse: bool| {
        let mut order = actors.clone();
        if reverse {
            order.reverse();
        }
        tokio::spawn(async move {
            for i in 0..40u32 {
                let writes = order
                    .iter()
                    .flat_map(|actor| {
                        let key = (i % 7).to_be_bytes().to_vec();
                        [
                            Write::KvPut {
                                actor: actor.clone(),
                                key: key.clone(),
                                value: vec![7; (i % 5) as usize],
                            },
                            Write::KvDelete {
                                actor: actor.clone(),
                                key: ((i + 3) % 7).to_be_bytes().to_vec(),
                            },
                        ]
                    })
                    .collect();
                driver.commit(writes).await.expect("a batch failed");
            }
        })
    };
    let (a, b) = (run(first.clone(), false), run(second.clone(), true));
    a.await.expect("a writer panicked");
    b.await.expect("a writer panicked");
    for actor in &actors {
        let entries = first
            .kv_list(actor, &KvRange::all())
            .await
            .expect("kv_list");
        let counted: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        let size = first.kv_size(actor).await.expect("kv_size");
        assert_eq!(size, counted as u64, "{actor}");
    }
}
