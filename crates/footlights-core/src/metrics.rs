//! What the runtime counts about itself: actions, wakes and sleeps per actor type, events sent,
//! and the group commits of the writer.
//!
//! Plain atomics, written on the hot path without locks or allocation (an error code seen for
//! the first time is the one exception) and read by whoever exports them: the server turns
//! them into Prometheus series at each scrape. This module depends on no other module of the
//! crate.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the action latency buckets, in nanoseconds (50 µs to 10 s).
const LATENCY_BOUNDS_NS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];

/// Upper bounds of the group commit size buckets, in writes-requests per commit.
const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// A histogram of whole-number observations (nanoseconds, counts) in fixed buckets.
#[derive(Debug)]
pub struct Histogram {
    /// Inclusive upper bounds, ascending, in units.
    bounds: &'static [u64],
    /// One count per bound, then one for everything above the last bound.
    counts: Box<[AtomicU64]>,
    /// The sum of every observation, in units.
    sum: AtomicU64,
    /// What one unit is worth in the exported value (1e-9 for nanoseconds as seconds).
    scale: f64,
}

/// A histogram read at one moment: what an exporter writes out.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations at or below it)`, cumulative, ascending; the last bound is
    /// `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
    /// How many observations there were.
    pub count: u64,
    /// Their sum, in the exported unit (seconds for latencies).
    pub sum: f64,
}

impl Histogram {
    fn new(bounds: &'static [u64], scale: f64) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    fn latency() -> Self {
        Histogram::new(LATENCY_BOUNDS_NS, 1e-9)
    }

    /// Counts one observation of `units`.
    fn observe(&self, units: u64) {
        let slot = self
            .bounds
            .iter()
            .position(|&b| units <= b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(units, Ordering::Relaxed);
    }

    fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The buckets, count and sum now. Taken without a lock, so a scrape racing with
    /// observations may see the count and the sum one observation apart.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.counts.len());
        let mut total = 0u64;
        for (i, count) in self.counts.iter().enumerate() {
            total += count.load(Ordering::Relaxed);
            let bound = self
                .bounds
                .get(i)
                .map_or(f64::INFINITY, |&b| b as f64 * self.scale);
            buckets.push((bound, total));
        }
        HistogramSnapshot {
            buckets,
            count: total,
            sum: self.sum.load(Ordering::Relaxed) as f64 * self.scale,
        }
    }
}

/// What the runtime counts for one actor type. Every instance of the type holds the same
/// handle, so counting takes no lookup.
#[derive(Debug)]
pub struct ActorTypeMetrics {
    name: &'static str,
    actions: AtomicU64,
    /// Failed actions by `group.code`; few distinct codes, so a short list.
    errors: Mutex<Vec<(String, u64)>>,
    action_latency: Histogram,
    awake: AtomicI64,
    dormant: AtomicI64,
    wakes: AtomicU64,
    sleeps: AtomicU64,
    events_sent: AtomicU64,
    /// Messages in the queues of awake actors, by queue name (the names a type declares:
    /// a short list).
    queued: Mutex<Vec<(String, i64)>>,
}

impl ActorTypeMetrics {
    pub(crate) fn new(name: &'static str) -> Self {
        ActorTypeMetrics {
            name,
            actions: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            action_latency: Histogram::latency(),
            awake: AtomicI64::new(0),
            dormant: AtomicI64::new(0),
            wakes: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
            events_sent: AtomicU64::new(0),
            queued: Mutex::new(Vec::new()),
        }
    }

    /// The actor type's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Actions that finished (successfully or not), scheduled calls included.
    pub fn actions(&self) -> u64 {
        self.actions.load(Ordering::Relaxed)
    }

    /// Actions that failed, by error `group.code` (before masking: an internal error counts as
    /// the code it had), sorted by code.
    pub fn errors(&self) -> Vec<(String, u64)> {
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        errors.sort_unstable();
        errors
    }

    /// How long actions ran in the actor, in seconds: from the start of the handler to its
    /// answer, deferred part included; not the wait for the commit that releases the answer.
    pub fn action_latency(&self) -> HistogramSnapshot {
        self.action_latency.snapshot()
    }

    /// Actors of this type awake now.
    pub fn awake(&self) -> i64 {
        self.awake.load(Ordering::Relaxed)
    }

    /// Actors of this type awake now without a task of their own: idle for
    /// [`ActorOptions::dormant_after`](crate::ActorOptions::dormant_after), they wait for
    /// their next message with their state, vars and context kept in memory. Counted in
    /// [`awake`](Self::awake) too.
    pub fn dormant(&self) -> i64 {
        self.dormant.load(Ordering::Relaxed)
    }

    /// Times an actor of this type was started (woken or started for the first time).
    pub fn wakes(&self) -> u64 {
        self.wakes.load(Ordering::Relaxed)
    }

    /// Times an actor of this type stopped: went to sleep, was stopped by a shutdown, failed
    /// to start or was destroyed.
    pub fn sleeps(&self) -> u64 {
        self.sleeps.load(Ordering::Relaxed)
    }

