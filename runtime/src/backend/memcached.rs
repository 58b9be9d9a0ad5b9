//! The memcached backend: memcached's meta protocol (`mg`, `ms`, `md`) and, for multi-key
//! reads, the text protocol's `gets`, spoken over a pool of connections per server, with
//! the routing done here.
//!
//! - **Routing.** Rendezvous (highest random weight) hashing over the key bytes and each
//!   server's identity, the `host:port` string exactly as configured, with FNV-1a 64 and a
//!   SplitMix64 finalizer. The hash is fixed by this file, not by the Rust release (std's
//!   `DefaultHasher` may change) nor by a client crate, so every process configured with
//!   the same server strings, in any order, routes every key alike, and removing a server
//!   only moves the keys it held. Configure the same strings everywhere: `localhost:11211`
//!   and `127.0.0.1:11211` are different identities.
//! - **Round trips.** Every call sends one pipelined batch per server, the servers in
//!   parallel, and answers in the caller's key order. A lookup of one key is one `mg`. A
//!   lookup of several keys on one server is one `gets k1 k2 …` (memcached answers a
//!   multi-key `gets` several times faster per key than as many `mg`s), which returns the
//!   hits with their CAS; only if some key was not found, a second batch of `mg … N` asks
//!   for the leases of those keys: a hit costs one round trip, a miss (which reads the
//!   database anyway) two.
//! - **Mapping.** A lookup is `mg <key> v c N<lease ttl>`. A non-empty value is a hit whose
//!   CAS is the token. On a miss memcached creates a zero-byte placeholder and hands the win
//!   flag (`W`) to exactly one reader: that is our lease, its token the placeholder's CAS. A
//!   placeholder someone else won (`Z`) is [`Lookup::Busy`], and so is any other zero-byte
//!   item (`gets` sees placeholders as zero-byte items too). A stale item (`X`) is a lease
//!   if we won it, busy otherwise (this backend never marks items stale, so `gets` needs
//!   no such case). A fill is `ms … C<token>`, a lock an unconditional `ms` returning the
//!   new CAS, a release `md … C<token>`, an eviction `md`. Zero-byte values are reserved
//!   for lease placeholders: the runtime never stores one and [`MemcachedBackend`] refuses
//!   to. A value the server refuses (`SERVER_ERROR`: larger than its item limit, 1 MiB by
//!   default, or out of memory) is a fill that did not happen (`Ok(false)`); memcached
//!   then also drops whatever the key held. Keys must be at most 250 printable ASCII bytes
//!   ([`crate::key`] makes them so); any other key is refused as an error before anything
//!   is sent.
//! - **Connections.** Each server keeps a stack of idle connections. A call takes one (or
//!   dials one), runs its exchange on the caller's own task and puts the connection back:
//!   no task per exchange, no hop between threads. Requests are encoded straight into the
//!   connection's buffer and written with one `write`; answers are parsed out of one read
//!   buffer, values handed out as slices of it without copying. A pooled connection that
//!   turns out closed before answering anything (the server restarted) is replaced by a
//!   fresh one once.
//! - **Faults.** A server that fails (connection refused, I/O error, no answer within
//!   [`IO_TIMEOUT`], an answer that is not the protocol) is marked down for [`DOWN_FOR`]:
//!   calls routed to it fail at once with [`CacheError::Unavailable`] instead of waiting
//!   for connect timeouts. After that window one call tries it again, but before anything
//!   is read from it (or written to it) the server must accept a `flush_all`: while we
//!   could not reach it, it may have missed invalidations. That covers a network
//!   partition, after which the server still holds items that may be stale; a restarted
//!   memcached is empty anyway. If the flush fails the server is marked down again; a
//!   server on which `flush_all` is disabled (`-F`) is never used again by this process
//!   once it has failed, which is the safe outcome. A caller that stops waiting in the
//!   middle of an exchange (the deadline of [`super::guard`]) hands the connection to a
//!   task that finishes the exchange within the same [`IO_TIMEOUT`], so a failure is
//!   noticed and recorded even then, and a connection that did answer goes back to the
//!   pool. A command the server rejects as malformed (`CLIENT_ERROR`) is an error of the
//!   call, not of the server. Errors never panic and never hang.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use futures::future::join_all;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::{CacheBackend, CacheError, Lookup, Token};

/// How long a server that failed is skipped before it is tried (and flushed) again.
pub const DOWN_FOR: Duration = Duration::from_secs(1);

/// Bound on dialing (and resolving) one server.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Bound on one exchange (writing the requests and reading every answer).
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);

/// memcached reads relative TTLs above this many seconds as absolute unix timestamps.
const MAX_RELATIVE_SECS: u32 = 30 * 24 * 60 * 60;

/// Longest item TTL sent (as an absolute timestamp when over [`MAX_RELATIVE_SECS`]).
const MAX_TTL_SECS: u32 = 365 * 24 * 60 * 60;

/// Longest key memcached accepts.
const MAX_KEY_LEN: usize = 250;

/// Keys per `gets` command (a batch may hold several such commands).
const GETS_CHUNK: usize = 100;

/// Idle connections kept per server.
const MAX_IDLE: usize = 64;

/// Bytes read at a time; a longer answer grows the buffer.
const READ_CHUNK: usize = 16 * 1024;

/// Longest answer line accepted (a `VALUE` line holds a key of at most 250 bytes).
const MAX_LINE: usize = 1024;

/// A cache on one or more memcached servers, keys spread by rendezvous hashing.
pub struct MemcachedBackend {
    servers: Vec<Arc<Server>>,
    /// Per server: the hash of its identity, mixed into every key's score.
    seeds: Vec<u64>,
}

