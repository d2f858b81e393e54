//! The before-action-response hook (outputs changed in one place, for every kind of caller)
//! and per-event subscription rules.

use footlights::prelude::*;
use footlights::{ConnRequest, Deferred, Value};
use footlights_client::{Link, LinkEvent, Target};
use footlights_protocol::{ToClient, ToServer};

#[derive(Default, Serialize, Deserialize)]
pub struct Vault {
    balance: i64,
}

fn role(params: &Value) -> Option<&str> {
    match params {
        Value::Object(fields) => {
            fields
                .iter()
                .find(|(k, _)| k == "role")
                .and_then(|(_, v)| match v {
                    Value::String(s) => Some(s.as_str()),
                    _ => None,
                })
        }
        _ => None,
    }
}

#[footlights::actor(conn = Conns<Value>)]
impl Vault {
    fn on_before_action_response(
        &self,
        _ctx: &Ctx<Self>,
        action: &str,
        output: Value,
    ) -> Result<Value, ActionError> {
        match action {
            "balance" | "balanceLater" => Ok(Value::Object(vec![
                ("amount".into(), output),
                ("currency".into(), "EUR".into()),
            ])),
            "refused" => Err(ActionError::user("hidden", "not for you")),
            _ => Ok(output),
        }
    }

    fn can_subscribe(
        &self,
        _ctx: &Ctx<Self>,
        conn: &Conn<Self>,
        event: &str,
    ) -> Result<(), ActionError> {
        if event == "audit" && role(conn.params()) != Some("admin") {
            return Err(ActionError::forbidden("audit is for admins"));
        }
        Ok(())
    }

    #[action]
    fn deposit(&mut self, amount: i64) -> i64 {
        self.balance += amount;
        self.balance
    }

    #[action]
    fn balance(&self) -> i64 {
        self.balance
    }

    #[action]
    fn balance_later(&mut self) -> Deferred<i64> {
        let balance = self.balance;
        Deferred::new(async move { Ok(balance) })
    }

    #[action]
    fn refused(&self) -> i64 {
        1
    }

    #[action]
    fn announce(&self, ctx: &Ctx<Self>) {
        ctx.broadcast_raw("audit", vec![Value::from("audited")]);
        ctx.broadcast_raw("news", vec![Value::from("hello")]);
    }
}

#[tokio::test]
async fn the_hook_changes_outputs_of_immediate_and_deferred_actions_and_may_refuse() {
    let registry = Registry::builder().actor::<Vault>().start().await.unwrap();
    let vault = registry.client().get_or_create::<Vault>(["v"]);
    assert_eq!(
        vault.deposit(5).await.unwrap(),
        5,
        "other actions untouched"
    );
    let wrapped = Value::Object(vec![
        ("amount".into(), Value::from(5)),
        ("currency".into(), "EUR".into()),
    ]);
    assert_eq!(vault.action("balance", vec![]).await.unwrap(), wrapped);
    assert_eq!(vault.action("balanceLater", vec![]).await.unwrap(), wrapped);
    let e = vault.action("refused", vec![]).await.unwrap_err();
    assert_eq!((e.group(), e.code()), ("user", "hidden"));
}

fn target() -> Target {
    Target::GetOrCreate {
        name: "vault".into(),
        key: "subs".into(),
        input: None,
    }
}

async fn connect(registry: &Registry, role: &str) -> Link {
    let params = Value::Object(vec![("role".into(), role.into())]);
    let mut link = registry
        .connect(&target(), Some(params), ConnRequest::local())
        .await
        .unwrap();
    match next(&mut link).await {
        Some(LinkEvent::Message(ToClient::Init { .. })) => link,
        other => panic!("expected Init, got {other:?}"),
    }
}

/// The next thing the link hears, within ten seconds.
async fn next(link: &mut Link) -> Option<LinkEvent> {
    tokio::time::timeout(std::time::Duration::from_secs(10), link.events.recv())
        .await
        .expect("nothing arrived within ten seconds")
}

fn subscribe(link: &Link, event: &str) {
    link.sender
        .send(ToServer::SubscriptionRequest {
            event_name: event.into(),
            subscribe: true,
        })
        .unwrap();
}

/// Calls `announce` on `link` and collects what arrives up to its answer: refusals' codes and
/// events' names.
async fn announce(link: &mut Link) -> (Vec<String>, Vec<String>) {
    link.sender
        .send(ToServer::ActionRequest {
            id: 1,
            name: "announce".into(),
            args: vec![],
        })
        .unwrap();
    let (mut refused, mut events) = (Vec::new(), Vec::new());
    loop {
        match next(link).await {
            Some(LinkEvent::Message(ToClient::Error {
                error,
                action_id: None,
            })) => refused.push(format!("{}.{}", error.group(), error.code())),
            Some(LinkEvent::Message(ToClient::ActionResponse { id: 1, .. })) => {
                return (refused, events);
            }
            Some(LinkEvent::Message(msg)) if msg.as_event().is_some() => {
                events.extend(msg.as_event().map(|(name, _)| name.to_owned()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_refused_subscription_closes_the_connection_with_the_error() {
    let registry = Registry::builder().actor::<Vault>().start().await.unwrap();
    let guest = connect(&registry, "guest").await;
    subscribe(&guest, "news");
    subscribe(&guest, "audit");
    let mut guest = guest;
    match next(&mut guest).await {
        Some(LinkEvent::Message(ToClient::Error {
            error,
            action_id: None,
        })) => assert_eq!((error.group(), error.code()), ("auth", "forbidden")),
        other => panic!("expected the refusal, got {other:?}"),
    }
    match next(&mut guest).await {
        Some(LinkEvent::Closed(reason)) => {
            assert_eq!(reason.code, 1011);
            assert!(reason.reason.starts_with("auth.forbidden"), "{reason:?}");
        }
        other => panic!("expected a close, got {other:?}"),
    }

    // Events go only where they are allowed and subscribed.
    let mut reader = connect(&registry, "guest").await;
    subscribe(&reader, "news");
    let (refused, events) = announce(&mut reader).await;
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(events, ["news"]);
    let mut admin = connect(&registry, "admin").await;
    subscribe(&admin, "audit");
    let (refused, events) = announce(&mut admin).await;
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(events, ["audit"]);
}
