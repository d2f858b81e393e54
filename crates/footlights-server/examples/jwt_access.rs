//! Access with signed tokens: every gateway request must carry a JSON Web Token signed with a
//! shared secret (HS256), unexpired; the manager API takes a plain operator token.
//!
//! ```text
//! FOOTLIGHTS_JWT_SECRET=change-me FOOTLIGHTS_TOKEN=operator cargo run -p footlights-server --example jwt_access
//! ```
//!
//! A client then sends a token it got from your login service as the official client's
//! `token` option (`createClient(url, { token })`), which reaches the gateway as
//! `x-rivet-token`, `rvt-token` or `@token`. The check runs for every request before any actor
//! is reached; per-connection decisions stay in each actor's `on_before_connect`.

use footlights::prelude::*;
use footlights_protocol::ActionError;
use footlights_server::{AccessPolicy, Area, Server};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};

/// What the tokens of this example carry.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token was issued to.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch (checked).
    pub exp: u64,
}

/// A policy that wants `operator_token` on the manager API and a valid JWT signed with
/// `secret` on every gateway request.
///
/// # Errors
/// When the secret cannot be used as an HS256 key.
pub fn jwt_policy(
    operator_token: &str,
    secret: &[u8],
) -> Result<AccessPolicy, jsonwebtoken::errors::Error> {
    let key = DecodingKey::from_secret(secret)?;
    let validation = Validation::new(Algorithm::HS256);
    Ok(AccessPolicy::token(operator_token).check(move |req| {
        if req.area != Area::Gateway {
            return Ok(());
        }
        let token = req
            .token
            .ok_or_else(|| ActionError::unauthorized("a signed token is needed"))?;
        decode::<Claims>(token, &key, &validation)
            .map(|_| ())
            .map_err(|e| ActionError::forbidden(format!("the token is not valid: {e}")))
    }))
}

/// A counter to call.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    count: i64,
}

#[footlights::actor]
impl Counter {
    #[action]
    fn increment(&mut self, amount: i64) -> i64 {
        self.count += amount;
        self.count
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("FOOTLIGHTS_JWT_SECRET")?;
    let operator = std::env::var("FOOTLIGHTS_TOKEN")?;
    let registry = Registry::builder().actor::<Counter>().start().await?;
    let server = Server::builder()
        .registry(registry)
        .access(jwt_policy(&operator, secret.as_bytes())?)
        .build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:6420").await?;
    println!("listening on http://{}", listener.local_addr()?);
    server
        .serve(listener, footlights_server::shutdown_signal())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(secret: &[u8], exp: u64) -> String {
        let claims = Claims {
            sub: "ann".into(),
            exp,
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn only_valid_signed_tokens_reach_the_actors() {
        let registry = Registry::builder()
            .actor::<Counter>()
            .start()
            .await
            .unwrap();
        let server = Server::builder()
            .registry(registry)
            .access(jwt_policy("operator", b"secret").unwrap())
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        let url = format!(
            "http://{addr}/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=a&rvt-crash-policy=sleep"
        );
        let http = reqwest::Client::new();
        let call = |token: Option<String>| {
            let mut request = http.post(&url).json(&serde_json::json!({ "args": [1] }));
            if let Some(t) = token {
                request = request.header("x-rivet-token", t);
            }
            async move {
                let response =
                    tokio::time::timeout(std::time::Duration::from_secs(10), request.send())
                        .await
                        .unwrap()
                        .unwrap();
                response.status().as_u16()
            }
        };
        assert_eq!(call(None).await, 401);
        assert_eq!(
            call(Some(token(b"other", now() + 60))).await,
            403,
            "wrong secret"
        );
        assert_eq!(
            call(Some(token(b"secret", now() - 3600))).await,
            403,
            "expired"
        );
        assert_eq!(call(Some("not.a.jwt".into())).await, 403);
        assert_eq!(call(Some(token(b"secret", now() + 60))).await, 200);
        let _ = stop.send(());
        serving.await.unwrap().unwrap();
    }
}
