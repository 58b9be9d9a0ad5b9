//! The cache servers of a scenario and the faults injected into them on a timeline: a
//! server (or one master of the cluster) frozen (SIGSTOP/SIGCONT) several times, killed and
//! restarted empty on its port, or cut off from one process by a [`Relay`] switched to a
//! black hole and back.

use std::thread::sleep;
use std::time::{Duration, Instant};

use autocache_testkit::memcached::Memcached;
use autocache_testkit::redis::{Redis, RedisCluster};
use autocache_testkit::relay::Relay;

/// The cache deployments every scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deployment {
    /// Two memcached servers, keys spread over both.
    Memcached2,
    /// One redis server.
    Redis,
    /// A three-master Redis Cluster.
    Cluster,
}

impl Deployment {
    /// The name in R9 lines.
    pub fn name(self) -> &'static str {
        match self {
            Deployment::Memcached2 => "memcached2",
            Deployment::Redis => "redis",
            Deployment::Cluster => "cluster",
        }
    }
}

/// What happens to the servers during a scenario (the writer kill is the orchestrator's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerFault {
    /// Nothing.
    None,
    /// The victim server frozen for 0.5 s, 1.5 s, 3 s, … with 0.5 s between, while time lasts.
    Pause,
    /// The victim server killed a quarter in, restarted empty half-way.
    KillAndRestart,
    /// The relay to the victim server a black hole from a quarter in, for up to 2 s.
    Partition,
}

/// How long each scenario runs before its first fault.
pub const QUIET_START: Duration = Duration::from_millis(500);
/// The lengths of successive freezes (cycled).
const PAUSES: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_millis(1500),
    Duration::from_millis(3000),
];
/// The shortest freeze, and the time the server runs between two.
const PAUSE_GAP: Duration = Duration::from_millis(500);
/// The longest partition.
const PARTITION: Duration = Duration::from_secs(2);

/// A process that can be frozen and thawed.
pub trait Pausable {
    fn pause(&mut self);
    fn resume(&mut self);
}

/// A single server the faults are injected into.
pub trait Victim: Pausable {
    fn kill(&mut self);
    fn restart(&mut self);
}

/// Implements [`Victim`] for a testkit server handle that has these four methods.
macro_rules! victim {
    ($server:ty) => {
        impl Pausable for $server {
            fn pause(&mut self) {
                <$server>::pause(self)
            }
            fn resume(&mut self) {
                <$server>::resume(self)
            }
        }
        impl Victim for $server {
            fn kill(&mut self) {
                <$server>::kill(self)
            }
            fn restart(&mut self) {
                <$server>::restart(self)
            }
        }
    };
}

victim!(Memcached);
victim!(Redis);

/// A Redis Cluster and which of its masters faults are injected into.
pub struct ClusterVictim {
    cluster: RedisCluster,
    /// The victim's index among the masters.
    node: usize,
}

impl Pausable for ClusterVictim {
    fn pause(&mut self) {
        self.cluster.pause(self.node);
    }
    fn resume(&mut self) {
        self.cluster.resume(self.node);
    }
}

impl Victim for ClusterVictim {
    fn kill(&mut self) {
        self.cluster.kill(self.node);
    }
    fn restart(&mut self) {
        self.cluster.restart(self.node);
    }
}

/// A scenario's running servers (stopped on drop).
pub enum Servers {
    /// Two memcached servers, named `m0` and `m1` for routing; `m1` is the victim.
    Memcached([Memcached; 2]),
    /// The redis server, also the victim.
    Redis(Redis),
    /// The cluster; the victim is one master, the first until [`Servers::aim_at`] (no
    /// partition: see [`Servers::url`]).
    Cluster(ClusterVictim),
}

impl Servers {
    /// Starts the servers of `deployment`.
    pub fn start(deployment: Deployment) -> Servers {
        match deployment {
            Deployment::Memcached2 => Servers::Memcached([Memcached::start(), Memcached::start()]),
            Deployment::Redis => Servers::Redis(Redis::start()),
            Deployment::Cluster => Servers::Cluster(ClusterVictim {
                cluster: RedisCluster::start(),
                node: 0,
            }),
        }
    }

    /// `host:port` of the server a relay partitions.
    pub fn victim_addr(&self) -> String {
        match self {
            Servers::Memcached([_, victim]) => victim.addr(),
            Servers::Redis(redis) => format!("127.0.0.1:{}", redis.port()),
            Servers::Cluster(_) => panic!("no relay can partition a Redis Cluster client"),
        }
    }

    /// The cache URL of a process that reaches the victim through `relay` (`host:port`), or
    /// directly. Memcached servers are named, so both kinds of process route keys alike.
    pub fn url(&self, relay: Option<&str>) -> String {
        match self {
            Servers::Memcached([first, victim]) => {
                let victim = relay.map_or_else(|| victim.addr(), str::to_owned);
                format!("memcache://m0={},m1={victim}", first.addr())
            }
            Servers::Redis(redis) => relay.map_or_else(|| redis.url(), |relay| format!("redis://{relay}")),
            Servers::Cluster(victim) => {
                assert!(relay.is_none(), "cluster redirects name the real nodes: no relay");
                victim.cluster.url()
            }
        }
    }

    fn victim(&mut self) -> &mut dyn Victim {
        match self {
            Servers::Memcached([_, victim]) => victim,
            Servers::Redis(redis) => redis,
            Servers::Cluster(victim) => victim,
        }
    }

    /// Makes the server that holds `key` the victim where there is a choice: the cluster
    /// master serving its slot. (The memcached victim is `m1`, whatever it holds.)
    pub fn aim_at(&mut self, key: &str) {
        if let Servers::Cluster(victim) = self {
            victim.node = victim.cluster.node_for(key);
        }
    }

    /// Runs `fault` from now for `duration` (returns when it is over); a partition switches
    /// `relay`, which must then be given.
    pub fn inject(&mut self, fault: ServerFault, relay: Option<&Relay>, duration: Duration) {
        inject(self.victim(), fault, relay, duration);
    }
}

/// Runs `fault` on `victim` from now for `duration` (returns when it is over); a partition
/// switches `relay`, which must then be given.
pub fn inject(victim: &mut dyn Victim, fault: ServerFault, relay: Option<&Relay>, duration: Duration) {
    let end = Instant::now() + duration;
    sleep(QUIET_START.min(duration));
    match fault {
        ServerFault::None => {}
        ServerFault::Pause => pause_repeatedly(victim, end),
        ServerFault::KillAndRestart => {
            sleep(duration / 4);
            victim.kill();
            sleep(duration / 4);
            victim.restart();
        }
        ServerFault::Partition => {
            let relay = relay.expect("a partition needs the relay");
            sleep(duration / 4);
            relay.black_hole();
            sleep(PARTITION.min(duration / 2));
            relay.restore();
        }
    }
    sleep(end.saturating_duration_since(Instant::now()));
}

/// Freezes `victim` for 0.5 s, 1.5 s, 3 s, … with 0.5 s between, until `end`.
pub fn pause_repeatedly(victim: &mut dyn Pausable, end: Instant) {
    for &length in PAUSES.iter().cycle() {
        let left = end.saturating_duration_since(Instant::now()).saturating_sub(PAUSE_GAP);
        let length = length.min(left);
        if length < PAUSE_GAP {
            break;
        }
        victim.pause();
        sleep(length);
        victim.resume();
        sleep(PAUSE_GAP);
    }
}
