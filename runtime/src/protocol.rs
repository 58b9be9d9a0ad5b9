//! The consistency protocol, generic over what is cached (rows, ids, collections).
//!
//! Readers: [`read_through`] looks keys up; a hit is served, a miss hands out a lease, and
//! only a lease holder fills, with a compare-and-swap against the lease token. Callers that
//! find another caller's lease (or a writer's lock) wait briefly, then read the database
//! without filling. Writers: a [`WritePlan`] locks every affected key *after* its SQL
//! statement and *before* commit (so the locks are ordered like the row locks), then fills
//! or evicts each key after commit. `docs/consistency.md` has the proof.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::sync::Arc;

use crate::backend::{CacheBackend, Lookup, SharedBackend, Token};
use crate::codec::{self, Cached};
use crate::context::Options;
use crate::error::Result;
use crate::fence::Undelivered;
use crate::guard::Guarded;
use crate::near::NearScope;
use crate::stats::Meter;

/// The cache and settings one protocol call works against.
pub(crate) struct Cache<'a> {
    pub backend: &'a Arc<Guarded>,
    pub options: &'a Options,
    pub stats: Meter<'a>,
    pub ttl: Duration,
    /// The context's key namespace followed by the model's key prefix.
    pub prefix: Arc<str>,
    /// The prefixes of the model's earlier versions still in a rolling deploy (see
    /// [`crate::Context::retired_prefixes`]): while there are any, reads skip the cache and
    /// writes evict every version's keys.
    pub retired: Vec<String>,
    /// The model's near cache, for reads (see [`crate::near`]).
    pub near: Option<NearScope<'a>>,
    /// Reads go to the database without reading or filling the cache (see
    /// [`crate::Context::uncached`]).
    pub uncached: bool,
}

/// What became of a fill.
#[derive(Debug, PartialEq, Eq)]
enum Filled {
    /// Stored.
    Stored,
    /// The key changed since the token was taken.
    Refused,
    /// Not attempted or not answered (too large, cache fault).
    Skipped,
}

impl Cache<'_> {
    /// Stores `value` under `key` if `token` still holds; counts what happened.
    async fn fill(&self, key: &str, value: Option<Vec<u8>>, token: Token) -> Filled {
        let Some(bytes) = value.filter(|bytes| bytes.len() <= self.options.max_item_size) else {
            self.stats.add(|s| &s.oversize_values, 1);
            let _ = self.backend.release(key, token).await;
            return Filled::Skipped;
        };
        if !self.options.fill_delay.is_zero() {
            let delay = rand::random_range(Duration::ZERO..=self.options.fill_delay);
            tokio::time::sleep(delay).await;
        }
        match self.backend.fill(key, &bytes, token, self.ttl).await {
            Ok(true) => {
                self.stats.add(|s| &s.fills, 1);
                Filled::Stored
            }
            Ok(false) => {
                self.stats.add(|s| &s.fill_conflicts, 1);
                Filled::Refused
            }
            Err(_) => Filled::Skipped,
        }
    }
}

