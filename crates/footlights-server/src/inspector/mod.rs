//! The inspector: a page for operators at `/inspector/` and the JSON API under
//! `/inspector/api` it uses, which the `footlights actors` commands use too.
//!
//! # The page
//!
//! `GET /inspector` redirects to `/inspector/` (relative, so a base path is kept), which
//! serves one HTML page and one script (`inspector.js`), embedded in the server binary: plain
//! HTML and a small dependency-free script, no build step, no frontend toolchain. The page is
//! a thin view over the API below (types and actors with key-prefix search and paging,
//! awake or asleep, the state as JSON with an edit that asks for confirmation, connections,
//! scheduled calls, the key-value store, a form to call an action, the live log of actions
//! and events); a bundled framework would
//! add a lock file, a build and their updates to the server's release for no gain at this
//! size.
//!
//! The page and its script hold no data and are served to anyone; every piece of data comes
//! from the API, with the token. A browser cannot add a bearer header to a page it navigates
//! to, so the page takes the token either typed into its token field or as `?token=` in its
//! URL (taken out of the address bar at once); it keeps it in the tab's `sessionStorage` and
//! sends it as `Authorization: Bearer`. Everything the server sends is shown as text, never as
//! HTML, and the page's content security policy allows only its own script.
//!
//! # Access
//!
//! The API is guarded like the manager API ([`Area::Inspector`](crate::Area::Inspector)):
//! when the server has a token ([`AccessPolicy::token`](crate::AccessPolicy::token)), every
//! request carries it as `Authorization: Bearer {token}`; a custom check sees the area too.
//! Without a token it is as open as `/actors` (a development server on `127.0.0.1`).
//!
//! # Routes
//!
//! Errors are the usual JSON error body (`group`, `code`, `message`) with the code's status.
//! Values (state, arguments, outputs) are JSON with the protocol's `$`-tags for what JSON
//! cannot hold (`["$BigInt","1"]`, `["$Uint8Array","<base64>"]`, ...), both ways.
//!
//! - `GET /inspector/api/actors` → `{"names": [..], "actors": [], "cursor": null}`: the
//!   actor types.
//! - `GET /inspector/api/actors?name=N[&prefix=P][&cursor=C][&limit=L]` → the same with one
//!   page of type `N`'s actors in key order: `prefix` is a key in its serialized form (`a/b`)
//!   and matches whole key parts; `cursor` is the previous page's `cursor` (`null` after the
//!   last page); `limit` defaults to 50 (at most 1000). `&key=K` instead finds the one actor
//!   with that key. Each actor: `{"id", "name", "key", "keyParts", "awake", "createdAt",
//!   "startedAt", "sleptAt"}` (times in milliseconds since the Unix epoch, as
//!   `GET /actors` reports them).
//! - `GET /inspector/api/actors/{id}[?kv_prefix=P&kv_after=A&kv_limit=L]` → `{"actor": {..},
//!   "state": <json>, "connections": [{"id", "ephemeral", "detached", "subscriptions",
//!   "params", "state"}],
//!   "schedules": [{"id", "at", "action", "args", "failures", "job": null | {"name",
//!   "rule"}}], "kv": {"entries": [{"key", "value", "decoded"?}], "next": A|null}, "queues":
//!   [..]}`. Keys and values are `{"text": ..}` when UTF-8, else
//!   `{"base64": ..}`; `decoded` is the value read as CBOR (how `Kv::put` stores it) when it
//!   reads as one document. `kv_prefix` is text; `kv_after` the previous page's `next` (the
//!   last key, base64url); `kv_limit` defaults to 100 (at most 1000).
//!   `queues` lists the actor's queues (declared ones, and any other holding messages) by
//!   name: `[{"name", "depth", "inFlight", "messages": [{"id", "inFlight", "size",
//!   "preview"}], "more"}]`, `depth` counting the messages taken by a consumer and not yet
//!   completed (`inFlight`) too, and `messages` the oldest ones with a preview of their body
//!   as JSON (cut at 200 characters). `queue=Q` lists queue `Q` only, `queue_after=ID` the
//!   messages after message `ID` (the previous page's last), `queue_limit` how many per queue
//!   (default 10, at most 100).
//!   A connection's `params` are the JSON its client sent (`null` if none, and for
//!   short-lived connections); its `state` is what the actor's
//!   [`Actor::inspect_conn_state`](footlights_core::Actor::inspect_conn_state) shows, `null`
//!   by default.
//! - `PUT /inspector/api/actors/{id}/state` with `{"state": <json>}` → `{}` once the new
//!   state is durable. A state that does not fit the actor's type is `actor.invalid_request`
//!   and the old one stays.
//! - `POST /inspector/api/actors/{id}/actions/{action}` with `{"args": [..], "params": ..}`
//!   (both optional) → `{"output": <json>}`: a stateless call, as `POST /action/{name}`
//!   through the gateway makes one (the connect hooks see `params` and this request).
//! - `DELETE /inspector/api/actors/{id}` → `{}`: destroys the actor, as
//!   `DELETE /actors/{id}` does.
//! - `GET /inspector/api/actors/{id}/log` → `text/event-stream`: the actor's live log
//!   ([`Registry::watch`](footlights_core::Registry::watch)), from the moment the response's
//!   head is sent. Each action the actor handles is an `action` event with data
//!   `{"at", "name", "caller": "stateless"|"connection"|"schedule", "durationMs",
//!   "error": null|"group.code"}`; each event it sends is an `event` event with
//!   `{"at", "name", "recipients", "size", "preview"}` (`size` and `preview` are of the
//!   arguments as JSON, the preview cut at 200 characters). A watcher that reads too slowly
//!   loses the oldest records and gets `lagged` with `{"lost": n}` in their place. The
//!   stream ends with `end` and `{"reason": "stopped"}` when the actor stops (it sleeps or
//!   is destroyed; watch again to follow its next instance) or `{"reason": "shutdown"}`;
//!   comment lines keep an idle stream open. At most 8 watchers per actor: one more is
//!   `inspector.too_many_watchers` (429). While nobody watches, the actor makes no records.
//!
//! Reading and replacing the state go through the actor (see
//! [`footlights_core::inspect`]): the state shown is the live one, and a replaced state is
//! saved like an action's change, hooks and output gate included. Both **wake a sleeping
//! actor**, as a call would; so does a listing's detail view. Listing actors does not.
//!
//! In a cluster, an actor another node holds is refused with `inspector.remote_actor`, whose
//! message names that node's peer address: ask that node.

