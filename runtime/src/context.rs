//! The context repositories are built from: a database pool, the named cache backends,
//! the protocol's options and the stats.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Pool;

use crate::backend::memory::{DEFAULT_CAPACITY, MemoryBackend};
use crate::backend::{self, CacheBackend, CacheError, SharedBackend};
use crate::db::Dialect;
use crate::error::{Error, Result};
use crate::fence::Fence;
use crate::guard::Guarded;
use crate::model::ModelInfo;
use crate::near::{Channel, Near, Store};
use crate::one_shot::DeleteHints;
use crate::registry::Registry;
use crate::reserve::Reserved;
use crate::stats::{Meter, ModelStats, Stats, StatsSnapshot};

/// Tunables of the consistency protocol.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long a reader's fill lease lasts before another reader may take it.
    pub lease_ttl: Duration,
    /// How long a writer's lock marker lives if the writer never fills it (a crash).
    pub lock_ttl: Duration,
    /// Deadline of every cache call.
    pub cache_timeout: Duration,
    /// How long a reader waits in total for another caller's fill before reading the database.
    pub busy_wait: Duration,
    /// Largest value stored; larger ones are read from the database every time.
    pub max_item_size: usize,
    /// Prepended to every key: separates deployments or tenants sharing cache servers.
    pub key_namespace: String,
    /// How long a process may serve a shared cache after it last read the fence outbox;
    /// also how long a write whose invalidation did not reach a server waits, at most, before
    /// it resolves (see `docs/consistency.md`, Faults).
    pub fence_lease: Duration,
    /// A reader that meets a writer's lock waits for the writer's fill only while the lock
    /// is younger than this; past it (a slow or dead writer) it reads the database at once.
    pub lock_wait: Duration,
    /// Fault injection for tests: a random pause of up to this long before every fill,
    /// widening the window between a reader's database read and its fill. Zero in production.
    pub fill_delay: Duration,
    /// Near cache entries of every model the schema does not size with `near:` (0, the
    /// default: only those it does). Near caches need an invalidation channel
    /// ([`ContextBuilder::near_channel`]) and a shared backend; `docs/consistency.md`,
    /// "Near caches".
    pub near_entries: u64,
    /// How long a process may serve near copies after it last registered on the
    /// invalidation channel; also the longest a write waits for a holder that does not
    /// acknowledge its invalidation.
    pub near_lease: Duration,
    /// The naive control of the tests, never for production: a write publishes its near
    /// invalidations in the background and resolves without waiting for the holders (the
    /// asynchronous invalidation of other near caches), so a read that starts after it in
    /// another process may return older data.
    pub near_asynchronous: bool,
    /// How many primary keys a context reserves at a time from a model's sequence, for
    /// inserts that lock their key before the statement (PostgreSQL's auto keys of models
    /// whose insert touches no other key: `ModelSql::keyed_insert`). Reserved keys are
    /// handed out in order within the context; keys it never uses are left as gaps, and
    /// rows inserted by different contexts are not numbered in the order of their inserts.
    /// 0: such inserts run in a transaction and take the database's next key.
    pub reserved_keys: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(5),
            lock_ttl: Duration::from_secs(30),
            cache_timeout: Duration::from_millis(250),
            busy_wait: Duration::from_millis(500),
            max_item_size: 1024 * 1024 - 512,
            key_namespace: String::new(),
            fence_lease: Duration::from_secs(1),
            lock_wait: Duration::from_millis(50),
            fill_delay: Duration::ZERO,
            near_entries: 0,
            near_lease: Duration::from_secs(1),
            near_asynchronous: false,
            reserved_keys: 32,
        }
    }
}

