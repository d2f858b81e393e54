//! Operators looking inside a live actor: the state, connections, schedules and key-value
//! entries as the actor holds them, and a replaced state that goes through the actor.

use std::time::Duration;

use footlights::inspect::InspectOptions;
use footlights::prelude::*;
use footlights::{ActorOptions, KvRange, Value};

use crate::support::settle;

#[derive(Clone, Serialize, Deserialize, Event)]
pub struct Changed(pub i64);

#[derive(Default, Serialize, Deserialize)]
pub struct Gauge {
    level: i64,
    label: String,
    /// Counts the state-change hook's runs: saved, so the test can read it.
    hook_runs: u32,
    /// Rebuilt by `create_vars`, never saved.
    #[serde(skip)]
    vars: Option<String>,
}

#[footlights::actor]
impl Gauge {
    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(60);
        o
    }

    async fn create_vars(&mut self, _ctx: &Ctx<Self>) -> Result<(), ActionError> {
        self.vars = Some(format!("built for level {}", self.level));
        Ok(())
    }

    fn on_state_change(&mut self, _ctx: &Ctx<Self>) {
        self.hook_runs += 1;
    }

    #[action]
    async fn raise(&mut self, ctx: &Ctx<Self>, by: i64) -> Result<i64, ActionError> {
        self.level += by;
        ctx.kv().put("note/a", "first").await?;
        ctx.kv().put_bytes("raw", [0xff, 0x00]).await?;
        ctx.broadcast(Changed(self.level));
        ctx.schedule()
            .after(Duration::from_secs(3600), gauge_actions::Raise { by: 1 })?;
        Ok(self.level)
    }

    #[action]
    fn level(&self) -> i64 {
        self.level
    }

    #[action]
    fn hook_runs(&self) -> u32 {
        self.hook_runs
    }

    #[action]
    fn vars(&self) -> Option<String> {
        self.vars.clone()
    }
}

fn field<'a>(state: &'a Value, name: &str) -> Option<&'a Value> {
    match state {
        Value::Object(fields) => fields.iter().find(|(k, _)| k == name).map(|(_, v)| v),
        _ => None,
    }
}

#[tokio::test]
async fn an_inspection_sees_the_live_state_connections_schedules_and_kv() {
    let registry = Registry::builder().actor::<Gauge>().start().await.unwrap();
    let gauge = registry.client().get_or_create::<Gauge>(["g"]);
    let conn = gauge.connect().await.unwrap();
    let _changes = conn.events::<Changed>();
    assert_eq!(gauge.raise(5).await.unwrap(), 5);
    let id = gauge.resolve().await.unwrap();

    // The subscription travels on the connection, apart from the action: wait for it.
    settle("the connection's subscription", || {
        let (registry, id) = (registry.clone(), id.clone());
        async move {
            let v = registry.inspect(&id, InspectOptions::default()).await;
            v.unwrap()
                .connections
                .iter()
                .any(|c| !c.ephemeral && c.subscriptions == ["changed"])
        }
    })
    .await;
    let view = registry
        .inspect(&id, InspectOptions::default())
        .await
        .unwrap();
    assert_eq!(field(&view.state, "level"), Some(&Value::Int(5)));
    assert_eq!(
        field(&view.state, "vars"),
        None,
        "skipped fields are not state"
    );
    assert!(view.connections.iter().all(|c| !c.detached));
    assert_eq!(view.schedules.len(), 1);
    assert_eq!(view.schedules[0].action, "raise");
    assert_eq!(view.schedules[0].args, vec![Value::Int(1)]);
    let keys: Vec<&[u8]> = view.kv.entries.iter().map(|e| e.key.as_slice()).collect();
    assert_eq!(keys, [b"note/a".as_slice(), b"raw".as_slice()]);
    assert!(!view.kv.more);

    let mut options = InspectOptions::default();
    options.kv = KvRange::prefix(b"note/").limit(10);
    let page = registry.inspect(&id, options).await.unwrap().kv;
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].value::<String>().unwrap(), "first");
}

#[tokio::test]
async fn a_replaced_state_goes_through_the_actor_and_its_hooks() {
    let registry = Registry::builder().actor::<Gauge>().start().await.unwrap();
    let gauge = registry.client().get_or_create::<Gauge>(["g"]);
    gauge.raise(2).await.unwrap();
    let hooks_before = gauge.hook_runs().await.unwrap();
    let id = gauge.resolve().await.unwrap();

    let state = Value::Object(vec![
        ("level".into(), Value::Int(40)),
        ("label".into(), Value::from("set by hand")),
        ("hook_runs".into(), Value::Int(i64::from(hooks_before))),
    ]);
    registry.replace_state(&id, state).await.unwrap();
    assert_eq!(gauge.level().await.unwrap(), 40);
    assert_eq!(gauge.hook_runs().await.unwrap(), hooks_before + 1);
    assert_eq!(
        gauge.vars().await.unwrap().as_deref(),
        Some("built for level 40")
    );
    let view = registry
        .inspect(&id, InspectOptions::default())
        .await
        .unwrap();
    assert_eq!(
        field(&view.state, "label"),
        Some(&Value::from("set by hand"))
    );

    // A value of the wrong shape is refused with a code; the state stays.
    let wrong = Value::Object(vec![("level".into(), Value::from("high"))]);
    let e = registry.replace_state(&id, wrong).await.unwrap_err();
    assert_eq!((e.group(), e.code()), ("actor", "invalid_request"));
    assert_eq!(gauge.level().await.unwrap(), 40);

    let unknown = footlights::ActorId::new("no-such-actor");
    let e = registry
        .replace_state(&unknown, Value::Null)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "not_found");
}

