//! A server child process on a local port: started on a free port (retrying when another
//! process takes the port first), paused and resumed, killed, restarted on the same port,
//! killed on drop. The
//! memcached and redis handles are built on it.

use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command};
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

impl ServerProcess {
    /// Freezes the server (SIGSTOP) and returns once every thread of the process is stopped:
    /// `kill` only queues the signal, and a thread that was running could otherwise still
    /// answer one more request.
    pub fn pause(&self) {
        let pid = self.signal("-STOP");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < deadline, "{} {pid} did not stop", self.name);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Thaws a server frozen by [`ServerProcess::pause`] (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Sends `signal` to the server with the `kill` command; its process id.
    fn signal(&self, signal: &str) -> u32 {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} on port {} is not running", self.name, self.port));
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .unwrap_or_else(|error| panic!("could not run `kill {signal}`: {error}"));
        assert!(status.success(), "`kill {signal} {pid}` failed: {status}");
        pid
    }
}

/// How long a paused server's threads may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether every thread of process `pid` is stopped (state `T` in `/proc/<pid>/task/*/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the parenthesised command name.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    })
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
