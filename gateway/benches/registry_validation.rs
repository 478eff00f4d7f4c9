//! Schema validation cost per event (criterion). Filled in below.
fn main() {}
