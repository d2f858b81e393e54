#[derive(footlights::Event)]
#[event(rename = "x")]
struct Moved(i64, i64);

fn main() {}
