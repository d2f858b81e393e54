//! The Footlights connection extensions, on the wire: connection tokens and resume.
//!
//! Everything a client says about them is parsed here, and the calls that open and release a
//! link live here too ([`open_link`], [`release_link`]), so the rest of the server never
//! needs to know about resume. The wire format is described in `docs/protocol-extensions.md`:
//!
//! - WebSocket: offering the subprotocol `footlights` means "I understand connection tokens";
//!   `footlights_resume.{connId}.{token}` (both percent-encoded) asks to resume a connection.
//!   Official RivetKit clients offer neither and never see a token.
//! - SSE: always a Footlights client, so tokens are always sent; resume is asked for with the
//!   `x-footlights-conn-id` and `x-footlights-conn-token` headers or the `fl-conn-id` and
//!   `fl-conn-token` query parameters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::http::HeaderMap;
use footlights_client::{Link, LinkSender, Target};
use footlights_core::ConnRequest;
use footlights_protocol::codec::{Encoding, OLDEST_VERSION};
use footlights_protocol::{ActionError, ConnId, ToClient, Value};
use percent_encoding::percent_decode_str;
use tokio::sync::oneshot;

use crate::server::Shared;
use crate::ws::CLOSE_TIMEOUT;

/// The subprotocol a Footlights client offers to say it understands connection tokens.
pub(crate) const TOKENS_PROTOCOL: &str = "footlights";
/// The prefix of the subprotocol that asks to resume a connection.
pub(crate) const RESUME_PROTOCOL: &str = "footlights_resume.";
/// SSE: the connection to resume (header).
pub(crate) const CONN_ID_HEADER: &str = "x-footlights-conn-id";
/// SSE: the resume token (header).
pub(crate) const CONN_TOKEN_HEADER: &str = "x-footlights-conn-token";
/// SSE: the connection to resume (query parameter, for `EventSource`).
pub(crate) const CONN_ID_PARAM: &str = "fl-conn-id";
/// SSE: the resume token (query parameter, for `EventSource`).
pub(crate) const CONN_TOKEN_PARAM: &str = "fl-conn-token";

/// A request to take over a connection that dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resume {
    pub(crate) conn_id: ConnId,
    pub(crate) token: String,
}

/// What a client asked for beyond the RivetKit protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnExtensions {
    /// The client understands connection tokens: `Init` keeps its `connectionToken`.
    pub(crate) tokens: bool,
    /// The client asks to resume this connection.
    /// (Boxed: a connection keeps its extensions while it lives, and rarely resumes.)
    pub(crate) resume: Option<Box<Resume>>,
}

impl ConnExtensions {
    /// From the subprotocols a WebSocket upgrade offers. A malformed resume request is
    /// ignored: the client then simply gets a new connection.
    pub(crate) fn from_subprotocols(offered: &[String]) -> ConnExtensions {
        let mut ext = ConnExtensions::default();
        for p in offered {
            if p == TOKENS_PROTOCOL {
                ext.tokens = true;
            } else if let Some(rest) = p.strip_prefix(RESUME_PROTOCOL) {
                ext.tokens = true;
                if ext.resume.is_none() {
                    ext.resume = rest
                        .split_once('.')
                        .and_then(|(id, token)| resume_from(id, token, true));
                }
            }
        }
        ext
    }

    /// For an SSE connection: tokens always; resume from headers, else from the query.
    pub(crate) fn from_sse(headers: &HeaderMap, query: &[(String, String)]) -> ConnExtensions {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let resume = match (header(CONN_ID_HEADER), header(CONN_TOKEN_HEADER)) {
            (Some(id), Some(token)) => resume_from(id, token, false),
            _ => match (param(CONN_ID_PARAM), param(CONN_TOKEN_PARAM)) {
                (Some(id), Some(token)) => resume_from(id, token, false),
                _ => None,
            },
        };
        ConnExtensions {
            tokens: true,
            resume,
        }
    }

    /// Makes `Init` fit this client, and returns the BARE version to write it in.
    ///
    /// Official clients get no token (their schema may not expect one). A Footlights client
    /// gets the token: in JSON and CBOR as `connectionToken`, in BARE by writing this one
    /// `Init` as version 1, the only BARE layout with the field.
    pub(crate) fn prepare_init(
        &self,
        init: &mut ToClient,
        encoding: Encoding,
        version: u16,
    ) -> u16 {
        let ToClient::Init {
            connection_token, ..
        } = init
        else {
            return version;
        };
        if !self.tokens {
            *connection_token = None;
            return version;
        }
        if connection_token.is_some() && encoding == Encoding::Bare {
            OLDEST_VERSION
        } else {
            version
        }
    }
}

