//! Durable queues and the run loop: sends, completions, limits, and what survives a restart.

use std::time::Duration;

use footlights::prelude::*;
use footlights::queue::{NextOptions, QueueOptions, Queues, SendOptions, SendOutcome};
use footlights::storage::SqliteDriver;
use footlights::{ActorOptions, ConnRequest, RunSignal, Value};

use crate::support::settle;

#[derive(Deserialize)]
pub struct Job {
    n: i64,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Doubled {
    doubled: i64,
}

/// Doubles every job of queue `jobs` in its run loop.
#[derive(Default, Serialize, Deserialize)]
pub struct Doubler {
    processed: u64,
}

#[footlights::actor]
impl Doubler {
    #[action]
    fn processed(&self) -> u64 {
        self.processed
    }

    fn queues(queues: &mut Queues<Self>) {
        queues.add::<Job>("jobs", QueueOptions::default());
    }

    async fn run(ctx: Ctx<Self>, signal: RunSignal) -> Result<(), ActionError> {
        let options = NextOptions::default().signal(signal);
        while let Some(job) = ctx.queue().next::<Job>("jobs", options.clone()).await? {
            let n = job.body.n;
            job.complete_with(move |this: &mut Doubler, _| {
                this.processed += 1;
                Ok(Doubled { doubled: 2 * n })
            })
            .await?;
        }
        Ok(())
    }
}

/// Keeps what it is sent until asked: no run loop.
#[derive(Default, Serialize, Deserialize)]
pub struct Inbox {}

#[footlights::actor]
impl Inbox {
    /// Takes every ready message, in order.
    #[action]
    async fn drain(&mut self, ctx: &Ctx<Self>) -> Result<Vec<String>, ActionError> {
        let taken = ctx.queue().try_next_batch::<String>("mail", 100).await?;
        Ok(taken.into_iter().map(|m| m.body.clone()).collect())
    }

    #[action]
    fn len(&self, ctx: &Ctx<Self>) -> usize {
        ctx.queue().len("mail")
    }

