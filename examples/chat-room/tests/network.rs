//! The chat room through a real server on 127.0.0.1:0 and the network client: members,
//! messages, direct messages, kicks, durable history, and the page served beside the actors.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use chat_room::{ChatRoom, ChatRoomActions, DirectMessage, Joined, Left, Message, NewMessage};
use footlights::storage::{MemoryDriver, SqliteDriver};
use footlights::{ActorHandle, Client, ConnStatus, Connection, ConnectionOptions, Registry};
use footlights_server::Server;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every step is bounded, so a hang fails the test instead of stalling CI.
async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("step timed out")
}

/// A running chat server: its URL, and how to stop it.
struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<footlights_server::Result<()>>,
}

impl Running {
    async fn start(registry: Registry, web_dir: &Path) -> Running {
        let server = Server::builder()
            .registry(registry)
            .fallback(chat_room::web::routes(web_dir))
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Running { url, stop, task }
    }

    async fn in_memory() -> Running {
        let registry = Registry::builder()
            .actor::<ChatRoom>()
            .driver(MemoryDriver::new())
            .start()
            .await
            .unwrap();
        Running::start(registry, Path::new("/nonexistent")).await
    }

    fn room(&self, key: &str) -> ActorHandle<ChatRoom> {
        Client::new(&self.url)
            .unwrap()
            .get_or_create::<ChatRoom>([key])
    }

    /// Graceful shutdown: returns once every actor is saved.
    async fn stop(self) {
        let _ = self.stop.send(());
        bounded(self.task).await.unwrap().unwrap();
    }
}

#[derive(Serialize)]
struct Params<'a> {
    name: &'a str,
}

/// Connects to `room` as `name`, with quick reconnects so a refused one shows up fast.
async fn join(room: &ActorHandle<ChatRoom>, name: &str) -> Connection<ChatRoom> {
    let options = ConnectionOptions::default()
        .with_backoff(Duration::from_millis(10), Duration::from_millis(100));
    bounded(
        room.clone()
            .with_params(&Params { name })
            .connect_with(options),
    )
    .await
    .unwrap()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn members_join_talk_and_leave() {
    let server = Running::in_memory().await;
    let room = server.room("lobby");
    let ann = join(&room, "ann").await;
    let mut joins = ann.events::<Joined>();
    let mut leaves = ann.events::<Left>();
    let mut ann_messages = ann.events::<NewMessage>();
    // A call on ann's connection proves her subscriptions reached the actor.
    assert_eq!(bounded(ann.members()).await.unwrap(), names(&["ann"]));

    let bob = join(&room, "bob").await;
    let joined = bounded(joins.next()).await.unwrap();
    assert_eq!(
        joined,
        Joined {
            name: "bob".into(),
            members: names(&["ann", "bob"])
        }
    );

    let sent = bounded(bob.send_message("  hello ann ".into()))
        .await
        .unwrap();
    let expected = Message {
        id: 0,
        from: "bob".into(),
        text: "hello ann".into(),
    };
    assert_eq!(sent, expected);
    assert_eq!(
        bounded(ann_messages.next()).await,
        Some(NewMessage(expected.clone()))
    );
    assert_eq!(bounded(ann.history()).await.unwrap(), vec![expected]);
    assert_eq!(
        bounded(bob.owner()).await.unwrap().as_deref(),
        Some("ann"),
        "the first to join owns the room"
    );

    let err = bounded(bob.send_message("   ".into())).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("user", "invalid_message"));

    bob.dispose().await;
    assert_eq!(
        bounded(leaves.next()).await,
        Some(Left {
            name: "bob".into(),
            members: names(&["ann"])
        })
    );
    ann.dispose().await;
    server.stop().await;
}

