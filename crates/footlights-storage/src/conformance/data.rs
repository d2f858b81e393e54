//! Checks of what actors save: state, alarms, the key-value map, and batches of writes.

use super::Harness;
use super::support::{
    actor, alarm, alarms, bump, commit, create, delete_alarm, find, id, kv, kv_delete, kv_put,
    meta, open, put_alarm, set_state, state,
};
use crate::{ActorId, ActorKey, Alarm};

/// A saved state loads back byte for byte; "no state" and "an empty state" differ.
pub async fn save_and_load_state(h: &dyn Harness) {
    let d = open(h).await;
    let a = meta("save_and_load_state", 1, "a");
    let b = meta("save_and_load_state", 2, "b");
    create(&*d, &a).await;
    create(&*d, &b).await;
    assert_eq!(state(&*d, &a.id).await, None, "a new actor has no state");
    assert_eq!(
        state(&*d, &id("save_and_load_state", 99)).await,
        None,
        "unknown actor"
    );

    let every_byte: Vec<u8> = (0..=255).collect();
    commit(&*d, vec![set_state(&a.id, &every_byte)]).await;
    commit(&*d, vec![set_state(&b.id, &[])]).await;
    assert_eq!(state(&*d, &a.id).await, Some(every_byte));
    assert_eq!(
        state(&*d, &b.id).await,
        Some(vec![]),
        "an empty state is not a missing one"
    );
}

/// Actors "a" and "b" of `check`: `a` with the state `state of a` and two alarms, written in
/// one commit with `also` (each made for `a`), `b` with nothing. Returns both and `a`'s
/// alarms in time order.
async fn two_actors(
    d: &dyn crate::Driver,
    check: &str,
    also: Vec<fn(&ActorId) -> crate::Write>,
) -> (crate::ActorMeta, crate::ActorMeta, [Alarm; 2]) {
    let a = meta(check, 1, "a");
    let b = meta(check, 2, "b");
    create(d, &a).await;
    create(d, &b).await;
    let later = alarm("later", 20, b"2");
    let sooner = alarm("sooner", 10, b"1");
    let mut batch = vec![
        set_state(&a.id, b"state of a"),
        put_alarm(&a.id, &later),
        put_alarm(&a.id, &sooner),
    ];
    batch.extend(also.into_iter().map(|write| write(&a.id)));
    commit(d, batch).await;
    (a, b, [sooner, later])
}

/// `load_actor` gives what `actor`, `load_state` and `load_alarms` give, and `None` for an
/// unknown actor.
pub async fn load_actor_reads_meta_state_and_alarms(h: &dyn Harness) {
    const CHECK: &str = "load_actor_reads_meta_state_and_alarms";
    let d = open(h).await;
    let (a, b, [sooner, later]) = two_actors(&*d, CHECK, vec![]).await;
    let loaded = d
        .load_actor(&a.id)
        .await
        .expect("load_actor")
        .expect("a exists");
    assert_eq!(loaded.meta, a);
    assert_eq!(loaded.state, Some(b"state of a".to_vec()));
    assert_eq!(loaded.alarms, vec![sooner, later], "ordered by time");
    let fresh = d
        .load_actor(&b.id)
        .await
        .expect("load_actor")
        .expect("b exists");
    assert_eq!((fresh.meta, fresh.state, fresh.alarms), (b, None, vec![]));
    assert_eq!(
        d.load_actor(&id(CHECK, 99)).await.expect("load_actor"),
        None,
        "unknown actor"
    );
}

