//! The inspector's JSON API under `/inspector/api` (shapes in the [module docs](super)).

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use footlights_client::Target;
use footlights_core::inspect::{ActorView, DEFAULT_KV_PAGE, DbView, InspectOptions};
use footlights_core::{ConnRequest, KvEntry, KvRange, Placement};
use footlights_protocol::codec::{Dialect, value_from_cbor, value_from_json, value_to_json};
use footlights_protocol::{ActionError, ActorId, ActorKey, Value};
use footlights_storage::ActorMeta;
use serde_json::json;

use crate::error::{HttpError, method_not_allowed};
use crate::limits::read_body;
use crate::manager::{actors_page, page_limit, storage};
use crate::server::Shared;

/// How many actors a page lists when the request does not say.
const ACTOR_PAGE: usize = 50;
/// The most actors one page lists.
const ACTOR_PAGE_MAX: usize = 1000;
/// The most key-value entries one page lists.
const KV_PAGE_MAX: usize = 1000;
/// The most messages of one queue a page lists.
const QUEUE_PAGE_MAX: usize = 100;

/// Serves `path`, the part after `/inspector/api`.
pub(super) async fn handle(shared: &Shared, req: Request, path: &str) -> Response {
    if let Some(id) = log_path(path) {
        if req.method() != Method::GET {
            return HttpError::json(method_not_allowed()).into_response();
        }
        return match super::log::stream(shared, &actor_id(id)).await {
            Ok(response) => response,
            Err(e) if e.code() == "too_many_watchers" => HttpError::json(e)
                .with_status(StatusCode::TOO_MANY_REQUESTS)
                .into_response(),
            Err(e) => HttpError::json(e).into_response(),
        };
    }
    match route(shared, req, path).await {
        Ok(body) => json_response(&body),
        // No route of the API matches: the server's usual answer to an unknown path.
        Err(e) if (e.group(), e.code()) == ("route", "not_found") => {
            crate::error::route_not_found().into_response()
        }
        Err(e) => HttpError::json(e).into_response(),
    }
}

async fn route(
    shared: &Shared,
    req: Request,
    path: &str,
) -> Result<serde_json::Value, ActionError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    match (segments.as_slice(), method) {
        (["actors"], Method::GET) => list(shared, req.uri().query().unwrap_or_default()).await,
        (["actors", id], Method::GET) => {
            let id = actor_id(id);
            detail(shared, &id, req.uri().query().unwrap_or_default()).await
        }
        (["actors", id], Method::DELETE) => {
            let id = actor_id(id);
            local(shared, &id).await?;
            match shared.registry.destroy(&id).await? {
                true => Ok(json!({})),
                false => Err(not_found(&id)),
            }
        }
        (["actors", id, "state"], Method::PUT) => {
            let id = actor_id(id);
            let mut body = json_body(shared, req).await?;
            let state = body
                .get_mut("state")
                .map(serde_json::Value::take)
                .ok_or_else(|| ActionError::invalid_request("the body needs a `state` field"))?;
            local(shared, &id).await?;
            shared
                .registry
                .replace_state(&id, to_value(&state)?)
                .await?;
            Ok(json!({}))
        }
        (["actors", id, "actions", action], Method::POST) => {
            let id = actor_id(id);
            let action = decode(action).into_owned();
            let request = ConnRequest::new(
                req.method().clone(),
                req.uri().clone(),
                req.headers().clone(),
            );
            let body = json_body(shared, req).await?;
            let args = match body.get("args") {
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(serde_json::Value::Array(items)) => {
                    items.iter().map(to_value).collect::<Result<_, _>>()?
                }
                Some(_) => return Err(ActionError::invalid_request("`args` is an array")),
            };
            let params = body.get("params").map(to_value).transpose()?;
            let meta = local(shared, &id).await?;
            let target = Target::Id {
                name: meta.name,
                id: id.clone(),
            };
            let output = shared
                .registry
                .call(&target, &action, args, params, request)
                .await?;
            Ok(json!({ "output": to_json(&output) }))
        }
        (["actors"] | ["actors", _] | ["actors", _, "state"] | ["actors", _, "actions", _], _) => {
            Err(method_not_allowed())
        }
        _ => Err(ActionError::new(
            "route",
            "not_found",
            "no route matches this path",
        )),
    }
}

/// The actor id of `/actors/{id}/log`.
fn log_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/actors/")?.strip_suffix("/log")?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

fn json_response(body: &serde_json::Value) -> Response {
    let mut response = body.to_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn decode(segment: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(segment).decode_utf8_lossy()
}

pub(super) fn actor_id(segment: &str) -> ActorId {
    ActorId::new(decode(segment).as_ref())
}

fn not_found(id: &ActorId) -> ActionError {
    ActionError::actor_not_found(format!("actor {id} not found"))
}

/// The actor's metadata, if this node serves it: a clustered node refuses actors another
/// node holds (ask that node's inspector).
pub(super) async fn local(shared: &Shared, id: &ActorId) -> Result<ActorMeta, ActionError> {
    let meta = shared
        .registry
        .actor_meta(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    match shared.registry.placement(id).await? {
        Placement::Remote { peer_addr, .. } => Err(ActionError::new(
            "inspector",
            "remote_actor",
            format!("actor {id} is served by the node at {peer_addr}; inspect it there"),
        )),
        _ => Ok(meta),
    }
}

async fn json_body(shared: &Shared, req: Request) -> Result<serde_json::Value, ActionError> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, shared.config.max_incoming).await?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    let body: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ActionError::invalid_request(format!("the body is not JSON: {e}")))?;
    if body.is_object() {
        Ok(body)
    } else {
        Err(ActionError::invalid_request("the body is a JSON object"))
    }
}

