//! What a stored alarm carries besides its time and action, and the rules that decide when it
//! fires next: retries of failed scheduled calls, and repeating jobs (cron expressions and
//! fixed intervals).
//!
//! A storage driver keeps each alarm as an id, a due time, an action name and an opaque blob.
//! The blob is ours: a format byte, then CBOR. Format 1 (the first) holds only the action's
//! arguments; format 2 holds an [`AlarmData`]: the arguments, how many times the call has
//! failed so far, and, for a repeating job, its rule and the history of its recent fires.
//! Both are read; only format 2 is written.
//!
//! This module knows nothing of actors; the schedule API (`crate::schedule`) and the
//! instance's alarm handling use it.

use std::collections::VecDeque;
use std::str::FromStr as _;
use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use footlights_protocol::{ActionError, Value};
use serde::{Deserialize, Serialize};

/// Format byte of a blob that holds only the arguments.
const ARGS_ONLY: u8 = 1;
/// Format byte of a blob that holds an [`AlarmData`].
const DATA_V2: u8 = 2;

/// How many times a failed scheduled call is tried again before it is dropped.
pub(crate) const MAX_RETRIES: u32 = 5;
/// The wait before the first retry; each next wait doubles, up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two tries of a failed scheduled call.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How many fires of a repeating job its history keeps (the most recent).
pub(crate) const HISTORY: usize = 16;

/// Everything an alarm's blob holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AlarmData {
    /// The action's arguments.
    pub(crate) args: Vec<Value>,
    /// How many times this call has failed (0 for a first try).
    #[serde(default)]
    pub(crate) attempt: u32,
    /// Set for a repeating job.
    #[serde(default)]
    pub(crate) repeat: Option<Repeat>,
}

/// A repeating job: its name, rule and recent fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Repeat {
    /// The name the actor gave the job; unique per actor.
    pub(crate) name: String,
    /// When it fires.
    pub(crate) rule: Rule,
    /// The most recent fires, oldest first, at most [`HISTORY`].
    #[serde(default)]
    pub(crate) history: VecDeque<Fired>,
}

/// When a repeating job fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Rule {
    /// At the times a cron expression matches, read in a time zone (an IANA name).
    Cron {
        /// The expression (five fields, or six with seconds first).
        expression: String,
        /// The IANA time zone the expression is read in.
        time_zone: String,
    },
    /// Every `ms` milliseconds.
    Every {
        /// The interval in milliseconds (at least 1).
        ms: u64,
    },
}

/// One fire of a repeating job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fired {
    /// When it was due, in milliseconds since the Unix epoch.
    pub(crate) due_ms: i64,
    /// When it ran.
    pub(crate) ran_ms: i64,
    /// The error's `group.code` if the call failed.
    pub(crate) error: Option<String>,
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl AlarmData {
    /// A one-off call with these arguments.
    pub(crate) fn call(args: Vec<Value>) -> Self {
        AlarmData {
            args,
            attempt: 0,
            repeat: None,
        }
    }

    /// The blob to store.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, ActionError> {
        let mut out = vec![DATA_V2];
        ciborium::into_writer(self, &mut out)
            .map_err(|e| ActionError::internal(format!("alarm did not serialize: {e}")))?;
        Ok(out)
    }

    /// Reads a stored blob of either format.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, ActionError> {
        let unreadable = |e: ciborium::de::Error<std::io::Error>| {
            ActionError::internal(format!("stored alarm did not load: {e}"))
        };
        match bytes.split_first() {
            Some((&ARGS_ONLY, body)) => Ok(AlarmData::call(
                ciborium::from_reader(body).map_err(unreadable)?,
            )),
            Some((&DATA_V2, body)) => ciborium::from_reader(body).map_err(unreadable),
            Some((v, _)) => Err(ActionError::internal(format!("unknown alarm format {v}"))),
            None => Err(ActionError::internal("empty alarm")),
        }
    }
}

/// The wait before try number `attempt + 1` of a call that failed `attempt` times (1 s, 2 s,
/// 4 s, … up to [`MAX_BACKOFF`]).
pub(crate) fn backoff(attempt: u32) -> Duration {
    let doubled = FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF)
}

/// Whether a failed scheduled call may succeed if tried again: not when the action does not
/// exist or refuses its arguments.
pub(crate) fn worth_retrying(e: &ActionError) -> bool {
    !matches!(
        (e.group(), e.code()),
        ("actor", "action_not_found") | ("actor", "invalid_request")
    )
}

fn bad_rule(message: String) -> ActionError {
    ActionError::new("schedule", "invalid_rule", message)
}

impl Rule {
    /// Checks the rule: the expression parses, the time zone is known, the interval is not 0.
    ///
    /// # Errors
    /// `schedule.invalid_rule`, saying what is wrong.
    pub(crate) fn check(&self) -> Result<(), ActionError> {
        match self {
            Rule::Cron {
                expression,
                time_zone,
            } => {
                croner::Cron::from_str(expression)
                    .map_err(|e| bad_rule(format!("cron expression {expression:?}: {e}")))?;
                time_zone
                    .parse::<chrono_tz::Tz>()
                    .map_err(|_| bad_rule(format!("unknown time zone {time_zone:?}")))?;
                Ok(())
            }
            Rule::Every { ms: 0 } => Err(bad_rule("an interval of 0".to_owned())),
            Rule::Every { .. } => Ok(()),
        }
    }

