//! The traits a user implements to define an actor.
//!
//! An actor is its persisted state: a serde type implementing [`Actor`]. Actions are
//! [`Handler`] (may change state), [`ReadHandler`] (reads only, never saves) or
//! [`DeferredHandler`] (answers later, without holding the state). `#[footlights::actor]`
//! writes these impls from plain methods; `examples/counter-no-macros` writes them by hand.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use footlights_protocol::{Action, ActionError, ActorSpec, Value};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::conn::{Conn, ConnRequest};
use crate::ctx::Ctx;
use crate::deferred::Deferred;
use crate::queue::{QueueSpec, Queues};
use crate::raw::{RawReply, RawRequest, RawSocket, WsMessage};
use crate::run::RunSignal;

/// The connection-related types of an actor: params clients send, the per-connection state,
/// and the auth data the before-connect hook returns.
///
/// Use [`Conns`] to name them: `type Conn = Conns<JoinParams, Member>;`.
pub trait ConnTypes: Send + Sync + 'static {
    /// What clients send when they connect (or with a stateless action). A client that sends
    /// none is read as `null`, or else as an empty object, so `Option<P>` and structs whose
    /// fields all have `#[serde(default)]` both accept it; other types refuse it with
    /// `actor.invalid_request`.
    type Params: DeserializeOwned + Send + Sync + 'static;
    /// Per-connection state, in memory while the connection lives. Its `Default` is the
    /// constant initial value used when [`Actor::create_conn_state`] is not overridden.
    type State: Default + Send + Sync + 'static;
    /// What [`Actor::on_before_connect`] returns; readable as [`Conn::auth`].
    type Auth: Default + Send + Sync + 'static;
}

/// Names an actor's connection types. Every parameter has a default, so `Conns` alone means
/// "any params, no state, no auth data".
///
/// ```
/// use footlights_core::{Conns, ConnTypes};
/// #[derive(serde::Deserialize)]
/// struct JoinParams { name: String }
/// #[derive(Default)]
/// struct Member { name: String }
/// type ChatConns = Conns<JoinParams, Member>;
/// fn state_of<C: ConnTypes>() {}
/// state_of::<ChatConns>();
/// ```
#[derive(Debug)]
pub struct Conns<Params = Value, State = (), Auth = ()>(Marker<Params, State, Auth>);

type Marker<P, S, A> = PhantomData<fn() -> (P, S, A)>;

impl<P, S, A> ConnTypes for Conns<P, S, A>
where
    P: DeserializeOwned + Send + Sync + 'static,
    S: Default + Send + Sync + 'static,
    A: Default + Send + Sync + 'static,
{
    type Params = P;
    type State = S;
    type Auth = A;
}

/// The params type of actor `A`'s connections.
pub type ParamsOf<A> = <<A as Actor>::Conn as ConnTypes>::Params;
/// The per-connection state type of actor `A`.
pub type ConnStateOf<A> = <<A as Actor>::Conn as ConnTypes>::State;
/// The auth data type of actor `A`'s connections.
pub type AuthOf<A> = <<A as Actor>::Conn as ConnTypes>::Auth;

