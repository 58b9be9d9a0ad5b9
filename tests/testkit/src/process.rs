//! A server child process on a local port: started on a free port (retrying when another
//! process takes the port first), killed, restarted on the same port, killed on drop. The
//! memcached and redis handles are built on it.

use std::net::{Ipv4Addr, TcpListener};
use std::process::Child;
use std::time::{Duration, Instant};

/// One running (or killed) server process and the port it listens on.
pub(crate) struct ServerProcess {
    /// What the server is, for messages (`memcached`).
    name: &'static str,
    port: u16,
    child: Option<Child>,
}

impl ServerProcess {
    /// Runs `spawn` on fresh free ports until a server starts, at most `attempts` times.
    /// `spawn` returns once the server answers, or why it did not start.
    pub fn start(name: &'static str, attempts: usize, mut spawn: impl FnMut(u16) -> Result<Child, String>) -> Self {
        let mut failures = Vec::new();
        for _ in 0..attempts {
            let port = free_port();
            match spawn(port) {
                Ok(child) => {
                    return Self {
                        name,
                        port,
                        child: Some(child),
                    };
                }
                // Most likely another process took the port between our probe and the bind.
                Err(reason) => failures.push(format!("port {port}: {reason}")),
            }
        }
        panic!(
            "could not start {name} after {attempts} attempts:\n{}",
            failures.join("\n")
        );
    }

    /// The port the server listens on (kept across [`ServerProcess::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (no goodbye to connected clients) and waits for it to
    /// exit; nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it runs, then starts a new, empty one on the same port, retrying
    /// (the old socket may linger briefly) until `timeout`.
    pub fn restart(&mut self, timeout: Duration, mut spawn: impl FnMut(u16) -> Result<Child, String>) {
        self.kill();
        let deadline = Instant::now() + timeout;
        loop {
            match spawn(self.port) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(reason) if Instant::now() >= deadline => {
                    panic!("could not restart {} on port {}: {reason}", self.name, self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port that was free a moment ago (the OS picks it; the listener is closed at once).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("cannot bind a local TCP port: {error}"))
}
