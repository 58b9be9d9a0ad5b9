//! Pooled request/answer connections over tokio: what the protocols this crate speaks itself
//! ([`super::meta`] for memcached, [`super::resp`] for redis) run on, one pool per server.
//!
//! A call checks out an idle connection (or dials one), writes every command of the call
//! in one write and reads one answer per command, in order (both servers answer a pipeline
//! in the order it was sent). Requests are encoded into the connection's own buffer and
//! answers are parsed in its read buffer, so a hit costs one copy of the value and no other
//! allocation. The whole call, dial and greeting included, runs under one deadline; a
//! connection whose exchange failed in any way is dropped, never pooled, since it may carry
//! half a request or an unread answer. A pooled connection that the server closed while it
//! was idle (a restart) fails before anything is read; the call is then retried once on a
//! fresh connection (no answer means the old server never ran the commands). A pool can
//! also send the calls beyond a number of concurrent ones over one shared, multiplexed
//! connection instead ([`Pool::sharing_beyond`], [`super::mux`]; redis uses it).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::mux::Mux;

/// Idle connections kept per server; more are closed when they come back.
const MAX_IDLE: usize = 64;

/// Bytes of a buffer kept between calls (a larger one, after a large value, is shrunk back).
const KEPT_BUFFER: usize = 64 * 1024;

/// Why a call failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// The server could not be reached, or did not answer before the deadline.
    Io(io::Error),
    /// The server answered something this client does not understand (the connection is
    /// dropped).
    Protocol(String),
    /// The server answered with an error where the command allows none.
    Server(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(error) => write!(f, "{error}"),
            Failure::Protocol(reason) => write!(f, "protocol: {reason}"),
            Failure::Server(reason) => write!(f, "server: {reason}"),
        }
    }
}

/// How a protocol's answers are found in, and read from, the read buffer.
pub(super) trait Wire {
    /// Where the parts of a complete answer lie, relative to its start (nothing borrowed, so
    /// the buffer can grow while the next answer is incomplete).
    type Frame;
    /// One answer, borrowed from the read buffer.
    type Reply<'b>;

    /// If the answer at the start of `buffered` is complete: its frame and its length.
    fn frame(buffered: &[u8]) -> Result<Option<(Self::Frame, usize)>, Failure>;

    /// The answer `frame` found at the start of `buffered`.
    fn reply(buffered: &[u8], frame: Self::Frame) -> Result<Self::Reply<'_>, Failure>;
}

/// Commands sent on every new connection before its first call (for example redis's `AUTH`
/// and `SELECT`), and the check of each one's answer.
pub(super) struct Greeting<W: Wire> {
    /// The encoded commands.
    pub request: Vec<u8>,
    /// How many commands `request` holds.
    pub commands: usize,
    /// Accepts one answer, or says why the connection cannot be used.
    pub check: for<'b> fn(W::Reply<'b>) -> Result<(), Failure>,
}

/// Writes commands into a request buffer (each protocol adds its own commands).
pub(super) struct Request<'b> {
    /// The encoded commands.
    pub(super) buffer: &'b mut Vec<u8>,
    /// How many answers the commands ask for.
    pub(super) commands: usize,
}

/// The connections to one server.
pub(super) struct Pool<W: Wire> {
    /// The addresses dialed (resolved once).
    addrs: Vec<SocketAddr>,
    idle: Mutex<Vec<Connection>>,
    greeting: Option<Arc<Greeting<W>>>,
    connect_timeout: Duration,
    /// Bound on a whole call, dial included.
    call_timeout: Duration,
    /// Calls running on a connection of their own.
    busy: AtomicUsize,
    /// If set, calls beyond `direct` concurrent ones share this one connection.
    shared: Option<Mux<W>>,
    direct: usize,
}