struct Inner<DB: Dialect> {
    pool: Pool<DB>,
    backends: BTreeMap<String, Arc<Guarded>>,
    fallback: Option<Arc<Guarded>>,
    /// The fence lease over the shared backends (`None` if none is shared).
    fence: Option<Arc<Fence>>,
    /// The near caches (`None` without an invalidation channel or a shared backend).
    near: Option<Arc<Near>>,
    options: Options,
    stats: Arc<Stats>,
    model_stats: ModelStats,
    /// The key prefix of each model (by its own, un-namespaced prefix) in this namespace.
    key_prefixes: Registry<str>,
    /// Keys reserved for inserts that lock first.
    reserved: Reserved,
    /// What the deletes of each model found (whether to try deleting in one statement).
    delete_hints: DeleteHints,
    /// When the context was built: a rolling deploy's window starts no later.
    started: Instant,
}

/// A database pool plus named cache backends; cheap to clone, shared by all repositories.
pub struct Context<DB: Dialect> {
    inner: Arc<Inner<DB>>,
    /// Reads go to the database and leave the cache alone (see [`Context::uncached`]).
    uncached: bool,
}

impl<DB: Dialect> Clone for Context<DB> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            uncached: self.uncached,
        }
    }
}

impl<DB: Dialect> Context<DB> {
    /// Starts a context on `pool`; add backends with [`ContextBuilder::backend`].
    pub fn builder(pool: Pool<DB>) -> ContextBuilder<DB> {
        ContextBuilder {
            pool,
            backends: Vec::new(),
            fallback: None,
            options: Options::default(),
            require_reachable: false,
            near: None,
        }
    }

    /// The embedded default: every backend name maps to one in-process cache.
    pub fn embedded(pool: Pool<DB>) -> Self {
        Self::builder(pool)
            .fallback(Arc::new(MemoryBackend::new(DEFAULT_CAPACITY)))
            .build()
    }