/// A value as JSON, with the protocol's `$`-tags for what JSON cannot hold (big integers,
/// bytes, dates, maps, sets).
pub(super) fn to_json(value: &Value) -> serde_json::Value {
    serde_json::from_str(&value_to_json(value)).unwrap_or(serde_json::Value::Null)
}

/// JSON from a request as a value, reviving `$`-tags.
fn to_value(json: &serde_json::Value) -> Result<Value, ActionError> {
    value_from_json(json.to_string().as_bytes())
        .map_err(|e| ActionError::invalid_request(format!("not a valid value: {e}")))
}

/// One actor as the inspector lists it.
fn actor_json(shared: &Shared, meta: &ActorMeta) -> serde_json::Value {
    let times = shared.registry.actor_times(&meta.id);
    json!({
        "id": meta.id.as_str(),
        "name": meta.name,
        "key": meta.key.to_string(),
        "keyParts": meta.key.parts(),
        "awake": times.is_awake(),
        "createdAt": meta.created_at_ms,
        "startedAt": times.started_at_ms,
        "sleptAt": times.slept_at_ms,
    })
}

/// `GET /inspector/api/actors?name=&prefix=&key=&cursor=&limit=`.
async fn list(shared: &Shared, query: &str) -> Result<serde_json::Value, ActionError> {
    let (mut name, mut prefix, mut key, mut cursor) = (None, None, None, None);
    let mut limit = ACTOR_PAGE;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "name" if !v.is_empty() => name = Some(v.into_owned()),
            "prefix" if !v.is_empty() => prefix = Some(v.into_owned()),
            "key" => key = Some(v.into_owned()),
            "cursor" if !v.is_empty() => cursor = Some(v.into_owned()),
            "limit" => limit = page_limit(&v, "limit", ACTOR_PAGE_MAX)?,
            _ => {}
        }
    }
    let names = shared.registry.actor_names();
    let Some(name) = name else {
        return Ok(json!({ "names": names, "actors": [], "cursor": null }));
    };
    if !names.contains(&name.as_str()) {
        return Err(ActionError::actor_not_found(format!(
            "no actor type named `{name}`"
        )));
    }
    let parse = |text: &str, what: &str| {
        text.parse::<ActorKey>()
            .map_err(|_| ActionError::invalid_request(format!("`{what}` is not a key")))
    };
    if let Some(key) = key {
        let key = parse(&key, "key")?;
        let found = shared
            .registry
            .driver()
            .find_actor(&name, &key)
            .await
            .map_err(storage)?;
        let actors: Vec<_> = found.iter().map(|m| actor_json(shared, m)).collect();
        return Ok(json!({ "names": names, "actors": actors, "cursor": null }));
    }
    let prefix = prefix
        .as_deref()
        .map(|p| parse(p, "prefix"))
        .transpose()?
        .unwrap_or_default();
    let after = cursor.as_deref().map(|c| parse(c, "cursor")).transpose()?;
    let (metas, next) = actors_page(shared, &name, &prefix, after.as_ref(), limit).await?;
    let actors: Vec<_> = metas.iter().map(|m| actor_json(shared, m)).collect();
    Ok(json!({ "names": names, "actors": actors, "cursor": next }))
}

