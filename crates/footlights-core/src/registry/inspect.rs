//! The registry's side of [`crate::inspect`]: operators' messages sent to an actor's mailbox.

use super::*;
use crate::inspect::{ActorLog, ActorView, InspectMsg, InspectOptions};

impl Registry {
    /// Reads a live actor's state, connections, scheduled calls, queues and a page of its
    /// key-value store, between two of its messages. Wakes the actor if it sleeps.
    ///
    /// ```
    /// # use footlights_core::{Registry, ActorId};
    /// # use footlights_core::inspect::InspectOptions;
    /// # async fn demo(registry: Registry, id: ActorId) -> Result<(), footlights_core::ActionError> {
    /// let view = registry.inspect(&id, InspectOptions::default()).await?;
    /// println!("{:?} with {} connections", view.state, view.connections.len());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// `actor.not_found` for an unknown actor; the actor's start errors; storage failures.
    pub async fn inspect(
        &self,
        id: &ActorId,
        options: InspectOptions,
    ) -> Result<ActorView, ActionError> {
        let name = self.type_of(id).await?;
        let (reply, rx) = oneshot::channel();
        let msg = InspectMsg::View { options, reply };
        self.inner.send(&name, id, Some(Msg::Inspect(msg)))?;
        rx.await.unwrap_or_else(|_| Err(ActionError::stopping()))
    }

    /// Replaces a live actor's state with `state`, deserialized into the actor's type, as an
    /// action changing it would: in the actor's mailbox, then saved with the state-change
    /// hook through the group commit. Returns once the new state is durable. Ephemeral
    /// (`#[serde(skip)]`) fields are rebuilt by the actor's `create_vars`. Wakes the actor if
    /// it sleeps.
    ///
    /// # Errors
    /// `actor.invalid_request` when `state` does not fit the actor's type (the old state
    /// stays); `actor.not_found` for an unknown actor; storage failures.
    pub async fn replace_state(&self, id: &ActorId, state: Value) -> Result<(), ActionError> {
        let name = self.type_of(id).await?;
        let (reply, rx) = oneshot::channel();
        let msg = InspectMsg::ReplaceState { state, reply };
        self.inner.send(&name, id, Some(Msg::Inspect(msg)))?;
        rx.await
            .unwrap_or_else(|_| Err(ActionError::stopping()))
            .map(drop)
    }

    /// Watches a live actor's log: each action it handles and each event it sends from now
    /// on, until the returned [`ActorLog`] is dropped or the actor stops (sleeps, is
    /// destroyed). Wakes the actor if it sleeps. While nobody watches, the actor makes no
    /// records. A watcher that falls more than [`LOG_BUFFER`](crate::inspect::LOG_BUFFER)
    /// records behind loses the oldest and is told how many.
    ///
    /// # Errors
    /// `inspector.too_many_watchers` past [`MAX_WATCHERS`](crate::inspect::MAX_WATCHERS);
    /// `actor.not_found` for an unknown actor; the actor's start errors.
    pub async fn watch(&self, id: &ActorId) -> Result<ActorLog, ActionError> {
        let name = self.type_of(id).await?;
        let (reply, rx) = oneshot::channel();
        let msg = InspectMsg::Watch { reply };
        self.inner.send(&name, id, Some(Msg::Inspect(msg)))?;
        rx.await.unwrap_or_else(|_| Err(ActionError::stopping()))
    }

    /// The type name of actor `id`, from its stored metadata.
    async fn type_of(&self, id: &ActorId) -> Result<String, ActionError> {
        match self.actor_meta(id).await? {
            Some(meta) => Ok(meta.name),
            None => Err(ActionError::actor_not_found(format!(
                "actor {id} not found"
            ))),
        }
    }
}
