//! Keys and handles: get, getOrCreate, create, by id, key equivalences.

use footlights::prelude::*;
use footlights::storage::{Driver, MemoryDriver};
use footlights::{ActorKey, ActorSpec};

#[derive(Serialize, Deserialize)]
pub struct Game {
    mode: String,
}

#[derive(Serialize, Deserialize)]
pub struct GameInput {
    mode: String,
}

#[footlights::actor(input = Option<GameInput>)]
impl Game {
    async fn create_state(
        _ctx: &Ctx<Self>,
        input: &Option<GameInput>,
    ) -> Result<Self, ActionError> {
        let mode = input
            .as_ref()
            .map_or("default", |i| i.mode.as_str())
            .to_owned();
        Ok(Game { mode })
    }

    #[action]
    fn mode(&self) -> String {
        self.mode.clone()
    }

    #[action]
    fn key(&self, ctx: &Ctx<Self>) -> Vec<String> {
        ctx.key().parts().to_vec()
    }
}

async fn registry() -> Registry {
    Registry::builder().actor::<Game>().start().await.unwrap()
}

#[tokio::test]
async fn no_key_and_the_empty_list_are_the_same_key() {
    let r = registry().await;
    let c = r.client();
    let a = c.get_or_create::<Game>(()).resolve().await.unwrap();
    let empty: [&str; 0] = [];
    let b = c.get_or_create::<Game>(empty).resolve().await.unwrap();
    assert_eq!(a, b);
}

#[tokio::test]
async fn a_plain_string_is_a_one_element_key() {
    let r = registry().await;
    let c = r.client();
    let a = c.get_or_create::<Game>("lobby").resolve().await.unwrap();
    let b = c.get_or_create::<Game>(["lobby"]).resolve().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(c.get_for_id::<Game>(a).key().await.unwrap(), ["lobby"]);
}

#[tokio::test]
async fn get_of_a_missing_actor_is_not_found() {
    let r = registry().await;
    let err = r.client().get::<Game>(["nobody"]).mode().await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "not_found"));
    let err = r
        .client()
        .get_for_id::<Game>("no-such-id")
        .mode()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found");
}

