#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Room;

#[footlights::actor]
impl Room {
    #[action]
    fn send(&mut self, text: &str) -> usize {
        text.len()
    }
}

fn main() {}
