//! `Ctx`: what actions and hooks use to reach the world around the actor.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use footlights_client::Client;
use footlights_protocol::{ActorId, ActorKey, ConnId, Event, SharedEvent, ToClient, Value};
use footlights_storage::{Alarm, Write};

use crate::actor::Actor;
use crate::clock::ClockHandle;
use crate::conn::Conn;
use crate::conn_index::ConnIndex;
use crate::gate::{ConnSink, Gate, Output};
use crate::inspect::{EventRecord, LogRecord};
use crate::instance::Mailbox;
use crate::kv::{Kv, KvStore};
use crate::raw::RawSocket;

/// Per-actor data shared by the actor task, its contexts and its connections.
pub(crate) struct Shared<A: Actor> {
    pub(crate) id: ActorId,
    pub(crate) key: ActorKey,
    /// The generation this instance started as; its writes are fenced with it.
    pub(crate) generation: u64,
    pub(crate) gate: Arc<Gate>,
    /// The actor's key-value store.
    pub(crate) kv: KvStore,
    /// The actor's database.
    #[cfg(feature = "db")]
    pub(crate) db: crate::db::DbState,
    /// Live connections by id, in the order they joined, with the sinks of each event's
    /// subscribers. Changed only by the actor task; read by contexts on any thread.
    pub(crate) conns: Mutex<ConnIndex<Conn<A>, Arc<ConnSink>>>,
    /// Accepted raw WebSockets by id, each with the connection it runs under. Changed only by
    /// the actor task; read by contexts.
    pub(crate) raw_sockets: Mutex<BTreeMap<u64, (RawSocket, Conn<A>)>>,
    /// The actor's own mailbox.
    pub(crate) mailbox: Mailbox,
    /// The in-process client, for actor-to-actor calls.
    pub(crate) client: Client,
    pub(crate) clock: ClockHandle,
    /// Alarms of this actor by id, mirrored in storage. (A B-tree: 24 bytes in every
    /// actor's context where a hash map takes 48, and most actors have no alarm.)
    pub(crate) alarms: Mutex<BTreeMap<String, Alarm>>,
    /// Writes made through the context (alarms) during the current message, committed with
    /// the state after it.
    pub(crate) pending_writes: Mutex<Vec<Write>>,
    pub(crate) sleep_requested: AtomicBool,
    pub(crate) destroy_requested: AtomicBool,
    /// The counts of the actor's type.
    pub(crate) metrics: Arc<crate::metrics::ActorTypeMetrics>,
    /// The actor's queue messages, in memory.
    pub(crate) queues: crate::queue::state::LazyQueues,
    /// The queues the actor's type declares.
    pub(crate) queue_specs: Arc<HashMap<String, crate::queue::QueueSpec>>,
    /// Futures in [`Ctx::keep_awake`] right now; the actor does not sleep while any runs.
    pub(crate) awake_holds: std::sync::atomic::AtomicUsize,
    /// Tasks of [`Ctx::wait_until`]; a sleep, stop or destroy waits for them (bounded).
    pub(crate) background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The live log's tap ([`crate::inspect`]).
    pub(crate) tap: Arc<crate::inspect::Tap>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The parts of an actor's context that must outlive it while the actor is dormant in its
/// compact form (see `instance::compact`): who the actor is, its alarms and queued messages,
/// its connection sequence and its type's counts. [`Shared::new`] makes the rest anew: the
/// output gate, the key-value store's handle and cache, the unopened database, empty
/// connection and socket tables, and, unless someone watches it, the live log's tap; it takes
/// what the registry and the type share from [`Handles`].
pub(crate) struct Lasting<A: Actor> {
    pub(crate) id: ActorId,
    pub(crate) key: ActorKey,
    pub(crate) generation: u64,
    pub(crate) mailbox: Mailbox,
    pub(crate) alarms: BTreeMap<String, Alarm>,
    pub(crate) conns: ConnIndex<Conn<A>, Arc<ConnSink>>,
    pub(crate) metrics: Arc<crate::metrics::ActorTypeMetrics>,
    pub(crate) queues: crate::queue::state::LazyQueues,
    /// `None` when nothing but the context held it and no one watched: a new one will do.
    pub(crate) tap: Option<Arc<crate::inspect::Tap>>,
}

/// What the contexts of every actor of one type on one registry share: handed to
/// [`Shared::new`], so a dormant actor need not keep its own copies.
pub(crate) struct Handles {
    pub(crate) driver: Arc<dyn footlights_storage::Driver>,
    pub(crate) client: Client,
    pub(crate) clock: ClockHandle,
    pub(crate) options: Arc<crate::ActorOptions>,
    pub(crate) queue_specs: Arc<HashMap<String, crate::queue::QueueSpec>>,
}

impl<A: Actor> Shared<A> {
    /// A context of `lasting`, with a new gate, the actor's store handle on the driver of
    /// `handles`, its database unopened, and nothing in flight.
    pub(crate) fn new(lasting: Lasting<A>, handles: Handles) -> Self {
        let Handles {
            driver,
            client,
            clock,
            options,
            queue_specs,
        } = handles;
        let gate = Gate::new();
        Shared {
            kv: KvStore::new(driver, lasting.id.clone(), gate.clone(), options.clone()),
            #[cfg(feature = "db")]
            db: crate::db::DbState::new(options),
            gate,
            id: lasting.id,
            key: lasting.key,
            generation: lasting.generation,
            conns: Mutex::new(lasting.conns),
            raw_sockets: Mutex::default(),
            mailbox: lasting.mailbox,
            client,
            clock,
            alarms: Mutex::new(lasting.alarms),
            pending_writes: Mutex::default(),
            sleep_requested: AtomicBool::new(false),
            destroy_requested: AtomicBool::new(false),
            metrics: lasting.metrics,
            queues: lasting.queues,
            queue_specs,
            awake_holds: Default::default(),
            background: Mutex::default(),
            tap: lasting.tap.unwrap_or_default(),
        }
    }

