//! The driver against a scripted transport, on a paused clock: backoff, classification of
//! failures, queued actions, resume tokens and dispose, with no I/O.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use footlights_protocol::{ActionError, ActorId, ActorKey, ConnId, ToClient, ToServer, Value};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{ConnStatus, Connection, ConnectionOptions};
use crate::handle::{Client, Untyped};
use crate::transport::{CloseReason, Link, LinkEvent, LinkSender, ResumeToken, Target, Transport};

/// The test's end of a link the driver opened.
struct Remote {
    /// Messages the client sent.
    sent: mpsc::UnboundedReceiver<ToServer>,
    /// What the test sends to the client.
    events: mpsc::UnboundedSender<LinkEvent>,
}

impl Remote {
    fn init(&self, conn: &str, token: Option<&str>) {
        let _ = self.events.send(LinkEvent::Message(ToClient::Init {
            actor_id: ActorId::new("a1"),
            connection_id: ConnId::new(conn),
            connection_token: token.map(str::to_owned),
        }));
    }

    fn close(&self, reason: CloseReason) {
        let _ = self.events.send(LinkEvent::Closed(reason));
    }

    async fn next(&mut self) -> ToServer {
        self.sent.recv().await.expect("the client sent something")
    }
}

#[derive(Debug)]
struct FakeSender(mpsc::UnboundedSender<ToServer>);

impl LinkSender for FakeSender {
    fn send(&self, msg: ToServer) -> Result<(), ActionError> {
        self.0
            .send(msg)
            .map_err(|_| crate::error::connection_closed())
    }
    fn close(&self) {}
}

/// One attempt as the transport saw it.
#[derive(Debug, Clone, PartialEq)]
struct Attempt {
    at: Instant,
    resume: Option<ResumeToken>,
}

/// Answers attempts from a script: an error, or a link whose other end goes to the test.
#[derive(Debug, Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<(), ActionError>>>,
    attempts: Mutex<Vec<Attempt>>,
    remotes: Mutex<Option<mpsc::UnboundedSender<Remote>>>,
}

impl Scripted {
    fn attempt(&self, resume: Option<&ResumeToken>) -> Result<Link, ActionError> {
        self.attempts.lock().unwrap().push(Attempt {
            at: Instant::now(),
            resume: resume.cloned(),
        });
        let answer = self.answers.lock().unwrap().pop_front().unwrap_or(Ok(()));
        answer?;
        let (sent_tx, sent) = mpsc::unbounded_channel();
        let (events, events_rx) = mpsc::unbounded_channel();
        if let Some(remotes) = &*self.remotes.lock().unwrap() {
            let _ = remotes.send(Remote { sent, events });
        }
        Ok(Link {
            sender: Box::new(FakeSender(sent_tx)),
            events: events_rx,
            backlog: Default::default(),
        })
    }
}

#[derive(Debug, Clone)]
struct FakeTransport(Arc<Scripted>);

impl Transport for FakeTransport {
    fn resolve<'a>(&'a self, _: &'a Target) -> BoxFuture<'a, Result<ActorId, ActionError>> {
        Box::pin(async { Ok(ActorId::new("a1")) })
    }
    fn create<'a>(
        &'a self,
        _: &'a str,
        _: &'a ActorKey,
        _: Option<Value>,
    ) -> BoxFuture<'a, Result<ActorId, ActionError>> {
        Box::pin(async { Ok(ActorId::new("a1")) })
    }
    fn action<'a>(
        &'a self,
        _: &'a Target,
        _: &'a str,
        _: Vec<Value>,
        _: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async { Ok(Value::Null) })
    }
    fn connect<'a>(
        &'a self,
        _: &'a Target,
        _: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Link, ActionError>> {
        Box::pin(async { self.0.attempt(None) })
    }
    fn resume<'a>(
        &'a self,
        _: &'a Target,
        _: Option<&'a Value>,
        resume: &'a ResumeToken,
    ) -> BoxFuture<'a, Result<Link, ActionError>> {
        Box::pin(async { self.0.attempt(Some(resume)) })
    }
}

struct Harness {
    script: Arc<Scripted>,
    remotes: mpsc::UnboundedReceiver<Remote>,
    client: Client,
}

impl Harness {
    fn new(answers: impl IntoIterator<Item = Result<(), ActionError>>) -> Harness {
        let (tx, remotes) = mpsc::unbounded_channel();
        let script = Arc::new(Scripted {
            answers: Mutex::new(answers.into_iter().collect()),
            attempts: Mutex::default(),
            remotes: Mutex::new(Some(tx)),
        });
        Harness {
            client: Client::from_transport(FakeTransport(script.clone())),
            script,
            remotes,
        }
    }

