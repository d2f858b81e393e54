//! Procedural macros for Footlights: `#[actor]` and `#[derive(Event)]`.
//!
//! Use them through the `footlights` crate (`footlights::actor`, `footlights::Event`, both in
//! `footlights::prelude`), not from this crate directly: the code they write names everything
//! through `::footlights::__private`.
//!
//! ```ignore
//! use footlights::prelude::*;
//!
//! #[derive(Default, Serialize, Deserialize)]
//! pub struct Counter {
//!     count: i64,
//! }
//!
//! #[derive(Clone, Serialize, Deserialize, Event)]
//! pub struct NewCount(pub i64);
//!
//! #[footlights::actor]
//! impl Counter {
//!     #[action]
//!     fn increment(&mut self, ctx: &Ctx<Self>, amount: i64) -> i64 {
//!         self.count += amount;
//!         ctx.broadcast(NewCount(self.count));
//!         self.count
//!     }
//!
//!     #[action]
//!     fn get_count(&self) -> i64 {
//!         self.count
//!     }
//! }
//!
//! // On the client side, handles and connections gain typed methods:
//! let n = counter.increment(5).await?; // via the generated `CounterActions` trait
//! ```
//!
//! What this crate is: sugar over public traits. Everything the macros write can be written by
//! hand (`examples/counter-no-macros` does): `ActorSpec` and `Action` from
//! `footlights-protocol`; `Actor`, `Handler`, `ReadHandler` and `DeferredHandler` from
//! `footlights-core`; `ActionCaller` from `footlights-client`.
//!
//! What it is not: a runtime. It adds no behaviour the traits do not have, and nothing it
//! generates is checked at run time that could be checked at compile time.
//!
//! # What `#[actor]` writes
//!
//! For `#[actor] impl Counter { .. }` with the actions above:
//!
//! - the `impl Counter` block itself, minus the lifecycle hooks (see below) and minus the
//!   `#[action]` attributes: action methods stay ordinary inherent methods;
//! - a module `counter_actions` (snake_case of the type name + `_actions`) with one struct per
//!   action, named in PascalCase after the method: `counter_actions::Increment { amount: i64 }`
//!   and `counter_actions::GetCount {}`. Each struct and its fields are exactly as visible as
//!   the method (`pub fn` gives a `pub` struct; a private `fn`, a struct visible in the module
//!   of the `impl` block), so private argument and result types stay allowed;
//! - `impl protocol::Action` for each struct: the wire name, `Output` (the method's result), and
//!   the positional argument list in parameter order. Missing trailing arguments read as `null`,
//!   so `Option` parameters may be left out; extra arguments are ignored; an argument of the
//!   wrong shape fails with `actor.invalid_request`;
//! - one handler impl per action, chosen by the receiver and the return type:
//!   `&self` → `ReadHandler` (never saves), `&mut self` → `Handler`, `&mut self` returning
//!   `Deferred<T>` (or `Result<Deferred<T>, E>`) → `DeferredHandler` with `Output = T`;
//! - `impl ActorSpec for Counter` (`NAME = "counter"`, `Input = ()` unless given);
//! - `impl Actor for Counter`: `type Conn`, `actions` registering every action, the hooks, and
//!   `create_state` returning `Self::default()` when the block does not define it;
//! - a client extension trait `CounterActions` with one method per action, named like the Rust
//!   method (`fn increment(&self, amount: i64) -> impl Future<Output = Result<i64,
//!   ActionError>> + Send`), implemented for every `ActionCaller<Counter>`: actor handles and
//!   connections. Bring it into scope where the actor is called (`use crate::rooms::CounterActions;`
//!   or a glob import of the actor's module).
//!
//! # Attribute arguments
//!
//! ```ignore
//! #[footlights::actor(name = "chatRoom", input = RoomConfig, conn = Conns<JoinParams, Member>)]
//! impl ChatRoom { /* .. */ }
//! ```
//!
//! - `name = ".."`: the name the actor type is registered and addressed under. Default:
//!   lowerCamelCase of the type name (`ChatRoom` → `chatRoom`).
//! - `input = Type`: `ActorSpec::Input`, what `create` / `get_or_create` hand to
//!   `create_state`. Default `()`.
//! - `conn = Conns<Params, State, Auth>`: `Actor::Conn`. Default `Conns` (any params, no
//!   connection state, no auth data). Name `Conns` as it is in scope where the `impl` is.
//!
//! # Actions
//!
//! Mark a method `#[action]`, or `#[action(name = "..")]` to choose its wire name (default:
//! lowerCamelCase of the method name, `get_count` → `getCount`).
//!
//! - Receiver: `&self` for reads, `&mut self` for writes. Methods without a receiver, or taking
//!   `self` by value, are rejected.
//! - Context: an optional `&Ctx<Self>` parameter, right after the receiver (recognised as a
//!   reference to a path whose last segment is `Ctx`).
//! - Arguments: every other parameter, written `name: Type` (plain names only, no patterns),
//!   with an owned type that is `Serialize + DeserializeOwned + Send`.
//! - Result: `T`, nothing (`()`), `Result<T, E>` with `E: Into<ActionError>` (any path whose
//!   last segment is `Result`, so `io::Result<T>`-style aliases work too), `Deferred<T>` or
//!   `Result<Deferred<T>, E>`. `T` must be owned and `Serialize + DeserializeOwned + Send`.
//! - Sync `fn` and `async fn` both work. Actions cannot be generic.
//!
//! Mistakes are compile errors pointing at the method: a missing receiver, `self` by value, a
//! `Deferred` result with `&self`, patterns or borrowed types as arguments, an error type
//! without `Into<ActionError>`, an argument type that is not serializable, an actor without
//! `Default` and without `create_state`. An error in one method does not hide the rest of the
//! actor, so each mistake is reported once.
//!
//! ```ignore
//! #[footlights::actor]
//! impl Room {
//!     /// Sends a message; docs carry over to the client method.
//!     #[action]
//!     async fn send(&mut self, ctx: &Ctx<Self>, text: String, reply_to: Option<u64>) -> Result<u64, RoomError> {
//!         if text.is_empty() {
//!             return Err(RoomError::Empty); // `RoomError: Into<ActionError>`
//!         }
//!         self.messages.push(Message { text, reply_to });
//!         ctx.broadcast(NewMessage(self.messages.len() as u64));
//!         Ok(self.messages.len() as u64)
//!     }
//!
//!     /// Answers once the next message arrives, without blocking other actions.
//!     #[action(name = "waitNext")]
//!     fn wait_for_next(&mut self) -> Deferred<String> {
//!         let (tx, rx) = tokio::sync::oneshot::channel();
//!         self.waiters.push(tx);
//!         Deferred::new(async move { rx.await.map_err(|_| ActionError::internal("room closed")) })
//!     }
//! }
//! ```
//!
//! # Lifecycle hooks
//!
//! Methods named like the hooks of `Actor` move into the generated `impl Actor`:
//! `create_state`, `options`, `on_create`, `create_vars`, `on_wake`, `on_sleep`, `on_destroy`,
//! `on_state_change`, `on_before_action_response`, `can_subscribe`, `inspect_conn_state`,
//! `on_before_connect`, `create_conn_state`, `on_connect`, `on_disconnect`, `on_request`, `on_websocket`,
//! `on_websocket_message`, `on_websocket_close`. Write them with the parameters and result the
//! trait declares; where the trait returns `impl Future<Output = R> + Send`, write
//! `async fn .. -> R`, or a plain `fn .. -> R` (the macro makes it `async`), or the trait's
//! exact `-> impl Future<..>` signature. `options`, `on_state_change`,
//! `on_before_action_response`, `can_subscribe` and `inspect_conn_state` are synchronous. A visibility such as `pub`
//! is dropped. Mistakes show up as ordinary "method has an incompatible type for trait" errors
//! pointing at the hook.
//!
//! ```ignore
//! #[footlights::actor(input = String)]
//! impl Room {
//!     async fn create_state(_ctx: &Ctx<Self>, topic: &String) -> Result<Self, ActionError> {
//!         Ok(Room { topic: topic.clone(), ..Default::default() })
//!     }
//!
//!     fn on_wake(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
//!         self.cache = Some(Cache::default()); // rebuilt on every start
//!         Ok(())
//!     }
//!
//!     fn options() -> ActorOptions {
//!         let mut options = ActorOptions::default(); // `#[non_exhaustive]`: no struct literal
//!         options.no_sleep = true;
//!         options
//!     }
//! }
//! ```
//!
//! # Limitations
//!
//! - The actor type must be one concrete, non-generic named type.
//! - Argument types are named again inside the generated `<type>_actions` module (which does
//!   `use super::*`); `self::` and `super::` paths are adjusted, but a type named like one of
//!   the generated structs (say, a type `Increment` used as an argument of `increment`) is
//!   shadowed by it: rename one, or name the type by a path (`crate::models::Increment`).
//! - The module `<type>_actions` and the trait `<Type>Actions` are always `pub` (the macro
//!   cannot see the type's visibility); they must not clash with other items in the same
//!   module. For a private actor type they are public in name only.
//! - The generated code names `::footlights`, so the macros work in crates that depend on the
//!   `footlights` facade under that name.
//! - An action may not take the Rust name of a handle or connection method (`call`, `action`,
//!   `status`, `id`, `events`, `once`, `errors`, `dispose`, `connect`, `resolve`, ...): it
//!   would be hidden by it, so the macro rejects it. Keep the wire name with
//!   `#[action(name = "status")]` on a method with another Rust name.

