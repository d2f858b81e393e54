//! HTTP: stateless actions (`POST …/action/{name}`), the manager API (`/actors`), and how a
//! failed answer becomes an [`ActionError`] (RivetKit notes §2.3, §8.1).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use footlights_protocol::codec::{
    Dialect, Encoding, HttpActionRequest, HttpActionResponse, HttpQueueSendRequest,
    HttpQueueSendResponse, HttpResponseError, LATEST_VERSION, QueueSendStatus, value_to_cbor,
    value_to_json,
};
use footlights_protocol::{ActionError, ActorId, ActorKey, Value};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::json;

use super::Net;
use super::url::{action_route, component, manager_url};
use crate::error::{http_error, invalid_response, request_failed, timed_out};
use crate::transport::{SendOutcome, Target};

/// The header carrying connection params as JSON text.
pub(super) const CONN_PARAMS_HEADER: &str = "x-rivet-conn-params";
/// The header naming the encoding of an actor request.
pub(super) const ENCODING_HEADER: &str = "x-rivet-encoding";

/// What a request failing on the network means.
pub(super) fn network_error(e: &reqwest::Error) -> ActionError {
    if e.is_timeout() {
        timed_out(format!("the request timed out: {e}"))
    } else {
        request_failed(format!("the request failed: {e}"))
    }
}

/// Connection params as a header value: their compat JSON text, which has no line breaks.
pub(super) fn params_header(params: &Value) -> Result<HeaderValue, ActionError> {
    HeaderValue::from_bytes(value_to_json(params).as_bytes())
        .map_err(|_| ActionError::invalid_request("connection params do not fit in a header"))
}

/// The error a non-2xx answer carries: a JSON error body when the server says JSON, else one
/// in the request's encoding, else `client.http_error` with the status.
pub(super) fn answer_error(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
    encoding: Encoding,
) -> ActionError {
    let encoding = match content_type {
        Some(ct) if ct.contains("application/json") => Encoding::Json,
        _ => encoding,
    };
    match HttpResponseError::decode(body, encoding, Dialect::Compat) {
        Ok((e, _)) => e.error,
        Err(_) => http_error(status.as_u16(), &String::from_utf8_lossy(body)),
    }
}

/// A read answer: status, content type, body.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) content_type: Option<String>,
    pub(super) body: Vec<u8>,
}

impl Answer {
    /// The body of a 2xx answer, or the error of any other.
    pub(super) fn ok(self, encoding: Encoding) -> Result<Vec<u8>, ActionError> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            Err(answer_error(
                self.status,
                self.content_type.as_deref(),
                &self.body,
                encoding,
            ))
        }
    }
}

