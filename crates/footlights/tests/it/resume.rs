//! Connection resume: a link that drops without a clean close leaves its connection on the
//! actor for a grace period; presenting the id and token gets it back with its state and
//! subscriptions.

use std::time::Duration;

use footlights::prelude::*;
use footlights::{ActorOptions, ConnRequest, Value};
use footlights_client::{Link, LinkEvent, Target};
use footlights_protocol::{ConnId, ToClient, ToServer};

#[derive(Default)]
pub struct Seat {
    visits: u32,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Hall {
    disconnects: u32,
}

#[footlights::actor(conn = Conns<Value, Seat>)]
impl Hall {
    async fn on_disconnect(&mut self, _ctx: &Ctx<Self>, conn: &Conn<Self>) {
        // Stateless calls have short-lived connections too; count only real ones.
        if !conn.is_ephemeral() {
            self.disconnects += 1;
        }
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.conn_grace = Duration::from_secs(15);
        o
    }

    #[action]
    fn visit(&self, ctx: &Ctx<Self>) -> u32 {
        let conn = ctx.conn().expect("over a connection");
        let mut seat = conn.state();
        seat.visits += 1;
        seat.visits
    }

    #[action]
    fn shout(&self, ctx: &Ctx<Self>, text: String) {
        ctx.broadcast_raw("shout", vec![Value::from(text)]);
    }