    /// A view of this context whose reads (`get`, `get_many`, `get_by_…`, `find_by_…`,
    /// collections) come from the database and neither read nor fill any cache, near or
    /// remote: to compare the cache with the database side by side. Writes made through it
    /// keep the cache in step as usual.
    pub fn uncached(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            uncached: true,
        }
    }

    /// Whether reads skip the cache (a view made by [`Context::uncached`]).
    pub(crate) fn reads_uncached(&self) -> bool {
        self.uncached
    }

    /// Empties every cache of the context, remote and near: the next read of every key costs
    /// a query (for tests; see [`crate::CacheBackend::flush`]). Fails with the first
    /// backend that could not be flushed, after trying them all.
    pub async fn flush(&self) -> Result<(), CacheError> {
        if let Some(near) = self.near() {
            near.clear();
        }
        let backends = self.inner.backends.values().chain(&self.inner.fallback);
        let flushed = futures::future::join_all(backends.map(|backend| backend.flush())).await;
        flushed.into_iter().collect()
    }

    /// The database pool.
    pub fn pool(&self) -> &Pool<DB> {
        &self.inner.pool
    }

    /// The protocol's options.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// The keys this context reserved for inserts that lock first.
    pub(crate) fn reserved(&self) -> &Reserved {
        &self.inner.reserved
    }

    /// What this context's deletes found, per model.
    pub(crate) fn delete_hints(&self) -> &DeleteHints {
        &self.inner.delete_hints
    }

    /// The live counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.inner.stats
    }

    /// A copy of the counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// A copy of every model's counters now (database queries, hits, misses, fills, …).
    pub fn model_snapshots(&self) -> std::collections::BTreeMap<String, StatsSnapshot> {
        self.inner.model_stats.snapshot()
    }

    /// Publishes the counters through the [`metrics`] facade, to whatever recorder the
    /// application installed (a Prometheus exporter, say): the context's totals as
    /// `autocache_<counter>_total` (`autocache_hits_total`, `autocache_db_queries_total`, …)
    /// and each model's as `autocache_model_<counter>_total{model="<Model>"}`. Counters are
    /// set to their absolute values, so call it as often as the recorder is scraped.
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self) {
        self.snapshot().record("autocache_", &[]);
        for (model, counters) in self.model_snapshots() {
            counters.record("autocache_model_", &[metrics::Label::new("model", model)]);
        }
    }

    /// Counts into the totals and `model`'s counters.
    pub(crate) fn meter(&self, model: &ModelInfo) -> Meter<'_> {
        Meter {
            total: &self.inner.stats,
            model: self.inner.model_stats.of(model.name),
        }
    }

    /// The start of every key of `model` in this context: the key namespace, then the
    /// model's `<namespace>:<Model>:<schema digest>`. Made once per model, then shared.
    pub(crate) fn key_prefix(&self, model: &ModelInfo) -> Arc<str> {
        self.inner.key_prefixes.get_or(model.key_prefix, || {
            Arc::from([self.inner.options.key_namespace.as_str(), model.key_prefix].concat())
        })
    }

    /// The key prefixes (in this context's namespace) of `model`'s earlier schema versions
    /// whose processes may still be running: [`ModelInfo::retired`] while the context is
    /// younger than [`ModelInfo::rollout`] (a rolling deploy that started this process ends
    /// by then), none afterwards. While there are some, the model's reads go to the database
    /// (old processes do not invalidate this version's keys) and its writes evict this
    /// version's keys and the retired versions' alike (see `docs/consistency.md`, Rolling deploys).
    pub fn retired_prefixes(&self, model: &ModelInfo) -> Vec<String> {
        if model.retired.is_empty() || self.inner.started.elapsed() >= model.rollout {
            return Vec::new();
        }
        let namespace = self.inner.options.key_namespace.as_str();
        model
            .retired
            .iter()
            .map(|prefix| [namespace, prefix].concat())
            .collect()
    }

    /// The backend a model's keys live on.
    pub fn backend_for(&self, model: &ModelInfo) -> Result<&dyn CacheBackend> {
        self.shared_backend_for(model)
            .map(|backend| backend.as_ref() as &dyn CacheBackend)
    }

    /// The fence lease over the shared backends, if any backend is shared.
    pub(crate) fn fence(&self) -> Option<&Arc<Fence>> {
        self.inner.fence.as_ref()
    }

    /// The near caches, if this context has them.
    pub(crate) fn near(&self) -> Option<&Arc<Near>> {
        self.inner.near.as_ref()
    }

    /// The backend a model's keys live on, as the shared handle (for work that outlives a
    /// borrow of the context).
    pub(crate) fn shared_backend_for(&self, model: &ModelInfo) -> Result<&Arc<Guarded>> {
        self.inner
            .backends
            .get(model.backend)
            .or(self.inner.fallback.as_ref())
            .ok_or_else(|| Error::UnknownBackend {
                model: model.name,
                backend: model.backend,
                configured: self.inner.backends.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }
}

/// The name the fallback backend's fences are recorded under.
const FALLBACK: &str = "*";

/// Builds a [`Context`].
pub struct ContextBuilder<DB: Dialect> {
    pool: Pool<DB>,
    backends: Vec<(String, SharedBackend)>,
    fallback: Option<SharedBackend>,
    options: Options,
    require_reachable: bool,
    /// The near copies and the channel that keeps them right, once given.
    near: Option<(Arc<Store>, Arc<dyn Channel>)>,
}

/// How long [`ContextBuilder::backend_url`] waits for a backend's servers to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

impl<DB: Dialect> ContextBuilder<DB> {
    /// Maps the schema's backend `name` to `backend`.
    pub fn backend(mut self, name: impl Into<String>, backend: SharedBackend) -> Self {
        self.backends.push((name.into(), backend));
        self
    }

    /// Maps the schema's backend `name` to the backend at `url` (see [`backend::connect`]),
    /// after probing every server once: one that does not answer is logged as a warning
    /// (its reads go to the database until it does), or, after
    /// [`ContextBuilder::require_reachable`], is an error.
    pub async fn backend_url(self, name: impl Into<String>, url: &str) -> Result<Self> {
        let name = name.into();
        let backend = backend::connect(url).await?;
        let probed = match tokio::time::timeout(PROBE_TIMEOUT, backend.probe()).await {
            Ok(probed) => probed,
            Err(_) => Err(CacheError::Unavailable(format!("no answer within {PROBE_TIMEOUT:?}"))),
        };
        if let Err(error) = probed {
            let reason = format!("cache backend `{name}` at {url} is not reachable: {error}");
            if self.require_reachable {
                return Err(CacheError::Unavailable(reason).into());
            }
            tracing::warn!("{reason}; its reads go to the database until it answers");
        }
        Ok(self.backend(name, backend))
    }

    /// Makes [`ContextBuilder::backend_url`] fail when a server does not answer its probe
    /// (by default it logs a warning and goes on: a cache fault costs speed, not
    /// availability).
    pub fn require_reachable(mut self, require: bool) -> Self {
        self.require_reachable = require;
        self
    }

    /// Turns near caches on, kept right across processes by the invalidation channel at
    /// `url` (`redis://host:port`: pub/sub on a redis server every process reaches); set
    /// the [`Options`] first. Every process sharing the cache servers must use the same
    /// channel, near caches or not, since its writes must reach the others' near copies
    /// (see `docs/consistency.md`, "Near caches"). The channel is connected in the
    /// background; until it answers, nothing is served near and writes wait one fence lease.
    #[cfg(feature = "redis")]
    pub fn near_channel(mut self, url: &str) -> Result<Self> {
        let store = Arc::new(Store::new());
        let channel = crate::near::redis::RedisChannel::open(
            url,
            &self.options.key_namespace,
            Arc::clone(&store),
            self.options.near_lease,
            self.options.cache_timeout,
        )?;
        self.near = Some((store, channel));
        Ok(self)
    }

    /// The backend for every name not mapped explicitly.
    pub fn fallback(mut self, backend: SharedBackend) -> Self {
        self.fallback = Some(backend);
        self
    }

    /// Replaces the protocol's options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Finishes the context; every backend gets the deadline and fault handling of
    /// the guard, and the shared ones (memcached, redis) a fence lease whose outbox is the
    /// table `autocache_outbox` in this pool's database, created on first use.
    pub fn build(self) -> Context<DB> {
        let stats = Arc::new(Stats::default());
        let mut named = self.backends;
        if let Some(fallback) = &self.fallback {
            named.push((FALLBACK.to_owned(), SharedBackend::clone(fallback)));
        }
        let shared: Vec<(String, SharedBackend)> =
            named.iter().filter(|(_, backend)| backend.shared()).cloned().collect();
        let fence = (!shared.is_empty()).then(|| {
            Arc::new(Fence::new(
                self.pool.clone(),
                self.options.fence_lease,
                self.options.cache_timeout,
                &shared,
            ))
        });
        let mut backends: BTreeMap<String, Arc<Guarded>> = named
            .into_iter()
            .map(|(name, backend)| {
                let guarded = Guarded::new(
                    &name,
                    backend,
                    self.options.cache_timeout,
                    Arc::clone(&stats),
                    fence.clone(),
                );
                (name, Arc::new(guarded))
            })
            .collect();
        let fallback = self.fallback.and(backends.remove(FALLBACK));
        let near = match (self.near, &fence) {
            (Some((store, channel)), Some(fence)) => Some(Arc::new(Near::new(
                store,
                channel,
                Arc::clone(fence),
                self.options.near_entries,
                self.options.near_asynchronous,
            ))),
            (Some(_), None) => {
                tracing::warn!("near caches need a shared cache backend (memcached, redis); none is configured");
                None
            }
            (None, _) => None,
        };
        Context {
            inner: Arc::new(Inner {
                pool: self.pool,
                backends,
                fallback,
                fence,
                near,
                options: self.options,
                stats,
                model_stats: ModelStats::default(),
                key_prefixes: Registry::default(),
                reserved: Reserved::default(),
                delete_hints: DeleteHints::default(),
                started: Instant::now(),
            }),
            uncached: false,
        }
    }
}
