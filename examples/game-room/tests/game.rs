//! The game room end to end: auth, roles and the admin-only action through a real server on
//! 127.0.0.1:0 with the network client; the round timer and the leaderboard call in process,
//! on a paused clock, so a 60-second round takes no time and no sleeps.

// Helpers outside `#[test]` functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use footlights::{ActorHandle, Client, Registry};
use footlights_server::Server;
use futures::StreamExt;
use game_room::token::sign;
use game_room::{
    Claims, GameRoom, GameRoomActions, JoinParams, LEADERBOARD_KEY, Leaderboard,
    LeaderboardActions, Role, RoundEnded, RoundStarted, Seat, Standing,
};
use serde_json::json;
use tokio::sync::oneshot;

const SECRET: &[u8] = b"test secret";

/// The registry both halves use; installs the test secret (once per process).
async fn registry() -> Registry {
    game_room::install_secret(SECRET);
    Registry::builder()
        .actor::<GameRoom>()
        .actor::<Leaderboard>()
        .start()
        .await
        .unwrap()
}

fn token(player: &str, role: Role) -> String {
    sign(
        SECRET,
        &Claims {
            player: player.into(),
            role,
        },
    )
}

/// A handle to room `key` carrying `player`'s token.
fn as_player(client: &Client, key: &str, player: &str, role: Role) -> ActorHandle<GameRoom> {
    client
        .get_or_create::<GameRoom>([key])
        .with_params(&JoinParams {
            token: Some(token(player, role)),
        })
}

// --- Over the network -------------------------------------------------------------------

/// Every network step is bounded, so a hang fails the test instead of stalling CI.
async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("step timed out")
}

/// Serves a fresh registry on 127.0.0.1:0; returns its URL and the stop switch.
async fn serve() -> (String, oneshot::Sender<()>) {
    let server = Server::builder()
        .registry(registry().await)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    (url, stop)
}

#[tokio::test]
async fn connections_without_a_valid_token_are_refused() {
    let (url, _stop) = serve().await;
    let client = Client::new(&url).unwrap();
    let room = client.get_or_create::<GameRoom>(["arena"]);

    let err = bounded(room.connect()).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("auth", "unauthorized"));

    let forged = sign(
        b"not the secret",
        &Claims {
            player: "eve".into(),
            role: Role::Admin,
        },
    );
    let err = bounded(
        room.clone()
            .with_params(&json!({ "token": forged }))
            .connect(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "unauthorized");

    // Promoting oneself by editing the token breaks its signature.
    let promoted = token("ann", Role::Player).replacen(".player.", ".admin.", 1);
    let err = bounded(
        room.clone()
            .with_params(&json!({ "token": promoted }))
            .room_status(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.code(),
        "unauthorized",
        "stateless calls are checked too"
    );

    let ann = bounded(as_player(&client, "arena", "ann", Role::Player).connect())
        .await
        .unwrap();
    assert_eq!(
        bounded(ann.whoami()).await.unwrap(),
        Seat {
            player: "ann".into(),
            role: Role::Player
        }
    );
}

#[tokio::test]
async fn only_admins_start_rounds_and_the_timer_ends_them() {
    let (url, _stop) = serve().await;
    let client = Client::new(&url).unwrap();
    let ann = bounded(as_player(&client, "arena", "ann", Role::Player).connect())
        .await
        .unwrap();
    let root = bounded(as_player(&client, "arena", "root", Role::Admin).connect())
        .await
        .unwrap();
    let mut started = ann.events::<RoundStarted>();
    let mut ended = ann.events::<RoundEnded>();
    bounded(ann.room_status()).await.unwrap(); // ann's subscriptions have arrived

    let err = bounded(ann.start_round(1000)).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("auth", "forbidden"));
    let err = bounded(ann.end_round(1)).await.unwrap_err();
    assert_eq!(err.code(), "forbidden", "clients cannot end rounds early");

    // A short real round: nobody taps, so the result does not depend on timing.
    assert_eq!(bounded(root.start_round(50)).await.unwrap(), 1);
    assert_eq!(
        bounded(started.next()).await,
        Some(RoundStarted {
            round: 1,
            duration_ms: 50
        })
    );
    let result = bounded(ended.next()).await.unwrap();
    assert_eq!((result.round, result.winner), (1, None));
    assert!(!bounded(root.room_status()).await.unwrap().running);

    // Anyone may read the leaderboard; nobody outside the backend may write it.
    let board = client.get_or_create::<Leaderboard>([LEADERBOARD_KEY]);
    assert_eq!(bounded(board.top(10)).await.unwrap(), vec![]);
    let err = bounded(board.record_win("ann".into())).await.unwrap_err();
    assert_eq!(err.code(), "forbidden");
    let as_ann = board.with_params(&json!({ "token": token("ann", Role::Player) }));
    let err = bounded(as_ann.record_win("ann".into())).await.unwrap_err();
    assert_eq!(err.code(), "forbidden");
}

