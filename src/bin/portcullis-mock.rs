//! mock
fn main() {}