    async fn connect(&self, target: Target) -> Result<Connection<Untyped>, ActionError> {
        connect(&self.client, target).await
    }

    /// Connects with a first attempt that succeeds: the link gets `Init` (with `token`).
    async fn connect_linked(&mut self, token: Option<&str>) -> (Connection<Untyped>, Remote) {
        let linking = async {
            let remote = self.remotes.recv().await.expect("a link was opened");
            remote.init("c1", token);
            remote
        };
        let (conn, remote) = tokio::join!(connect(&self.client, by_key()), linking);
        (conn.expect("connected"), remote)
    }

    async fn remote(&mut self) -> Remote {
        self.remotes.recv().await.expect("a link was opened")
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.script.attempts.lock().unwrap().clone()
    }
}

async fn connect(client: &Client, target: Target) -> Result<Connection<Untyped>, ActionError> {
    let options = ConnectionOptions::default()
        .with_backoff(Duration::from_millis(100), Duration::from_secs(1));
    client.handle_for(target).connect_with(options).await
}

fn by_key() -> Target {
    Target::GetOrCreate {
        name: "room".into(),
        key: ActorKey::from("k"),
        input: None,
    }
}

fn network() -> ActionError {
    crate::error::request_failed("refused")
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_growing_delays() {
    let mut h = Harness::new([Err(network()), Err(network()), Err(network())]);
    let start = Instant::now();
    let conn = h.connect(by_key()).await.unwrap();
    assert_eq!(*conn.status().borrow(), ConnStatus::Reconnecting);
    let remote = h.remote().await;
    remote.init("c1", None);
    let mut status = conn.status();
    status.wait_for(ConnStatus::is_connected).await.unwrap();
    let attempts = h.attempts();
    assert_eq!(attempts.len(), 4);
    // Delay n is drawn from [base/2, min(cap, base·2ⁿ)].
    let bounds = [(50, 100), (50, 200), (50, 400)];
    for (pair, (lo, hi)) in attempts.windows(2).zip(bounds) {
        let waited = pair[1].at - pair[0].at;
        assert!(
            waited >= Duration::from_millis(lo) && waited <= Duration::from_millis(hi),
            "{waited:?} not in [{lo}, {hi}] ms"
        );
    }
    assert!(attempts[0].at == start);
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_stops_retrying_and_is_reported() {
    let h = Harness::new([Err(network()), Err(ActionError::forbidden("no"))]);
    let conn = h.connect(by_key()).await.unwrap();
    let mut errors = conn.errors();
    let mut status = conn.status();
    status.wait_for(|s| *s == ConnStatus::Closed).await.unwrap();
    assert_eq!(errors.next().await.unwrap().code(), "forbidden");
    assert_eq!(h.attempts().len(), 2);
    // Nothing else happens, however long we wait.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(h.attempts().len(), 2);
    let e = conn.action("x", vec![]).await.unwrap_err();
    assert_eq!(e.code(), "connection_closed");
}

#[tokio::test(start_paused = true)]
async fn not_found_is_retried_only_for_get_handles() {
    let by_id = Target::Id {
        name: "room".into(),
        id: ActorId::new("gone"),
    };
    let h = Harness::new([Err(ActionError::actor_not_found("gone"))]);
    assert_eq!(h.connect(by_id).await.unwrap_err().code(), "not_found");
    let h = Harness::new([Err(ActionError::actor_not_found("no such type"))]);
    assert_eq!(h.connect(by_key()).await.unwrap_err().code(), "not_found");
    let get = Target::Get {
        name: "room".into(),
        key: ActorKey::from("later"),
    };
    let mut h = Harness::new([Err(ActionError::actor_not_found("not yet"))]);
    let conn = h.connect(get).await.unwrap();
    let remote = h.remote().await;
    remote.init("c1", None);
    conn.status()
        .wait_for(ConnStatus::is_connected)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn queued_actions_follow_the_subscriptions_once_linked() {
    let mut h = Harness::new([Err(network())]);
    let conn = h.connect(by_key()).await.unwrap();
    let events = conn.on_raw("newCount");
    let calls: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.action(name, vec![]).await })
        })
        .collect();
    tokio::task::yield_now().await;
    let mut remote = h.remote().await;
    remote.init("c1", None);
    assert_eq!(
        remote.next().await,
        ToServer::SubscriptionRequest {
            event_name: "newCount".into(),
            subscribe: true
        }
    );
    let mut names = Vec::new();
    for _ in 0..2 {
        let ToServer::ActionRequest { id, name, .. } = remote.next().await else {
            panic!("expected an action");
        };
        names.push(name);
        let _ = remote
            .events
            .send(LinkEvent::Message(ToClient::ActionResponse {
                id,
                output: Value::Int(i64::try_from(id).unwrap()),
            }));
    }
    names.sort();
    assert_eq!(names, ["a", "b"]);
    for call in calls {
        assert!(call.await.unwrap().is_ok());
    }
    drop(events);
}