impl MemcachedBackend {
    /// Opens a backend on `servers` (`host:port` each). Addresses are resolved here but
    /// connections are made on first use, so a server that is down does not fail this call.
    pub async fn connect(servers: &[String]) -> Result<Self, CacheError> {
        let url = format!("memcache://{}", servers.join(","));
        let invalid = |reason: String| CacheError::InvalidUrl {
            url: url.clone(),
            reason,
        };
        if servers.is_empty() {
            return Err(invalid("memcache:// needs at least one host:port".into()));
        }
        let mut identities: Vec<String> = Vec::with_capacity(servers.len());
        for server in servers {
            let server = server.trim();
            let host_port = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port != 0));
            if !host_port {
                return Err(invalid(format!(
                    "`{server}` is not host:port (for example 127.0.0.1:11211)"
                )));
            }
            if identities.iter().any(|known| known == server) {
                return Err(invalid(format!("`{server}` is listed twice")));
            }
            identities.push(server.to_owned());
        }
        let seeds = identities
            .iter()
            .map(|identity| mix(fnv1a64(identity.as_bytes())))
            .collect();
        let servers: Vec<Arc<Server>> = identities.into_iter().map(|addr| Arc::new(Server::new(addr))).collect();
        // Resolve every address now; one that does not resolve is marked down, not fatal.
        join_all(servers.iter().map(|server| server.resolve())).await;
        Ok(Self { servers, seeds })
    }

    /// The index, into the configured server list, of the server that holds `key`.
    pub fn server_for(&self, key: &str) -> usize {
        if self.servers.len() == 1 {
            return 0;
        }
        rendezvous(key.as_bytes(), &self.seeds)
    }

    /// The indices of `keys` grouped by server, servers with no key left out.
    fn group(&self, keys: &[&str]) -> Vec<(usize, Vec<usize>)> {
        if self.servers.len() == 1 {
            return vec![(0, (0..keys.len()).collect())];
        }
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); self.servers.len()];
        for (index, key) in keys.iter().enumerate() {
            groups[self.server_for(key)].push(index);
        }
        groups
            .into_iter()
            .enumerate()
            .filter(|(_, indices)| !indices.is_empty())
            .collect()
    }

    /// Runs one exchange with server `index`, once it is known up and flushed: `encode`
    /// writes the requests into the connection's buffer, `expect` says what answers they get.
    /// A failure of the server marks it down.
    async fn exchange(
        &self,
        index: usize,
        encode: impl Fn(&mut Vec<u8>),
        expect: Expect<'_>,
    ) -> Result<Answer, CacheError> {
        let server = self
            .servers
            .get(index)
            .ok_or_else(|| CacheError::Protocol(format!("no memcached server #{index}")))?;
        server.ready().await?;
        let mut redialed = false;
        loop {
            let (conn, pooled) = match server.take_idle() {
                Some(conn) => (conn, true),
                None => (server.dial().await?, false),
            };
            let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
            let mut checkout = Checkout {
                server,
                conn: Some(conn),
                deadline,
            };
            let conn = checkout.conn.as_mut().expect("just checked out");
            conn.begin(&encode, &expect);
            let outcome = tokio::time::timeout_at(deadline, conn.run(&expect)).await;
            let answered = conn.answered;
            match outcome {
                Ok(Ok(answer)) => {
                    checkout.put_back();
                    return Ok(answer);
                }
                Ok(Err(Fault::Rejected(reason))) => {
                    checkout.discard();
                    return Err(CacheError::Protocol(format!("memcached {}: {reason}", server.addr)));
                }
                Ok(Err(Fault::Lost(reason))) => {
                    checkout.discard();
                    // A pooled connection the server had closed: try once on a new one.
                    if pooled && !answered && !redialed {
                        redialed = true;
                        continue;
                    }
                    return Err(server.mark_down(reason));
                }
                Err(_) => {
                    checkout.discard();
                    return Err(server.mark_down(format!("no answer within {IO_TIMEOUT:?}")));
                }
            }
        }
    }

    /// Pipelined meta commands with one answer each.
    async fn metas(&self, index: usize, count: usize, encode: impl Fn(&mut Vec<u8>)) -> Result<Vec<Reply>, CacheError> {
        match self.exchange(index, encode, Expect::Metas(count)).await? {
            Answer::Metas(replies) if replies.len() == count => Ok(replies),
            _ => Err(CacheError::Protocol("memcached answers do not match the requests".into())),
        }
    }

    /// Looks up `keys`, all on server `index`.
    async fn lookup_on(&self, index: usize, keys: &[&str], lease: u32) -> Result<Vec<Lookup>, CacheError> {
        if let [key] = keys {
            let replies = self.metas(index, 1, |buf| encode_lookup(buf, key, lease)).await?;
            return replies.into_iter().map(to_lookup).collect();
        }
        let found = match self.exchange(index, |buf| encode_gets(buf, keys), Expect::Gets(keys)).await? {
            Answer::Gets(found) if found.len() == keys.len() => found,
            _ => return Err(CacheError::Protocol("memcached answers do not match the requests".into())),
        };
        let mut lookups = Vec::with_capacity(keys.len());
        let mut missed: Vec<usize> = Vec::new();
        for (index, hit) in found.into_iter().enumerate() {
            lookups.push(match hit {
                Some((bytes, cas)) if !bytes.is_empty() => Lookup::Value {
                    bytes,
                    token: Token(cas),
                },
                // A placeholder: someone holds the lease.
                Some(_) => Lookup::Busy,
                None => {
                    missed.push(index);
                    Lookup::Busy
                }
            });
        }
        if !missed.is_empty() {
            let encode = |buf: &mut Vec<u8>| {
                for &i in &missed {
                    encode_lookup(buf, keys[i], lease);
                }
            };
            let replies = self.metas(index, missed.len(), encode).await?;
            for (&i, reply) in missed.iter().zip(replies) {
                lookups[i] = to_lookup(reply)?;
            }
        }
        Ok(lookups)
    }

    /// Deletes lease placeholders this caller won but will not fill (best effort).
    async fn give_back(&self, leases: Vec<(String, Token)>) {
        let releases = leases.iter().map(|(key, token)| self.release(key, *token));
        join_all(releases).await;
    }
}

