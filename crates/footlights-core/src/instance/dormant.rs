//! Dormant actors: awake actors that gave their task back.
//!
//! An awake actor with nothing to do (no connection, no pending work, nothing waiting to be
//! written) that stays so for [`ActorOptions::dormant_after`](crate::ActorOptions::dormant_after)
//! leaves its loop. Its instance (state, vars, context) moves, boxed, into the registry's
//! [`Pool`], and its mailbox keeps a [`Ticket`] for it. The next message takes the instance
//! back out and spawns a new task for it, with no storage read and no hook: to the actor and
//! its callers nothing happened. What the task itself took (tokio's task cell, the loop's
//! timer and waits, about 600 bytes an actor) is given back meanwhile, and, when nothing else
//! holds the actor's context, the context's transient parts too: the instance is kept in its
//! [compact form](super::compact).
//!
//! A dormant actor that may sleep still has to, once its idle time is up. The pool keeps
//! each one's sleep deadline; the [sweeper](Pool::sweep) takes an actor whose deadline came
//! out of the pool and revives it without a message, and its loop finds the idle time over
//! and puts it to sleep as usual.
//!
//! Only the sweeper's task owns the pool; mailboxes and the registry hold it weakly. An
//! instance holds its own mailbox and the registry, so an instance kept anywhere they can
//! reach would never be freed; kept here, it is dropped with the sweeper when the runtime
//! shuts down, as a task would have been.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use std::sync::atomic::Ordering;

use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::Instance;
use super::compact::Compact;
use crate::actor::Actor;

/// A dormant instance, type-erased: it knows how to start its loop again.
pub(crate) trait Revive: Send {
    /// Spawns the instance's loop on `runtime`.
    fn revive(self: Box<Self>, runtime: &Handle);
}

/// Where a mailbox finds its dormant instance: its number, and its sleep deadline, which
/// orders the pool. A ticket whose instance was revived (by the sweeper, or by a send that
/// raced another) finds nothing; numbers are never reused.
#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    pool: Weak<Pool>,
    number: u64,
    deadline: Option<Instant>,
}

impl Ticket {
    /// Takes the instance out of the pool and spawns its loop. `false` if someone else did
    /// (or the pool is gone with its runtime).
    pub(crate) fn revive(&self) -> bool {
        let Some(pool) = self.pool.upgrade() else {
            return false;
        };
        let Some(instance) = pool.take(self.number, self.deadline) else {
            return false;
        };
        instance.revive(&pool.runtime);
        true
    }
}

/// The dormant instances of one registry, by sleep deadline and ticket number.
pub(crate) struct Pool {
    runtime: Handle,
    inner: Mutex<Inner>,
    /// Rung when a deadline earlier than every other is added.
    earlier: Notify,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// The instances that sleep when their idle time is up, earliest deadline first: the
    /// sweeper takes from the front, a ticket finds its own by deadline and number. One map
    /// for both, so an instance and its deadline always leave together.
    by_deadline: BTreeMap<(Instant, u64), Box<dyn Revive>>,
    /// The instances of types that never sleep, by ticket number.
    sleepless: HashMap<u64, Box<dyn Revive>>,
}

impl Inner {
    fn len(&self) -> usize {
        self.by_deadline.len() + self.sleepless.len()
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("dormant", &self.lock().len())
            .finish_non_exhaustive()
    }
}

/// The registry's handle on its pool: weak, see the module docs.
#[derive(Clone, Debug)]
pub(crate) struct PoolHandle(Weak<Pool>);

