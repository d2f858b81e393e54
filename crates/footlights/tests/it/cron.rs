//! Listing scheduled calls, retrying failed ones, and repeating jobs (intervals and cron
//! expressions): fired on time, durable, listed with their history.
//!
//! Interval jobs run on the real clock (their due times are wall-clock times; a paused test
//! clock would stretch them), with short intervals and every wait bounded.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use footlights::prelude::*;
use footlights::storage::{Driver, MemoryDriver, Write};
use footlights::{ActorHandle, CronRule, ScheduledCall, Value};

use crate::support::{let_run, settle};

/// How many times `Jobs::flaky` ran, per test (each test uses its own slot).
static FLAKY_RUNS: [AtomicU32; 3] = [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)];

#[derive(Default, Serialize, Deserialize)]
pub struct Jobs {
    ticks: u32,
}

#[footlights::actor]
impl Jobs {
    #[action]
    fn call_later(
        &mut self,
        ctx: &Ctx<Self>,
        secs: u64,
        what: String,
    ) -> Result<String, ActionError> {
        ctx.schedule()
            .after_raw(Duration::from_secs(secs), "noted", vec![Value::from(what)])
    }

    #[action]
    fn noted(&mut self, _what: String) {}

    #[action]
    fn pending(&self, ctx: &Ctx<Self>) -> Vec<(String, String, u32)> {
        let list: Vec<ScheduledCall> = ctx.schedule().list();
        list.into_iter()
            .map(|c| (c.id, c.action, c.failures))
            .collect()
    }

    #[action]
    fn pending_args(&self, ctx: &Ctx<Self>, id: String) -> Option<Vec<Value>> {
        ctx.schedule().get(&id).map(|c| c.args)
    }

    #[action]
    fn cancel(&mut self, ctx: &Ctx<Self>, id: String) -> bool {
        ctx.schedule().cancel(&id)
    }

    /// Fails until it has run `succeed_on` times (0: always fails).
    #[action]
    fn flaky(&mut self, slot: usize, succeed_on: u32) -> Result<(), ActionError> {
        let run = FLAKY_RUNS[slot].fetch_add(1, Ordering::SeqCst) + 1;
        if succeed_on != 0 && run >= succeed_on {
            Ok(())
        } else {
            Err(ActionError::user("not_yet", "try again"))
        }
    }

    #[action]
    fn call_flaky(
        &mut self,
        ctx: &Ctx<Self>,
        slot: usize,
        succeed_on: u32,
    ) -> Result<String, ActionError> {
        ctx.schedule().after_raw(
            Duration::from_secs(1),
            "flaky",
            vec![Value::from(slot as i64), Value::from(i64::from(succeed_on))],
        )
    }

    #[action]
    fn tick(&mut self) {
        self.ticks += 1;
    }

    #[action]
    fn ticks(&self) -> u32 {
        self.ticks
    }

    #[action]
    fn boom(&mut self) -> Result<(), ActionError> {
        Err(ActionError::user("boom", "the job failed"))
    }

    #[action]
    fn every(
        &mut self,
        ctx: &Ctx<Self>,
        name: String,
        ms: u64,
        action: String,
    ) -> Result<(), ActionError> {
        ctx.cron().set_raw(
            &name,
            CronRule::Every(Duration::from_millis(ms)),
            &action,
            vec![],
        )
    }

    #[action]
    fn cron(
        &mut self,
        ctx: &Ctx<Self>,
        name: String,
        expression: String,
        zone: String,
    ) -> Result<(), ActionError> {
        ctx.cron().set_raw(
            &name,
            CronRule::Cron {
                expression,
                time_zone: zone,
            },
            "tick",
            vec![],
        )
    }

    /// The job's name, next fire (ms since the epoch) and history as (due, error) pairs.
    #[action]
    fn job(&self, ctx: &Ctx<Self>, name: String) -> Option<(String, u64, Vec<Option<String>>)> {
        let job = ctx.cron().get(&name)?;
        let next = job
            .next
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        Some((
            job.name,
            next,
            job.history.into_iter().map(|f| f.error).collect(),
        ))
    }

    #[action]
    fn job_names(&self, ctx: &Ctx<Self>) -> Vec<String> {
        ctx.cron().list().into_iter().map(|j| j.name).collect()
    }

    #[action]
    fn delete_job(&mut self, ctx: &Ctx<Self>, name: String) -> bool {
        ctx.cron().delete(&name)
    }
}

async fn registry(driver: MemoryDriver) -> Registry {
    Registry::builder()
        .actor::<Jobs>()
        .driver(driver)
        .start()
        .await
        .unwrap()
}

