use footlights::__private::core::Ctx;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter;

#[footlights::actor]
impl Counter {
    #[action]
    fn on_wake(&mut self, ctx: &Ctx<Self>) {
        let _ = ctx;
    }
}

fn main() {}
