#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter;

#[footlights::actor]
impl Counter {
    #[action]
    fn get_count(&self) -> i64 {
        0
    }

    #[action(name = "getCount")]
    fn count(&self) -> i64 {
        0
    }
}

fn main() {}