/// `GET /inspector/api/actors/{id}?kv_prefix=&kv_after=&kv_limit=&queue=&queue_after=&queue_limit=&db_table=&db_offset=&db_limit=`.
async fn detail(
    shared: &Shared,
    id: &ActorId,
    query: &str,
) -> Result<serde_json::Value, ActionError> {
    let (mut prefix, mut after) = (Vec::new(), None);
    let mut limit = DEFAULT_KV_PAGE;
    let mut options = InspectOptions::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "kv_prefix" => prefix = v.as_bytes().to_vec(),
            "kv_after" if !v.is_empty() => {
                let key = URL_SAFE_NO_PAD
                    .decode(v.as_bytes())
                    .map_err(|_| ActionError::invalid_request("`kv_after` is not base64url"))?;
                after = Some(key);
            }
            "kv_limit" => limit = page_limit(&v, "kv_limit", KV_PAGE_MAX)?,
            "queue" if !v.is_empty() => options.queue = Some(v.into_owned()),
            "queue_after" if !v.is_empty() => {
                let after = v.parse().map_err(|_| {
                    ActionError::invalid_request("`queue_after` is a message id (a number)")
                })?;
                options.queue_after = Some(after);
            }
            "queue_limit" => {
                options.queue_limit = page_limit(&v, "queue_limit", QUEUE_PAGE_MAX)?;
            }
            "db_table" if !v.is_empty() => options.db_table = Some(v.into_owned()),
            "db_offset" if !v.is_empty() => {
                options.db_offset = v.parse().map_err(|_| {
                    ActionError::invalid_request("`db_offset` is a row position (a number)")
                })?;
            }
            "db_limit" => options.db_limit = page_limit(&v, "db_limit", DB_PAGE_MAX)?,
            _ => {}
        }
    }
    let meta = local(shared, id).await?;
    let mut range = KvRange::prefix(&prefix).limit(limit);
    if let Some(after) = &after {
        range = range.after(after);
    }
    options.kv = range;
    let view: ActorView = shared.registry.inspect(id, options).await?;
    let connections: Vec<_> = view
        .connections
        .iter()
        .map(|c| {
            json!({
                "id": c.id.as_str(),
                "ephemeral": c.ephemeral,
                "detached": c.detached,
                "subscriptions": c.subscriptions,
                "params": c.params.as_ref().map(to_json),
                "state": c.state.as_ref().map(to_json),
            })
        })
        .collect();
    let schedules: Vec<_> = view
        .schedules
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "at": s.at_ms,
                "action": s.action,
                "args": s.args.iter().map(to_json).collect::<Vec<_>>(),
                "failures": s.failures,
                "job": s.job.as_ref().map(|(name, rule)| json!({ "name": name, "rule": rule })),
            })
        })
        .collect();
    let next = view
        .kv
        .entries
        .last()
        .filter(|_| view.kv.more)
        .map(|e| URL_SAFE_NO_PAD.encode(&e.key));
    let entries: Vec<_> = view.kv.entries.iter().map(kv_json).collect();
    let queues: Vec<_> = view
        .queues
        .iter()
        .map(|q| {
            let messages: Vec<_> = q
                .messages
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id,
                        "inFlight": m.in_flight,
                        "size": m.size,
                        "preview": m.preview,
                    })
                })
                .collect();
            json!({
                "name": q.name,
                "depth": q.depth,
                "inFlight": q.in_flight,
                "messages": messages,
                "more": q.more,
            })
        })
        .collect();
    Ok(json!({
        "actor": actor_json(shared, &meta),
        "state": to_json(&view.state),
        "connections": connections,
        "schedules": schedules,
        "kv": { "entries": entries, "next": next },
        "queues": queues,
        "db": view.db.as_ref().map(db_json),
    }))
}

/// The most rows of a database table one page shows.
const DB_PAGE_MAX: usize = 200;

/// An actor's SQL database: its tables with their row counts, and the page of rows asked for.
fn db_json(db: &DbView) -> serde_json::Value {
    let tables: Vec<_> = db
        .tables
        .iter()
        .map(|t| json!({ "name": t.name, "kind": t.kind, "rows": t.rows }))
        .collect();
    let rows = db.rows.as_ref().map(|page| {
        let rows: Vec<Vec<serde_json::Value>> = page
            .rows
            .iter()
            .map(|row| row.iter().map(to_json).collect())
            .collect();
        json!({
            "table": page.table,
            "columns": page.columns,
            "rows": rows,
            "offset": page.offset,
            "more": page.more,
        })
    });
    json!({ "tables": tables, "rows": rows })
}

/// Bytes as `{"text": …}` when they are UTF-8, else `{"base64": …}`.
fn bytes_json(bytes: &[u8]) -> serde_json::Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!({ "text": text }),
        Err(_) => json!({ "base64": STANDARD.encode(bytes) }),
    }
}

/// A key-value entry: key and value as bytes, and the value decoded as CBOR (how `Kv::put`
/// stores it) when it reads as one CBOR document.
fn kv_json(entry: &KvEntry) -> serde_json::Value {
    let mut out = json!({ "key": bytes_json(&entry.key), "value": bytes_json(&entry.value) });
    if let Ok(value) = value_from_cbor(&entry.value, Dialect::Native) {
        out["decoded"] = to_json(&value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_text_when_they_can_be() {
        assert_eq!(bytes_json(b"note/a"), json!({ "text": "note/a" }));
        assert_eq!(bytes_json(&[0xff, 0]), json!({ "base64": "/wA=" }));
    }

    #[test]
    fn kv_values_written_as_cbor_are_decoded() {
        // CBOR of the text "first", as `Kv::put` writes it.
        let entry = KvEntry {
            key: b"k".to_vec(),
            value: [&[0x65][..], b"first"].concat(),
        };
        assert_eq!(kv_json(&entry)["decoded"], json!("first"));
        let raw = KvEntry {
            key: vec![1],
            value: vec![0xff, 0xff],
        };
        assert!(kv_json(&raw).get("decoded").is_none());
    }

    #[test]
    fn values_keep_their_tags_both_ways() {
        let v = Value::Array(vec![Value::BigInt(1), Value::Bytes(vec![1])]);
        let json = to_json(&v);
        assert_eq!(json, json!([["$BigInt", "1"], ["$Uint8Array", "AQ=="]]));
        assert_eq!(to_value(&json).unwrap(), v);
    }
}
