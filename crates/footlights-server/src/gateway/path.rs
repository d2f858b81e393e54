//! Parsing gateway URLs (§5.1, §5.2) and actor routes (§0) from the **raw** path and query.
//!
//! Nothing here decodes more than it must: the path the actor sees is the raw rest of the
//! path, and the query it sees is the raw non-`rvt-` pairs, byte for byte, in their order.
//! Every function takes arbitrary text and returns a coded error instead of panicking.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use footlights_protocol::codec::{Dialect, value_from_cbor};
use footlights_protocol::{ActionError, ActorKey, Value};
use percent_encoding::percent_decode;

/// base64url, padding optional (`rvt-input`).
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Which actor a gateway request names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ActorAddress {
    /// By id: `/gateway/{id}[@{token}]/…`, or header routing (§5.3).
    Id {
        /// The actor id, percent-decoded.
        id: String,
        /// The token after `@`, percent-decoded; checked by the access policy when it asks.
        token: Option<String>,
    },
    /// By name and key: `/gateway/{name}/…?rvt-…`.
    Query(ActorQuery),
}

/// The `rvt-*` parameters of a query-gateway URL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActorQuery {
    /// The actor type name (path segment 2, percent-decoded).
    pub(crate) name: String,
    /// `rvt-namespace`. A single-node server has one namespace and ignores it.
    pub(crate) namespace: String,
    /// `rvt-key`, split on `,`.
    pub(crate) key: ActorKey,
    /// `rvt-method` and the parameters that go with it.
    pub(crate) method: QueryMethod,
    /// `rvt-token`; checked by the access policy when it asks.
    pub(crate) token: Option<String>,
    /// `rvt-skip-ready-wait`. A no-op here: actors are ready when they answer.
    pub(crate) skip_ready_wait: bool,
}

/// `rvt-method`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum QueryMethod {
    /// An existing actor or `actor.not_found`.
    Get,
    /// The actor, created with `input` if it does not exist yet.
    GetOrCreate {
        /// `rvt-runner` (or `rvt-pool`). Ignored by a single-node server.
        pool: String,
        /// `rvt-input`, decoded (compat dialect).
        input: Option<Value>,
    },
}

/// A parsed gateway URL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GatewayPath {
    pub(crate) address: ActorAddress,
    /// The path the actor sees: the raw rest of the path after the actor segment, or `/`.
    pub(crate) path: String,
    /// The query the actor sees: the non-`rvt-` pairs, raw, in order; `None` if there are none.
    pub(crate) query: Option<String>,
}

impl GatewayPath {
    /// The path and query the actor sees, as one string (`/action/x?a=1`).
    pub(crate) fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

fn invalid(message: impl Into<String>) -> ActionError {
    ActionError::invalid_request(message)
}

fn guard(code: &'static str, message: impl Into<String>) -> ActionError {
    ActionError::new("guard", code, message)
}

/// Form decoding: `+` is a space, then percent-decoding. Must give UTF-8.
fn form_decode(raw: &str) -> Result<String, ActionError> {
    let spaced = raw.replace('+', " ");
    percent_decode(spaced.as_bytes())
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            guard(
                "query_invalid_percent_encoding",
                "a query parameter is not valid percent-encoded UTF-8",
            )
        })
}

/// Path-segment decoding: percent-decoding only. Must give UTF-8.
pub(crate) fn segment_decode(raw: &str) -> Result<String, ActionError> {
    percent_decode(raw.as_bytes())
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid("a path segment is not valid percent-encoded UTF-8"))
}

