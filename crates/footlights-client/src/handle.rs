//! The client and actor handles.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use footlights_protocol::{
    Action, ActionError, ActorId, ActorKey, ActorSpec, Value, from_value_exact, to_value,
};
use serde::Serialize;

use crate::connection::{Connection, ConnectionOptions};
use crate::error::invalid_response;
use crate::transport::{SendOutcome, Target, Transport};

/// A client: how code reaches actors, over the network or in the same process.
///
/// Over the network: [`Client::new`] or [`Client::builder`] (feature `net`). In the same
/// process: `Registry::client()` in `footlights-core`. Both give the same handles and
/// connections. Cheap to clone; every clone shares the transport (and its connection pool).
#[derive(Clone, Debug)]
pub struct Client {
    transport: Arc<dyn Transport>,
}

impl Client {
    /// A client over any transport.
    pub fn from_transport(transport: impl Transport) -> Self {
        Client {
            transport: Arc::new(transport),
        }
    }

    /// A client over a shared transport.
    pub fn from_shared(transport: Arc<dyn Transport>) -> Self {
        Client { transport }
    }

    /// The transport this client uses.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    fn handle<A: ActorSpec>(&self, target: Target, error: Option<ActionError>) -> ActorHandle<A> {
        ActorHandle {
            client: self.clone(),
            target: Arc::new(target),
            params: None,
            error,
            _actor: PhantomData,
        }
    }

    /// A handle to an existing actor. Lazy: nothing is sent until the first call, which fails
    /// with `actor.not_found` if there is no such actor.
    pub fn get<A: ActorSpec>(&self, key: impl Into<ActorKey>) -> ActorHandle<A> {
        self.handle(
            Target::Get {
                name: A::NAME.to_owned(),
                key: key.into(),
            },
            None,
        )
    }

    /// A handle to the actor with this key, created on first use if there is none. Lazy:
    /// nothing is sent until the first call. Use
    /// [`get_or_create_with`](Self::get_or_create_with) to give the create input.
    pub fn get_or_create<A: ActorSpec>(&self, key: impl Into<ActorKey>) -> ActorHandle<A> {
        let target = Target::GetOrCreate {
            name: A::NAME.to_owned(),
            key: key.into(),
            input: None,
        };
        self.handle(target, None)
    }

    /// Like [`get_or_create`](Self::get_or_create), with the input the actor is created with.
    pub fn get_or_create_with<A: ActorSpec>(
        &self,
        key: impl Into<ActorKey>,
        input: &A::Input,
    ) -> ActorHandle<A> {
        let (input, error) = match to_value(input) {
            Ok(v) => (Some(v), None),
            Err(e) => (
                None,
                Some(ActionError::invalid_request(format!("input: {e}"))),
            ),
        };
        let target = Target::GetOrCreate {
            name: A::NAME.to_owned(),
            key: key.into(),
            input,
        };
        self.handle(target, error)
    }

    /// Creates a new actor with this key and input.
    ///
    /// # Errors
    /// `actor.duplicate_key` if an actor already has this key.
    pub async fn create<A: ActorSpec>(
        &self,
        key: impl Into<ActorKey>,
        input: &A::Input,
    ) -> Result<ActorHandle<A>, ActionError> {
        let input = to_value(input)?;
        let id = self
            .transport
            .create(A::NAME, &key.into(), Some(input))
            .await?;
        Ok(self.get_for_id(id))
    }

    /// A handle to an actor by its internal id.
    pub fn get_for_id<A: ActorSpec>(&self, id: impl Into<ActorId>) -> ActorHandle<A> {
        self.handle(
            Target::Id {
                name: A::NAME.to_owned(),
                id: id.into(),
            },
            None,
        )
    }

    /// An untyped handle for any target, for callers without the actor's Rust type.
    pub fn handle_for(&self, target: Target) -> ActorHandle<Untyped> {
        self.handle(target, None)
    }
}

/// The actor type of untyped handles; use [`ActorHandle::action`] on them.
#[derive(Debug)]
pub struct Untyped;

impl ActorSpec for Untyped {
    const NAME: &'static str = "";
    type Input = Value;
}

/// A handle to one actor: call its actions (stateless) or [`connect`](Self::connect) to it,
/// send to its queues, or reach its raw handlers ([`fetch`](Self::fetch),
/// [`websocket`](Self::websocket)).
///
/// Cheap to clone and lazy: creating one sends nothing.
pub struct ActorHandle<A> {
    client: Client,
    target: Arc<Target>,
    params: Option<Arc<Value>>,
    error: Option<ActionError>,
    _actor: PhantomData<fn() -> A>,
}

