//! Errors: the crate's own [`Error`] (building a client), the `client.*` codes raised on this
//! side of the wire, and which errors are worth retrying.
//!
//! Everything that happens while talking to actors is an [`ActionError`]: the server's errors
//! arrive with their `group`, `code`, message and metadata unchanged, and failures on the
//! client side get group `client`:
//!
//! | code | when | transient |
//! |---|---|---|
//! | `client.connection_closed` | the connection was disposed, or closed for good | no |
//! | `client.connection_lost` | the link dropped before the action's answer arrived | yes |
//! | `client.connection_open_failed` | a WebSocket or SSE stream could not be opened | yes |
//! | `client.request_failed` | an HTTP request failed on the network | yes |
//! | `client.timed_out` | an HTTP request or a connection attempt took too long | yes |
//! | `client.http_error` | a non-2xx answer without a coded error body (metadata `{"status": n}`) | 5xx and 429 |
//! | `client.invalid_response` | an answer that does not decode | no |
//! | `client.connection_error` | a close without a coded reason | no |

use footlights_protocol::ActionError;

use crate::transport::Target;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint is not a usable `http://` or `https://` URL.
    #[error("invalid endpoint `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given (credentials removed).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value cannot be sent.
    #[error("invalid header `{name}`")]
    InvalidHeader {
        /// The header's name.
        name: String,
    },
    /// An option is out of range.
    #[error("invalid option `{name}`: {reason}")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The HTTP client could not be set up (for example, no TLS backend).
    #[error("the http client could not be built")]
    Http(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

const CLIENT: &str = "client";

/// `client.connection_closed`: the connection is disposed or closed for good.
pub(crate) fn connection_closed() -> ActionError {
    ActionError::new(CLIENT, "connection_closed", "the connection is closed")
}

/// `client.connection_lost`: the link dropped.
pub(crate) fn connection_lost(message: impl Into<String>) -> ActionError {
    ActionError::new(CLIENT, "connection_lost", message)
}

/// `client.connection_open_failed`: a link could not be opened.
#[cfg_attr(not(feature = "net"), allow(dead_code))]
pub(crate) fn connection_open_failed(message: impl Into<String>) -> ActionError {
    ActionError::new(CLIENT, "connection_open_failed", message)
}

/// `client.request_failed`: an HTTP request failed on the network.
#[cfg_attr(not(feature = "net"), allow(dead_code))]
pub(crate) fn request_failed(message: impl Into<String>) -> ActionError {
    ActionError::new(CLIENT, "request_failed", message)
}

/// `client.timed_out`.
#[cfg_attr(not(feature = "net"), allow(dead_code))]
pub(crate) fn timed_out(message: impl Into<String>) -> ActionError {
    ActionError::new(CLIENT, "timed_out", message)
}

/// `client.invalid_response`: an answer that does not decode.
pub(crate) fn invalid_response(message: impl Into<String>) -> ActionError {
    ActionError::new(CLIENT, "invalid_response", message)
}

/// `client.http_error`: a non-2xx answer without a coded body.
#[cfg_attr(not(feature = "net"), allow(dead_code))]
pub(crate) fn http_error(status: u16, body: &str) -> ActionError {
    let mut text: String = body.chars().take(200).collect();
    if text.is_empty() {
        text = "(empty body)".into();
    }
    ActionError::new(CLIENT, "http_error", format!("HTTP {status}: {text}")).with_metadata_value(
        Some(footlights_protocol::Value::Object(vec![(
            "status".into(),
            footlights_protocol::Value::Int(i64::from(status)),
        )])),
    )
}

/// Whether retrying after `error` can help: network failures, timeouts, 5xx answers, a
/// server going away, the "stale actor" codes of an actor that is starting, stopping or
/// busy, and a server whose store cannot take writes now (`storage.unavailable`). Refusals (`auth.*`), user errors (`user.*`), malformed requests and unknown actors
/// are not transient.
///
/// Connections use this (with one addition: `actor.not_found` is retried for `get` handles,
/// whose actor may be created later) to decide between reconnecting and giving up. Stateless actions are never retried automatically, since an action may have run
/// before its answer was lost; callers may use this to retry the ones they know are safe.
///
/// ```
/// use footlights_client::is_transient;
/// use footlights_protocol::ActionError;
/// assert!(is_transient(&ActionError::stopping()));
/// assert!(!is_transient(&ActionError::forbidden("no")));
/// assert!(!is_transient(&ActionError::user("room_full", "full")));
/// ```
pub fn is_transient(error: &ActionError) -> bool {
    match (error.group(), error.code()) {
        (CLIENT, "http_error") => {
            let status = error
                .metadata()
                .and_then(|m| m.get("status"))
                .and_then(footlights_protocol::Value::as_i64)
                .unwrap_or(0);
            status >= 500 || status == 429
        }
        (CLIENT, code) => matches!(
            code,
            "connection_lost" | "connection_open_failed" | "request_failed" | "timed_out"
        ),
        ("ws", "going_away") => true,
        ("actor", code) => {
            matches!(
                code,
                "starting"
                    | "stopping"
                    | "stopped"
                    | "restarting"
                    | "not_ready"
                    | "not_configured"
                    | "dropped_reply"
                    | "overloaded"
                    | "destroying"
                    | "rate_limited"
            ) || code.starts_with("destroyed_")
        }
        ("guard", code) => {
            matches!(
                code,
                "service_unavailable"
                    | "actor_wake_retries_exceeded"
                    | "actor_stopped_while_waiting"
                    | "gateway_response_start_timeout"
                    | "actor_ready_timeout"
                    | "actor_runner_failed"
            ) || code.starts_with("tunnel_")
        }
        ("connection", code) => matches!(code, "resume_refused" | "superseded"),
        ("storage", code) => code == "unavailable",
        ("user" | "auth", _) => false,
        // Masked internal errors and other server-side failures.
        _ => error.http_status() >= 500,
    }
}

/// Whether a connection to `target` should try again after `error`: [`is_transient`], plus
/// `actor.not_found` for `get` handles (someone may create the actor later). An actor named by
/// id that is not found will not come back, and a `get_or_create` handle that gets
/// `actor.not_found` names an actor type the server does not have.
pub(crate) fn should_reconnect(target: &Target, error: &ActionError) -> bool {
    is_transient(error) || (error.is_not_found() && matches!(target, Target::Get { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use footlights_protocol::ActorKey;

    fn coded(group: &'static str, code: &'static str) -> ActionError {
        ActionError::new(group, code, "m")
    }

    #[test]
    fn network_failures_and_stale_actors_are_transient() {
        for e in [
            connection_lost("x"),
            connection_open_failed("x"),
            request_failed("x"),
            timed_out("x"),
            http_error(502, "bad gateway"),
            http_error(429, ""),
            coded("ws", "going_away"),
            ActionError::stopping(),
            coded("actor", "starting"),
            coded("actor", "overloaded"),
            coded("actor", "destroyed_during_creation"),
            coded("guard", "service_unavailable"),
            coded("guard", "tunnel_closed"),
            coded("connection", "resume_refused"),
            ActionError::internal("secret").masked(),
            ActionError::rate_limited("slow down"),
            ActionError::storage_unavailable(),
        ] {
            assert!(is_transient(&e), "{e}");
        }
    }

    #[test]
    fn refusals_and_bad_requests_are_permanent() {
        for e in [
            ActionError::forbidden("no"),
            ActionError::unauthorized("who"),
            ActionError::user_error("bad"),
            ActionError::user("room_full", "full"),
            ActionError::actor_not_found("gone"),
            ActionError::action_not_found("x"),
            ActionError::invalid_request("x"),
            ActionError::duplicate_key("k"),
            ActionError::incoming_too_long(),
            coded("actor", "unsupported_websocket_encoding"),
            coded("guard", "query_invalid_params"),
            coded("protocol", "unsupported_encoding"),
            connection_closed(),
            invalid_response("x"),
            http_error(404, "nope"),
            coded("chat", "room_full"),
        ] {
            assert!(!is_transient(&e), "{e}");
        }
    }

    #[test]
    fn not_found_is_retried_only_for_get_handles() {
        let e = ActionError::actor_not_found("none yet");
        let get = Target::Get {
            name: "room".into(),
            key: ActorKey::from("a"),
        };
        let get_or_create = Target::GetOrCreate {
            name: "no_such_type".into(),
            key: ActorKey::from("a"),
            input: None,
        };
        assert!(!should_reconnect(&get_or_create, &e));
        let by_id = Target::Id {
            name: "room".into(),
            id: "a1".into(),
        };
        assert!(should_reconnect(&get, &e));
        assert!(!should_reconnect(&by_id, &e));
        assert!(!should_reconnect(&get, &ActionError::forbidden("no")));
        assert!(should_reconnect(&by_id, &ActionError::stopping()));
    }

    #[test]
    fn http_errors_carry_their_status() {
        let e = http_error(503, &"x".repeat(1000));
        assert_eq!(
            e.metadata()
                .and_then(|m| m.get("status"))
                .and_then(|s| s.as_i64()),
            Some(503)
        );
        assert!(e.message().len() < 250);
    }
}
