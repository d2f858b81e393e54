//! Checks of what outlives a driver: reopening after a crash, the recorded format version.

use super::Harness;
use super::support::{
    actor, alarm, alarms, bump, commit, create, find, kv, kv_put, meta, open, put_alarm, set_state,
    state,
};
use crate::{ActorMeta, FORMAT_VERSION, StorageError};

/// Everything committed before every driver is dropped without being closed (as a crash leaves
/// it) is there after opening again; and the reopened store takes new writes.
pub async fn reopen_after_crash(h: &dyn Harness) {
    const CHECK: &str = "reopen_after_crash";
    let a = meta(CHECK, 1, ["crash", "a"]);
    let gone = meta(CHECK, 2, ["crash", "gone"]);
    let x = alarm("x", 7, b"args");
    {
        let d = open(h).await;
        create(&*d, &a).await;
        create(&*d, &gone).await;
        commit(
            &*d,
            vec![
                set_state(&a.id, b"state"),
                put_alarm(&a.id, &x),
                kv_put(&a.id, b"k", b"v"),
                bump(&a.id),
                set_state(&gone.id, b"doomed"),
            ],
        )
        .await;
        d.delete_actor(&gone.id).await.expect("delete_actor failed");
        // `d` is dropped here without any close call.
    }
    let d = open(h).await;
    let a1 = ActorMeta {
        generation: 1,
        ..a.clone()
    };
    assert_eq!(actor(&*d, &a.id).await, Some(a1.clone()));
    assert_eq!(find(&*d, CHECK, &a.key).await, Some(a1));
    assert_eq!(state(&*d, &a.id).await, Some(b"state".to_vec()));
    assert_eq!(alarms(&*d, &a.id).await, vec![x.clone()]);
    assert_eq!(kv(&*d, &a.id, b"k").await, Some(b"v".to_vec()));
    assert_eq!(actor(&*d, &gone.id).await, None, "a delete was lost");
    assert_eq!(state(&*d, &gone.id).await, None, "a delete was lost");

    commit(&*d, vec![set_state(&a.id, b"after"), bump(&a.id)]).await;
    drop(d);
    let d = open(h).await;
    assert_eq!(
        state(&*d, &a.id).await,
        Some(b"after".to_vec()),
        "second reopen"
    );
    assert_eq!(
        actor(&*d, &a.id).await.map(|m| m.generation),
        Some(2),
        "second reopen"
    );
    assert_eq!(alarms(&*d, &a.id).await, vec![x], "second reopen");
}

/// The store records [`FORMAT_VERSION`]; a store stamped with a newer version is refused with
/// [`StorageError::UnsupportedFormat`] and left as it was; the current version opens.
pub async fn format_version_recorded_and_checked(h: &dyn Harness) {
    const CHECK: &str = "format_version_recorded_and_checked";
    let a = meta(CHECK, 1, "a");
    {
        let d = open(h).await;
        create(&*d, &a).await;
        commit(&*d, vec![set_state(&a.id, b"kept")]).await;
    }
    assert_eq!(
        h.format_version().await,
        Some(FORMAT_VERSION),
        "the version was not recorded"
    );

    let newer = FORMAT_VERSION + 1;
    h.set_format_version(newer).await;
    match h.open().await {
        Err(StorageError::UnsupportedFormat { found, supported }) => {
            assert_eq!((found, supported), (newer, FORMAT_VERSION));
        }
        other => panic!("opening a store of version {newer} gave {other:?}"),
    }
    assert_eq!(
        h.format_version().await,
        Some(newer),
        "a refused open changed the version"
    );

    h.set_format_version(FORMAT_VERSION).await;
    let d = open(h).await;
    assert_eq!(state(&*d, &a.id).await, Some(b"kept".to_vec()));
}
