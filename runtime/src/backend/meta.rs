//! memcached's meta protocol over pooled tokio connections: what [`super::memcached`]
//! talks to one server with.
//!
//! A call checks out an idle connection (or dials one), writes every command of the call
//! in one write and reads one answer per command, in order (memcached answers a pipeline
//! in the order it was sent, so no opaque tokens are needed). Requests are encoded into
//! the connection's own buffer and answers are parsed in its read buffer, so a hit costs
//! one copy of the value and no other allocation. The whole call, dial included, runs
//! under one deadline; a connection whose exchange failed in any way is dropped, never
//! pooled, since it may carry half a request or an unread answer. A pooled connection that
//! the server closed while it was idle (a restart) fails before anything is read; the call
//! is then retried once on a fresh connection (no answer means the old server never ran
//! the commands).
//!
//! Why not the `memcache` crate's exp client: its owned builders and results, a probe per
//! checkout and `run_many`'s bookkeeping cost about 8 900 instructions per get and 12 900
//! per key of a batch over a raw socket; a repository hit through this connection costs
//! 6 200, a key of a 100-key `get_many` 3 100 (`docs/performance.md`, Closing the gaps).

use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

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
    /// The server answered with an error (`SERVER_ERROR`) where the command allows none.
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

/// One answer: its two-letter code (`VA`, `HD`, `EN`, `NS`, `EX`, `NF`, or `SE` for a
/// `SERVER_ERROR`), its flags and, for `VA`, the value.
pub(super) struct Reply<'b> {
    /// The answer's code.
    pub code: [u8; 2],
    /// The flags after the code (and after the length for `VA`), space-separated.
    flags: &'b [u8],
    /// The value of a `VA` answer.
    pub value: Option<&'b [u8]>,
}

impl Reply<'_> {
    /// The value of flag `name` (`c` → the digits after it), if it was returned.
    pub fn flag(&self, name: u8) -> Option<&[u8]> {
        self.flags
            .split(|&byte| byte == b' ')
            .find(|token| token.first() == Some(&name))
            .map(|token| &token[1..])
    }

    /// The CAS value (`c` flag), if returned.
    pub fn cas(&self) -> Option<u64> {
        self.flag(b'c').and_then(parse_u64)
    }
}

/// Writes commands into a request buffer.
pub(super) struct Request<'b> {
    buffer: &'b mut Vec<u8>,
    commands: usize,
}

impl Request<'_> {
    /// `mg <key> v c N<lease>`: the value and CAS, vivifying a miss for `lease` seconds.
    pub fn get_leased(&mut self, key: &str, lease: u32) {
        self.command(b"mg ", key);
        self.buffer.extend_from_slice(b" v c N");
        push_u64(self.buffer, u64::from(lease));
        self.end();
    }

    /// `ms <key> <len> T<ttl> [C<cas>] [c]` and the value: a set, conditional on `cas`,
    /// returning the new CAS if `return_cas`.
    pub fn set(&mut self, key: &str, value: &[u8], ttl: u32, cas: Option<u64>, return_cas: bool) {
        self.command(b"ms ", key);
        self.buffer.push(b' ');
        push_u64(self.buffer, value.len() as u64);
        self.buffer.extend_from_slice(b" T");
        push_u64(self.buffer, u64::from(ttl));
        if let Some(cas) = cas {
            self.buffer.extend_from_slice(b" C");
            push_u64(self.buffer, cas);
        }
        if return_cas {
            self.buffer.extend_from_slice(b" c");
        }
        self.end();
        self.buffer.extend_from_slice(value);
        self.buffer.extend_from_slice(b"\r\n");
    }

    /// `md <key> [C<cas>]`: a delete, conditional on `cas`.
    pub fn delete(&mut self, key: &str, cas: Option<u64>) {
        self.command(b"md ", key);
        if let Some(cas) = cas {
            self.buffer.extend_from_slice(b" C");
            push_u64(self.buffer, cas);
        }
        self.end();
    }

    fn command(&mut self, op: &[u8], key: &str) {
        self.commands += 1;
        self.buffer.extend_from_slice(op);
        self.buffer.extend_from_slice(key.as_bytes());
    }

    fn end(&mut self) {
        self.buffer.extend_from_slice(b"\r\n");
    }
}