/// `load_actor_by_key` gives what `find_actor` then `load_actor` give; `None` for a key no
/// actor holds (also under another name) and for a deleted actor; after the key is taken
/// again, the new actor.
pub async fn load_actor_by_key_reads_what_a_start_reads(h: &dyn Harness) {
    const CHECK: &str = "load_actor_by_key_reads_what_a_start_reads";
    let d = open(h).await;
    let by_key = |name: &'static str, key: &'static str| {
        let d = d.clone();
        async move {
            d.load_actor_by_key(name, &ActorKey::from(key))
                .await
                .expect("load_actor_by_key")
        }
    };
    let (_, b, [sooner, later]) = two_actors(&*d, CHECK, vec![bump]).await;
    let loaded = by_key(CHECK, "a").await.expect("a exists");
    let found = find(&*d, CHECK, &ActorKey::from("a"))
        .await
        .expect("a found");
    let started = d
        .load_actor(&found.id)
        .await
        .expect("load_actor")
        .expect("a loads");
    assert_eq!(loaded, started, "the same as find_actor then load_actor");
    assert_eq!(loaded.meta.generation, 1, "the bumped generation");
    assert_eq!(loaded.state, Some(b"state of a".to_vec()));
    assert_eq!(loaded.alarms, vec![sooner, later], "ordered by time");
    let fresh = by_key(CHECK, "b").await.expect("b exists");
    assert_eq!(
        (fresh.meta, fresh.state, fresh.alarms),
        (b.clone(), None, vec![])
    );
    assert_eq!(by_key(CHECK, "c").await, None, "a key no actor holds");
    assert_eq!(
        by_key("load_actor_by_key_other_name", "a").await,
        None,
        "the key under another name"
    );

    d.delete_actor(&b.id).await.expect("delete_actor");
    assert_eq!(by_key(CHECK, "b").await, None, "a deleted actor");
    let again = meta(CHECK, 3, "b");
    create(&*d, &again).await;
    commit(&*d, vec![set_state(&again.id, b"new b")]).await;
    let loaded = by_key(CHECK, "b").await.expect("the new b");
    assert_eq!(
        (loaded.meta, loaded.state),
        (again, Some(b"new b".to_vec())),
        "the actor that holds the key now"
    );
}

/// A second save replaces the first, also when it is shorter, and stays replaced after reopening.
pub async fn overwrite_keeps_newest(h: &dyn Harness) {
    let d = open(h).await;
    let a = meta("overwrite_keeps_newest", 1, "a");
    create(&*d, &a).await;
    commit(&*d, vec![set_state(&a.id, &[1; 64])]).await;
    commit(&*d, vec![set_state(&a.id, &[2; 3])]).await;
    assert_eq!(state(&*d, &a.id).await, Some(vec![2; 3]));
    drop(d);
    let d = open(h).await;
    assert_eq!(state(&*d, &a.id).await, Some(vec![2; 3]), "after reopening");
}

/// Alarms load ordered by time; putting one with a known id replaces it; deleting removes it
/// (and deleting a missing one is fine).
pub async fn alarms_put_replace_delete(h: &dyn Harness) {
    const CHECK: &str = "alarms_put_replace_delete";
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    create(&*d, &a).await;
    assert_eq!(
        alarms(&*d, &a.id).await,
        vec![],
        "a new actor has no alarms"
    );

    let x = alarm("x", 300, b"x1");
    let y = alarm("y", 100, b"");
    let z = alarm("z", 200, &[0, 255]);
    commit(&*d, vec![put_alarm(&a.id, &x), put_alarm(&a.id, &y)]).await;
    commit(&*d, vec![put_alarm(&a.id, &z)]).await;
    assert_eq!(
        alarms(&*d, &a.id).await,
        vec![y.clone(), z.clone(), x.clone()]
    );

    let x2 = Alarm {
        at_ms: 50,
        action: "other".to_owned(),
        args: b"x2".to_vec(),
        ..x
    };
    commit(&*d, vec![put_alarm(&a.id, &x2)]).await;
    assert_eq!(
        alarms(&*d, &a.id).await,
        vec![x2.clone(), y.clone(), z.clone()],
        "replaced"
    );

    commit(
        &*d,
        vec![delete_alarm(&a.id, "z"), delete_alarm(&a.id, "missing")],
    )
    .await;
    assert_eq!(
        alarms(&*d, &a.id).await,
        vec![x2.clone(), y.clone()],
        "deleted"
    );

    drop(d);
    let d = open(h).await;
    assert_eq!(alarms(&*d, &a.id).await, vec![x2, y], "after reopening");
    assert_eq!(alarms(&*d, &id(CHECK, 99)).await, vec![], "unknown actor");
}

