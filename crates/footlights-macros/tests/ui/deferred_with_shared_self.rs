use footlights::__private::core::Deferred;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter;

#[footlights::actor]
impl Counter {
    #[action]
    fn later(&self) -> Deferred<i64> {
        Deferred::new(async { Ok(1) })
    }
}

fn main() {}