    /// Takes the lasting parts out, for a context about to be dropped: only the actor's own
    /// task may call it, with nothing in flight.
    pub(crate) fn take_lasting(&mut self) -> Lasting<A> {
        // Held by this context and this clone only, and unwatched: the next context makes its own.
        let tap = self.tap.clone();
        let tap = (Arc::strong_count(&tap) > 2 || tap.is_watched()).then_some(tap);
        Lasting {
            id: self.id.clone(),
            key: std::mem::take(&mut self.key),
            generation: self.generation,
            mailbox: self.mailbox.clone(),
            alarms: std::mem::take(
                self.alarms
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner),
            ),
            conns: std::mem::take(self.conns.get_mut().unwrap_or_else(PoisonError::into_inner)),
            metrics: self.metrics.clone(),
            queues: std::mem::take(&mut self.queues),
            tap,
        }
    }
    /// Whether the running message changed database pages (never without the `db` feature).
    pub(crate) fn db_has_staged(&self) -> bool {
        #[cfg(feature = "db")]
        return self.db.has_staged();
        #[cfg(not(feature = "db"))]
        false
    }

    pub(crate) fn conns(&self) -> MutexGuard<'_, ConnIndex<Conn<A>, Arc<ConnSink>>> {
        lock(&self.conns)
    }

    pub(crate) fn raw_sockets(&self) -> MutexGuard<'_, BTreeMap<u64, (RawSocket, Conn<A>)>> {
        lock(&self.raw_sockets)
    }

    /// Adds a connection as the last to join, indexed under the events it already subscribed
    /// to (a connection back from hibernation keeps its subscriptions).
    pub(crate) fn add_conn(&self, conn: Conn<A>) {
        let events = conn.subscribed_events();
        let id = conn.id().clone();
        let sink = conn.sink().cloned();
        let mut conns = self.conns();
        conns.insert(id.clone(), conn, sink);
        for event in &events {
            conns.subscribe(&id, event);
        }
    }

    /// Whether every task of [`Ctx::wait_until`] has finished.
    pub(crate) fn background_done(&self) -> bool {
        lock(&self.background).iter().all(|t| t.is_finished())
    }

    /// Adds a write (an alarm's) to those committed after the current message.
    pub(crate) fn push_write(&self, write: Write) {
        lock(&self.pending_writes).push(write);
    }

    pub(crate) fn take_pending_writes(&self) -> Vec<Write> {
        std::mem::take(&mut *lock(&self.pending_writes))
    }

    pub(crate) fn alarms(&self) -> MutexGuard<'_, BTreeMap<String, Alarm>> {
        lock(&self.alarms)
    }

    /// Stores `alarm` (replacing one of the same id) with the current message's writes and
    /// sets the clock to fire it when due (at once if it is past).
    ///
    /// The clock waits `at_ms - max(now, from_ms)`: a repeating job re-armed from its due
    /// time `from_ms` waits one interval even when the runtime's clock is paused in a test
    /// (the wall clock does not move then) or the clock fired it a little early.
    pub(crate) fn arm_alarm(&self, alarm: Alarm, from_ms: i64) {
        let from = crate::alarm::now_ms().max(from_ms);
        let delay_ms = alarm.at_ms.saturating_sub(from).max(0);
        let delay = std::time::Duration::from_millis(u64::try_from(delay_ms).unwrap_or(0));
        let id = alarm.id.clone();
        self.store_alarm(alarm);
        self.clock.add(A::NAME, &self.id, &id, delay);
    }

    /// Stores `alarm` (replacing one of the same id) with the current message's writes,
    /// leaving the clock as it is: for an alarm whose due time has not changed.
    pub(crate) fn store_alarm(&self, alarm: Alarm) {
        self.alarms().insert(alarm.id.clone(), alarm.clone());
        self.push_write(Write::PutAlarm {
            actor: self.id.clone(),
            alarm,
        });
    }

    /// Removes alarm `id` from memory and, with the current message's writes, from storage.
    /// A clock entry left behind finds nothing when it fires.
    pub(crate) fn disarm_alarm(&self, id: &str) -> Option<Alarm> {
        let removed = self.alarms().remove(id);
        if removed.is_some() {
            self.push_write(Write::DeleteAlarm {
                actor: self.id.clone(),
                alarm_id: id.to_owned(),
            });
        }
        removed
    }
}