    /// The first time the rule fires strictly after both `due_ms` (the fire being handled,
    /// or the time the job was set) and `after_ms` (now), in milliseconds since the Unix
    /// epoch: a clock that fires a little early does not fire the same time twice. For an
    /// interval, fires keep the phase of `due_ms`: missed fires are skipped, not made up.
    ///
    /// # Errors
    /// `schedule.invalid_rule` when the rule does not check or a cron expression never
    /// matches again.
    pub(crate) fn next_after(&self, due_ms: i64, after_ms: i64) -> Result<i64, ActionError> {
        match self {
            Rule::Every { ms } => {
                let step = i64::try_from(*ms).unwrap_or(i64::MAX).max(1);
                let behind = after_ms.saturating_sub(due_ms).max(0);
                let steps = behind / step + 1;
                Ok(due_ms.saturating_add(steps.saturating_mul(step)))
            }
            Rule::Cron {
                expression,
                time_zone,
            } => {
                self.check()?;
                let cron = croner::Cron::from_str(expression)
                    .map_err(|e| bad_rule(format!("cron expression {expression:?}: {e}")))?;
                let tz: chrono_tz::Tz = time_zone
                    .parse()
                    .map_err(|_| bad_rule(format!("unknown time zone {time_zone:?}")))?;
                // Whole seconds: the cron crate keeps a start's fraction in what it returns.
                let from = after_ms.max(due_ms);
                let start = Utc
                    .timestamp_millis_opt(from - from.rem_euclid(1000))
                    .single()
                    .ok_or_else(|| bad_rule(format!("time {after_ms} out of range")))?
                    .with_timezone(&tz);
                let next = cron
                    .find_next_occurrence(&start, false)
                    .map_err(|e| bad_rule(format!("{expression:?} does not fire again: {e}")))?;
                Ok(next.timestamp_millis())
            }
        }
    }
}

impl Repeat {
    /// Records a fire, dropping the oldest past [`HISTORY`].
    pub(crate) fn record(&mut self, fired: Fired) {
        self.history.push_back(fired);
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_blobs_read_as_first_tries() {
        let old = crate::snapshot::encode(&vec![Value::from(7)]).unwrap();
        let data = AlarmData::decode(&old).unwrap();
        assert_eq!(data, AlarmData::call(vec![Value::from(7)]));
        assert!(AlarmData::decode(&[9, 1]).is_err());
        assert!(AlarmData::decode(&[]).is_err());
    }

    #[test]
    fn round_trips_with_a_rule_and_history() {
        let mut repeat = Repeat {
            name: "tick".into(),
            rule: Rule::Every { ms: 5000 },
            history: VecDeque::new(),
        };
        for i in 0..20 {
            repeat.record(Fired {
                due_ms: i,
                ran_ms: i + 1,
                error: (i % 2 == 0).then(|| "user.nope".to_owned()),
            });
        }
        assert_eq!(repeat.history.len(), HISTORY);
        assert_eq!(repeat.history.front().unwrap().due_ms, 4);
        let data = AlarmData {
            args: vec![Value::from("x")],
            attempt: 2,
            repeat: Some(repeat),
        };
        assert_eq!(AlarmData::decode(&data.encode().unwrap()).unwrap(), data);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn intervals_keep_their_phase_and_skip_missed_fires() {
        let every = Rule::Every { ms: 1000 };
        assert_eq!(every.next_after(10_000, 10_000).unwrap(), 11_000);
        // Down for 3.5 intervals: the next fire is the next on the grid, not four at once.
        assert_eq!(every.next_after(10_000, 13_500).unwrap(), 14_000);
        assert!(Rule::Every { ms: 0 }.check().is_err());
    }

    #[test]
    fn cron_rules_read_their_time_zone() {
        // 2026-01-15 00:00:00 UTC.
        let t = 1_768_435_200_000;
        let utc = Rule::Cron {
            expression: "0 9 * * *".into(),
            time_zone: "UTC".into(),
        };
        assert_eq!(utc.next_after(t, t).unwrap(), t + 9 * 3_600_000);
        // 09:00 in Paris is 08:00 UTC in January.
        let paris = Rule::Cron {
            expression: "0 9 * * *".into(),
            time_zone: "Europe/Paris".into(),
        };
        assert_eq!(paris.next_after(t, t).unwrap(), t + 8 * 3_600_000);
        // Strictly after: at 09:00 UTC exactly the next is tomorrow's.
        let nine = t + 9 * 3_600_000;
        assert_eq!(utc.next_after(nine, nine).unwrap(), nine + 24 * 3_600_000);
        // Fractions of a second do not leak into the result.
        assert_eq!(utc.next_after(t + 620, t + 620).unwrap(), t + 9 * 3_600_000);
        // Fired a second early by the clock: still tomorrow's, not today's again.
        assert_eq!(
            utc.next_after(nine, nine - 1000).unwrap(),
            nine + 24 * 3_600_000
        );
    }

    #[test]
    fn bad_rules_are_coded_errors() {
        for rule in [
            Rule::Cron {
                expression: "not cron".into(),
                time_zone: "UTC".into(),
            },
            Rule::Cron {
                expression: "* * * * *".into(),
                time_zone: "Mars/Olympus".into(),
            },
        ] {
            let e = rule.check().unwrap_err();
            assert_eq!((e.group(), e.code()), ("schedule", "invalid_rule"));
            assert!(e.is_public());
        }
    }

    #[test]
    fn retries_skip_errors_that_would_repeat() {
        assert!(!worth_retrying(&ActionError::action_not_found("x")));
        assert!(worth_retrying(&ActionError::internal("db down")));
    }
}
