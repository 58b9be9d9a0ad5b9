//! A TCP relay the test controls, between some clients and one server: a network partition
//! between exactly the clients that dial the relay and that server, while others still
//! reach the server directly.
//!
//! [`Relay::black_hole`] stops forwarding in both directions but keeps every connection
//! open (and keeps accepting new ones): clients see a server that never answers, as when
//! packets are dropped on the way. [`Relay::restore`] forwards again, including whatever
//! was sent meanwhile, as TCP delivers it after a partition heals. Plain std threads, two
//! per connection; everything is shut down when the handle is dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// How often a held direction checks whether it may forward again.
const HOLD_POLL: Duration = Duration::from_millis(1);

/// How long dialing the server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A relay listening on a free local port and forwarding to one server.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// What the accepting thread and the forwarding threads share with the handle.
struct Shared {
    /// While set, nothing is forwarded.
    black_hole: AtomicBool,
    /// Set on drop: every thread winds down.
    closed: AtomicBool,
    /// Every socket of every relayed connection, shut down on drop.
    sockets: Mutex<Vec<TcpStream>>,
}

impl Relay {
    /// Starts a relay on `127.0.0.1:<free port>` to `server` (`host:port`).
    pub fn start(server: &str) -> Relay {
        let server: SocketAddr = server
            .parse()
            .unwrap_or_else(|error| panic!("relay target `{server}` is not ip:port: {error}"));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|error| panic!("cannot bind a local TCP port for a relay: {error}"));
        let addr = listener.local_addr().expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            black_hole: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.closed.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(client) = client {
                    accepting.relay(client, server);
                }
            }
        });
        Relay { addr, shared }
    }

    /// `127.0.0.1:<port>`: what the partitioned clients dial instead of the server.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Stops forwarding (connections stay open, nothing gets through either way).
    pub fn black_hole(&self) {
        self.shared.black_hole.store(true, Ordering::SeqCst);
    }

    /// Forwards again, starting with what was held.
    pub fn restore(&self) {
        self.shared.black_hole.store(false, Ordering::SeqCst);
    }
}

impl Shared {
    /// Dials the server for `client` and forwards both ways on two threads; if the server
    /// cannot be reached the client's connection is closed, as a refused connection would be.
    fn relay(self: &Arc<Self>, client: TcpStream, server: SocketAddr) {
        let Ok(upstream) = TcpStream::connect_timeout(&server, CONNECT_TIMEOUT) else {
            let _ = client.shutdown(Shutdown::Both);
            return;
        };
        let (Ok(client_copy), Ok(upstream_copy)) = (client.try_clone(), upstream.try_clone()) else {
            return;
        };
        {
            let mut sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
            if let (Ok(a), Ok(b)) = (client.try_clone(), upstream.try_clone()) {
                sockets.extend([a, b]);
            }
        }
        for (from, to) in [(client, upstream), (upstream_copy, client_copy)] {
            let shared = self.clone();
            thread::spawn(move || shared.forward(from, to));
        }
    }

    /// Copies `from` to `to` until either side closes, holding each chunk while the relay
    /// is a black hole; then shuts both down so the other direction ends too.
    fn forward(&self, mut from: TcpStream, mut to: TcpStream) {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let read = match from.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            while self.black_hole.load(Ordering::SeqCst) && !self.closed.load(Ordering::SeqCst) {
                thread::sleep(HOLD_POLL);
            }
            if self.closed.load(Ordering::SeqCst) || to.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        // Wake the accepting thread, which then sees `closed` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT);
        let sockets = std::mem::take(&mut *self.shared.sockets.lock().unwrap_or_else(PoisonError::into_inner));
        for socket in sockets {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port.
    fn echo_server() -> String {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut reader = stream.try_clone().unwrap();
                    let _ = std::io::copy(&mut reader, &mut &stream);
                });
            }
        });
        addr
    }

    fn exchange(stream: &mut TcpStream, message: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(message)?;
        let mut answer = vec![0; message.len()];
        stream.read_exact(&mut answer)?;
        Ok(answer)
    }

    #[test]
    fn a_black_hole_holds_traffic_until_restored() {
        let relay = Relay::start(&echo_server());
        let mut client = TcpStream::connect(relay.addr()).unwrap();
        client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        assert_eq!(exchange(&mut client, b"one").unwrap(), b"one");
        relay.black_hole();
        let held = exchange(&mut client, b"two").unwrap_err();
        assert!(
            matches!(held.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{held}"
        );
        relay.restore();
        let mut answer = [0; 3];
        client.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"two", "what was sent during the black hole arrives after it");
        assert_eq!(exchange(&mut client, b"three").unwrap(), b"three");
    }
}
