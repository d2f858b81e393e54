//! `testRaw`: raw HTTP requests (`handle.fetch(path)`) for the JavaScript compatibility tests.
//! Served only with `--with-test-actors`.
//!
//! | Path | Answer |
//! |---|---|
//! | `/hello` | 200, body `hello` |
//! | `/nothing` | no response: 500 `handler.invalid_request_handler_response` |
//! | `/together` | 200, body `together`, once [`TOGETHER`] such requests have started: each waits beside the actor's mailbox, so the actor serves other calls meanwhile |
//! | anything else | not served: 404 `handler.request_not_defined` |

use std::sync::Arc;

use footlights::prelude::*;
use footlights::{RawReply, RawRequest, RawResponse};
use tokio::sync::Barrier;

/// How many `/together` requests meet before any of them is answered.
pub const TOGETHER: usize = 3;

/// The state: how many requests the handler took.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TestRaw {
    requests: u64,
    /// Where `/together` requests wait for each other; made on every start.
    #[serde(skip)]
    together: Option<Arc<Barrier>>,
}

#[footlights::actor(name = "testRaw")]
impl TestRaw {
    async fn create_vars(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.together = Some(Arc::new(Barrier::new(TOGETHER)));
        Ok(())
    }

    async fn on_request(
        &mut self,
        _ctx: &Ctx<Self>,
        request: RawRequest,
    ) -> Result<RawReply, ActionError> {
        let reply = match request.uri().path() {
            "/hello" => RawResponse::new("hello".into()).into(),
            "/nothing" => RawReply::NoResponse,
            "/together" => {
                let together = self.together.clone().unwrap_or_else(|| {
                    // `create_vars` runs before any request; this is only a fallback.
                    Arc::new(Barrier::new(TOGETHER))
                });
                RawReply::later(async move {
                    together.wait().await;
                    Ok(RawResponse::new("together".into()))
                })
            }
            _ => return Ok(RawReply::NotDefined),
        };
        self.requests += 1;
        Ok(reply)
    }

    /// How many requests the handler took (answered or not yet).
    #[action]
    pub fn requests(&self) -> u64 {
        self.requests
    }
}