/// Per-actor-type settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActorOptions {
    /// How long an actor with nothing to do (no message, request or pending work; open
    /// connections count only without [`hibernate_connections`](Self::hibernate_connections),
    /// open raw WebSockets only without
    /// [`hibernate_raw_websockets`](Self::hibernate_raw_websockets)) stays awake.
    pub sleep_timeout: Duration,
    /// How long an action may run before its caller gets `actor.action_timed_out`.
    pub action_timeout: Duration,
    /// How long each connect hook may run before the connection fails with
    /// `actor.callback_timed_out`.
    pub connect_timeout: Duration,
    /// How long a connection whose link dropped without a clean close is kept, so its
    /// client can resume it (state and subscriptions kept). Its disconnect hook runs after.
    pub conn_grace: Duration,
    /// Whether the actor sleeps at all.
    pub no_sleep: bool,
    /// How long an awake actor with nothing at all to do keeps a task of its own (1 s by
    /// default; `None` keeps it always). "Nothing at all": no connection or raw WebSocket,
    /// no pending answer, no running [`run`](Actor::run) loop, hold or
    /// [`wait_until`](crate::Ctx::wait_until) task, and every write durable.
    ///
    /// Past it the actor is *dormant*: its state and vars stay in memory, but the task that
    /// ran it is given back, and so are the parts of its context it holds empty (about
    /// 1,000 bytes in all; see the lifecycle chapter). The next message, alarm or call
    /// spawns a new task for it at once, with no storage read and no hook: to the actor and
    /// its callers it never stopped. A dormant actor still goes to sleep once its
    /// [`sleep_timeout`](Self::sleep_timeout) is up. The runtime's metrics count dormant
    /// actors ([`ActorTypeMetrics::dormant`](crate::metrics::ActorTypeMetrics::dormant)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use footlights_core::ActorOptions;
    ///
    /// let mut options = ActorOptions::default();
    /// assert_eq!(options.dormant_after, Some(Duration::from_secs(1)));
    /// // An actor called every few milliseconds for bursts: keep its task a little longer.
    /// options.dormant_after = Some(Duration::from_secs(10));
    /// ```
    pub dormant_after: Option<Duration>,
    /// Whether open connections let the actor sleep (`true` by default): after
    /// `sleep_timeout` with nothing to do, the actor saves and sleeps while the server keeps
    /// its clients' sockets open; the next message on any of them (or any other call) wakes
    /// it with every connection back as it was — same ids, state and subscriptions, no
    /// connect hooks — and a socket closed meanwhile wakes it to run its disconnect hook.
    /// `false` keeps an actor with connections awake.
    pub hibernate_connections: bool,
    /// Whether open raw WebSockets ([`Actor::on_websocket`]) let the actor sleep (`false` by
    /// default: an open raw socket keeps its actor awake). RivetKit calls this
    /// `canHibernateWebSocket`, also off by default.
    ///
    /// With it on, after `sleep_timeout` with nothing to do the actor saves and sleeps while
    /// the server keeps the raw sockets open, each with its connection (id, params, auth data
    /// and state) set aside in memory. What wakes the actor:
    ///
    /// - a message on one of the sockets: it reaches
    ///   [`on_websocket_message`](Actor::on_websocket_message) with a working [`RawSocket`]
    ///   for the same socket (same [`id`](RawSocket::id)), after
    ///   [`on_wake`](Actor::on_wake); [`on_websocket`](Actor::on_websocket) and the connect
    ///   hooks do not run again;
    /// - the client closing one of them: the actor wakes and runs
    ///   [`on_websocket_close`](Actor::on_websocket_close) (and `on_disconnect`) for it then;
    /// - any other call, as always.
    ///
    /// Once awake the actor finds every hibernated socket through
    /// [`Ctx::raw_sockets`](crate::Ctx::raw_sockets) and [`Ctx::raw_socket`](crate::Ctx::raw_socket)
    /// (by the id it kept in its state, say), and sends to or closes them as before. A
    /// [`RawSocket`] handle kept in memory from before the sleep (in a `#[serde(skip)]`
    /// field, a task) no longer sends: the woken actor gets a new handle for the same socket.
    ///
    /// A socket whose connection some other handle still holds when the actor goes to sleep
    /// (a [`Conn`] clone kept in memory) cannot be set aside: it is closed with "going away",
    /// as every raw socket is without this option. Hibernated sockets live in the process that
    /// holds them; a server restart closes them.
    ///
    /// ```
    /// use footlights_core::ActorOptions;
    ///
    /// let mut options = ActorOptions::default();
    /// assert!(!options.hibernate_raw_websockets);
    /// options.hibernate_raw_websockets = true;
    /// ```
    pub hibernate_raw_websockets: bool,
    /// The most an actor's key-value store ([`Ctx::kv`](crate::Ctx::kv)) may hold, in bytes
    /// of keys and values (10 GiB by default); past it, writes fail with `kv.actor_too_large`.
    pub kv_max_bytes: u64,
    /// The most one message (an action, a hook) may write to the store, in bytes of keys and
    /// values (16 MiB by default); past it, writes fail with `kv.message_too_large`.
    pub kv_max_message_bytes: u64,
    /// How many bytes of the store's values an awake actor keeps in memory for reads
    /// (256 KiB by default).
    pub kv_cache_bytes: usize,
    /// How many events one connection may subscribe to (256 by default); past it a
    /// subscription is refused with `connection.too_many_subscriptions`. Bounds what a client
    /// can make the server keep per connection.
    pub max_subscriptions: usize,
    /// The longest event name a connection may subscribe to, in bytes (256 by default); a
    /// longer one is refused with `connection.event_name_too_long`.
    pub max_event_name_bytes: usize,
    /// How long the [`run`](Actor::run) loop has to return once its signal fires, before
    /// the actor sleeps, stops or is destroyed without it (5 s by default).
    pub run_grace: Duration,
    /// The most an actor's database ([`Ctx::db`](crate::Ctx::db)) may hold, in bytes of
    /// pages (10 GiB by default); past it, writes fail with `db.too_large`.
    #[cfg(feature = "db")]
    pub db_max_bytes: u64,
    /// How many bytes of database pages an awake actor keeps cached in memory (2 MiB by
    /// default).
    #[cfg(feature = "db")]
    pub db_cache_bytes: usize,
    /// How long one database call may run (10 s by default); past it, the call is
    /// interrupted with `db.statement_timeout`.
    #[cfg(feature = "db")]
    pub db_statement_timeout: Duration,
    /// The most rows one query may return (100 000 by default); past it, the query fails
    /// with `db.too_many_rows`.
    #[cfg(feature = "db")]
    pub db_max_rows: usize,
    /// The database's schema steps, run at start before any hook, each once.
    #[cfg(feature = "db")]
    pub db_migrations: Vec<crate::db::Migration>,
}

