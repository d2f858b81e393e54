//! What the server knows about the other end: the encoding it asked for, its dialect (§3.4) and
//! the BARE version to answer it with (§9).

use axum::http::{HeaderMap, header};
use footlights_protocol::codec::{
    Dialect, Encoding, FALLBACK_VERSION, LATEST_VERSION, response_version,
};

/// How a request named its actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// `/gateway/{id}/…`: any client version.
    Direct,
    /// `/gateway/{name}/…?rvt-…`: only 2.3.x clients build these.
    Query,
    /// `x-rivet-target: actor` headers or subprotocols: only 2.3.x clients.
    Header,
}

impl Via {
    /// Whether only a 2.3.x (protocol v4, compat dialect) client can have sent this.
    fn implies_v4(self) -> bool {
        matches!(self, Via::Query | Via::Header)
    }
}

/// The dialect before the peer has written any BARE: compat for 2.3.x routes, else what the
/// `User-Agent` says, else compat (§3.4). Manager routes name no actor: pass [`Via::Direct`].
pub(crate) fn initial_dialect(headers: &HeaderMap, via: Via) -> Dialect {
    if via.implies_v4() {
        return Dialect::Compat;
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(Dialect::from_user_agent)
        .unwrap_or_default()
}

/// The encoding, dialect and output version for one request or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) encoding: Encoding,
    pub(crate) dialect: Dialect,
    /// The BARE version to write (ignored by JSON and CBOR).
    pub(crate) version: u16,
}

impl Peer {
    /// How errors are written to this peer: in its encoding, version and dialect.
    pub(crate) fn error_format(&self) -> crate::error::ErrorFormat {
        crate::error::ErrorFormat::Encoded {
            encoding: self.encoding,
            version: self.version,
            dialect: self.dialect,
        }
    }

    /// An HTTP actor request: encoding from `x-rivet-encoding` (JSON when absent or unknown).
    /// The version follows the request body once it is decoded ([`Peer::saw_version`]).
    pub(crate) fn http(headers: &HeaderMap, via: Via) -> Peer {
        let encoding = Encoding::from_header(
            headers
                .get("x-rivet-encoding")
                .and_then(|v| v.to_str().ok()),
        );
        Peer {
            encoding,
            dialect: initial_dialect(headers, via),
            version: response_version(None),
        }
    }

    /// A realtime connection in `encoding`: v4 for 2.3.x-only routes, v2 otherwise, until
    /// the peer writes a BARE frame.
    pub(crate) fn connection(encoding: Encoding, headers: &HeaderMap, via: Via) -> Peer {
        Peer {
            encoding,
            dialect: initial_dialect(headers, via),
            version: if via.implies_v4() {
                LATEST_VERSION
            } else {
                FALLBACK_VERSION
            },
        }
    }

    /// A Footlights-only transport (SSE): the newest version, compat dialect.
    pub(crate) fn footlights(encoding: Encoding) -> Peer {
        Peer {
            encoding,
            dialect: Dialect::Compat,
            version: LATEST_VERSION,
        }
    }

    /// The peer wrote a BARE body with this version prefix: answer in the same version and
    /// take the dialect it implies.
    pub(crate) fn saw_version(&mut self, version: Option<u16>) {
        if let Some(v) = version {
            self.version = response_version(Some(v));
            self.dialect = Dialect::from_bare_version(v);
        }
    }
}

/// The subprotocols a WebSocket upgrade offers, split and trimmed, in order.
pub(crate) fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The RivetKit subprotocols of an actor-connect WebSocket (§7.1, §5.3).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RivetProtocols {
    /// `rivet_encoding.{enc}`, as written (unknown names are reported, not guessed).
    pub(crate) encoding: Option<String>,
    /// `rivet_conn_params.{…}`, percent-decoded JSON text.
    pub(crate) params: Option<Vec<u8>>,
    /// `rivet_target.actor` was offered.
    pub(crate) target_actor: bool,
    /// `rivet_actor.{id}`, percent-decoded.
    pub(crate) actor: Option<String>,
}

impl RivetProtocols {
    pub(crate) fn parse(protocols: &[String]) -> RivetProtocols {
        let mut out = RivetProtocols::default();
        for p in protocols {
            if let Some(enc) = p.strip_prefix("rivet_encoding.") {
                out.encoding.get_or_insert_with(|| enc.to_owned());
            } else if let Some(params) = p.strip_prefix("rivet_conn_params.") {
                out.params
                    .get_or_insert_with(|| percent_encoding::percent_decode_str(params).collect());
            } else if p == "rivet_target.actor" {
                out.target_actor = true;
            } else if let Some(id) = p.strip_prefix("rivet_actor.") {
                out.actor.get_or_insert_with(|| {
                    percent_encoding::percent_decode_str(id)
                        .decode_utf8_lossy()
                        .into_owned()
                });
            }
        }
        out
    }

    /// The encoding: JSON when not given, `Err(name)` when unknown (§3.1: close 1003).
    pub(crate) fn encoding(&self) -> Result<Encoding, String> {
        match &self.encoding {
            None => Ok(Encoding::Json),
            Some(name) => name.parse().map_err(|_| name.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn subprotocol_parsing_never_panics(offered in proptest::collection::vec(".*", 0..6)) {
            let p = RivetProtocols::parse(&offered);
            let _ = p.encoding();
        }

        #[test]
        fn header_splitting_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&raw) {
                headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
            }
            let offered = offered_protocols(&headers);
            prop_assert!(offered.iter().all(|p| !p.is_empty() && p.trim() == p));
        }
    }

    #[test]
    fn subprotocols_are_split_and_decoded() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(
                "rivet, rivet_encoding.cbor,rivet_conn_params.%7B%22a%22%3A1%7D",
            ),
        );
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("rivet_target.actor, rivet_actor.a%40b"),
        );
        let offered = offered_protocols(&headers);
        assert_eq!(offered.len(), 5);
        let p = RivetProtocols::parse(&offered);
        assert_eq!(p.encoding(), Ok(Encoding::Cbor));
        assert_eq!(p.params.as_deref(), Some(&br#"{"a":1}"#[..]));
        assert!(p.target_actor);
        assert_eq!(p.actor.as_deref(), Some("a@b"));
    }

    #[test]
    fn unknown_encodings_are_reported() {
        let p = RivetProtocols::parse(&["rivet_encoding.yaml".to_owned()]);
        assert_eq!(p.encoding(), Err("yaml".to_owned()));
        assert_eq!(RivetProtocols::default().encoding(), Ok(Encoding::Json));
    }

    #[test]
    fn versions_follow_the_route_and_the_peer() {
        let headers = HeaderMap::new();
        let mut peer = Peer::connection(Encoding::Bare, &headers, Via::Direct);
        assert_eq!(peer.version, 2);
        peer.saw_version(Some(4));
        assert_eq!((peer.version, peer.dialect), (4, Dialect::Compat));
        let peer = Peer::connection(Encoding::Bare, &headers, Via::Query);
        assert_eq!(peer.version, 4);
        let mut ua = HeaderMap::new();
        ua.insert(
            header::USER_AGENT,
            HeaderValue::from_static("RivetKit/2.0.33"),
        );
        let mut peer = Peer::http(&ua, Via::Direct);
        assert_eq!(peer.dialect, Dialect::Native);
        peer.saw_version(Some(2));
        assert_eq!(peer.version, 2);
    }
}