#[async_trait]
impl CacheBackend for MemcachedBackend {
    fn kind(&self) -> &'static str {
        "memcached"
    }

    async fn lookup(&self, keys: &[&str], lease_ttl: Duration) -> Result<Vec<Lookup>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        check_keys(keys)?;
        let lease = secs(lease_ttl, MAX_RELATIVE_SECS);
        if self.servers.len() == 1 {
            return self.lookup_on(0, keys, lease).await;
        }
        let groups = self.group(keys);
        let exchanges = groups.iter().map(|(server, indices)| {
            let asked: Vec<&str> = indices.iter().map(|&index| keys[index]).collect();
            async move { self.lookup_on(*server, &asked, lease).await }
        });
        let answers = join_all(exchanges).await;
        let mut found = vec![Lookup::Busy; keys.len()];
        let mut won = Vec::new();
        let mut failure = None;
        for ((_, indices), answer) in groups.iter().zip(answers) {
            match answer {
                Ok(lookups) => {
                    for (&index, lookup) in indices.iter().zip(lookups) {
                        if let Lookup::Lease(token) = lookup {
                            won.push((keys[index].to_owned(), token));
                        }
                        found[index] = lookup;
                    }
                }
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        if let Some(error) = failure {
            // The caller reads the database for every key: free the leases it cannot use.
            self.give_back(won).await;
            return Err(error);
        }
        Ok(found)
    }

    async fn fill(&self, key: &str, bytes: &[u8], token: Token, ttl: Duration) -> Result<bool, CacheError> {
        if bytes.is_empty() {
            return Err(CacheError::Protocol(
                "zero-byte values are reserved for lease placeholders".into(),
            ));
        }
        check_keys(&[key])?;
        let ttl = wire_ttl(secs(ttl, MAX_TTL_SECS));
        let encode = |buf: &mut Vec<u8>| encode_set(buf, key, bytes, ttl, Some(token.0));
        let reply = self.metas(self.server_for(key), 1, encode).await?.pop();
        match reply.map(|reply| reply.code) {
            // Stored.
            Some(Code::Hd) => Ok(true),
            // The token no longer holds (CAS mismatch, key gone), or the server cannot store
            // this value (too large, out of memory).
            Some(Code::Ex | Code::Nf | Code::Ns | Code::ServerError) => Ok(false),
            other => Err(CacheError::Protocol(format!("memcached answered {other:?} to a fill"))),
        }
    }

    async fn lock(&self, keys: &[&str], marker: &[u8], ttl: Duration) -> Result<Vec<Token>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        check_keys(keys)?;
        let ttl = wire_ttl(secs(ttl, MAX_TTL_SECS));
        let groups = self.group(keys);
        let exchanges = groups.iter().map(|(server, indices)| {
            let encode = move |buf: &mut Vec<u8>| {
                for &index in indices {
                    encode_set(buf, keys[index], marker, ttl, None);
                }
            };
            self.metas(*server, indices.len(), encode)
        });
        let answers = join_all(exchanges).await;
        let mut tokens = vec![Token(0); keys.len()];
        for ((_, indices), answer) in groups.iter().zip(answers) {
            for (&index, reply) in indices.iter().zip(answer?) {
                match (reply.code, reply.cas) {
                    (Code::Hd, Some(cas)) => tokens[index] = Token(cas),
                    (code, cas) => {
                        return Err(CacheError::Protocol(format!(
                            "memcached did not lock `{}` ({code:?}, CAS {cas:?})",
                            keys[index]
                        )));
                    }
                }
            }
        }
        Ok(tokens)
    }

    async fn release(&self, key: &str, token: Token) -> Result<(), CacheError> {
        check_keys(&[key])?;
        let encode = |buf: &mut Vec<u8>| encode_delete(buf, key, Some(token.0));
        let reply = self.metas(self.server_for(key), 1, encode).await?.pop();
        // A mismatch or a missing key means the lock or lease is no longer ours: nothing to do.
        match reply.map(|reply| reply.code) {
            Some(Code::Hd | Code::Nf | Code::Ex) => Ok(()),
            other => Err(CacheError::Protocol(format!("memcached answered {other:?} to a release"))),
        }
    }

    async fn evict(&self, keys: &[&str]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        check_keys(keys)?;
        let groups = self.group(keys);
        let exchanges = groups.iter().map(|(server, indices)| async move {
            let encode = |buf: &mut Vec<u8>| {
                for &index in indices {
                    encode_delete(buf, keys[index], None);
                }
            };
            // Deleted or already absent: either way the key holds nothing.
            for reply in self.metas(*server, indices.len(), encode).await? {
                if !matches!(reply.code, Code::Hd | Code::Nf) {
                    return Err(CacheError::Protocol(format!(
                        "memcached answered {:?} to an eviction",
                        reply.code
                    )));
                }
            }
            Ok(())
        });
        join_all(exchanges).await.into_iter().collect()
    }
}

