//! `ctx.schedule()` and `ctx.cron()`: calls an actor makes to itself later, once or on a
//! repeating rule.
//!
//! Both are stored as alarms with the state, in the same commit as the message that made
//! them, so a call scheduled by an action whose reply went out is never lost; the registry's
//! clock wakes a sleeping actor when one is due, and a server that was down fires what fell
//! due meanwhile as soon as it starts again.
//!
//! # Failures
//! A scheduled call ([`Schedule`]) whose action fails is tried again after 1 s, then 2 s, 4 s,
//! … (at most 60 s apart), up to 5 more times, keeping its id; then it is logged at WARN and
//! dropped. Errors that would repeat (`actor.action_not_found`, `actor.invalid_request`) are
//! not retried. A repeating job ([`CronJobs`]) is not retried: its next fire is its retry, and
//! each fire's outcome is kept in its [history](CronJob::history).
//!
//! # Missed fires
//! A repeating job that fell due while its server was down fires once when the server is
//! back (however many fires it missed), then keeps to its rule: an interval keeps its phase,
//! a cron expression fires at its next match.

use std::time::{Duration, SystemTime};

use footlights_protocol::{Action, ActionError, Value};
use footlights_storage::Alarm;

use crate::actor::Actor;
use crate::alarm::{AlarmData, Fired, Repeat, Rule, now_ms};
use crate::ctx::Ctx;

/// The longest name of a repeating job, in bytes.
pub const MAX_JOB_NAME_BYTES: usize = 256;

impl<A: Actor> Ctx<A> {
    /// One-off calls this actor makes to itself later: stored durably, fired after a sleep or
    /// a restart, listed and cancelled by id. See [`Schedule`].
    pub fn schedule(&self) -> Schedule<'_, A> {
        Schedule { ctx: self }
    }

    /// Repeating jobs of this actor, by name: a cron expression in a time zone, or a fixed
    /// interval. See [`CronJobs`].
    pub fn cron(&self) -> CronJobs<'_, A> {
        CronJobs { ctx: self }
    }
}

fn to_time(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Schedules one-off actions on an actor. From [`Ctx::schedule`].
///
/// ```no_run
/// # use footlights_core::{Actor, Ctx, ActionError};
/// # use std::time::Duration;
/// # fn f<A: Actor>(ctx: &Ctx<A>) -> Result<(), ActionError> {
/// let id = ctx.schedule().after_raw(Duration::from_secs(30), "expire", vec![])?;
/// assert_eq!(ctx.schedule().get(&id).unwrap().action, "expire");
/// ctx.schedule().cancel(&id);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Schedule<'a, A: Actor> {
    ctx: &'a Ctx<A>,
}

/// A pending one-off call, from [`Schedule::get`] or [`Schedule::list`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScheduledCall {
    /// Its id, as [`Schedule::after`] returned it.
    pub id: String,
    /// When it is due (for a call being retried: when the next try is due).
    pub at: SystemTime,
    /// The action it calls.
    pub action: String,
    /// The action's arguments.
    pub args: Vec<Value>,
    /// How many times it has failed so far.
    pub failures: u32,
}

impl<A: Actor> Schedule<'_, A> {
    /// Calls the action `msg` after `delay`. Returns the call's id.
    ///
    /// # Errors
    /// When the arguments do not serialize.
    pub fn after<M: Action>(&self, delay: Duration, msg: M) -> Result<String, ActionError> {
        self.after_raw(delay, M::NAME, msg.into_args()?)
    }

    /// Calls the action `msg` at `when` (at once if it is past). Returns the call's id.
    ///
    /// # Errors
    /// When the arguments do not serialize.
    pub fn at<M: Action>(&self, when: SystemTime, msg: M) -> Result<String, ActionError> {
        let delay = when.duration_since(SystemTime::now()).unwrap_or_default();
        self.after_raw(delay, M::NAME, msg.into_args()?)
    }

    /// Calls an action by name with raw arguments after `delay`. Returns the call's id.
    ///
    /// # Errors
    /// When the arguments do not serialize.
    pub fn after_raw(
        &self,
        delay: Duration,
        action: &str,
        args: Vec<Value>,
    ) -> Result<String, ActionError> {
        let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        let alarm = Alarm {
            id: new_id(),
            at_ms: now_ms().saturating_add(delay_ms),
            action: action.to_owned(),
            args: AlarmData::call(args).encode()?,
        };
        let id = alarm.id.clone();
        self.ctx.shared.arm_alarm(alarm, 0);
        Ok(id)
    }

    /// Cancels a scheduled call. Returns whether it was still pending. Repeating jobs are not
    /// touched: delete those with [`CronJobs::delete`].
    pub fn cancel(&self, id: &str) -> bool {
        if self.get(id).is_none() {
            return false;
        }
        self.ctx.shared.disarm_alarm(id).is_some()
    }

    /// The pending call with this id.
    pub fn get(&self, id: &str) -> Option<ScheduledCall> {
        let alarm = self.ctx.shared.alarms().get(id).cloned()?;
        one_off(&alarm)
    }

    /// Every pending call, soonest first.
    pub fn list(&self) -> Vec<ScheduledCall> {
        let alarms: Vec<Alarm> = self.ctx.shared.alarms().values().cloned().collect();
        let mut calls: Vec<ScheduledCall> = alarms.iter().filter_map(one_off).collect();
        calls.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        calls
    }
}