mod action;
mod actor;
mod event;
mod names;

use proc_macro::TokenStream;

/// Turns an inherent `impl` block into an actor: its `#[action]` methods become typed actions
/// and its lifecycle hooks the body of `impl Actor`. See the [crate docs](crate) for what it
/// generates.
///
/// Arguments, all optional: `name = ".."` (registered name, default lowerCamelCase of the type
/// name), `input = Type` (create input, default `()`), `conn = Conns<P, S, A>` (connection types,
/// default `Conns`).
///
/// ```ignore
/// #[footlights::actor(name = "counter")]
/// impl Counter {
///     #[action]
///     fn increment(&mut self, amount: i64) -> i64 {
///         self.count += amount;
///         self.count
///     }
/// }
/// ```
///
/// The type must implement `Serialize`, `Deserialize`, `Send` and `Sync` (it is the persisted
/// state), and `Default` unless the block defines `create_state`.
#[proc_macro_attribute]
pub fn actor(attr: TokenStream, item: TokenStream) -> TokenStream {
    actor::expand(attr.into(), item.into()).into()
}

/// Marks an action method inside an `#[actor]` block: `#[action]` or `#[action(name = "..")]`.
///
/// `#[actor]` reads and removes this attribute; anywhere else it is an error.
#[proc_macro_attribute]
pub fn action(attr: TokenStream, item: TokenStream) -> TokenStream {
    let _ = attr;
    let mut out: proc_macro2::TokenStream = syn::Error::new(
        proc_macro2::Span::call_site(),
        "`#[action]` only works on a method inside an `#[actor]` impl block, and `#[actor]` must \
         come first",
    )
    .to_compile_error();
    out.extend(proc_macro2::TokenStream::from(item));
    out.into()
}