mod api;
mod log;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::access::Area;
use crate::error::HttpError;
use crate::server::Shared;

/// The path prefix of the inspector's routes.
pub(crate) const PREFIX: &str = "/inspector";

/// Serves `path` (relative to the base path, starting with [`PREFIX`]).
pub(crate) async fn handle(shared: &Shared, req: Request, path: &str) -> Response {
    let rest = &path[PREFIX.len()..];
    if let Some(api) = rest.strip_prefix("/api") {
        if let Err(e) = crate::server::area_allowed(shared, Area::Inspector, &req, path) {
            return HttpError::json(e).into_response();
        }
        return api::handle(shared, req, api).await;
    }
    let asset = match rest {
        "" => None,
        "/" => Some((PAGE, "text/html; charset=utf-8")),
        "/inspector.js" => Some((SCRIPT, "text/javascript; charset=utf-8")),
        _ => return shared.config.fallback.handle(req).await,
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return HttpError::json(crate::error::method_not_allowed()).into_response();
    }
    match asset {
        Some((body, content_type)) => {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        // `/inspector` → `inspector/`, relative, so that the page's relative links work under
        // any base path; the query (a `?token=`) goes along.
        None => {
            let location = match req.uri().query() {
                Some(query) => format!("inspector/?{query}"),
                None => "inspector/".to_owned(),
            };
            match HeaderValue::from_str(&location) {
                Ok(location) => (
                    StatusCode::PERMANENT_REDIRECT,
                    [(header::LOCATION, location)],
                )
                    .into_response(),
                Err(_) => HttpError::json(footlights_protocol::ActionError::invalid_request(
                    "the query is not a valid header value",
                ))
                .into_response(),
            }
        }
    }
}

/// The inspector page.
const PAGE: &str = include_str!("page/index.html");
/// The page's script.
const SCRIPT: &str = include_str!("page/inspector.js");
/// What the page may load and run: its own script and styles, requests to its own origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";