#[tokio::test]
async fn create_passes_input_and_refuses_a_taken_key() {
    let r = registry().await;
    let c = r.client();
    let game = c
        .create::<Game>(
            ["g1"],
            &Some(GameInput {
                mode: "tournament".into(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(game.mode().await.unwrap(), "tournament");
    let err = c.create::<Game>(["g1"], &None).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "duplicate_key"));
    assert!(
        err.metadata()
            .and_then(|m| m.get("existing_actor_id"))
            .is_some()
    );
    // get finds it now; get_or_create does not replace its input.
    assert_eq!(c.get::<Game>(["g1"]).mode().await.unwrap(), "tournament");
    let again = c.get_or_create_with::<Game>(
        ["g1"],
        &Some(GameInput {
            mode: "other".into(),
        }),
    );
    assert_eq!(again.mode().await.unwrap(), "tournament");
}

#[tokio::test]
async fn get_or_create_uses_input_only_on_creation() {
    let r = registry().await;
    let c = r.client();
    let g = c.get_or_create_with::<Game>(
        ["g2"],
        &Some(GameInput {
            mode: "classic".into(),
        }),
    );
    assert_eq!(g.mode().await.unwrap(), "classic");
    assert_eq!(
        c.get_or_create::<Game>(["g2"]).mode().await.unwrap(),
        "classic"
    );
}

#[tokio::test]
async fn concurrent_get_or_create_makes_one_actor() {
    let r = registry().await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = r.client();
        tasks.push(tokio::spawn(async move {
            c.get_or_create::<Game>(["race"]).resolve().await.unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
}

fn input(mode: &str) -> Option<GameInput> {
    Some(GameInput { mode: mode.into() })
}

/// The error's metadata field as text.
fn meta_field(err: &ActionError, field: &str) -> Option<String> {
    err.metadata()?.get(field)?.as_str().map(str::to_owned)
}

#[tokio::test]
async fn duplicate_key_names_the_key_and_the_existing_actor() {
    let r = registry().await;
    let c = r.client();
    let first = c.create::<Game>(["room", "a"], &None).await.unwrap();
    let id = first.resolve().await.unwrap();
    let err = c.create::<Game>(["room", "a"], &None).await.unwrap_err();
    assert_eq!((err.group(), err.code()), ("actor", "duplicate_key"));
    assert_eq!(meta_field(&err, "key").as_deref(), Some("room/a"));
    assert_eq!(
        meta_field(&err, "existing_actor_id").as_deref(),
        Some(id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_and_get_or_creates_of_one_key_make_one_actor() {
    let r = registry().await;
    let mut creates = Vec::new();
    let mut gets = Vec::new();
    for n in 0..16 {
        let c = r.client();
        let mode = format!("m{n}");
        creates.push(tokio::spawn(async move {
            match c.create::<Game>(["contested"], &input(&mode)).await {
                Ok(handle) => Ok(handle.resolve().await.unwrap()),
                Err(e) => Err(e),
            }
        }));
        let c = r.client();
        let mode = format!("g{n}");
        gets.push(tokio::spawn(async move {
            let handle = c.get_or_create_with::<Game>(["contested"], &input(&mode));
            handle.resolve().await.unwrap()
        }));
    }
    let mut ids = Vec::new();
    let mut refused = Vec::new();
    for t in creates {
        match t.await.unwrap() {
            Ok(id) => ids.push(id),
            Err(e) => {
                assert_eq!(e.code(), "duplicate_key", "{e:?}");
                refused.push(meta_field(&e, "existing_actor_id").unwrap());
            }
        }
    }
    for t in gets {
        ids.push(t.await.unwrap());
    }
    let first = ids[0].clone();
    assert!(ids.iter().all(|id| *id == first), "{ids:?}");
    assert!(refused.iter().all(|id| id == first.as_str()), "{refused:?}");
    // The actor got the input of the one call that created it, and keeps it.
    let mode = r.client().get::<Game>(["contested"]).mode().await.unwrap();
    assert!(mode.starts_with('m') || mode.starts_with('g'), "{mode}");
    assert_eq!(
        r.client().get_for_id::<Game>(first).mode().await.unwrap(),
        mode
    );
}

#[tokio::test]
async fn after_a_restart_get_or_create_and_create_find_the_stored_actor() {
    let driver = MemoryDriver::new();
    let first = Registry::builder()
        .actor::<Game>()
        .driver(driver.clone())
        .start()
        .await
        .unwrap();
    let id = first
        .client()
        .get_or_create_with::<Game>(["kept"], &input("classic"))
        .resolve()
        .await
        .unwrap();
    assert_eq!(
        first.client().get::<Game>(["kept"]).mode().await.unwrap(),
        "classic"
    );
    first.shutdown().await;
    drop(first);

    // A new registry knows no keys yet: it must find the stored actor, not make another.
    let second = Registry::builder()
        .actor::<Game>()
        .driver(driver.clone())
        .start()
        .await
        .unwrap();
    let c = second.client();
    let again = c.get_or_create_with::<Game>(["kept"], &input("other"));
    assert_eq!(again.resolve().await.unwrap(), id);
    assert_eq!(again.mode().await.unwrap(), "classic");
    let err = c
        .create::<Game>(["kept"], &input("other"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "duplicate_key");
    assert_eq!(
        meta_field(&err, "existing_actor_id").as_deref(),
        Some(id.as_str())
    );
    let listed = driver
        .list_actors(<Game as ActorSpec>::NAME, &ActorKey::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
}

#[tokio::test]
async fn keys_over_the_limit_create_nothing() {
    let driver = MemoryDriver::new();
    let registry = Registry::builder()
        .actor::<Game>()
        .driver(driver.clone())
        .max_key_bytes(16)
        .start()
        .await
        .unwrap();
    let client = registry.client();
    // 7 + 1 and 7 + 1: exactly 16 bytes.
    let fits = client.get_or_create::<Game>(["1234567", "1234567"]);
    assert_eq!(fits.mode().await.unwrap(), "default");
    let long = ["1234567", "12345678"];
    let err = client.get_or_create::<Game>(long).mode().await.unwrap_err();
    assert_eq!(
        (err.group(), err.code()),
        ("actor", "key_too_long"),
        "{err}"
    );
    assert_eq!(err.http_status(), 400);
    let err = client.create::<Game>(long, &None).await.unwrap_err();
    assert_eq!(err.code(), "key_too_long");
    let err = client.get::<Game>(long).mode().await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        driver
            .find_actor(Game::NAME, &ActorKey::from(&long[..]))
            .await
            .unwrap()
            .is_none()
    );
}

/// Ids are 32 lowercase hex digits that sort in the order their actors were created, so the
/// rows of actors made one after another sit side by side in the store's indexes.
#[tokio::test]
async fn ids_sort_in_creation_order() {
    let r = registry().await;
    let c = r.client();
    let mut ids = Vec::new();
    for i in 0..200 {
        let id = c
            .get_or_create::<Game>(format!("g{i}").as_str())
            .resolve()
            .await
            .unwrap();
        let text = id.as_str();
        assert_eq!(text.len(), 32, "{text}");
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{text}"
        );
        ids.push(text.to_owned());
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    sorted.dedup();
    assert_eq!(sorted.len(), 200, "every id is new");
}
