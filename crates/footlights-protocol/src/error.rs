//! The error every client sees: a stable `group` and `code`, a message and optional metadata.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::value::{Value, to_value};

/// An error that reaches clients with a stable `group.code`.
///
/// Applications switch on [`code`](Self::code). Errors built with the public constructors
/// ([`user`](Self::user), [`forbidden`](Self::forbidden), ...) reach clients as they are; errors
/// built with [`internal`](Self::internal) are *masked* before they leave the server: the
/// client sees only `internal_error` and a generic message, and the details are logged.
///
/// ```
/// use footlights_protocol::ActionError;
/// let e = ActionError::user("room_full", "the room is full").with_metadata(&serde_json::json!({"max": 8}));
/// assert_eq!(e.group(), "user");
/// assert_eq!(e.code(), "room_full");
/// assert!(e.is_public());
/// assert_eq!(e.http_status(), 400);
/// ```
#[derive(Clone, PartialEq)]
pub struct ActionError {
    /// Boxed, so that messages and results which may hold an error stay small (a channel of
    /// them reserves room for 32 up front).
    inner: Box<ErrorInner>,
}

#[derive(Clone, PartialEq)]
struct ErrorInner {
    group: Cow<'static, str>,
    code: Cow<'static, str>,
    message: String,
    metadata: Option<Value>,
    public: bool,
    /// Made by [`ActionError::masked`] from a non-public error.
    masked: bool,
}

impl fmt::Debug for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &*self.inner;
        f.debug_struct("ActionError")
            .field("group", &e.group)
            .field("code", &e.code)
            .field("message", &e.message)
            .field("metadata", &e.metadata)
            .field("public", &e.public)
            .field("masked", &e.masked)
            .finish()
    }
}

/// The message clients see for masked internal errors.
pub const INTERNAL_MESSAGE: &str = "An internal error occurred";

/// The message of `actor.action_timed_out`.
const ACTION_TIMED_OUT_MESSAGE: &str = "Action timed out. The limit can be raised with \
     `ActorOptions::action_timeout`, or for one action with `#[action(timeout_ms = ..)]`";

impl ActionError {
    fn from_inner(inner: ErrorInner) -> Self {
        ActionError {
            inner: Box::new(inner),
        }
    }

    /// A public error with any group and code.
    pub fn new(
        group: impl Into<Cow<'static, str>>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ActionError::from_inner(ErrorInner {
            group: group.into(),
            code: code.into(),
            message: message.into(),
            metadata: None,
            public: true,
            masked: false,
        })
    }

    /// A user error with its own code (group `user`), as application code raises it.
    pub fn user(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new("user", code, message)
    }

    /// A user error with the generic code `user_error`.
    pub fn user_error(message: impl Into<String>) -> Self {
        Self::user("user_error", message)
    }

    /// Access denied (`auth.forbidden`, HTTP 403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new("auth", "forbidden", message)
    }

    /// The caller is not authenticated (`auth.unauthorized`, HTTP 401).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new("auth", "unauthorized", message)
    }

    /// The caller sent too many requests (`actor.rate_limited`, HTTP 429).
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new("actor", "rate_limited", message)
    }

    /// No such actor (`actor.not_found`, HTTP 404).
    pub fn actor_not_found(message: impl Into<String>) -> Self {
        Self::new("actor", "not_found", message)
    }

    /// No such action on this actor (`actor.action_not_found`, HTTP 404).
    pub fn action_not_found(name: &str) -> Self {
        Self::new(
            "actor",
            "action_not_found",
            format!("action `{name}` not found"),
        )
    }

    /// An action ran past its timeout (`actor.action_timed_out`, HTTP 408).
    ///
    /// The message begins with `Action timed out`, as both generations of the official client
    /// word it, so text matched against it (`/timed out/i`) finds it.
    pub fn action_timed_out() -> Self {
        Self::new("actor", "action_timed_out", ACTION_TIMED_OUT_MESSAGE)
    }

    /// A connect hook ran past its timeout (`actor.callback_timed_out`).
    pub fn callback_timed_out() -> Self {
        Self::new("actor", "callback_timed_out", "callback timed out")
    }

    /// Malformed input (`actor.invalid_request`, HTTP 400).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new("actor", "invalid_request", message)
    }

    /// `create` on a key that already has an actor (`actor.duplicate_key`, HTTP 400).
    pub fn duplicate_key(message: impl Into<String>) -> Self {
        Self::new("actor", "duplicate_key", message)
    }

    /// An incoming message or body over the size limit (`message.incoming_too_long`).
    pub fn incoming_too_long() -> Self {
        Self::new("message", "incoming_too_long", "incoming message too long")
    }

    /// A reply or event over the size limit (`message.outgoing_too_long`).
    pub fn outgoing_too_long() -> Self {
        Self::new("message", "outgoing_too_long", "outgoing message too long")
    }

    /// The actor is stopping and cannot take this call (`actor.stopping`); clients retry.
    pub fn stopping() -> Self {
        Self::new("actor", "stopping", "actor is stopping")
    }

    /// The store cannot take writes now (`storage.unavailable`, HTTP 503): the disk is full or
    /// failing, or the server's data files are gone. Nothing of the call was saved; clients
    /// retry later. The cause is in the server log, not in the message.
    pub fn storage_unavailable() -> Self {
        Self::new(
            "storage",
            "unavailable",
            "storage is unavailable; try again later",
        )
    }

    /// A connection that no longer exists (`connection.not_found`).
    pub fn connection_not_found() -> Self {
        Self::new("connection", "not_found", "connection not found")
    }

    /// A non-public error. Clients see `internal_error` and a generic message; the details stay
    /// in the server log.
    pub fn internal(message: impl Into<String>) -> Self {
        ActionError::from_inner(ErrorInner {
            group: "core".into(),
            code: "internal_error".into(),
            message: message.into(),
            metadata: None,
            public: false,
            masked: false,
        })
    }

    /// Attaches structured metadata. A value that fails to serialize is dropped.
    #[must_use]
    pub fn with_metadata<T: Serialize + ?Sized>(mut self, metadata: &T) -> Self {
        self.inner.metadata = to_value(metadata).ok();
        self
    }

    /// Attaches metadata that is already a [`Value`].
    #[must_use]
    pub fn with_metadata_value(mut self, metadata: Option<Value>) -> Self {
        self.inner.metadata = metadata;
        self
    }

    /// The error's group, such as `user`, `auth` or `actor`.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// The error's code, such as `forbidden` or `user_error`. Stable: match on it.
    pub fn code(&self) -> &str {
        &self.inner.code
    }

    /// A human-readable message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Structured details, if any.
    pub fn metadata(&self) -> Option<&Value> {
        self.inner.metadata.as_ref()
    }

    /// Whether the error reaches clients as it is.
    pub fn is_public(&self) -> bool {
        self.inner.public
    }

    /// `true` for `actor.not_found`.
    pub fn is_not_found(&self) -> bool {
        self.inner.group == "actor" && self.inner.code == "not_found"
    }

    /// `true` for timeouts of actions and callbacks.
    pub fn is_timeout(&self) -> bool {
        self.inner.code == "action_timed_out" || self.inner.code == "callback_timed_out"
    }

    /// Whether this is what [`masked`](Self::masked) made of a non-public error. Encoders word
    /// such errors for the client generation they write to (see
    /// [`Dialect`](crate::codec::Dialect)).
    pub fn is_masked(&self) -> bool {
        self.inner.masked
    }

    /// What clients see: public errors unchanged, others with a generic message and no
    /// metadata.
    #[must_use]
    pub fn masked(&self) -> ActionError {
        if self.inner.public {
            self.clone()
        } else {
            ActionError::from_inner(ErrorInner {
                group: self.inner.group.clone(),
                code: self.inner.code.clone(),
                message: INTERNAL_MESSAGE.to_owned(),
                metadata: None,
                public: true,
                masked: true,
            })
        }
    }

    /// The HTTP status this error is answered with.
    pub fn http_status(&self) -> u16 {
        if !self.inner.public {
            return 500;
        }
        match (&*self.inner.group, &*self.inner.code) {
            // A request handler that made no response is the server's fault, not a missing
            // route (2.0.33's own server answered it with 500 too).
            ("handler", "invalid_request_handler_response") => 500,
            ("auth", "forbidden") => 403,
            ("auth", "unauthorized") => 401,
            ("actor", "not_found" | "action_not_found")
            | ("connection" | "guard", "not_found")
            | ("handler", _) => 404,
            ("actor", "method_not_allowed") => 405,
            ("actor", "action_timed_out") => 408,
            ("actor", "rate_limited") => 429,
            ("actor", "restarting" | "stopping" | "starting" | "overloaded")
            | ("storage", "unavailable") => 503,
            (_, "internal_error") => 500,
            _ => 400,
        }
    }
}