/// Reads `keys` through the cache. `load` receives the indices of the keys the cache could
/// not answer and returns their values from the database, in the same order (`None`: no
/// such row, cached as "does not exist").
pub(crate) async fn read_through<T, F, Fut>(cache: &Cache<'_>, keys: &[&str], mut load: F) -> Result<Vec<Option<T>>>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Vec<usize>) -> Fut,
    Fut: Future<Output = Result<Vec<Option<T>>>>,
{
    if cache.uncached {
        return load((0..keys.len()).collect()).await;
    }
    if !cache.retired.is_empty() {
        // A rolling deploy: processes of an earlier version write without invalidating
        // this version's keys, so they are neither read nor filled until it is over.
        cache.stats.add(|s| &s.misses, keys.len() as u64);
        return load((0..keys.len()).collect()).await;
    }
    let near = cache.near.as_ref();
    if let Some(values) = near
        .and_then(|near| near.get_all(keys))
        .and_then(|found| found.iter().map(answer::<T>).collect::<Option<Vec<_>>>())
    {
        cache.stats.add(|s| &s.near_hits, values.len() as u64);
        // A near hit never waits: without this, a loop of them would never let the task
        // scheduler run the channel's tasks (acknowledgements, renewals) on this thread.
        tokio::task::coop::consume_budget().await;
        return Ok(values);
    }
    let ticket = near.and_then(|near| Some((near, near.ticket(keys)?)));
    let keep = |index: usize, bytes: &bytes::Bytes| {
        if let Some((near, ticket)) = &ticket {
            near.keep(ticket, keys, index, bytes.clone());
        }
    };
    let mut first = Some(cache.backend.read(keys, cache.options.lease_ttl).await);
    if let Some(Ok(lookups)) = &first
        && let Some(values) = all_answered::<T>(lookups)
    {
        crate::trace::record_lookups(values.len() as u64, 0);
        cache.stats.add(|s| &s.hits, values.len() as u64);
        for (index, lookup) in lookups.iter().enumerate() {
            if let Lookup::Value { bytes, .. } = lookup {
                keep(index, bytes);
            }
        }
        return Ok(values);
    }
    let mut found: Vec<Option<Option<T>>> = keys.iter().map(|_| None).collect();
    let mut pending: Vec<usize> = (0..keys.len()).collect();
    let deadline = Instant::now() + cache.options.busy_wait;
    let mut pause = Duration::from_millis(1);
    loop {
        let answer = match first.take() {
            Some(answer) => answer,
            None => {
                let asked: Vec<&str> = pending.iter().map(|&i| keys[i]).collect();
                cache.backend.read(&asked, cache.options.lease_ttl).await
            }
        };
        let Ok(lookups) = answer else {
            break;
        };
        let mut to_fill = Vec::new();
        let mut busy = Vec::new();
        let mut answered = 0;
        for (&index, lookup) in pending.iter().zip(lookups) {
            match lookup {
                Lookup::Value { bytes, token } => match codec::decode::<T>(&bytes) {
                    Cached::Value(value) => {
                        keep(index, &bytes);
                        found[index] = Some(Some(value));
                        answered += 1;
                    }
                    Cached::Absent => {
                        keep(index, &bytes);
                        found[index] = Some(None);
                        answered += 1;
                    }
                    // A lock older than `lock_wait` (a slow or dead writer): no waiting for
                    // its fill; the key is read from the database below, without filling.
                    Cached::Locked { at_ms } if lock_age(at_ms) >= cache.options.lock_wait => {}
                    Cached::Locked { .. } => busy.push(index),
                    Cached::Corrupt => {
                        cache.stats.add(|s| &s.corrupt_values, 1);
                        to_fill.push((index, token));
                    }
                },
                Lookup::Lease(token) => to_fill.push((index, token)),
                Lookup::Busy => busy.push(index),
            }
        }
        crate::trace::record_lookups(answered as u64, to_fill.len() as u64);
        cache.stats.add(|s| &s.hits, answered as u64);
        cache.stats.add(|s| &s.misses, to_fill.len() as u64);
        if !to_fill.is_empty() {
            let values = load(to_fill.iter().map(|&(index, _)| index).collect()).await?;
            let fills = to_fill
                .iter()
                .zip(&values)
                .map(|(&(index, token), value)| cache.fill(keys[index], codec::encode(value.as_ref()), token));
            futures::future::join_all(fills).await;
            for ((index, _), value) in to_fill.into_iter().zip(values) {
                found[index] = Some(value);
            }
        }
        pending = busy;
        if pending.is_empty() || Instant::now() + pause > deadline {
            break;
        }
        cache.stats.add(|s| &s.lease_waits, pending.len() as u64);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
    let unanswered: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
    if !unanswered.is_empty() {
        let values = load(unanswered.clone()).await?;
        for (index, value) in unanswered.into_iter().zip(values) {
            found[index] = Some(value);
        }
    }
    Ok(found.into_iter().map(Option::flatten).collect())
}

/// The decoded values, if every lookup was a hit (a value or "does not exist"): the common
/// case, answered without the bookkeeping of misses, leases and waits.
fn all_answered<T: DeserializeOwned>(lookups: &[Lookup]) -> Option<Vec<Option<T>>> {
    lookups
        .iter()
        .map(|lookup| match lookup {
            Lookup::Value { bytes, .. } => answer(bytes),
            Lookup::Lease(_) | Lookup::Busy => None,
        })
        .collect()
}

/// What cached bytes answer: a row (`Some(Some)`), "does not exist" (`Some(None)`), or
/// nothing (a lock marker, corrupt bytes).
fn answer<T: DeserializeOwned>(bytes: &bytes::Bytes) -> Option<Option<T>> {
    match codec::decode::<T>(bytes) {
        Cached::Value(value) => Some(Some(value)),
        Cached::Absent => Some(None),
        Cached::Locked { .. } | Cached::Corrupt => None,
    }
}

/// What a writer does to a key once its transaction has committed.
enum AfterCommit<'f> {
    /// Store these bytes (the row as committed, or the "does not exist" marker).
    Fill(Option<Vec<u8>>),
    /// Store what this query returns, run after commit (a collection re-read).
    Refill(BoxFuture<'f, Result<Option<Vec<u8>>>>),
    /// Delete the key (the lock, or whatever a later writer left), so the next reader
    /// fills from the database after this commit.
    Evict,
}

/// The keys a write affects, and what to do with each after commit.
#[derive(Default)]
pub(crate) struct WritePlan<'f> {
    keys: Vec<(String, AfterCommit<'f>)>,
}

impl<'f> WritePlan<'f> {
    /// After commit, `key` holds `value` (`None`: "does not exist").
    pub(crate) fn fill<T: Serialize>(&mut self, key: String, value: Option<&T>) {
        self.keys.retain(|(planned, _)| *planned != key);
        self.keys.push((key, AfterCommit::Fill(codec::encode(value))));
    }

    /// After commit, `key` holds what `query` returns then (it runs after the commit, and
    /// after the key was locked, so it sees every write that could race with this one).
    pub(crate) fn refill<T, Q>(&mut self, key: String, query: Q)
    where
        T: Serialize,
        Q: Future<Output = Result<T>> + Send + 'f,
    {
        if self.keys.iter().any(|(planned, _)| *planned == key) {
            return;
        }
        let encoded = async move { Ok(codec::encode(Some(&query.await?))) };
        self.keys.push((key, AfterCommit::Refill(Box::pin(encoded))));
    }

    /// After commit, `key` is emptied and refilled by the next reader.
    pub(crate) fn evict(&mut self, key: String) {
        if !self.keys.iter().any(|(planned, _)| *planned == key) {
            self.keys.push((key, AfterCommit::Evict));
        }
    }

    /// Drops these keys from the plan (they were locked already).
    pub(crate) fn forget(&mut self, keys: &[String]) {
        self.keys.retain(|(key, _)| !keys.contains(key));
    }

    /// During a rolling deploy (`retired` not empty): every key is evicted instead of filled
    /// (no process reads this version's keys until the deploy is over, and then none may
    /// hold a value older than the last write), and the same key under each retired prefix
    /// is evicted too, so processes of earlier versions read this write.
    fn cover_retired(&mut self, prefix: &str, retired: &[String]) {
        let planned = std::mem::take(&mut self.keys);
        for (key, _) in planned {
            if let Some(rest) = key.strip_prefix(prefix) {
                for old in retired {
                    self.evict([old.as_str(), rest].concat());
                }
            }
            self.evict(key);
        }
    }

    /// Locks every key (call after the SQL statements, before commit).
    pub(crate) async fn lock<'a>(mut self, cache: Cache<'a>) -> LockedWrite<'a, 'f> {
        if !cache.retired.is_empty() {
            self.cover_retired(&cache.prefix, &cache.retired);
        }
        let keys: Vec<&str> = self.keys.iter().map(|(key, _)| key.as_str()).collect();
        let (tokens, missed) = if keys.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let marker = codec::lock_marker(codec::now_ms());
            cache.backend.lock_each(&keys, &marker, cache.options.lock_ttl).await
        };
        cache.stats.add(|s| &s.invalidations, keys.len() as u64);
        LockedWrite {
            cache,
            keys: self.keys,
            tokens,
            missed,
        }
    }
}