/// Parses `/gateway/{segment}{rest}` with its raw query. `path` is relative to the base path
/// and starts with `/gateway`. `max_input` bounds the decoded `rvt-input`.
pub(crate) fn parse(
    path: &str,
    query: Option<&str>,
    max_input: usize,
) -> Result<GatewayPath, ActionError> {
    let path = path.split('#').next().unwrap_or_default();
    if path.contains("//") {
        return Err(invalid("a gateway path may not contain `//`"));
    }
    let after = path
        .strip_prefix("/gateway/")
        .ok_or_else(|| invalid("expected `/gateway/{actor}/…`"))?;
    let (segment, rest) = match after.find('/') {
        Some(i) => after.split_at(i),
        None => (after, "/"),
    };
    if segment.is_empty() {
        return Err(invalid("the actor segment of a gateway path is empty"));
    }
    let query = query.map(|q| q.split('#').next().unwrap_or_default());
    let (rvt, kept) = split_query(query.unwrap_or_default())?;
    let address = if rvt.is_empty() {
        direct_address(segment)?
    } else {
        ActorAddress::Query(actor_query(segment, rvt, max_input)?)
    };
    Ok(GatewayPath {
        address,
        path: rest.to_owned(),
        query: (!kept.is_empty()).then(|| kept.join("&")),
    })
}

/// A header-routed request (§5.3): the whole path and query go to the actor.
pub(crate) fn header_routed(id: &str, path: &str, query: Option<&str>) -> GatewayPath {
    GatewayPath {
        address: ActorAddress::Id {
            id: id.to_owned(),
            token: None,
        },
        path: if path.is_empty() { "/" } else { path }.to_owned(),
        query: query.filter(|q| !q.is_empty()).map(str::to_owned),
    }
}

fn direct_address(segment: &str) -> Result<ActorAddress, ActionError> {
    let (id, token) = match segment.split_once('@') {
        Some((id, token)) => {
            if id.is_empty() || token.is_empty() {
                return Err(invalid("expected `{actor id}@{token}` with both parts"));
            }
            (id, Some(segment_decode(token)?))
        }
        None => (segment, None),
    };
    Ok(ActorAddress::Id {
        id: segment_decode(id)?,
        token,
    })
}

/// Splits a raw query into decoded `rvt-` pairs and the raw other pairs.
type SplitQuery<'a> = (Vec<(String, String)>, Vec<&'a str>);

fn split_query(query: &str) -> Result<SplitQuery<'_>, ActionError> {
    let mut rvt: Vec<(String, String)> = Vec::new();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key_bytes: Vec<u8> = percent_decode(raw_key.replace('+', " ").as_bytes()).collect();
        if !key_bytes.starts_with(b"rvt-") {
            kept.push(pair);
            continue;
        }
        let key = form_decode(raw_key)?;
        if rvt.iter().any(|(k, _)| *k == key) {
            return Err(guard(
                "query_duplicate_param",
                format!("`{key}` appears more than once"),
            ));
        }
        rvt.push((key, form_decode(raw_value)?));
    }
    Ok((rvt, kept))
}

fn actor_query(
    segment: &str,
    rvt: Vec<(String, String)>,
    max_input: usize,
) -> Result<ActorQuery, ActionError> {
    if segment.contains('@') {
        return Err(guard(
            "query_path_token_syntax",
            "a query-gateway path may not carry `@token`; use `rvt-token`",
        ));
    }
    let name = segment_decode(segment)?;
    if name.is_empty() {
        return Err(guard("query_empty_actor_name", "the actor name is empty"));
    }
    let mut namespace = None;
    let mut method = None;
    let mut key = None;
    let mut pool = None;
    let mut input = None;
    let mut has_region = false;
    let mut has_crash_policy = false;
    let mut token = None;
    let mut skip_ready_wait = false;
    for (k, v) in rvt {
        match k.as_str() {
            "rvt-namespace" => namespace = Some(v),
            "rvt-method" => method = Some(v),
            "rvt-key" => key = Some(v),
            "rvt-runner" | "rvt-pool" => {
                if pool.is_some() {
                    return Err(guard(
                        "query_duplicate_param",
                        "give either `rvt-runner` or `rvt-pool`",
                    ));
                }
                pool = Some(v);
            }
            "rvt-input" => input = Some(v),
            "rvt-region" => has_region = true,
            "rvt-crash-policy" => {
                if !matches!(v.as_str(), "restart" | "sleep" | "destroy") {
                    return Err(guard(
                        "query_invalid_params",
                        "`rvt-crash-policy` must be restart, sleep or destroy",
                    ));
                }
                has_crash_policy = true;
            }
            "rvt-token" => token = Some(v),
            "rvt-skip-ready-wait" => {
                skip_ready_wait = match v.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(guard(
                            "query_invalid_params",
                            "`rvt-skip-ready-wait` must be true, false, 1 or 0",
                        ));
                    }
                }
            }
            // Unknown `rvt-` parameters are ignored (the engine rejects them).
            _ => {}
        }
    }
    let namespace =
        namespace.ok_or_else(|| guard("query_invalid_params", "`rvt-namespace` is required"))?;
    let key = match key.as_deref() {
        None | Some("") => ActorKey::default(),
        Some(k) => ActorKey::new(k.split(',').map(str::to_owned).collect()),
    };
    let method = match method.as_deref() {
        Some("get") => {
            if pool.is_some() || input.is_some() || has_region || has_crash_policy {
                return Err(guard(
                    "query_get_disallowed_params",
                    "`rvt-method=get` takes no runner, input, region or crash policy",
                ));
            }
            QueryMethod::Get
        }
        Some("getOrCreate") => QueryMethod::GetOrCreate {
            pool: pool.ok_or_else(|| {
                guard(
                    "query_missing_pool",
                    "`rvt-method=getOrCreate` needs `rvt-runner`",
                )
            })?,
            input: input.map(|i| decode_input(&i, max_input)).transpose()?,
        },
        _ => {
            return Err(guard(
                "query_invalid_params",
                "`rvt-method` must be get or getOrCreate",
            ));
        }
    };
    Ok(ActorQuery {
        name,
        namespace,
        key,
        method,
        token,
        skip_ready_wait,
    })
}

