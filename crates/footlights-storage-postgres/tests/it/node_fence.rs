//! A handle bound to a node applies fenced units only for actors that node holds, even at the
//! actor's current generation: what keeps two nodes apart if a fail-over loses a claim and
//! hands one generation to both.

use std::time::Duration;

use footlights_storage::cluster::{Claim, Cluster, NodeInfo};
use footlights_storage::{ActorId, ActorKey, ActorMeta, Driver, Fence, Unit, UnitOutcome, Write};

use super::Store;

fn state(fence: &Fence, bytes: &[u8]) -> Vec<Unit> {
    vec![Unit {
        fence: Some(fence.clone()),
        writes: vec![Write::State {
            actor: fence.actor.clone(),
            bytes: bytes.to_vec(),
        }],
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_bound_handle_is_fenced_for_actors_it_does_not_hold() {
    let store = Store::new().await;
    let driver = store.open().await.expect("connect");
    let meta = ActorMeta::new(ActorId::new("a"), "n", ActorKey::from("k"), 0);
    driver.create_actor(&meta).await.expect("create");
    let ttl = Duration::from_secs(600);
    let a = driver
        .register(&NodeInfo::new("a", "127.0.0.1:1"), ttl)
        .await
        .expect("register")
        .incarnation;
    let b = driver
        .register(&NodeInfo::new("b", "127.0.0.1:2"), ttl)
        .await
        .expect("register")
        .incarnation;
    let Claim::Claimed(fence) = driver.claim(&meta.id, &a).await.expect("claim") else {
        panic!("the claim failed");
    };
    let on_a = driver.for_node(a.clone());
    let on_b = driver.for_node(b.clone());
    assert_eq!(on_a.node(), Some(&a));
    let applied = vec![UnitOutcome::Applied(vec![])];
    let fenced = vec![UnitOutcome::Fenced {
        current: Some(fence.generation),
    }];
    assert_eq!(
        on_a.commit_units(state(&fence, b"a1"))
            .await
            .expect("commit"),
        applied
    );
    assert_eq!(
        on_b.commit_units(state(&fence, b"b1"))
            .await
            .expect("commit"),
        fenced,
        "a node that does not hold the actor, at its generation"
    );

    // What a standby that lost the claims in between could show: b holds the actor at the
    // generation a claimed it with.
    let client = store.schema.client().await;
    client
        .execute(
            "UPDATE actors SET owner = $1 WHERE id = 'a'",
            &[&b.as_str()],
        )
        .await
        .expect("moving the owner");
    assert_eq!(
        on_a.commit_units(state(&fence, b"a2"))
            .await
            .expect("commit"),
        fenced
    );
    assert_eq!(
        on_b.commit_units(state(&fence, b"b2"))
            .await
            .expect("commit"),
        applied
    );
    assert_eq!(
        driver
            .commit_units(state(&fence, b"unbound"))
            .await
            .expect("commit"),
        applied,
        "an unbound handle checks the generation only"
    );
    assert_eq!(
        driver.load_state(&meta.id).await.expect("load"),
        Some(b"unbound".to_vec())
    );

    assert!(driver.release(&fence, &b).await.expect("release"));
    assert_eq!(
        on_b.commit_units(state(&fence, b"b3"))
            .await
            .expect("commit"),
        fenced,
        "after its release"
    );
    assert_eq!(
        driver.load_state(&meta.id).await.expect("load"),
        Some(b"unbound".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_dead_for_long_are_forgotten_and_live_ones_kept() {
    let store = Store::new().await;
    let driver = store.open().await.expect("connect");
    // A lease of a microsecond has ended by the next statement.
    let dead = driver
        .register(
            &NodeInfo::new("dead", "127.0.0.1:1"),
            Duration::from_micros(1),
        )
        .await
        .expect("register");
    let live = driver
        .register(
            &NodeInfo::new("live", "127.0.0.1:2"),
            Duration::from_secs(600),
        )
        .await
        .expect("register");
    // Not yet: it has been dead for less than an hour.
    assert_eq!(
        driver
            .forget_dead(Duration::from_secs(3600))
            .await
            .expect("forget"),
        0
    );
    assert_eq!(driver.forget_dead(Duration::ZERO).await.expect("forget"), 1);
    let left: Vec<_> = driver
        .live_members()
        .await
        .expect("members")
        .into_iter()
        .map(|m| m.incarnation)
        .collect();
    assert_eq!(left, [live.incarnation]);
    // Its heartbeat finds no lease, as for any ended one.
    assert_eq!(
        driver
            .heartbeat(&dead.incarnation, Duration::from_secs(1))
            .await
            .expect("heartbeat"),
        footlights_storage::cluster::Heartbeat::Expired
    );
}
