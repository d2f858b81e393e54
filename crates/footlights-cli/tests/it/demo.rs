//! The demo actors in process (no network): the rules the JavaScript tests do not reach.

use std::sync::Arc;

use footlights::prelude::*;
use footlights::storage::{Driver, MemoryDriver};
use footlights::{ActorHandle, Value};
use footlights_cli::demo::{
    self, ChatRoom, ChatRoomActions, MAX_MESSAGE_LENGTH, Message, PAGE_LIMIT, SecureRoom,
    SecureRoomActions,
};
use serde_json::json;

async fn registry() -> Registry {
    demo::registry().start().await.unwrap()
}

/// Sends `count` messages `m1`, `m2`, ... as `ann`, checking the count each answers.
async fn fill(room: &ActorHandle<ChatRoom>, count: u64) {
    for seq in 1..=count {
        assert_eq!(
            room.send_message(format!("m{seq}"), None)
                .await
                .unwrap()
                .seq,
            seq
        );
    }
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq).collect()
}

#[tokio::test]
async fn chat_history_keeps_every_message_numbered_and_returns_the_latest() {
    let registry = registry().await;
    let room = registry
        .client()
        .get_or_create::<ChatRoom>(["history"])
        .with_params(&json!({ "name": "ann" }));
    let total = PAGE_LIMIT as u64 + 5;
    fill(&room, total).await;
    let history = room.history().await.unwrap();
    assert_eq!(
        seqs(&history),
        (6..=total).collect::<Vec<_>>(),
        "latest, oldest first"
    );
    assert!(
        history
            .iter()
            .all(|m| m.text == format!("m{}", m.seq) && m.from == "ann" && m.sent_at.is_none())
    );
    // The first five are kept too.
    let oldest = room.history_before(Some(6), None).await.unwrap();
    assert_eq!(seqs(&oldest), [5, 4, 3, 2, 1]);
    assert_eq!(oldest[4].text, "m1");
}

