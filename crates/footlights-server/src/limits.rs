//! Size and count limits applied at the edge: request bodies, connection params, and actions
//! in flight on one connection.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::HeaderMap;
use footlights_protocol::codec::value_from_json;
use footlights_protocol::{ActionError, Value};
use futures::StreamExt;

/// The close reason of a client that fell more than `max_queued_messages` behind (see
/// `ServerBuilder::max_queued_messages`): closing it keeps the server's memory bounded.
pub(crate) const TOO_SLOW: &str = "connection.too_slow";

/// Reads a whole request body (chunked or not), refusing more than `limit` bytes with
/// `message.incoming_too_long`.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ActionError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ActionError::incoming_too_long());
    }
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ActionError::invalid_request(format!("the request body could not be read: {e}"))
        })?;
        if out.len() + chunk.len() > limit {
            return Err(ActionError::incoming_too_long());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Connection params from their JSON text (compat tags revived). `None` when absent.
pub(crate) fn parse_params(
    text: Option<&[u8]>,
    limit: usize,
) -> Result<Option<Value>, ActionError> {
    let Some(text) = text else { return Ok(None) };
    if text.len() > limit {
        return Err(ActionError::new(
            "message",
            "incoming_too_long",
            "connection params too long",
        ));
    }
    value_from_json(text)
        .map(Some)
        .map_err(|e| ActionError::invalid_request(format!("invalid connection params: {e}")))
}

/// The actions of one connection that await their answer.
#[derive(Debug)]
pub(crate) struct InFlight {
    max: usize,
    /// Ids waiting for an answer, with how many requests used each id (clients do not reuse
    /// ids, but nothing stops a buggy one). Boxed, and only while an action waits: a
    /// connection keeps this record as long as it lives, hibernated ones included, and an
    /// empty table would take 48 bytes of it.
    #[allow(clippy::box_collection)]
    ids: Option<Box<HashMap<u64, u32>>>,
    count: usize,
}

impl InFlight {
    pub(crate) fn new(max: usize) -> Self {
        InFlight {
            max,
            ids: None,
            count: 0,
        }
    }

    /// Admits action `id` unless the limit is reached.
    pub(crate) fn try_start(&mut self, id: u64) -> bool {
        if self.count >= self.max {
            return false;
        }
        self.count += 1;
        *self.ids.get_or_insert_default().entry(id).or_default() += 1;
        true
    }

    /// Action `id` was answered (a response or an error carrying its id).
    pub(crate) fn finish(&mut self, id: u64) {
        let Some(ids) = self.ids.as_mut() else {
            return;
        };
        if let Some(n) = ids.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                ids.remove(&id);
            }
            self.count -= 1;
        }
    }

    /// Whether no action waits for an answer.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Lets go of the table's memory when no action waits (a parked socket keeps none).
    pub(crate) fn shrink(&mut self) {
        if self.count == 0 {
            self.ids = None;
        }
    }
}

/// Cuts a WebSocket close reason to the 123 bytes a close frame can carry, on a character
/// boundary.
pub(crate) fn close_reason(reason: &str) -> &str {
    const MAX: usize = 123;
    // invariant: `floor_char_boundary` returns a boundary no greater than the length.
    &reason[..reason.floor_char_boundary(MAX)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_counts_each_answer_once() {
        let mut f = InFlight::new(2);
        assert!(f.try_start(1));
        assert!(f.try_start(1));
        assert!(!f.try_start(2));
        f.finish(1);
        f.finish(7);
        assert!(f.try_start(2));
        assert!(!f.try_start(3));
        f.shrink();
        assert!(f.ids.is_some(), "two actions still wait");
        f.finish(1);
        f.finish(2);
        assert!(f.is_empty());
        f.shrink();
        assert!(f.ids.is_none());
        f.finish(2);
        assert!(f.try_start(4));
    }

    #[test]
    fn close_reasons_are_cut_on_char_boundaries() {
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123);
        assert_eq!(cut.len(), 122);
        assert_eq!(close_reason("auth.forbidden"), "auth.forbidden");
    }

    #[test]
    fn params_over_the_limit_are_refused() {
        assert_eq!(
            parse_params(Some(b"\"abcdef\""), 4).unwrap_err().code(),
            "incoming_too_long"
        );
        assert_eq!(
            parse_params(Some(b"{"), 40).unwrap_err().code(),
            "invalid_request"
        );
        assert_eq!(parse_params(None, 4).unwrap(), None);
    }
}