/// Refuses keys memcached would not take (or would take as something else).
fn check_keys(keys: &[&str]) -> Result<(), CacheError> {
    for key in keys {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CacheError::Protocol(format!(
                "key of {} bytes is not 1..=250 printable ASCII bytes: {:?}",
                key.len(),
                key.chars().take(60).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// The TTL as sent: relative seconds, or an absolute timestamp beyond memcached's 30 days.
fn wire_ttl(secs: u32) -> u32 {
    if secs <= MAX_RELATIVE_SECS {
        return secs;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    u32::try_from(now + u64::from(secs)).unwrap_or(u32::MAX)
}

/// Appends the decimal digits of `n`.
fn push_number(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

/// `mg <key> v c N<lease>`: the value and its CAS, or a lease on a miss.
fn encode_lookup(buf: &mut Vec<u8>, key: &str, lease: u32) {
    buf.extend_from_slice(b"mg ");
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b" v c N");
    push_number(buf, u64::from(lease));
    buf.extend_from_slice(b"\r\n");
}

/// `gets k1 k2 …`, at most [`GETS_CHUNK`] keys per command.
fn encode_gets(buf: &mut Vec<u8>, keys: &[&str]) {
    for chunk in keys.chunks(GETS_CHUNK) {
        buf.extend_from_slice(b"gets");
        for key in chunk {
            buf.push(b' ');
            buf.extend_from_slice(key.as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
    }
}

/// `ms <key> <len> T<ttl> C<cas>` (a fill) or `ms <key> <len> T<ttl> c` (a lock, returning
/// the new CAS), then the data.
fn encode_set(buf: &mut Vec<u8>, key: &str, data: &[u8], ttl: u32, compare: Option<u64>) {
    buf.extend_from_slice(b"ms ");
    buf.extend_from_slice(key.as_bytes());
    buf.push(b' ');
    push_number(buf, data.len() as u64);
    buf.extend_from_slice(b" T");
    push_number(buf, u64::from(ttl));
    match compare {
        Some(cas) => {
            buf.extend_from_slice(b" C");
            push_number(buf, cas);
        }
        None => buf.extend_from_slice(b" c"),
    }
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(data);
    buf.extend_from_slice(b"\r\n");
}

/// `md <key>`, conditional with `C<cas>`.
fn encode_delete(buf: &mut Vec<u8>, key: &str, compare: Option<u64>) {
    buf.extend_from_slice(b"md ");
    buf.extend_from_slice(key.as_bytes());
    if let Some(cas) = compare {
        buf.extend_from_slice(b" C");
        push_number(buf, cas);
    }
    buf.extend_from_slice(b"\r\n");
}

/// What one `mg … v c N<ttl>` answer means for the caller.
fn to_lookup(reply: Reply) -> Result<Lookup, CacheError> {
    let token = reply
        .cas
        .map(Token)
        .ok_or_else(|| CacheError::Protocol("memcached did not return the item's CAS".into()));
    match (reply.code, reply.value) {
        (Code::Va, _) if reply.stale => {
            if reply.won {
                Ok(Lookup::Lease(token?))
            } else {
                Ok(Lookup::Busy)
            }
        }
        (Code::Va, Some(bytes)) if !bytes.is_empty() => Ok(Lookup::Value { bytes, token: token? }),
        // The placeholder memcached just created for us: the lease.
        (Code::Va, _) if reply.won => Ok(Lookup::Lease(token?)),
        // Someone else's placeholder (or a zero-byte item stored by something else), or a
        // miss memcached could not vivify (out of memory).
        (Code::Va | Code::En | Code::Hd, _) => Ok(Lookup::Busy),
        (other, _) => Err(CacheError::Protocol(format!("memcached answered {other:?} to a lookup"))),
    }
}

/// The status of a meta answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Code {
    /// `VA`: a value follows.
    Va,
    /// `HD`: done (stored, deleted).
    Hd,
    /// `EN`: miss.
    En,
    /// `NF`: not found.
    Nf,
    /// `NS`: not stored.
    Ns,
    /// `EX`: the CAS did not match.
    Ex,
    /// `MN`: end of a no-op.
    Mn,
    /// `SERVER_ERROR …`: the server could not do it (too large, out of memory).
    ServerError,
}

/// One meta answer.
#[derive(Debug)]
struct Reply {
    code: Code,
    value: Option<Bytes>,
    cas: Option<u64>,
    /// `W`: this caller won the lease.
    won: bool,
    /// `X`: the item is stale.
    stale: bool,
}

/// Why an exchange failed.
#[derive(Debug)]
enum Fault {
    /// The server cannot be talked to (I/O error, closed connection, an answer that is not
    /// the protocol): it is marked down.
    Lost(String),
    /// The server rejected a command as malformed (`CLIENT_ERROR`, `ERROR`): an error of the
    /// call, not of the server; the connection is not reused.
    Rejected(String),
}

/// What the requests of an exchange are answered with.
enum Expect<'k> {
    /// One meta answer per request.
    Metas(usize),
    /// The `gets` of these keys (in [`GETS_CHUNK`] commands), each ending with `END`.
    Gets(&'k [&'k str]),
}

/// The answers of an exchange.
#[derive(Debug)]
enum Answer {
    Metas(Vec<Reply>),
    /// Per key asked: its value and CAS, if found.
    Gets(Vec<Option<(Bytes, u64)>>),
}

/// One connection to a server, with its buffers and the progress of the current exchange.
struct Conn {
    stream: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
    /// Bytes of `write` handed to the socket.
    sent: usize,
    /// Meta answers still to read.
    metas: usize,
    /// `gets` commands whose `END` is still to read.
    gets: usize,
    /// Whether anything was read in this exchange.
    answered: bool,
}

impl Conn {
    async fn dial(addrs: &[SocketAddr]) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addrs).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            read: BytesMut::with_capacity(READ_CHUNK),
            write: Vec::with_capacity(1024),
            sent: 0,
            metas: 0,
            gets: 0,
            answered: false,
        })
    }

    /// Starts an exchange: encodes its requests and records what answers they get.
    fn begin(&mut self, encode: &impl Fn(&mut Vec<u8>), expect: &Expect<'_>) {
        self.write.clear();
        encode(&mut self.write);
        self.sent = 0;
        self.answered = false;
        (self.metas, self.gets) = match expect {
            Expect::Metas(count) => (*count, 0),
            Expect::Gets(keys) => (0, keys.len().div_ceil(GETS_CHUNK)),
        };
    }

    /// Whether the exchange was started and not finished (requests unsent or answers unread).
    fn in_flight(&self) -> bool {
        self.sent < self.write.len() || self.metas > 0 || self.gets > 0
    }

    /// Sends the requests, then reads every answer.
    async fn run(&mut self, expect: &Expect<'_>) -> Result<Answer, Fault> {
        self.send().await?;
        match expect {
            Expect::Metas(count) => {
                let mut replies = Vec::with_capacity(*count);
                while self.metas > 0 {
                    replies.push(self.meta().await?);
                }
                Ok(Answer::Metas(replies))
            }
            Expect::Gets(keys) => {
                let mut found = vec![None; keys.len()];
                for (chunk, asked) in keys.chunks(GETS_CHUNK).enumerate() {
                    let base = chunk * GETS_CHUNK;
                    let mut next = 0;
                    while let Some((at, value, cas)) = self.gets_entry(&asked[next..]).await? {
                        found[base + next + at] = Some((value, cas));
                        next += at + 1;
                    }
                }
                Ok(Answer::Gets(found))
            }
        }
    }

    /// Finishes an exchange whose caller stopped waiting, discarding the answers.
    async fn drain(&mut self) -> Result<(), Fault> {
        self.send().await?;
        while self.metas > 0 {
            self.meta().await?;
        }
        while self.gets > 0 {
            while self.gets_entry(&[]).await?.is_some() {}
        }
        Ok(())
    }

    async fn send(&mut self) -> Result<(), Fault> {
        while self.sent < self.write.len() {
            match self.stream.write(&self.write[self.sent..]).await {
                Ok(0) => return Err(Fault::Lost("connection closed while writing".into())),
                Ok(written) => self.sent += written,
                Err(error) => return Err(Fault::Lost(format!("write: {error}"))),
            }
        }
        Ok(())
    }

    /// Reads more of the answers.
    async fn receive(&mut self) -> Result<(), Fault> {
        self.read.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.read).await {
            Ok(0) => Err(Fault::Lost("connection closed by the server".into())),
            Ok(_) => {
                self.answered = true;
                Ok(())
            }
            Err(error) => Err(Fault::Lost(format!("read: {error}"))),
        }
    }

    /// Reads one meta answer.
    async fn meta(&mut self) -> Result<Reply, Fault> {
        loop {
            if let Some(reply) = parse_meta(&mut self.read)? {
                self.metas -= 1;
                return Ok(reply);
            }
            self.receive().await?;
        }
    }

    /// Reads the next entry of a `gets` answer: the position in `asked` of the key it is
    /// for, its value and CAS; `None` at `END`. With no keys asked, every key is accepted
    /// (at position 0).
    async fn gets_entry(&mut self, asked: &[&str]) -> Result<Option<(usize, Bytes, u64)>, Fault> {
        loop {
            match parse_gets(&mut self.read, asked)? {
                Some(GetsEntry::Value(at, value, cas)) => return Ok(Some((at, value, cas))),
                Some(GetsEntry::End) => {
                    self.gets -= 1;
                    return Ok(None);
                }
                None => self.receive().await?,
            }
        }
    }
}