/// Whether `key` can be sent as a meta-protocol key (1–250 printable ASCII bytes): a key
/// with a space or a line break would be read as several commands.
pub(super) fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= crate::key::MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The connections to one server.
pub(super) struct Pool {
    /// The addresses dialed (resolved once).
    addrs: Vec<SocketAddr>,
    idle: Mutex<Vec<Connection>>,
    connect_timeout: Duration,
    /// Bound on a whole call, dial included.
    call_timeout: Duration,
}

impl Pool {
    /// A pool for `addrs`: dials are bounded by `connect_timeout`, whole calls by
    /// `call_timeout`.
    pub fn new(addrs: Vec<SocketAddr>, connect_timeout: Duration, call_timeout: Duration) -> Self {
        Self {
            addrs,
            idle: Mutex::new(Vec::new()),
            connect_timeout,
            call_timeout,
        }
    }

    /// Sends the commands `encode` writes, in one write, and passes each answer, in order,
    /// to `parse`, whose outputs are returned. Fails if the server cannot be reached, does not
    /// answer in time, or answers something that is not the protocol (then nothing is
    /// returned, even for the answers read before).
    pub async fn call<T>(
        &self,
        encode: impl FnOnce(&mut Request<'_>),
        mut parse: impl FnMut(Reply<'_>) -> Result<T, Failure>,
    ) -> Result<Vec<T>, Failure> {
        let deadline = Instant::now() + self.call_timeout;
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
        let outcome = tokio::time::timeout_at(deadline, connection.exchange(commands, &mut parse, &mut answers)).await;
        let outcome = match outcome {
            Ok(Err(Exchange::Closed)) if pooled => {
                // Closed while idle: nothing was run. Once more, on a fresh connection.
                let request = std::mem::take(&mut connection.request);
                connection = self.dial(deadline).await?;
                connection.request = request;
                answers.clear();
                tokio::time::timeout_at(deadline, connection.exchange(commands, &mut parse, &mut answers)).await
            }
            outcome => outcome,
        };
        match outcome {
            Ok(Ok(())) => {
                self.put_back(connection);
                Ok(answers)
            }
            Ok(Err(Exchange::Closed)) => Err(Failure::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ))),
            Ok(Err(Exchange::Failed(failure))) => Err(failure),
            Err(_) => Err(Failure::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {:?}", self.call_timeout),
            ))),
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
        let deadline = deadline.min(Instant::now() + self.connect_timeout);
        match tokio::time::timeout_at(deadline, TcpStream::connect(self.addrs.as_slice())).await {
            Ok(Ok(stream)) => {
                stream.set_nodelay(true).map_err(Failure::Io)?;
                Ok(Connection::new(stream))
            }
            Ok(Err(error)) => Err(Failure::Io(error)),
            Err(_) => Err(Failure::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect took over {:?}", self.connect_timeout),
            ))),
        }
    }
}

/// How an exchange failed.
enum Exchange {
    /// The connection was closed (or reset) before any byte of an answer arrived.
    Closed,
    /// Anything else.
    Failed(Failure),
}