impl Default for ActorOptions {
    fn default() -> Self {
        ActorOptions {
            sleep_timeout: Duration::from_secs(30),
            action_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            conn_grace: Duration::from_secs(15),
            no_sleep: false,
            dormant_after: Some(Duration::from_secs(1)),
            hibernate_connections: true,
            hibernate_raw_websockets: false,
            kv_max_bytes: 10 << 30,
            kv_max_message_bytes: 16 << 20,
            kv_cache_bytes: 256 << 10,
            max_subscriptions: 256,
            max_event_name_bytes: 256,
            run_grace: Duration::from_secs(5),
            #[cfg(feature = "db")]
            db_max_bytes: 10 << 30,
            #[cfg(feature = "db")]
            db_cache_bytes: 2 << 20,
            #[cfg(feature = "db")]
            db_statement_timeout: Duration::from_secs(10),
            #[cfg(feature = "db")]
            db_max_rows: 100_000,
            #[cfg(feature = "db")]
            db_migrations: Vec::new(),
        }
    }
}

/// A stateful actor. The implementing type is the actor's durable state.
///
/// Only [`create_state`](Actor::create_state) and [`actions`](Actor::actions) are required;
/// every hook has a default that does nothing. Hooks and actions of one actor never run at the
/// same time, so they take `&mut self` without locks.
///
/// Start order: on first creation `create_state` → `on_create` → `create_vars` → `on_wake`;
/// on every later start (after sleep or a restart) `create_vars` → `on_wake`.
/// Fields marked `#[serde(skip)]` are not saved: rebuild them in `create_vars`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an actor",
    note = "add `#[footlights::actor]` to an `impl {Self}` block with `#[action]` methods, or implement `footlights::Actor` by hand"
)]
pub trait Actor: ActorSpec + Serialize + DeserializeOwned + Send + Sync + Sized {
    /// The connection types: `Conns<Params, State, Auth>`.
    type Conn: ConnTypes;

    /// Builds the initial state from the create input. Runs once, on first creation.
    fn create_state(
        ctx: &Ctx<Self>,
        input: &Self::Input,
    ) -> impl Future<Output = Result<Self, ActionError>> + Send;

    /// Registers the actor's actions by name.
    fn actions(table: &mut ActionTable<Self>);

    /// Declares the queues clients may send to, with their message types and limits (none by
    /// default). See [`queue`](crate::queue).
    fn queues(queues: &mut Queues<Self>) {
        let _ = queues;
    }

