use footlights::__private::core::Ctx;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter;

#[footlights::actor]
impl Counter {
    #[action]
    fn add(&mut self, amount: i64, ctx: &Ctx<Self>) -> i64 {
        let _ = ctx;
        amount
    }
}

fn main() {}
