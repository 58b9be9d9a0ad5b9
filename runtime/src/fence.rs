//! Fences: a write whose invalidation could not reach a cache server is not acknowledged
//! until no process can serve that server's copy any more.
//!
//! The database the writer commits to is the one party every process reaches, so a missed
//! invalidation is recorded there, in the table `autocache_outbox` (scope = backend name and
//! server, cache key): inside the write's own transaction when its lock did not reach the
//! server, in a transaction of its own when the fill or eviction after commit did not. A
//! process may serve from a shared backend only under a **fence lease**: it read the outbox
//! (and delivered every invalidation it found, deleting those rows) at most
//! [`Options::fence_lease`](crate::Options::fence_lease) ago. A writer whose invalidation is
//! still undelivered waits one lease after the outbox row became visible (or until it
//! delivers the invalidation itself), so every lease granted before the row was visible has
//! run out: any read that starts after the write resolved first delivers the invalidation or
//! reads the database. `docs/consistency.md` has the argument.
//!
//! Steady state costs a clock read per cache call and one `SELECT` on the (empty) outbox
//! per process every half lease, started in the background.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, join_all};
use sqlx::Pool;

use crate::backend::{CacheBackend, CacheError, SharedBackend};
use crate::db::{Dialect, SqlQuery};

/// How soon a process retries delivering to a server it could not reach.
const RETRY: Duration = Duration::from_millis(100);

/// How often a waiting writer tries to deliver its invalidations itself.
const SELF_DELIVERY: Duration = Duration::from_millis(25);

/// One invalidation that did not reach its server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Undelivered {
    /// `<backend name>@<server>`: what the fence is recorded under.
    pub scope: String,
    /// The cache key to delete.
    pub key: String,
}

/// A row of the outbox: id, scope, cache key.
type Entry = (i64, String, String);

/// The fence outbox in the context's database, behind an object-safe face so the backends
/// need not know the database type.
trait Outbox: Send + Sync {
    /// Creates the table if it is missing.
    fn create(&self) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    /// Every recorded invalidation: id, scope and key, oldest first.
    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, sqlx::Error>>;
    /// Records invalidations, committed before this returns.
    fn record(&self, entries: Vec<Undelivered>) -> BoxFuture<'_, Result<(), sqlx::Error>>;
    /// Deletes delivered entries.
    fn remove(&self, ids: Vec<i64>) -> BoxFuture<'_, Result<(), sqlx::Error>>;
}

/// The outbox on a connection pool.
struct PoolOutbox<DB: Dialect>(Pool<DB>);

impl<DB: Dialect> Outbox for PoolOutbox<DB> {
    fn create(&self) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let mut conn = self.0.acquire().await?;
            DB::execute(&mut conn, sqlx::query(DB::CREATE_OUTBOX)).await.map(drop)
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<Vec<Entry>, sqlx::Error>> {
        Box::pin(async move {
            let mut conn = self.0.acquire().await?;
            let sql = "SELECT id, scope, cache_key FROM autocache_outbox ORDER BY id";
            let rows = DB::fetch_all(&mut conn, sqlx::query(sql)).await?;
            rows.iter().map(DB::outbox_entry).collect()
        })
    }

    fn record(&self, entries: Vec<Undelivered>) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let mut conn = self.0.acquire().await?;
            record_in::<DB>(&mut conn, &entries).await
        })
    }

    fn remove(&self, ids: Vec<i64>) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let mut conn = self.0.acquire().await?;
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            // The ids are integers read from the table itself: nothing to escape.
            let sql = format!("DELETE FROM autocache_outbox WHERE id IN ({})", list.join(", "));
            DB::execute(&mut conn, sqlx::query(sqlx::AssertSqlSafe(sql)))
                .await
                .map(drop)
        })
    }
}

/// Records `entries` in the outbox on `conn` (inside the caller's transaction, if any).
pub(crate) async fn record_in<DB: Dialect>(
    conn: &mut DB::Connection,
    entries: &[Undelivered],
) -> Result<(), sqlx::Error> {
    for chunk in entries.chunks(200) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({}, {})", DB::placeholder(2 * i + 1), DB::placeholder(2 * i + 2)))
            .collect();
        let sql = format!(
            "INSERT INTO autocache_outbox (scope, cache_key) VALUES {}",
            values.join(", ")
        );
        let mut query: SqlQuery<DB> = sqlx::query(sqlx::AssertSqlSafe(sql));
        for entry in chunk {
            query = DB::bind_text(query, entry.scope.clone());
            query = DB::bind_text(query, entry.key.clone());
        }
        DB::execute(conn, query).await?;
    }
    Ok(())
}