impl<W: Wire + 'static> Pool<W> {
    /// A pool for `addrs`: dials are bounded by `connect_timeout`, whole calls by
    /// `call_timeout`; `greeting` is sent on every new connection.
    pub(super) fn new(
        addrs: Vec<SocketAddr>,
        greeting: Option<Greeting<W>>,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Self {
        Self {
            addrs,
            idle: Mutex::new(Vec::new()),
            greeting: greeting.map(Arc::new),
            connect_timeout,
            call_timeout,
            busy: AtomicUsize::new(0),
            shared: None,
            direct: usize::MAX,
        }
    }

    /// Runs at most `direct` calls at a time on connections of their own (the fastest way
    /// for one call); the calls beyond share one multiplexed connection ([`Mux`]).
    #[cfg_attr(not(feature = "redis"), allow(dead_code, reason = "only redis shares a connection"))]
    pub(super) fn sharing_beyond(mut self, direct: usize) -> Self {
        self.shared = Some(Mux::new(
            self.addrs.clone(),
            self.greeting.clone(),
            self.connect_timeout,
            self.call_timeout,
        ));
        self.direct = direct;
        self
    }

    /// Sends the commands `encode` writes, in one write, and passes each answer, in order,
    /// to `parse`, whose outputs are returned. Fails if the server cannot be reached, does not
    /// answer in time, or answers something that is not the protocol (then nothing is
    /// returned, even for the answers read before).
    pub(super) async fn call<T>(
        &self,
        encode: impl FnOnce(&mut Request<'_>),
        mut parse: impl FnMut(W::Reply<'_>) -> Result<T, Failure>,
    ) -> Result<Vec<T>, Failure> {
        if let Some(shared) = &self.shared
            && self.busy.load(Ordering::Relaxed) >= self.direct
        {
            let (answered, commands) = shared.call(encode).await?;
            let mut answers = Vec::with_capacity(commands);
            let mut start = 0;
            for _ in 0..commands {
                let Some((frame, length)) = W::frame(&answered[start..])? else {
                    return Err(Failure::Protocol("an answer cut short".into()));
                };
                answers.push(parse(W::reply(&answered[start..start + length], frame)?)?);
                start += length;
            }
            return Ok(answers);
        }
        let _busy = Busy::enter(&self.busy);
        let deadline = Instant::now() + self.call_timeout;
        let timed_out = || {
            Failure::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {:?}", self.call_timeout),
            ))
        };
        let (mut connection, pooled) = match self.checkout() {
            Some(connection) => (connection, true),
            None => (self.dial(deadline).await?, false),
        };
        let mut request = Request {
            buffer: &mut connection.request,
            commands: 0,
        };
        encode(&mut request);
        let commands = request.commands;
        let mut answers = Vec::with_capacity(commands);
        let outcome = tokio::time::timeout_at(
            deadline,
            connection.exchange::<W, T>(commands, &mut parse, &mut answers),
        )
        .await;
        let outcome = match outcome {
            Ok(Err(Exchange::Closed)) if pooled => {
                // Closed while idle: nothing was run. Once more, on a fresh connection.
                let request = std::mem::take(&mut connection.request);
                connection = self.dial(deadline).await?;
                connection.request = request;
                answers.clear();
                tokio::time::timeout_at(
                    deadline,
                    connection.exchange::<W, T>(commands, &mut parse, &mut answers),
                )
                .await
            }
            outcome => outcome,
        };
        match outcome {
            Ok(Ok(())) => {
                self.put_back(connection);
                Ok(answers)
            }
            Ok(Err(error)) => Err(error.into_failure()),
            Err(_) => Err(timed_out()),
        }
    }

    fn checkout(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    fn put_back(&self, mut connection: Connection) {
        for buffer in [&mut connection.request, &mut connection.response] {
            buffer.clear();
            if buffer.capacity() > KEPT_BUFFER {
                *buffer = Vec::with_capacity(KEPT_BUFFER);
            }
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
    }

    async fn dial(&self, deadline: Instant) -> Result<Connection, Failure> {
        dial(&self.addrs, self.greeting.as_deref(), deadline, self.connect_timeout).await
    }
}

/// Counts a call running on a connection of its own while it lives.
struct Busy<'p>(&'p AtomicUsize);

impl<'p> Busy<'p> {
    fn enter(busy: &'p AtomicUsize) -> Self {
        busy.fetch_add(1, Ordering::Relaxed);
        Busy(busy)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A new connection to `addrs`, greeted with `greeting`, by `deadline` (and within
/// `connect_timeout`).
pub(super) async fn dial<W: Wire>(
    addrs: &[SocketAddr],
    greeting: Option<&Greeting<W>>,
    deadline: Instant,
    connect_timeout: Duration,
) -> Result<Connection, Failure> {
    let deadline = deadline.min(Instant::now() + connect_timeout);
    let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addrs)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(Failure::Io(error)),
        Err(_) => {
            return Err(Failure::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect took over {connect_timeout:?}"),
            )));
        }
    };
    stream.set_nodelay(true).map_err(Failure::Io)?;
    let mut connection = Connection::new(stream);
    if let Some(greeting) = greeting {
        connection.request.extend_from_slice(&greeting.request);
        let mut answers = Vec::new();
        let mut check = greeting.check;
        let greeted = connection.exchange::<W, ()>(greeting.commands, &mut check, &mut answers);
        match tokio::time::timeout_at(deadline, greeted).await {
            Ok(Ok(())) => connection.request.clear(),
            Ok(Err(error)) => return Err(error.into_failure()),
            Err(_) => {
                return Err(Failure::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no greeting within {connect_timeout:?}"),
                )));
            }
        }
    }
    Ok(connection)
}