#[tokio::test]
async fn a_replaced_state_is_saved() {
    let driver = footlights::storage::MemoryDriver::new();
    let registry = Registry::builder()
        .actor::<Gauge>()
        .driver(driver.clone())
        .start()
        .await
        .unwrap();
    let gauge = registry.client().get_or_create::<Gauge>(["g"]);
    let id = gauge.resolve().await.unwrap();
    let state = Value::Object(vec![
        ("level".into(), Value::Int(7)),
        ("label".into(), Value::from("")),
        ("hook_runs".into(), Value::Int(0)),
    ]);
    registry.replace_state(&id, state).await.unwrap();
    registry.shutdown().await;

    let again = Registry::builder()
        .actor::<Gauge>()
        .driver(driver)
        .start()
        .await
        .unwrap();
    let gauge = again.client().get::<Gauge>(["g"]);
    assert_eq!(gauge.level().await.unwrap(), 7);
}

#[tokio::test]
async fn a_watched_actor_reports_its_actions_and_events() {
    use footlights::inspect::{Caller, LogRecord};
    let registry = Registry::builder().actor::<Gauge>().start().await.unwrap();
    let gauge = registry.client().get_or_create::<Gauge>(["g"]);
    let id = gauge.resolve().await.unwrap();
    // Made before the watch: not reported.
    gauge.raise(1).await.unwrap();

    let mut log = registry.watch(&id).await.unwrap();
    assert_eq!(gauge.raise(2).await.unwrap(), 3);
    match next_record(&mut log).await {
        LogRecord::Event(e) => {
            assert_eq!(e.name, "changed");
            assert_eq!(e.recipients, 0, "nobody subscribed");
            assert_eq!(e.preview, "[3]");
            assert_eq!(e.size, 3);
        }
        other => panic!("expected the event, got {other:?}"),
    }
    match next_record(&mut log).await {
        LogRecord::Action(a) => {
            assert_eq!(a.name, "raise");
            assert_eq!(a.caller, Caller::Stateless);
            assert_eq!(a.error, None);
        }
        other => panic!("expected the action, got {other:?}"),
    }

    let conn = gauge.connect().await.unwrap();
    let e = conn.action("noSuchAction", vec![]).await.unwrap_err();
    assert_eq!(e.code(), "action_not_found");
    match next_record(&mut log).await {
        LogRecord::Action(a) => {
            assert_eq!(a.name, "noSuchAction");
            assert_eq!(a.caller, Caller::Connection);
            assert_eq!(a.error.as_deref(), Some("actor.action_not_found"));
        }
        other => panic!("expected the failed action, got {other:?}"),
    }
    drop(conn);

    // The actor stops: the watch ends.
    registry.destroy(&id).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if log.next().await.is_none() {
                break;
            }
        }
    });
    end.await.expect("the watch ends with the actor");
}

/// The next record of `log`, within 10 s.
async fn next_record(log: &mut footlights::inspect::ActorLog) -> footlights::inspect::LogRecord {
    use footlights::inspect::LogItem;
    match tokio::time::timeout(Duration::from_secs(10), log.next()).await {
        Ok(Some(LogItem::Record(record))) => record,
        other => panic!("expected a record within 10 s, got {other:?}"),
    }
}

#[derive(Default, Serialize)]
pub struct Ticket {
    seat: String,
    /// Not for operators' eyes: the hook leaves it out.
    secret: String,
}

#[derive(Default, Serialize, Deserialize)]
pub struct Booth {}

#[footlights::actor(conn = Conns<Value, Ticket>)]
impl Booth {
    async fn create_conn_state(
        &mut self,
        _ctx: &Ctx<Self>,
        params: &Value,
        _request: &footlights::ConnRequest,
    ) -> Result<Ticket, ActionError> {
        let seat = params.get("seat").and_then(Value::as_str).unwrap_or("none");
        Ok(Ticket {
            seat: seat.to_owned(),
            secret: "hunter2".to_owned(),
        })
    }

    fn inspect_conn_state(&self, state: &Ticket) -> Option<Value> {
        footlights::to_value(&state.seat).ok()
    }

    #[action]
    fn ping(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn connections_show_their_params_and_the_state_the_actor_shows() {
    let registry = Registry::builder()
        .actor::<Booth>()
        .actor::<Gauge>()
        .start()
        .await
        .unwrap();
    let booth = registry
        .client()
        .get_or_create::<Booth>(["b"])
        .with_params(&serde_json::json!({ "seat": "12A" }));
    let conn = booth.connect().await.unwrap();
    assert_eq!(
        conn.action("ping", vec![]).await.unwrap(),
        Value::Bool(true)
    );
    let id = booth.resolve().await.unwrap();
    let view = registry
        .inspect(&id, InspectOptions::default())
        .await
        .unwrap();
    let open: Vec<_> = view.connections.iter().filter(|c| !c.ephemeral).collect();
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].params,
        Some(Value::Object(vec![("seat".into(), Value::from("12A"))]))
    );
    assert_eq!(
        open[0].state,
        Some(Value::from("12A")),
        "what the hook shows"
    );

    // Without the hook the state is not shown; params still are.
    let gauge = registry
        .client()
        .get_or_create::<Gauge>(["g"])
        .with_params(&7);
    let _gauge_conn = gauge.connect().await.unwrap();
    gauge.level().await.unwrap();
    let id = gauge.resolve().await.unwrap();
    let view = registry
        .inspect(&id, InspectOptions::default())
        .await
        .unwrap();
    let open: Vec<_> = view.connections.iter().filter(|c| !c.ephemeral).collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].params, Some(Value::Int(7)));
    assert_eq!(open[0].state, None);
}
