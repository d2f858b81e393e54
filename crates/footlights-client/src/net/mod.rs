//! The network transport (feature `net`): stateless actions over HTTP, realtime connections
//! over WebSocket or SSE, and the manager API for `resolve` and `create`.
//!
//! Addressing follows RivetKit 2.3 (notes §10): handles by key use the query gateway
//! (`/gateway/{name}/…?rvt-method=get|getOrCreate&…`), so an action is one request and a
//! `get_or_create` actor is created on its first use; handles by id use the direct gateway
//! (`/gateway/{id}/…`). Keys the query gateway cannot carry (a part with a `,`) are resolved
//! through `PUT`/`GET /actors` first. Manager calls are always JSON; everything else uses the
//! client's [`Encoding`](footlights_protocol::codec::Encoding).
//!
//! Connections try [`ClientOptions::transports`] in order and use the first that opens. Both
//! transports offer the Footlights connection tokens, so a link that drops is resumed: the
//! server hands back the same connection, with its state and subscriptions, if it still keeps
//! it (`docs/protocol-extensions.md`).

mod event_stream;
mod http;
mod link;
mod options;
mod raw;
mod sse;
mod url;
mod ws;

use std::sync::Arc;

use footlights_protocol::{ActionError, ActorId, ActorKey, Value};
use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

pub use options::{ClientBuilder, ClientOptions, TransportKind};

use crate::error::{Error, Result};
use crate::handle::Client;
use crate::transport::{Link, ResumeToken, Target, Transport};
use url::{Address, Endpoint, Gateway, key_fits_query};

/// What a `User-Agent` says about this client. Not `RivetKit/…`: servers read that as a
/// JavaScript client's version.
const USER_AGENT: &str = concat!("footlights-client/", env!("CARGO_PKG_VERSION"));

impl Client {
    /// A client for the server at `url` (`http://host:port`, or with a path prefix such as
    /// `https://host/api/rivet`), with the default [`ClientOptions`]. Sends nothing until
    /// the first call. `https://ns:token@host` sets the namespace and the token.
    ///
    /// How it talks to the server (the RivetKit protocol, as its 2.3 clients do):
    /// - stateless actions are one `POST {gateway}/action/{name}` each. Handles by key use the
    ///   query gateway (`/gateway/{name}/…?rvt-method=get|getOrCreate&…`), so a
    ///   `get_or_create` actor is created by its first call; handles by id use the direct
    ///   gateway (`/gateway/{id}/…`). Keys the query gateway cannot carry (a part holding a
    ///   `,`) are resolved through the manager API first;
    /// - `resolve` and `create` use the manager API (`GET`/`PUT`/`POST /actors`, JSON);
    /// - connections try [`ClientOptions::transports`] in order (WebSocket, then SSE, by
    ///   default) and keep the first one whose handshake succeeds; an answer from the server,
    ///   even a refusal (`auth.forbidden`, `actor.not_found`), ends the negotiation. Each
    ///   reconnection negotiates again. Both
    ///   transports ask for the Footlights connection token, so a link that breaks is resumed.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL that is not `http(s)://host[:port][/prefix]`.
    pub fn new(url: &str) -> Result<Client> {
        Client::with_options(url, ClientOptions::default())
    }

    /// A builder for a network client with options.
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder::new(url)
    }

    /// A network client with these options.
    ///
    /// # Errors
    /// As [`ClientBuilder::build`].
    pub fn with_options(url: &str, options: ClientOptions) -> Result<Client> {
        Ok(Client::from_transport(NetTransport::new(url, options)?))
    }
}

/// The network transport behind [`Client::new`]. Cheap to clone: links keep a clone.
#[derive(Debug, Clone)]
pub(crate) struct NetTransport {
    inner: Arc<Net>,
}

/// The settings every request and link reads. `Debug` shows no secrets.
pub(crate) struct Net {
    endpoint: Endpoint,
    namespace: String,
    token: Option<String>,
    options: ClientOptions,
    /// The user's headers, checked.
    headers: HeaderMap,
    /// One connection pool for every request and SSE stream.
    http: reqwest::Client,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("endpoint", &self.endpoint.base)
            .field("namespace", &self.namespace)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl NetTransport {
    fn new(url: &str, options: ClientOptions) -> Result<NetTransport> {
        options.check()?;
        let endpoint = Endpoint::parse(url)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &options.headers {
            let invalid = || Error::InvalidHeader { name: name.clone() };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            headers.append(name, value);
        }
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(options.connect_timeout)
            .build()
            .map_err(|e| Error::Http(Box::new(e)))?;
        let namespace = options
            .namespace
            .clone()
            .or_else(|| endpoint.namespace.clone())
            .unwrap_or_else(|| "default".to_owned());
        let token = options.token.clone().or_else(|| endpoint.token.clone());
        Ok(NetTransport {
            inner: Arc::new(Net {
                endpoint,
                namespace,
                token,
                options,
                headers,
                http,
            }),
        })
    }
}

impl Net {
    fn gateway<'a>(&'a self, base: &'a str) -> Gateway<'a> {
        Gateway {
            base,
            namespace: &self.namespace,
            pool: &self.options.pool,
            token: self.token.as_deref(),
        }
    }

