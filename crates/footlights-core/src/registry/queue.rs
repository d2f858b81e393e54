//! Sending to an actor's queues from outside it.

use footlights_client::Target;
use footlights_protocol::{ActionError, ActorId, Value};
use tokio::sync::oneshot;

use super::{Registry, RegistryInner};
use crate::conn::ConnRequest;
use crate::instance::Msg;
use crate::queue::SendOptions;
use crate::queue::SendOutcome;
use crate::queue::state::Op;

impl Registry {
    /// Sends `body` to queue `name` of an actor, as `POST /queue/{name}` does: a short-lived
    /// connection with `params` and `request` runs the connect hooks, then the message is
    /// stored. Returns once it is durable, or, with [`SendOptions::wait`], once the actor
    /// completes it (or the wait times out; the message then stays queued).
    ///
    /// # Errors
    /// `auth.forbidden` for a queue the actor does not declare, `queue.invalid_message`,
    /// `queue.message_too_large`, `actor.overloaded` for a full queue; the connect hooks'
    /// errors; lookup errors.
    pub async fn send(
        &self,
        target: &Target,
        name: &str,
        body: Value,
        params: Option<Value>,
        request: ConnRequest,
        options: SendOptions,
    ) -> Result<SendOutcome, ActionError> {
        let id = self.inner.resolve(target).await?;
        self.inner
            .queue_send((target.name(), &id), name, body, params, request, options)
            .await
    }
}

impl RegistryInner {
    /// Sends to queue `name` of actor `id` (of type `actor`); see [`Registry::send`].
    pub(crate) async fn queue_send(
        &self,
        (actor, id): (&str, &ActorId),
        name: &str,
        body: Value,
        params: Option<Value>,
        request: ConnRequest,
        options: SendOptions,
    ) -> Result<SendOutcome, ActionError> {
        let (reply, stored) = oneshot::channel();
        let (done, completed) = match options.wait {
            Some(_) => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let msg = Msg::Queue(Op::Send {
            name: name.to_owned(),
            body,
            params,
            request: Box::new(request),
            reply,
            done,
        });
        self.send(actor, id, Some(msg))?;
        stored
            .await
            .unwrap_or_else(|_| Err(ActionError::stopping()))?;
        let (Some(limit), Some(completed)) = (options.wait, completed) else {
            return Ok(SendOutcome::Completed(None));
        };
        match tokio::time::timeout(limit, completed).await {
            Ok(Ok(Ok(Value::Undefined))) => Ok(SendOutcome::Completed(None)),
            Ok(Ok(Ok(response))) => Ok(SendOutcome::Completed(Some(response))),
            Ok(Ok(Err(e))) => Err(e),
            // The actor stopped first, or the time is up: the message stays queued.
            Ok(Err(_)) | Err(_) => Ok(SendOutcome::TimedOut),
        }
    }
}
