//! Near caches: copies of remote cache values in process memory, served in about a
//! microsecond, that never outlive a write in any process.
//!
//! A near copy is kept only of what a remote lookup answered (a row, "does not exist", a
//! unique lookup's id, a collection), and served only while three things hold:
//!
//! - the process's **fence lease** ([`crate::fence`]) is held, and has not been renewed since
//!   the copy was read: the fence is what makes a remote copy safe after a missed remote
//!   invalidation, so a near copy never outlives the lease it was read under;
//! - the process's **near lease** on the invalidation channel is held: it registered itself
//!   as a holder, and has since received every invalidation published before that;
//! - no invalidation of its key arrived since the read that fetched it began (striped
//!   counters, [`store::Store::keep`]).
//!
//! A writer, as it sends its commit (its keys locked) and while it fills its remote keys,
//! publishes every key it changed on the channel and waits until every registered holder dropped them or ran
//! out of its near lease ([`Channel::invalidate`]); the keys it did not fill under its own
//! lock (evicted, refused, fenced) are published again once the remote cache is done with
//! them. If the channel cannot be used, it waits one fence lease instead, after which no
//! process serves a copy read before. `docs/consistency.md`, "Near
//! caches", has the argument.

#[cfg(feature = "redis")]
pub(crate) mod redis;
mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::fence::Fence;
pub(crate) use store::Store;
use store::{ModelCache, Stamp};

/// An invalidation channel between the processes holding near copies.
pub(crate) trait Channel: Send + Sync {
    /// The current subscription's number while this process may serve near copies (its near
    /// lease is held); `None` otherwise.
    fn epoch(&self) -> Option<u64>;

    /// Publishes `keys` and resolves once every holder has dropped them or can no longer
    /// serve them; `false` if the channel could not be used (nothing is known then).
    fn invalidate<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, bool>;
}

/// A context's near caches.
pub(crate) struct Near {
    store: Arc<Store>,
    channel: Arc<dyn Channel>,
    fence: Arc<Fence>,
    /// Entries of each model the schema does not size ([`crate::Options::near_entries`]).
    default_entries: u64,
    /// Writes do not wait ([`crate::Options::near_asynchronous`], the tests' naive control).
    asynchronous: bool,
}

impl Near {
    /// Near caches of `store` kept right by `channel` and `fence`.
    pub(crate) fn new(
        store: Arc<Store>,
        channel: Arc<dyn Channel>,
        fence: Arc<Fence>,
        default_entries: u64,
        asynchronous: bool,
    ) -> Self {
        Self {
            store,
            channel,
            fence,
            default_entries,
            asynchronous,
        }
    }

    /// Drops every near copy of every model.
    pub(crate) fn clear(&self) {
        self.store.clear();
    }

    /// The near cache of `model` (keys under `prefix`), if it has one: `schema_entries`
    /// from the schema, else the context's default; none if both are 0.
    pub(crate) fn scope(&self, model: &'static str, prefix: &str, schema_entries: u64) -> Option<NearScope<'_>> {
        let entries = if schema_entries > 0 {
            schema_entries
        } else {
            self.default_entries
        };
        (entries > 0).then(|| NearScope {
            near: self,
            cache: self.store.model(model, prefix, entries),
        })
    }

    /// What copies read now are stamped with, if they may be served now.
    fn stamp(&self) -> Option<Stamp> {
        let epoch = self.channel.epoch()?;
        let fence = self.fence.generation()?;
        Some(Stamp { fence, epoch })
    }

    /// As a write's commit is sent (every key it changes is locked, or its lock's miss
    /// recorded): drops this process's copies of `keys`, publishes them and waits until
    /// every holder dropped them or can no longer serve them; `false` if the channel could
    /// not be used. (The naive control publishes after the commit, in [`Near::settle`].)
    pub(crate) async fn publish(&self, keys: &[String]) -> bool {
        if keys.is_empty() || self.asynchronous {
            return true;
        }
        // This process's own copies go at once.
        self.store.invalidate(keys.iter().map(String::as_str));
        self.channel.invalidate(keys).await
    }

    /// Once the write of `keys` committed and its remote keys are done (`completed`: the
    /// moment after, fence included), after [`Near::publish`] answered `published`:
    /// publishes `unfilled` again (keys whose remote value may have been older than the
    /// write after the first publish), or, if either publish could not use the channel,
    /// waits until no process serves a copy read before `completed`.
    pub(crate) async fn settle(&self, published: bool, keys: &[String], unfilled: &[String], completed: Instant) {
        if self.asynchronous {
            if keys.is_empty() {
                return;
            }
            self.store.invalidate(keys.iter().map(String::as_str));
            let (channel, keys) = (Arc::clone(&self.channel), keys.to_vec());
            tokio::spawn(async move { channel.invalidate(&keys).await });
            return;
        }
        if published && (unfilled.is_empty() || self.publish(unfilled).await) {
            return;
        }
        // Every process renews its fence lease within one lease; copies read before that
        // renewal are not served after it.
        let lease = self.fence.lease();
        let deadline = completed + lease + lease / 100 + Duration::from_millis(2);
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// One model's near cache, for one read.
pub(crate) struct NearScope<'a> {
    near: &'a Near,
    cache: Arc<ModelCache>,
}

/// What a read noted before its remote lookup, to keep what it answered.
pub(crate) struct Ticket {
    stamp: Stamp,
    counters: Vec<u64>,
}

impl NearScope<'_> {
    /// The near copy of every key, if each one has a servable copy.
    pub(crate) fn get_all(&self, keys: &[&str]) -> Option<Vec<Bytes>> {
        let stamp = self.near.stamp()?;
        keys.iter().map(|key| self.cache.get(key, stamp)).collect()
    }

    /// Notes what a remote lookup of `keys` starting now needs to keep its answers; `None`
    /// if nothing may be served near now.
    pub(crate) fn ticket(&self, keys: &[&str]) -> Option<Ticket> {
        let stamp = self.near.stamp()?;
        let counters = self.near.store.ticket(keys.iter().copied());
        Some(Ticket { stamp, counters })
    }

    /// Keeps `bytes`, the remote answer for `keys[index]`, unless it was invalidated since
    /// `ticket`.
    pub(crate) fn keep(&self, ticket: &Ticket, keys: &[&str], index: usize, bytes: Bytes) {
        self.near
            .store
            .keep(&self.cache, keys[index], bytes, ticket.stamp, ticket.counters[index]);
    }
}