    /// The background run loop, started after the wake hook each time the actor starts and
    /// driven beside the mailbox (actions keep being served). It owns what it uses: change
    /// the state through [`QueueMessage::complete_with`](crate::queue::QueueMessage::complete_with)
    /// or actions. Return when `signal` fires. See [`run`](crate::run) for when it keeps the
    /// actor awake and how it is restarted. The default has no loop.
    fn run(
        ctx: Ctx<Self>,
        signal: RunSignal,
    ) -> impl Future<Output = Result<(), ActionError>> + Send + 'static {
        let _ = (ctx, signal);
        async { Err(crate::run::not_defined()) }
    }

    /// Settings for this actor type. Read once, when the type is registered; every instance
    /// shares that value.
    fn options() -> ActorOptions {
        ActorOptions::default()
    }

    /// Runs once after the state is first created, with the create input.
    fn on_create(
        &mut self,
        ctx: &Ctx<Self>,
        input: &Self::Input,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (ctx, input);
        async { Ok(()) }
    }

    /// Rebuilds ephemeral (`#[serde(skip)]`) fields; runs on every start, before `on_wake`.
    fn create_vars(
        &mut self,
        ctx: &Ctx<Self>,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs on every start (first creation, after sleep, after a restart).
    fn on_wake(&mut self, ctx: &Ctx<Self>) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs before the actor sleeps; the state is saved after it.
    fn on_sleep(&mut self, ctx: &Ctx<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Runs before the actor is destroyed.
    fn on_destroy(&mut self, ctx: &Ctx<Self>) -> impl Future<Output = ()> + Send {
        let _ = ctx;
        async {}
    }

    /// Runs once after each change of the state (not for reads, not for connection changes,
    /// not for changes made inside this hook).
    fn on_state_change(&mut self, ctx: &Ctx<Self>) {
        let _ = ctx;
    }

    /// Runs after an action succeeded, before its answer leaves (for every caller: stateless
    /// calls, connections, the in-process client; for deferred answers when they are ready);
    /// returns the output to send, the one given by default. An error here is answered instead
    /// of the output. Use it to strip or decorate outputs in one place: it reads the state but
    /// cannot change it.
    ///
    /// ```
    /// # use footlights_core::{Actor, ActionError, ActionTable, Conns, Ctx, Value};
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Doc;
    /// # impl footlights_protocol::ActorSpec for Doc { const NAME: &'static str = "doc"; type Input = (); }
    /// impl Actor for Doc {
    /// #   type Conn = Conns;
    /// #   async fn create_state(_: &Ctx<Self>, _: &()) -> Result<Self, ActionError> { Ok(Doc) }
    /// #   fn actions(_: &mut ActionTable<Self>) {}
    ///     // Every answer of `export` comes wrapped with the format it is in.
    ///     fn on_before_action_response(
    ///         &self,
    ///         _ctx: &Ctx<Self>,
    ///         action: &str,
    ///         output: Value,
    ///     ) -> Result<Value, ActionError> {
    ///         if action != "export" {
    ///             return Ok(output);
    ///         }
    ///         Ok(Value::Object(vec![("format".into(), "v1".into()), ("data".into(), output)]))
    ///     }
    /// }
    /// ```
    fn on_before_action_response(
        &self,
        ctx: &Ctx<Self>,
        action: &str,
        output: Value,
    ) -> Result<Value, ActionError> {
        let _ = (ctx, action);
        Ok(output)
    }

    /// The per-connection state as the inspector shows it; the default shows none, since
    /// the state type need not be serializable. Return `footlights::to_value(state).ok()`
    /// (or a redacted copy) to show it.
    ///
    /// Called between two messages of the actor, when an operator reads it.
    fn inspect_conn_state(&self, state: &ConnStateOf<Self>) -> Option<Value> {
        let _ = state;
        None
    }

    /// Decides whether connection `conn` may subscribe to `event`; the default allows every
    /// event. Unsubscribing is always allowed.
    ///
    /// An error (usually [`ActionError::forbidden`]) refuses the subscription the way RivetKit
    /// 2.3 does, whatever the transport: the client gets the error, then the connection is
    /// closed with code 1011 and the error's `group.code` (its disconnect hook runs). The
    /// official clients reconnect after such a close and subscribe again to every event they
    /// listen to, so a client should not listen to events it may be refused.
    fn can_subscribe(
        &self,
        ctx: &Ctx<Self>,
        conn: &Conn<Self>,
        event: &str,
    ) -> Result<(), ActionError> {
        let _ = (ctx, conn, event);
        Ok(())
    }

    /// Decides whether a client may connect. Returning an error rejects the connection with
    /// that error's code (for example [`ActionError::forbidden`]); the value returned is the
    /// connection's auth data. Stateless actions run it too.
    fn on_before_connect(
        &mut self,
        ctx: &Ctx<Self>,
        params: &ParamsOf<Self>,
        request: &ConnRequest,
    ) -> impl Future<Output = Result<AuthOf<Self>, ActionError>> + Send {
        let _ = (ctx, params, request);
        async { Ok(AuthOf::<Self>::default()) }
    }

    /// Builds a connection's state from its params. The default is `State::default()`.
    fn create_conn_state(
        &mut self,
        ctx: &Ctx<Self>,
        params: &ParamsOf<Self>,
        request: &ConnRequest,
    ) -> impl Future<Output = Result<ConnStateOf<Self>, ActionError>> + Send {
        let _ = (ctx, params, request);
        async { Ok(ConnStateOf::<Self>::default()) }
    }

    /// Runs when a connection has been added to the connection list.
    fn on_connect(
        &mut self,
        ctx: &Ctx<Self>,
        conn: &Conn<Self>,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (ctx, conn);
        async { Ok(()) }
    }

    /// Runs after a connection has left the connection list; its state is still readable.
    fn on_disconnect(
        &mut self,
        ctx: &Ctx<Self>,
        conn: &Conn<Self>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ctx, conn);
        async {}
    }

    /// Handles a raw HTTP request (a client's `fetch` to `/request/...`). It runs with a
    /// short-lived connection, like a stateless action, and answers with a [`RawReply`]:
    ///
    /// - a response (`Ok(response.into())`), which goes back unchanged;
    /// - [`RawReply::later`]: a response made beside the mailbox, without the state. Use it for
    ///   anything slow, so the actor keeps serving other actions and requests meanwhile; work
    ///   done here, before returning, holds the actor like any `&mut self` action;
    /// - [`RawReply::NoResponse`]: the client gets 500 `handler.invalid_request_handler_response`;
    /// - [`RawReply::NotDefined`], the default: the actor has no handler, the client gets 404
    ///   `handler.request_not_defined`.
    ///
    /// An error is answered like an action's (status from its code, internal errors masked).
    fn on_request(
        &mut self,
        ctx: &Ctx<Self>,
        request: RawRequest,
    ) -> impl Future<Output = Result<RawReply, ActionError>> + Send {
        let _ = (ctx, request);
        async { Ok(RawReply::NotDefined) }
    }

    /// A raw WebSocket opens (`/websocket/...`). Return `true` to accept it and keep `socket`
    /// to send on it; the default refuses it (no handler). The socket keeps the actor awake
    /// while it is open, unless the actor type opts in to
    /// [`hibernate_raw_websockets`](ActorOptions::hibernate_raw_websockets). Raw sockets get no events; each runs under a connection without a
    /// realtime link ([`Conn::is_ephemeral`]), listed in [`Ctx::conns`] while the socket is open.
    fn on_websocket(
        &mut self,
        ctx: &Ctx<Self>,
        socket: &RawSocket,
        request: &ConnRequest,
    ) -> impl Future<Output = Result<bool, ActionError>> + Send {
        let _ = (ctx, socket, request);
        async { Ok(false) }
    }

    /// A message arrived on an accepted raw WebSocket. On a socket that hibernated
    /// ([`ActorOptions::hibernate_raw_websockets`]) the message woke the actor first, and
    /// `socket` is a new handle for the same socket.
    fn on_websocket_message(
        &mut self,
        ctx: &Ctx<Self>,
        socket: &RawSocket,
        msg: WsMessage,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ctx, socket, msg);
        async {}
    }

    /// A raw WebSocket closed (by the client, or by [`RawSocket::close`]). A client that closes
    /// a socket hibernating with its actor ([`ActorOptions::hibernate_raw_websockets`]) wakes
    /// the actor, and this runs then, after [`on_wake`](Self::on_wake).
    fn on_websocket_close(
        &mut self,
        ctx: &Ctx<Self>,
        socket: &RawSocket,
        code: u16,
        reason: &str,
    ) -> impl Future<Output = ()> + Send {
        let _ = (ctx, socket, code, reason);
        async {}
    }
}

