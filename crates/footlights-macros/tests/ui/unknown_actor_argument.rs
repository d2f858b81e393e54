struct Counter;

#[footlights::actor(nmae = "counter")]
impl Counter {}

fn main() {}
