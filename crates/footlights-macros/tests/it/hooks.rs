//! Lifecycle hooks written in the `impl` block move into `impl Actor`.

use footlights::__private::core::{Actor, ActorOptions, Conns, Ctx};
use footlights::__private::protocol::{ActionError, ActorSpec};

use serde::{Deserialize, Serialize};

/// What clients send when they connect (nothing, for stateless calls).
#[derive(Deserialize)]
struct JoinParams {
    name: String,
}

/// Per-connection state.
#[derive(Default)]
struct Member {
    name: String,
}

/// An actor without `Default`, private to this module: it builds its state in `create_state`.
#[derive(Serialize, Deserialize)]
struct Lobby {
    topic: String,
    #[serde(skip)]
    woken: u32,
}

#[footlights::actor(input = String, conn = Conns<Option<JoinParams>, Member>)]
impl Lobby {
    // A plain `fn` returning the value: the macro makes it `async`.
    pub fn create_state(_ctx: &Ctx<Self>, topic: &String) -> Result<Self, ActionError> {
        Ok(Lobby {
            topic: topic.clone(),
            woken: 0,
        })
    }

    async fn on_wake(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.woken += 1;
        Ok(())
    }

    // The trait's exact signature works too.
    #[allow(clippy::manual_async_fn)]
    fn on_sleep(&mut self, _ctx: &Ctx<Self>) -> impl Future<Output = ()> + Send {
        async {}
    }

    fn on_state_change(&mut self, _ctx: &Ctx<Self>) {}

    async fn create_conn_state(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Option<JoinParams>,
        _request: &footlights::__private::core::ConnRequest,
    ) -> Result<Member, ActionError> {
        let name = params.as_ref().map(|p| p.name.clone()).unwrap_or_default();
        Ok(Member { name })
    }

    fn options() -> ActorOptions {
        let mut options = ActorOptions::default();
        options.no_sleep = true;
        options
    }

    #[action]
    fn topic(&self) -> String {
        self.topic.clone()
    }

    #[action]
    fn woken(&self) -> u32 {
        self.woken
    }
}

#[test]
fn hooks_are_the_actor_s() {
    assert!(<Lobby as Actor>::options().no_sleep);
    assert_eq!(<Lobby as ActorSpec>::NAME, "lobby");
    let member = Member::default();
    assert!(member.name.is_empty());
}

#[tokio::test]
async fn hooks_run_in_the_runtime() {
    use footlights::__private::core::Registry;

    let registry = Registry::builder().actor::<Lobby>().start().await.unwrap();
    let lobby = registry
        .client()
        .get_or_create_with::<Lobby>(["l"], &"rust".to_owned());
    assert_eq!(lobby.topic().await.unwrap(), "rust");
    assert_eq!(lobby.woken().await.unwrap(), 1);
    registry.shutdown().await;
}