/// An action that may change the actor's state. After it returns, the state is saved if it
/// changed, and its reply is released once that save is durable.
pub trait Handler<M: Action>: Actor {
    /// Runs the action.
    fn handle(
        &mut self,
        ctx: &Ctx<Self>,
        msg: M,
    ) -> impl Future<Output = Result<M::Output, ActionError>> + Send;
}

/// An action that only reads the state. It never causes a save.
pub trait ReadHandler<M: Action>: Actor {
    /// Runs the action.
    fn handle(
        &self,
        ctx: &Ctx<Self>,
        msg: M,
    ) -> impl Future<Output = Result<M::Output, ActionError>> + Send;
}

/// An action that answers later: it may change the state now, then returns a [`Deferred`]
/// future (which holds no borrow of the state) that the actor drives beside its mailbox, so
/// other messages keep being processed while it waits.
pub trait DeferredHandler<M: Action>: Actor {
    /// Runs the action's synchronous part and returns the pending answer.
    fn handle(
        &mut self,
        ctx: &Ctx<Self>,
        msg: M,
    ) -> impl Future<Output = Result<Deferred<M::Output>, ActionError>> + Send;
}

/// What an action produced: a value now, or a future answer.
pub(crate) enum Outcome {
    Now(Value),
    Later(BoxFuture<'static, Result<Value, ActionError>>),
}

type ReadFn<A> =
    for<'a> fn(&'a A, &'a Ctx<A>, Vec<Value>) -> BoxFuture<'a, Result<Outcome, ActionError>>;
type WriteFn<A> =
    for<'a> fn(&'a mut A, &'a Ctx<A>, Vec<Value>) -> BoxFuture<'a, Result<Outcome, ActionError>>;

pub(crate) enum Entry<A: Actor> {
    Read(ReadFn<A>),
    Write(WriteFn<A>),
}

impl<A: Actor> Clone for Entry<A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A: Actor> Copy for Entry<A> {}

/// The actions of an actor type, by wire name. Filled in by [`Actor::actions`].
pub struct ActionTable<A: Actor> {
    entries: std::collections::HashMap<&'static str, Entry<A>>,
    timeouts: std::collections::HashMap<&'static str, Duration>,
    /// The declared queues, shared with every instance.
    pub(crate) queues: Arc<std::collections::HashMap<String, QueueSpec>>,
    /// The type's settings ([`Actor::options`]), read once and shared with every instance.
    pub(crate) options: Arc<ActorOptions>,
    /// Whether the log has warned that a snapshot of this type grew large (once per type).
    pub(crate) warned_large_snapshot: std::sync::atomic::AtomicBool,
    /// Whether an instance found that the type has no run loop (the default `run` answered),
    /// so later instances do not start one to find out again.
    pub(crate) run_absent: std::sync::atomic::AtomicBool,
}

impl<A: Actor> std::fmt::Debug for ActionTable<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.entries.keys()).finish()
    }
}