/// A write whose keys are locked; finish it with [`LockedWrite::complete`] after commit or
/// [`LockedWrite::abort`] after a rollback.
pub(crate) struct LockedWrite<'a, 'f> {
    cache: Cache<'a>,
    keys: Vec<(String, AfterCommit<'f>)>,
    /// Per key, the lock's token; `None` where the lock did not reach the server.
    tokens: Vec<Option<Token>>,
    /// The keys whose lock did not reach their server (of a shared backend).
    missed: Vec<Undelivered>,
}

impl LockedWrite<'_, '_> {
    /// Every key this write changes.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(key, _)| key.as_str())
    }

    /// The keys whose lock did not reach their server: they are fenced before the commit.
    pub(crate) fn missed(&self) -> &[Undelivered] {
        &self.missed
    }

    /// Fills every key with its own token, or evicts it. A fill that is refused means
    /// another write locked the key after this one; its own fill may have read the database
    /// before this write committed, so the key is evicted: the next reader fills it afresh.
    /// Keys planned for eviction are deleted whatever they hold (not only this write's
    /// lock): a later writer whose lock is deleted has its own fill refused, and evicts in
    /// turn. A key whose lock never reached the server is evicted too, now that the commit
    /// is done.
    pub(crate) async fn complete(self) -> Completed {
        let cache = &self.cache;
        let mut evicted: Vec<String> = Vec::new();
        let mut filled = Vec::new();
        for ((key, after), token) in self.keys.into_iter().zip(self.tokens) {
            match (after, token) {
                (AfterCommit::Evict, _) | (_, None) => evicted.push(key),
                (after, Some(token)) => filled.push((key, after, token)),
            }
        }
        let fills = filled.into_iter().map(|(key, after, token)| async move {
            let bytes = match after {
                AfterCommit::Fill(bytes) => Some(bytes),
                AfterCommit::Refill(query) => query.await.ok(),
                AfterCommit::Evict => None,
            };
            // Refused (a later writer locked the key), skipped (too large, a fault) or not
            // re-read: the key may hold a value read before this commit, so it is emptied.
            let stored = match bytes {
                Some(bytes) => cache.fill(&key, bytes, token).await == Filled::Stored,
                None => false,
            };
            let missed = if stored {
                Vec::new()
            } else {
                cache.backend.evict_each(&[&key]).await
            };
            (key, stored, missed)
        });
        let evictions = async {
            let keys: Vec<&str> = evicted.iter().map(String::as_str).collect();
            cache.backend.evict_each(&keys).await
        };
        let (filled, mut missed) = futures::future::join(futures::future::join_all(fills), evictions).await;
        let mut unfilled = evicted;
        for (key, stored, undelivered) in filled {
            missed.extend(undelivered);
            if !stored {
                unfilled.push(key);
            }
        }
        Completed { missed, unfilled }
    }

