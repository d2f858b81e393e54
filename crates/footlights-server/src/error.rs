//! The crate's error type, and how coded errors become HTTP responses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use footlights_protocol::ActionError;
use footlights_protocol::codec::{Dialect, Encoding, FALLBACK_VERSION, HttpResponseError};

/// Why a server could not be built or stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`ServerBuilder::build`](crate::ServerBuilder::build) was called without a registry.
    #[error("no registry was given to the server builder")]
    MissingRegistry,
    /// The base path is not a usable URL path prefix.
    #[error("invalid base path `{path}`: {reason}")]
    InvalidBasePath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A size, count or interval setting is out of range.
    #[error("invalid setting `{name}`: {reason}")]
    InvalidSetting {
        /// The builder method that set it.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The listener failed.
    #[error("server i/o failed")]
    Io(#[source] std::io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a client may see of an error: public errors unchanged, others masked. Non-public
/// errors are logged here, once, at the server boundary.
pub(crate) fn for_client(error: ActionError) -> ActionError {
    if !error.is_public() {
        tracing::error!(error = %error, "internal error (masked for the client)");
    }
    error.masked()
}

/// How an error body is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ErrorFormat {
    /// JSON with `Content-Type: application/json`: manager routes and gateway errors. The
    /// dialect words a masked internal error for the client's generation.
    Json(Dialect),
    /// The request's encoding (§8.1), with the BARE version to answer with.
    Encoded {
        encoding: Encoding,
        version: u16,
        dialect: Dialect,
    },
}

/// A coded error on its way to an HTTP client.
#[derive(Debug)]
pub(crate) struct HttpError {
    /// Boxed: errors travel in `Result`s and should keep them small.
    error: Box<ActionError>,
    format: ErrorFormat,
    status: Option<StatusCode>,
}

impl HttpError {
    /// A JSON error body, with the status the error's code calls for.
    pub(crate) fn json(error: ActionError) -> Self {
        HttpError {
            error: Box::new(for_client(error)),
            format: ErrorFormat::Json(Dialect::Compat),
            status: None,
        }
    }

    /// An error body in `format`.
    pub(crate) fn new(error: ActionError, format: ErrorFormat) -> Self {
        HttpError {
            error: Box::new(for_client(error)),
            format,
            status: None,
        }
    }

    /// Words a JSON body for a peer of `dialect` (a body in the request's encoding already
    /// carries its peer's dialect).
    pub(crate) fn for_dialect(mut self, dialect: Dialect) -> Self {
        if let ErrorFormat::Json(_) = self.format {
            self.format = ErrorFormat::Json(dialect);
        }
        self
    }

    /// Overrides the status derived from the error code.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// The error as the client will see it.
    pub(crate) fn error(&self) -> &ActionError {
        &self.error
    }
}

impl From<ActionError> for HttpError {
    fn from(error: ActionError) -> Self {
        HttpError::json(error)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.error.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        let noted = crate::logging::requests_logged() || footlights_core::trace::enabled();
        let note = noted.then(|| {
            crate::logging::ErrorNote(format!("{}.{}", self.error.group(), self.error.code()))
        });
        let body = HttpResponseError::new(*self.error);
        let (bytes, content_type) = match self.format {
            ErrorFormat::Json(dialect) => (
                body.encode(Encoding::Json, FALLBACK_VERSION, dialect),
                Encoding::Json.content_type(),
            ),
            ErrorFormat::Encoded {
                encoding,
                version,
                dialect,
            } => (
                body.encode(encoding, version, dialect),
                encoding.content_type(),
            ),
        };
        let mut response = (status, bytes).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(note) = note {
            response.extensions_mut().insert(note);
        }
        response
    }
}

/// An error for a route that does not exist at this level (not an actor route).
pub(crate) fn route_not_found() -> HttpError {
    HttpError::json(ActionError::new(
        "route",
        "not_found",
        "no route matches this path",
    ))
    .with_status(StatusCode::NOT_FOUND)
}

/// `actor.method_not_allowed` (405).
pub(crate) fn method_not_allowed() -> ActionError {
    ActionError::new(
        "actor",
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// `actor.overloaded`: a per-server or per-connection limit is reached; clients may retry.
pub(crate) fn overloaded(what: &str) -> ActionError {
    ActionError::new("actor", "overloaded", format!("too many {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_masked_with_status_500() {
        let e = HttpError::json(ActionError::internal("secret detail"));
        assert_eq!(e.error().code(), "internal_error");
        assert_eq!(e.error().message(), footlights_protocol::INTERNAL_MESSAGE);
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[tokio::test]
    async fn a_masked_error_is_worded_for_the_peers_generation() {
        let body = |dialect| async move {
            let response = HttpError::json(ActionError::internal("secret"))
                .for_dialect(dialect)
                .into_response();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        let native = body(Dialect::Native).await;
        assert_eq!(native["group"], "internal");
        assert_eq!(
            native["message"],
            footlights_protocol::codec::NATIVE_INTERNAL_MESSAGE
        );
        let compat = body(Dialect::Compat).await;
        assert_eq!(compat["group"], "core");
        assert_eq!(compat["message"], footlights_protocol::INTERNAL_MESSAGE);
    }

    #[test]
    fn encoded_errors_use_the_request_encoding() {
        let e = HttpError::new(
            ActionError::forbidden("no"),
            ErrorFormat::Encoded {
                encoding: Encoding::Bare,
                version: 4,
                dialect: Dialect::Compat,
            },
        );
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/octet-stream"
        );
    }
}