fn encode<T: Serialize + 'static>(out: &T) -> Result<Value, ActionError> {
    footlights_protocol::to_value_exact(out)
        .map_err(|e| ActionError::internal(format!("action output did not serialize: {e}")))
}

impl<A: Actor> ActionTable<A> {
    pub(crate) fn new() -> Self {
        ActionTable {
            entries: Default::default(),
            timeouts: Default::default(),
            queues: Default::default(),
            options: Arc::new(A::options()),
            warned_large_snapshot: Default::default(),
            run_absent: Default::default(),
        }
    }

    /// Registers an action that may change state ([`Handler`]).
    pub fn write<M: Action>(&mut self) -> &mut Self
    where
        A: Handler<M>,
    {
        self.entries.insert(
            M::NAME,
            Entry::Write(|actor, ctx, args| {
                Box::pin(async move {
                    let msg = M::from_args(args)?;
                    let out = Handler::<M>::handle(actor, ctx, msg).await?;
                    Ok(Outcome::Now(encode(&out)?))
                })
            }),
        );
        self
    }

    /// Registers an action that only reads state ([`ReadHandler`]).
    pub fn read<M: Action>(&mut self) -> &mut Self
    where
        A: ReadHandler<M>,
    {
        self.entries.insert(
            M::NAME,
            Entry::Read(|actor, ctx, args| {
                Box::pin(async move {
                    let msg = M::from_args(args)?;
                    let out = ReadHandler::<M>::handle(actor, ctx, msg).await?;
                    Ok(Outcome::Now(encode(&out)?))
                })
            }),
        );
        self
    }

    /// Registers an action that answers later ([`DeferredHandler`]).
    pub fn deferred<M: Action>(&mut self) -> &mut Self
    where
        A: DeferredHandler<M>,
    {
        self.entries.insert(
            M::NAME,
            Entry::Write(|actor, ctx, args| {
                Box::pin(async move {
                    let msg = M::from_args(args)?;
                    let pending = DeferredHandler::<M>::handle(actor, ctx, msg).await?;
                    let fut = pending.into_future();
                    Ok(Outcome::Later(Box::pin(async move { encode(&fut.await?) })))
                })
            }),
        );
        self
    }

    pub(crate) fn get(&self, name: &str) -> Option<Entry<A>> {
        self.entries.get(name).copied()
    }

    /// Gives one action its own timeout instead of [`ActorOptions::action_timeout`].
    pub fn timeout(&mut self, name: &'static str, limit: Duration) -> &mut Self {
        self.timeouts.insert(name, limit);
        self
    }

    pub(crate) fn timeout_of(&self, name: &str) -> Option<Duration> {
        self.timeouts.get(name).copied()
    }

    /// The wire names of all registered actions.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.entries.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// Whether an action of that wire name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}