/// The length of the first `commands` answers in `buffered`, if they are all complete.
pub(super) fn frames<W: Wire>(buffered: &[u8], commands: usize) -> Result<Option<usize>, Failure> {
    let mut length = 0;
    for _ in 0..commands {
        match W::frame(&buffered[length..])? {
            Some((_, answer)) => length += answer,
            None => return Ok(None),
        }
    }
    Ok(Some(length))
}

/// How an exchange failed.
enum Exchange {
    /// The connection was closed (or reset) before any byte of an answer arrived.
    Closed,
    /// Anything else.
    Failed(Failure),
}

impl Exchange {
    fn into_failure(self) -> Failure {
        match self {
            Exchange::Closed => Failure::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )),
            Exchange::Failed(failure) => failure,
        }
    }
}

/// One connection and its buffers (reused across calls).
pub(super) struct Connection {
    /// The socket.
    pub(super) stream: TcpStream,
    request: Vec<u8>,
    response: Vec<u8>,
}

impl Connection {
    fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            request: Vec::with_capacity(1024),
            response: Vec::with_capacity(4096),
        }
    }

    /// Writes the request and reads `commands` answers into `answers`.
    async fn exchange<W: Wire, T>(
        &mut self,
        commands: usize,
        parse: &mut impl FnMut(W::Reply<'_>) -> Result<T, Failure>,
        answers: &mut Vec<T>,
    ) -> Result<(), Exchange> {
        let closed = |error: io::Error| match error.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                Exchange::Closed
            }
            _ => Exchange::Failed(Failure::Io(error)),
        };
        self.stream.write_all(&self.request).await.map_err(closed)?;
        self.response.clear();
        // `start`: where the next answer begins.
        let mut start = 0;
        for _ in 0..commands {
            let (frame, length) = loop {
                if let Some(found) = W::frame(&self.response[start..]).map_err(Exchange::Failed)? {
                    break found;
                }
                if start > 0 && start == self.response.len() {
                    self.response.clear();
                    start = 0;
                }
                if self.response.capacity() - self.response.len() < 1024 {
                    self.response.reserve(self.response.capacity().max(4096));
                }
                let read = self.stream.read_buf(&mut self.response).await;
                match read {
                    Ok(0) if self.response.is_empty() && answers.is_empty() => return Err(Exchange::Closed),
                    Ok(0) => {
                        return Err(Exchange::Failed(Failure::Io(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection mid-answer",
                        ))));
                    }
                    Ok(_) => {}
                    Err(error) if self.response.is_empty() && answers.is_empty() => return Err(closed(error)),
                    Err(error) => return Err(Exchange::Failed(Failure::Io(error))),
                }
            };
            let reply = W::reply(&self.response[start..start + length], frame).map_err(Exchange::Failed)?;
            answers.push(parse(reply).map_err(Exchange::Failed)?);
            start += length;
        }
        if start != self.response.len() {
            return Err(Exchange::Failed(Failure::Protocol("more answers than commands".into())));
        }
        Ok(())
    }
}

/// Appends `number` in decimal.
pub(super) fn push_u64(buffer: &mut Vec<u8>, mut number: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    buffer.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for number in [0, 7, 10, 12345, u64::MAX] {
            let mut buffer = Vec::new();
            push_u64(&mut buffer, number);
            assert_eq!(buffer, number.to_string().as_bytes());
        }
    }
}
