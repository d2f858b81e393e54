//! Checks of the ordered key-value map: ranges in both directions, prefixes, paging, range
//! deletes, the size account, and atomicity with the rest of a unit.

use std::ops::Bound;

use super::Harness;
use super::creates::create_write;
use super::support::{commit, create, kv, kv_delete, kv_put, meta, open, set_state, state};
use crate::{ActorId, ActorMeta, Driver, KvRange, Unit, Write};

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

async fn list(d: &dyn Driver, id: &ActorId, range: &KvRange) -> Entries {
    d.kv_list(id, range).await.expect("kv_list failed")
}

async fn keys(d: &dyn Driver, id: &ActorId, range: &KvRange) -> Vec<Vec<u8>> {
    list(d, id, range)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

async fn size(d: &dyn Driver, id: &ActorId) -> u64 {
    d.kv_size(id).await.expect("kv_size failed")
}

fn delete_range(actor: &ActorId, start: &[u8], end: Option<&[u8]>) -> Write {
    Write::KvDeleteRange {
        actor: actor.clone(),
        start: start.to_vec(),
        end: end.map(<[u8]>::to_vec),
    }
}

fn k(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

/// Listing returns keys in byte order (or its reverse), honours included and excluded bounds
/// and the limit, and sees only the actor's own map.
pub async fn kv_list_ranges_both_ways(h: &dyn Harness) {
    const CHECK: &str = "kv_list_ranges_both_ways";
    let d = open(h).await;
    let (a, b) = (meta(CHECK, 1, "a"), meta(CHECK, 2, "b"));
    create(&*d, &a).await;
    create(&*d, &b).await;
    let all: Vec<Vec<u8>> = vec![
        k(b""),
        k(b"\x00"),
        k(b"a"),
        k(b"a\x00"),
        k(b"ab"),
        k(b"b"),
        k(b"\xff"),
    ];
    // Written out of order, over two commits.
    let mut writes: Vec<Write> = all
        .iter()
        .rev()
        .map(|key| kv_put(&a.id, key, key))
        .collect();
    let later = writes.split_off(3);
    commit(&*d, writes).await;
    commit(&*d, later).await;
    commit(&*d, vec![kv_put(&b.id, b"a", b"other actor")]).await;

    assert_eq!(keys(&*d, &a.id, &KvRange::all()).await, all, "ascending");
    let mut descending = all.clone();
    descending.reverse();
    assert_eq!(
        keys(&*d, &a.id, &KvRange::all().reverse()).await,
        descending,
        "descending"
    );
    assert_eq!(
        list(&*d, &a.id, &KvRange::all().limit(2)).await,
        vec![(k(b""), k(b"")), (k(b"\x00"), k(b"\x00"))],
        "values come with their keys"
    );
    let inner = KvRange::all()
        .start(Bound::Excluded(k(b"a")))
        .end(Bound::Included(k(b"b")));
    assert_eq!(
        keys(&*d, &a.id, &inner).await,
        vec![k(b"a\x00"), k(b"ab"), k(b"b")]
    );
    assert_eq!(
        keys(&*d, &a.id, &inner.clone().reverse().limit(2)).await,
        vec![k(b"b"), k(b"ab")],
        "reverse with a limit starts at the top"
    );
    let half_open = KvRange::between(b"a", Some(b"b"));
    assert_eq!(
        keys(&*d, &a.id, &half_open).await,
        vec![k(b"a"), k(b"a\x00"), k(b"ab")]
    );
    assert!(
        keys(&*d, &a.id, &KvRange::between(b"b", Some(b"a")))
            .await
            .is_empty(),
        "empty range"
    );
    assert!(
        keys(&*d, &a.id, &KvRange::all().limit(0)).await.is_empty(),
        "limit 0"
    );
    assert_eq!(
        keys(&*d, &b.id, &KvRange::all()).await,
        vec![k(b"a")],
        "maps are per actor"
    );
    let nobody = ActorId::new(format!("{CHECK}-nobody"));
    assert!(
        keys(&*d, &nobody, &KvRange::all()).await.is_empty(),
        "unknown actor"
    );
}

/// A prefix ending in `0xFF` bytes covers exactly the keys that start with it, and a prefix of
/// only `0xFF` bytes runs to the end of the map.
pub async fn kv_prefixes_ending_in_ff(h: &dyn Harness) {
    const CHECK: &str = "kv_prefixes_ending_in_ff";
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    create(&*d, &a).await;
    let stored: Vec<&[u8]> = vec![
        b"a\xfe\xff",
        b"a\xff",
        b"a\xff\x00",
        b"a\xff\xff",
        b"b",
        b"\xfe",
        b"\xff",
        b"\xff\xff",
        b"\xff\xff\x01",
    ];
    commit(
        &*d,
        stored.iter().map(|key| kv_put(&a.id, key, b"v")).collect(),
    )
    .await;
    let prefixed = |p: &'static [u8]| KvRange::prefix(p);
    assert_eq!(
        keys(&*d, &a.id, &prefixed(b"a\xff")).await,
        vec![k(b"a\xff"), k(b"a\xff\x00"), k(b"a\xff\xff")]
    );
    assert_eq!(
        keys(&*d, &a.id, &prefixed(b"\xff")).await,
        vec![k(b"\xff"), k(b"\xff\xff"), k(b"\xff\xff\x01")]
    );
    assert_eq!(
        keys(&*d, &a.id, &prefixed(b"\xff\xff").reverse()).await,
        vec![k(b"\xff\xff\x01"), k(b"\xff\xff")]
    );
    assert_eq!(
        keys(&*d, &a.id, &prefixed(b"")).await.len(),
        stored.len(),
        "the empty prefix"
    );
}

/// Walking a large map a page at a time, after the last key seen, in both directions, visits
/// every entry once and in order.
pub async fn kv_pages_visit_every_entry(h: &dyn Harness) {
    const CHECK: &str = "kv_pages_visit_every_entry";
    const N: u32 = 2_500;
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    create(&*d, &a).await;
    for chunk in (0..N).collect::<Vec<_>>().chunks(500) {
        commit(
            &*d,
            chunk
                .iter()
                .map(|i| kv_put(&a.id, &i.to_be_bytes(), &i.to_le_bytes()))
                .collect(),
        )
        .await;
    }
    for reverse in [false, true] {
        let mut seen = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut range = KvRange::all().limit(100);
            if reverse {
                range = range.reverse();
                range.end = after.clone().map_or(Bound::Unbounded, Bound::Excluded);
            } else {
                range.start = after.clone().map_or(Bound::Unbounded, Bound::Excluded);
            }
            let page = list(&*d, &a.id, &range).await;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, value) in page {
                let i = u32::from_be_bytes(key.try_into().expect("4-byte keys"));
                assert_eq!(value, i.to_le_bytes(), "value of {i}");
                seen.push(i);
            }
        }
        let mut expected: Vec<u32> = (0..N).collect();
        if reverse {
            expected.reverse();
        }
        assert_eq!(seen, expected, "reverse = {reverse}");
    }
}

