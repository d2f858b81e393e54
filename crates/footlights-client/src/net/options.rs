//! [`ClientOptions`] and [`ClientBuilder`]: how a network client talks to a server.

use std::time::Duration;

use footlights_protocol::codec::Encoding;
use footlights_protocol::{Value, to_value};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::handle::Client;

/// A realtime transport, in [`ClientOptions::transports`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// A WebSocket (`/connect`): full duplex, the RivetKit protocol.
    WebSocket,
    /// Server-sent events (`/connect/sse`) down, HTTP posts up: a Footlights extension for
    /// networks where WebSockets do not get through.
    Sse,
}

impl TransportKind {
    /// `websocket` or `sse`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransportKind::WebSocket => "websocket",
            TransportKind::Sse => "sse",
        }
    }
}

/// How a network [`Client`] talks to a server. Every field has a default; see
/// [`Client::builder`] for setting them one by one. `Debug` shows neither the token nor
/// header values.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// The encoding of actions, events and connection messages. Default: [`Encoding::Bare`],
    /// as the RivetKit JavaScript client: the most compact, and user values keep their types
    /// (bytes, big integers) through CBOR. JSON is easiest to read in a proxy log.
    pub encoding: Encoding,
    /// Realtime transports in order of preference. A connection tries the next one when one
    /// cannot be opened (its handshake fails, as behind a proxy that blocks WebSockets).
    /// Default: WebSocket, then SSE.
    pub transports: Vec<TransportKind>,
    /// The namespace (`namespace` / `rvt-namespace`). Default: the one in the endpoint's
    /// userinfo, else `default`.
    pub namespace: Option<String>,
    /// A token sent as `Authorization: Bearer` to the manager API, `x-rivet-token` to gateway
    /// requests, and in gateway URLs. Default: the one in the endpoint's userinfo, if any.
    pub token: Option<String>,
    /// Extra headers on every HTTP request, WebSocket upgrade and SSE stream.
    pub headers: Vec<(String, String)>,
    /// Connection params for handles that set none
    /// ([`ActorHandle::with_params`](crate::ActorHandle::with_params)).
    pub params: Option<Value>,
    /// The runner pool actors are created in (`rvt-runner`, `runner_name_selector`).
    /// Default: `default`.
    pub pool: String,
    /// The limit on one HTTP request (a stateless action, a manager call, an SSE post), from
    /// sending it to reading the whole answer. Default: 90 s, above the server's 60 s action
    /// timeout.
    pub request_timeout: Duration,
    /// The limit on opening a realtime link: the TCP connection and the WebSocket handshake
    /// or the SSE response headers. Default: 10 s.
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            encoding: Encoding::Bare,
            transports: vec![TransportKind::WebSocket, TransportKind::Sse],
            namespace: None,
            token: None,
            headers: Vec::new(),
            params: None,
            pool: "default".to_owned(),
            request_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ClientOptions")
            .field("encoding", &self.encoding)
            .field("transports", &self.transports)
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("headers", &headers)
            .field("params", &self.params)
            .field("pool", &self.pool)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl ClientOptions {
    pub(crate) fn check(&self) -> Result<()> {
        if self.transports.is_empty() {
            return Err(Error::InvalidOption {
                name: "transports",
                reason: "name at least one transport",
            });
        }
        for (name, d) in [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::InvalidOption {
                    name,
                    reason: "must be longer than zero",
                });
            }
        }
        for (name, value) in &self.headers {
            let ok = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && reqwest::header::HeaderValue::from_str(value).is_ok();
            if !ok {
                return Err(Error::InvalidHeader { name: name.clone() });
            }
        }
        Ok(())
    }
}

/// Builds a network [`Client`]; from [`Client::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use footlights_client::{Client, TransportKind};
/// use footlights_protocol::codec::Encoding;
///
/// let client = Client::builder("https://actors.example.com/api")
///     .encoding(Encoding::Cbor)
///     .transports([TransportKind::Sse])
///     .token("secret")
///     .header("x-team", "blue")
///     .request_timeout(Duration::from_secs(30))
///     .build()?;
/// # Ok::<(), footlights_client::Error>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    url: String,
    options: ClientOptions,
    error: Option<Error>,
}

