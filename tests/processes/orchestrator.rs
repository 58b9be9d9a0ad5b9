//! The orchestrator: runs every scenario (a writer and readers as separate processes on
//! real servers, with one fault), prints one `R9` line per scenario and a summary, and
//! fails when a scenario misses its expectation.
//!
//! Knobs (environment):
//! - `AUTOCACHE_R9_SECONDS`: seconds per scenario (default 5);
//! - `AUTOCACHE_R9_READERS`: checked reader processes per scenario (default 3, at least 1);
//! - `AUTOCACHE_R9_ONLY`: comma-separated words; only scenarios whose `<backend>/<name>`
//!   contains one of them run (e.g. `memcached2`, `partition`, `redis/steady`);
//! - `AUTOCACHE_R9_EXPECT=report`: print the lines and the summary, but exit 0 anyway;
//! - `AUTOCACHE_TEST_PG`: the PostgreSQL server (see [`crate::database`]).

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use autocache::{Context, Options};
use autocache_testkit::redis::Redis;
use autocache_testkit::relay::Relay;

use crate::builds::Build;
use crate::checker::{AckRecord, Report};
use crate::database::{self, RunSchema};
use crate::faults::{self, Deployment, ServerFault, Servers};
use crate::node::HOLDING;
use crate::nodes::NodeProcess;
use crate::sample::{BookRepo, NewBook, NewPerson, Person, PersonRepo};
use crate::spec::{NodeSpec, Role};

/// Hot rows per scenario (each a person and its book).
const ROWS: usize = 3;

/// A writer-kill scenario's p99 read latency may be at most this many times the steady state's.
const WRITER_KILL_SLOWDOWN: u64 = 3;

/// Fewer reads or writes than this and a scenario proves nothing.
const MIN_READS: u64 = 100;
const MIN_WRITES: u64 = 10;

/// What a scenario does besides reading and writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// A fault injected into the servers.
    Server(ServerFault),
    /// The relay cuts the writer off from the victim server.
    PartitionWriter,
    /// The relay cuts the first reader off from the victim server.
    PartitionReader,
    /// The writer is killed while its transaction holds locks, and replaced.
    KillWriter,
    /// Steady state, with naive readers instead of checked ones (the control); with near
    /// caches, checked readers and a writer that does not wait for near invalidations.
    Naive,
    /// A rolling deploy (R12): a process of the sample schema's build and one of its next
    /// version's, each writing its own rows and reading all; `naive`: the next version
    /// generated without its lock file (the control).
    Rolling { naive: bool },
    /// A fault injected into the near caches' invalidation channel.
    Channel(ServerFault),
    /// The first reader frozen (SIGSTOP) for 0.5 s, 1.5 s, … while the others read.
    PauseReader,
}

impl Fault {
    /// The requirement the scenario checks, as its lines start.
    fn requirement(self) -> &'static str {
        match self {
            Fault::Rolling { .. } => "R12",
            _ => "R9",
        }
    }

    /// Whether the scenario is a control the checker must catch.
    fn is_control(self) -> bool {
        matches!(self, Fault::Naive | Fault::Rolling { naive: true })
    }
}

/// One scenario.
struct Scenario {
    name: &'static str,
    deployment: Deployment,
    fault: Fault,
    /// Near caches in every node, kept right by an invalidation channel of the scenario's
    /// own (R13).
    near: bool,
}

impl Scenario {
    /// The requirement the scenario checks, as its lines start.
    fn requirement(&self) -> &'static str {
        match self.near {
            true => "R13",
            false => self.fault.requirement(),
        }
    }

    /// `<backend>/<name>`, or `near/<name>` for R13, as `AUTOCACHE_R9_ONLY` and the
    /// summary name it.
    fn id(&self) -> String {
        match self.near {
            true => format!("near/{}", self.name),
            false => format!("{}/{}", self.deployment.name(), self.name),
        }
    }
}

