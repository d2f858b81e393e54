#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counter;

struct Opaque;

#[footlights::actor]
impl Counter {
    #[action]
    fn take(&mut self, thing: Opaque) {
        let _ = thing;
    }
}

fn main() {}