#[tokio::test]
async fn history_before_pages_back_through_everything() {
    let registry = registry().await;
    let room = registry.client().get_or_create::<ChatRoom>(["paging"]);
    let total = 2 * PAGE_LIMIT as u64 + 50;
    fill(&room, total).await;
    for limit in [PAGE_LIMIT as u64, 7] {
        let mut seen = Vec::new();
        let mut pages = Vec::new();
        let mut before = None;
        loop {
            let page = room.history_before(before, Some(limit)).await.unwrap();
            let Some(last) = page.last() else { break };
            before = Some(last.seq);
            pages.push(page.len());
            seen.extend(page);
        }
        assert_eq!(
            seqs(&seen),
            (1..=total).rev().collect::<Vec<_>>(),
            "newest first, no gap, no duplicate (limit {limit})"
        );
        assert!(seen.iter().all(|m| m.text == format!("m{}", m.seq)));
        let full = (total / limit) as usize;
        assert!(
            pages[..full].iter().all(|&n| n as u64 == limit),
            "{pages:?}"
        );
    }
    // A page starts right below `seq`, whatever `seq` is.
    let page = room.history_before(Some(10), Some(3)).await.unwrap();
    assert_eq!(seqs(&page), [9, 8, 7]);
    let page = room
        .history_before(Some(total + 1000), Some(2))
        .await
        .unwrap();
    assert_eq!(seqs(&page), [total, total - 1]);
    for nothing_older in [1, 0] {
        assert!(
            room.history_before(Some(nothing_older), None)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn history_before_clamps_its_limit() {
    let registry = registry().await;
    let room = registry.client().get_or_create::<ChatRoom>(["limits"]);
    let total = PAGE_LIMIT as u64 + 20;
    fill(&room, total).await;
    let before = Some(total + 1);
    let count = |limit: Option<u64>| {
        let room = room.clone();
        async move { room.history_before(before, limit).await.unwrap().len() }
    };
    assert_eq!(count(None).await, PAGE_LIMIT, "no limit: a full page");
    assert_eq!(count(Some(0)).await, 1, "0 counts as 1");
    assert_eq!(count(Some(1)).await, 1);
    assert_eq!(count(Some(PAGE_LIMIT as u64 + 1)).await, PAGE_LIMIT);
    assert_eq!(count(Some(u64::MAX)).await, PAGE_LIMIT);

    // Over the wire: both arguments may be left out or null; numbers must be whole and >= 0.
    let raw = |args: Vec<Value>| room.action("historyBefore", args);
    let latest = raw(vec![]).await.unwrap();
    assert_eq!(latest, raw(vec![Value::Null, Value::Null]).await.unwrap());
    let Value::Array(latest) = latest else {
        panic!("a list: {latest:?}")
    };
    assert_eq!(latest.len(), PAGE_LIMIT);
    for bad in [
        vec![Value::from(-1)],
        vec![Value::from(5), Value::from(-1)],
        vec![Value::from(5), Value::from(1.5)],
        vec![Value::from("5")],
    ] {
        let error = raw(bad.clone()).await.unwrap_err();
        assert_eq!(
            (error.group(), error.code()),
            ("actor", "invalid_request"),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn the_message_event_carries_the_stored_message() {
    let registry = registry().await;
    let room = registry
        .client()
        .get_or_create::<ChatRoom>(["events"])
        .with_params(&json!({ "name": "bo" }));
    let conn = room.connect().await.unwrap();
    let event = conn.once::<Message>();
    // A round trip first: the subscription is in before the message is sent.
    assert_eq!(conn.conn_count().await.unwrap(), 1);
    let sent_at = Value::from(1_700_000_000_123_i64);
    let expected = Message {
        seq: 1,
        from: "bo".into(),
        text: "hi".into(),
        sent_at: Some(sent_at.clone()),
    };
    assert_eq!(
        conn.send_message("hi".into(), Some(sent_at)).await.unwrap(),
        expected
    );
    assert_eq!(event.await.unwrap(), expected);
    assert_eq!(conn.history().await.unwrap(), [expected]);
    conn.dispose().await;
}

/// The room as versions before the key-value store saved it: the last messages in the state.
#[derive(Default, Serialize, Deserialize)]
struct OldChatRoom {
    messages: u64,
    history: Vec<OldMessage>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OldMessage {
    from: String,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<Value>,
}

#[footlights::actor(name = "chatRoom")]
impl OldChatRoom {
    /// Counts `count` messages and keeps the last three, as the old room kept its last 100.
    #[action]
    fn seed(&mut self, count: u64) {
        for n in 1..=count {
            self.messages += 1;
            self.history.push(OldMessage {
                from: "old".into(),
                text: format!("m{n}"),
                sent_at: (n % 2 == 0).then(|| Value::from(n as i64)),
            });
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
    old.client()
        .get_or_create::<OldChatRoom>(["saved"])
        .seed(10)
        .await
        .unwrap();
    old.shutdown().await;

    let new = demo::registry()
        .shared_driver(driver.clone())
        .start()
        .await
        .unwrap();
    let room = new.client().get_or_create::<ChatRoom>(["saved"]);
    let history = room.history().await.unwrap();
    assert_eq!(seqs(&history), [8, 9, 10], "numbered back from the count");
    assert_eq!(
        history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["m8", "m9", "m10"]
    );
    assert_eq!(history[1].sent_at, None);
    assert_eq!(history[0].sent_at, Some(Value::from(8)));
    assert_eq!(room.send_message("new".into(), None).await.unwrap().seq, 11);
    new.shutdown().await;

    // The moved messages were stored with the rest.
    let again = demo::registry()
        .shared_driver(driver)
        .start()
        .await
        .unwrap();
    let room = again.client().get_or_create::<ChatRoom>(["saved"]);
    assert_eq!(seqs(&room.history().await.unwrap()), [8, 9, 10, 11]);
    again.shutdown().await;
}

#[tokio::test]
async fn a_too_long_message_is_refused_with_its_limit() {
    let registry = registry().await;
    let room = registry.client().get_or_create::<ChatRoom>(["long"]);
    let text = "x".repeat(MAX_MESSAGE_LENGTH + 1);
    let error = room.send_message(text, None).await.unwrap_err();
    assert_eq!((error.group(), error.code()), ("user", "message_too_long"));
    let limit = error.metadata().and_then(|m| m.get("maxLength"));
    assert_eq!(
        limit.and_then(|v| v.as_i64()),
        Some(MAX_MESSAGE_LENGTH as i64)
    );
    assert!(room.history().await.unwrap().is_empty());
    assert_eq!(
        room.send_message("ok".into(), None).await.unwrap().seq,
        1,
        "no seq used up"
    );
}

#[tokio::test]
async fn secure_room_tokens_decide_user_and_role() {
    let registry = registry().await;
    let room = registry.client().get_or_create::<SecureRoom>(["secure"]);
    let error = room.whoami().await.unwrap_err();
    assert_eq!((error.group(), error.code()), ("auth", "forbidden"));

    let user = room
        .clone()
        .with_params(&json!({ "authToken": "user-token" }));
    let me = user.whoami().await.unwrap();
    assert_eq!((me.user.as_str(), me.role), ("ursula", demo::Role::User));
    assert_eq!(user.admin_only().await.unwrap_err().code(), "forbidden");

    let admin = room.with_params(&json!({ "authToken": "admin-token" }));
    assert_eq!(admin.whoami().await.unwrap().role, demo::Role::Admin);
    assert_eq!(admin.admin_only().await.unwrap(), 1);
    assert_eq!(admin.admin_only().await.unwrap(), 2);
}

#[tokio::test]
async fn kick_disconnects_members_by_name() {
    let registry = registry().await;
    let client = registry.client();
    let room = client.get_or_create::<ChatRoom>(["kick"]);
    let bo = room
        .clone()
        .with_params(&json!({ "name": "bo" }))
        .connect()
        .await
        .unwrap();
    assert_eq!(bo.conn_count().await.unwrap(), 1);
    assert_eq!(room.kick("nobody".into(), None).await.unwrap(), 0);
    assert_eq!(room.kick("bo".into(), Some("bye".into())).await.unwrap(), 1);
    bo.dispose().await;
}

#[tokio::test]
async fn ping_answers_its_argument() {
    let registry = registry().await;
    let room = registry.client().get_or_create::<ChatRoom>(["ping"]);
    let value = Value::from("pong");
    assert_eq!(
        room.action("ping", vec![value.clone()]).await.unwrap(),
        value
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_added_searched_counted_and_deleted_in_the_actors_database() {
    use demo::{Notes, NotesActions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let open = || async {
        demo::registry()
            .driver(
                footlights::storage::SqliteDriver::open(&path)
                    .await
                    .unwrap(),
            )
            .start()
            .await
            .unwrap()
    };
    let registry = open().await;
    let notes = registry.client().get_or_create::<Notes>(["mine"]);
    let milk = notes.add_note("Buy milk and eggs".into()).await.unwrap();
    let call = notes
        .add_note("Call Ann about the milk".into())
        .await
        .unwrap();
    let plan = notes.add_note("Plan the trip".into()).await.unwrap();
    assert_eq!((milk, call, plan), (1, 2, 3));
    assert_eq!(notes.count().await.unwrap(), 3);
    let found = notes.search("MILK".into()).await.unwrap();
    assert_eq!(
        found.iter().map(|n| n.id).collect::<Vec<_>>(),
        [call, milk],
        "newest first, any case"
    );
    assert_eq!(found[1].text, "Buy milk and eggs");
    assert!(found[0].created_at > 0);
    assert_eq!(notes.search("milk ann".into()).await.unwrap().len(), 1);
    // Query syntax from a client is only text.
    assert!(
        notes
            .search("\"milk\" OR (".into())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(notes.search("   ".into()).await.unwrap().is_empty());
    let err = notes.add_note(" ".into()).await.unwrap_err();
    assert_eq!(err.code(), "invalid_note");

    assert!(notes.delete_note(milk).await.unwrap());
    assert!(!notes.delete_note(milk).await.unwrap(), "already gone");
    assert_eq!(
        notes.search("milk".into()).await.unwrap().len(),
        1,
        "the index followed"
    );
    registry.shutdown().await;

    // A restart on the same file: the notes are there, ids are not reused.
    let registry = open().await;
    let notes = registry.client().get::<Notes>(["mine"]);
    assert_eq!(notes.count().await.unwrap(), 2);
    assert_eq!(notes.search("trip".into()).await.unwrap()[0].id, plan);
    assert_eq!(notes.add_note("New".into()).await.unwrap(), 4);
}
