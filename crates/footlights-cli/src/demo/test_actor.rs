//! `testActor`: behaviour the JavaScript compatibility tests check that no demo actor needs —
//! create input, a connection refused with a user error, a masked internal error, a user error
//! of any shape, an action that runs past its timeout, a server-side disconnect, and an event
//! without arguments. Served only with `--with-test-actors`.

use std::time::Duration;

use footlights::prelude::*;
use footlights::{ActorOptions, ConnRequest, Conns, Value};

/// Every action of `testActor` times out after this long.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(1);

/// Connection params: `{ refuse?: string }`. With `refuse`, the connection (or stateless call)
/// is refused with the user error of that code, message [`REFUSAL_MESSAGE`] and metadata
/// `{"refused": true}`.
#[derive(Debug, Default, Deserialize)]
pub struct TestParams {
    refuse: Option<String>,
}

/// The message of a refusal asked for with `refuse`.
pub const REFUSAL_MESSAGE: &str = "connection refused as requested";

/// Metadata of a refusal.
#[derive(Serialize)]
struct Refused {
    refused: bool,
}

/// `poked`: an event without arguments (listeners are called with none).
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct Poked;

/// The state: the input the actor was created with (`null` if none).
#[derive(Debug, Serialize, Deserialize)]
pub struct TestActor {
    input: Value,
}

#[footlights::actor(name = "testActor", input = Value, conn = Conns<Option<TestParams>>)]
impl TestActor {
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<TestParams>,
        _request: &ConnRequest,
    ) -> Result<(), ActionError> {
        match params.as_ref().and_then(|p| p.refuse.clone()) {
            Some(code) => {
                Err(ActionError::user(code, REFUSAL_MESSAGE)
                    .with_metadata(&Refused { refused: true }))
            }
            None => Ok(()),
        }
    }

    async fn create_state(_ctx: &Ctx<Self>, input: &Value) -> Result<Self, ActionError> {
        Ok(TestActor {
            input: input.clone(),
        })
    }

    fn options() -> ActorOptions {
        let mut options = ActorOptions::default();
        options.action_timeout = ACTION_TIMEOUT;
        options
    }

    /// The create input, as it arrived.
    #[action]
    pub fn get_input(&self) -> Value {
        self.input.clone()
    }

    /// Fails with the user error `user.<code>`, its message and metadata (if not null).
    #[action]
    pub fn user_error(
        &self,
        code: String,
        message: String,
        metadata: Option<Value>,
    ) -> Result<(), ActionError> {
        Err(ActionError::user(code, message).with_metadata_value(metadata.filter(|m| !m.is_null())))
    }

    /// Fails with an internal error whose details must never reach the client.
    #[action]
    pub fn internal_error(&self) -> Result<(), ActionError> {
        Err(ActionError::internal(
            "secret detail: the database password is hunter2",
        ))
    }

    /// Never finishes on its own: the caller gets `actor.action_timed_out` after
    /// [`ACTION_TIMEOUT`].
    #[action]
    pub async fn slow(&self) -> bool {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        true
    }

    /// Closes the caller's connection with `reason` (a no-op for stateless calls). The answer
    /// is lost with the connection; the client reconnects by itself.
    #[action]
    pub async fn disconnect_me(&self, ctx: &Ctx<Self>, reason: String) -> bool {
        match ctx.conn() {
            Some(conn) if !conn.is_ephemeral() => {
                conn.disconnect(reason).await;
                true
            }
            _ => false,
        }
    }

    /// Whether the caller's connection is in `ctx.conns()` (a stateless call's is, while it
    /// runs); `false` for calls without a connection.
    #[action]
    pub fn caller_listed(&self, ctx: &Ctx<Self>) -> bool {
        ctx.conn()
            .is_some_and(|me| ctx.conns().iter().any(|c| c.id() == me.id()))
    }

    /// Broadcasts [`Poked`], an event without arguments.
    #[action]
    pub fn poke(&self, ctx: &Ctx<Self>) {
        ctx.broadcast(Poked);
    }

    /// The caller's connection id (`null` for calls without a connection). Not named
    /// `connectionId`: that name is a property of RivetKit's connection objects.
    #[action]
    pub fn caller_connection_id(&self, ctx: &Ctx<Self>) -> Option<String> {
        ctx.conn().map(|c| c.id().to_string())
    }
}
