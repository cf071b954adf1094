// `#[machine]` goes on a module holding the states enum and the handlers.

#[wink::machine]
pub struct Lamp;

fn main() {}