    #[action]
    fn disconnects(&self) -> u32 {
        self.disconnects
    }
}

fn target() -> Target {
    Target::GetOrCreate {
        name: "hall".into(),
        key: "main".into(),
        input: None,
    }
}

async fn init(link: &mut Link) -> (ConnId, String) {
    match link.events.recv().await {
        Some(LinkEvent::Message(ToClient::Init {
            connection_id,
            connection_token,
            ..
        })) => (connection_id, connection_token.expect("a token")),
        other => panic!("expected Init, got {other:?}"),
    }
}

async fn call(link: &mut Link, id: u64, name: &str, args: Vec<Value>) -> Value {
    link.sender
        .send(ToServer::ActionRequest {
            id,
            name: name.into(),
            args,
        })
        .unwrap();
    loop {
        match link.events.recv().await {
            Some(LinkEvent::Message(ToClient::ActionResponse { id: got, output })) if got == id => {
                return output;
            }
            Some(LinkEvent::Message(msg)) if msg.as_event().is_some() => {}
            other => panic!("expected a response, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_is_resumed_with_its_state_and_subscriptions() {
    let registry = Registry::builder().actor::<Hall>().start().await.unwrap();
    let mut link = registry
        .connect(&target(), None, ConnRequest::local())
        .await
        .unwrap();
    let (conn_id, token) = init(&mut link).await;
    link.sender
        .send(ToServer::SubscriptionRequest {
            event_name: "shout".into(),
            subscribe: true,
        })
        .unwrap();
    assert_eq!(call(&mut link, 0, "visit", vec![]).await, Value::Int(1));

    link.sender.lost();
    // While it is away, another client's broadcast is kept for it.
    let other = registry.client().get_or_create::<Hall>("main");
    other.shout("while away".into()).await.unwrap();
    assert_eq!(registry.kept_connections(), 1);

    let old = link;
    let mut link = registry
        .resume(
            &target(),
            None,
            ConnRequest::local(),
            conn_id.clone(),
            token.clone(),
        )
        .await
        .unwrap();
    assert_eq!(init(&mut link).await, (conn_id, token));
    assert_eq!(registry.kept_connections(), 0, "taken back");
    match link.events.recv().await {
        Some(LinkEvent::Message(msg)) if msg.as_event().is_some() => {
            assert_eq!(
                msg.as_event(),
                Some(("shout", &[Value::from("while away")][..]))
            );
        }
        other => panic!("expected the buffered event, got {other:?}"),
    }
    assert_eq!(
        call(&mut link, 1, "visit", vec![]).await,
        Value::Int(2),
        "state kept"
    );
    assert_eq!(
        other.disconnects().await.unwrap(),
        0,
        "no disconnect while resumable"
    );

    // A late report from the superseded link must not touch the resumed connection.
    old.sender.lost();
    old.sender.close();
    other.shout("after".into()).await.unwrap();
    match link.events.recv().await {
        Some(LinkEvent::Message(msg)) if msg.as_event().is_some() => {
            assert_eq!(
                msg.as_event().map(|e| e.1),
                Some(&[Value::from("after")][..])
            );
        }
        other => panic!("the resumed link stopped receiving: {other:?}"),
    }
    assert_eq!(call(&mut link, 2, "visit", vec![]).await, Value::Int(3));
    assert_eq!(other.disconnects().await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_grace_period_ends_with_the_disconnect_hook() {
    let registry = Registry::builder().actor::<Hall>().start().await.unwrap();
    let mut link = registry
        .connect(&target(), None, ConnRequest::local())
        .await
        .unwrap();
    let (conn_id, token) = init(&mut link).await;
    link.sender.lost();
    let other = registry.client().get_or_create::<Hall>("main");
    assert_eq!(other.disconnects().await.unwrap(), 0);
    assert_eq!(registry.kept_connections(), 1, "kept for its client");
    tokio::time::advance(Duration::from_secs(16)).await;
    crate::support::settle("the disconnect hook", || async {
        other.disconnects().await.unwrap() == 1
    })
    .await;
    assert_eq!(registry.kept_connections(), 0, "no longer kept");
    // Too late: the connection is gone, so resuming opens a fresh connection, under an id of
    // the runtime's choosing.
    let mut link = registry
        .resume(
            &target(),
            None,
            ConnRequest::local(),
            conn_id.clone(),
            token.clone(),
        )
        .await
        .unwrap();
    let (again, new_token) = init(&mut link).await;
    assert_ne!(again, conn_id, "a client never chooses its connection's id");
    assert_ne!(new_token, token);
    assert_eq!(
        call(&mut link, 0, "visit", vec![]).await,
        Value::Int(1),
        "fresh state"
    );
}

#[tokio::test]
async fn asking_for_someone_elses_connection_id_elsewhere_takes_nothing_over() {
    let registry = Registry::builder().actor::<Hall>().start().await.unwrap();
    let mut victim = registry
        .connect(&target(), None, ConnRequest::local())
        .await
        .unwrap();
    let (victim_id, _) = init(&mut victim).await;
    assert_eq!(call(&mut victim, 1, "visit", vec![]).await, Value::Int(1));
    // Another actor, the victim's id, a guessed token.
    let elsewhere = Target::GetOrCreate {
        name: "hall".into(),
        key: "other".into(),
        input: None,
    };
    let mut thief = registry
        .resume(
            &elsewhere,
            None,
            ConnRequest::local(),
            victim_id.clone(),
            "guess".into(),
        )
        .await
        .unwrap();
    let (thief_id, _) = init(&mut thief).await;
    assert_ne!(thief_id, victim_id, "the thief got a fresh id");
    assert_eq!(call(&mut thief, 1, "visit", vec![]).await, Value::Int(1));
    // The victim's connection is untouched and still answers, with its own state.
    assert_eq!(call(&mut victim, 2, "visit", vec![]).await, Value::Int(2));
}

#[tokio::test]
async fn a_wrong_token_is_refused() {
    let registry = Registry::builder().actor::<Hall>().start().await.unwrap();
    let mut link = registry
        .connect(&target(), None, ConnRequest::local())
        .await
        .unwrap();
    let (conn_id, _token) = init(&mut link).await;
    link.sender.lost();
    let mut thief = registry
        .resume(
            &target(),
            None,
            ConnRequest::local(),
            conn_id,
            "guess".into(),
        )
        .await
        .unwrap();
    match thief.events.recv().await {
        Some(LinkEvent::Message(ToClient::Error {
            error,
            action_id: None,
        })) => {
            assert_eq!(error.code(), "resume_refused");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        thief.events.recv().await,
        Some(LinkEvent::Closed(_))
    ));
}

#[tokio::test]
async fn subscriptions_are_limited_in_number_and_name_length() {
    let registry = Registry::builder().actor::<Hall>().start().await.unwrap();
    let mut link = registry
        .connect(&target(), None, ConnRequest::local())
        .await
        .unwrap();
    init(&mut link).await;
    let limits = ActorOptions::default();
    let subscribe = |link: &Link, name: String| {
        link.sender
            .send(ToServer::SubscriptionRequest {
                event_name: name,
                subscribe: true,
            })
            .unwrap();
    };
    for i in 0..limits.max_subscriptions {
        subscribe(&link, format!("e{i}"));
    }
    // Subscribing again to a name already held is not a new subscription.
    subscribe(&link, "e0".into());
    subscribe(&link, "one too many".into());
    subscribe(&link, "x".repeat(limits.max_event_name_bytes + 1));
    let mut refused = Vec::new();
    // The refusals arrive before the answer to this action, which runs after them.
    link.sender
        .send(ToServer::ActionRequest {
            id: 7,
            name: "visit".into(),
            args: vec![],
        })
        .unwrap();
    loop {
        match link.events.recv().await {
            Some(LinkEvent::Message(ToClient::Error {
                error,
                action_id: None,
            })) => refused.push(error.code().to_owned()),
            Some(LinkEvent::Message(ToClient::ActionResponse { id: 7, output })) => {
                assert_eq!(output, Value::Int(1), "the connection still works");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(refused, ["too_many_subscriptions", "event_name_too_long"]);
    // Unsubscribing frees a place.
    link.sender
        .send(ToServer::SubscriptionRequest {
            event_name: "e1".into(),
            subscribe: false,
        })
        .unwrap();
    subscribe(&link, "shout".into());
    link.sender
        .send(ToServer::ActionRequest {
            id: 8,
            name: "shout".into(),
            args: vec![Value::from("hi")],
        })
        .unwrap();
    match link.events.recv().await {
        Some(LinkEvent::Message(msg)) => {
            let (name, _) = msg.as_event().expect("the shout event, before the reply");
            assert_eq!(name, "shout");
        }
        other => panic!("expected the event, got {other:?}"),
    }
}