/// Implements `protocol::Event` for a type: its wire name, and how it travels as arguments.
///
/// The wire name is lowerCamelCase of the type name (`NewCount` → `newCount`) unless given with
/// `#[event(name = "..")]`. The event is sent as one argument (the serialized value), except
/// for tuple structs of two or more fields, whose fields become separate arguments in order
/// (what a JavaScript `broadcast("moved", x, y)` sends), and for structs without fields
/// (`struct Ping;`, `struct Ping();`, `struct Ping {}`), which are sent with no arguments (what
/// `broadcast("ping")` sends; a listener is called with none).
///
/// The type must also derive (or implement) `Serialize` and `Deserialize` itself; this derive
/// does not. Spread fields are serialized each with their own `Serialize` impl, so `#[serde]`
/// attributes on the fields of a spread tuple struct do not apply.
///
/// ```ignore
/// #[derive(Clone, Serialize, Deserialize, Event)]
/// pub struct NewCount(pub i64); // "newCount", one argument: 5
///
/// #[derive(Clone, Serialize, Deserialize, Event)]
/// #[event(name = "moved")]
/// pub struct Position(pub f64, pub f64); // "moved", two arguments: 1.0, 2.0
///
/// #[derive(Clone, Serialize, Deserialize, Event)]
/// pub struct RoundOver; // "roundOver", no arguments
/// ```
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(item: TokenStream) -> TokenStream {
    event::expand(item.into()).into()
}
