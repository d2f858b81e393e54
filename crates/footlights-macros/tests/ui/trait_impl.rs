struct Counter;

trait Count {}

#[footlights::actor]
impl Count for Counter {}

fn main() {}