/// Every scenario, steady state first on each deployment (the writer kill compares with it),
/// then R13's: near caches in every node on two memcached servers.
fn scenarios() -> Vec<Scenario> {
    use Deployment::{Cluster, Memcached2, Redis};
    let near = [
        ("steady", Fault::Server(ServerFault::None)),
        ("channel_pause", Fault::Channel(ServerFault::Pause)),
        ("channel_kill", Fault::Channel(ServerFault::KillAndRestart)),
        ("reader_pause", Fault::PauseReader),
        ("writer_kill", Fault::KillWriter),
        ("naive", Fault::Naive),
    ];
    let list = [
        (Memcached2, "steady", Fault::Server(ServerFault::None)),
        (Memcached2, "pause", Fault::Server(ServerFault::Pause)),
        (Memcached2, "kill_restart", Fault::Server(ServerFault::KillAndRestart)),
        (Memcached2, "partition_writer", Fault::PartitionWriter),
        (Memcached2, "partition_reader", Fault::PartitionReader),
        (Memcached2, "writer_kill", Fault::KillWriter),
        (Memcached2, "naive", Fault::Naive),
        (Memcached2, "rolling-deploy", Fault::Rolling { naive: false }),
        (Memcached2, "rolling-deploy-naive", Fault::Rolling { naive: true }),
        (Redis, "steady", Fault::Server(ServerFault::None)),
        (Redis, "pause", Fault::Server(ServerFault::Pause)),
        (Redis, "kill_restart", Fault::Server(ServerFault::KillAndRestart)),
        (Redis, "partition_writer", Fault::PartitionWriter),
        (Redis, "partition_reader", Fault::PartitionReader),
        (Redis, "writer_kill", Fault::KillWriter),
        // A relay cannot partition a cluster client: MOVED/ASK redirects and CLUSTER SLOTS
        // name the real nodes, so the client would dial around the relay.
        (Cluster, "steady", Fault::Server(ServerFault::None)),
        (Cluster, "pause", Fault::Server(ServerFault::Pause)),
        (Cluster, "kill_restart", Fault::Server(ServerFault::KillAndRestart)),
        (Cluster, "writer_kill", Fault::KillWriter),
    ];
    let remote = list.into_iter().map(|(deployment, name, fault)| Scenario {
        name,
        deployment,
        fault,
        near: false,
    });
    let near = near.into_iter().map(|(name, fault)| Scenario {
        name,
        deployment: Memcached2,
        fault,
        near: true,
    });
    remote.chain(near).collect()
}

/// The knobs of a run.
struct Knobs {
    duration: Duration,
    readers: usize,
    only: Vec<String>,
    report_only: bool,
}

