//! The floors: a raw-socket client that does nothing but write the request and read the
//! full response, the least any client of the server can cost on this machine.
//!
//! Memcached speaks the meta protocol: one key is `mg <key> v c` (value and CAS, as a
//! lease-aware client asks), many keys are `mg <key> v q` each (the quiet flag suppresses
//! misses' `EN`) followed by `mn`, whose `MN` ends the batch. Redis speaks RESP: `GET <key>`,
//! `MGET <key>…`. Values are read to their last byte; nothing is decoded.

use std::io::{self, Write as _};
use std::ops::Range;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The protocol a [`RawClient`] speaks.
#[derive(Clone, Copy)]
pub enum Protocol {
    /// The memcached meta protocol.
    Memcached,
    /// RESP (redis).
    Redis,
}

/// One connection, a request buffer and a response buffer (both reused).
pub struct RawClient {
    protocol: Protocol,
    stream: TcpStream,
    request: Vec<u8>,
    response: Vec<u8>,
    /// Where the unread part of `response` starts.
    read_at: usize,
}

impl RawClient {
    /// Connects to `addr` (`host:port`).
    pub async fn connect(protocol: Protocol, addr: &str) -> io::Result<RawClient> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            protocol,
            stream,
            request: Vec::with_capacity(16 * 1024),
            response: Vec::with_capacity(64 * 1024),
            read_at: 0,
        })
    }

    /// Reads one key; the stored bytes (panics on a miss: floors read filled keys).
    pub async fn get(&mut self, key: &str) -> io::Result<usize> {
        self.request.clear();
        match self.protocol {
            Protocol::Memcached => {
                self.request.extend_from_slice(b"mg ");
                self.request.extend_from_slice(key.as_bytes());
                self.request.extend_from_slice(b" v c\r\n");
            }
            Protocol::Redis => self.command("GET", &[key]),
        }
        self.send().await?;
        let bytes = match self.protocol {
            Protocol::Memcached => self.memcached_value().await?,
            Protocol::Redis => self.redis_bulk().await?,
        };
        Ok(bytes.expect("raw get: a hit"))
    }

    /// Reads `keys` in one round trip (pipelined `mg … q` + `mn`, or one `MGET`); the
    /// number of hits (panics unless every key hits).
    pub async fn get_many(&mut self, keys: &[&str]) -> io::Result<usize> {
        self.request.clear();
        match self.protocol {
            Protocol::Memcached => {
                for key in keys {
                    self.request.extend_from_slice(b"mg ");
                    self.request.extend_from_slice(key.as_bytes());
                    self.request.extend_from_slice(b" v q\r\n");
                }
                self.request.extend_from_slice(b"mn\r\n");
            }
            Protocol::Redis => self.command("MGET", keys),
        }
        self.send().await?;
        let mut hits = 0;
        match self.protocol {
            Protocol::Memcached => {
                while self.memcached_value().await?.is_some() {
                    hits += 1;
                }
            }
            Protocol::Redis => {
                let header = self.line().await?;
                let count = number(&self.response[header.start + 1..header.end]);
                for _ in 0..count {
                    hits += usize::from(self.redis_bulk().await?.is_some());
                }
            }
        }
        assert_eq!(hits, keys.len(), "raw get_many: all hits");
        Ok(hits)
    }

    /// Appends a RESP array of `name` and `args` to the request.
    fn command(&mut self, name: &str, args: &[&str]) {
        let request = &mut self.request;
        // Writing into a Vec cannot fail.
        let _ = write!(request, "*{}\r\n", args.len() + 1);
        for arg in std::iter::once(&name).chain(args) {
            let _ = write!(request, "${}\r\n{arg}\r\n", arg.len());
        }
    }

    async fn send(&mut self) -> io::Result<()> {
        self.response.clear();
        self.read_at = 0;
        self.stream.write_all(&self.request).await
    }

    /// One meta response: `VA <size> …` and its data block gives `Some(size)`; `EN` (a miss)
    /// and `MN` (the end of a batch) give `None`.
    async fn memcached_value(&mut self) -> io::Result<Option<usize>> {
        let line = self.line().await?;
        let size = match self.response[line.clone()].get(..2) {
            Some(b"VA") => number(
                self.response[line.start + 3..line.end]
                    .split(|&b| b == b' ')
                    .next()
                    .unwrap_or_default(),
            ),
            Some(b"EN" | b"MN") => return Ok(None),
            _ => return Err(unexpected(&self.response[line])),
        };
        self.skip(size + 2).await?;
        Ok(Some(size))
    }

    /// One RESP bulk string: `$<len>` and its bytes gives `Some(len)`, `$-1` gives `None`.
    async fn redis_bulk(&mut self) -> io::Result<Option<usize>> {
        let line = self.line().await?;
        let size = match &self.response[line.clone()] {
            [b'$', b'-', b'1'] => return Ok(None),
            [b'$', digits @ ..] => number(digits),
            other => return Err(unexpected(other)),
        };
        self.skip(size + 2).await?;
        Ok(Some(size))
    }

    /// Where the next response line is in `response`, without its `\r\n`.
    async fn line(&mut self) -> io::Result<Range<usize>> {
        loop {
            let unread = &self.response[self.read_at..];
            if let Some(end) = unread.windows(2).position(|pair| pair == b"\r\n") {
                let line = self.read_at..self.read_at + end;
                self.read_at = line.end + 2;
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    /// Consumes `n` bytes of the response.
    async fn skip(&mut self, n: usize) -> io::Result<()> {
        while self.response.len() - self.read_at < n {
            self.fill().await?;
        }
        self.read_at += n;
        Ok(())
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.read_at == self.response.len() {
            self.response.clear();
            self.read_at = 0;
        }
        if self.stream.read_buf(&mut self.response).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }
}

/// A decimal number of a response line (0 if there is none).
fn number(digits: &[u8]) -> usize {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn unexpected(line: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected response line {:?}", String::from_utf8_lossy(line)),
    )
}