/// The line at the start of `buffer` without its `\r\n`, and the length with it; `None` if
/// it is not complete yet.
fn line(buffer: &[u8]) -> Result<Option<(&[u8], usize)>, Fault> {
    let window = &buffer[..buffer.len().min(MAX_LINE)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) if end > 0 && buffer[end - 1] == b'\r' => Ok(Some((&buffer[..end - 1], end + 1))),
        Some(_) => Err(Fault::Lost("answer line without \\r\\n".into())),
        None if buffer.len() >= MAX_LINE => Err(Fault::Lost("answer line too long".into())),
        None => Ok(None),
    }
}

fn number<T: std::str::FromStr>(token: &[u8]) -> Result<T, Fault> {
    std::str::from_utf8(token)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Fault::Lost(format!("bad number {:?}", String::from_utf8_lossy(token))))
}

/// Takes `len` bytes of data and their `\r\n` off the front of `buffer` (the header line
/// of `header` bytes first); `None` if they have not all arrived.
fn take_data(buffer: &mut BytesMut, header: usize, len: usize) -> Result<Option<Bytes>, Fault> {
    if buffer.len() < header + len + 2 {
        return Ok(None);
    }
    if &buffer[header + len..header + len + 2] != b"\r\n" {
        return Err(Fault::Lost("data block without \\r\\n".into()));
    }
    buffer.advance(header);
    let value = buffer.split_to(len).freeze();
    buffer.advance(2);
    Ok(Some(value))
}

/// Parses one meta answer off the front of `buffer`; `None` if it is not complete yet.
fn parse_meta(buffer: &mut BytesMut) -> Result<Option<Reply>, Fault> {
    let Some((text, header)) = line(buffer)? else {
        return Ok(None);
    };
    let mut tokens = text.split(|&b| b == b' ').filter(|token| !token.is_empty());
    let status = tokens.next().unwrap_or_default();
    let code = match status {
        b"VA" => Code::Va,
        b"HD" => Code::Hd,
        b"EN" => Code::En,
        b"NF" => Code::Nf,
        b"NS" => Code::Ns,
        b"EX" => Code::Ex,
        b"MN" => Code::Mn,
        b"SERVER_ERROR" => {
            tracing::debug!(answer = %String::from_utf8_lossy(text), "memcached refused a command");
            buffer.advance(header);
            return Ok(Some(Reply {
                code: Code::ServerError,
                value: None,
                cas: None,
                won: false,
                stale: false,
            }));
        }
        b"CLIENT_ERROR" | b"ERROR" => return Err(Fault::Rejected(String::from_utf8_lossy(text).into_owned())),
        _ => {
            return Err(Fault::Lost(format!(
                "unexpected answer {:?}",
                String::from_utf8_lossy(&text[..text.len().min(80)])
            )));
        }
    };
    let len: Option<usize> = match code {
        Code::Va => Some(number(tokens.next().unwrap_or_default())?),
        _ => None,
    };
    let (mut cas, mut won, mut stale) = (None, false, false);
    for flag in tokens {
        match flag[0] {
            b'c' => cas = Some(number(&flag[1..])?),
            b'W' => won = true,
            b'X' => stale = true,
            _ => {}
        }
    }
    let value = match len {
        Some(len) => match take_data(buffer, header, len)? {
            Some(value) => Some(value),
            None => return Ok(None),
        },
        None => {
            buffer.advance(header);
            None
        }
    };
    Ok(Some(Reply {
        code,
        value,
        cas,
        won,
        stale,
    }))
}