/// `rvt-input`: base64url of one CBOR document in the compat dialect.
fn decode_input(text: &str, max_input: usize) -> Result<Value, ActionError> {
    let bad = || {
        guard(
            "query_invalid_cbor_input",
            "`rvt-input` is not base64url-encoded CBOR",
        )
    };
    if text.len() / 4 * 3 > max_input.saturating_add(3) {
        return Err(ActionError::incoming_too_long());
    }
    let bytes = BASE64_URL.decode(text).map_err(|_| bad())?;
    if bytes.len() > max_input {
        return Err(ActionError::incoming_too_long());
    }
    value_from_cbor(&bytes, Dialect::Compat).map_err(|_| bad())
}

/// An actor route (§0), from the path the actor sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ActorRoute {
    /// `/action/{name}`, the name decoded.
    Action(String),
    /// `/connect`: the actor-connect WebSocket.
    Connect,
    /// `/connect/sse`: the SSE transport (Footlights extension).
    ConnectSse,
    /// `/connections/{id}/message`: a message on an SSE connection.
    ConnMessage(String),
    /// `/connections/{id}/close`: closes an SSE connection.
    ConnClose(String),
    /// `/request` and below: raw HTTP (not supported yet).
    Request,
    /// `/websocket` and below: raw WebSocket (not supported yet).
    WebSocket,
    /// `/queue/{name}`: queue send, the name decoded.
    Queue(String),
    /// Anything else.
    Unknown,
}

