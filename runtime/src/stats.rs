//! Counters of what the cache and the database did, per context.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::registry::Registry;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Live counters shared by every repository of a context.
        #[derive(Debug, Default)]
        pub struct Stats {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// A point-in-time copy of [`Stats`]; subtract two to get what happened in between.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl Stats {
            /// Copies every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        #[cfg(feature = "metrics")]
        impl StatsSnapshot {
            /// Publishes every counter through the `metrics` facade as the absolute value of
            /// the counter `<prefix><name>_total` (e.g. `autocache_hits_total`) with `labels`.
            pub(crate) fn record(&self, prefix: &str, labels: &[metrics::Label]) {
                $(metrics::counter!(format!("{prefix}{}_total", stringify!($name)), labels.iter()).absolute(self.$name);)*
            }
        }

        impl std::ops::Add for StatsSnapshot {
            type Output = StatsSnapshot;

            /// The counts of two contexts together.
            fn add(self, other: StatsSnapshot) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name + other.$name,)* }
            }
        }

        impl std::ops::Sub for StatsSnapshot {
            type Output = StatsSnapshot;

            fn sub(self, earlier: StatsSnapshot) -> StatsSnapshot {
                StatsSnapshot { $($name: self.$name.saturating_sub(earlier.$name),)* }
            }
        }
    };
}

counters! {
    /// Keys found in the cache (rows and "does not exist" markers).
    hits,
    /// Keys not found, or found unreadable, in the cache.
    misses,
    /// Values stored by a reader holding a lease, or by a writer after commit.
    fills,
    /// Fills refused because the key changed since the token was taken (a write won).
    fill_conflicts,
    /// Keys locked by writers (each makes in-flight fills fail).
    invalidations,
    /// Cache operations that failed or timed out (the caller read the database instead).
    cache_errors,
    /// Cached bytes that could not be decoded (garbage, truncated, another version).
    corrupt_values,
    /// Values not cached because they exceed the backend's item size limit.
    oversize_values,
    /// Reads that found another caller filling the key and waited for it.
    lease_waits,
    /// SQL statements issued to the database (not counting the preparation of a statement
    /// on a connection, whether sqlx's or the runtime's own `PREPARE`).
    db_queries,
    /// Keys served from this process's near cache (not counted in `hits`).
    near_hits,
}

impl Stats {
    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Counts into a context's totals and one model's counters at once.
#[derive(Clone)]
pub(crate) struct Meter<'a> {
    pub total: &'a Stats,
    pub model: Arc<Stats>,
}

impl Meter<'_> {
    /// Adds `n` to the counter `which` of both.
    pub(crate) fn add(&self, which: fn(&Stats) -> &AtomicU64, n: u64) {
        if n > 0 {
            Stats::add(which(self.total), n);
            Stats::add(which(&self.model), n);
        }
    }
}

/// Per-model counters of a context.
#[derive(Debug, Default)]
pub(crate) struct ModelStats {
    models: Registry<Stats>,
}

impl ModelStats {
    /// The counters of `model`, created on first use.
    pub(crate) fn of(&self, model: &'static str) -> Arc<Stats> {
        self.models.get_or(model, Arc::default)
    }

    /// A snapshot of every model's counters.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, StatsSnapshot> {
        self.models
            .all()
            .into_iter()
            .map(|(name, stats)| (name.to_owned(), stats.snapshot()))
            .collect()
    }
}