impl<A> Clone for ActorHandle<A> {
    fn clone(&self) -> Self {
        ActorHandle {
            client: self.client.clone(),
            target: self.target.clone(),
            params: self.params.clone(),
            error: self.error.clone(),
            _actor: PhantomData,
        }
    }
}

impl<A> std::fmt::Debug for ActorHandle<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorHandle")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<A: ActorSpec> ActorHandle<A> {
    /// The same handle with connection params, sent with stateless actions and used by
    /// [`connect`](Self::connect).
    #[must_use]
    pub fn with_params<P: Serialize + ?Sized>(mut self, params: &P) -> Self {
        match to_value(params) {
            Ok(v) => self.params = Some(Arc::new(v)),
            Err(e) => self.error = Some(ActionError::invalid_request(format!("params: {e}"))),
        }
        self
    }

    /// Where this handle points.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The client this handle came from.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn check(&self) -> Result<(), ActionError> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Calls an action by wire name with positional arguments.
    ///
    /// # Errors
    /// The actor's error, with its code.
    pub async fn action(&self, name: &str, args: Vec<Value>) -> Result<Value, ActionError> {
        self.check()?;
        let params = self.params.as_deref();
        self.client
            .transport
            .action(&self.target, name, args, params)
            .await
    }

    /// Sends `body` to the actor's queue `name` and returns once the message is stored
    /// durably (`handle.send(name, body)` in the JavaScript client; named apart here so an
    /// action called `send` keeps its name on handles).
    ///
    /// # Errors
    /// `auth.forbidden` for a queue the actor does not accept, `queue.invalid_message`,
    /// `queue.message_too_large`, `actor.overloaded` for a full queue; transport errors.
    pub async fn enqueue<B: serde::Serialize + 'static>(
        &self,
        name: &str,
        body: &B,
    ) -> Result<(), ActionError> {
        self.queue_send(name, body, None).await.map(drop)
    }

    /// Sends `body` to the actor's queue `name` and waits, at most `timeout`, for the actor to
    /// complete it (`{ wait: true, timeout }` in the JavaScript client).
    ///
    /// # Errors
    /// As [`enqueue`](Self::enqueue).
    pub async fn enqueue_and_wait<B: serde::Serialize + 'static>(
        &self,
        name: &str,
        body: &B,
        timeout: std::time::Duration,
    ) -> Result<SendOutcome, ActionError> {
        self.queue_send(name, body, Some(timeout)).await
    }

    async fn queue_send<B: serde::Serialize + 'static>(
        &self,
        name: &str,
        body: &B,
        wait: Option<std::time::Duration>,
    ) -> Result<SendOutcome, ActionError> {
        self.check()?;
        let body = footlights_protocol::to_value_exact(body)
            .map_err(|e| ActionError::invalid_request(format!("queue message: {e}")))?;
        let params = self.params.as_deref();
        self.client
            .transport
            .queue_send(&self.target, name, body, wait, params)
            .await
    }

    /// Sends a raw HTTP request to the actor's request handler (`on_request`), with this
    /// handle's params, and returns the response whatever its status (`handle.fetch(path,
    /// init)` in the JavaScript client). The request's path and query are what the handler
    /// sees; a scheme and authority in its URI are ignored.
    ///
    /// Errors the server answers are responses too: an actor without a request handler (or
    /// a path it does not serve) answers 404 `handler.request_not_defined`, a `get` handle
    /// without an actor 404 `actor.not_found`; [`response_error`](crate::response_error)
    /// reads the coded error out of such a response. The same holds in the same process (the
    /// registry's client, actor-to-actor handles), where the request goes straight to the
    /// actor's mailbox.
    ///
    /// ```no_run
    /// # async fn demo(client: footlights_client::Client)
    /// #     -> Result<(), Box<dyn std::error::Error>> {
    /// use footlights_client::{Target, response_error};
    ///
    /// let handle = client.handle_for(Target::GetOrCreate {
    ///     name: "files".into(),
    ///     key: "docs".into(),
    ///     input: None,
    /// });
    /// let request = http::Request::builder()
    ///     .method("POST")
    ///     .uri("/upload?name=a.txt")
    ///     .header("content-type", "text/plain")
    ///     .body("hello".into())?;
    /// let response = handle.fetch(request).await?;
    /// if let Some(e) = response_error(&response) {
    ///     eprintln!("refused: {e}");
    /// } else {
    ///     println!("{}: {:?}", response.status(), response.body());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Failures before any answer: the network (`client.request_failed`,
    /// `client.timed_out`), params that do not fit in a header (`client.invalid_request`), a
    /// key that had to be resolved first and was not found.
    pub async fn fetch(
        &self,
        mut request: crate::RawRequest,
    ) -> Result<crate::RawResponse, ActionError> {
        self.check()?;
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = crate::raw::raw_path(path)?.into();
        let params = self.params.as_deref();
        self.client
            .transport
            .fetch(&self.target, request, params)
            .await
    }

    /// Opens a raw WebSocket to the actor's WebSocket handler (`on_websocket`) on `path` (a
    /// path with an optional query; a missing leading `/` is added), with this handle's
    /// params (`handle.webSocket(path)` in the JavaScript client). Messages pass through
    /// untouched: text stays text, binary stays binary.
    ///
    /// An actor that refuses the socket, or has none, closes it at once: the socket's stream
    /// ends and [`RawWebSocket::close_reason`](crate::RawWebSocket::close_reason) holds code
    /// 1011 with the coded reason (`handler.websocket_not_defined`, `auth.forbidden`, …).
    /// Works the same in the same process.
    ///
    /// ```no_run
    /// # async fn demo(handle: footlights_client::ActorHandle<footlights_client::Untyped>)
    /// #     -> Result<(), footlights_protocol::ActionError> {
    /// use futures::StreamExt;
    ///
    /// let mut socket = handle.websocket("/chat?room=1").await?;
    /// socket.send("hi")?;
    /// socket.send(vec![1u8, 2, 3])?;
    /// while let Some(msg) = socket.next().await {
    ///     println!("{msg:?}");
    /// }
    /// println!("closed: {:?}", socket.close_reason());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `client.invalid_request` for a path that is not a URL path; failures to open the
    /// socket (`client.connection_open_failed`, `client.timed_out`).
    pub async fn websocket(&self, path: &str) -> Result<crate::RawWebSocket, ActionError> {
        self.check()?;
        let path = crate::raw::raw_path(path)?;
        let params = self.params.as_deref();
        self.client
            .transport
            .websocket(&self.target, path.as_str(), params)
            .await
    }

    /// The actor's id, creating the actor first for `get_or_create` handles.
    ///
    /// # Errors
    /// `actor.not_found` for a `get` handle with no actor.
    pub async fn resolve(&self) -> Result<ActorId, ActionError> {
        self.check()?;
        self.client.transport.resolve(&self.target).await
    }

    /// Opens a realtime connection with this handle's params.
    ///
    /// # Errors
    /// When the first attempt is rejected for good (for example `auth.forbidden`); transient
    /// failures are retried in the background instead.
    pub async fn connect(&self) -> Result<Connection<A>, ActionError> {
        self.connect_with(ConnectionOptions::default()).await
    }

    /// Opens a realtime connection with options.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(
        &self,
        options: ConnectionOptions,
    ) -> Result<Connection<A>, ActionError> {
        self.check()?;
        Connection::open(
            self.client.transport.clone(),
            (*self.target).clone(),
            self.params.as_deref().cloned(),
            options,
        )
        .await
    }
}

/// Anything typed actions of actor `A` can be called on: handles and connections.
///
/// `#[footlights::actor]` generates an extension trait with one method per action on top of it,
/// so `counter.increment(5).await?` works on both.
pub trait ActionCaller<A: ActorSpec>: Send + Sync {
    /// Calls a typed action.
    fn call<M: Action>(
        &self,
        msg: M,
    ) -> impl Future<Output = Result<M::Output, ActionError>> + Send;
}

pub(crate) fn decode_output<M: Action>(v: Value) -> Result<M::Output, ActionError> {
    from_value_exact(v).map_err(|e| invalid_response(format!("`{}` output: {e}", M::NAME)))
}

impl<A: ActorSpec> ActionCaller<A> for ActorHandle<A> {
    fn call<M: Action>(
        &self,
        msg: M,
    ) -> impl Future<Output = Result<M::Output, ActionError>> + Send {
        let args = msg.into_args();
        async move { decode_output::<M>(self.action(M::NAME, args?).await?) }
    }
}
