//! The generated code for the repository's `schema.yaml`, committed so reviewers see what a
//! schema change does. `sample.rs` is written by
//! `cargo run -p autocache-codegen -- generate schema.yaml --out generated/src`; CI fails
//! when it is stale (`autocache-codegen check`).

#[rustfmt::skip]
mod sample;

pub use sample::*;
