//! What the orchestrator tells a node process: its role and everything it connects to,
//! passed as JSON in one environment variable ([`NODE_VARIABLE`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::builds::Build;

/// Holds a node's [`NodeSpec`]; a process without it is the orchestrator.
pub const NODE_VARIABLE: &str = "AUTOCACHE_R9_NODE";

/// What a node does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Role {
    /// Writes every row in turn and acknowledges each write in the ack record.
    Writer {
        /// Distinguishes the versions of a replacement writer from its predecessor's.
        generation: u32,
        /// After this many milliseconds, open a transaction, update the first row's
        /// person and book, say so and wait to be killed (the writer-kill scenario);
        /// `None`: write until told to stop.
        hold_after_ms: Option<u64>,
        /// Writes only the rows from this one on: a replacement leaves the killed writer's
        /// locked row alone, as nobody may write a crashed writer's row again for a while.
        first_row: usize,
    },
    /// Reads through the repositories and checks every read against the ack record.
    Reader,
    /// The control: reads and fills the cache unconditionally, the seed's way.
    NaiveReader,
    /// One process of a rolling deploy: writes these rows as a writer does (generation 1)
    /// and, meanwhile, reads every row as a reader does.
    Rolling {
        /// The rows it writes (no other process writes them).
        rows: Vec<usize>,
    },
}

/// One node's instructions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeSpec {
    /// What this node does.
    pub role: Role,
    /// The generated code it runs.
    pub build: Build,
    /// The PostgreSQL URL.
    pub database_url: String,
    /// The run's schema, selected through `search_path`.
    pub schema: String,
    /// The cache URL this node uses for every backend name (possibly through a relay).
    pub cache_url: String,
    /// The scenario's key namespace.
    pub key_namespace: String,
    /// The ack record shared by the scenario's nodes.
    pub acks: PathBuf,
    /// Primary keys of the scenario's `Person` rows; row `i` owns book `books[i]`.
    pub people: Vec<i64>,
    /// Primary keys of the scenario's `Book` rows.
    pub books: Vec<i64>,
    /// The near caches' invalidation channel (a redis URL), if the scenario has near caches
    /// (R13): then every node uses it, and every model is near-cached.
    pub near_channel: Option<String>,
    /// Whether writes invalidate near copies without waiting (R13's naive control).
    pub near_asynchronous: bool,
}

impl NodeSpec {
    /// The spec of this process, if it is a node.
    pub fn of_this_process() -> Option<NodeSpec> {
        let json = std::env::var(NODE_VARIABLE).ok()?;
        Some(serde_json::from_str(&json).unwrap_or_else(|error| panic!("bad {NODE_VARIABLE}: {error}")))
    }

    /// The spec as the value of [`NODE_VARIABLE`].
    pub fn to_env(&self) -> String {
        serde_json::to_string(self).expect("a node spec serializes")
    }
}