/// Classifies the path an actor sees (query already removed).
pub(crate) fn actor_route(path: &str) -> Result<ActorRoute, ActionError> {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    Ok(match path {
        "/connect" => ActorRoute::Connect,
        "/connect/sse" => ActorRoute::ConnectSse,
        _ if under("/request") => ActorRoute::Request,
        _ if under("/websocket") => ActorRoute::WebSocket,
        _ => {
            if let Some(name) = path.strip_prefix("/queue/") {
                if name.is_empty() || name.contains('/') {
                    return Ok(ActorRoute::Unknown);
                }
                return Ok(ActorRoute::Queue(segment_decode(name)?));
            }
            if let Some(name) = path.strip_prefix("/action/") {
                if name.is_empty() || name.contains('/') {
                    return Ok(ActorRoute::Unknown);
                }
                return Ok(ActorRoute::Action(segment_decode(name)?));
            }
            if let Some(rest) = path.strip_prefix("/connections/") {
                return Ok(match rest.split_once('/') {
                    Some((id, "message")) if !id.is_empty() => {
                        ActorRoute::ConnMessage(segment_decode(id)?)
                    }
                    Some((id, "close")) if !id.is_empty() => {
                        ActorRoute::ConnClose(segment_decode(id)?)
                    }
                    _ => ActorRoute::Unknown,
                });
            }
            ActorRoute::Unknown
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 4096;

    fn query_of(g: &GatewayPath) -> &ActorQuery {
        match &g.address {
            ActorAddress::Query(q) => q,
            other => panic!("not a query address: {other:?}"),
        }
    }

    #[test]
    fn direct_paths_with_and_without_tokens() {
        let g = parse("/gateway/abc/action/increment", Some("x=1"), MAX).unwrap();
        assert_eq!(
            g.address,
            ActorAddress::Id {
                id: "abc".into(),
                token: None
            }
        );
        assert_eq!(g.path, "/action/increment");
        assert_eq!(g.query.as_deref(), Some("x=1"));

        let g = parse("/gateway/a%20b@t%2Fk/connect", None, MAX).unwrap();
        assert_eq!(
            g.address,
            ActorAddress::Id {
                id: "a b".into(),
                token: Some("t/k".into())
            }
        );
        assert_eq!(g.path_and_query(), "/connect");

        let g = parse("/gateway/abc", None, MAX).unwrap();
        assert_eq!(g.path, "/");
    }

    #[test]
    fn malformed_direct_paths_are_refused() {
        for bad in [
            "/gateway/",
            "/gateway//x",
            "/gateway/@t/x",
            "/gateway/a@/x",
            "/gateway/a/b//c",
            "/gatewayx/a",
            "/gateway/%ff/x",
        ] {
            let e = parse(bad, None, MAX).unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn query_form_strips_rvt_params_and_keeps_the_rest_raw() {
        let q = "q=1&rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&x=%2F+y&rvt-key=room-1,b&rvt-crash-policy=sleep";
        let g = parse("/gateway/counter/request/search", Some(q), MAX).unwrap();
        assert_eq!(g.path, "/request/search");
        assert_eq!(g.query.as_deref(), Some("q=1&x=%2F+y"));
        let aq = query_of(&g);
        assert_eq!(aq.name, "counter");
        assert_eq!(aq.namespace, "default");
        assert_eq!(aq.key, ActorKey::from(["room-1", "b"]));
        assert_eq!(
            aq.method,
            QueryMethod::GetOrCreate {
                pool: "default".into(),
                input: None
            }
        );
    }

    #[test]
    fn query_form_decodes_the_name_key_and_input() {
        // {"a": 1} as CBOR, base64url without padding.
        let q = "rvt-namespace=default&rvt-method=getOrCreate&rvt-pool=p&rvt-key=a+b%2Cc&rvt-input=oWFhAQ";
        let g = parse("/gateway/chat%20room/connect", Some(q), MAX).unwrap();
        let aq = query_of(&g);
        assert_eq!(aq.name, "chat room");
        assert_eq!(aq.key, ActorKey::from(["a b", "c"]));
        let QueryMethod::GetOrCreate { input, .. } = &aq.method else {
            panic!()
        };
        assert_eq!(
            input.as_ref().unwrap(),
            &Value::Object(vec![("a".into(), Value::Int(1))])
        );
        assert_eq!(g.query, None);
    }

    #[test]
    fn query_form_errors_have_guard_codes() {
        let cases = [
            ("rvt-method=get", "query_invalid_params"),
            ("rvt-namespace=d&rvt-method=x", "query_invalid_params"),
            (
                "rvt-namespace=d&rvt-method=get&rvt-runner=r",
                "query_get_disallowed_params",
            ),
            (
                "rvt-namespace=d&rvt-method=getOrCreate",
                "query_missing_pool",
            ),
            (
                "rvt-namespace=d&rvt-namespace=e&rvt-method=get",
                "query_duplicate_param",
            ),
            (
                "rvt-namespace=d&rvt-method=getOrCreate&rvt-runner=r&rvt-input=!!",
                "query_invalid_cbor_input",
            ),
            (
                "rvt-namespace=%ff&rvt-method=get",
                "query_invalid_percent_encoding",
            ),
            (
                "rvt-namespace=d&rvt-method=get&rvt-skip-ready-wait=maybe",
                "query_invalid_params",
            ),
        ];
        for (q, code) in cases {
            let e = parse("/gateway/counter/connect", Some(q), MAX).unwrap_err();
            assert_eq!((e.group(), e.code()), ("guard", code), "{q}");
        }
        let e = parse(
            "/gateway/a@b/connect",
            Some("rvt-namespace=d&rvt-method=get"),
            MAX,
        )
        .unwrap_err();
        assert_eq!(e.code(), "query_path_token_syntax");
    }

    #[test]
    fn empty_key_and_unknown_rvt_params() {
        let g = parse(
            "/gateway/counter/connect",
            Some("rvt-namespace=d&rvt-method=get&rvt-key=&rvt-future=1"),
            MAX,
        )
        .unwrap();
        assert_eq!(query_of(&g).key, ActorKey::default());
    }

    #[test]
    fn oversized_input_is_refused() {
        let big = BASE64_URL.encode(vec![0u8; 64]);
        let q = format!("rvt-namespace=d&rvt-method=getOrCreate&rvt-runner=r&rvt-input={big}");
        let e = parse("/gateway/c/connect", Some(&q), 16).unwrap_err();
        assert_eq!(e.code(), "incoming_too_long");
    }

    #[test]
    fn actor_routes() {
        assert_eq!(
            actor_route("/action/a.b%20c").unwrap(),
            ActorRoute::Action("a.b c".into())
        );
        assert_eq!(actor_route("/action/").unwrap(), ActorRoute::Unknown);
        assert_eq!(actor_route("/action/a/b").unwrap(), ActorRoute::Unknown);
        assert_eq!(actor_route("/connect").unwrap(), ActorRoute::Connect);
        assert_eq!(actor_route("/connect/sse").unwrap(), ActorRoute::ConnectSse);
        assert_eq!(
            actor_route("/connections/c1/message").unwrap(),
            ActorRoute::ConnMessage("c1".into())
        );
        assert_eq!(
            actor_route("/connections/c1/close").unwrap(),
            ActorRoute::ConnClose("c1".into())
        );
        assert_eq!(
            actor_route("/connections//close").unwrap(),
            ActorRoute::Unknown
        );
        assert_eq!(actor_route("/request").unwrap(), ActorRoute::Request);
        assert_eq!(actor_route("/request/x/y").unwrap(), ActorRoute::Request);
        assert_eq!(actor_route("/requests").unwrap(), ActorRoute::Unknown);
        assert_eq!(actor_route("/websocket/x").unwrap(), ActorRoute::WebSocket);
        assert_eq!(
            actor_route("/queue/q%20x").unwrap(),
            ActorRoute::Queue("q x".into())
        );
        assert_eq!(actor_route("/queue").unwrap(), ActorRoute::Unknown);
        assert_eq!(actor_route("/queue/a/b").unwrap(), ActorRoute::Unknown);
        assert!(actor_route("/action/%ff").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(path in ".*", query in proptest::option::of(".*")) {
            let _ = parse(&path, query.as_deref(), MAX);
            let _ = parse(&format!("/gateway/{path}"), query.as_deref(), MAX);
            let _ = actor_route(&path);
        }

        #[test]
        fn parse_never_panics_on_url_like_text(
            seg in "[a-z%@0-9+/.]{0,12}",
            rest in "(/[a-z%0-9+.]{0,6}){0,3}",
            query in "((rvt-)?[a-z%+=,0-9-]{0,10}&?){0,6}",
        ) {
            let _ = parse(&format!("/gateway/{seg}{rest}"), Some(&query), MAX);
        }

        #[test]
        fn non_rvt_pairs_are_forwarded_byte_for_byte(
            pairs in proptest::collection::vec("[a-qs-z%+0-9][a-z%+=0-9]{0,8}", 0..6),
        ) {
            let mut query = pairs.clone();
            query.insert(0, "rvt-namespace=d".into());
            query.push("rvt-method=get".into());
            let g = parse("/gateway/n/connect", Some(&query.join("&")), MAX).unwrap();
            let expected = (!pairs.is_empty()).then(|| pairs.join("&"));
            prop_assert_eq!(g.query, expected);
        }
    }
}