impl fmt::Display for ActionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}: {}",
            self.inner.group, self.inner.code, self.inner.message
        )
    }
}

impl std::error::Error for ActionError {}

impl From<crate::value::ValueError> for ActionError {
    fn from(e: crate::value::ValueError) -> Self {
        ActionError::invalid_request(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_masked() {
        let e = ActionError::internal("db password is hunter2").with_metadata(&1);
        let m = e.masked();
        assert_eq!(m.code(), "internal_error");
        assert_eq!(m.message(), INTERNAL_MESSAGE);
        assert!(m.metadata().is_none());
        assert_eq!(e.http_status(), 500);
        assert!(m.is_masked() && !e.is_masked());
    }

    #[test]
    fn public_errors_pass_unchanged() {
        let e = ActionError::forbidden("no").with_metadata(&"why");
        assert_eq!(e.masked(), e);
        assert!(!e.masked().is_masked());
        assert_eq!(e.http_status(), 403);
    }

    #[test]
    fn user_error_without_metadata_has_none() {
        let e = ActionError::user_error("bad");
        assert_eq!(e.code(), "user_error");
        assert!(e.metadata().is_none());
    }

    #[test]
    fn an_action_timeout_reads_as_the_official_clients_word_it() {
        let e = ActionError::action_timed_out();
        assert_eq!((e.group(), e.code()), ("actor", "action_timed_out"));
        assert!(e.message().starts_with("Action timed out"), "{e}");
        assert!(e.is_timeout());
    }

    #[test]
    fn statuses_follow_the_protocol_table() {
        assert_eq!(ActionError::actor_not_found("x").http_status(), 404);
        assert_eq!(
            ActionError::new("guard", "not_found", "x").http_status(),
            404
        );
        assert_eq!(ActionError::action_not_found("x").http_status(), 404);
        assert_eq!(ActionError::action_timed_out().http_status(), 408);
        assert_eq!(ActionError::incoming_too_long().http_status(), 400);
        assert_eq!(ActionError::duplicate_key("k").http_status(), 400);
        assert_eq!(ActionError::storage_unavailable().http_status(), 503);
        let no_handler = ActionError::new("handler", "request_not_defined", "m");
        assert_eq!(no_handler.http_status(), 404);
        let no_response = ActionError::new("handler", "invalid_request_handler_response", "m");
        assert_eq!(no_response.http_status(), 500);
    }
}
