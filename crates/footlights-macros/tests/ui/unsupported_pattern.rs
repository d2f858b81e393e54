#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter;

#[footlights::actor]
impl Counter {
    #[action]
    fn add(&mut self, (a, b): (i64, i64)) -> i64 {
        a + b
    }
}

fn main() {}
