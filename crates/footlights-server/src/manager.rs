//! The manager API (§4): `/metadata`, `/health` and `/actors`. Always JSON, errors included.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use footlights_protocol::codec::{Dialect, value_from_cbor};
use footlights_protocol::{ActionError, ActorId, ActorKey, Value};
use footlights_storage::ActorMeta;
use serde::Deserialize;
use serde_json::{Map, json};

use crate::error::{HttpError, method_not_allowed};
use crate::limits::read_body;
use crate::peer::{Via, initial_dialect};
use crate::server::Shared;

/// Standard base64, padding optional (`input` of `PUT`/`POST /actors`).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The engine caps `actor_ids` at 32 per lookup.
const MAX_ACTOR_IDS: usize = 32;

/// The server version reported by `/metadata` and `/health`.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A JSON response.
fn json_response(body: &serde_json::Value) -> Response {
    let mut response = body.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /metadata`: the startup check every client waits for (§4.1).
pub(crate) fn metadata(shared: &Shared) -> Response {
    let names: Map<String, serde_json::Value> = shared
        .registry
        .actor_names()
        .into_iter()
        .map(|name| (name.to_owned(), json!({ "metadata": {} })))
        .collect();
    json_response(&json!({
        "runtime": "rivetkit",
        "version": VERSION,
        "actorNames": names,
    }))
}

/// `GET /health`.
pub(crate) fn health() -> Response {
    json_response(&json!({ "status": "ok", "runtime": "rivetkit", "version": VERSION }))
}

/// `/actors`: `GET` looks up, `PUT` gets or creates, `POST` creates.
pub(crate) async fn actors(shared: &Shared, req: Request) -> Response {
    let dialect = initial_dialect(req.headers(), Via::Direct);
    let result = match *req.method() {
        Method::GET => list(shared, req.uri().query().unwrap_or_default()).await,
        Method::PUT => create(shared, req, true).await,
        Method::POST => create(shared, req, false).await,
        _ => Err(method_not_allowed()),
    };
    match result {
        Ok(body) => json_response(&body),
        Err(e) => HttpError::json(e).for_dialect(dialect).into_response(),
    }
}

/// `/actors/{id}`: `DELETE` destroys the actor (its destroy hook runs, its data is deleted)
/// and answers `{}`; an unknown id is `actor.not_found`. For operators: guard it with an
/// [`AccessPolicy`](crate::AccessPolicy) token.
pub(crate) async fn actor(shared: &Shared, req: Request, id: &str) -> Response {
    if req.method() != Method::DELETE {
        return HttpError::json(method_not_allowed()).into_response();
    }
    let id = percent_encoding::percent_decode_str(id).decode_utf8_lossy();
    match shared.registry.destroy(&ActorId::new(id.as_ref())).await {
        Ok(true) => json_response(&json!({})),
        Ok(false) => HttpError::json(ActionError::actor_not_found(format!(
            "actor {id} not found"
        )))
        .into_response(),
        Err(e) => HttpError::json(e).into_response(),
    }
}

pub(crate) fn storage(e: footlights_storage::StorageError) -> ActionError {
    ActionError::internal(format!("storage: {e}"))
}

/// Reads a page size given as `what` in a query: a whole number, clamped to `1..=max`.
pub(crate) fn page_limit(text: &str, what: &str, max: usize) -> Result<usize, ActionError> {
    text.parse::<usize>()
        .map(|n| n.clamp(1, max))
        .map_err(|_| ActionError::invalid_request(format!("`{what}` is a whole number")))
}

/// One page of the actors named `name` whose keys start with `prefix`, in key order after
/// `after`: at most `limit`, and the cursor of the next page (`None` after the last).
pub(crate) async fn actors_page(
    shared: &Shared,
    name: &str,
    prefix: &ActorKey,
    after: Option<&ActorKey>,
    limit: usize,
) -> Result<(Vec<ActorMeta>, Option<String>), ActionError> {
    // One more than asked, to know whether another page follows.
    let mut metas = shared
        .registry
        .driver()
        .list_actors_page(name, prefix, after, limit + 1)
        .await
        .map_err(storage)?;
    let more = metas.len() > limit;
    metas.truncate(limit);
    let next = metas.last().filter(|_| more).map(|m| m.key.to_string());
    Ok((metas, next))
}

/// The actor object of §4.2. The key is serialized (`"/"` for the empty key). `start_ts` is
/// when its current (or last) instance started and `sleep_ts` when that one stopped (`null`
/// while awake), as far as this server has seen it start since it started; both `null`
/// otherwise.
fn actor_json(shared: &Shared, meta: &ActorMeta) -> serde_json::Value {
    let times = shared.registry.actor_times(&meta.id);
    json!({
        "actor_id": meta.id.as_str(),
        "name": meta.name,
        "key": meta.key.to_string(),
        "namespace_id": "default",
        "runner_name_selector": "default",
        "crash_policy": "sleep",
        "create_ts": meta.created_at_ms,
        "start_ts": times.started_at_ms,
        "connectable_ts": meta.created_at_ms,
        "pending_allocation_ts": null,
        "sleep_ts": times.slept_at_ms,
        "reschedule_ts": null,
        "destroy_ts": null,
    })
}

/// How many actors a listing by name returns when it does not say.
const LIST_PAGE: usize = 100;
/// The most actors one listing by name returns.
const LIST_PAGE_MAX: usize = 1000;

/// `GET /actors?actor_ids=…`, `?name=…&key=…` or `?name=…`. Nothing found is
/// `200 {"actors":[]}`, never an error (§4.4).
///
/// Listing by name is paged: at most `limit` actors (default [`LIST_PAGE`], at most
/// [`LIST_PAGE_MAX`]) in key order, and `"pagination": {"cursor": …}` with the cursor to pass
/// as `cursor` for the next page (`null` after the last).
async fn list(shared: &Shared, query: &str) -> Result<serde_json::Value, ActionError> {
    let mut actor_ids = None;
    let mut name = None;
    let mut key = None;
    let mut cursor = None;
    let mut limit = LIST_PAGE;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "actor_ids" => actor_ids = Some(v.into_owned()),
            "name" => name = Some(v.into_owned()),
            "key" => key = Some(v.into_owned()),
            "cursor" => cursor = Some(v.into_owned()),
            "limit" => limit = page_limit(&v, "limit", LIST_PAGE_MAX)?,
            _ => {}
        }
    }
    let driver = shared.registry.driver();
    let mut found = Vec::new();
    match (actor_ids, name, key) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(ActionError::invalid_request(
                "give either `actor_ids` or `name` (with an optional `key`), not both",
            ));
        }
        (None, None, Some(_)) => {
            return Err(ActionError::invalid_request("`key` needs `name`"));
        }
        (None, None, None) => {
            return Err(ActionError::invalid_request(
                "give `actor_ids`, or `name` with an optional `key`",
            ));
        }
        (Some(ids), None, None) => {
            let ids: Vec<&str> = ids.split(',').filter(|s| !s.is_empty()).collect();
            if ids.len() > MAX_ACTOR_IDS {
                return Err(ActionError::invalid_request(format!(
                    "at most {MAX_ACTOR_IDS} actor ids per lookup"
                )));
            }
            for id in ids {
                if let Some(meta) = shared.registry.actor_meta(&ActorId::new(id)).await? {
                    found.push(actor_json(shared, &meta));
                }
            }
        }
        (None, Some(name), Some(key)) => {
            let key: ActorKey = key.parse().unwrap_or_default();
            if let Some(meta) = driver.find_actor(&name, &key).await.map_err(storage)? {
                found.push(actor_json(shared, &meta));
            }
        }
        (None, Some(name), None) => {
            let after: Option<ActorKey> = match cursor.as_deref() {
                Some(c) => Some(
                    c.parse()
                        .map_err(|_| ActionError::invalid_request("`cursor` is not a cursor"))?,
                ),
                None => None,
            };
            let (metas, next) =
                actors_page(shared, &name, &ActorKey::default(), after.as_ref(), limit).await?;
            found.extend(metas.iter().map(|m| actor_json(shared, m)));
            return Ok(json!({ "actors": found, "pagination": { "cursor": next } }));
        }
    }
    Ok(json!({ "actors": found }))
}

/// The body of `PUT` and `POST /actors` (§4.5). Other fields the engine knows are ignored.
#[derive(Debug, Deserialize)]
struct CreateBody {
    name: String,
    #[serde(default)]
    key: Option<String>,
    /// Standard base64 of one CBOR document.
    #[serde(default)]
    input: Option<String>,
}

/// `PUT /actors` (`get_or_create`) and `POST /actors` (create).
async fn create(
    shared: &Shared,
    req: Request,
    get_or_create: bool,
) -> Result<serde_json::Value, ActionError> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, shared.config.max_incoming).await?;
    let body: CreateBody = serde_json::from_slice(&bytes)
        .map_err(|e| ActionError::invalid_request(format!("invalid request body: {e}")))?;
    let key: ActorKey = body
        .key
        .as_deref()
        .unwrap_or("/")
        .parse()
        .unwrap_or_default();
    let input = body
        .input
        .as_deref()
        .map(|text| decode_input(text, &parts.headers))
        .transpose()?;
    if !shared.registry.actor_names().contains(&body.name.as_str()) {
        return Err(ActionError::actor_not_found(format!(
            "no actor type named `{}`",
            body.name
        )));
    }
    let driver = shared.registry.driver();
    if get_or_create
        && let Some(meta) = driver.find_actor(&body.name, &key).await.map_err(storage)?
    {
        return Ok(json!({ "actor": actor_json(shared, &meta), "created": false }));
    }
    let (id, created) = match shared.registry.create(&body.name, &key, input).await {
        Ok(id) => (id, true),
        // Lost a race with another create: the winner's actor is the answer.
        Err(e) if get_or_create && e.code() == "duplicate_key" => {
            let meta = driver.find_actor(&body.name, &key).await.map_err(storage)?;
            let meta = meta.ok_or_else(|| ActionError::actor_not_found("actor vanished"))?;
            (meta.id, false)
        }
        Err(e) => return Err(e),
    };
    let meta = shared
        .registry
        .actor_meta(&id)
        .await?
        .ok_or_else(|| ActionError::actor_not_found(format!("actor {id} not found")))?;
    Ok(if get_or_create {
        json!({ "actor": actor_json(shared, &meta), "created": created })
    } else {
        json!({ "actor": actor_json(shared, &meta) })
    })
}

/// The create input: base64 of CBOR, in the dialect the `User-Agent` implies (compat when it
/// says nothing).
fn decode_input(text: &str, headers: &HeaderMap) -> Result<Value, ActionError> {
    let bytes = BASE64
        .decode(text)
        .map_err(|_| ActionError::invalid_request("`input` is not base64"))?;
    let dialect = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(Dialect::from_user_agent)
        .unwrap_or_default();
    value_from_cbor(&bytes, dialect)
        .map_err(|e| ActionError::invalid_request(format!("`input` is not CBOR: {e}")))
}
