//! Answers that are not ready yet: [`Deferred`] actions and deferred raw HTTP responses.
//!
//! A deferred answer is a future that owns what it needs (no borrow of the state). The actor
//! polls it beside its mailbox, so the actor keeps serving other messages while it waits.

use futures::future::BoxFuture;

use footlights_protocol::ActionError;

/// An answer that is not ready yet: a future that owns what it needs (no borrow of the state).
///
/// ```
/// use footlights_core::Deferred;
/// let (tx, rx) = tokio::sync::oneshot::channel::<i64>();
/// let answer = Deferred::new(async move { rx.await.map_err(|_| footlights_core::ActionError::internal("dropped")) });
/// # drop((tx, answer));
/// ```
pub struct Deferred<T>(BoxFuture<'static, Result<T, ActionError>>);

impl<T> Deferred<T> {
    /// Wraps a future that produces the answer.
    pub fn new(fut: impl Future<Output = Result<T, ActionError>> + Send + 'static) -> Self {
        Deferred(Box::pin(fut))
    }

    pub(crate) fn into_future(self) -> BoxFuture<'static, Result<T, ActionError>> {
        self.0
    }
}

impl<T> std::fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deferred(..)")
    }
}