    /// The handle's params, or the client's default ones.
    fn params<'a>(&'a self, params: Option<&'a Value>) -> Option<&'a Value> {
        params.or(self.options.params.as_ref())
    }

    /// The gateway URL of `route` on the actor `target` names, under `base` (the HTTP or the
    /// WebSocket base). Targets by key use the query gateway when their key fits, else they
    /// are resolved to an id first.
    async fn gateway_url(
        &self,
        base: &str,
        target: &Target,
        route: &str,
    ) -> Result<String, ActionError> {
        let gateway = self.gateway(base);
        let address = match target {
            Target::Id { id, .. } => Address::Id(id),
            Target::Get { name, key } if key_fits_query(key) => Address::Get { name, key },
            Target::GetOrCreate { name, key, input } if key_fits_query(key) => {
                Address::GetOrCreate {
                    name,
                    key,
                    input: input.as_ref().filter(|v| !v.is_null()),
                }
            }
            other => {
                let id = self.resolve(other).await?;
                return Ok(gateway.url(&Address::Id(&id), route));
            }
        };
        Ok(gateway.url(&address, route))
    }

    /// Opens a link with the first transport whose handshake succeeds; a transport that fails
    /// on the client side (network, timeout, a refused upgrade) makes way for the next.
    async fn open(
        self: &Arc<Self>,
        target: &Target,
        params: Option<&Value>,
        resume: Option<&ResumeToken>,
    ) -> Result<Link, ActionError> {
        let params = self.params(params);
        let mut last = None;
        for kind in &self.options.transports {
            let opened = match kind {
                TransportKind::WebSocket => ws::open(self, target, params, resume).await,
                TransportKind::Sse => sse::open(self, target, params, resume).await,
            };
            match opened {
                Ok(link) => {
                    tracing::debug!(
                        transport = kind.as_str(),
                        resume = resume.is_some(),
                        "link open"
                    );
                    return Ok(link);
                }
                // A coded error is the server's answer, which another transport would get too.
                Err(e) if e.group() != "client" => return Err(e),
                Err(e) => {
                    tracing::debug!(transport = kind.as_str(), error = %e, "link failed to open");
                    last = Some(e);
                }
            }
        }
        // invariant: `check` refuses an empty transport list, so the loop ran at least once.
        Err(last.unwrap_or_else(|| crate::error::connection_open_failed("no transport")))
    }
}

impl Transport for NetTransport {
    fn resolve<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<ActorId, ActionError>> {
        Box::pin(self.inner.resolve(target))
    }

    fn create<'a>(
        &'a self,
        name: &'a str,
        key: &'a ActorKey,
        input: Option<Value>,
    ) -> BoxFuture<'a, Result<ActorId, ActionError>> {
        Box::pin(self.inner.create(name, key, input))
    }

    fn action<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        args: Vec<Value>,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(self.inner.action(target, name, args, params))
    }

    fn connect<'a>(
        &'a self,
        target: &'a Target,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Link, ActionError>> {
        Box::pin(self.inner.open(target, params, None))
    }

    fn queue_send<'a>(
        &'a self,
        target: &'a Target,
        name: &'a str,
        body: Value,
        wait: Option<std::time::Duration>,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<crate::SendOutcome, ActionError>> {
        Box::pin(self.inner.queue_send(target, name, body, wait, params))
    }

    fn resume<'a>(
        &'a self,
        target: &'a Target,
        params: Option<&'a Value>,
        resume: &'a ResumeToken,
    ) -> BoxFuture<'a, Result<Link, ActionError>> {
        Box::pin(self.inner.open(target, params, Some(resume)))
    }

    fn fetch<'a>(
        &'a self,
        target: &'a Target,
        request: crate::RawRequest,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<crate::RawResponse, ActionError>> {
        Box::pin(self.inner.fetch(target, request, params))
    }

    fn websocket<'a>(
        &'a self,
        target: &'a Target,
        path: &'a str,
        params: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<crate::RawWebSocket, ActionError>> {
        Box::pin(self.inner.raw_websocket(target, path, params))
    }
}