/// One entry of a `gets` answer.
enum GetsEntry {
    /// `VALUE`: the position of its key in the keys asked, the data, the CAS.
    Value(usize, Bytes, u64),
    /// `END`.
    End,
}

/// Parses one entry of a `gets` answer off the front of `buffer`; `None` if it is not
/// complete yet. The server answers the keys found in the order asked: the entry's key
/// must be one of `asked` (the keys not answered yet), whose position is returned.
fn parse_gets(buffer: &mut BytesMut, asked: &[&str]) -> Result<Option<GetsEntry>, Fault> {
    let Some((text, header)) = line(buffer)? else {
        return Ok(None);
    };
    if text == b"END" {
        buffer.advance(header);
        return Ok(Some(GetsEntry::End));
    }
    let mut tokens = text.split(|&b| b == b' ').filter(|token| !token.is_empty());
    match tokens.next().unwrap_or_default() {
        b"VALUE" => {}
        b"CLIENT_ERROR" | b"ERROR" | b"SERVER_ERROR" => {
            return Err(Fault::Rejected(String::from_utf8_lossy(text).into_owned()));
        }
        _ => {
            return Err(Fault::Lost(format!(
                "unexpected answer {:?}",
                String::from_utf8_lossy(&text[..text.len().min(80)])
            )));
        }
    }
    let key = tokens.next().unwrap_or_default();
    let _flags: u32 = number(tokens.next().unwrap_or_default())?;
    let len: usize = number(tokens.next().unwrap_or_default())?;
    let cas: u64 = number(tokens.next().unwrap_or_default())?;
    let at = if asked.is_empty() {
        0
    } else {
        asked
            .iter()
            .position(|wanted| wanted.as_bytes() == key)
            .ok_or_else(|| Fault::Lost(format!("answer for a key not asked: {:?}", String::from_utf8_lossy(key))))?
    };
    match take_data(buffer, header, len)? {
        Some(value) => Ok(Some(GetsEntry::Value(at, value, cas))),
        None => Ok(None),
    }
}

/// A connection taken from a server for one exchange. [`Checkout::put_back`] returns it
/// to the pool, [`Checkout::discard`] closes it. Dropped in the middle of an exchange (the
/// caller stopped waiting), it hands the connection to a task that finishes the exchange
/// by the same deadline: a server that does not answer is then marked down all the same,
/// and one that does gets its connection back.
struct Checkout<'s> {
    server: &'s Arc<Server>,
    conn: Option<Conn>,
    deadline: tokio::time::Instant,
}

impl Checkout<'_> {
    fn put_back(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.server.put_back(conn);
        }
    }

    fn discard(&mut self) {
        self.conn = None;
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !conn.in_flight() {
            self.server.put_back(conn);
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (server, deadline) = (Arc::clone(self.server), self.deadline);
        runtime.spawn(async move {
            match tokio::time::timeout_at(deadline, conn.drain()).await {
                Ok(Ok(())) => server.put_back(conn),
                Ok(Err(Fault::Rejected(_))) => {}
                Ok(Err(Fault::Lost(reason))) => drop(server.mark_down(reason)),
                Err(_) => drop(server.mark_down(format!("no answer within {IO_TIMEOUT:?}"))),
            }
        });
    }
}