impl PoolHandle {
    /// Starts the sweeper on the current runtime and returns the handle on its pool.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub(crate) fn spawn() -> Self {
        let pool = Arc::new(Pool {
            runtime: Handle::current(),
            inner: Mutex::default(),
            earlier: Notify::new(),
        });
        let handle = PoolHandle(Arc::downgrade(&pool));
        tokio::spawn(pool.sweep());
        handle
    }

    /// Keeps `instance` until its ticket is presented, or, with a `deadline`, until then at
    /// the latest. `Err` hands it back when the pool is gone (the runtime is shutting down).
    pub(crate) fn keep<R: Revive + 'static>(
        &self,
        instance: Box<R>,
        deadline: Option<Instant>,
    ) -> Result<Ticket, Box<R>> {
        let Some(pool) = self.0.upgrade() else {
            return Err(instance);
        };
        let number = {
            let mut inner = pool.lock();
            let number = inner.next;
            inner.next += 1;
            match deadline {
                Some(at) => {
                    let first = inner.by_deadline.first_key_value().map(|((t, _), _)| *t);
                    inner.by_deadline.insert((at, number), instance);
                    if first.is_none_or(|first| at < first) {
                        pool.earlier.notify_one();
                    }
                }
                None => {
                    inner.sleepless.insert(number, instance);
                }
            }
            number
        };
        Ok(Ticket {
            pool: self.0.clone(),
            number,
            deadline,
        })
    }

    /// Dormant instances now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.upgrade().map_or(0, |p| p.lock().len())
    }

    /// Sleep deadlines kept now.
    #[cfg(test)]
    fn deadlines(&self) -> usize {
        self.0.upgrade().map_or(0, |p| p.lock().by_deadline.len())
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, number: u64, deadline: Option<Instant>) -> Option<Box<dyn Revive>> {
        let mut inner = self.lock();
        let Some(at) = deadline else {
            let instance = inner.sleepless.remove(&number)?;
            // A hash map keeps its room; give it back once most of it is unused.
            let sleepless = &mut inner.sleepless;
            if sleepless.capacity() > 64 && sleepless.len() * 4 < sleepless.capacity() {
                sleepless.shrink_to(sleepless.len() * 2);
            }
            return Some(instance);
        };
        inner.by_deadline.remove(&(at, number))
    }

    /// Revives each instance whose deadline came, for as long as the runtime runs. Owns the
    /// pool: when the runtime drops this task, the instances still dormant go with it.
    async fn sweep(self: Arc<Self>) {
        loop {
            let next = self
                .lock()
                .by_deadline
                .first_key_value()
                .map(|((t, _), _)| *t);
            let due = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.earlier.notified() => continue,
                () = due => {}
            }
            let now = Instant::now();
            while let Some(instance) = self.take_due(now) {
                instance.revive(&self.runtime);
            }
        }
    }

    /// The instance with the earliest deadline, out of the pool, if that deadline is `now`
    /// or earlier.
    fn take_due(&self, now: Instant) -> Option<Box<dyn Revive>> {
        let mut inner = self.lock();
        let (&(at, _), _) = inner.by_deadline.first_key_value()?;
        if at > now {
            return None;
        }
        inner.by_deadline.pop_first().map(|(_, instance)| instance)
    }
}

/// A dormant actor instance kept whole (something else holds its context, or its database
/// is open), with the time its idle stretch began.
struct Dormant<A: Actor> {
    instance: Instance<A>,
    since: Instant,
}

/// A dormant actor instance in its compact form, with the time its idle stretch began.
struct DormantCompact<A: Actor> {
    compact: Compact<A>,
    since: Instant,
}

/// Hands `instance`, idle since `since`, to its registry's pool until the next message (or
/// its sleep deadline): compact when it can be, whole otherwise. Gives it back when a message
/// is already waiting.
#[expect(
    clippy::result_large_err,
    reason = "the instance goes back into the loop's own local on the rare refusal; boxed, it would be unboxed there at once"
)]
pub(super) fn park<A: Actor>(instance: Instance<A>, since: Instant) -> Result<(), Instance<A>> {
    let options = &instance.options;
    let deadline = (!options.no_sleep).then(|| since + options.sleep_timeout);
    let pool = instance.reg.dormant_pool().clone();
    let door = instance.rx.door();
    let metrics = instance.ctx.shared.metrics.clone();
    // Counted first: a send may revive it, and count that, as soon as it is in the pool.
    metrics.went_dormant();
    let refused = match Compact::of(instance) {
        Ok(compact) => {
            let dormant = Box::new(DormantCompact { compact, since });
            door.park(&pool, dormant, deadline)
                .map_err(|back| back.compact.expand())
        }
        Err(instance) => {
            let dormant = Box::new(Dormant { instance, since });
            door.park(&pool, dormant, deadline)
                .map_err(|back| back.instance)
        }
    };
    refused.inspect_err(|_| metrics.revived())
}

impl<A: Actor> Revive for Dormant<A> {
    fn revive(self: Box<Self>, runtime: &Handle) {
        respawn(self.instance, self.since, runtime);
    }
}

impl<A: Actor> Revive for DormantCompact<A> {
    fn revive(self: Box<Self>, runtime: &Handle) {
        let DormantCompact { compact, since } = *self;
        respawn(compact.expand(), since, runtime);
    }
}

/// Spawns the loop of `instance`, dormant since `since`, on `runtime`.
fn respawn<A: Actor>(instance: Instance<A>, since: Instant, runtime: &Handle) {
    let shared = &instance.ctx.shared;
    shared.metrics.revived();
    let span = tracing::info_span!(
        "actor",
        actor = A::NAME,
        key = %shared.key,
        id = %shared.id
    );
    tracing::trace!(parent: &span, "dormant actor back in a task");
    runtime.spawn(instance.run(Some(since)).instrument(span));
}

impl<A: Actor> Instance<A> {
    /// After a message that ended at `now`: if the loop's timer is set further out than
    /// `dormant_after` (it was set while a connection or pending work kept the actor from going
    /// dormant) and nothing does any more, brings it in. Cheap when the timer is near, as it is
    /// for a busy actor: no lock is taken then.
    pub(super) fn look_for_dormancy(
        &self,
        timer: std::pin::Pin<&mut tokio::time::Sleep>,
        now: Instant,
        dormant_after: Option<std::time::Duration>,
    ) {
        if let Some(after) = dormant_after
            && timer.deadline() > now + after
            && self.may_go_dormant_soon()
        {
            timer.reset(now + after);
        }
    }

