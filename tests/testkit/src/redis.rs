//! A real `redis-server` (and a real 3-master Redis Cluster) on free local ports.
//!
//! Each server runs without persistence in its own temporary directory, which also holds
//! its log (shown when it fails to start). The processes are killed, and the directories
//! removed, when the handle is dropped. Missing `redis-server` / `redis-cli` binaries make
//! the test panic: a test never passes by silently skipping.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::process::{ServerProcess, free_port};

/// How long a server may take to answer `PING` after being spawned.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a new cluster may take to report `cluster_state:ok` on every node.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at finding a free port before giving up.
const PORT_ATTEMPTS: usize = 20;

/// One `redis-server` process on `127.0.0.1`, killed on drop.
pub struct Redis {
    /// Declared before `dir`: the server is killed before its directory is removed.
    server: ServerProcess,
    dir: TempDir,
}

impl Redis {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub fn start() -> Self {
        let dir = TempDir::new("redis");
        let server = ServerProcess::start("redis-server", PORT_ATTEMPTS, |port| {
            spawn_server(port, dir.path(), &[])
        });
        Self { server, dir }
    }

    /// The port the server listens on (kept across [`Redis::restart`]).
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The URL to connect to: `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    /// Kills the server (SIGKILL: no goodbye to connected clients) and waits for it to exit.
    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel but never
    /// answered. Returns once the process is stopped.
    pub fn pause(&mut self) {
        self.server.pause();
    }

    /// Thaws a server frozen by [`Redis::pause`] (SIGCONT).
    pub fn resume(&mut self) {
        self.server.resume();
    }

    /// Kills the server if it still runs, then starts a new, empty one on the same port.
    pub fn restart(&mut self) {
        let dir = self.dir.path().to_owned();
        self.server.restart(START_TIMEOUT, |port| spawn_server(port, &dir, &[]));
    }
}

/// A Redis Cluster of three masters (no replicas) on `127.0.0.1`, killed on drop.
pub struct RedisCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: TempDir,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them with `redis-cli --cluster create`
    /// (the 16384 slots split in three), and waits until every node reports `cluster_state:ok`.
    pub fn start() -> Self {
        let dir = TempDir::new("redis-cluster");
        let mut cluster = Self {
            ports: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let (port, child) = cluster.spawn_node();
            cluster.ports.push(port);
            cluster.children.push(child);
        }
        cluster.create();
        cluster.wait_until_ok();
        cluster
    }

    fn spawn_node(&self) -> (u16, Child) {
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            // The cluster bus gets its own free port (`cluster-port`), so the client port needs
            // no room for the default `port + 10000`.
            let port = free_port();
            let bus_port = free_port();
            if port == bus_port || self.ports.contains(&port) || self.ports.contains(&bus_port) {
                continue;
            }
            let config = self.dir.path().join(format!("nodes-{port}.conf"));
            let bus_arg = bus_port.to_string();
            let config_arg = config.to_string_lossy().into_owned();
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &config_arg,
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                &bus_arg,
            ];
            match spawn_server(port, self.dir.path(), &extra) {
                Ok(child) => return (port, child),
                Err(error) => last_error = error,
            }
        }
        panic!("could not start a cluster redis-server after {PORT_ATTEMPTS} attempts: {last_error}");
    }

    fn create(&self) {
        let mut command = Command::new("redis-cli");
        command.arg("--cluster").arg("create");
        for port in &self.ports {
            command.arg(format!("127.0.0.1:{port}"));
        }
        command.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = command.stdin(Stdio::null()).output().unwrap_or_else(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                panic!("`redis-cli` not found on PATH: install redis-tools (e.g. `apt-get install redis-server`) to run the redis tests");
            }
            panic!("could not run `redis-cli --cluster create`: {error}");
        });
        if !output.status.success() {
            panic!(
                "`redis-cli --cluster create` failed ({}):\n{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    fn wait_until_ok(&self) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        for &port in &self.ports {
            loop {
                let info = command(port, &["CLUSTER", "INFO"]).unwrap_or_else(|error| error.to_string());
                if info.lines().any(|line| line.trim() == "cluster_state:ok") {
                    break;
                }
                if Instant::now() >= deadline {
                    panic!("redis cluster node {port} not ok after {CLUSTER_TIMEOUT:?}:\n{info}");
                }
                sleep(Duration::from_millis(100));
            }
        }
    }

    /// The client ports of the three masters.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The masters as `127.0.0.1:<port>`, as `RedisBackend::connect_cluster` takes them.
    pub fn servers(&self) -> Vec<String> {
        self.ports.iter().map(|port| format!("127.0.0.1:{port}")).collect()
    }

    /// The URL to connect to: `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`.
    pub fn url(&self) -> String {
        format!("redis+cluster://{}", self.servers().join(","))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        // `self.dir` is removed when it drops, after the processes are gone.
    }
}

/// Sends one command to the server on `port` and returns its (non-array) reply as text.
/// A server error reply becomes an `Err`.
pub fn command(port: u16, args: &[&str]) -> io::Result<String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    (&stream).write_all(request.as_bytes())?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']);
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {line:?}"));
    match line.split_at_checked(1) {
        Some(("+" | ":", rest)) => Ok(rest.to_owned()),
        Some(("-", rest)) => Err(io::Error::other(rest.to_owned())),
        Some(("$", length)) => {
            let Ok(length) = length.parse::<usize>() else {
                return Ok(String::new()); // `$-1`: nil
            };
            let mut body = vec![0; length + 2];
            reader.read_exact(&mut body)?;
            body.truncate(length);
            String::from_utf8(body).map_err(|_| invalid("non-UTF-8 bulk reply"))
        }
        _ => Err(invalid("unexpected reply")),
    }
}

/// Spawns `redis-server` on `port` and waits until it answers `PING` (and is this very
/// process, not another one that took the port meanwhile). If the process exits or never
/// answers, it is killed and its log returned.
fn spawn_server(port: u16, dir: &Path, extra: &[&str]) -> Result<Child, String> {
    let log = dir.join(format!("redis-{port}.log"));
    let stderr_path = dir.join(format!("redis-{port}.stderr"));
    let stderr = std::fs::File::create(&stderr_path)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", stderr_path.display()));
    let port_arg = port.to_string();
    let mut child = Command::new("redis-server")
        .args(["--port", &port_arg, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                panic!("`redis-server` not found on PATH: install redis (e.g. `apt-get install redis-server`) to run the redis tests");
            }
            panic!("could not spawn redis-server: {error}");
        });
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server on port {port} exited ({status}): {}{}",
                read_log(&stderr_path),
                read_log(&log)
            ));
        }
        if command(port, &["PING"]).is_ok_and(|reply| reply == "PONG") {
            let ours = format!("process_id:{}", child.id());
            let info = command(port, &["INFO", "server"]).unwrap_or_default();
            if info.lines().any(|line| line.trim() == ours) {
                return Ok(child);
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "redis-server on port {port} did not answer PING in {START_TIMEOUT:?}: {}",
                read_log(&log)
            ));
        }
        sleep(Duration::from_millis(20));
    }
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// A directory under the system temp dir, removed with its contents on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "autocache-{prefix}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create temp dir {}: {error}", path.display()));
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