/// One connection and its buffers (reused across calls).
struct Connection {
    stream: TcpStream,
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
    async fn exchange<T>(
        &mut self,
        commands: usize,
        parse: &mut impl FnMut(Reply<'_>) -> Result<T, Failure>,
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
        // `start`: where the next answer begins; `end`: how much of `response` is filled.
        let mut start = 0;
        for _ in 0..commands {
            let (line_end, value) = loop {
                if let Some(found) = self.parsable(start)? {
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
            let reply = reply(
                &self.response[start..line_end],
                value.clone().map(|range| &self.response[range]),
            )
            .map_err(Exchange::Failed)?;
            answers.push(parse(reply).map_err(Exchange::Failed)?);
            start = match value {
                Some(range) => range.end + 2,
                None => line_end + 2,
            };
        }
        if start != self.response.len() {
            return Err(Exchange::Failed(Failure::Protocol("more answers than commands".into())));
        }
        Ok(())
    }

    /// If the answer starting at `start` is complete in the buffer: where its line ends
    /// (before `\r\n`) and where its value lies.
    #[allow(clippy::type_complexity)]
    fn parsable(&self, start: usize) -> Result<Option<(usize, Option<std::ops::Range<usize>>)>, Exchange> {
        let buffered = &self.response[start..];
        let Some(newline) = buffered.iter().position(|&byte| byte == b'\n') else {
            return Ok(None);
        };
        if newline == 0 || buffered[newline - 1] != b'\r' {
            return Err(Exchange::Failed(Failure::Protocol(
                "an answer line without \\r\\n".into(),
            )));
        }
        let line_end = start + newline - 1;
        let line = &self.response[start..line_end];
        let Some(length) = line.strip_prefix(b"VA ") else {
            return Ok(Some((line_end, None)));
        };
        let digits = length.split(|&byte| byte == b' ').next().unwrap_or_default();
        let length = parse_u64(digits)
            .and_then(|length| usize::try_from(length).ok())
            .ok_or_else(|| Exchange::Failed(Failure::Protocol("a VA answer without a length".into())))?;
        let value = line_end + 2..line_end + 2 + length;
        if self.response.len() < value.end + 2 {
            return Ok(None);
        }
        if &self.response[value.end..value.end + 2] != b"\r\n" {
            return Err(Exchange::Failed(Failure::Protocol(
                "a value not followed by \\r\\n".into(),
            )));
        }
        Ok(Some((line_end, Some(value))))
    }
}

/// The [`Reply`] of one answer line (and value).
fn reply<'b>(line: &'b [u8], value: Option<&'b [u8]>) -> Result<Reply<'b>, Failure> {
    if let Some(message) = line.strip_prefix(b"SERVER_ERROR") {
        // memcached reads (and drops) the value of a set it refuses: the stream stays in step.
        return Ok(Reply {
            code: *b"SE",
            flags: message,
            value: None,
        });
    }
    let code: [u8; 2] = match line.get(..2) {
        Some(code) if line.len() == 2 || line[2] == b' ' => [code[0], code[1]],
        _ => {
            return Err(Failure::Protocol(format!(
                "unexpected answer {:?}",
                String::from_utf8_lossy(&line[..line.len().min(80)])
            )));
        }
    };
    let mut flags = line.get(3..).unwrap_or_default();
    if value.is_some() {
        // Skip the length.
        flags = flags
            .iter()
            .position(|&byte| byte == b' ')
            .map_or(&[][..], |space| &flags[space + 1..]);
    }
    Ok(Reply { code, flags, value })
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |number, &byte| {
        byte.is_ascii_digit()
            .then(|| number.checked_mul(10)?.checked_add(u64::from(byte - b'0')))
            .flatten()
    })
}

fn push_u64(buffer: &mut Vec<u8>, mut number: u64) {
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
    fn numbers_round_trip() {
        for number in [0, 7, 10, 12345, u64::MAX] {
            let mut buffer = Vec::new();
            push_u64(&mut buffer, number);
            assert_eq!(buffer, number.to_string().as_bytes());
            assert_eq!(parse_u64(&buffer), Some(number));
        }
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"1x"), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
    }

    #[test]
    fn answers_are_parsed() {
        let hit = reply(b"VA 3 c42 W", Some(b"abc")).unwrap();
        assert_eq!(
            (&hit.code, hit.cas(), hit.flag(b'W')),
            (b"VA", Some(42), Some(&b""[..]))
        );
        let stored = reply(b"HD c7", None).unwrap();
        assert_eq!((&stored.code, stored.cas(), stored.flag(b'Z')), (b"HD", Some(7), None));
        assert_eq!(
            &reply(b"SERVER_ERROR object too large for cache", None).unwrap().code,
            b"SE"
        );
        assert_eq!(&reply(b"EN", None).unwrap().code, b"EN");
        assert!(reply(b"ERROR", None).is_err());
        assert!(reply(b"CLIENT_ERROR bad command line format", None).is_err());
    }

    #[test]
    fn requests_are_encoded() {
        let mut buffer = Vec::new();
        let mut request = Request {
            buffer: &mut buffer,
            commands: 0,
        };
        request.get_leased("k", 5);
        request.set("k", b"xy", 60, Some(9), false);
        request.set("k", b"L", 30, None, true);
        request.delete("k", Some(3));
        request.delete("k", None);
        assert_eq!(request.commands, 5);
        assert_eq!(
            buffer,
            b"mg k v c N5\r\nms k 2 T60 C9\r\nxy\r\nms k 1 T30 c\r\nL\r\nmd k C3\r\nmd k\r\n"
        );
    }
}
