//! Examples for the SPIRAL crates live beside this file, one program per reusable crate; this
//! package exists only to host them (`cargo run --release -p spiral-examples --example NAME`).
