//! Helpers of the checks. Panicking is how a check fails, so they unwrap with a message saying
//! what failed.

use std::sync::Arc;

use super::Harness;
use crate::{ActorId, ActorKey, ActorMeta, Alarm, CreateOutcome, Driver, Write};

pub(super) async fn open(h: &dyn Harness) -> Arc<dyn Driver> {
    match h.open().await {
        Ok(driver) => driver,
        Err(e) => panic!("opening the store failed: {e:?}"),
    }
}

/// Metadata of actor number `n` of a check: its name is the check's, its id unique to the check.
pub(super) fn meta(check: &str, n: u32, key: impl Into<ActorKey>) -> ActorMeta {
    ActorMeta::new(
        id(check, n),
        check,
        key.into(),
        1_700_000_000_000 + i64::from(n),
    )
}

pub(super) fn id(check: &str, n: u32) -> ActorId {
    ActorId::new(format!("{check}-{n}"))
}

pub(super) async fn create(d: &dyn Driver, meta: &ActorMeta) {
    let outcome = d.create_actor(meta).await.expect("create_actor failed");
    assert_eq!(outcome, CreateOutcome::Created, "creating {meta:?}");
}

pub(super) async fn commit(d: &dyn Driver, batch: Vec<Write>) {
    d.commit(batch).await.expect("commit failed");
}

pub(super) async fn state(d: &dyn Driver, id: &ActorId) -> Option<Vec<u8>> {
    d.load_state(id).await.expect("load_state failed")
}

pub(super) async fn alarms(d: &dyn Driver, id: &ActorId) -> Vec<Alarm> {
    d.load_alarms(id).await.expect("load_alarms failed")
}

pub(super) async fn kv(d: &dyn Driver, id: &ActorId, key: &[u8]) -> Option<Vec<u8>> {
    d.kv_get(id, key).await.expect("kv_get failed")
}

pub(super) async fn actor(d: &dyn Driver, id: &ActorId) -> Option<ActorMeta> {
    d.actor(id).await.expect("actor failed")
}

pub(super) async fn find(d: &dyn Driver, name: &str, key: &ActorKey) -> Option<ActorMeta> {
    d.find_actor(name, key).await.expect("find_actor failed")
}

pub(super) async fn list_keys(d: &dyn Driver, name: &str, prefix: &[&str]) -> Vec<ActorKey> {
    d.list_actors(name, &ActorKey::from(prefix))
        .await
        .expect("list_actors failed")
        .into_iter()
        .map(|m| m.key)
        .collect()
}

pub(super) fn keys(keys: &[&[&str]]) -> Vec<ActorKey> {
    keys.iter().map(|k| ActorKey::from(*k)).collect()
}

pub(super) fn alarm(id: &str, at_ms: i64, args: &[u8]) -> Alarm {
    Alarm {
        id: id.to_owned(),
        at_ms,
        action: format!("fire_{id}"),
        args: args.to_vec(),
    }
}

pub(super) fn set_state(actor: &ActorId, bytes: &[u8]) -> Write {
    Write::State {
        actor: actor.clone(),
        bytes: bytes.to_vec(),
    }
}

pub(super) fn put_alarm(actor: &ActorId, alarm: &Alarm) -> Write {
    Write::PutAlarm {
        actor: actor.clone(),
        alarm: alarm.clone(),
    }
}

pub(super) fn delete_alarm(actor: &ActorId, alarm_id: &str) -> Write {
    Write::DeleteAlarm {
        actor: actor.clone(),
        alarm_id: alarm_id.to_owned(),
    }
}

pub(super) fn kv_put(actor: &ActorId, key: &[u8], value: &[u8]) -> Write {
    Write::KvPut {
        actor: actor.clone(),
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

pub(super) fn kv_delete(actor: &ActorId, key: &[u8]) -> Write {
    Write::KvDelete {
        actor: actor.clone(),
        key: key.to_vec(),
    }
}

pub(super) fn bump(actor: &ActorId) -> Write {
    Write::BumpGeneration {
        actor: actor.clone(),
    }
}
