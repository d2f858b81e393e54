//! Who may call the server: a shared token for the manager API and, optionally, the gateway,
//! plus a hook for checks of the server's own (signed tokens, say).
//!
//! Tokens arrive where the official clients put them (the protocol's §1 and §2.6): the
//! manager API as `Authorization: Bearer {token}`; gateway requests as the `x-rivet-token`
//! header, `@{token}` in a direct gateway path, `rvt-token` in a query-gateway URL, or the
//! `rivet_token.{token}` WebSocket subprotocol. Comparisons take the same time whatever the
//! bytes, so a token cannot be guessed byte by byte from response times.
//!
//! RivetKit 2.0.33 clients send no token on WebSockets, so requiring one at the gateway
//! ([`AccessPolicy::gateway`]) shuts those clients' connections out; the manager token alone
//! keeps strangers from creating or listing actors by name while every actor's own
//! `on_before_connect` decides who may connect.

use std::fmt;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use footlights_protocol::ActionError;

use crate::peer::offered_protocols;

/// What a request asks for, as an [`AccessPolicy`] check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Area {
    /// The manager API: `/actors` (looking up, listing and creating actors).
    Manager,
    /// An actor through the gateway: actions, connections, raw requests.
    Gateway,
    /// The inspector's API under `/inspector/api`: reading and replacing actors' state,
    /// calling their actions, destroying them. Needs the token like the manager API.
    Inspector,
}

/// One request, for a custom check ([`AccessPolicy::check`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct AccessRequest<'a> {
    /// What it asks for.
    pub area: Area,
    /// The token it carries, from wherever the client put it; `None` if none.
    pub token: Option<&'a str>,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// Its path, relative to the base path.
    pub path: &'a str,
}

type Check = dyn Fn(&AccessRequest<'_>) -> Result<(), ActionError> + Send + Sync;

/// Who may call the server. The default lets everyone in (what a development server on
/// `127.0.0.1` wants).
///
/// ```
/// use footlights_server::{AccessPolicy, Area};
/// use footlights_protocol::ActionError;
///
/// // A token for the manager API and the gateway alike.
/// let policy = AccessPolicy::token("s3cret").gateway(true);
///
/// // Or a check of your own, here: gateway calls need any token that starts with "user-".
/// let policy = AccessPolicy::open().check(|req| match (req.area, req.token) {
///     (Area::Gateway, Some(t)) if t.starts_with("user-") => Ok(()),
///     (Area::Gateway, _) => Err(ActionError::forbidden("a user token is needed")),
///     _ => Ok(()),
/// });
/// ```
#[derive(Clone, Default)]
pub struct AccessPolicy {
    token: Option<Arc<str>>,
    gateway: bool,
    check: Option<Arc<Check>>,
}

impl fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessPolicy")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("gateway", &self.gateway)
            .field("check", &self.check.is_some())
            .finish()
    }
}

impl AccessPolicy {
    /// Everyone may call (the default).
    pub fn open() -> Self {
        AccessPolicy::default()
    }

    /// Manager requests must carry `token` (and gateway requests too, with
    /// [`gateway`](Self::gateway)).
    pub fn token(token: impl Into<String>) -> Self {
        AccessPolicy {
            token: Some(Arc::from(token.into())),
            ..AccessPolicy::default()
        }
    }

    /// Whether gateway requests need the token as well (off by default).
    #[must_use]
    pub fn gateway(mut self, required: bool) -> Self {
        self.gateway = required;
        self
    }

