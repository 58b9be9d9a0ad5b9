//! A real `redis-server` (and a real 3-master Redis Cluster) on free local ports.
//!
//! Each server runs without persistence in its own temporary directory, which also holds
//! its log (shown when it fails to start). The processes are killed, and the directories
//! removed, when the handle is dropped. A single server, and each master of a cluster, can
//! be frozen (SIGSTOP), killed and restarted empty on its port. Missing `redis-server` /
//! `redis-cli` binaries make the test panic: a test never passes by silently skipping.

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
///
/// Each master can be frozen, killed and restarted on its own. A restarted master keeps its
/// ports and its `nodes.conf` (in the cluster's temporary directory), so it rejoins the
/// cluster as the same node with the same slots, but empty.
pub struct RedisCluster {
    /// The client ports of the masters, in the order of `nodes` (fixed for the cluster's life).
    ports: Vec<u16>,
    /// Declared before `dir`: the servers are killed before their directory is removed.
    nodes: Vec<ClusterNode>,
    dir: TempDir,
}

/// One master of a [`RedisCluster`].
struct ClusterNode {
    server: ServerProcess,
    /// The cluster bus port (`cluster-port`), kept across restarts like the client port.
    bus_port: u16,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them with `redis-cli --cluster create`
    /// (the 16384 slots split in three), and waits until every node reports `cluster_state:ok`.
    pub fn start() -> Self {
        let dir = TempDir::new("redis-cluster");
        let mut cluster = Self {
            ports: Vec::new(),
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let node = cluster.start_node();
            cluster.ports.push(node.server.port());
            cluster.nodes.push(node);
        }
        cluster.create();
        cluster.wait_until_ok();
        cluster
    }

    fn start_node(&self) -> ClusterNode {
        let mut bus_port = 0;
        let server = ServerProcess::start("cluster redis-server", PORT_ATTEMPTS, |port| {
            // The cluster bus gets its own free port (`cluster-port`), so the client port needs
            // no room for the default `port + 10000`.
            bus_port = free_port();
            let taken = |port| self.nodes.iter().any(|node| node.bus_port == port) || self.ports.contains(&port);
            if port == bus_port || taken(port) || taken(bus_port) {
                return Err(format!("bus port {bus_port} clashes"));
            }
            spawn_node(port, bus_port, self.dir.path())
        });
        ClusterNode { server, bus_port }
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

    /// The master that serves `key`'s hash slot, as an index into [`RedisCluster::ports`]
    /// (asked of the first running master, whose view of the slots must be settled).
    pub fn node_for(&self, key: &str) -> usize {
        let port = self.ports[self
            .nodes
            .iter()
            .position(|node| node.server.pid().is_some())
            .expect("a running master")];
        let ask = |args: &[&str]| {
            command(port, args).unwrap_or_else(|error| panic!("`{}` on port {port}: {error}", args.join(" ")))
        };
        let slot: u16 = ask(&["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT answers a slot");
        let nodes = ask(&["CLUSTER", "NODES"]);
        // `<id> <ip>:<port>@<bus port> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges>…`
        let owner = nodes.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let serves = fields.get(8..)?.iter().any(|range| {
                let (first, last) = range.split_once('-').unwrap_or((range, range));
                first.parse().is_ok_and(|first: u16| first <= slot) && last.parse().is_ok_and(|last: u16| slot <= last)
            });
            let address = fields.get(1)?.split('@').next()?;
            serves
                .then(|| address.rsplit_once(':')?.1.parse::<u16>().ok())
                .flatten()
        });
        owner
            .and_then(|owner| self.ports.iter().position(|&port| port == owner))
            .unwrap_or_else(|| panic!("no master of this cluster serves slot {slot}:\n{nodes}"))
    }

    /// Freezes master `node` (an index into [`RedisCluster::ports`]) with SIGSTOP: it answers
    /// neither clients nor the cluster bus. Returns once the process is stopped.
    pub fn pause(&mut self, node: usize) {
        self.nodes[node].server.pause();
    }

    /// Thaws master `node`, frozen by [`RedisCluster::pause`] (SIGCONT).
    pub fn resume(&mut self, node: usize) {
        self.nodes[node].server.resume();
    }

    /// Kills master `node` (SIGKILL: no goodbye to clients nor to the other nodes) and waits
    /// for it to exit. Its slots are served by nobody until [`RedisCluster::restart`].
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].server.kill();
    }

    /// Kills master `node` if it still runs, starts it again, empty, on the same ports with the
    /// same `nodes.conf`, and waits until every node reports `cluster_state:ok` again (the
    /// restarted master rejoined with its slots).
    pub fn restart(&mut self, node: usize) {
        let ClusterNode { server, bus_port } = &mut self.nodes[node];
        let (bus_port, dir) = (*bus_port, self.dir.path());
        server.restart(START_TIMEOUT, |port| spawn_node(port, bus_port, dir));
        self.wait_until_ok();
    }
}

/// Spawns a cluster-enabled `redis-server` on `port`, with its bus on `bus_port` and its
/// cluster state in `dir/nodes-<port>.conf` (read again on a restart), as [`spawn_server`].
fn spawn_node(port: u16, bus_port: u16, dir: &Path) -> Result<Child, String> {
    let config = dir.join(format!("nodes-{port}.conf"));
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
    spawn_server(port, dir, &extra)
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