// --- In process, on a paused clock ------------------------------------------------------

/// Lets the runtime run until `done` holds (bounded; no wall-clock waiting).
async fn until<F: Future<Output = bool>>(mut done: impl FnMut() -> F) {
    for _ in 0..10_000 {
        if done().await {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition never held");
}

#[tokio::test(start_paused = true)]
async fn the_round_timer_picks_a_winner_and_reports_to_the_leaderboard() {
    let registry = registry().await;
    let client = registry.client();
    let root = as_player(&client, "arena", "root", Role::Admin)
        .connect()
        .await
        .unwrap();
    let ann = as_player(&client, "arena", "ann", Role::Player);
    let bob = as_player(&client, "arena", "bob", Role::Player);
    let mut ended = root.events::<RoundEnded>();
    root.room_status().await.unwrap();

    assert_eq!(root.start_round(60_000).await.unwrap(), 1);
    let err = root.start_round(1_000).await.unwrap_err();
    assert_eq!(err.code(), "round_running");
    for _ in 0..3 {
        ann.tap().await.unwrap();
    }
    assert_eq!(bob.tap().await.unwrap(), 1);

    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(root.room_status().await.unwrap().running, "ended early");
    tokio::time::advance(Duration::from_secs(2)).await;
    let result = ended.next().await.unwrap();
    assert_eq!(result.winner.as_deref(), Some("ann"));
    assert_eq!(result.scores.get("ann"), Some(&3));

    let board = client.get_or_create::<Leaderboard>([LEADERBOARD_KEY]);
    until(|| async { !board.top(10).await.unwrap().is_empty() }).await;
    assert_eq!(
        board.top(10).await.unwrap(),
        vec![Standing {
            player: "ann".into(),
            wins: 1
        }]
    );
    let err = ann.tap().await.unwrap_err();
    assert_eq!(err.code(), "no_round");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_round_never_reaches_the_leaderboard() {
    let registry = registry().await;
    let client = registry.client();
    let root = as_player(&client, "arena", "root", Role::Admin);
    let ann = as_player(&client, "arena", "ann", Role::Player);

    root.start_round(10_000).await.unwrap();
    ann.tap().await.unwrap();
    assert_eq!(
        ann.cancel_round().await.unwrap_err().code(),
        "forbidden",
        "players cannot cancel"
    );
    assert!(root.cancel_round().await.unwrap());
    // A second round proves the first one's alarm is gone: only this one's fires.
    root.start_round(20_000).await.unwrap();
    tokio::time::advance(Duration::from_secs(21)).await;
    until(|| async { root.room_status().await.unwrap().winners.len() == 2 }).await;
    let status = root.room_status().await.unwrap();
    assert_eq!(status.winners, vec![None, None]);
    assert_eq!(status.round, 2);
    let board = client.get_or_create::<Leaderboard>([LEADERBOARD_KEY]);
    assert!(board.top(10).await.unwrap().is_empty());
}
