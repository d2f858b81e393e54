//! Actions: typed and untyped calls, results, errors, masking, panics, timeouts.

use std::time::Duration;

use footlights::prelude::*;
use footlights::{ActorOptions, Value};

#[derive(Default, Serialize, Deserialize)]
pub struct Calc {
    total: i64,
}

#[footlights::actor]
impl Calc {
    #[action]
    fn add(&mut self, a: i64, b: Option<i64>) -> i64 {
        self.total += a + b.unwrap_or(0);
        self.total
    }

    #[action]
    fn total(&self) -> i64 {
        self.total
    }

    #[action]
    fn nothing(&mut self) {}

    #[action]
    fn fail_user(&self, with_metadata: bool) -> Result<i64, ActionError> {
        let e = ActionError::user("too_big", "the number is too big");
        Err(if with_metadata {
            e.with_metadata(&serde_json::json!({"max": 10}))
        } else {
            e
        })
    }

    #[action]
    fn fail_internal(&self) -> Result<i64, ActionError> {
        Err(ActionError::internal("secret database detail"))
    }

    #[action]
    fn set_then_panic(&mut self, value: i64) -> i64 {
        self.total = value;
        panic!("boom");
    }

    #[action]
    async fn slow(&self) -> i64 {
        // Never finishes: only the timeout can answer.
        std::future::pending::<()>().await;
        1
    }

    #[action]
    fn echo(&self, value: Value) -> Value {
        value
    }

    #[action(name = "renamedAction")]
    fn renamed(&self) -> String {
        "renamed".into()
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.action_timeout = Duration::from_secs(5);
        o
    }
}

async fn calc() -> (Registry, ActorHandle<Calc>) {
    let registry = Registry::builder().actor::<Calc>().start().await.unwrap();
    let handle = registry.client().get_or_create::<Calc>(["c"]);
    (registry, handle)
}

use footlights::ActorHandle;

#[tokio::test]
async fn typed_actions_change_and_read_state() {
    let (_r, calc) = calc().await;
    assert_eq!(calc.add(2, Some(3)).await.unwrap(), 5);
    assert_eq!(calc.add(1, None).await.unwrap(), 6);
    assert_eq!(calc.total().await.unwrap(), 6);
}

#[tokio::test]
async fn untyped_calls_use_camel_case_names_and_positional_args() {
    let (_r, calc) = calc().await;
    let out = calc.action("add", vec![Value::Int(4)]).await.unwrap();
    assert_eq!(out, Value::Int(4));
    let out = calc.action("renamedAction", vec![]).await.unwrap();
    assert_eq!(out, Value::from("renamed"));
}

#[tokio::test]
async fn unknown_action_is_action_not_found() {
    let (_r, calc) = calc().await;
    let err = calc.action("nope", vec![]).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "action_not_found"));
}

#[tokio::test]
async fn action_returning_nothing_answers_null() {
    let (_r, calc) = calc().await;
    assert_eq!(calc.action("nothing", vec![]).await.unwrap(), Value::Null);
}

#[tokio::test]
async fn wrong_argument_shape_is_invalid_request() {
    let (_r, calc) = calc().await;
    let err = calc
        .action("add", vec![Value::from("x")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
}

#[tokio::test]
async fn user_errors_keep_code_and_metadata_and_absent_metadata_stays_absent() {
    let (_r, calc) = calc().await;
    let err = calc.fail_user(true).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("user", "too_big"));
    assert_eq!(err.message(), "the number is too big");
    assert_eq!(
        err.metadata().and_then(|m| m.get("max")),
        Some(&Value::Int(10))
    );
    let err = calc.fail_user(false).await.unwrap_err();
    assert!(err.metadata().is_none());
}

#[tokio::test]
async fn internal_errors_are_masked() {
    let (_r, calc) = calc().await;
    let err = calc.fail_internal().await.unwrap_err();
    assert_eq!(err.code(), "internal_error");
    assert!(
        !err.message().contains("secret"),
        "leaked: {}",
        err.message()
    );
    assert!(err.metadata().is_none());
}

#[tokio::test]
async fn a_panicking_action_is_answered_and_the_actor_keeps_its_saved_state() {
    let (_r, calc) = calc().await;
    calc.add(7, None).await.unwrap();
    let err = calc.set_then_panic(1000).await.unwrap_err();
    assert_eq!(err.code(), "internal_error");
    // The half-done change is rolled back to the last save, and the actor still serves.
    assert_eq!(calc.total().await.unwrap(), 7);
    assert_eq!(calc.add(1, None).await.unwrap(), 8);
}

#[tokio::test(start_paused = true)]
async fn an_action_past_its_timeout_answers_timed_out() {
    let (_r, calc) = calc().await;
    let err = calc.slow().await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "action_timed_out"));
    assert_eq!(
        calc.total().await.unwrap(),
        0,
        "actor still serves after a timeout"
    );
}

#[tokio::test]
async fn concurrent_callers_see_every_increment_once() {
    let (_r, calc) = calc().await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let calc = calc.clone();
        tasks.push(tokio::spawn(
            async move { calc.add(1, None).await.unwrap() },
        ));
    }
    let mut seen: Vec<i64> = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
}

#[tokio::test]
async fn values_pass_through_actions_without_losing_javascript_types() {
    let (_r, calc) = calc().await;
    let v = Value::Set(vec![
        Value::BigInt(10),
        Value::BigInt(1 << 70),
        Value::Date(1_700_000_000_000.0),
        Value::Undefined,
        Value::Bytes(vec![1, 2]),
    ]);
    assert_eq!(calc.action("echo", vec![v.clone()]).await.unwrap(), v);
    assert_eq!(calc.echo(v.clone()).await.unwrap(), v, "typed calls too");
}