/// The context of an action or hook: the actor's identity, its connections, events,
/// scheduling, sleep and destroy, and a client for calling other actors.
///
/// Cheap to clone; a clone may be moved into a [`Deferred`](crate::Deferred) answer or a task.
pub struct Ctx<A: Actor> {
    pub(crate) shared: Arc<Shared<A>>,
    pub(crate) conn: Option<Conn<A>>,
}

impl<A: Actor> Clone for Ctx<A> {
    fn clone(&self) -> Self {
        Ctx {
            shared: self.shared.clone(),
            conn: self.conn.clone(),
        }
    }
}

impl<A: Actor> std::fmt::Debug for Ctx<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("name", &A::NAME)
            .field("key", &self.shared.key)
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

impl<A: Actor> Ctx<A> {
    pub(crate) fn with_conn(&self, conn: Option<Conn<A>>) -> Self {
        Ctx {
            shared: self.shared.clone(),
            conn,
        }
    }

    /// The actor type's name.
    pub fn name(&self) -> &'static str {
        A::NAME
    }

    /// The actor's key.
    pub fn key(&self) -> &ActorKey {
        &self.shared.key
    }

    /// The actor's internal id.
    pub fn actor_id(&self) -> &ActorId {
        &self.shared.id
    }

    /// The connection that called the running action, if it came over one (stateless calls
    /// have an ephemeral connection; scheduled calls have none).
    pub fn conn(&self) -> Option<&Conn<A>> {
        self.conn.as_ref()
    }

    /// A snapshot of the live connections, in the order they joined (a connection back from
    /// hibernation counts as joining when its actor wakes; they keep their order among
    /// themselves).
    ///
    /// A stateless call (an action over HTTP, a raw request) is in the list while it runs,
    /// under its short-lived connection, and so is an open raw WebSocket
    /// ([`Conn::is_ephemeral`] tells them apart): the caller of such an action finds itself
    /// here, as with RivetKit. Filter them out where only realtime connections count (the
    /// members of a room, say).
    pub fn conns(&self) -> Vec<Conn<A>> {
        let conns = self.shared.conns();
        let mut all = Vec::with_capacity(conns.len());
        all.extend(conns.iter().cloned());
        all
    }

    /// The live connection with this id.
    pub fn conn_by_id(&self, id: &ConnId) -> Option<Conn<A>> {
        self.shared.conns().get(id).cloned()
    }

    /// The open raw WebSocket with this [`id`](RawSocket::id), if the actor accepted it and
    /// it has not closed.
    ///
    /// This is how an actor whose raw sockets hibernate
    /// ([`ActorOptions::hibernate_raw_websockets`](crate::ActorOptions::hibernate_raw_websockets))
    /// reaches them after a wake from an action, an alarm or its run loop: handles kept in
    /// memory do not survive the sleep, but ids kept in the state do, and each gives back a
    /// working handle for the same socket. The socket's connection is in [`conns`](Self::conns)
    /// as before.
    ///
    /// ```
    /// # use footlights_core::{Ctx, Actor, WsMessage};
    /// # fn tell<A: Actor>(ctx: &Ctx<A>, kept_ids: &[u64]) {
    /// for id in kept_ids {
    ///     if let Some(socket) = ctx.raw_socket(*id) {
    ///         socket.send(WsMessage::Text("news".into()));
    ///     }
    /// }
    /// # }
    /// ```
    pub fn raw_socket(&self, id: u64) -> Option<RawSocket> {
        self.shared.raw_sockets().get(&id).map(|(s, _)| s.clone())
    }

    /// Every open raw WebSocket the actor accepted, hibernated ones back from the sleep
    /// included, ordered by id (see [`raw_socket`](Self::raw_socket)).
    pub fn raw_sockets(&self) -> Vec<RawSocket> {
        self.shared
            .raw_sockets()
            .values()
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Sends an event to every connection subscribed to it.
    pub fn broadcast<E: Event>(&self, event: E) {
        match event.to_args() {
            Ok(args) => self.broadcast_raw(E::NAME, args),
            Err(e) => tracing::error!(event = E::NAME, error = %e, "event did not serialize"),
        }
    }

    /// Sends an event by name with raw arguments to every connection subscribed to it.
    ///
    /// The event is built once and shared by every connection, which encodes it once per wire
    /// format. Only the event's subscribers are visited, through the actor's subscription
    /// index, however many other connections the actor has.
    pub fn broadcast_raw(&self, name: &str, args: Vec<Value>) {
        let tap = &self.shared.tap;
        let outputs: Vec<Output> = {
            let conns = self.shared.conns();
            let mut sinks = conns.subscribers(name).peekable();
            if sinks.peek().is_none() {
                tap.publish(|| LogRecord::Event(EventRecord::of(name, &args, 0)));
                return;
            }
            // Made before the arguments move into the shared event, only when watched.
            let record = tap.is_watched().then(|| EventRecord::of(name, &args, 0));
            let event = SharedEvent::new(name, args);
            let outputs: Vec<Output> = sinks
                .map(|sink| Output::ToConn(sink.clone(), ToClient::Broadcast(event.clone())))
                .collect();
            if let Some(mut record) = record {
                record.recipients = outputs.len();
                tap.publish(|| LogRecord::Event(record));
            }
            outputs
        };
        self.shared.metrics.events(outputs.len());
        self.shared.gate.push_all(outputs);
    }

    /// Asks the actor to sleep as soon as the running action returns. Open connections are
    /// closed with "going away" so their clients reconnect (and wake it again).
    pub fn sleep(&self) {
        self.shared.sleep_requested.store(true, Ordering::Release);
    }

    /// Destroys the actor once the running action returns: the destroy hook runs, then its
    /// state, alarms and key are removed. Its id answers `actor.not_found` afterwards and the
    /// key can be created afresh.
    pub fn destroy(&self) {
        self.shared.destroy_requested.store(true, Ordering::Release);
    }

    /// A client for calling other actors (or this one) in the same process.
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The actor's own ordered key-value store, for data that outgrows the state: durable,
    /// committed with the state after each message, read a page at a time. See [`Kv`].
    ///
    /// ```no_run
    /// # async fn f<A: footlights_core::Actor>(ctx: &footlights_core::Ctx<A>) -> Result<(), footlights_core::ActionError> {
    /// ctx.kv().put("greeting", "hello").await?;
    /// let greeting: Option<String> = ctx.kv().get("greeting").await?;
    /// assert_eq!(greeting.as_deref(), Some("hello"));
    /// # Ok(()) }
    /// ```
    pub fn kv(&self) -> Kv<'_> {
        Kv::new(&self.shared.kv)
    }

    /// The actor's SQL database: SQLite, private to this actor, stored in the actor's storage
    /// and committed with its state. See [`db`](crate::db).
    ///
    /// ```no_run
    /// # async fn f<A: footlights_core::Actor>(ctx: &footlights_core::Ctx<A>) -> Result<(), footlights_core::ActionError> {
    /// ctx.db().execute("INSERT INTO notes (text) VALUES (?1)", ("hello",)).await?;
    /// let n: Option<i64> = ctx.db().query_first("SELECT count(*) FROM notes", ()).await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "db")]
    pub fn db(&self) -> crate::db::Db<'_> {
        let shared = &self.shared;
        let parts = shared
            .db
            .parts(shared.kv.driver(), &shared.id, &shared.gate);
        crate::db::Db::new(parts, shared.db.limits())
    }

    /// Runs `fut` and keeps the actor awake until it settles: the idle timeout does not put
    /// the actor to sleep meanwhile (an explicit [`sleep`](Self::sleep) or a destroy still
    /// happens). Use it in deferred answers, the run loop or tasks that hold a context.
    ///
    /// ```no_run
    /// # async fn f<A: footlights_core::Actor>(ctx: footlights_core::Ctx<A>) {
    /// let fetched = ctx.keep_awake(async { 42 }).await;
    /// # let _ = fetched; }
    /// ```
    pub async fn keep_awake<F: Future>(&self, fut: F) -> F::Output {
        struct Hold<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Hold<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.shared.awake_holds.fetch_add(1, Ordering::AcqRel);
        let _hold = Hold(&self.shared.awake_holds);
        fut.await
    }

    /// Runs `fut` as a task of its own, without keeping the actor awake; when the actor goes
    /// to sleep, stops or is destroyed, and when the registry shuts down (a server stopping),
    /// it first waits for the task, at most [`run_grace`](crate::ActorOptions::run_grace), then
    /// drops it (before the stop or the shutdown returns).
    pub fn wait_until<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        let task = tokio::spawn(fut);
        let mut tasks = lock(&self.shared.background);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// The actor's durable queues, for taking the messages clients send. See
    /// [`queue`](crate::queue).
    pub fn queue(&self) -> crate::queue::Queue<A> {
        crate::queue::Queue::new(self.with_conn(None))
    }
}
