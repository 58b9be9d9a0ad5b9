//! autocache-codegen: reads `schema.yaml` and writes typed Rust repositories whose reads
//! come from a cache and whose writes keep it exactly in step with the database.
//!
//! Pipeline, one module per stage: [`parse`] → [`validate`] (into the [`ir`]) →
//! [`plan`] (cache keys and invalidations) → [`render`] (handlebars templates) →
//! [`format`](mod@format) (prettyplease + `@generated` header) → [`write`](mod@write) (only what changed). The
//! [`lock`] file next to a schema carries each model's retired key digests into the code.
//!
//! From `build.rs`:
//! ```no_run
//! autocache_codegen::compile("schema.yaml").unwrap();
//! ```

#![deny(unreachable_pub)]

pub mod config;
pub mod ddl;
pub mod diagnostic;
pub mod format;
pub mod import;
pub mod ir;
pub mod lock;
pub mod migrate;
pub mod parse;
pub mod plan;
pub mod render;
pub mod sql;
mod type_names;
pub mod validate;
pub mod write;

pub use config::{Config, Error, compile};
