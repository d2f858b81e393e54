//! The idle timeout counts from when the last message, request or connection change *ends*:
//! work that runs past the timeout keeps the actor awake, and the actor then stays awake a
//! full timeout. Time is tokio's paused clock; nothing waits on the wall clock.

use std::time::Duration;

use footlights::prelude::*;
use footlights::{ActorHandle, ActorOptions, RawReply, RawRequest, RawResponse};
use footlights_client::Target;

use crate::support::{let_run, until_awake};

/// The actor's idle timeout.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long each piece of slow work takes: well past the idle timeout.
const WORK: Duration = Duration::from_secs(25);

#[derive(Default, Serialize, Deserialize)]
pub struct Drowsy {
    wakes: u32,
}

#[footlights::actor]
impl Drowsy {
    fn options() -> ActorOptions {
        let mut options = ActorOptions::default();
        options.sleep_timeout = TIMEOUT;
        options
    }

    async fn on_wake(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.wakes += 1;
        Ok(())
    }

    /// `/inline`: slow work in the handler itself; `/later`: slow work beside the mailbox.
    async fn on_request(
        &mut self,
        _ctx: &Ctx<Self>,
        request: RawRequest,
    ) -> Result<RawReply, ActionError> {
        match request.uri().path() {
            "/inline" => {
                tokio::time::sleep(WORK).await;
                Ok(RawResponse::new("inline".into()).into())
            }
            "/later" => Ok(RawReply::later(async {
                tokio::time::sleep(WORK).await;
                Ok(RawResponse::new("later".into()))
            })),
            _ => Ok(RawReply::NotDefined),
        }
    }

    /// Slow work in a `&mut self` action.
    #[action]
    async fn work(&mut self) {
        tokio::time::sleep(WORK).await;
    }

    #[action]
    fn wakes(&self) -> u32 {
        self.wakes
    }
}

async fn start() -> (Registry, ActorHandle<Drowsy>) {
    let registry = Registry::builder().actor::<Drowsy>().start().await.unwrap();
    let drowsy = registry.client().get_or_create::<Drowsy>(["d"]);
    assert_eq!(drowsy.wakes().await.unwrap(), 1);
    (registry, drowsy)
}

fn target() -> Target {
    Target::GetOrCreate {
        name: "drowsy".into(),
        key: "d".into(),
        input: None,
    }
}

async fn raw(registry: &Registry, path: &str) -> String {
    let request = http::Request::builder()
        .uri(path)
        .body(bytes::Bytes::new())
        .unwrap();
    let response = registry.request(&target(), None, request).await.unwrap();
    String::from_utf8(response.body().to_vec()).unwrap()
}

/// The slow work has just ended: the actor must stay awake for one more full timeout, then
/// sleep.
async fn awake_for_a_full_timeout(registry: &Registry) {
    tokio::time::advance(TIMEOUT - Duration::from_secs(1)).await;
    let_run().await;
    assert_eq!(
        registry.awake_count(),
        1,
        "asleep before a full idle timeout after the work ended"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    until_awake(registry, 0).await;
}

#[tokio::test(start_paused = true)]
async fn a_long_action_keeps_the_actor_awake_and_the_timeout_counts_from_its_end() {
    let (registry, drowsy) = start().await;
    drowsy.work().await.unwrap();
    awake_for_a_full_timeout(&registry).await;
    assert_eq!(
        drowsy.wakes().await.unwrap(),
        2,
        "it slept once, after the timeout"
    );
}

#[tokio::test(start_paused = true)]
async fn a_long_raw_request_keeps_the_actor_awake_and_the_timeout_counts_from_its_end() {
    let (registry, drowsy) = start().await;
    assert_eq!(raw(&registry, "/inline").await, "inline");
    awake_for_a_full_timeout(&registry).await;
    assert_eq!(drowsy.wakes().await.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_raw_response_made_later_keeps_the_actor_awake_until_it_is_out() {
    let (registry, drowsy) = start().await;
    assert_eq!(raw(&registry, "/later").await, "later");
    awake_for_a_full_timeout(&registry).await;
    assert_eq!(drowsy.wakes().await.unwrap(), 2);
}

/// Settings changed at registration (`actor_with`) replace the type's own: here an idle
/// timeout of 40 s in place of its 10 s.
#[tokio::test(start_paused = true)]
async fn a_timeout_set_at_registration_replaces_the_types_own() {
    let registry = Registry::builder()
        .actor_with::<Drowsy>(|options| options.sleep_timeout = TIMEOUT * 4)
        .start()
        .await
        .unwrap();
    let drowsy = registry.client().get_or_create::<Drowsy>(["d"]);
    assert_eq!(drowsy.wakes().await.unwrap(), 1);
    tokio::time::advance(TIMEOUT * 4 - Duration::from_secs(1)).await;
    let_run().await;
    assert_eq!(
        registry.awake_count(),
        1,
        "asleep after the type's own timeout"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    until_awake(&registry, 0).await;
    assert_eq!(drowsy.wakes().await.unwrap(), 2);
}
