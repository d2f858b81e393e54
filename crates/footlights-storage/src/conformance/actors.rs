//! Checks of actor metadata: creating, uniqueness, lookups, listing, deleting, generations.

use std::sync::Arc;

use super::Harness;
use super::support::{
    actor, alarm, alarms, bump, commit, create, find, id, keys, kv, kv_put, list_keys, meta, open,
    put_alarm, set_state, state,
};
use crate::{ActorKey, ActorMeta, CreateOutcome};

/// Creating a second actor with a taken name and key writes nothing and returns the metadata of
/// the actor that holds the key, as it is now.
pub async fn create_duplicate_returns_existing(h: &dyn Harness) {
    const CHECK: &str = "create_duplicate_returns_existing";
    let d = open(h).await;
    let first = meta(CHECK, 1, ["room", "general"]);
    let second = meta(CHECK, 2, ["room", "general"]);
    create(&*d, &first).await;

    let outcome = d.create_actor(&second).await.expect("create_actor failed");
    assert_eq!(outcome, CreateOutcome::Exists(first.clone()));
    assert_eq!(
        actor(&*d, &second.id).await,
        None,
        "the duplicate was written"
    );

    let retry = d.create_actor(&first).await.expect("create_actor failed");
    assert_eq!(
        retry,
        CreateOutcome::Exists(first.clone()),
        "retrying a create"
    );

    commit(&*d, vec![bump(&first.id)]).await;
    let outcome = d.create_actor(&second).await.expect("create_actor failed");
    let expected = ActorMeta {
        generation: 1,
        ..first.clone()
    };
    assert_eq!(
        outcome,
        CreateOutcome::Exists(expected),
        "Exists carries the current metadata"
    );
}

/// Keys are unique within a name only.
pub async fn same_key_other_name_is_another_actor(h: &dyn Harness) {
    const CHECK: &str = "same_key_other_name_is_another_actor";
    let d = open(h).await;
    let key = ActorKey::from("shared");
    let a = ActorMeta::new(id(CHECK, 1), format!("{CHECK}_a"), key.clone(), 1);
    let b = ActorMeta::new(id(CHECK, 2), format!("{CHECK}_b"), key.clone(), 2);
    create(&*d, &a).await;
    create(&*d, &b).await;
    assert_eq!(find(&*d, &a.name, &key).await, Some(a.clone()));
    assert_eq!(find(&*d, &b.name, &key).await, Some(b.clone()));
    let listed = d
        .list_actors(&a.name, &ActorKey::default())
        .await
        .expect("list_actors failed");
    assert_eq!(listed, vec![a], "listing one name shows only its actors");
}

/// Many concurrent creates of one name and key, through two separately opened drivers, create
/// exactly one actor, and every loser is told who won.
pub async fn unique_key_under_concurrent_create(h: &dyn Harness) {
    const CHECK: &str = "unique_key_under_concurrent_create";
    const TASKS: u32 = 16;
    let (first, second) = (open(h).await, open(h).await);
    for round in 0..4u32 {
        let key = ActorKey::new(vec!["race".to_owned(), round.to_string()]);
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize));
        let mut tasks = Vec::new();
        for n in 0..TASKS {
            let driver = Arc::clone(if n % 2 == 0 { &first } else { &second });
            let barrier = Arc::clone(&barrier);
            let meta = meta(CHECK, round * 100 + n, key.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let outcome = driver
                    .create_actor(&meta)
                    .await
                    .expect("create_actor failed");
                (meta, outcome)
            }));
        }
        let mut winners = Vec::new();
        let mut told = Vec::new();
        for task in tasks {
            match task.await.expect("a create task panicked") {
                (meta, CreateOutcome::Created) => winners.push(meta),
                (_, CreateOutcome::Exists(existing)) => told.push(existing),
            }
        }
        let [winner] = winners.as_slice() else {
            panic!(
                "round {round}: {} creates succeeded: {winners:?}",
                winners.len()
            );
        };
        assert!(
            told.iter().all(|m| m == winner),
            "round {round}: losers were told {told:?}"
        );
        for driver in [&first, &second] {
            assert_eq!(find(&**driver, CHECK, &key).await.as_ref(), Some(winner));
            let listed = driver
                .list_actors(CHECK, &key)
                .await
                .expect("list_actors failed");
            assert_eq!(listed, vec![winner.clone()], "round {round}");
        }
    }
}

