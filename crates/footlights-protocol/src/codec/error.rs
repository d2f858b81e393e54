//! The one error type of the codecs.

use std::error::Error as _;

use crate::error::ActionError;

/// Bytes that could not be decoded, or a request for something the codecs do not speak.
///
/// Every variant maps to `actor.invalid_request` for clients ([`to_action_error`]), except that
/// callers may want to treat [`UnknownEncoding`](Self::UnknownEncoding) specially (§3.1 of the
/// protocol: HTTP falls back to JSON, WebSocket closes with 1003).
///
/// [`to_action_error`]: Self::to_action_error
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The encoding name is not `json`, `cbor` or `bare`.
    #[error("unknown encoding `{0}`")]
    UnknownEncoding(String),
    /// A BARE body carried a version prefix this type does not exist in.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u16),
    /// The JSON text is not well formed (or nests deeper than 128 levels).
    #[error("malformed json")]
    Json(#[source] serde_json::Error),
    /// The CBOR document is not well formed or uses something the value model cannot hold.
    #[error("malformed cbor at byte {offset}: {reason}")]
    Cbor {
        /// Where decoding stopped.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// The BARE body is not well formed.
    #[error("malformed bare at byte {offset}: {reason}")]
    Bare {
        /// Where decoding stopped.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// Bytes were left over after a complete message.
    #[error("{count} trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A value nested deeper than the decoder allows.
    #[error("value nests deeper than {limit} levels")]
    TooDeep {
        /// The limit that was hit.
        limit: usize,
    },
    /// A compat-tagged array (`["$Tag", ..]`) with a tag nobody knows.
    #[error("unknown compat tag `{0}`")]
    UnknownTag(String),
    /// A known compat tag whose payload has the wrong shape, such as bad base64.
    #[error("malformed `{tag}` value: {reason}")]
    BadTagPayload {
        /// The tag, with its `$`.
        tag: &'static str,
        /// What was wrong with the payload.
        reason: &'static str,
    },
    /// The document is well formed but is not the message that was expected: a missing field,
    /// a field of the wrong type, an unknown union tag.
    #[error("unexpected message shape: {0}")]
    Shape(String),
}

impl CodecError {
    /// The error a client sees for this failure: `actor.invalid_request`, with this error and
    /// its source in the message.
    ///
    /// ```
    /// use footlights_protocol::codec::{CodecError, Encoding, Dialect, decode_to_server};
    /// let err = decode_to_server(b"{", Encoding::Json, Dialect::Compat).unwrap_err();
    /// let wire = err.to_action_error();
    /// assert_eq!((wire.group(), wire.code()), ("actor", "invalid_request"));
    /// ```
    pub fn to_action_error(&self) -> ActionError {
        let mut message = self.to_string();
        let mut source = self.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        ActionError::invalid_request(message)
    }

    pub(crate) fn shape(message: impl Into<String>) -> Self {
        CodecError::Shape(message.into())
    }
}

impl From<CodecError> for ActionError {
    fn from(e: CodecError) -> Self {
        e.to_action_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_keep_their_source_in_the_action_error() {
        let json = serde_json::from_str::<serde_json::Value>("[").unwrap_err();
        let err = CodecError::Json(json).to_action_error();
        assert_eq!(err.code(), "invalid_request");
        assert!(
            err.message().starts_with("malformed json: "),
            "{}",
            err.message()
        );
    }

    #[test]
    fn messages_are_lowercase_and_specific() {
        let e = CodecError::Cbor {
            offset: 3,
            reason: "truncated input",
        };
        assert_eq!(e.to_string(), "malformed cbor at byte 3: truncated input");
        let a: ActionError = CodecError::UnsupportedVersion(9).into();
        assert_eq!(a.message(), "unsupported protocol version 9");
    }
}