#[tokio::test]
async fn direct_messages_reach_one_member_only() {
    let server = Running::in_memory().await;
    let room = server.room("whispers");
    let ann = join(&room, "ann").await;
    let bob = join(&room, "bob").await;
    let cat = join(&room, "cat").await;
    let mut to_bob = bob.events::<DirectMessage>();
    let mut to_cat = cat.events::<DirectMessage>();
    bounded(bob.members()).await.unwrap();
    bounded(cat.members()).await.unwrap();

    assert_eq!(
        bounded(ann.send_direct("bob".into(), "psst".into()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        bounded(to_bob.next()).await,
        Some(DirectMessage {
            from: "ann".into(),
            text: "psst".into()
        })
    );
    // Cat's first direct message is the marker sent after: she never saw bob's.
    bounded(ann.send_direct("cat".into(), "marker".into()))
        .await
        .unwrap();
    assert_eq!(bounded(to_cat.next()).await.unwrap().text, "marker");

    let err = bounded(ann.send_direct("dan".into(), "hi".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "no_such_member");
    server.stop().await;
}

#[tokio::test]
async fn the_owner_kicks_and_the_name_stays_out() {
    let server = Running::in_memory().await;
    let room = server.room("strict");
    let ann = join(&room, "ann").await;
    let bob = join(&room, "bob").await;
    let mut leaves = ann.events::<Left>();
    bounded(ann.members()).await.unwrap();

    let err = bounded(bob.kick("ann".into(), "coup".into()))
        .await
        .unwrap_err();
    assert_eq!((err.group(), err.code()), ("auth", "forbidden"));

    let mut bob_status = bob.status();
    let mut bob_errors = bob.errors();
    assert_eq!(
        bounded(ann.kick("bob".into(), "spam".into()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        bounded(leaves.next()).await,
        Some(Left {
            name: "bob".into(),
            members: names(&["ann"])
        })
    );
    // Bob's client reconnects on its own, is refused, and gives up.
    bounded(bob_status.wait_for(|s| *s == ConnStatus::Closed))
        .await
        .unwrap();
    let refused = loop {
        let e = bounded(bob_errors.next()).await.expect("an error");
        if e.code() == "forbidden" {
            break e;
        }
    };
    assert_eq!(refused.group(), "auth");

    let err = bounded(room.clone().with_params(&Params { name: "bob" }).connect())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let err = bounded(room.clone().with_params(&Params { name: " " }).connect())
        .await
        .unwrap_err();
    assert_eq!((err.group(), err.code()), ("user", "invalid_name"));
    server.stop().await;
}

#[tokio::test]
async fn history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let start = || async {
        let registry = Registry::builder()
            .actor::<ChatRoom>()
            .driver(SqliteDriver::open(&db).await.unwrap())
            .start()
            .await
            .unwrap();
        Running::start(registry, dir.path()).await
    };

    let first = start().await;
    let ann = first.room("durable").with_params(&Params { name: "ann" });
    // Stateless actions: each runs on a connection of its own for one call.
    for text in ["one", "two"] {
        bounded(ann.send_message(text.into())).await.unwrap();
    }
    first.stop().await;

    let second = start().await;
    let ann = second.room("durable").with_params(&Params { name: "ann" });
    let history = bounded(ann.history()).await.unwrap();
    let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["one", "two"]);
    assert_eq!(
        bounded(ann.send_message("three".into())).await.unwrap().id,
        2
    );
    assert_eq!(
        bounded(ann.members()).await.unwrap(),
        Vec::<String>::new(),
        "stateless callers are not members"
    );
    second.stop().await;
}

#[tokio::test]
async fn the_page_is_served_beside_the_actors() {
    let dir = tempfile::tempdir().unwrap();
    tokio::fs::write(dir.path().join("index.html"), "<title>chat</title>")
        .await
        .unwrap();
    tokio::fs::write(dir.path().join("app.js"), "console.log(1)")
        .await
        .unwrap();
    let registry = Registry::builder()
        .actor::<ChatRoom>()
        .start()
        .await
        .unwrap();
    let server = Running::start(registry, dir.path()).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", server.url)).send();

    let page = bounded(get("/?room=lobby&name=ann")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(bounded(page.text()).await.unwrap(), "<title>chat</title>");
    let script = bounded(get("/app.js")).await.unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    for missing in ["/missing.js", "/.hidden.js", "/..%2Fsecret.js", "/app.exe"] {
        assert_eq!(
            bounded(get(missing)).await.unwrap().status(),
            404,
            "{missing}"
        );
    }
    // The actors are still there.
    assert_eq!(bounded(get("/metadata")).await.unwrap().status(), 200);
    server.stop().await;
}