/// Actors are found by id and by name and key, for keys of any shape.
pub async fn find_actor_by_id_and_key(h: &dyn Harness) {
    const CHECK: &str = "find_actor_by_id_and_key";
    let d = open(h).await;
    let shapes: &[&[&str]] = &[
        &[],
        &[""],
        &["", ""],
        &["a", "b"],
        &["a/b"],
        &["a\\"],
        &["a\\/b"],
        &["é", "日本"],
        &["with space", "%2F"],
    ];
    let metas: Vec<ActorMeta> = shapes
        .iter()
        .zip(1..)
        .map(|(key, n)| meta(CHECK, n, ActorKey::from(*key)))
        .collect();
    for m in &metas {
        create(&*d, m).await;
    }
    for m in &metas {
        assert_eq!(actor(&*d, &m.id).await.as_ref(), Some(m), "by id");
        assert_eq!(
            find(&*d, CHECK, &m.key).await.as_ref(),
            Some(m),
            "by key {:?}",
            m.key
        );
    }
    assert_eq!(actor(&*d, &id(CHECK, 999)).await, None, "unknown id");
    assert_eq!(
        find(&*d, CHECK, &ActorKey::from("a")).await,
        None,
        "unknown key"
    );
    assert_eq!(
        find(&*d, CHECK, &ActorKey::from(["a", "b", "c"])).await,
        None,
        "longer key"
    );
    assert_eq!(
        find(&*d, "no_such_name", &ActorKey::from(["a", "b"])).await,
        None,
        "other name"
    );
}

/// Listing a name with the empty prefix returns all its actors, ordered by key part by part.
pub async fn list_by_name_ordered_by_key(h: &dyn Harness) {
    const CHECK: &str = "list_by_name_ordered_by_key";
    let d = open(h).await;
    let unordered: &[&[&str]] = &[
        &["b"],
        &["a", "b"],
        &[],
        &["a"],
        &["ab"],
        &["a", ""],
        &["é"],
        &["Z"],
        &["a", "a", "z"],
        &["a/b"],
        &["a!"],
    ];
    let mut metas: Vec<ActorMeta> = unordered
        .iter()
        .zip(1..)
        .map(|(key, n)| meta(CHECK, n, ActorKey::from(*key)))
        .collect();
    for m in &metas {
        create(&*d, m).await;
    }
    metas.sort_by(|a, b| a.key.cmp(&b.key));
    let listed = d
        .list_actors(CHECK, &ActorKey::default())
        .await
        .expect("list_actors failed");
    assert_eq!(listed, metas);
    let other = d.list_actors("no_such_name", &ActorKey::default()).await;
    assert_eq!(other.expect("list_actors failed"), vec![]);
}

/// A key prefix matches whole parts: `["a"]` is a prefix of `["a", "b"]` but not of `["ab"]`.
pub async fn list_by_key_prefix_matches_whole_parts(h: &dyn Harness) {
    const CHECK: &str = "list_by_key_prefix_matches_whole_parts";
    let d = open(h).await;
    let all: &[&[&str]] = &[
        &["ab"],
        &["a", "b", "c"],
        &["a/b"],
        &["a"],
        &["b", "a"],
        &["a\\"],
        &["a", "b"],
        &["a", ""],
        &["a", "bc"],
    ];
    for (key, n) in all.iter().zip(1..) {
        create(&*d, &meta(CHECK, n, ActorKey::from(*key))).await;
    }
    let cases: &[(&[&str], &[&[&str]])] = &[
        (
            &["a"],
            &[
                &["a"],
                &["a", ""],
                &["a", "b"],
                &["a", "b", "c"],
                &["a", "bc"],
            ],
        ),
        (&["a", "b"], &[&["a", "b"], &["a", "b", "c"]]),
        (&["a", ""], &[&["a", ""]]),
        (&["ab"], &[&["ab"]]),
        (&["a/b"], &[&["a/b"]]),
        (&["a\\"], &[&["a\\"]]),
        (&["b"], &[&["b", "a"]]),
        (&["c"], &[]),
        (&["a", "b", "c", "d"], &[]),
        (&[""], &[]),
    ];
    for (prefix, expected) in cases {
        assert_eq!(
            list_keys(&*d, CHECK, prefix).await,
            keys(expected),
            "prefix {prefix:?}"
        );
    }
}