/// One configured server: its address, idle connections, health and flush.
struct Server {
    /// The address as configured; also its routing identity.
    addr: String,
    /// Its socket addresses, resolved once.
    resolved: tokio::sync::OnceCell<Vec<SocketAddr>>,
    idle: Mutex<Vec<Conn>>,
    /// No failure since the last flush, and not marked down: the fast path of [`Server::ready`].
    healthy: AtomicBool,
    health: Mutex<Health>,
    /// Held by the one call flushing the server; the others fail fast meanwhile.
    flushing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Health {
    /// Calls fail at once until then.
    down_until: Option<Instant>,
    /// Failures seen so far.
    failures: u64,
    /// Failures covered by a successful `flush_all` (started after them).
    flushed: u64,
    /// What the last failure was, for error messages.
    last_error: String,
}

impl Server {
    fn new(addr: String) -> Self {
        Self {
            addr,
            resolved: tokio::sync::OnceCell::new(),
            idle: Mutex::new(Vec::new()),
            healthy: AtomicBool::new(true),
            health: Mutex::new(Health::default()),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle().pop()
    }

    fn put_back(&self, conn: Conn) {
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Fails at once while the server is marked down.
    fn check_up(&self) -> Result<(), CacheError> {
        let health = self.health();
        let now = Instant::now();
        match health.down_until {
            Some(until) if until > now => Err(CacheError::Unavailable(format!(
                "memcached {} is marked down for another {:?} after: {}",
                self.addr,
                until - now,
                health.last_error
            ))),
            _ => Ok(()),
        }
    }

    /// The failure count a flush must cover, if a failure has not been covered yet.
    fn unflushed(&self) -> Option<u64> {
        let health = self.health();
        (health.flushed < health.failures).then_some(health.failures)
    }

    /// Records a failure: the server is skipped for [`DOWN_FOR`], then flushed before use.
    fn mark_down(&self, reason: String) -> CacheError {
        {
            let mut health = self.health();
            health.failures += 1;
            health.down_until = Some(Instant::now() + DOWN_FOR);
            health.last_error.clone_from(&reason);
            self.healthy.store(false, Ordering::Release);
        }
        // Connections made before the failure may be dead; new ones are dialed after it.
        self.idle().clear();
        tracing::warn!(server = %self.addr, error = %reason, "memcached server marked down; it is flushed before it is used again");
        CacheError::Unavailable(format!("memcached {}: {reason}", self.addr))
    }

    /// Succeeds once the server is up and every failure seen has been followed by a flush.
    async fn ready(&self) -> Result<(), CacheError> {
        if self.healthy.load(Ordering::Acquire) {
            return Ok(());
        }
        self.check_up()?;
        if self.unflushed().is_some() {
            let Ok(_flushing) = self.flushing.try_lock() else {
                return Err(CacheError::Unavailable(format!(
                    "memcached {} is being flushed after a failure",
                    self.addr
                )));
            };
            // Another call may have flushed it (or seen it fail again) in the meantime.
            self.check_up()?;
            if let Some(covers) = self.unflushed() {
                flush_all(&self.addr)
                    .await
                    .map_err(|reason| self.mark_down(format!("flush_all after a failure: {reason}")))?;
                {
                    let mut health = self.health();
                    health.flushed = health.flushed.max(covers);
                }
                tracing::info!(server = %self.addr, "memcached server flushed after a failure; using it again");
            }
        }
        let health = self.health();
        let up = health.down_until.is_none_or(|until| until <= Instant::now());
        if up && health.flushed >= health.failures {
            self.healthy.store(true, Ordering::Release);
            Ok(())
        } else {
            drop(health);
            self.check_up()?;
            Err(CacheError::Unavailable(format!(
                "memcached {} failed again while being flushed",
                self.addr
            )))
        }
    }

    /// Resolves the address (once); a failure marks the server down.
    async fn resolve(&self) -> Result<&[SocketAddr], CacheError> {
        let resolved = self
            .resolved
            .get_or_try_init(|| async {
                match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host(self.addr.as_str())).await {
                    Ok(Ok(addrs)) => {
                        let addrs: Vec<SocketAddr> = addrs.collect();
                        if addrs.is_empty() {
                            Err("the address resolves to nothing".to_owned())
                        } else {
                            Ok(addrs)
                        }
                    }
                    Ok(Err(error)) => Err(format!("cannot resolve the address: {error}")),
                    Err(_) => Err(format!("resolving the address took over {CONNECT_TIMEOUT:?}")),
                }
            })
            .await;
        match resolved {
            Ok(addrs) => Ok(addrs.as_slice()),
            Err(reason) => Err(self.mark_down(reason)),
        }
    }

    /// A new connection; a failure marks the server down.
    async fn dial(&self) -> Result<Conn, CacheError> {
        let addrs = self.resolve().await?;
        match tokio::time::timeout(CONNECT_TIMEOUT, Conn::dial(addrs)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(self.mark_down(format!("connect: {error}"))),
            Err(_) => Err(self.mark_down(format!("connect took over {CONNECT_TIMEOUT:?}"))),
        }
    }
}

/// Sends `flush_all` (a text-protocol command the meta client does not offer) on a fresh
/// connection and expects `OK`.
async fn flush_all(addr: &str) -> Result<(), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|error| format!("connect: {error}"))?;
        stream
            .write_all(b"flush_all\r\n")
            .await
            .map_err(|error| format!("write: {error}"))?;
        let mut reader = BufReader::new(stream).take(256);
        let mut line = Vec::new();
        reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(|error| format!("read: {error}"))?;
        if line == b"OK\r\n" {
            Ok(())
        } else {
            Err(format!("answered {:?}", String::from_utf8_lossy(&line).trim_end()))
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT + IO_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {:?}", CONNECT_TIMEOUT + IO_TIMEOUT)),
    }
}

/// Whole seconds, rounded up, between 1 and `max`.
fn secs(duration: Duration, max: u32) -> u32 {
    let rounded = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    u32::try_from(rounded).unwrap_or(u32::MAX).clamp(1, max)
}

