//! The endpoint and every URL built from it: manager calls, the query gateway and the direct
//! gateway (RivetKit notes §2.1, §5), and the WebSocket form of each.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use footlights_protocol::codec::{Dialect, value_to_cbor};
use footlights_protocol::{ActorId, ActorKey, Value};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::Error;

/// What stays unescaped in a path segment or query value: the URL "unreserved" characters.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What stays unescaped in each half of a `footlights_resume.{id}.{token}` subprotocol: no
/// `.`, so the server can split at the first one.
const RESUME_PART: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// Percent-encodes a path segment or query value.
pub(crate) fn component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Percent-encodes one half of a resume subprotocol.
pub(crate) fn resume_part(s: &str) -> String {
    utf8_percent_encode(s, RESUME_PART).to_string()
}

/// A parsed endpoint: `http(s)://host[:port][/prefix]`, plus what the URL's userinfo said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `scheme://host[:port][/prefix]`, no trailing `/`.
    pub(crate) base: String,
    /// The same with `ws` or `wss`.
    pub(crate) ws_base: String,
    /// `https://NS:TOKEN@host`: the namespace from the userinfo.
    pub(crate) namespace: Option<String>,
    /// The token from the userinfo.
    pub(crate) token: Option<String>,
}

impl Endpoint {
    /// Parses an endpoint URL. A query or fragment is refused; a path is kept as a prefix of
    /// every request; userinfo gives a namespace and token (a token needs a namespace).
    pub(crate) fn parse(url: &str) -> Result<Endpoint, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        let ws_scheme = match parsed.scheme() {
            "http" => "ws",
            "https" => "wss",
            _ => return Err(invalid("the scheme must be http or https")),
        };
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(invalid("an endpoint has no query or fragment"));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid("the URL has no host"))?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| invalid("the userinfo is not valid UTF-8"))
        };
        let namespace = Some(decode(parsed.username())?).filter(|s| !s.is_empty());
        let token = parsed.password().map(decode).transpose()?;
        if token.is_some() && namespace.is_none() {
            return Err(invalid(
                "a token in the URL needs a namespace (`ns:token@host`)",
            ));
        }
        // `host_str` keeps the brackets of an IPv6 address.
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let prefix = parsed.path().trim_end_matches('/');
        Ok(Endpoint {
            base: format!("{}://{authority}{prefix}", parsed.scheme()),
            ws_base: format!("{ws_scheme}://{authority}{prefix}"),
            namespace,
            token,
        })
    }
}

/// The URL with any userinfo removed, for error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// How a gateway URL names its actor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Address<'a> {
    /// `/gateway/{id}[@token]/…`.
    Id(&'a ActorId),
    /// `/gateway/{name}/…?rvt-method=get`.
    Get { name: &'a str, key: &'a ActorKey },
    /// `/gateway/{name}/…?rvt-method=getOrCreate`.
    GetOrCreate {
        name: &'a str,
        key: &'a ActorKey,
        input: Option<&'a Value>,
    },
}

/// Whether `key` survives the query gateway, whose `rvt-key` is split on `,`: no part may
/// hold a `,`, and a single empty part would read back as the empty key.
pub(crate) fn key_fits_query(key: &ActorKey) -> bool {
    let parts = key.parts();
    let single_empty = parts.len() == 1 && parts[0].is_empty();
    !single_empty && parts.iter().all(|p| !p.contains(','))
}

/// Everything a gateway URL needs besides the address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gateway<'a> {
    pub(crate) base: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) pool: &'a str,
    pub(crate) token: Option<&'a str>,
}

impl Gateway<'_> {
    /// The URL of actor route `route` (which starts with `/`) on the actor `address` names.
    pub(crate) fn url(&self, address: &Address<'_>, route: &str) -> String {
        let base = self.base;
        match address {
            Address::Id(id) => match self.token {
                Some(token) => format!(
                    "{base}/gateway/{}@{}{route}",
                    component(id.as_str()),
                    component(token)
                ),
                None => format!("{base}/gateway/{}{route}", component(id.as_str())),
            },
            Address::Get { name, key } => {
                let mut url = format!("{base}/gateway/{}{route}", component(name));
                self.push_query(&mut url, "get", key);
                url
            }
            Address::GetOrCreate { name, key, input } => {
                let mut url = format!("{base}/gateway/{}{route}", component(name));
                self.push_query(&mut url, "getOrCreate", key);
                url.push_str("&rvt-runner=");
                url.push_str(&component(self.pool));
                if let Some(input) = input {
                    let cbor = value_to_cbor(input, Dialect::Compat);
                    url.push_str("&rvt-input=");
                    url.push_str(&URL_SAFE_NO_PAD.encode(cbor));
                }
                url
            }
        }
    }

    fn push_query(&self, url: &mut String, method: &str, key: &ActorKey) {
        url.push_str("?rvt-namespace=");
        url.push_str(&component(self.namespace));
        url.push_str("&rvt-method=");
        url.push_str(method);
        url.push_str("&rvt-key=");
        url.push_str(&component(&key.parts().join(",")));
        if let Some(token) = self.token {
            url.push_str("&rvt-token=");
            url.push_str(&component(token));
        }
    }
}