    /// Whether the actor may leave its task now: [`may_go_dormant_soon`](Self::may_go_dormant_soon),
    /// and every write it made is durable (the loop would have to notice one that fails).
    pub(super) fn may_go_dormant(&self) -> bool {
        let gate = &self.ctx.shared.gate;
        self.may_go_dormant_soon() && !gate.has_failed() && gate.issued() == gate.durable()
    }

    /// Whether nothing but a message (or its sleep deadline) can give the actor work, once
    /// its writes are durable: no connection or raw socket, no pending answer, run loop,
    /// hold, background task or requested sleep.
    pub(super) fn may_go_dormant_soon(&self) -> bool {
        let shared = &self.ctx.shared;
        self.deferred.is_empty()
            && !self.runner.is_active()
            && self.runner.winding_until().is_none()
            && self.detached.is_empty()
            && self.done.is_none()
            && self.destroyed.is_none()
            && shared.awake_holds.load(Ordering::Acquire) == 0
            && !shared.sleep_requested.load(Ordering::Acquire)
            && !shared.destroy_requested.load(Ordering::Acquire)
            && shared.conns().is_empty()
            && shared.raw_sockets().is_empty()
            && shared.background_done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts its revivals, and its drops.
    struct Probe {
        revived: Arc<AtomicUsize>,
        dropped: Arc<AtomicUsize>,
    }

    impl Revive for Probe {
        fn revive(self: Box<Self>, _: &Handle) {
            self.revived.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe() -> (Box<Probe>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (revived, dropped) = (Arc::default(), Arc::default());
        let p = Probe {
            revived: Arc::clone(&revived),
            dropped: Arc::clone(&dropped),
        };
        (Box::new(p), revived, dropped)
    }

    #[tokio::test]
    async fn a_ticket_revives_its_instance_once() {
        let pool = PoolHandle::spawn();
        let (p, revived, _) = probe();
        let ticket = pool.keep(p, None).ok().unwrap();
        assert_eq!(pool.len(), 1);
        assert!(ticket.revive());
        assert!(
            !ticket.clone().revive(),
            "a second presentation finds nothing"
        );
        assert_eq!(revived.load(Ordering::SeqCst), 1);
        assert_eq!(pool.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweeper_revives_at_the_deadline_and_not_before() {
        let pool = PoolHandle::spawn();
        let (late, late_revived, _) = probe();
        let (early, early_revived, _) = probe();
        let start = Instant::now();
        let _late = pool.keep(late, Some(start + Duration::from_secs(20))).ok();
        // Added after a later one: the sweeper must wake earlier than it planned.
        let _early = pool.keep(early, Some(start + Duration::from_secs(5))).ok();
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        assert_eq!(early_revived.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(early_revived.load(Ordering::SeqCst), 1);
        assert_eq!(late_revived.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert_eq!(late_revived.load(Ordering::SeqCst), 1);
        assert_eq!(pool.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_instance_revived_before_its_deadline_takes_the_deadline_along() {
        let pool = PoolHandle::spawn();
        let (p, revived, _) = probe();
        let ticket = pool
            .keep(p, Some(Instant::now() + Duration::from_secs(1)))
            .ok()
            .unwrap();
        assert!(ticket.revive());
        assert_eq!(pool.deadlines(), 0, "the deadline left with the instance");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(revived.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn instances_with_one_deadline_and_sleepless_ones_each_answer_their_own_ticket() {
        let pool = PoolHandle::spawn();
        let at = Instant::now() + Duration::from_secs(10);
        let (a, a_revived, _) = probe();
        let (b, b_revived, _) = probe();
        let (forever, forever_revived, _) = probe();
        let a = pool.keep(a, Some(at)).ok().unwrap();
        let _b = pool.keep(b, Some(at)).ok().unwrap();
        let forever = pool.keep(forever, None).ok().unwrap();
        assert_eq!((pool.len(), pool.deadlines()), (3, 2));
        assert!(a.revive());
        assert_eq!(a_revived.load(Ordering::SeqCst), 1);
        assert_eq!(
            b_revived.load(Ordering::SeqCst),
            0,
            "same deadline, other ticket"
        );
        assert_eq!((pool.len(), pool.deadlines()), (2, 1));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(b_revived.load(Ordering::SeqCst), 1, "the sweeper took it");
        assert_eq!(
            forever_revived.load(Ordering::SeqCst),
            0,
            "no deadline, no sweep"
        );
        assert!(forever.revive());
        assert_eq!(forever_revived.load(Ordering::SeqCst), 1);
        assert_eq!(pool.len(), 0);
    }

    #[test]
    fn instances_still_dormant_are_dropped_with_the_runtime() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (p, revived, dropped) = probe();
        let (pool, ticket) = runtime.block_on(async {
            let pool = PoolHandle::spawn();
            let ticket = pool.keep(p, None).ok().unwrap();
            (pool, ticket)
        });
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        drop(runtime);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(!ticket.revive());
        assert_eq!(revived.load(Ordering::SeqCst), 0);
        let (p, _, dropped_later) = probe();
        assert!(pool.keep(p, None).is_err(), "the pool is gone");
        assert_eq!(dropped_later.load(Ordering::SeqCst), 1);
    }
}
