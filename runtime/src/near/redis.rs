//! The invalidation channel on redis pub/sub, with a registry of near holders.
//!
//! Names (after the context's key namespace): `autocache:near` carries invalidations to
//! every holder, `autocache:near.<holder id>` carries one holder's renewal echoes and the
//! acknowledgements sent to it, and the sorted set `autocache:near:holders` maps each holder
//! to the redis time (ms) its registration runs out.
//!
//! - **Holding** (every process with a near cache): one subscription to both channels,
//!   read by one task in order. Every quarter lease a script registers the holder until
//!   `now + lease` (redis time) and publishes an echo to its own channel; when the echo
//!   comes back the holder may serve near copies until the moment *before* it sent the
//!   script plus 99 % of the lease. The echo travels the same subscription as the
//!   invalidations, after every one published before the registration: a holder that
//!   serves again has applied them. A new subscription drops every near copy (messages
//!   sent while unsubscribed are lost) and serves only after its first echo.
//! - **Invalidating** (a writer, as it sends its commit; again after its remote fills for
//!   the keys it did not fill under its own lock): one script
//!   publishes the keys and returns the holders still registered and the redis time; the
//!   writer waits for each one's acknowledgement (but its own: it dropped its copies before
//!   publishing), or until its registration must have run out. A holder drops its copies,
//!   then acknowledges.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Notify;

use super::Channel;
use super::store::Store;
use crate::backend::CacheError;

/// How soon a lost subscription is tried again.
const RESUBSCRIBE: Duration = Duration::from_millis(100);

/// Registers the holder `ARGV[1]` for `ARGV[2]` ms of redis time, forgets holders gone for
/// a minute, and publishes the echo `ARGV[3]` to the holder's own channel.
const RENEW: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
redis.call('PUBLISH', KEYS[2], ARGV[3])
return now
";

