#[derive(serde::Serialize, serde::Deserialize)]
struct Counter {
    count: i64,
}

#[footlights::actor]
impl Counter {
    #[action]
    fn get_count(&self) -> i64 {
        self.count
    }
}

fn main() {}