/// The alarm as a one-off call; `None` for a repeating job's.
fn one_off(alarm: &Alarm) -> Option<ScheduledCall> {
    let data = AlarmData::decode(&alarm.args).ok()?;
    if data.repeat.is_some() {
        return None;
    }
    Some(ScheduledCall {
        id: alarm.id.clone(),
        at: to_time(alarm.at_ms),
        action: alarm.action.clone(),
        args: data.args,
        failures: data.attempt,
    })
}

/// When a repeating job fires.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CronRule {
    /// When a cron expression matches, read in a time zone.
    Cron {
        /// Five fields (minute hour day-of-month month day-of-week), or six with seconds
        /// first; names (`MON`, `JAN`), ranges, steps, `L`, `W`, `#` and the `@daily`-style
        /// nicknames are accepted.
        expression: String,
        /// An IANA time zone name such as `Europe/Paris` or `UTC`: the expression is read in
        /// local time there, daylight saving included.
        time_zone: String,
    },
    /// At a fixed interval from when the job was set.
    Every(Duration),
}

/// A repeating job, from [`CronJobs::get`] or [`CronJobs::list`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CronJob {
    /// Its name, unique within the actor.
    pub name: String,
    /// When it fires.
    pub rule: CronRule,
    /// The action it calls.
    pub action: String,
    /// The action's arguments.
    pub args: Vec<Value>,
    /// When it fires next.
    pub next: SystemTime,
    /// Its most recent fires (at most 16), oldest first.
    pub history: Vec<CronFire>,
}

/// One fire of a repeating job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CronFire {
    /// When it was due.
    pub due: SystemTime,
    /// When it ran.
    pub ran: SystemTime,
    /// The error's `group.code` when the action failed.
    pub error: Option<String>,
}

/// Repeating jobs of an actor, by name. From [`Ctx::cron`].
///
/// Setting a job that exists with the same rule, action and arguments changes nothing, so a
/// wake hook may set its jobs every time; setting it with anything different replaces it
/// (its history kept).
///
/// ```no_run
/// # use footlights_core::{Actor, Ctx, ActionError, CronRule};
/// # use std::time::Duration;
/// # fn f<A: Actor>(ctx: &Ctx<A>) -> Result<(), ActionError> {
/// // Every day at 03:00 in Paris.
/// ctx.cron().set_raw("nightly", CronRule::Cron {
///     expression: "0 3 * * *".into(),
///     time_zone: "Europe/Paris".into(),
/// }, "compact", vec![])?;
/// // Every 5 seconds.
/// ctx.cron().set_raw("tick", CronRule::Every(Duration::from_secs(5)), "tick", vec![])?;
/// assert_eq!(ctx.cron().list().len(), 2);
/// ctx.cron().delete("tick");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CronJobs<'a, A: Actor> {
    ctx: &'a Ctx<A>,
}

