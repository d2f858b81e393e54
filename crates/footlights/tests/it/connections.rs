//! Connections: params, state, auth, hooks and their order, events, direct sends, kicks.

use footlights::prelude::*;
use footlights::{ActorHandle, ConnRequest, ConnStatus};
use futures::{FutureExt, StreamExt};

#[derive(Deserialize)]
pub struct JoinParams {
    name: String,
    token: Option<String>,
}

#[derive(Default)]
pub struct Member {
    name: String,
    joined: bool,
}

#[derive(Default)]
pub struct Auth {
    admin: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct Message {
    from: String,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct Direct(pub String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct Joined(pub String);

#[derive(Default, Serialize, Deserialize)]
pub struct Chat {
    log: Vec<String>,
}

#[footlights::actor(conn = Conns<JoinParams, Member, Auth>)]
impl Chat {
    async fn on_before_connect(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &JoinParams,
        request: &ConnRequest,
    ) -> Result<Auth, ActionError> {
        if params.name == "mallory" {
            return Err(ActionError::forbidden("mallory may not join"));
        }
        self.log
            .push(format!("before:{} {}", params.name, request.method()));
        Ok(Auth {
            admin: params.token.as_deref() == Some("admin-secret"),
        })
    }

    async fn create_conn_state(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &JoinParams,
        _request: &ConnRequest,
    ) -> Result<Member, ActionError> {
        self.log.push(format!("state:{}", params.name));
        Ok(Member {
            name: params.name.clone(),
            joined: false,
        })
    }

    async fn on_connect(&mut self, ctx: &Ctx<Self>, conn: &Conn<Self>) -> Result<(), ActionError> {
        let name = conn.state().name.clone();
        self.log.push(format!(
            "connect:{name} listed={}",
            ctx.conn_by_id(conn.id()).is_some()
        ));
        conn.state().joined = true;
        ctx.broadcast(Joined(name));
        Ok(())
    }

    async fn on_disconnect(&mut self, ctx: &Ctx<Self>, conn: &Conn<Self>) {
        let listed = ctx.conn_by_id(conn.id()).is_some();
        self.log
            .push(format!("disconnect:{} listed={listed}", conn.state().name));
    }

    #[action]
    fn say(&mut self, ctx: &Ctx<Self>, text: String) -> usize {
        let from = ctx
            .conn()
            .map(|c| c.state().name.clone())
            .unwrap_or_default();
        ctx.broadcast(Message { from, text });
        self.log.len()
    }

    #[action]
    fn whoami(&self, ctx: &Ctx<Self>) -> String {
        let conn = ctx.conn().expect("called over a connection");
        assert!(conn.state().joined, "connect hook ran before the action");
        conn.state().name.clone()
    }

    #[action]
    fn log(&self) -> Vec<String> {
        self.log.clone()
    }

    #[action]
    fn direct(&self, ctx: &Ctx<Self>, to: String, text: String) -> bool {
        let target = ctx.conns().into_iter().find(|c| c.state().name == to);
        target.map(|c| c.send(Direct(text))).is_some()
    }

    #[action]
    async fn kick(&self, ctx: &Ctx<Self>, who: String) -> bool {
        let target = ctx.conns().into_iter().find(|c| c.state().name == who);
        match target {
            Some(c) => {
                c.disconnect("kicked by admin").await;
                true
            }
            None => false,
        }
    }

    #[action]
    fn admin_only(&self, ctx: &Ctx<Self>) -> Result<String, ActionError> {
        match ctx.conn() {
            Some(c) if c.auth().admin => Ok(format!("hello admin {}", c.state().name)),
            _ => Err(ActionError::forbidden("admins only")),
        }
    }

    #[action]
    fn conn_count(&self, ctx: &Ctx<Self>) -> usize {
        ctx.conns().len()
    }

    /// Whether the calling connection is in `ctx.conns()`, and whether it is short-lived.
    #[action]
    fn listed_caller(&self, ctx: &Ctx<Self>) -> (bool, bool) {
        let caller = ctx.conn().expect("every call here has a connection");
        let listed = ctx.conns().iter().any(|c| c.id() == caller.id());
        (listed, caller.is_ephemeral())
    }

    #[action]
    fn subscribed(&self, ctx: &Ctx<Self>, event: String) -> bool {
        ctx.conn().is_some_and(|c| c.is_subscribed(&event))
    }
}

async fn room() -> (Registry, ActorHandle<Chat>) {
    let registry = Registry::builder().actor::<Chat>().start().await.unwrap();
    let room = registry.client().get_or_create::<Chat>(["general"]);
    (registry, room)
}

fn join(room: &ActorHandle<Chat>, name: &str) -> ActorHandle<Chat> {
    room.clone()
        .with_params(&serde_json::json!({ "name": name }))
}

#[tokio::test]
async fn params_build_conn_state_and_hooks_run_in_order() {
    let (_r, room) = room().await;
    let ann = join(&room, "ann").connect().await.unwrap();
    assert_eq!(ann.whoami().await.unwrap(), "ann");
    ann.dispose().await;
    let observer = join(&room, "observer");
    let log: Vec<String> = observer.log().await.unwrap();
    let ann_log: Vec<&str> = log
        .iter()
        .filter(|l| l.contains("ann"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        ann_log,
        [
            "before:ann GET",
            "state:ann",
            "connect:ann listed=true",
            "disconnect:ann listed=false"
        ]
    );
}

#[tokio::test]
async fn stateless_actions_run_with_a_short_lived_connection() {
    let (_r, room) = room().await;
    let solo = join(&room, "solo");
    assert_eq!(solo.whoami().await.unwrap(), "solo");
    let log: Vec<String> = solo.log().await.unwrap();
    let first_four: Vec<&str> = log.iter().take(4).map(String::as_str).collect();
    assert_eq!(
        first_four,
        [
            "before:solo GET",
            "state:solo",
            "connect:solo listed=true",
            "disconnect:solo listed=false"
        ]
    );
    // While its action runs, a stateless call's connection is in `ctx.conns()` like any other
    // (RivetKit lists it too); it leaves the list when the call ends.
    assert_eq!(solo.listed_caller().await.unwrap(), (true, true));
    assert_eq!(solo.conn_count().await.unwrap(), 1, "only the caller's own");
    let ann = join(&room, "ann").connect().await.unwrap();
    assert_eq!(ann.listed_caller().await.unwrap(), (true, false));
    assert_eq!(
        ann.conn_count().await.unwrap(),
        1,
        "no stateless call is running"
    );
    assert_eq!(solo.conn_count().await.unwrap(), 2);
}

#[tokio::test]
async fn before_connect_rejects_with_its_code() {
    let (_r, room) = room().await;
    let err = join(&room, "mallory").connect().await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("auth", "forbidden"));
    let err = join(&room, "mallory").whoami().await.unwrap_err();
    assert_eq!(err.code(), "forbidden");
}

#[tokio::test]
async fn params_of_the_wrong_shape_are_invalid_request() {
    let (_r, room) = room().await;
    let err = room.clone().with_params(&42).connect().await.unwrap_err();
    assert_eq!(err.code(), "invalid_request");
}

#[tokio::test]
async fn auth_data_is_readable_from_the_connection() {
    let (_r, room) = room().await;
    let admin = room
        .clone()
        .with_params(&serde_json::json!({"name": "root", "token": "admin-secret"}))
        .connect()
        .await
        .unwrap();
    assert_eq!(admin.admin_only().await.unwrap(), "hello admin root");
    let guest = join(&room, "guest").connect().await.unwrap();
    assert_eq!(guest.admin_only().await.unwrap_err().code(), "forbidden");
}

#[tokio::test]
async fn broadcasts_reach_subscribers_and_precede_the_reply() {
    let (_r, room) = room().await;
    let ann = join(&room, "ann").connect().await.unwrap();
    let bob = join(&room, "bob").connect().await.unwrap();
    let mut ann_msgs = ann.events::<Message>();
    let mut bob_msgs = bob.events::<Message>();
    // Bob's subscription travels on his own connection: make sure it arrived.
    assert!(bob.subscribed("message".into()).await.unwrap());
    ann.say("hi".into()).await.unwrap();
    // The event was delivered before the reply, so it is already waiting.
    let own = ann_msgs
        .next()
        .now_or_never()
        .expect("event before reply")
        .unwrap();
    assert_eq!(
        own,
        Message {
            from: "ann".into(),
            text: "hi".into()
        }
    );
    assert_eq!(bob_msgs.next().await.unwrap(), own);
    assert_eq!(ann.conn_count().await.unwrap(), 2);
}

#[tokio::test]
async fn once_takes_the_next_event() {
    let (_r, room) = room().await;
    let watcher = join(&room, "watcher").connect().await.unwrap();
    let mut next_join = Box::pin(watcher.once::<Joined>());
    assert!(
        next_join.as_mut().now_or_never().is_none(),
        "nothing joined yet"
    );
    // The subscription is sent before this call, so the actor has it when the call returns.
    assert!(watcher.subscribed("joined".into()).await.unwrap());
    let _late = join(&room, "late").connect().await.unwrap();
    assert_eq!(next_join.await.unwrap(), Joined("late".into()));
}

#[tokio::test]
async fn dropping_the_stream_unsubscribes() {
    let (_r, room) = room().await;
    let ann = join(&room, "ann").connect().await.unwrap();
    let stream = ann.events::<Message>();
    assert!(ann.subscribed("message".into()).await.unwrap());
    drop(stream);
    assert!(!ann.subscribed("message".into()).await.unwrap());
}

#[tokio::test]
async fn conn_send_reaches_one_connection() {
    let (_r, room) = room().await;
    let ann = join(&room, "ann").connect().await.unwrap();
    let bob = join(&room, "bob").connect().await.unwrap();
    let mut bob_direct = bob.events::<Direct>();
    let mut ann_direct = ann.events::<Direct>();
    // Make sure both subscriptions reached the actor before sending.
    assert!(bob.subscribed("direct".into()).await.unwrap());
    assert!(ann.subscribed("direct".into()).await.unwrap());
    assert!(ann.direct("bob".into(), "psst".into()).await.unwrap());
    assert_eq!(bob_direct.next().await.unwrap(), Direct("psst".into()));
    // A marker proves ann's stream is up to date and got nothing.
    assert!(!ann.direct("nobody".into(), "x".into()).await.unwrap());
    assert!(ann_direct.next().now_or_never().is_none());
}

#[tokio::test]
async fn disconnect_closes_the_link_runs_the_hook_and_the_client_reconnects() {
    let (_r, room) = room().await;
    let admin = join(&room, "admin").connect().await.unwrap();
    let bob = join(&room, "bob").connect().await.unwrap();
    let first_id = bob.id().expect("connected");
    let mut status = bob.status();
    assert!(admin.kick("bob".into()).await.unwrap());
    let reconnected = status
        .wait_for(|s| matches!(s, ConnStatus::Connected { conn_id, .. } if *conn_id != first_id))
        .await
        .unwrap()
        .clone();
    assert!(matches!(reconnected, ConnStatus::Connected { .. }));
    let log: Vec<String> = admin.log().await.unwrap();
    assert!(
        log.iter().any(|l| l == "disconnect:bob listed=false"),
        "{log:?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.starts_with("connect:bob")).count(),
        2,
        "{log:?}"
    );
}

#[tokio::test]
async fn dispose_fails_later_calls_and_ends_streams() {
    let (_r, room) = room().await;
    let ann = join(&room, "ann").connect().await.unwrap();
    let mut msgs = ann.events::<Message>();
    ann.dispose().await;
    assert_eq!(ann.whoami().await.unwrap_err().code(), "connection_closed");
    assert!(msgs.next().await.is_none());
    assert_eq!(*ann.status().borrow(), ConnStatus::Closed);
}

#[derive(Deserialize)]
pub struct Prefs {
    #[serde(default)]
    theme: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Lenient;

#[footlights::actor(conn = Conns<Prefs>)]
impl Lenient {
    #[action]
    fn theme(&self, ctx: &Ctx<Self>) -> String {
        let theme = ctx.conn().and_then(|c| c.params().theme.clone());
        theme.unwrap_or_else(|| "default".into())
    }
}

#[tokio::test]
async fn no_params_fill_a_params_struct_with_defaults_and_wrong_params_are_refused() {
    let registry = Registry::builder()
        .actor::<Lenient>()
        .actor::<Chat>()
        .start()
        .await
        .unwrap();
    let client = registry.client();
    let lenient = client.get_or_create::<Lenient>("x");
    assert_eq!(lenient.theme().await.unwrap(), "default");
    assert_eq!(
        lenient.connect().await.unwrap().theme().await.unwrap(),
        "default"
    );
    let dark = lenient
        .clone()
        .with_params(&serde_json::json!({"theme": "dark"}));
    assert_eq!(dark.theme().await.unwrap(), "dark");
    // A struct with required fields still refuses missing params.
    let err = client.get_or_create::<Chat>("y").log().await.unwrap_err();
    assert_eq!(err.code(), "invalid_request");
}