    /// What [`LockedWrite::abort`] needs, owned, for a task that outlives this borrow (a
    /// transaction dropped without commit or rollback).
    pub(crate) fn into_locks(self) -> (SharedBackend, Vec<(String, Token)>) {
        let keys = self
            .keys
            .into_iter()
            .zip(self.tokens)
            .filter_map(|((key, _), token)| Some((key, token?)))
            .collect();
        (Arc::clone(self.cache.backend) as SharedBackend, keys)
    }

    /// Gives every lock back (the transaction did not commit).
    pub(crate) async fn abort(self) {
        let cache = &self.cache;
        let steps = self
            .keys
            .iter()
            .zip(self.tokens)
            .filter_map(|((key, _), token)| Some(cache.backend.release(key, token?)));
        futures::future::join_all(steps).await;
    }
}

/// What [`LockedWrite::complete`] did.
pub(crate) struct Completed {
    /// The invalidations that did not reach their server: they must be fenced before the
    /// write resolves.
    pub missed: Vec<Undelivered>,
    /// The keys not filled with this write's value under its own lock (evicted, or their
    /// eviction missed): between the commit and now they may have held a value older than
    /// this write (see `docs/consistency.md`, near caches).
    pub unfilled: Vec<String>,
}

/// How long ago a lock dated `at_ms` was taken (long ago for an undated one).
fn lock_age(at_ms: u64) -> Duration {
    Duration::from_millis(codec::now_ms().saturating_sub(at_ms))
}
