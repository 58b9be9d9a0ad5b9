//! A real memcached server on a free local port: `memcached -p <port> -l 127.0.0.1 -U 0
//! -t 1 -m 64`, killed when its handle is dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::process::ServerProcess;

/// How long a server gets to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many fresh ports [`Memcached::start`] tries before giving up.
const PORT_ATTEMPTS: usize = 20;

/// A memcached child process listening on 127.0.0.1 (killed on drop, also when paused).
pub struct Memcached {
    server: ServerProcess,
}

impl Memcached {
    /// Starts memcached on a free port and waits until it accepts connections.
    ///
    /// Panics (telling how to install it) if the `memcached` binary is missing.
    pub fn start() -> Memcached {
        let binary = binary();
        Memcached {
            server: ServerProcess::start("memcached", PORT_ATTEMPTS, |port| spawn(&binary, port)),
        }
    }

    /// The port the server listens on (kept across [`Memcached::restart`]).
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// Kills the server with SIGKILL and waits for it to exit (no-op if it is not running).
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Starts the server again, empty, on the same port (killing it first if it runs).
    pub fn restart(&mut self) {
        let binary = binary();
        self.server.restart(START_TIMEOUT, |port| spawn(&binary, port));
    }

    /// Freezes the server (SIGSTOP): it keeps its items and its listening socket, so
    /// connections are accepted by the kernel but never answered, like a network partition.
    /// Returns once every thread of the process is stopped.
    pub fn pause(&mut self) {
        self.server.pause();
    }

    /// Thaws a server frozen by [`Memcached::pause`] (SIGCONT).
    pub fn resume(&mut self) {
        self.server.resume();
    }
}

/// `memcache://<addr>,<addr>…` for the given servers.
pub fn url(servers: &[&Memcached]) -> String {
    let addrs: Vec<String> = servers.iter().map(|server| server.addr()).collect();
    format!("memcache://{}", addrs.join(","))
}

/// The memcached binary, from `PATH` or `/usr/bin`.
fn binary() -> PathBuf {
    let in_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("memcached"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    in_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin/memcached")])
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the memcached binary was not found (looked in PATH and /usr/bin). These tests need a real \
             server: install it with `apt-get install -y memcached`"
            )
        })
}

/// Whether this process runs as root (memcached then needs `-u root`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Uid:")
                    .map(|ids| ids.split_whitespace().nth(1) == Some("0"))
            })
        })
        .unwrap_or(false)
}

/// Spawns memcached on `port` and waits until it answers as that very process; on failure
/// the child is killed and the reason returned.
fn spawn(binary: &PathBuf, port: u16) -> Result<Child, String> {
    let mut command = Command::new(binary);
    command.args([
        "-p",
        &port.to_string(),
        "-l",
        "127.0.0.1",
        "-U",
        "0",
        "-t",
        "1",
        "-m",
        "64",
    ]);
    if is_root() {
        command.args(["-u", "root"]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run {}: {error}", binary.display()))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            return Err(format!("memcached exited with {status}: {}", stderr.trim()));
        }
        // Another server may hold the port: only our own process's pid counts as started.
        match server_pid(port) {
            Some(pid) if pid == child.id() => {
                // Nothing reads its stderr from now on; memcached ignores SIGPIPE.
                drop(child.stderr.take());
                return Ok(child);
            }
            Some(pid) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("port taken by another memcached (pid {pid})"));
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("not accepting connections after {START_TIMEOUT:?}"));
            }
            None => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The pid reported by `stats` on 127.0.0.1:`port`, if a memcached answers there.
fn server_pid(port: u16) -> Option<u32> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(b"stats\r\n").ok()?;
    let mut pid = None;
    for line in BufReader::new(stream).lines() {
        let line = line.ok()?;
        if line == "END" {
            break;
        }
        if let Some(value) = line.strip_prefix("STAT pid ") {
            pid = value.trim().parse().ok();
        }
    }
    pid
}