/// The manager URL `{base}{path}?{query}&namespace={ns}`; `query` is already encoded.
pub(crate) fn manager_url(base: &str, path: &str, query: &str, namespace: &str) -> String {
    let sep = if query.is_empty() { "" } else { "&" };
    format!(
        "{base}{path}?{query}{sep}namespace={}",
        component(namespace)
    )
}

/// `/action/{name}`.
pub(crate) fn action_route(name: &str) -> String {
    format!("/action/{}", component(name))
}

/// `/queue/{name}`.
pub(crate) fn queue_route(name: &str) -> String {
    format!("/queue/{}", component(name))
}

/// `/connections/{connId}/{what}` (SSE posts).
pub(crate) fn conn_route(conn_id: &str, what: &str) -> String {
    format!("/connections/{}/{what}", component(conn_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(token: Option<&str>) -> Gateway<'_> {
        Gateway {
            base: "http://h:1/api",
            namespace: "default",
            pool: "default",
            token,
        }
    }

    #[test]
    fn endpoints_keep_their_prefix_and_lose_trailing_slashes() {
        let e = Endpoint::parse("http://127.0.0.1:6420/api/rivet/").unwrap();
        assert_eq!(e.base, "http://127.0.0.1:6420/api/rivet");
        assert_eq!(e.ws_base, "ws://127.0.0.1:6420/api/rivet");
        let e = Endpoint::parse("https://example.com").unwrap();
        assert_eq!(
            (e.base.as_str(), e.ws_base.as_str()),
            ("https://example.com", "wss://example.com")
        );
        let e = Endpoint::parse("http://[::1]:8080/").unwrap();
        assert_eq!(e.base, "http://[::1]:8080");
    }

    #[test]
    fn userinfo_gives_namespace_and_token() {
        let e = Endpoint::parse("https://prod:s%40cret@example.com/x").unwrap();
        assert_eq!(e.namespace.as_deref(), Some("prod"));
        assert_eq!(e.token.as_deref(), Some("s@cret"));
        assert_eq!(e.base, "https://example.com/x");
        let e = Endpoint::parse("http://ns@h").unwrap();
        assert_eq!((e.namespace.as_deref(), e.token), (Some("ns"), None));
    }

    #[test]
    fn bad_endpoints_are_refused_without_leaking_secrets() {
        for bad in [
            "ftp://h",
            "http://h/?a=1",
            "http://h/#x",
            "not a url",
            "http://:tok@h",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        let e = Endpoint::parse("ftp://ns:hunter2@h").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(redact("http://a:b@h/x@y"), "http://h/x@y");
        assert_eq!(redact("http://h/x@y"), "http://h/x@y");
    }

    #[test]
    fn query_gateway_urls() {
        let key = ActorKey::from(["room 1", "b/c"]);
        let get = gateway(None).url(
            &Address::Get {
                name: "chat room",
                key: &key,
            },
            "/connect",
        );
        assert_eq!(
            get,
            "http://h:1/api/gateway/chat%20room/connect?rvt-namespace=default&rvt-method=get&rvt-key=room%201%2Cb%2Fc"
        );
        let input = Value::Object(vec![("a".into(), Value::Int(1))]);
        let goc = gateway(Some("t k")).url(
            &Address::GetOrCreate {
                name: "room",
                key: &ActorKey::default(),
                input: Some(&input),
            },
            &action_route("get/count"),
        );
        assert_eq!(
            goc,
            "http://h:1/api/gateway/room/action/get%2Fcount?rvt-namespace=default&rvt-method=getOrCreate&rvt-key=&rvt-token=t%20k&rvt-runner=default&rvt-input=oWFhAQ"
        );
    }

    #[test]
    fn direct_gateway_urls() {
        let id = ActorId::new("a1");
        assert_eq!(
            gateway(None).url(&Address::Id(&id), &conn_route("c.1", "message")),
            "http://h:1/api/gateway/a1/connections/c.1/message"
        );
        assert_eq!(
            gateway(Some("t@k")).url(&Address::Id(&id), "/connect"),
            "http://h:1/api/gateway/a1@t%40k/connect"
        );
    }

    #[test]
    fn keys_that_the_query_gateway_cannot_carry() {
        assert!(key_fits_query(&ActorKey::from(["a", ""])));
        assert!(key_fits_query(&ActorKey::default()));
        assert!(!key_fits_query(&ActorKey::from(["a,b"])));
        assert!(!key_fits_query(&ActorKey::from([""])));
    }

    #[test]
    fn manager_urls_carry_the_namespace() {
        assert_eq!(
            manager_url("http://h", "/actors", "name=room&key=a%2Fb", "my ns"),
            "http://h/actors?name=room&key=a%2Fb&namespace=my%20ns"
        );
        assert_eq!(
            manager_url("http://h", "/actors", "", "default"),
            "http://h/actors?namespace=default"
        );
    }

    #[test]
    fn resume_parts_never_contain_dots() {
        assert_eq!(resume_part("c.1"), "c%2E1");
        assert_eq!(resume_part("a-b_c~d"), "a-b_c~d");
        assert_eq!(component("a.b"), "a.b");
    }
}