impl Knobs {
    fn from_env() -> Knobs {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .map(|value| {
                    value
                        .parse()
                        .unwrap_or_else(|_| panic!("{name}={value} is not a number"))
                })
                .unwrap_or(default)
        };
        Knobs {
            duration: Duration::from_secs(number("AUTOCACHE_R9_SECONDS", 5)),
            readers: usize::try_from(number("AUTOCACHE_R9_READERS", 3))
                .unwrap_or(usize::MAX)
                .max(1),
            only: std::env::var("AUTOCACHE_R9_ONLY")
                .map(|words| {
                    words
                        .split(',')
                        .map(str::trim)
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            report_only: std::env::var("AUTOCACHE_R9_EXPECT").is_ok_and(|expect| expect == "report"),
        }
    }

    fn selects(&self, scenario: &Scenario) -> bool {
        let id = scenario.id();
        self.only.is_empty() || self.only.iter().any(|word| id.contains(word.as_str()))
    }
}

/// A scenario's outcome.
struct Outcome {
    processes: usize,
    total: Report,
    /// A rolling deploy's stale reads by the build of the reading process.
    stale_by_build: Vec<(Build, u64)>,
}

/// Runs the selected scenarios and exits: 0 when every one met its expectation (or
/// `AUTOCACHE_R9_EXPECT=report`), 1 otherwise.
pub fn run() {
    let knobs = Knobs::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let url = database::url();
    let schema = runtime.block_on(RunSchema::create(&url));
    let dir = std::env::temp_dir().join(format!("autocache-r9-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|error| panic!("create {}: {error}", dir.display()));
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut steady_p99: Vec<(Deployment, u64)> = Vec::new();
    let selected: Vec<Scenario> = scenarios().into_iter().filter(|s| knobs.selects(s)).collect();
    for (number, scenario) in selected.iter().enumerate() {
        let run = ScenarioRun {
            scenario,
            knobs: &knobs,
            url: &url,
            schema: &schema,
            namespace: format!("r9-{}-{number}:", std::process::id()),
            acks: dir.join(format!("acks-{number}")),
        };
        // A scenario that panics (a server or node that would not start) fails alone.
        let Ok(outcome) = std::panic::catch_unwind(AssertUnwindSafe(|| run.run(&runtime))) else {
            println!(
                "{} FAIL scenario={} backend={}: the scenario panicked (above)",
                scenario.requirement(),
                scenario.name,
                scenario.deployment.name()
            );
            failures.push(scenario.id());
            continue;
        };
        let total = &outcome.total;
        if scenario.near {
            println!(
                "R13 scenario={} processes={} near_hits={} reads={} writes={} stale={} caller_errors={} near_share={:.2} max_write_ms={:.1}",
                scenario.name,
                outcome.processes,
                total.near_hits,
                total.reads,
                total.writes,
                total.stale,
                total.caller_errors,
                near_share(total),
                millis(total.max_write_us),
            );
        } else {
            let head = match scenario.fault {
                Fault::Rolling { .. } => {
                    let by_build: String = outcome
                        .stale_by_build
                        .iter()
                        .map(|(build, stale)| format!(" stale_{build:?}={stale}").to_lowercase())
                        .collect();
                    format!(
                        "R12 scenario={} processes={} reads={} writes={} stale={}{by_build} backend={}",
                        scenario.name,
                        outcome.processes,
                        total.reads,
                        total.writes,
                        total.stale,
                        scenario.deployment.name(),
                    )
                }
                _ => format!(
                    "R9 scenario={} backend={} processes={} reads={} writes={} stale={} stale_churn={}",
                    scenario.name,
                    scenario.deployment.name(),
                    outcome.processes,
                    total.reads,
                    total.writes,
                    total.stale,
                    total.stale_churn,
                ),
            };
            println!(
                "{head} caller_errors={} p99_read_ms={:.1} max_write_ms={:.1}",
                total.caller_errors,
                millis(total.p99_read_us),
                millis(total.max_write_us),
            );
        }
        let steady = steady_p99
            .iter()
            .find(|(d, _)| *d == scenario.deployment)
            .map(|(_, p99)| *p99);
        if let Err(why) = expectation(scenario, total, steady) {
            println!(
                "{} FAIL scenario={} backend={}: {why}",
                scenario.requirement(),
                scenario.name,
                scenario.deployment.name()
            );
            failures.push(scenario.id());
        }
        if scenario.fault == Fault::Server(ServerFault::None) && !scenario.near {
            steady_p99.push((scenario.deployment, total.p99_read_us));
        }
    }
    runtime.block_on(schema.drop_now());
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "R9 summary scenarios={} passed={} failed={} seconds={}{}",
        selected.len(),
        selected.len() - failures.len(),
        failures.len(),
        started.elapsed().as_secs(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(" failing={}", failures.join(","))
        },
    );
    if !failures.is_empty() && !knobs.report_only {
        std::process::exit(1);
    }
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// The share of the readers' key lookups their near caches served.
fn near_share(total: &Report) -> f64 {
    total.near_hits as f64 / total.lookups.max(1) as f64
}

/// The least share of lookups served near in an R13 scenario: most of them, except while
/// the channel is down (no near lease, no near hit: by design).
fn min_near_share(fault: Fault) -> f64 {
    match fault {
        Fault::Channel(_) => 0.2,
        _ => 0.5,
    }
}

/// Whether `total` is what `scenario` must show: enough work, and no stale read nor
/// caller error, except the naive control, which must show stale reads; a writer kill
/// also keeps p99 reads within [`WRITER_KILL_SLOWDOWN`] times the steady state's (when
/// the steady state of that deployment ran before it).
fn expectation(scenario: &Scenario, total: &Report, steady_p99_us: Option<u64>) -> Result<(), String> {
    if total.reads < MIN_READS || total.writes < MIN_WRITES {
        return Err(format!(
            "too little work to prove anything ({} reads, {} writes)",
            total.reads, total.writes
        ));
    }
    if scenario.fault.is_control() {
        // The naive reader (R9's control) also reads the churn slots: the checker must catch
        // a row it found after its delete resolved, or missed after its insert did.
        let naive_reader = scenario.fault == Fault::Naive && !scenario.near;
        return match (total.stale, total.stale_churn) {
            (0, _) => Err("the checker saw no stale read of the naive fill".to_owned()),
            (_, 0) if naive_reader => Err("the checker saw no stale read of a naive churn slot's fill".to_owned()),
            _ => Ok(()),
        };
    }
    if total.stale > 0 {
        return Err(format!(
            "{} stale reads, first: {}",
            total.stale,
            total.first_stale.as_deref().unwrap_or("?")
        ));
    }
    if total.caller_errors > 0 {
        return Err(format!(
            "{} caller errors, first: {}",
            total.caller_errors,
            total.first_error.as_deref().unwrap_or("?")
        ));
    }
    if scenario.near {
        let least = min_near_share(scenario.fault);
        return match near_share(total) {
            share if share < least => Err(format!("near caches served {share:.2} of lookups, under {least}")),
            _ => Ok(()),
        };
    }
    match (scenario.fault, steady_p99_us) {
        (Fault::KillWriter, Some(steady)) if total.p99_read_us > WRITER_KILL_SLOWDOWN * steady => Err(format!(
            "p99 read {:.1} ms, over {WRITER_KILL_SLOWDOWN}x the steady state's {:.1} ms",
            millis(total.p99_read_us),
            millis(steady)
        )),
        _ => Ok(()),
    }
}

/// One scenario being run.
struct ScenarioRun<'a> {
    scenario: &'a Scenario,
    knobs: &'a Knobs,
    url: &'a str,
    schema: &'a RunSchema,
    namespace: String,
    acks: PathBuf,
}

impl ScenarioRun<'_> {
    fn run(&self, runtime: &tokio::runtime::Runtime) -> Outcome {
        let mut servers = Servers::start(self.scenario.deployment);
        let mut channel = self.scenario.near.then(Redis::start);
        let (people, books) = runtime.block_on(seed_rows(&self.schema.pool));
        // The faults hit the first row's person where the deployment allows a choice.
        let keys = Context::builder(self.schema.pool.clone())
            .options(Options {
                key_namespace: self.namespace.clone(),
                ..Options::default()
            })
            .build();
        servers.aim_at(&autocache::repo::primary_key::<Person>(&keys, &people[0]));
        let partitioned = matches!(self.scenario.fault, Fault::PartitionWriter | Fault::PartitionReader);
        let relay = partitioned.then(|| Relay::start(&servers.victim_addr()));
        let url_for = |cut_off: bool| servers.url(relay.as_ref().filter(|_| cut_off).map(Relay::addr).as_deref());
        AckRecord::create(&self.acks, ROWS);
        let spec = |role: Role, cache_url: String| NodeSpec {
            role,
            build: Build::V1,
            database_url: self.url.to_owned(),
            schema: self.schema.name.clone(),
            cache_url,
            key_namespace: self.namespace.clone(),
            acks: self.acks.clone(),
            people: people.clone(),
            books: books.clone(),
            near_channel: channel.as_ref().map(Redis::url),
            near_asynchronous: self.scenario.near && self.scenario.fault == Fault::Naive,
        };
        if let Fault::Rolling { naive } = self.scenario.fault {
            runtime.block_on(database::migrate_to_next_version(&self.schema.pool));
            let next = if naive { Build::V2Naive } else { Build::V2 };
            let nodes: Vec<(Build, NodeProcess)> = [(Build::V1, vec![0]), (next, (1..ROWS).collect())]
                .into_iter()
                .map(|(build, rows)| {
                    let spec = NodeSpec {
                        build,
                        ..spec(Role::Rolling { rows }, url_for(false))
                    };
                    (build, NodeProcess::start(&spec))
                })
                .collect();
            std::thread::sleep(self.knobs.duration);
            let processes = nodes.len();
            let mut total = Report::default();
            let mut stale_by_build = Vec::new();
            for (build, node) in nodes {
                let report = node.finish().unwrap_or_else(no_report);
                stale_by_build.push((build, report.stale));
                total.add(report);
            }
            return Outcome {
                processes,
                total,
                stale_by_build,
            };
        }
        let reader_role = match self.scenario.fault {
            Fault::Naive if !self.scenario.near => Role::NaiveReader,
            _ => Role::Reader,
        };
        let mut readers: Vec<NodeProcess> = (0..self.knobs.readers)
            .map(|index| {
                let cut_off = index == 0 && self.scenario.fault == Fault::PartitionReader;
                NodeProcess::start(&spec(reader_role.clone(), url_for(cut_off)))
            })
            .collect();
        let writer_url = url_for(self.scenario.fault == Fault::PartitionWriter);
        let duration = self.knobs.duration;
        let writer = |generation: u32, hold_after_ms: Option<u64>, first_row: usize| {
            NodeProcess::start(&spec(
                Role::Writer {
                    generation,
                    hold_after_ms,
                    first_row,
                },
                writer_url.clone(),
            ))
        };
        let mut writers = Vec::new();
        match self.scenario.fault {
            Fault::KillWriter => {
                let end = Instant::now() + duration;
                let third = u64::try_from(duration.as_millis() / 3).unwrap_or(u64::MAX);
                let mut doomed = writer(1, Some(third), 0);
                if let Err(reason) = doomed.wait_for(HOLDING, duration) {
                    eprintln!("the writer to kill never held its locks: {reason}");
                }
                doomed.kill();
                writers.push(doomed);
                // The replacement leaves the row whose locks the killed writer left behind alone.
                writers.push(writer(2, None, 1));
                std::thread::sleep(end.saturating_duration_since(Instant::now()));
            }
            fault => {
                writers.push(writer(1, None, 0));
                let end = Instant::now() + duration;
                match (fault, channel.as_mut()) {
                    (Fault::Channel(fault), Some(channel)) => faults::inject(channel, fault, None, duration),
                    (Fault::PauseReader, _) => {
                        std::thread::sleep(faults::QUIET_START);
                        faults::pause_repeatedly(&mut readers[0], end);
                    }
                    (Fault::Server(fault), _) => servers.inject(fault, relay.as_ref(), duration),
                    (Fault::PartitionWriter | Fault::PartitionReader, _) => {
                        servers.inject(ServerFault::Partition, relay.as_ref(), duration);
                    }
                    (Fault::Naive | Fault::KillWriter | Fault::Rolling { .. } | Fault::Channel(_), _) => {}
                }
                std::thread::sleep(end.saturating_duration_since(Instant::now()));
            }
        }
        let processes = readers.len() + writers.len();
        let mut total = Report::default();
        // Writers first: the readers' settle check needs the last write acknowledged.
        for node in writers.into_iter().chain(readers) {
            total.add(node.finish().unwrap_or_else(no_report));
        }
        Outcome {
            processes,
            total,
            stale_by_build: Vec::new(),
        }
    }
}

/// What a node that sent no report counts for: a caller error.
fn no_report() -> Report {
    Report {
        first_error: Some("a node sent no report".to_owned()),
        caller_errors: 1,
        ..Report::default()
    }
}

/// Inserts the scenario's rows (person `v0` and its book of rank 0) without a shared cache.
async fn seed_rows(pool: &sqlx::PgPool) -> (Vec<i64>, Vec<i64>) {
    let ctx = Context::embedded(pool.clone());
    let (mut people, mut books) = (Vec::new(), Vec::new());
    for row in 0..ROWS {
        let person = PersonRepo::new(&ctx)
            .insert(&NewPerson { name: "v0".to_owned() })
            .await
            .expect("seed a person");
        let book = BookRepo::new(&ctx)
            .insert(&NewBook {
                title: format!("b{row}"),
                author_id: person.id,
                rank: 0,
            })
            .await
            .expect("seed a book");
        people.push(person.id);
        books.push(book.id);
    }
    (people, books)
}