/// Range deletes remove `[start, end)`; the size account follows puts, overwrites, deletes and
/// range deletes, is per actor, and survives reopening.
pub async fn kv_delete_range_and_size(h: &dyn Harness) {
    const CHECK: &str = "kv_delete_range_and_size";
    let d = open(h).await;
    let (a, b) = (meta(CHECK, 1, "a"), meta(CHECK, 2, "b"));
    create(&*d, &a).await;
    create(&*d, &b).await;
    assert_eq!(size(&*d, &a.id).await, 0, "a new actor's map is empty");
    commit(
        &*d,
        vec![
            kv_put(&a.id, b"m1", b"12345"),
            kv_put(&a.id, b"m2", b"12345"),
            kv_put(&a.id, b"m3", b"12345"),
            kv_put(&a.id, b"n1", b"1"),
            kv_put(&b.id, b"m1", b"123"),
        ],
    )
    .await;
    assert_eq!(size(&*d, &a.id).await, 3 * 7 + 3);
    assert_eq!(size(&*d, &b.id).await, 5);
    commit(&*d, vec![kv_put(&a.id, b"n1", b"1234567")]).await;
    assert_eq!(
        size(&*d, &a.id).await,
        3 * 7 + 9,
        "an overwrite counts the new value only"
    );
    commit(
        &*d,
        vec![kv_delete(&a.id, b"m2"), kv_delete(&a.id, b"missing")],
    )
    .await;
    assert_eq!(size(&*d, &a.id).await, 2 * 7 + 9);

    commit(
        &*d,
        vec![
            kv_put(&a.id, b"m2", b"x"),
            delete_range(&a.id, b"m", Some(b"m3")),
        ],
    )
    .await;
    assert_eq!(
        keys(&*d, &a.id, &KvRange::all()).await,
        vec![k(b"m3"), k(b"n1")],
        "[m, m3) removed"
    );
    assert_eq!(size(&*d, &a.id).await, 7 + 9);
    commit(
        &*d,
        vec![delete_range(&a.id, b"n", None), kv_put(&a.id, b"z", b"")],
    )
    .await;
    assert_eq!(
        keys(&*d, &a.id, &KvRange::all()).await,
        vec![k(b"m3"), k(b"z")],
        "[n, ..) removed, then z put"
    );
    assert_eq!(size(&*d, &a.id).await, 7 + 1);
    assert_eq!(
        size(&*d, &b.id).await,
        5,
        "the other actor's map is untouched"
    );
    drop(d);
    let d = open(h).await;
    assert_eq!(size(&*d, &a.id).await, 8, "after reopening");
    assert_eq!(
        size(&*d, &ActorId::new(format!("{CHECK}-nobody"))).await,
        0,
        "unknown actor"
    );
}

