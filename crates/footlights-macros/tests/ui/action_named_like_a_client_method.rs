use footlights::prelude::*;

#[derive(Default, Serialize, Deserialize)]
pub struct Lamp {
    on: bool,
}

#[footlights::actor]
impl Lamp {
    #[action]
    fn status(&self) -> bool {
        self.on
    }
}

fn main() {}
