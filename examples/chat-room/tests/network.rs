//! The chat room through a real server on 127.0.0.1:0 and the network client: members,
//! messages, direct messages, kicks, the whole history kept and paged back, and the page
//! served beside the actors.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use chat_room::{
    ChatRoom, ChatRoomActions, DirectMessage, Joined, Left, Message, NewMessage, PAGE_LIMIT,
};
use footlights::prelude::{Deserialize, Serialize};
use footlights::storage::{Driver, MemoryDriver, SqliteDriver};
use footlights::{ActorHandle, Client, ConnStatus, Connection, ConnectionOptions, Registry, Value};
use footlights_server::Server;
use futures::StreamExt;
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
        seq: 1,
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

/// Sends `count` messages `m1`, `m2`, ... over `conn`, checking the seq each gets.
async fn fill(conn: &Connection<ChatRoom>, first: u64, count: u64) {
    for seq in first..first + count {
        let sent = bounded(conn.send_message(format!("m{seq}"))).await.unwrap();
        assert_eq!((sent.seq, sent.text), (seq, format!("m{seq}")));
    }
}

/// Every message, newest first, read back page by page with `historyBefore`.
async fn page_back(conn: &Connection<ChatRoom>, limit: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut before = None;
    loop {
        let page = bounded(conn.history_before(before, Some(limit)))
            .await
            .unwrap();
        assert!(page.len() as u64 <= limit);
        let Some(oldest) = page.last() else {
            return seqs;
        };
        before = Some(oldest.seq);
        for m in &page {
            assert_eq!(m.text, format!("m{}", m.seq));
            seqs.push(m.seq);
        }
    }
}

#[tokio::test]
async fn history_before_pages_back_through_every_message() {
    let server = Running::in_memory().await;
    let room = server.room("archive");
    let ann = join(&room, "ann").await;
    let total = 2 * PAGE_LIMIT as u64 + 30;
    fill(&ann, 1, total).await;

    let latest = bounded(ann.history()).await.unwrap();
    let seqs: Vec<u64> = latest.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (total - PAGE_LIMIT as u64 + 1..=total).collect::<Vec<_>>(),
        "the latest page, oldest first"
    );
    let everything: Vec<u64> = (1..=total).rev().collect();
    for limit in [PAGE_LIMIT as u64, 33] {
        assert_eq!(page_back(&ann, limit).await, everything, "limit {limit}");
    }

    let page = |seq: Option<u64>, limit: Option<u64>| ann.history_before(seq, limit);
    let seqs = |messages: Vec<Message>| messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(seqs(bounded(page(Some(5), Some(2))).await.unwrap()), [4, 3]);
    assert_eq!(
        seqs(bounded(page(Some(5), Some(0))).await.unwrap()),
        [4],
        "0 counts as 1"
    );
    let full = bounded(page(None, Some(1000))).await.unwrap();
    assert_eq!(full.len(), PAGE_LIMIT, "at most one page");
    assert_eq!(full[0].seq, total);
    assert_eq!(bounded(page(Some(total + 1), None)).await.unwrap(), full);
    assert!(bounded(page(Some(1), None)).await.unwrap().is_empty());
    let err = bounded(ann.action("historyBefore", vec![Value::from(-1)]))
        .await
        .unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "invalid_request"));
    ann.dispose().await;
    server.stop().await;
}

#[tokio::test]
async fn the_whole_history_survives_a_restart() {
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

    // More than one page: the room keeps everything, not the latest page only.
    let total = PAGE_LIMIT as u64 + 20;
    let first = start().await;
    let ann = join(&first.room("durable"), "ann").await;
    fill(&ann, 1, total).await;
    ann.dispose().await;
    first.stop().await;

    let second = start().await;
    let room = second.room("durable").with_params(&Params { name: "ann" });
    // Stateless actions: each runs on a connection of its own for one call.
    let history = bounded(room.history()).await.unwrap();
    assert_eq!(history.len(), PAGE_LIMIT);
    assert_eq!(history[0].seq, total - PAGE_LIMIT as u64 + 1);
    let ann = join(&room, "ann").await;
    assert_eq!(
        page_back(&ann, PAGE_LIMIT as u64).await,
        (1..=total).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        bounded(room.send_message(format!("m{}", total + 1)))
            .await
            .unwrap()
            .seq,
        total + 1
    );
    ann.dispose().await;
    assert_eq!(
        bounded(room.members()).await.unwrap(),
        Vec::<String>::new(),
        "stateless callers are not members"
    );
    second.stop().await;
}

/// The room as versions before the key-value store saved it: up to 100 messages in the state.
#[derive(Default, Serialize, Deserialize)]
struct OldChatRoom {
    history: Vec<OldMessage>,
    next_id: u64,
    owner: Option<String>,
    banned: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct OldMessage {
    id: u64,
    from: String,
    text: String,
}

#[footlights::actor(name = "chatRoom")]
impl OldChatRoom {
    /// Sends `count` messages from `ann` and keeps the last three.
    #[action]
    fn seed(&mut self, count: u64) {
        self.owner = Some("ann".into());
        self.banned.push("bob".into());
        for _ in 0..count {
            self.history.push(OldMessage {
                id: self.next_id,
                from: "ann".into(),
                text: format!("m{}", self.next_id + 1),
            });
            self.next_id += 1;
            if self.history.len() > 3 {
                self.history.remove(0);
            }
        }
    }
}

#[tokio::test]
async fn a_room_saved_with_its_history_in_the_state_keeps_it() {
    let driver: Arc<dyn Driver> = Arc::new(MemoryDriver::new());
    let old = Registry::builder()
        .actor::<OldChatRoom>()
        .shared_driver(driver.clone())
        .start()
        .await
        .unwrap();
    bounded(
        old.client()
            .get_or_create::<OldChatRoom>(["saved"])
            .seed(10),
    )
    .await
    .unwrap();
    old.shutdown().await;

    let registry = Registry::builder()
        .actor::<ChatRoom>()
        .shared_driver(driver)
        .start()
        .await
        .unwrap();
    let server = Running::start(registry, Path::new("/nonexistent")).await;
    let room = server.room("saved");
    let ann = room.clone().with_params(&Params { name: "ann" });
    let history = bounded(ann.history()).await.unwrap();
    let texts: Vec<(u64, &str)> = history.iter().map(|m| (m.seq, m.text.as_str())).collect();
    assert_eq!(
        texts,
        [(8, "m8"), (9, "m9"), (10, "m10")],
        "ids 7..9 are seqs 8..10"
    );
    assert_eq!(bounded(ann.owner()).await.unwrap().as_deref(), Some("ann"));
    let err = bounded(room.with_params(&Params { name: "bob" }).connect())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden", "the bans are kept");
    assert_eq!(
        bounded(ann.send_message("m11".into())).await.unwrap().seq,
        11
    );
    server.stop().await;
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