    /// A check of your own, run after the token check for every manager and gateway request;
    /// an error refuses the request with it (use `auth.forbidden` or `auth.unauthorized`).
    #[must_use]
    pub fn check(
        mut self,
        check: impl Fn(&AccessRequest<'_>) -> Result<(), ActionError> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Arc::new(check));
        self
    }

    /// Whether anything is checked at all.
    pub fn is_open(&self) -> bool {
        self.token.is_none() && self.check.is_none()
    }

    /// Checks one request; `token` is what the request carries (see [`token_of`]).
    pub(crate) fn allow(&self, request: &AccessRequest<'_>) -> Result<(), ActionError> {
        let needs_token = match request.area {
            Area::Manager | Area::Inspector => true,
            Area::Gateway => self.gateway,
        };
        if let (Some(expected), true) = (&self.token, needs_token) {
            match request.token {
                None => {
                    return Err(ActionError::unauthorized(
                        "this server needs a token (the client's `token` option)",
                    ));
                }
                Some(given) if !same_token(given, expected) => {
                    return Err(ActionError::forbidden("the token is not valid"));
                }
                Some(_) => {}
            }
        }
        match &self.check {
            Some(check) => check(request),
            None => Ok(()),
        }
    }
}

/// Compares in time that depends on the lengths only.
fn same_token(given: &str, expected: &str) -> bool {
    crate::resume::same_secret(given.as_bytes(), expected.as_bytes())
}

/// The token a request carries: `Authorization: Bearer` for the manager; for the gateway,
/// `in_path` (from `@token` or `rvt-token`), then `x-rivet-token`, then the
/// `rivet_token.{token}` subprotocol.
pub(crate) fn token_of<'a>(
    area: Area,
    headers: &'a HeaderMap,
    in_path: Option<&'a str>,
) -> Option<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    let header = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    match area {
        Area::Manager | Area::Inspector => header(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| Cow::Borrowed(t.trim())),
        Area::Gateway => in_path
            .map(Cow::Borrowed)
            .or_else(|| header(header::HeaderName::from_static("x-rivet-token")).map(Cow::Borrowed))
            .or_else(|| {
                offered_protocols(headers).into_iter().find_map(|p| {
                    p.strip_prefix("rivet_token.").map(|t| {
                        Cow::Owned(
                            percent_encoding::percent_decode_str(t)
                                .decode_utf8_lossy()
                                .into_owned(),
                        )
                    })
                })
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request<'a>(
        area: Area,
        token: Option<&'a str>,
        headers: &'a HeaderMap,
    ) -> AccessRequest<'a> {
        AccessRequest {
            area,
            token,
            headers,
            path: "/",
        }
    }

    #[test]
    fn a_token_guards_the_manager_and_on_request_the_gateway() {
        let h = HeaderMap::new();
        let policy = AccessPolicy::token("t0k");
        let code = |r: Result<(), ActionError>| r.err().map(|e| e.code().to_owned());
        assert_eq!(
            code(policy.allow(&request(Area::Manager, None, &h))),
            Some("unauthorized".into())
        );
        assert_eq!(
            code(policy.allow(&request(Area::Manager, Some("t0K"), &h))),
            Some("forbidden".into())
        );
        assert_eq!(
            code(policy.allow(&request(Area::Manager, Some("t0k"), &h))),
            None
        );
        assert_eq!(
            code(policy.allow(&request(Area::Gateway, None, &h))),
            None,
            "gateway open"
        );
        let strict = policy.gateway(true);
        assert_eq!(
            code(strict.allow(&request(Area::Gateway, None, &h))),
            Some("unauthorized".into())
        );
        assert_eq!(
            code(strict.allow(&request(Area::Gateway, Some("t0k"), &h))),
            None
        );
        assert!(AccessPolicy::open().is_open());
        assert!(!format!("{strict:?}").contains("t0k"), "never shown");
    }

    #[test]
    fn tokens_are_found_where_clients_put_them() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(token_of(Area::Manager, &h, None).as_deref(), Some("abc"));
        assert_eq!(
            token_of(Area::Gateway, &h, None),
            None,
            "bearer is for the manager"
        );
        assert_eq!(token_of(Area::Gateway, &h, Some("p")).as_deref(), Some("p"));
        h.insert("x-rivet-token", HeaderValue::from_static("hdr"));
        assert_eq!(token_of(Area::Gateway, &h, None).as_deref(), Some("hdr"));
        let mut ws = HeaderMap::new();
        ws.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("rivet, rivet_token.a%2Fb"),
        );
        assert_eq!(token_of(Area::Gateway, &ws, None).as_deref(), Some("a/b"));
    }
}