/// Deleting an actor removes its metadata, state, alarms and map, frees its key, leaves other
/// actors alone, and later writes to it are ignored.
pub async fn delete_actor_removes_everything_and_frees_key(h: &dyn Harness) {
    const CHECK: &str = "delete_actor_removes_everything_and_frees_key";
    let d = open(h).await;
    let a = meta(CHECK, 1, ["k", "1"]);
    let neighbour = meta(CHECK, 2, ["k", "2"]);
    create(&*d, &a).await;
    create(&*d, &neighbour).await;
    for m in [&a, &neighbour] {
        commit(
            &*d,
            vec![
                set_state(&m.id, b"state"),
                put_alarm(&m.id, &alarm("x", 1, b"")),
                kv_put(&m.id, b"k", b"v"),
                bump(&m.id),
            ],
        )
        .await;
    }

    d.delete_actor(&a.id).await.expect("delete_actor failed");
    assert_eq!(actor(&*d, &a.id).await, None);
    assert_eq!(find(&*d, CHECK, &a.key).await, None);
    assert_eq!(
        list_keys(&*d, CHECK, &["k"]).await,
        vec![neighbour.key.clone()]
    );
    assert_eq!(state(&*d, &a.id).await, None);
    assert_eq!(alarms(&*d, &a.id).await, vec![]);
    assert_eq!(kv(&*d, &a.id, b"k").await, None);
    let all = d.all_alarms().await.expect("all_alarms failed");
    assert!(
        all.iter().all(|(id, _)| *id != a.id),
        "a deleted actor's alarm remains"
    );

    commit(
        &*d,
        vec![set_state(&a.id, b"late"), kv_put(&a.id, b"k", b"late")],
    )
    .await;
    assert_eq!(
        state(&*d, &a.id).await,
        None,
        "a write after delete was applied"
    );

    let neighbour_now = ActorMeta {
        generation: 1,
        ..neighbour.clone()
    };
    assert_eq!(actor(&*d, &neighbour.id).await, Some(neighbour_now));
    assert_eq!(state(&*d, &neighbour.id).await, Some(b"state".to_vec()));
    assert_eq!(alarms(&*d, &neighbour.id).await, vec![alarm("x", 1, b"")]);
    assert_eq!(kv(&*d, &neighbour.id, b"k").await, Some(b"v".to_vec()));

    // The key is free for a new actor, which starts empty.
    let successor = meta(CHECK, 3, a.key.clone());
    create(&*d, &successor).await;
    assert_eq!(find(&*d, CHECK, &a.key).await, Some(successor.clone()));
    assert_eq!(state(&*d, &successor.id).await, None);
    // Nothing of the deleted actor survives under its old id either.
    let reborn = meta(CHECK, 1, "elsewhere");
    create(&*d, &reborn).await;
    assert_eq!(actor(&*d, &a.id).await, Some(reborn));
    assert_eq!(state(&*d, &a.id).await, None);
    assert_eq!(alarms(&*d, &a.id).await, vec![]);
    assert_eq!(kv(&*d, &a.id, b"k").await, None);
}

/// `BumpGeneration` adds one to the generation, once per write, and changes nothing else.
pub async fn bump_generation(h: &dyn Harness) {
    const CHECK: &str = "bump_generation";
    let d = open(h).await;
    let a = meta(CHECK, 1, "a");
    let b = ActorMeta {
        generation: 41,
        ..meta(CHECK, 2, "b")
    };
    create(&*d, &a).await;
    create(&*d, &b).await;
    assert_eq!(
        actor(&*d, &b.id).await,
        Some(b.clone()),
        "the initial generation is kept"
    );

    commit(&*d, vec![bump(&a.id)]).await;
    assert_eq!(
        actor(&*d, &a.id).await,
        Some(ActorMeta {
            generation: 1,
            ..a.clone()
        })
    );
    commit(&*d, vec![bump(&a.id), bump(&b.id)]).await;
    commit(&*d, vec![bump(&a.id)]).await;
    let a3 = ActorMeta {
        generation: 3,
        ..a.clone()
    };
    let b42 = ActorMeta {
        generation: 42,
        ..b.clone()
    };
    assert_eq!(actor(&*d, &a.id).await, Some(a3.clone()), "by id");
    assert_eq!(find(&*d, CHECK, &a.key).await, Some(a3.clone()), "by key");
    let listed = d
        .list_actors(CHECK, &ActorKey::default())
        .await
        .expect("list_actors failed");
    assert_eq!(listed, vec![a3.clone(), b42], "listed");

    drop(d);
    let d = open(h).await;
    assert_eq!(actor(&*d, &a.id).await, Some(a3), "after reopening");
}

/// Listing a page at a time, after the last key seen, visits every actor of the name (under
/// the prefix) once and in key order; an `after` below the prefix starts at the prefix.
pub async fn list_actors_in_pages(h: &dyn Harness) {
    const CHECK: &str = "list_actors_in_pages";
    let d = open(h).await;
    let mut metas: Vec<ActorMeta> = (0..25u32)
        .map(|n| {
            let key: &[&str] = if n % 2 == 0 { &["even"] } else { &["odd"] };
            let mut parts: Vec<String> = key.iter().map(|p| (*p).to_owned()).collect();
            parts.push(format!("{n:02}"));
            meta(CHECK, n + 1, ActorKey::new(parts))
        })
        .collect();
    for m in &metas {
        create(&*d, m).await;
    }
    metas.sort_by(|a, b| a.key.cmp(&b.key));
    for (prefix, expected) in [
        (ActorKey::default(), metas.clone()),
        (
            ActorKey::from("odd"),
            metas
                .iter()
                .filter(|m| m.key.parts().first().is_some_and(|p| p == "odd"))
                .cloned()
                .collect(),
        ),
    ] {
        let mut seen = Vec::new();
        let mut after: Option<ActorKey> = None;
        loop {
            let page = d
                .list_actors_page(CHECK, &prefix, after.as_ref(), 4)
                .await
                .expect("list_actors_page failed");
            assert!(page.len() <= 4, "a page over its limit");
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            seen.extend(page);
        }
        assert_eq!(seen, expected, "prefix {prefix:?}");
    }
    let below = ActorKey::from("a");
    let page = d
        .list_actors_page(CHECK, &ActorKey::from("odd"), Some(&below), 100)
        .await
        .expect("list_actors_page failed");
    assert_eq!(
        page.len(),
        12,
        "an `after` below the prefix starts at the prefix"
    );
}