/// Waits (real time, at most ten seconds) until the actor has ticked `n` times.
async fn until_ticks(actor: &ActorHandle<Jobs>, n: u32) -> u32 {
    for _ in 0..1000 {
        let ticks = actor.ticks().await.unwrap();
        if ticks >= n {
            return ticks;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} ticks never came");
}

#[tokio::test(start_paused = true)]
async fn pending_calls_are_listed_with_their_arguments_until_they_fire_or_are_cancelled() {
    let registry = registry(MemoryDriver::new()).await;
    let a = registry.client().get_or_create::<Jobs>(["list"]);
    let late = a.call_later(60, "late".into()).await.unwrap();
    let soon = a.call_later(10, "soon".into()).await.unwrap();
    let listed = a.pending().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|(id, ..)| id.as_str()).collect();
    assert_eq!(ids, [soon.as_str(), late.as_str()], "soonest first");
    assert!(
        listed
            .iter()
            .all(|(_, action, failures)| action == "noted" && *failures == 0)
    );
    assert_eq!(
        a.pending_args(late.clone()).await.unwrap(),
        Some(vec![Value::from("late")])
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    settle("the first call to fire", || async {
        a.pending().await.unwrap().len() == 1
    })
    .await;
    assert!(a.cancel(late.clone()).await.unwrap());
    assert!(!a.cancel(late.clone()).await.unwrap(), "cancelled twice");
    assert!(a.pending().await.unwrap().is_empty());
    assert_eq!(a.pending_args(late).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_failing_call_is_retried_with_backoff_then_dropped() {
    let registry = registry(MemoryDriver::new()).await;
    let a = registry.client().get_or_create::<Jobs>(["retry"]);
    let id = a.call_flaky(0, 0).await.unwrap();
    let runs = || FLAKY_RUNS[0].load(Ordering::SeqCst);
    // First try after 1 s; retries after 1, 2, 4, 8 and 16 s.
    tokio::time::advance(Duration::from_millis(1001)).await;
    settle("the first try", || async { runs() == 1 }).await;
    let listed = a.pending().await.unwrap();
    assert_eq!(
        listed,
        [(id.clone(), "flaky".to_owned(), 1)],
        "kept with its id"
    );
    tokio::time::advance(Duration::from_millis(999)).await;
    let_run().await;
    assert_eq!(runs(), 1, "retried before its backoff");
    for (n, wait) in [(2, 2), (3, 2000), (4, 4000), (5, 8000), (6, 16000)] {
        tokio::time::advance(Duration::from_millis(wait)).await;
        settle(&format!("try {n}"), || async { runs() == n }).await;
    }
    settle("the call to be dropped", || async {
        a.pending().await.unwrap().is_empty()
    })
    .await;
    tokio::time::advance(Duration::from_secs(600)).await;
    let_run().await;
    assert_eq!(runs(), 6, "tried more than 1 + 5 times");
}

#[tokio::test(start_paused = true)]
async fn a_call_that_succeeds_on_a_retry_is_done() {
    let registry = registry(MemoryDriver::new()).await;
    let a = registry.client().get_or_create::<Jobs>(["heal"]);
    a.call_flaky(1, 3).await.unwrap();
    let runs = || FLAKY_RUNS[1].load(Ordering::SeqCst);
    tokio::time::advance(Duration::from_millis(1001)).await;
    settle("the first try", || async { runs() == 1 }).await;
    tokio::time::advance(Duration::from_millis(1001)).await;
    settle("the second try", || async { runs() == 2 }).await;
    tokio::time::advance(Duration::from_millis(2001)).await;
    settle("the third try", || async { runs() == 3 }).await;
    settle("the call to be done", || async {
        a.pending().await.unwrap().is_empty()
    })
    .await;
    tokio::time::advance(Duration::from_secs(600)).await;
    let_run().await;
    assert_eq!(runs(), 3);
}

#[tokio::test]
async fn an_interval_job_fires_repeatedly_keeps_its_history_and_stops_when_deleted() {
    let registry = registry(MemoryDriver::new()).await;
    let a = registry.client().get_or_create::<Jobs>(["every"]);
    a.every("tick".into(), 30, "tick".into()).await.unwrap();
    // Setting it again unchanged (as a wake hook would) neither doubles nor delays it.
    a.every("tick".into(), 30, "tick".into()).await.unwrap();
    assert_eq!(a.job_names().await.unwrap(), ["tick"]);
    until_ticks(&a, 3).await;
    let (name, next, history) = a.job("tick".into()).await.unwrap().unwrap();
    assert_eq!(name, "tick");
    assert!(history.len() >= 3 && history.iter().all(Option::is_none));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(next + 1000 > now, "the next fire is not in the past");
    assert!(a.delete_job("tick".into()).await.unwrap());
    assert!(!a.delete_job("tick".into()).await.unwrap());
    let stopped = a.ticks().await.unwrap();
    // Three more intervals pass: nothing fires.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.ticks().await.unwrap(), stopped);
    assert!(a.job_names().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_job_keeps_firing_and_records_its_errors() {
    let registry = registry(MemoryDriver::new()).await;
    let a = registry.client().get_or_create::<Jobs>(["boom"]);
    a.every("boom".into(), 20, "boom".into()).await.unwrap();
    for _ in 0..1000 {
        let (_, _, history) = a.job("boom".into()).await.unwrap().unwrap();
        if history.len() >= 2 && history.iter().all(|e| e.as_deref() == Some("user.boom")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("two failed fires were never recorded");
}

#[tokio::test]
async fn bad_rules_and_names_are_coded_errors() {
    let registry = registry(MemoryDriver::new()).await;
    let a = registry.client().get_or_create::<Jobs>(["bad"]);
    let e = a
        .cron("nightly".into(), "61 * * * *".into(), "UTC".into())
        .await
        .unwrap_err();
    assert_eq!((e.group(), e.code()), ("schedule", "invalid_rule"));
    let e = a
        .cron("nightly".into(), "0 3 * * *".into(), "Nowhere/Town".into())
        .await
        .unwrap_err();
    assert_eq!((e.group(), e.code()), ("schedule", "invalid_rule"));
    let e = a.every("".into(), 10, "tick".into()).await.unwrap_err();
    assert_eq!((e.group(), e.code()), ("schedule", "invalid_name"));
    let e = a.every("zero".into(), 0, "tick".into()).await.unwrap_err();
    assert_eq!((e.group(), e.code()), ("schedule", "invalid_rule"));
    assert!(a.job_names().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_cron_job_is_due_at_the_next_match_in_its_time_zone() {
    let registry = registry(MemoryDriver::new()).await;
    let a = registry.client().get_or_create::<Jobs>(["cron"]);
    a.cron("noon".into(), "0 12 * * *".into(), "Asia/Tokyo".into())
        .await
        .unwrap();
    let (_, next, _) = a.job("noon".into()).await.unwrap().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(next > now && next <= now + 86_400_000, "within a day");
    // 12:00 in Tokyo (UTC+9, no daylight saving) is 03:00 UTC.
    assert_eq!(next % 86_400_000, 3 * 3_600_000);
    // A job on seconds fires (real time, at most a few seconds).
    a.cron("second".into(), "* * * * * *".into(), "UTC".into())
        .await
        .unwrap();
    until_ticks(&a, 2).await;
}

#[tokio::test]
async fn a_job_missed_while_the_server_was_down_fires_once_on_start() {
    let driver = MemoryDriver::new();
    let first = registry(driver.clone()).await;
    let a = first.client().get_or_create::<Jobs>(["missed"]);
    a.every("hourly".into(), 3_600_000, "tick".into())
        .await
        .unwrap();
    let id = a.resolve().await.unwrap();
    first.shutdown().await;
    drop(first);
    // The server was down for three hours: move the job's due time back.
    let mut alarms = driver.load_alarms(&id).await.unwrap();
    assert_eq!(alarms.len(), 1);
    let mut alarm = alarms.remove(0);
    alarm.at_ms -= 3 * 3_600_000;
    let due = alarm.at_ms;
    driver
        .commit(vec![Write::PutAlarm {
            actor: id.clone(),
            alarm,
        }])
        .await
        .unwrap();

    let second = registry(driver).await;
    let a = second.client().get_or_create::<Jobs>(["missed"]);
    assert_eq!(until_ticks(&a, 1).await, 1);
    let (_, next, history) = a.job("hourly".into()).await.unwrap().unwrap();
    assert_eq!(history.len(), 1, "fired once, not once per missed hour");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(next > now, "the next fire is ahead");
    assert_eq!(
        (next as i64 - due) % 3_600_000,
        0,
        "on the job's hourly grid"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(a.ticks().await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_interval_job_keeps_its_pace_on_a_paused_test_clock() {
    let registry = registry(MemoryDriver::new()).await;
    let a = registry.client().get_or_create::<Jobs>(["paused"]);
    a.every("tick".into(), 5000, "tick".into()).await.unwrap();
    for n in 1..=4 {
        tokio::time::advance(Duration::from_millis(4990)).await;
        let_run().await;
        assert_eq!(a.ticks().await.unwrap(), n - 1, "fired early");
        tokio::time::advance(Duration::from_millis(10)).await;
        settle(&format!("tick {n}"), || async {
            a.ticks().await.unwrap() == n
        })
        .await;
    }
}