/// A context's fence lease over its shared backends.
pub(crate) struct Fence {
    outbox: Box<dyn Outbox>,
    lease: Duration,
    /// Deadline of one delivery.
    timeout: Duration,
    /// The unguarded backend serving each scope.
    scopes: HashMap<String, SharedBackend>,
    base: Instant,
    /// Nanoseconds after `base` until which every scope not blocked may be served.
    valid_until: AtomicU64,
    /// Nanoseconds after `base` after which a call starts a renewal.
    renew_after: AtomicU64,
    /// Scopes with invalidations this process could not deliver: not served.
    blocked: Mutex<HashSet<String>>,
    any_blocked: AtomicBool,
    /// Whether the outbox table is known to exist.
    created: AtomicBool,
    renewing: tokio::sync::Mutex<()>,
    in_background: AtomicBool,
    /// Counts completed renewals: a near copy is served only under the renewal it was read
    /// after (see [`crate::near`]).
    generation: AtomicU64,
}

impl Fence {
    /// A fence over `backends` (name, unguarded backend), with its outbox in `pool`.
    pub(crate) fn new<DB: Dialect>(
        pool: Pool<DB>,
        lease: Duration,
        timeout: Duration,
        backends: &[(String, SharedBackend)],
    ) -> Self {
        let scopes = backends
            .iter()
            .flat_map(|(name, backend)| {
                scopes(name, backend.as_ref())
                    .into_iter()
                    .map(move |scope| (scope, SharedBackend::clone(backend)))
            })
            .collect();
        Self {
            outbox: Box::new(PoolOutbox(pool)),
            lease,
            timeout,
            scopes,
            base: Instant::now(),
            valid_until: AtomicU64::new(0),
            renew_after: AtomicU64::new(0),
            blocked: Mutex::new(HashSet::new()),
            any_blocked: AtomicBool::new(false),
            created: AtomicBool::new(false),
            renewing: tokio::sync::Mutex::new(()),
            in_background: AtomicBool::new(false),
            generation: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        nanos(self.base.elapsed())
    }

    /// Whether the lease is held with nothing blocked and no renewal due: the hit path.
    pub(crate) fn fresh(&self) -> bool {
        self.now() < self.renew_after.load(Ordering::Acquire) && !self.any_blocked.load(Ordering::Acquire)
    }

    /// Succeeds if a call may be served from these scopes now; renews the lease first if it
    /// ran out, or starts a renewal in the background if one is due.
    pub(crate) async fn admit(self: &Arc<Self>, scopes: impl Iterator<Item = &str>) -> Result<(), CacheError> {
        if self.now() >= self.valid_until.load(Ordering::Acquire) {
            self.renew().await;
        } else {
            self.renew_in_background();
        }
        if self.now() >= self.valid_until.load(Ordering::Acquire) {
            return Err(CacheError::Unavailable(
                "no fence lease: the outbox could not be read".into(),
            ));
        }
        if self.any_blocked.load(Ordering::Acquire) {
            let blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(scope) = scopes.into_iter().find(|scope| blocked.contains(*scope)) {
                return Err(CacheError::Unavailable(format!(
                    "{scope} has invalidations this process could not deliver yet"
                )));
            }
        }
        Ok(())
    }

    /// The lease's length.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// The number of the last completed renewal while the lease is held (starting a renewal
    /// in the background if one is due); `None` once it ran out. A near copy read after
    /// renewal `n` may be served only while this is still `n`.
    pub(crate) fn generation(self: &Arc<Self>) -> Option<u64> {
        if self.now() >= self.valid_until.load(Ordering::Acquire) {
            return None;
        }
        self.renew_in_background();
        Some(self.generation.load(Ordering::Acquire))
    }

    /// Makes the next call renew the lease first (this process missed an invalidation).
    pub(crate) fn expire(&self) {
        self.valid_until.store(0, Ordering::Release);
        self.renew_after.store(0, Ordering::Release);
    }

    /// Creates the outbox table if this process has not seen it yet.
    pub(crate) async fn ensure_created(&self) -> bool {
        if self.created.load(Ordering::Acquire) {
            return true;
        }
        // Concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL; the retry sees it.
        for _ in 0..3 {
            match self.outbox.create().await {
                Ok(()) => {
                    self.created.store(true, Ordering::Release);
                    return true;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot create the fence outbox; shared caches are not used");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        false
    }

    fn renew_in_background(self: &Arc<Self>) {
        if self.now() < self.renew_after.load(Ordering::Acquire) || self.in_background.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.in_background.store(false, Ordering::Release);
            return;
        };
        let fence = Arc::clone(self);
        runtime.spawn(async move {
            fence.renew().await;
            fence.in_background.store(false, Ordering::Release);
        });
    }

    /// Reads the outbox, delivers what it holds, and extends the lease from the moment
    /// before the read.
    async fn renew(&self) {
        let _renewing = self.renewing.lock().await;
        let started = self.now();
        if started < self.renew_after.load(Ordering::Acquire) {
            return; // renewed while this call waited
        }
        if !self.ensure_created().await {
            return;
        }
        let entries = match self.outbox.pending().await {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, "cannot read the fence outbox; reading the database");
                return;
            }
        };
        let ours: Vec<&(i64, String, String)> = entries
            .iter()
            .filter(|(_, scope, _)| self.scopes.contains_key(scope.as_str()))
            .collect();
        let blocked = self
            .deliver_each(ours.iter().map(|(_, scope, key)| (scope.as_str(), key.as_str())))
            .await;
        let delivered: Vec<i64> = ours
            .iter()
            .filter(|(_, scope, _)| !blocked.contains(scope.as_str()))
            .map(|(id, _, _)| *id)
            .collect();
        let blocked: HashSet<String> = blocked.into_iter().map(str::to_owned).collect();
        if !delivered.is_empty()
            && let Err(error) = self.outbox.remove(delivered).await
        {
            tracing::warn!(%error, "cannot delete delivered fence entries; they are delivered again");
        }
        let retry_soon = !blocked.is_empty();
        {
            let mut shared = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
            *shared = blocked;
            self.any_blocked.store(retry_soon, Ordering::Release);
        }
        let next = if retry_soon { RETRY } else { self.lease / 2 };
        self.valid_until.store(started + nanos(self.lease), Ordering::Release);
        self.renew_after.store(started + nanos(next), Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Deletes each (scope, key) on its server, the servers in parallel; the scopes whose
    /// server did not confirm.
    async fn deliver_each<'e>(&self, entries: impl Iterator<Item = (&'e str, &'e str)>) -> HashSet<&'e str> {
        let mut by_scope: HashMap<&str, Vec<&str>> = HashMap::new();
        for (scope, key) in entries {
            by_scope.entry(scope).or_default().push(key);
        }
        let attempts = by_scope
            .iter()
            .map(|(scope, keys)| async move { (*scope, self.deliver(scope, keys).await) });
        join_all(attempts)
            .await
            .into_iter()
            .filter_map(|(scope, done)| (!done).then_some(scope))
            .collect()
    }

    /// Deletes `keys` on the server of `scope`; whether that was confirmed.
    async fn deliver(&self, scope: &str, keys: &[&str]) -> bool {
        let Some(backend) = self.scopes.get(scope) else {
            return false;
        };
        matches!(
            tokio::time::timeout(self.timeout, backend.evict(keys)).await,
            Ok(Ok(()))
        )
    }

    /// After a commit: makes every invalidation in `missed` safe before the write resolves.
    /// Those not yet in the outbox (`recorded` are, since `committed`) are recorded; then
    /// the writer delivers them itself, or waits until every lease granted before the
    /// outbox held them has run out, whichever comes first.
    pub(crate) async fn settle(&self, missed: Vec<Undelivered>, recorded: &HashSet<Undelivered>, committed: Instant) {
        let unrecorded: Vec<Undelivered> = missed.iter().filter(|m| !recorded.contains(*m)).cloned().collect();
        let mut fenced_at = committed;
        if !unrecorded.is_empty() {
            let give_up = Instant::now() + self.lease * 5;
            loop {
                match self.outbox.record(unrecorded.clone()).await {
                    Ok(()) => break,
                    Err(error) if Instant::now() < give_up => {
                        tracing::warn!(%error, "cannot record a fence; retrying");
                        tokio::time::sleep(RETRY).await;
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot record a fence: other processes may serve a stale copy until its TTL");
                        break;
                    }
                }
            }
            fenced_at = Instant::now();
        }
        // This process, too, must find the outbox entries before it serves again.
        self.expire();
        // Clocks: every process's monotonic clock runs at the same rate to within 1 %.
        let deadline = fenced_at + self.lease + self.lease / 100 + Duration::from_millis(2);
        let mut left = missed;
        loop {
            let blocked: HashSet<String> = self
                .deliver_each(left.iter().map(|entry| (entry.scope.as_str(), entry.key.as_str())))
                .await
                .into_iter()
                .map(str::to_owned)
                .collect();
            left.retain(|entry| blocked.contains(&entry.scope));
            let now = Instant::now();
            if left.is_empty() || now >= deadline {
                return;
            }
            tokio::time::sleep(SELF_DELIVERY.min(deadline - now)).await;
        }
    }
}

/// The fence scopes of `backend`, configured as `name`: `<name>@<server>` for each of its
/// servers, in the order of [`CacheBackend::servers`].
pub(crate) fn scopes(name: &str, backend: &dyn CacheBackend) -> Vec<String> {
    backend
        .servers()
        .iter()
        .map(|server| format!("{name}@{server}"))
        .collect()
}

/// A duration as the nanoseconds the lease's atomics hold.
fn nanos(duration: Duration) -> u64 {
    duration.as_nanos() as u64
}
