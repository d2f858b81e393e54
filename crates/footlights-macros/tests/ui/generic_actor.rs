struct Wrapper<T>(T);

#[footlights::actor]
impl<T> Wrapper<T> {
    #[action]
    fn get(&self) -> i64 {
        1
    }
}

fn main() {}