    fn queues(queues: &mut Queues<Self>) {
        queues.add::<String>(
            "mail",
            QueueOptions::default().max_len(3).max_message_bytes(64),
        );
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(1);
        o
    }
}

async fn send(
    registry: &Registry,
    target: &footlights_client::Target,
    queue: &str,
    body: Value,
    options: SendOptions,
) -> Result<SendOutcome, ActionError> {
    registry
        .send(target, queue, body, None, ConnRequest::local(), options)
        .await
}

fn job(n: i64) -> Value {
    Value::Object(vec![("n".into(), Value::Int(n))])
}

#[tokio::test]
async fn a_run_loop_completes_what_a_waiting_sender_sent() {
    let registry = Registry::builder()
        .actor::<Doubler>()
        .start()
        .await
        .unwrap();
    let handle = registry.client().get_or_create::<Doubler>(["d"]);
    let out = send(
        &registry,
        handle.target(),
        "jobs",
        job(21),
        SendOptions::wait(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let SendOutcome::Completed(Some(response)) = out else {
        panic!("not completed with a response: {out:?}");
    };
    let doubled: Doubled = footlights::__private::protocol::from_value(response).unwrap();
    assert_eq!(doubled, Doubled { doubled: 42 });
    assert_eq!(handle.processed().await.unwrap(), 1);

    // Without waiting: answered once stored, processed soon after.
    for n in 0..5 {
        let out = send(
            &registry,
            handle.target(),
            "jobs",
            job(n),
            SendOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(out, SendOutcome::Completed(None));
    }
    settle("five more jobs processed", || async {
        handle.processed().await.unwrap() == 6
    })
    .await;
}

#[tokio::test]
async fn sends_break_no_limit_unnoticed() {
    let registry = Registry::builder()
        .actor::<Doubler>()
        .actor::<Inbox>()
        .start()
        .await
        .unwrap();
    let doubler = registry.client().get_or_create::<Doubler>(["d"]);
    let e = send(
        &registry,
        doubler.target(),
        "other",
        job(1),
        SendOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!((e.group(), e.code()), ("auth", "forbidden"), "{e}");
    let e = send(
        &registry,
        doubler.target(),
        "jobs",
        Value::String("not a job".into()),
        SendOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!((e.group(), e.code()), ("queue", "invalid_message"), "{e}");

    let inbox = registry.client().get_or_create::<Inbox>(["i"]);
    let e = send(
        &registry,
        inbox.target(),
        "mail",
        Value::String("x".repeat(100)),
        SendOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!((e.group(), e.code()), ("queue", "message_too_large"), "{e}");
    for i in 0..3 {
        send(
            &registry,
            inbox.target(),
            "mail",
            Value::String(format!("m{i}")),
            SendOptions::default(),
        )
        .await
        .unwrap();
    }
    let e = send(
        &registry,
        inbox.target(),
        "mail",
        Value::String("one too many".into()),
        SendOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!((e.group(), e.code()), ("actor", "overloaded"), "{e}");
    let metadata = serde_json::to_value(e.metadata().unwrap()).unwrap();
    assert_eq!(
        metadata,
        serde_json::json!({"channel": "dispatch_inbox", "operation": "dispatch_queue_send"})
    );
    assert_eq!(inbox.drain().await.unwrap(), ["m0", "m1", "m2"]);
    assert_eq!(inbox.len().await.unwrap(), 0, "taken messages are removed");
}

#[tokio::test]
async fn a_wait_times_out_and_the_message_stays() {
    let registry = Registry::builder().actor::<Inbox>().start().await.unwrap();
    let inbox = registry.client().get_or_create::<Inbox>(["i"]);
    let out = send(
        &registry,
        inbox.target(),
        "mail",
        Value::String("later".into()),
        SendOptions::wait(Duration::from_millis(50)),
    )
    .await
    .unwrap();
    assert_eq!(out, SendOutcome::TimedOut);
    assert_eq!(inbox.drain().await.unwrap(), ["later"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queues.db");
    {
        let registry = Registry::builder()
            .actor::<Inbox>()
            .driver(SqliteDriver::open(&path).await.unwrap())
            .start()
            .await
            .unwrap();
        let inbox = registry.client().get_or_create::<Inbox>(["i"]);
        for body in ["a", "b"] {
            send(
                &registry,
                inbox.target(),
                "mail",
                Value::String(body.into()),
                SendOptions::default(),
            )
            .await
            .unwrap();
        }
        registry.shutdown().await;
    }
    let registry = Registry::builder()
        .actor::<Inbox>()
        .driver(SqliteDriver::open(&path).await.unwrap())
        .start()
        .await
        .unwrap();
    let inbox = registry.client().get::<Inbox>(["i"]);
    assert_eq!(inbox.len().await.unwrap(), 2, "both messages are back");
    assert_eq!(inbox.drain().await.unwrap(), ["a", "b"]);
    registry.shutdown().await;
    let registry = Registry::builder()
        .actor::<Inbox>()
        .driver(SqliteDriver::open(&path).await.unwrap())
        .start()
        .await
        .unwrap();
    let inbox = registry.client().get::<Inbox>(["i"]);
    assert_eq!(inbox.len().await.unwrap(), 0, "taken messages stay removed");
}

#[tokio::test(start_paused = true)]
async fn queued_messages_survive_a_sleep() {
    let registry = Registry::builder().actor::<Inbox>().start().await.unwrap();
    let inbox = registry.client().get_or_create::<Inbox>(["i"]);
    send(
        &registry,
        inbox.target(),
        "mail",
        Value::String("kept".into()),
        SendOptions::default(),
    )
    .await
    .unwrap();
    // Its sleep timeout is 1 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    crate::support::until_awake(&registry, 0).await;
    assert_eq!(inbox.drain().await.unwrap(), ["kept"]);
}

/// A run loop that fails at once, counting its starts.
#[derive(Default, Serialize, Deserialize)]
pub struct Flaky {}

static FLAKY_STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[footlights::actor]
impl Flaky {
    #[action]
    fn ping(&self) -> u8 {
        1
    }

    async fn run(_ctx: Ctx<Self>, _signal: RunSignal) -> Result<(), ActionError> {
        FLAKY_STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(ActionError::user_error("boom"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_run_loop_restarts_with_growing_delays_while_actions_are_served() {
    use std::sync::atomic::Ordering::SeqCst;
    let registry = Registry::builder().actor::<Flaky>().start().await.unwrap();
    let flaky = registry.client().get_or_create::<Flaky>(["f"]);
    assert_eq!(flaky.ping().await.unwrap(), 1);
    settle("the first run", || async { FLAKY_STARTS.load(SeqCst) == 1 }).await;
    // Restarts after 1 s, then 2 s, then 4 s.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(FLAKY_STARTS.load(SeqCst), 2);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(FLAKY_STARTS.load(SeqCst), 2, "the second delay is longer");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(FLAKY_STARTS.load(SeqCst), 3);
    assert_eq!(flaky.ping().await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_run_loop_waiting_for_work_lets_its_actor_sleep_and_a_send_wakes_it() {
    let registry = Registry::builder()
        .actor::<Doubler>()
        .start()
        .await
        .unwrap();
    let handle = registry.client().get_or_create::<Doubler>(["d"]);
    assert_eq!(handle.processed().await.unwrap(), 0);
    crate::support::until_awake(&registry, 1).await;
    // The default sleep timeout is 30 s; the loop only waits for a message.
    tokio::time::sleep(Duration::from_secs(65)).await;
    crate::support::until_awake(&registry, 0).await;
    let out = send(
        &registry,
        handle.target(),
        "jobs",
        job(5),
        SendOptions::wait(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    assert!(matches!(out, SendOutcome::Completed(Some(_))), "{out:?}");
    assert_eq!(handle.processed().await.unwrap(), 1, "the count was saved");
}

#[tokio::test]
async fn the_in_process_client_and_other_actors_send_through_handles() {
    let registry = Registry::builder()
        .actor::<Doubler>()
        .start()
        .await
        .unwrap();
    let handle = registry.client().get_or_create::<Doubler>(["h"]);
    let out = handle
        .enqueue_and_wait(
            "jobs",
            &Value::Object(vec![("n".into(), Value::Int(4))]),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let SendOutcome::Completed(Some(response)) = out else {
        panic!("not completed: {out:?}");
    };
    assert_eq!(response.get("doubled"), Some(&Value::Int(8)));
    handle
        .enqueue("jobs", &Value::Object(vec![("n".into(), Value::Int(1))]))
        .await
        .unwrap();
    let e = handle.enqueue("nope", &Value::Int(1)).await.unwrap_err();
    assert_eq!(e.code(), "forbidden");
}

static RELEASE: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>> =
    std::sync::Mutex::new(None);
static FINISHED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Holds itself awake, or delays its sleep, until the test releases it.
#[derive(Default, Serialize, Deserialize)]
pub struct Holder {}

#[footlights::actor]
impl Holder {
    /// Keeps the actor awake from a task of its own until released.
    #[action]
    fn hold_awake(&self, ctx: &Ctx<Self>) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        *RELEASE.lock().unwrap() = Some(tx);
        let ctx = ctx.clone();
        tokio::spawn(async move { ctx.keep_awake(rx).await });
    }

    /// Goes to sleep, with a task the sleep waits for.
    #[action]
    fn sleep_after_work(&self, ctx: &Ctx<Self>) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        *RELEASE.lock().unwrap() = Some(tx);
        ctx.wait_until(async move {
            let _ = rx.await;
            FINISHED.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        ctx.sleep();
    }

    fn options() -> ActorOptions {
        let mut o = ActorOptions::default();
        o.sleep_timeout = Duration::from_secs(1);
        o.run_grace = Duration::from_secs(600);
        o
    }
}

#[tokio::test(start_paused = true)]
async fn keep_awake_holds_the_actor_and_wait_until_delays_its_sleep() {
    let registry = Registry::builder().actor::<Holder>().start().await.unwrap();
    let holder = registry.client().get_or_create::<Holder>(["h"]);
    holder.hold_awake().await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(registry.awake_count(), 1, "held awake past its timeout");
    let _ = RELEASE.lock().unwrap().take().unwrap().send(());
    tokio::time::sleep(Duration::from_secs(5)).await;
    crate::support::until_awake(&registry, 0).await;

    holder.sleep_after_work().await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(registry.awake_count(), 1, "the sleep waits for the task");
    assert!(!FINISHED.load(std::sync::atomic::Ordering::SeqCst));
    let _ = RELEASE.lock().unwrap().take().unwrap().send(());
    crate::support::until_awake(&registry, 0).await;
    assert!(FINISHED.load(std::sync::atomic::Ordering::SeqCst));
}