/// Compares secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn resume_from(id: &str, token: &str, encoded: bool) -> Option<Box<Resume>> {
    let decode = |s: &str| {
        if encoded {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        } else {
            Some(s.to_owned())
        }
    };
    let (id, token) = (decode(id)?, decode(token)?);
    (!id.is_empty() && !token.is_empty()).then(|| {
        Box::new(Resume {
            conn_id: ConnId::new(id),
            token,
        })
    })
}

/// Opens the link for a new connection, or resumes the one named in `ext.resume`.
///
/// Before a resume, a socket of this server that still carries the connection (its peer is
/// gone but the drop has not been noticed yet) is retired first, so the runtime always sees
/// the old link end before the new one attaches.
///
/// The runtime decides what a resume gets (see [`Registry::resume`](footlights_core::Registry::resume)):
/// the kept connection with its state and subscriptions; a fresh connection under the same
/// id when none is kept any more; or `connection.resume_refused` (an `Error`, then a 1011
/// close) when the token does not match.
pub(crate) async fn open_link(
    shared: &Shared,
    target: &Target,
    params: Option<Value>,
    request: ConnRequest,
    ext: &ConnExtensions,
) -> Result<Link, ActionError> {
    let registry = &shared.registry;
    match &ext.resume {
        Some(r) => {
            tracing::debug!(conn = %r.conn_id, "resuming a connection");
            shared.links.supersede(&r.conn_id, &r.token).await;
            registry
                .resume(target, params, request, r.conn_id.clone(), r.token.clone())
                .await
        }
        None => registry.connect(target, params, request).await,
    }
}

/// The connections this server carries right now, by id, so a resume can retire a stale
/// socket of the same connection.
#[derive(Debug, Default)]
pub(crate) struct LiveLinks {
    map: Mutex<HashMap<ConnId, LiveEntry>>,
    next: AtomicU64,
}

#[derive(Debug)]
struct LiveEntry {
    serial: u64,
    /// The connection's resume token: only a resume that knows it may retire the socket.
    token: Option<String>,
    /// Asks the task to let go of its link; it answers on the inner sender once it has.
    retire: oneshot::Sender<oneshot::Sender<()>>,
}

/// A task's claim on a connection id; unregisters on drop.
#[derive(Debug)]
pub(crate) struct LiveLink {
    shared: Arc<Shared>,
    id: ConnId,
    serial: u64,
    /// Where a retire request arrives.
    retire: oneshot::Receiver<oneshot::Sender<()>>,
}

impl LiveLinks {
    fn lock(&self) -> MutexGuard<'_, HashMap<ConnId, LiveEntry>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the calling task carries connection `id` (once its `Init` went out),
    /// with the token `Init` carried.
    pub(crate) fn register(shared: &Arc<Shared>, init: &ToClient) -> Option<Box<LiveLink>> {
        let ToClient::Init {
            connection_id: id,
            connection_token: token,
            ..
        } = init
        else {
            return None;
        };
        let id = id.clone();
        let serial = shared.links.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let entry = LiveEntry {
            serial,
            token: token.clone(),
            retire: tx,
        };
        shared.links.lock().insert(id.clone(), entry);
        Some(Box::new(LiveLink {
            shared: shared.clone(),
            id,
            serial,
            retire: rx,
        }))
    }

    /// Retires the task carrying `id`, if any and if `token` is that connection's token, and
    /// waits (bounded) until it has released its link. A wrong token retires nothing: the
    /// runtime then refuses the resume.
    async fn supersede(&self, id: &ConnId, token: &str) {
        let entry = {
            let mut map = self.lock();
            let matches = map.get(id).is_some_and(|e| {
                e.token
                    .as_deref()
                    .is_some_and(|t| same_secret(t.as_bytes(), token.as_bytes()))
            });
            if !matches {
                return;
            }
            map.remove(id)
        };
        let Some(entry) = entry else { return };
        let (done_tx, done_rx) = oneshot::channel();
        if entry.retire.send(done_tx).is_ok() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, done_rx).await;
        }
    }
}