/// `all_alarms` returns the alarms of every actor, ordered by time across actors.
pub async fn all_alarms_across_actors(h: &dyn Harness) {
    const CHECK: &str = "all_alarms_across_actors";
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    let b = meta(CHECK, 2, "b");
    create(&*d, &a).await;
    create(&*d, &b).await;
    let t = 4_000_000_000_000;
    let (a30, a10) = (alarm("a30", t + 30, b"1"), alarm("a10", t + 10, b"2"));
    let (b20, b40) = (alarm("b20", t + 20, b"3"), alarm("b40", t + 40, b"4"));
    commit(&*d, vec![put_alarm(&a.id, &a30), put_alarm(&b.id, &b40)]).await;
    commit(&*d, vec![put_alarm(&b.id, &b20), put_alarm(&a.id, &a10)]).await;

    let all = d.all_alarms().await.expect("all_alarms failed");
    assert!(
        all.windows(2)
            .all(|w| matches!(w, [x, y] if x.1.at_ms <= y.1.at_ms)),
        "all_alarms is not ordered by time: {all:?}"
    );
    let ours: Vec<(ActorId, Alarm)> = all
        .into_iter()
        .filter(|(actor, _)| *actor == a.id || *actor == b.id)
        .collect();
    let expected = vec![
        (a.id.clone(), a10),
        (b.id.clone(), b20),
        (a.id.clone(), a30.clone()),
        (b.id.clone(), b40),
    ];
    assert_eq!(ours, expected);

    d.delete_actor(&b.id).await.expect("delete_actor failed");
    let all = d.all_alarms().await.expect("all_alarms failed");
    assert!(
        all.iter().all(|(actor, _)| *actor != b.id),
        "a deleted actor's alarms remain"
    );
    assert!(
        all.contains(&(a.id.clone(), a30)),
        "another actor's alarms went away"
    );
}

/// The key-value map: put, get, overwrite, delete; binary and empty keys; one map per actor.
pub async fn kv_put_get_delete(h: &dyn Harness) {
    const CHECK: &str = "kv_put_get_delete";
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    let b = meta(CHECK, 2, "b");
    create(&*d, &a).await;
    create(&*d, &b).await;
    let binary_key = [0u8, 255, b'/', 0];
    commit(
        &*d,
        vec![
            kv_put(&a.id, b"k1", b"v1"),
            kv_put(&a.id, &binary_key, &[7; 1024]),
            kv_put(&a.id, b"", b"empty key"),
            kv_put(&a.id, b"empty value", b""),
            kv_put(&b.id, b"k1", b"b's v1"),
        ],
    )
    .await;
    assert_eq!(kv(&*d, &a.id, b"k1").await, Some(b"v1".to_vec()));
    assert_eq!(kv(&*d, &a.id, &binary_key).await, Some(vec![7; 1024]));
    assert_eq!(kv(&*d, &a.id, b"").await, Some(b"empty key".to_vec()));
    assert_eq!(kv(&*d, &a.id, b"empty value").await, Some(vec![]));
    assert_eq!(
        kv(&*d, &a.id, b"k").await,
        None,
        "a prefix of a key is not a key"
    );
    assert_eq!(
        kv(&*d, &b.id, b"k1").await,
        Some(b"b's v1".to_vec()),
        "maps are per actor"
    );

    commit(
        &*d,
        vec![kv_put(&a.id, b"k1", b"v1'"), kv_delete(&a.id, &binary_key)],
    )
    .await;
    commit(&*d, vec![kv_delete(&a.id, b"never there")]).await;
    assert_eq!(
        kv(&*d, &a.id, b"k1").await,
        Some(b"v1'".to_vec()),
        "overwritten"
    );
    assert_eq!(kv(&*d, &a.id, &binary_key).await, None, "deleted");
    assert_eq!(
        kv(&*d, &b.id, b"k1").await,
        Some(b"b's v1".to_vec()),
        "other actor untouched"
    );

    drop(d);
    let d = open(h).await;
    assert_eq!(
        kv(&*d, &a.id, b"k1").await,
        Some(b"v1'".to_vec()),
        "after reopening"
    );
    assert_eq!(
        kv(&*d, &a.id, b"").await,
        Some(b"empty key".to_vec()),
        "after reopening"
    );
}

