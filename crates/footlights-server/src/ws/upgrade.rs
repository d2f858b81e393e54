//! The WebSocket handshake of `/connect`, done here rather than by axum so that the socket's
//! task holds the upgraded stream itself: a connection whose actor sleeps can then let go of
//! its WebSocket state and keep only the stream (see [`super::park`]).

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

use super::direct::DirectSettings;
pub(crate) use super::direct::RawIo;
use super::park::Tracked;

/// The upgraded stream, following the client's frames (see [`Tracked`]).
pub(crate) type Io = Tracked<RawIo>;

/// An accepted `/connect` WebSocket.
pub(crate) type Socket = WebSocketStream<Io>;

/// A request that asked for a WebSocket (RFC 6455 §4.2.1), not yet answered.
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    config: WebSocketConfig,
    protocol: Option<HeaderValue>,
    /// Set: a plain TCP stream is taken back from hyper so that broadcasts can be written to
    /// it directly (see [`super::direct`]).
    direct: Option<DirectSettings>,
}

/// Why a request is not a WebSocket upgrade: the HTTP status to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotUpgrade(pub(crate) StatusCode);

impl Upgrade {
    /// Checks the handshake headers of an HTTP/1.1 request and takes its upgrade.
    pub(crate) fn from_parts(parts: &mut Parts) -> Result<Upgrade, NotUpgrade> {
        if parts.method != Method::GET {
            return Err(NotUpgrade(StatusCode::METHOD_NOT_ALLOWED));
        }
        let headers = &parts.headers;
        if !has_token(headers, header::CONNECTION, "upgrade")
            || !has_token(headers, header::UPGRADE, "websocket")
            || headers
                .get(header::SEC_WEBSOCKET_VERSION)
                .is_none_or(|v| v.as_bytes() != b"13")
        {
            return Err(NotUpgrade(StatusCode::BAD_REQUEST));
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(NotUpgrade(StatusCode::BAD_REQUEST))?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotUpgrade(StatusCode::UPGRADE_REQUIRED))?;
        Ok(Upgrade {
            key,
            on_upgrade,
            config: WebSocketConfig::default(),
            protocol: None,
            direct: None,
        })
    }

    /// The socket's settings.
    pub(crate) fn config(mut self, config: WebSocketConfig) -> Self {
        self.config = config;
        self
    }

    /// Lets broadcasts be written to the socket directly when it is a plain TCP stream.
    pub(crate) fn direct(mut self, settings: DirectSettings) -> Self {
        self.direct = Some(settings);
        self
    }

    /// Selects `protocol` as the subprotocol when the client offered it.
    pub(crate) fn protocol(mut self, headers: &HeaderMap, protocol: &'static str) -> Self {
        let offered = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == protocol);
        if offered {
            self.protocol = Some(HeaderValue::from_static(protocol));
        }
        self
    }

    /// Answers `101 Switching Protocols`; once hyper hands the stream over, `serve` runs on
    /// it in a task of its own.
    pub(crate) fn on_upgrade<F, Fut>(self, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade {
            key,
            on_upgrade,
            config,
            protocol,
            direct,
        } = self;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let raw = match &direct {
                        Some(settings) => RawIo::new(upgraded, settings),
                        None => RawIo::Upgraded(TokioIo::new(upgraded)),
                    };
                    let io = Tracked::new(raw);
                    let socket =
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                    serve(socket).await;
                }
                Err(error) => tracing::debug!(%error, "websocket upgrade failed"),
            }
        });
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = protocol {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
    }
}

/// Whether header `name` lists `token` (comma-separated, any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(
        build: impl FnOnce(axum::http::request::Builder) -> axum::http::request::Builder,
    ) -> Parts {
        build(Request::builder().uri("/connect"))
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn handshake(b: axum::http::request::Builder) -> axum::http::request::Builder {
        with_version(b, "13")
    }

    fn with_version(
        b: axum::http::request::Builder,
        version: &str,
    ) -> axum::http::request::Builder {
        b.header("connection", "keep-alive, Upgrade")
            .header("upgrade", "WebSocket")
            .header("sec-websocket-version", version)
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    }

    #[test]
    fn requests_that_are_not_handshakes_get_their_status() {
        let status = |p: &mut Parts| Upgrade::from_parts(p).err().map(|e| e.0);
        let mut post = parts(|b| handshake(b).method("POST"));
        assert_eq!(status(&mut post), Some(StatusCode::METHOD_NOT_ALLOWED));
        let mut plain = parts(|b| b);
        assert_eq!(status(&mut plain), Some(StatusCode::BAD_REQUEST));
        let mut old = parts(|b| with_version(b, "8"));
        assert_eq!(status(&mut old), Some(StatusCode::BAD_REQUEST));
        let mut no_key = parts(|b| {
            b.header("connection", "upgrade")
                .header("upgrade", "websocket")
                .header("sec-websocket-version", "13")
        });
        assert_eq!(status(&mut no_key), Some(StatusCode::BAD_REQUEST));
        // A valid handshake outside hyper has nothing to upgrade.
        let mut detached = parts(handshake);
        assert_eq!(status(&mut detached), Some(StatusCode::UPGRADE_REQUIRED));
    }

    #[test]
    fn tokens_are_matched_in_lists_in_any_case() {
        let p = parts(handshake);
        assert!(has_token(&p.headers, header::CONNECTION, "upgrade"));
        assert!(has_token(&p.headers, header::UPGRADE, "websocket"));
        assert!(!has_token(&p.headers, header::UPGRADE, "h2c"));
    }
}