impl ClientBuilder {
    pub(crate) fn new(url: &str) -> Self {
        ClientBuilder {
            url: url.to_owned(),
            options: ClientOptions::default(),
            error: None,
        }
    }

    /// Replaces every option at once.
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// The encoding ([`ClientOptions::encoding`]).
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.options.encoding = encoding;
        self
    }

    /// Realtime transports in order of preference ([`ClientOptions::transports`]).
    pub fn transports(mut self, transports: impl IntoIterator<Item = TransportKind>) -> Self {
        self.options.transports = transports.into_iter().collect();
        self
    }

    /// The namespace ([`ClientOptions::namespace`]).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.options.namespace = Some(namespace.into());
        self
    }

    /// The token ([`ClientOptions::token`]).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.options.token = Some(token.into());
        self
    }

    /// Adds a header to every request ([`ClientOptions::headers`]).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.headers.push((name.into(), value.into()));
        self
    }

    /// Default connection params ([`ClientOptions::params`]).
    pub fn params<P: Serialize + ?Sized>(mut self, params: &P) -> Self {
        match to_value(params) {
            Ok(v) => self.options.params = Some(v),
            Err(_) => {
                self.error = Some(Error::InvalidOption {
                    name: "params",
                    reason: "the params do not serialize",
                });
            }
        }
        self
    }

    /// The runner pool ([`ClientOptions::pool`]).
    pub fn pool(mut self, pool: impl Into<String>) -> Self {
        self.options.pool = pool.into();
        self
    }

    /// The HTTP request timeout ([`ClientOptions::request_timeout`]).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.request_timeout = timeout;
        self
    }

    /// The link opening timeout ([`ClientOptions::connect_timeout`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// Checks the options and builds the client. Sends nothing.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for an endpoint that is not `http(s)://host[:port][/prefix]`,
    /// [`Error::InvalidHeader`], [`Error::InvalidOption`] (no transport, a zero timeout,
    /// params that do not serialize), or [`Error::Http`] if the HTTP client cannot be set up.
    pub fn build(self) -> Result<Client> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Client::with_options(&self.url, self.options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_js_client() {
        let o = ClientOptions::default();
        assert_eq!(o.encoding, Encoding::Bare);
        assert_eq!(o.transports, [TransportKind::WebSocket, TransportKind::Sse]);
        assert_eq!(o.pool, "default");
        assert!(o.check().is_ok());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let o = ClientOptions {
            token: Some("hunter2".into()),
            headers: vec![("authorization".into(), "Bearer hunter3".into())],
            ..ClientOptions::default()
        };
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
        assert!(shown.contains("authorization"));
        let client = Client::builder("http://ns:hunter4@127.0.0.1:1")
            .options(o)
            .build()
            .unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("hunter"), "{shown}");
    }

    #[test]
    fn bad_options_are_refused() {
        let mut o = ClientOptions::default();
        o.transports.clear();
        assert!(matches!(
            o.check(),
            Err(Error::InvalidOption {
                name: "transports",
                ..
            })
        ));
        let o = ClientOptions {
            connect_timeout: Duration::ZERO,
            ..ClientOptions::default()
        };
        assert!(matches!(
            o.check(),
            Err(Error::InvalidOption {
                name: "connect_timeout",
                ..
            })
        ));
        let mut o = ClientOptions::default();
        o.headers.push(("bad name".into(), "v".into()));
        assert!(matches!(o.check(), Err(Error::InvalidHeader { .. })));
        let mut o = ClientOptions::default();
        o.headers.push(("x-ok".into(), "line\nbreak".into()));
        assert!(o.check().is_err());
    }

    #[test]
    fn the_builder_reports_its_first_error() {
        let e = Client::builder("http://127.0.0.1:1")
            .transports([])
            .build()
            .unwrap_err();
        assert!(matches!(
            e,
            Error::InvalidOption {
                name: "transports",
                ..
            }
        ));
        assert!(matches!(
            Client::builder("nope").build(),
            Err(Error::InvalidUrl { .. })
        ));
    }
}