/// FNV-1a, 64 bits: stable across processes, platforms and Rust releases.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The SplitMix64 finalizer: spreads every input bit over the whole output.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Rendezvous hashing: the server whose seed gives `key` the highest score.
fn rendezvous(key: &[u8], seeds: &[u64]) -> usize {
    let key_hash = mix(fnv1a64(key));
    let mut best: Option<(usize, u64)> = None;
    for (index, &seed) in seeds.iter().enumerate() {
        let score = mix(key_hash ^ seed);
        if best.is_none_or(|(_, top)| score > top) {
            best = Some((index, score));
        }
    }
    best.map_or(0, |(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_the_published_fnv1a() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn routing_is_pinned() {
        // Every process, on every release, must route alike: this pins the function.
        let seeds: Vec<u64> = ["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"]
            .iter()
            .map(|server| mix(fnv1a64(server.as_bytes())))
            .collect();
        let routed: Vec<usize> = (0..12)
            .map(|i| rendezvous(format!("key:{i}").as_bytes(), &seeds))
            .collect();
        assert_eq!(routed, PINNED_ROUTES);
    }

    /// Computed independently (a Python transcription of FNV-1a 64 + SplitMix64).
    const PINNED_ROUTES: [usize; 12] = [1, 2, 0, 2, 0, 2, 2, 2, 2, 0, 1, 1];

    #[test]
    fn routing_ignores_server_order() {
        let servers = ["a:1", "b:2", "c:3", "d:4"];
        let seeds: Vec<u64> = servers.iter().map(|s| mix(fnv1a64(s.as_bytes()))).collect();
        let reversed: Vec<u64> = seeds.iter().rev().copied().collect();
        for i in 0..1000 {
            let key = format!("k{i}");
            let forward = rendezvous(key.as_bytes(), &seeds);
            let backward = rendezvous(key.as_bytes(), &reversed);
            assert_eq!(servers[forward], servers[servers.len() - 1 - backward]);
        }
    }

    fn buffer(bytes: &[u8]) -> BytesMut {
        BytesMut::from(bytes)
    }

    #[test]
    fn meta_answers_parse_whole_or_not_at_all() {
        let full = b"VA 3 c42 W\r\nrow\r\nHD c43\r\nEN\r\n";
        for cut in 0..full.len() {
            let mut partial = buffer(&full[..cut]);
            let first = parse_meta(&mut partial).ok().flatten();
            if cut < 15 {
                assert!(first.is_none(), "cut at {cut}");
                assert_eq!(partial.len(), cut, "nothing consumed");
            }
        }
        let mut all = buffer(full);
        let va = parse_meta(&mut all).ok().flatten().expect("VA");
        assert_eq!((va.code, va.cas, va.won, va.value.as_deref()), (Code::Va, Some(42), true, Some(&b"row"[..])));
        let hd = parse_meta(&mut all).ok().flatten().expect("HD");
        assert_eq!((hd.code, hd.cas, hd.value), (Code::Hd, Some(43), None));
        let en = parse_meta(&mut all).ok().flatten().expect("EN");
        assert_eq!(en.code, Code::En);
        assert!(all.is_empty());
    }

    #[test]
    fn lookups_map_flags() {
        let reply = |text: &[u8]| to_lookup(parse_meta(&mut buffer(text)).ok().flatten().expect("reply"));
        assert!(matches!(reply(b"VA 2 c7\r\nab\r\n"), Ok(Lookup::Value { token: Token(7), .. })));
        assert!(matches!(reply(b"VA 0 c8 W\r\n\r\n"), Ok(Lookup::Lease(Token(8)))));
        assert!(matches!(reply(b"VA 0 c8 Z\r\n\r\n"), Ok(Lookup::Busy)));
        assert!(matches!(reply(b"VA 2 c9 X W\r\nab\r\n"), Ok(Lookup::Lease(Token(9)))));
        assert!(matches!(reply(b"VA 2 c9 X Z\r\nab\r\n"), Ok(Lookup::Busy)));
        assert!(matches!(reply(b"EN\r\n"), Ok(Lookup::Busy)));
        assert!(reply(b"VA 0 W\r\n\r\n").is_err(), "a lease needs a CAS");
        assert!(matches!(parse_meta(&mut buffer(b"CLIENT_ERROR bad\r\n")), Err(Fault::Rejected(_))));
        assert!(matches!(parse_meta(&mut buffer(b"garbage\r\n")), Err(Fault::Lost(_))));
        assert!(matches!(parse_meta(&mut buffer(b"VA 2 c1\r\nabXY")), Err(Fault::Lost(_))));
        let server_error = parse_meta(&mut buffer(b"SERVER_ERROR object too large for cache\r\n"));
        assert!(matches!(server_error, Ok(Some(Reply { code: Code::ServerError, .. }))));
    }

    #[test]
    fn gets_entries_follow_the_keys_asked() {
        let asked = ["a", "b", "b", "c"];
        let mut answer = buffer(b"VALUE b 0 2 5\r\nxy\r\nVALUE b 0 0 6\r\n\r\nEND\r\n");
        let Ok(Some(GetsEntry::Value(at, value, cas))) = parse_gets(&mut answer, &asked) else {
            panic!("first entry")
        };
        assert_eq!((at, &value[..], cas), (1, &b"xy"[..], 5));
        let Ok(Some(GetsEntry::Value(at, value, cas))) = parse_gets(&mut answer, &asked[2..]) else {
            panic!("second entry")
        };
        assert_eq!((at, value.len(), cas), (0, 0, 6));
        assert!(matches!(parse_gets(&mut answer, &asked[3..]), Ok(Some(GetsEntry::End))));
        let mut stranger = buffer(b"VALUE z 0 1 1\r\nq\r\n");
        assert!(matches!(parse_gets(&mut stranger, &asked), Err(Fault::Lost(_))));
    }

    #[test]
    fn requests_are_encoded_as_the_protocol_says() {
        let mut buf = Vec::new();
        encode_lookup(&mut buf, "k1", 5);
        encode_set(&mut buf, "k2", b"row", 60, Some(77));
        encode_set(&mut buf, "k3", b"L", 30, None);
        encode_delete(&mut buf, "k4", Some(0));
        encode_delete(&mut buf, "k5", None);
        encode_gets(&mut buf, &["a", "b"]);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "mg k1 v c N5\r\nms k2 3 T60 C77\r\nrow\r\nms k3 1 T30 c\r\nL\r\nmd k4 C0\r\nmd k5\r\ngets a b\r\n"
        );
        let mut digits = Vec::new();
        push_number(&mut digits, u64::MAX);
        assert_eq!(digits, u64::MAX.to_string().into_bytes());
        assert!(wire_ttl(MAX_TTL_SECS) > MAX_RELATIVE_SECS * 12);
        assert_eq!(wire_ttl(60), 60);
    }

    #[test]
    fn unsafe_keys_are_refused() {
        assert!(check_keys(&["ok:key"]).is_ok());
        for bad in ["", "a b", "a\r\nb", "ü", &"k".repeat(251)] {
            assert!(check_keys(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ttls_are_whole_positive_seconds() {
        assert_eq!(secs(Duration::ZERO, 10), 1);
        assert_eq!(secs(Duration::from_millis(1500), 10), 2);
        assert_eq!(secs(Duration::from_secs(5), 10), 5);
        assert_eq!(secs(Duration::MAX, 10), 10);
    }
}
