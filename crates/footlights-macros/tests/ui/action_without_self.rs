#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter;

#[footlights::actor]
impl Counter {
    #[action]
    fn add(a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {}