impl<A: Actor> CronJobs<'_, A> {
    /// Calls `msg` whenever `expression` matches in `time_zone` (an IANA name, or `UTC`).
    ///
    /// # Errors
    /// `schedule.invalid_rule` for an expression that does not parse or an unknown time
    /// zone; `schedule.invalid_name` for an empty name or one over [`MAX_JOB_NAME_BYTES`];
    /// arguments that do not serialize.
    pub fn set<M: Action>(
        &self,
        name: &str,
        expression: &str,
        time_zone: &str,
        msg: M,
    ) -> Result<(), ActionError> {
        let rule = CronRule::Cron {
            expression: expression.to_owned(),
            time_zone: time_zone.to_owned(),
        };
        self.set_raw(name, rule, M::NAME, msg.into_args()?)
    }

    /// Calls `msg` every `interval`, the first time one interval from now.
    ///
    /// # Errors
    /// `schedule.invalid_rule` for a zero interval; the name and argument errors of
    /// [`set`](Self::set).
    pub fn every<M: Action>(
        &self,
        name: &str,
        interval: Duration,
        msg: M,
    ) -> Result<(), ActionError> {
        self.set_raw(name, CronRule::Every(interval), M::NAME, msg.into_args()?)
    }

    /// Sets job `name` to call an action by name with raw arguments on `rule`.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    pub fn set_raw(
        &self,
        name: &str,
        rule: CronRule,
        action: &str,
        args: Vec<Value>,
    ) -> Result<(), ActionError> {
        if name.is_empty() || name.len() > MAX_JOB_NAME_BYTES {
            return Err(ActionError::new(
                "schedule",
                "invalid_name",
                format!("a job name is 1 to {MAX_JOB_NAME_BYTES} bytes"),
            ));
        }
        let rule = match rule {
            CronRule::Cron {
                expression,
                time_zone,
            } => Rule::Cron {
                expression,
                time_zone,
            },
            CronRule::Every(interval) => Rule::Every {
                ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            },
        };
        rule.check()?;
        let mut history = Default::default();
        if let Some((alarm, old_args, repeat)) = self.find(name) {
            if repeat.rule == rule && alarm.action == action && old_args == args {
                return Ok(());
            }
            history = repeat.history;
            self.ctx.shared.disarm_alarm(&alarm.id);
        }
        let now = now_ms();
        let at_ms = rule.next_after(now, now)?;
        let data = AlarmData {
            args,
            attempt: 0,
            repeat: Some(Repeat {
                name: name.to_owned(),
                rule,
                history,
            }),
        };
        self.ctx.shared.arm_alarm(
            Alarm {
                id: new_id(),
                at_ms,
                action: action.to_owned(),
                args: data.encode()?,
            },
            now,
        );
        Ok(())
    }

    /// Job `name`, if set.
    pub fn get(&self, name: &str) -> Option<CronJob> {
        let (alarm, args, repeat) = self.find(name)?;
        Some(job(&alarm, args, repeat))
    }

    /// Every job, by name.
    pub fn list(&self) -> Vec<CronJob> {
        let mut jobs: Vec<CronJob> = self
            .jobs()
            .into_iter()
            .map(|(alarm, args, repeat)| job(&alarm, args, repeat))
            .collect();
        jobs.sort_by(|a, b| a.name.cmp(&b.name));
        jobs
    }

    /// Deletes job `name`. Returns whether it existed.
    pub fn delete(&self, name: &str) -> bool {
        match self.find(name) {
            Some((alarm, ..)) => self.ctx.shared.disarm_alarm(&alarm.id).is_some(),
            None => false,
        }
    }

    /// Every job: its alarm, arguments and rule.
    fn jobs(&self) -> Vec<(Alarm, Vec<Value>, Repeat)> {
        let alarms: Vec<Alarm> = self.ctx.shared.alarms().values().cloned().collect();
        alarms
            .into_iter()
            .filter_map(|alarm| {
                let data = AlarmData::decode(&alarm.args).ok()?;
                let repeat = data.repeat?;
                Some((alarm, data.args, repeat))
            })
            .collect()
    }

    fn find(&self, name: &str) -> Option<(Alarm, Vec<Value>, Repeat)> {
        self.jobs().into_iter().find(|(.., r)| r.name == name)
    }
}

fn job(alarm: &Alarm, args: Vec<Value>, repeat: Repeat) -> CronJob {
    let rule = match repeat.rule {
        Rule::Cron {
            expression,
            time_zone,
        } => CronRule::Cron {
            expression,
            time_zone,
        },
        Rule::Every { ms } => CronRule::Every(Duration::from_millis(ms)),
    };
    CronJob {
        name: repeat.name,
        rule,
        action: alarm.action.clone(),
        args,
        next: to_time(alarm.at_ms),
        history: repeat.history.into_iter().map(fire).collect(),
    }
}

fn fire(f: Fired) -> CronFire {
    CronFire {
        due: to_time(f.due_ms),
        ran: to_time(f.ran_ms),
        error: f.error,
    }
}