/// The writes of one batch apply in order: a later write to the same place wins.
pub async fn batch_applies_writes_in_order(h: &dyn Harness) {
    const CHECK: &str = "batch_applies_writes_in_order";
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    let b = meta(CHECK, 2, "b");
    create(&*d, &a).await;
    create(&*d, &b).await;
    let y = alarm("y", 2, b"y");
    commit(
        &*d,
        vec![
            set_state(&a.id, b"first"),
            kv_put(&a.id, b"k", b"gone"),
            put_alarm(&a.id, &alarm("x", 1, b"x")),
            bump(&a.id),
            set_state(&b.id, b"b"),
            set_state(&a.id, b"second"),
            kv_delete(&a.id, b"k"),
            kv_put(&a.id, b"j", b"kept"),
            kv_put(&a.id, b"j", b"kept, newer"),
            delete_alarm(&a.id, "x"),
            put_alarm(&a.id, &y),
            bump(&a.id),
        ],
    )
    .await;
    assert_eq!(state(&*d, &a.id).await, Some(b"second".to_vec()));
    assert_eq!(state(&*d, &b.id).await, Some(b"b".to_vec()));
    assert_eq!(kv(&*d, &a.id, b"k").await, None);
    assert_eq!(kv(&*d, &a.id, b"j").await, Some(b"kept, newer".to_vec()));
    assert_eq!(alarms(&*d, &a.id).await, vec![y]);
    assert_eq!(actor(&*d, &a.id).await.map(|m| m.generation), Some(2));
    assert_eq!(actor(&*d, &b.id).await.map(|m| m.generation), Some(0));
}

/// A reader never sees part of a batch: while batches `[A = k, B = k]` commit, a reader (on
/// another opened driver) that reads A and then B never finds B older than A.
pub async fn batch_is_atomic_for_readers(h: &dyn Harness) {
    const CHECK: &str = "batch_is_atomic_for_readers";
    const BATCHES: u64 = 50;
    let writer = open(h).await;
    let reader = open(h).await;
    let a = meta(CHECK, 1, "a");
    let b = meta(CHECK, 2, "b");
    create(&*writer, &a).await;
    create(&*writer, &b).await;
    let counter = |bytes: Option<Vec<u8>>| -> u64 {
        let bytes = bytes.unwrap_or_else(|| 0u64.to_be_bytes().to_vec());
        u64::from_be_bytes(bytes.try_into().expect("a counter is 8 bytes"))
    };

    let (a_id, b_id) = (a.id.clone(), b.id.clone());
    let writing = tokio::spawn(async move {
        for k in 1..=BATCHES {
            let bytes = k.to_be_bytes();
            commit(
                &*writer,
                vec![set_state(&a_id, &bytes), set_state(&b_id, &bytes)],
            )
            .await;
        }
    });
    loop {
        let seen_a = counter(state(&*reader, &a.id).await);
        let seen_b = counter(state(&*reader, &b.id).await);
        assert!(
            seen_b >= seen_a,
            "saw A = {seen_a} but then B = {seen_b}: half a batch"
        );
        if seen_a == BATCHES {
            break;
        }
        tokio::task::yield_now().await;
    }
    writing.await.expect("the writer panicked");
}

/// Writes for actors that do not exist are ignored, leave nothing behind, and do not fail the
/// batch they are in.
pub async fn writes_for_unknown_actors_are_ignored(h: &dyn Harness) {
    const CHECK: &str = "writes_for_unknown_actors_are_ignored";
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    let ghost = meta(CHECK, 2, "ghost");
    create(&*d, &a).await;
    commit(
        &*d,
        vec![
            set_state(&ghost.id, b"boo"),
            put_alarm(&ghost.id, &alarm("g", 1, b"")),
            kv_put(&ghost.id, b"k", b"v"),
            bump(&ghost.id),
            set_state(&a.id, b"real"),
        ],
    )
    .await;
    assert_eq!(
        state(&*d, &a.id).await,
        Some(b"real".to_vec()),
        "the rest of the batch"
    );
    assert_eq!(actor(&*d, &ghost.id).await, None);
    assert!(
        d.all_alarms()
            .await
            .expect("all_alarms failed")
            .iter()
            .all(|(id, _)| *id != ghost.id),
        "an unknown actor's alarm was stored"
    );

    // Had anything been stored under the unknown id, the actor created with it now would see it.
    create(&*d, &ghost).await;
    assert_eq!(state(&*d, &ghost.id).await, None, "state was stored");
    assert_eq!(alarms(&*d, &ghost.id).await, vec![], "an alarm was stored");
    assert_eq!(
        kv(&*d, &ghost.id, b"k").await,
        None,
        "a kv entry was stored"
    );
    assert_eq!(
        actor(&*d, &ghost.id).await.map(|m| m.generation),
        Some(0),
        "bumped"
    );
}
