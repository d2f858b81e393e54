#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter;

#[footlights::actor]
impl Counter {
    #[action]
    fn consume(self) -> i64 {
        1
    }
}

fn main() {}