#[tokio::test(start_paused = true)]
async fn a_broken_link_is_resumed_and_a_closed_one_is_not() {
    let mut h = Harness::new([]);
    let (conn, mut first) = h.connect_linked(Some("secret")).await;
    assert!(conn.status().borrow().is_connected());

    // An action in flight when the link breaks fails; the next attempt resumes.
    let held = tokio::spawn({
        let conn = conn.clone();
        async move { conn.action("hold", vec![]).await }
    });
    assert!(matches!(first.next().await, ToServer::ActionRequest { .. }));
    first.close(CloseReason::dropped());
    let e = held.await.unwrap().unwrap_err();
    assert_eq!(e.code(), "connection_lost");
    let second = h.remote().await;
    let token = ResumeToken {
        conn_id: ConnId::new("c1"),
        token: "secret".into(),
    };
    assert_eq!(h.attempts()[1].resume.as_ref(), Some(&token));
    assert_eq!(
        h.attempts()[1].at,
        h.attempts()[0].at,
        "a drop is retried at once"
    );

    // A close from the server ends the connection there: the next one starts fresh.
    second.init("c1", Some("secret"));
    conn.status()
        .wait_for(ConnStatus::is_connected)
        .await
        .unwrap();
    second.close(CloseReason::normal("kicked"));
    let third = h.remote().await;
    assert_eq!(h.attempts()[2].resume, None);
    third.init("c2", Some("other"));
    let status = conn
        .status()
        .wait_for(
            |s| matches!(s, ConnStatus::Connected { conn_id, .. } if conn_id.as_str() == "c2"),
        )
        .await
        .unwrap()
        .clone();
    assert!(status.is_connected());
}

#[tokio::test(start_paused = true)]
async fn a_refused_resume_falls_back_to_a_new_connection_at_once() {
    let mut h = Harness::new([]);
    let (conn, first) = h.connect_linked(Some("secret")).await;
    assert!(conn.status().borrow().is_connected());
    first.close(CloseReason::dropped());
    let second = h.remote().await;
    let refused = ActionError::new("connection", "resume_refused", "wrong token");
    let _ = second.events.send(LinkEvent::Message(ToClient::Error {
        error: refused.clone(),
        action_id: None,
    }));
    second.close(CloseReason::error(&refused));
    let third = h.remote().await;
    let attempts = h.attempts();
    assert_eq!(attempts[2].resume, None);
    assert_eq!(attempts[2].at, attempts[1].at);
    third.init("c9", None);
    conn.status()
        .wait_for(ConnStatus::is_connected)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn dispose_while_waiting_cancels_the_retry() {
    let h = Harness::new([Err(network()), Err(network())]);
    let conn = h.connect(by_key()).await.unwrap();
    let mut events = conn.on_raw("x");
    let queued = tokio::spawn({
        let conn = conn.clone();
        async move { conn.action("later", vec![]).await }
    });
    tokio::task::yield_now().await;
    conn.dispose().await;
    assert_eq!(*conn.status().borrow(), ConnStatus::Closed);
    assert_eq!(
        queued.await.unwrap().unwrap_err().code(),
        "connection_closed"
    );
    assert!(events.next().await.is_none());
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(h.attempts().len(), 1, "no attempt after dispose");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_followed_by_a_broken_link_is_still_a_refusal() {
    let mut h = Harness::new([]);
    let refusing = async {
        let remote = h.remotes.recv().await.expect("a link was opened");
        let _ = remote.events.send(LinkEvent::Message(ToClient::Error {
            error: ActionError::forbidden("no").with_metadata(&"why"),
            action_id: None,
        }));
        remote.close(CloseReason::dropped());
    };
    let (conn, ()) = tokio::join!(connect(&h.client, by_key()), refusing);
    let e = conn.unwrap_err();
    assert_eq!((e.code(), e.message()), ("forbidden", "no"));
    assert!(e.metadata().is_some());
    assert_eq!(h.attempts().len(), 1);
}