/// Publishes the invalidation `ARGV[1]`; returns the redis time (ms) and the holders
/// registered beyond it, with the time their registration runs out.
const PUBLISH: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('PUBLISH', KEYS[2], ARGV[1])
return {now, redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')}
";

/// The acknowledgements one invalidation is waiting for.
#[derive(Default)]
struct AckWait {
    acked: Mutex<HashSet<String>>,
    notify: Notify,
}

/// A near holder's side of the redis channel, and a writer's.
pub(crate) struct RedisChannel {
    /// This process's holder id (random).
    id: String,
    /// The channel every invalidation is published on.
    all: String,
    /// This holder's own channel: echoes and acknowledgements.
    own: String,
    /// The registry of holders.
    holders: String,
    client: redis::Client,
    commands: ConnectionManager,
    renew_script: redis::Script,
    publish_script: redis::Script,
    store: Arc<Store>,
    lease: Duration,
    timeout: Duration,
    base: Instant,
    /// The number of the current subscription (0: none yet).
    epoch: AtomicU64,
    /// Nanoseconds after `base` until which near copies may be served.
    serving_until: AtomicU64,
    /// Renewals sent and not echoed yet: sequence number → nanoseconds after `base` when sent.
    renewals: Mutex<HashMap<u64, u64>>,
    next_renewal: AtomicU64,
    /// Invalidations waiting for acknowledgements, by message number.
    waits: Mutex<HashMap<u64, Arc<AckWait>>>,
    next_message: AtomicU64,
}

impl RedisChannel {
    /// Opens the channel at `url` (`redis://host:port`) under `namespace`, holding near
    /// copies in `store` for at most `lease` after each renewal; calls time out after
    /// `timeout`. The connections are made in the background (and remade after a fault):
    /// until the first renewal is echoed, nothing is served near.
    pub(crate) fn open(
        url: &str,
        namespace: &str,
        store: Arc<Store>,
        lease: Duration,
        timeout: Duration,
    ) -> Result<Arc<Self>, CacheError> {
        let invalid = |error: redis::RedisError| CacheError::InvalidUrl {
            url: url.to_owned(),
            reason: error.to_string(),
        };
        let client = redis::Client::open(url).map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(invalid)?;
        let id = format!("{:016x}", rand::random::<u64>());
        let all = format!("{namespace}autocache:near");
        let channel = Arc::new(Self {
            own: format!("{all}.{id}"),
            holders: format!("{all}:holders"),
            all,
            id,
            client,
            commands,
            renew_script: redis::Script::new(RENEW),
            publish_script: redis::Script::new(PUBLISH),
            store,
            lease,
            timeout,
            base: Instant::now(),
            epoch: AtomicU64::new(0),
            serving_until: AtomicU64::new(0),
            renewals: Mutex::new(HashMap::new()),
            next_renewal: AtomicU64::new(0),
            waits: Mutex::new(HashMap::new()),
            next_message: AtomicU64::new(0),
        });
        tokio::spawn(listen(Arc::downgrade(&channel)));
        tokio::spawn(renew_forever(Arc::downgrade(&channel)));
        Ok(channel)
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// Registers this holder once more and publishes the echo that makes it serve.
    async fn renew(&self) {
        let sequence = self.next_renewal.fetch_add(1, Ordering::Relaxed);
        let sent = self.now();
        lock(&self.renewals).insert(sequence, sent);
        let lease_ms = self.lease.as_millis() as u64;
        let mut commands = self.commands.clone();
        let mut invocation = self.renew_script.prepare_invoke();
        invocation
            .key(&self.holders)
            .key(&self.own)
            .arg(&self.id)
            .arg(lease_ms)
            .arg(format!("r\n{sequence}"));
        let call = invocation.invoke_async::<i64>(&mut commands);
        if !matches!(tokio::time::timeout(self.timeout, call).await, Ok(Ok(_))) {
            tracing::debug!("near channel: renewal failed");
        }
        // Echoes that never came are not waited for beyond a lease.
        let stale = sent.saturating_sub(self.lease.as_nanos() as u64);
        lock(&self.renewals).retain(|_, at| *at >= stale);
    }

    /// Subscribes to both channels; the stream of their messages.
    async fn subscribe(&self) -> Result<redis::aio::PubSubStream, redis::RedisError> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(&[self.all.as_str(), self.own.as_str()]).await?;
        Ok(pubsub.into_on_message())
    }

    /// Starts a new epoch: copies read under the last subscription are never served again,
    /// and nothing is served until a renewal is echoed.
    fn begin_epoch(&self) {
        self.serving_until.store(0, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.store.clear();
    }

    /// Applies one message of the subscription.
    fn receive(&self, message: &redis::Msg) {
        let Ok(payload) = message.get_payload::<String>() else {
            return;
        };
        let mut lines = payload.split('\n');
        match (message.get_channel_name() == self.all, lines.next()) {
            (true, Some(writer)) => {
                let Some(number) = lines.next().map(str::to_owned) else {
                    return;
                };
                self.store.invalidate(lines);
                let ack = format!("a\n{number}\n{}", self.id);
                let to = format!("{}.{writer}", self.all);
                let mut commands = self.commands.clone();
                let timeout = self.timeout;
                tokio::spawn(async move {
                    let mut publish = redis::cmd("PUBLISH");
                    publish.arg(to).arg(ack);
                    let _ = tokio::time::timeout(timeout, publish.exec_async(&mut commands)).await;
                });
            }
            (false, Some("r")) => {
                let sequence = lines.next().and_then(|n| n.parse::<u64>().ok());
                if let Some(sent) = sequence.and_then(|n| lock(&self.renewals).remove(&n)) {
                    let until = sent + (self.lease - self.lease / 100).as_nanos() as u64;
                    self.serving_until.fetch_max(until, Ordering::AcqRel);
                }
            }
            (false, Some("a")) => {
                let (Some(number), Some(holder)) = (lines.next().and_then(|n| n.parse::<u64>().ok()), lines.next())
                else {
                    return;
                };
                if let Some(wait) = lock(&self.waits).get(&number) {
                    lock(&wait.acked).insert(holder.to_owned());
                    wait.notify.notify_one();
                }
            }
            _ => {}
        }
    }

    /// Publishes `keys` and waits until every registered holder acknowledged or ran out of
    /// registration; `false` if the channel could not be used.
    async fn publish(&self, keys: &[String]) -> bool {
        let number = self.next_message.fetch_add(1, Ordering::Relaxed);
        let wait = Arc::new(AckWait::default());
        lock(&self.waits).insert(number, Arc::clone(&wait));
        let payload = format!("{}\n{number}\n{}", self.id, keys.join("\n"));
        let mut commands = self.commands.clone();
        let mut invocation = self.publish_script.prepare_invoke();
        invocation.key(&self.holders).key(&self.all).arg(payload);
        let call = invocation.invoke_async::<(i64, Vec<String>)>(&mut commands);
        let answer = tokio::time::timeout(self.timeout, call).await;
        let received = Instant::now();
        let done = match answer {
            Ok(Ok((now, live))) => {
                // This process dropped its own copies before publishing.
                let pending = live
                    .chunks(2)
                    .filter_map(|pair| {
                        let [holder, until] = pair else { return None };
                        if *holder == self.id {
                            return None;
                        }
                        let left = until.parse::<f64>().ok()? - now as f64;
                        // Redis time runs at the writer's rate to within 1 %.
                        let left = Duration::from_secs_f64((left.max(0.0) * 1.01 + 2.0) / 1000.0);
                        Some((holder.clone(), received + left))
                    })
                    .collect();
                wait_for_acks(&wait, pending).await;
                true
            }
            _ => false,
        };
        lock(&self.waits).remove(&number);
        done
    }
}

/// Waits until each holder in `pending` acknowledged in `wait`, or its deadline passed.
async fn wait_for_acks(wait: &AckWait, mut pending: Vec<(String, Instant)>) {
    loop {
        let now = Instant::now();
        {
            let acked = lock(&wait.acked);
            pending.retain(|(holder, deadline)| !acked.contains(holder) && now < *deadline);
        }
        let Some(next) = pending.iter().map(|(_, deadline)| *deadline).min() else {
            return;
        };
        // notify_one keeps a permit: an acknowledgement between the check and here is not lost.
        let _ = tokio::time::timeout_at(next.into(), wait.notify.notified()).await;
    }
}

impl Channel for RedisChannel {
    fn epoch(&self) -> Option<u64> {
        (self.now() < self.serving_until.load(Ordering::Acquire)).then(|| self.epoch.load(Ordering::Acquire))
    }

    fn invalidate<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, bool> {
        Box::pin(self.publish(keys))
    }
}

/// Reads the subscription while the channel lives, subscribing again after a fault.
async fn listen(channel: Weak<RedisChannel>) {
    loop {
        let Some(strong) = channel.upgrade() else {
            return;
        };
        let subscribed = tokio::time::timeout(strong.timeout, strong.subscribe()).await;
        let Ok(Ok(mut stream)) = subscribed else {
            drop(strong);
            tokio::time::sleep(RESUBSCRIBE).await;
            continue;
        };
        strong.begin_epoch();
        let lease = strong.lease;
        drop(strong);
        loop {
            match tokio::time::timeout(lease, stream.next()).await {
                Ok(Some(message)) => match channel.upgrade() {
                    Some(strong) => strong.receive(&message),
                    None => return,
                },
                Ok(None) => break,
                Err(_) if channel.strong_count() == 0 => return,
                Err(_) => {}
            }
        }
        tracing::warn!("near channel: subscription lost; near copies dropped");
        if let Some(strong) = channel.upgrade() {
            // Messages published from now on are lost: nothing read so far is served again.
            strong.begin_epoch();
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

/// Renews the registration every quarter lease while the channel lives.
async fn renew_forever(channel: Weak<RedisChannel>) {
    loop {
        let Some(strong) = channel.upgrade() else {
            return;
        };
        let pause = strong.lease / 4;
        // Not awaited here: a renewal stuck on a paused server must not delay the next one.
        tokio::spawn(async move { strong.renew().await });
        tokio::time::sleep(pause).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