impl LiveLink {
    /// Resolves when a resume on another socket takes this connection over. The caller
    /// releases its link as dropped, then answers on the sender it got.
    pub(crate) async fn retired(&mut self) -> oneshot::Sender<()> {
        match (&mut self.retire).await {
            Ok(done) => done,
            // Unregistered without a request: never resolves.
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for LiveLink {
    fn drop(&mut self) {
        let mut map = self.shared.links.lock();
        if map.get(&self.id).is_some_and(|e| e.serial == self.serial) {
            map.remove(&self.id);
        }
    }
}

/// [`retired`] as a poll: `Ready` with the sender to answer on once a resume takes the
/// connection over; never ready without a registration.
pub(crate) fn poll_retired(
    live: &mut Option<Box<LiveLink>>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<oneshot::Sender<()>> {
    use std::future::Future;
    match live {
        Some(live) => match std::pin::Pin::new(&mut live.retire).poll(cx) {
            std::task::Poll::Ready(Ok(done)) => std::task::Poll::Ready(done),
            // Unregistered without a request: never resolves.
            _ => std::task::Poll::Pending,
        },
        None => std::task::Poll::Pending,
    }
}

/// Waits for a retire request when there is a registration, forever otherwise.
pub(crate) async fn retired(live: &mut Option<Box<LiveLink>>) -> oneshot::Sender<()> {
    match live {
        Some(live) => live.retired().await,
        None => std::future::pending().await,
    }
}

/// How the client side of a link ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkEnd {
    /// The client closed it on purpose (a close frame, an SSE close post), or the server ended
    /// it (a protocol violation, shutdown): the connection ends now and its disconnect hook
    /// runs.
    Clean,
    /// The transport broke (socket error, dead peer, stream dropped), or a resume on another
    /// socket took the connection over.
    Dropped,
}

/// Tells the runtime the client side of a link is gone.
///
/// A dropped link of a client that understands tokens is reported as *lost*: the runtime
/// keeps the connection for its grace period so the client can resume it. Official clients
/// cannot resume (they never see a token), so their connections end at once, as in RivetKit.
pub(crate) fn release_link(sender: &dyn LinkSender, ext: &ConnExtensions, end: LinkEnd) {
    match end {
        LinkEnd::Dropped if ext.tokens => sender.lost(),
        _ => sender.close(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use footlights_protocol::ActorId;
    use proptest::prelude::*;

    fn init(token: Option<&str>) -> ToClient {
        ToClient::Init {
            actor_id: ActorId::new("a1"),
            connection_id: ConnId::new("c1"),
            connection_token: token.map(str::to_owned),
        }
    }

    #[test]
    fn official_clients_never_see_tokens() {
        let ext =
            ConnExtensions::from_subprotocols(&["rivet".into(), "rivet_encoding.bare".into()]);
        assert_eq!(ext, ConnExtensions::default());
        let mut msg = init(Some("secret"));
        assert_eq!(ext.prepare_init(&mut msg, Encoding::Bare, 2), 2);
        assert_eq!(msg, init(None));
    }

    #[test]
    fn footlights_clients_get_tokens_bare_as_v1() {
        let ext = ConnExtensions::from_subprotocols(&["rivet".into(), "footlights".into()]);
        assert!(ext.tokens && ext.resume.is_none());
        let mut msg = init(Some("t"));
        assert_eq!(ext.prepare_init(&mut msg, Encoding::Bare, 4), 1);
        assert_eq!(ext.prepare_init(&mut msg, Encoding::Json, 4), 4);
        assert_eq!(msg, init(Some("t")));
        assert_eq!(ext.prepare_init(&mut init(None), Encoding::Bare, 4), 4);
    }

    #[test]
    fn resume_subprotocols_are_decoded() {
        let ext = ConnExtensions::from_subprotocols(&["footlights_resume.c%2E1.t.o%20k".into()]);
        assert_eq!(
            ext.resume,
            Some(Box::new(Resume {
                conn_id: ConnId::new("c.1"),
                token: "t.o k".into()
            }))
        );
        for bad in [
            "footlights_resume.",
            "footlights_resume.c1",
            "footlights_resume..t",
            "footlights_resume.c1.",
        ] {
            let ext = ConnExtensions::from_subprotocols(&[bad.into()]);
            assert!(ext.tokens && ext.resume.is_none(), "{bad}");
        }
    }

    #[test]
    fn sse_resume_from_headers_or_query() {
        let mut headers = HeaderMap::new();
        headers.insert(CONN_ID_HEADER, "c1".parse().unwrap());
        headers.insert(CONN_TOKEN_HEADER, "tok".parse().unwrap());
        let ext = ConnExtensions::from_sse(&headers, &[]);
        assert_eq!(ext.resume.unwrap().token, "tok");
        let query = vec![
            (CONN_ID_PARAM.to_owned(), "c2".to_owned()),
            (CONN_TOKEN_PARAM.to_owned(), "t2".to_owned()),
        ];
        let ext = ConnExtensions::from_sse(&HeaderMap::new(), &query);
        assert_eq!(ext.resume.unwrap().conn_id, ConnId::new("c2"));
        assert!(ConnExtensions::from_sse(&HeaderMap::new(), &[]).tokens);
    }

    proptest! {
        #[test]
        fn subprotocol_parsing_never_panics(protocols in proptest::collection::vec(".*", 0..4)) {
            let ext = ConnExtensions::from_subprotocols(&protocols);
            let mut msg = init(Some("x"));
            let _ = ext.prepare_init(&mut msg, Encoding::Bare, 4);
        }
    }
}