impl Net {
    /// A request with the user's headers and the request timeout.
    pub(super) fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .headers(self.headers.clone())
            .timeout(self.options.request_timeout)
    }

    /// A request to a gateway route: `x-rivet-token` when there is a token.
    pub(super) fn gateway_request(&self, method: Method, url: &str) -> RequestBuilder {
        let rb = self.request(method, url);
        match &self.token {
            Some(token) => rb.header("x-rivet-token", token),
            None => rb,
        }
    }

    /// Sends a request and reads the whole answer.
    pub(super) async fn send(&self, rb: RequestBuilder) -> Result<Answer, ActionError> {
        let response = rb.send().await.map_err(|e| network_error(&e))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(|e| network_error(&e))?;
        Ok(Answer {
            status,
            content_type,
            body: body.to_vec(),
        })
    }

    /// `POST {gateway}/action/{name}`.
    pub(super) async fn action(
        &self,
        target: &Target,
        name: &str,
        args: Vec<Value>,
        params: Option<&Value>,
    ) -> Result<Value, ActionError> {
        let encoding = self.options.encoding;
        let url = self
            .gateway_url(&self.endpoint.base, target, &action_route(name))
            .await?;
        let body = HttpActionRequest { args }.encode(encoding, LATEST_VERSION, Dialect::Compat);
        let mut rb = self
            .gateway_request(Method::POST, &url)
            .header(ENCODING_HEADER, encoding.as_str())
            .header(header::CONTENT_TYPE, encoding.content_type())
            .body(body);
        if let Some(params) = self.params(params) {
            rb = rb.header(CONN_PARAMS_HEADER, params_header(params)?);
        }
        let body = self.send(rb).await?.ok(encoding)?;
        HttpActionResponse::decode(&body, encoding, Dialect::Compat)
            .map(|(r, _)| r.output)
            .map_err(|e| invalid_response(format!("`{name}` answer: {e}")))
    }

    pub(super) async fn queue_send(
        &self,
        target: &Target,
        name: &str,
        body: Value,
        wait: Option<std::time::Duration>,
        params: Option<&Value>,
    ) -> Result<SendOutcome, ActionError> {
        let encoding = self.options.encoding;
        let url = self
            .gateway_url(&self.endpoint.base, target, &super::url::queue_route(name))
            .await?;
        let request = HttpQueueSendRequest {
            body,
            name: Some(name.to_owned()),
            wait: Some(wait.is_some()),
            timeout: wait.map(|w| u64::try_from(w.as_millis()).unwrap_or(u64::MAX)),
        };
        let body = request.encode(encoding, LATEST_VERSION, Dialect::Compat);
        let mut rb = self
            .gateway_request(Method::POST, &url)
            .header(ENCODING_HEADER, encoding.as_str())
            .header(header::CONTENT_TYPE, encoding.content_type())
            .body(body);
        if let Some(params) = self.params(params) {
            rb = rb.header(CONN_PARAMS_HEADER, params_header(params)?);
        }
        let body = self.send(rb).await?.ok(encoding)?;
        let (answer, _) = HttpQueueSendResponse::decode(&body, encoding, Dialect::Compat)
            .map_err(|e| invalid_response(format!("queue `{name}` answer: {e}")))?;
        Ok(match answer.status {
            QueueSendStatus::TimedOut => SendOutcome::TimedOut,
            _ => SendOutcome::Completed(answer.response),
        })
    }

    /// A manager call: JSON both ways, the token as a bearer token.
    async fn manager(
        &self,
        method: Method,
        path: &str,
        query: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ActionError> {
        let url = manager_url(&self.endpoint.base, path, query, &self.namespace);
        let mut rb = self.request(method, &url);
        if let Some(token) = &self.token {
            rb = rb.bearer_auth(token);
        }
        if let Some(body) = body {
            rb = rb
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let body = self.send(rb).await?.ok(Encoding::Json)?;
        serde_json::from_slice(&body)
            .map_err(|e| invalid_response(format!("manager answer is not JSON: {e}")))
    }

    /// `GET /actors?…`: the actors a lookup finds.
    async fn lookup(&self, query: &str) -> Result<Vec<serde_json::Value>, ActionError> {
        let answer = self.manager(Method::GET, "/actors", query, None).await?;
        match answer.get("actors") {
            Some(serde_json::Value::Array(actors)) => Ok(actors.clone()),
            _ => Err(invalid_response("manager answer has no `actors` list")),
        }
    }

    /// The body of `PUT`/`POST /actors` (notes §4.5). The input travels as base64 CBOR.
    fn create_body(&self, name: &str, key: &ActorKey, input: Option<&Value>) -> serde_json::Value {
        let mut body = json!({
            "name": name,
            "key": key.to_string(),
            "runner_name_selector": self.options.pool,
            "crash_policy": "sleep",
        });
        if let Some(input) = input.filter(|v| !v.is_null()) {
            body["input"] = STANDARD
                .encode(value_to_cbor(input, Dialect::Compat))
                .into();
        }
        body
    }

    /// Finds (or for `GetOrCreate`, creates) the actor a target names.
    pub(super) async fn resolve(&self, target: &Target) -> Result<ActorId, ActionError> {
        match target {
            Target::Id { name, id } => {
                let found = self
                    .lookup(&format!("actor_ids={}", component(id.as_str())))
                    .await?;
                let known = found.iter().any(|a| {
                    a["actor_id"].as_str() == Some(id.as_str())
                        && (name.is_empty() || a["name"].as_str() == Some(name.as_str()))
                });
                if known {
                    Ok(id.clone())
                } else {
                    Err(ActionError::actor_not_found(format!(
                        "actor {id} not found"
                    )))
                }
            }
            Target::Get { name, key } => {
                let query = format!(
                    "name={}&key={}",
                    component(name),
                    component(&key.to_string())
                );
                let found = self.lookup(&query).await?;
                found.first().and_then(actor_id).ok_or_else(|| {
                    ActionError::actor_not_found(format!("actor {name}/{key} not found"))
                })
            }
            Target::GetOrCreate { name, key, input } => {
                let body = self.create_body(name, key, input.as_ref());
                let answer = self.manager(Method::PUT, "/actors", "", Some(body)).await?;
                answer
                    .get("actor")
                    .and_then(actor_id)
                    .ok_or_else(|| invalid_response("manager answer has no actor id"))
            }
        }
    }

    /// `POST /actors`: a new actor, `actor.duplicate_key` if the key is taken.
    pub(super) async fn create(
        &self,
        name: &str,
        key: &ActorKey,
        input: Option<Value>,
    ) -> Result<ActorId, ActionError> {
        let body = self.create_body(name, key, input.as_ref());
        let answer = self
            .manager(Method::POST, "/actors", "", Some(body))
            .await?;
        answer
            .get("actor")
            .and_then(actor_id)
            .ok_or_else(|| invalid_response("manager answer has no actor id"))
    }
}

fn actor_id(actor: &serde_json::Value) -> Option<ActorId> {
    actor["actor_id"].as_str().map(ActorId::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_decode_in_the_right_encoding() {
        let e = ActionError::user("boom", "it failed").with_metadata_value(Some(Value::Int(1)));
        let body = HttpResponseError::new(e.clone());
        for encoding in [Encoding::Json, Encoding::Cbor, Encoding::Bare] {
            let bytes = body.encode(encoding, LATEST_VERSION, Dialect::Compat);
            let got = answer_error(StatusCode::BAD_REQUEST, None, &bytes, encoding);
            assert_eq!(got, e, "{encoding}");
        }
        // Gateway errors are JSON whatever the request's encoding.
        let json = body.encode(Encoding::Json, LATEST_VERSION, Dialect::Compat);
        let got = answer_error(
            StatusCode::BAD_REQUEST,
            Some("application/json"),
            &json,
            Encoding::Bare,
        );
        assert_eq!(got, e);
    }

    #[test]
    fn bodies_without_a_coded_error_keep_the_status() {
        let got = answer_error(
            StatusCode::BAD_GATEWAY,
            Some("text/html"),
            b"<h1>502</h1>",
            Encoding::Bare,
        );
        assert_eq!((got.group(), got.code()), ("client", "http_error"));
        assert!(crate::is_transient(&got));
        assert!(got.message().contains("502"));
    }
}
