//! Checks of creating actors inside a batch ([`Write::CreateActor`]).

use super::Harness;
use super::support::{actor, bump, create, find, kv, kv_put, meta, open, set_state, state};
use crate::{ActorMeta, CreateOutcome, Write};

pub(super) fn create_write(meta: &ActorMeta) -> Write {
    Write::CreateActor { meta: meta.clone() }
}

/// A batch reports one outcome per create, in batch order. Of two creates of one key in a
/// batch, the first wins and the second is told the winner's metadata as it is at that point of
/// the batch; the writes following a create reach the new actor, and those aimed at a losing
/// create's id are dropped. A batch without creates reports none.
pub async fn creates_in_a_batch_report_outcomes(h: &dyn Harness) {
    const CHECK: &str = "creates_in_a_batch_report_outcomes";
    let d = open(h).await;
    let first = meta(CHECK, 1, ["room", "a"]);
    let loser = meta(CHECK, 2, ["room", "a"]);
    let other = meta(CHECK, 3, ["room", "b"]);
    let outcomes = d
        .commit(vec![
            create_write(&first),
            kv_put(&first.id, b"input", b"first"),
            set_state(&first.id, b"s1"),
            bump(&first.id),
            create_write(&loser),
            kv_put(&loser.id, b"input", b"loser"),
            set_state(&loser.id, b"s2"),
            create_write(&other),
        ])
        .await
        .expect("commit failed");
    let bumped = ActorMeta {
        generation: 1,
        ..first.clone()
    };
    assert_eq!(
        outcomes,
        vec![
            CreateOutcome::Created,
            CreateOutcome::Exists(bumped.clone()),
            CreateOutcome::Created,
        ]
    );
    assert_eq!(find(&*d, CHECK, &first.key).await, Some(bumped));
    assert_eq!(find(&*d, CHECK, &other.key).await, Some(other.clone()));
    assert_eq!(kv(&*d, &first.id, b"input").await, Some(b"first".to_vec()));
    assert_eq!(state(&*d, &first.id).await, Some(b"s1".to_vec()));
    assert_eq!(
        actor(&*d, &loser.id).await,
        None,
        "the losing create was written"
    );
    assert_eq!(kv(&*d, &loser.id, b"input").await, None);
    assert_eq!(state(&*d, &loser.id).await, None);

    let later = meta(CHECK, 4, ["room", "a"]);
    let outcomes = d
        .commit(vec![
            create_write(&later),
            kv_put(&later.id, b"input", b"x"),
        ])
        .await
        .expect("commit failed");
    assert_eq!(
        outcomes,
        vec![CreateOutcome::Exists(ActorMeta {
            generation: 1,
            ..first.clone()
        })],
        "a create of a key taken by an earlier batch"
    );
    assert_eq!(kv(&*d, &later.id, b"input").await, None);

    let none = d
        .commit(vec![set_state(&other.id, b"x")])
        .await
        .expect("commit failed");
    assert_eq!(none, vec![], "a batch without creates");
}

/// An actor created in a batch and the data written with it survive a crash together.
pub async fn create_with_data_survives_reopen(h: &dyn Harness) {
    const CHECK: &str = "create_with_data_survives_reopen";
    let a = meta(CHECK, 1, "a");
    {
        let d = open(h).await;
        let outcomes = d
            .commit(vec![create_write(&a), kv_put(&a.id, b"input", b"hello")])
            .await
            .expect("commit failed");
        assert_eq!(outcomes, vec![CreateOutcome::Created]);
        // Dropped without any close call.
    }
    let d = open(h).await;
    assert_eq!(find(&*d, CHECK, &a.key).await, Some(a.clone()));
    assert_eq!(kv(&*d, &a.id, b"input").await, Some(b"hello".to_vec()));
}

/// A batch that fails (here: a create reusing the id of an actor with another key) creates
/// nothing, not even the creates before the failing one, and writes nothing with them.
pub async fn failed_batch_creates_nothing(h: &dyn Harness) {
    const CHECK: &str = "failed_batch_creates_nothing";
    let d = open(h).await;
    let taken = meta(CHECK, 1, "taken");
    create(&*d, &taken).await;
    let fresh = meta(CHECK, 2, "fresh");
    let reused_id = ActorMeta {
        key: "elsewhere".into(),
        ..taken.clone()
    };
    let result = d
        .commit(vec![
            create_write(&fresh),
            kv_put(&fresh.id, b"input", b"x"),
            set_state(&taken.id, b"changed"),
            create_write(&reused_id),
        ])
        .await;
    assert!(
        result.is_err(),
        "a create reusing an id succeeded: {result:?}"
    );
    assert_eq!(
        find(&*d, CHECK, &fresh.key).await,
        None,
        "a create was kept"
    );
    assert_eq!(actor(&*d, &fresh.id).await, None, "a create was kept");
    assert_eq!(kv(&*d, &fresh.id, b"input").await, None);
    assert_eq!(state(&*d, &taken.id).await, None, "a write was kept");
    assert_eq!(find(&*d, CHECK, &reused_id.key).await, None);
    assert_eq!(actor(&*d, &taken.id).await, Some(taken.clone()));

    let outcomes = d
        .commit(vec![
            create_write(&fresh),
            kv_put(&fresh.id, b"input", b"x"),
        ])
        .await
        .expect("commit failed");
    assert_eq!(outcomes, vec![CreateOutcome::Created], "the retry");
    assert_eq!(kv(&*d, &fresh.id, b"input").await, Some(b"x".to_vec()));
}