    /// Events handed to connections (one per subscriber of a broadcast, one per direct send).
    pub fn events_sent(&self) -> u64 {
        self.events_sent.load(Ordering::Relaxed)
    }

    /// Messages waiting in the queues of this type's awake actors (taken ones not yet
    /// completed included), by queue name, sorted. A sleeping actor's messages stay stored
    /// and count again once it wakes.
    pub fn queue_depths(&self) -> Vec<(String, i64)> {
        let mut depths = self
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        depths.sort_unstable();
        depths
    }

    /// Changes the depth of queue `name` by `delta`.
    pub(crate) fn queued(&self, name: &str, delta: i64) {
        let mut queued = self.queued.lock().unwrap_or_else(PoisonError::into_inner);
        match queued.iter_mut().find(|(n, _)| n == name) {
            Some((_, depth)) => *depth += delta,
            None => queued.push((name.to_owned(), delta)),
        }
    }

    /// Counts one finished action.
    pub(crate) fn action_done(&self, took: Duration, error: Option<(&str, &str)>) {
        self.actions.fetch_add(1, Ordering::Relaxed);
        self.action_latency.observe_duration(took);
        if let Some((group, code)) = error {
            let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
            let found = errors.iter_mut().find(|(c, _)| {
                c.strip_prefix(group).and_then(|r| r.strip_prefix('.')) == Some(code)
            });
            match found {
                Some((_, n)) => *n += 1,
                None => errors.push((format!("{group}.{code}"), 1)),
            }
        }
    }

    pub(crate) fn woke(&self) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
        self.awake.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn slept(&self) {
        self.sleeps.fetch_add(1, Ordering::Relaxed);
        self.awake.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn went_dormant(&self) {
        self.dormant.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn revived(&self) {
        self.dormant.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn events(&self, n: usize) {
        self.events_sent.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// What the writer counts: group commits, their sizes and how long they took.
#[derive(Debug)]
pub struct StorageMetrics {
    commits: AtomicU64,
    failures: AtomicU64,
    batch: Histogram,
    latency: Histogram,
}

impl Default for StorageMetrics {
    fn default() -> Self {
        StorageMetrics {
            commits: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            batch: Histogram::new(BATCH_BOUNDS, 1.0),
            latency: Histogram::latency(),
        }
    }
}

impl StorageMetrics {
    /// Group commits that reached the store (successful or not).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Group commits that failed.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Write requests per group commit (each an actor's writes after one message, or a
    /// create).
    pub fn batch_size(&self) -> HistogramSnapshot {
        self.batch.snapshot()
    }

    /// How long the store took per group commit, in seconds: the transaction and its `fsync`
    /// (with the SQLite driver's default durability).
    pub fn commit_latency(&self) -> HistogramSnapshot {
        self.latency.snapshot()
    }

    pub(crate) fn committed(&self, requests: usize, took: Duration, ok: bool) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.batch.observe(requests as u64);
        self.latency.observe_duration(took);
    }
}

/// Everything a registry counts ([`Registry::metrics`](crate::Registry::metrics)).
#[derive(Debug)]
pub struct RuntimeMetrics {
    /// By actor type name, sorted.
    types: Vec<Arc<ActorTypeMetrics>>,
    storage: Arc<StorageMetrics>,
}

impl RuntimeMetrics {
    pub(crate) fn new(types: Vec<Arc<ActorTypeMetrics>>, storage: Arc<StorageMetrics>) -> Self {
        let mut types = types;
        types.sort_unstable_by_key(|t| t.name);
        RuntimeMetrics { types, storage }
    }

    /// Each actor type's counts, sorted by name.
    pub fn actor_types(&self) -> &[Arc<ActorTypeMetrics>] {
        &self.types
    }

    /// The writer's counts.
    pub fn storage(&self) -> &StorageMetrics {
        &self.storage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_into_cumulative_buckets() {
        let h = Histogram::new(&[1, 4, 16], 1.0);
        for v in [0, 1, 3, 4, 5, 100] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(
            s.buckets,
            vec![(1.0, 2), (4.0, 4), (16.0, 5), (f64::INFINITY, 6)]
        );
        assert_eq!(s.count, 6);
        assert!((s.sum - 113.0).abs() < f64::EPSILON);
    }

    #[test]
    fn errors_are_counted_by_code() {
        let m = ActorTypeMetrics::new("t");
        m.action_done(Duration::from_micros(70), None);
        m.action_done(Duration::from_millis(2), Some(("user", "bad")));
        m.action_done(Duration::from_millis(2), Some(("user", "bad")));
        m.action_done(Duration::from_millis(2), Some(("actor", "internal_error")));
        assert_eq!(m.actions(), 4);
        assert_eq!(
            m.errors(),
            vec![
                ("actor.internal_error".to_owned(), 1),
                ("user.bad".to_owned(), 2)
            ]
        );
        let latency = m.action_latency();
        assert_eq!(latency.count, 4);
        assert_eq!(latency.buckets[0], (50_000.0 * 1e-9, 0));
        assert_eq!(latency.buckets[1].1, 1, "70 µs is in the 100 µs bucket");
    }
}
