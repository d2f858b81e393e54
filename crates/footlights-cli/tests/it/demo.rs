//! The demo actors in process (no network): the rules the JavaScript tests do not reach.

use footlights::Registry;
use footlights_cli::demo::{
    self, ChatRoom, ChatRoomActions, HISTORY_LIMIT, MAX_MESSAGE_LENGTH, SecureRoom,
    SecureRoomActions,
};
use serde_json::json;

async fn registry() -> Registry {
    demo::registry().start().await.unwrap()
}

#[tokio::test]
async fn chat_history_keeps_the_last_messages_and_counts_all() {
    let registry = registry().await;
    let room = registry
        .client()
        .get_or_create::<ChatRoom>(["history"])
        .with_params(&json!({ "name": "ann" }));
    let total = HISTORY_LIMIT + 5;
    for i in 0..total {
        let sent = room.send_message(format!("m{i}"), None).await.unwrap();
        assert_eq!(sent, i as u64 + 1);
    }
    let history = room.get_history().await.unwrap();
    assert_eq!(history.len(), HISTORY_LIMIT);
    assert_eq!(history[0].text, "m5");
    assert_eq!(history[HISTORY_LIMIT - 1].text, format!("m{}", total - 1));
    assert!(
        history
            .iter()
            .all(|m| m.from == "ann" && m.sent_at.is_none())
    );
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
    assert!(room.get_history().await.unwrap().is_empty());
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
    let value = footlights::Value::from("pong");
    assert_eq!(
        room.action("ping", vec![value.clone()]).await.unwrap(),
        value
    );
}