/// `kv_get_many` answers in the order asked, with `None` for missing keys.
pub async fn kv_get_many_in_order(h: &dyn Harness) {
    const CHECK: &str = "kv_get_many_in_order";
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    create(&*d, &a).await;
    commit(
        &*d,
        vec![kv_put(&a.id, b"x", b"1"), kv_put(&a.id, b"y", b"2")],
    )
    .await;
    let asked = vec![k(b"y"), k(b"nope"), k(b"x"), k(b"y")];
    let got = d
        .kv_get_many(&a.id, &asked)
        .await
        .expect("kv_get_many failed");
    assert_eq!(got, vec![Some(k(b"2")), None, Some(k(b"1")), Some(k(b"2"))]);
}

/// A unit fenced with an older generation is refused whole (state, key-value writes, alarms:
/// nothing of it lands), while the other units of the same batch are applied; a unit fenced
/// with the current generation is applied.
pub async fn fenced_commit_from_an_old_generation_leaves_no_trace(h: &dyn Harness) {
    use crate::UnitOutcome;
    const CHECK: &str = "fenced_commit_from_an_old_generation_leaves_no_trace";
    let d = open(h).await;
    let (a, b) = (meta(CHECK, 1, "a"), meta(CHECK, 2, "b"));
    create(&*d, &a).await;
    create(&*d, &b).await;
    commit(
        &*d,
        vec![kv_put(&a.id, b"kept", b"1"), set_state(&a.id, b"gen0")],
    )
    .await;
    // A newer instance starts.
    commit(
        &*d,
        vec![Write::BumpGeneration {
            actor: a.id.clone(),
        }],
    )
    .await;

    let alarm = super::support::alarm("late", 5, b"");
    let stale = Unit::fenced(
        a.id.clone(),
        0,
        vec![
            set_state(&a.id, b"stale"),
            kv_put(&a.id, b"stale", b"x"),
            kv_delete(&a.id, b"kept"),
            delete_range(&a.id, b"", None),
            super::support::put_alarm(&a.id, &alarm),
            Write::BumpGeneration {
                actor: a.id.clone(),
            },
        ],
    );
    let other = Unit::fenced(b.id.clone(), 0, vec![set_state(&b.id, b"b applied")]);
    let current = Unit::fenced(a.id.clone(), 1, vec![kv_put(&a.id, b"gen1", b"y")]);
    let outcomes = d
        .commit_units(vec![stale, other, current])
        .await
        .expect("commit_units failed");
    assert_eq!(
        outcomes,
        vec![
            UnitOutcome::Fenced { current: Some(1) },
            UnitOutcome::Applied(vec![]),
            UnitOutcome::Applied(vec![]),
        ]
    );
    assert_eq!(
        state(&*d, &a.id).await,
        Some(k(b"gen0")),
        "the stale snapshot did not land"
    );
    assert_eq!(kv(&*d, &a.id, b"stale").await, None);
    assert_eq!(
        kv(&*d, &a.id, b"kept").await,
        Some(k(b"1")),
        "the stale deletes did not land"
    );
    assert!(
        d.load_alarms(&a.id)
            .await
            .expect("load_alarms failed")
            .is_empty()
    );
    assert_eq!(
        d.actor(&a.id)
            .await
            .expect("actor failed")
            .map(|m| m.generation),
        Some(1)
    );
    assert_eq!(
        kv(&*d, &a.id, b"gen1").await,
        Some(k(b"y")),
        "the current unit landed"
    );
    assert_eq!(
        state(&*d, &b.id).await,
        Some(k(b"b applied")),
        "other actors are not held back"
    );

    let gone = ActorId::new(format!("{CHECK}-gone"));
    let outcomes = d
        .commit_units(vec![Unit::fenced(
            gone.clone(),
            0,
            vec![set_state(&gone, b"x")],
        )])
        .await
        .expect("commit_units failed");
    assert_eq!(
        outcomes,
        vec![UnitOutcome::Fenced { current: None }],
        "an unknown actor"
    );
}

/// A batch that fails leaves neither the snapshot nor the key-value writes of any unit in it.
pub async fn kv_and_snapshot_fail_together(h: &dyn Harness) {
    const CHECK: &str = "kv_and_snapshot_fail_together";
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    create(&*d, &a).await;
    commit(
        &*d,
        vec![set_state(&a.id, b"before"), kv_put(&a.id, b"k", b"before")],
    )
    .await;
    // An id already used by another key fails the whole batch.
    let reused = ActorMeta {
        key: "elsewhere".into(),
        ..a.clone()
    };
    let result = d
        .commit_units(vec![
            Unit::fenced(
                a.id.clone(),
                0,
                vec![
                    set_state(&a.id, b"after"),
                    kv_put(&a.id, b"k", b"after"),
                    kv_put(&a.id, b"new", b"x"),
                    delete_range(&a.id, b"", None),
                ],
            ),
            Unit::unfenced(vec![create_write(&reused)]),
        ])
        .await;
    assert!(
        result.is_err(),
        "a create reusing an id succeeded: {result:?}"
    );
    assert_eq!(state(&*d, &a.id).await, Some(k(b"before")));
    assert_eq!(
        list(&*d, &a.id, &KvRange::all()).await,
        vec![(k(b"k"), k(b"before"))],
        "no key-value write of the failed batch landed"
    );
    assert_eq!(size(&*d, &a.id).await, 7, "nor did its size change");
}
