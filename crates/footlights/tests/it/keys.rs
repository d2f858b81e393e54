//! Keys and handles: get, getOrCreate, create, by id, key equivalences.

use footlights::prelude::*;

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
