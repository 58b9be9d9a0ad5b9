//! A concurrent read/write workload on a few hot rows, with a checker that flags every read
//! older than the last write acknowledged before the read began; on every database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use autocache::{Context, Dialect};
use rand::Rng;
use tokio::sync::Mutex;

/// What a run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Reads completed.
    pub reads: u64,
    /// Writes acknowledged.
    pub writes: u64,
    /// Reads that returned a version older than one acknowledged before they started.
    pub stale: u64,
    /// Repository calls that returned an error to the caller.
    pub caller_errors: u64,
    /// The first such error, to explain a failure.
    pub first_error: Option<String>,
    /// The first stale read, to explain a failure.
    pub first_stale: Option<String>,
}

impl Outcome {
    /// Counts an error returned to a caller.
    pub fn error(&mut self, error: &autocache::Error) {
        self.caller_errors += 1;
        self.first_error.get_or_insert_with(|| error.to_string());
    }

    /// Counts a stale read, described by `what`.
    pub fn stale(&mut self, what: impl FnOnce() -> String) {
        self.stale += 1;
        self.first_stale.get_or_insert_with(what);
    }
}

/// The shape of a run.
pub struct Workload {
    pub rows: usize,
    pub writers: usize,
    pub readers: usize,
    pub duration: Duration,
    /// Readers also evict hot keys now and then, so that fills race with writes.
    pub evict_every: u32,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            rows: 3,
            writers: 4,
            readers: 16,
            duration: Duration::from_secs(2),
            evict_every: 4,
        }
    }
}

/// A row's name encodes its version: `<row>:<version>`.
fn version_of(name: &str) -> u64 {
    name.rsplit(':').next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The workload on the repositories generated for one database (see [`Workload::run`]).
pub trait RunOn<DB: Dialect> {
    fn run_on(&self, ctx: &Context<DB>, chaos: impl Future<Output = ()>) -> impl Future<Output = Outcome>;
}

impl Workload {
    /// Runs the workload on `ctx`; `chaos` runs alongside (e.g. killing a server).
    pub async fn run<DB: Dialect>(&self, ctx: &Context<DB>, chaos: impl Future<Output = ()>) -> Outcome
    where
        Self: RunOn<DB>,
    {
        self.run_on(ctx, chaos).await
    }
}

/// Implements [`RunOn`] for database `$db` (see [`crate::databases`]).
macro_rules! workload_on {
    ($db:ident) => {
        impl RunOn<crate::databases::$db::Db> for Workload {
            async fn run_on(
                &self,
                ctx: &Context<crate::databases::$db::Db>,
                chaos: impl Future<Output = ()>,
            ) -> Outcome {
                use crate::databases::$db::sample::{NewPerson, Person, PersonRepo};

                let people = PersonRepo::new(ctx);
                let mut ids = Vec::new();
                for row in 0..self.rows {
                    ids.push(
                        people
                            .insert(&NewPerson {
                                name: format!("{row}:0"),
                            })
                            .await
                            .expect("seed row")
                            .id,
                    );
                }
                let ids = Arc::new(ids);
                // Per row: the last acknowledged version, and a lock so that one write per row is
                // in flight at a time (versions then commit and acknowledge in the same order).
                let acked: Arc<Vec<AtomicU64>> = Arc::new((0..self.rows).map(|_| AtomicU64::new(0)).collect());
                let row_locks: Arc<Vec<Mutex<()>>> = Arc::new((0..self.rows).map(|_| Mutex::new(())).collect());
                let next_version = Arc::new(AtomicU64::new(1));
                let stop = Arc::new(AtomicBool::new(false));
                let outcome = Arc::new(std::sync::Mutex::new(Outcome::default()));

                let mut tasks = Vec::new();
                for _ in 0..self.writers {
                    let (ctx, ids, acked, row_locks, next_version, stop, outcome) = (
                        ctx.clone(),
                        ids.clone(),
                        acked.clone(),
                        row_locks.clone(),
                        next_version.clone(),
                        stop.clone(),
                        outcome.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        let people = PersonRepo::new(&ctx);
                        while !stop.load(Ordering::Relaxed) {
                            let row = rand::rng().random_range(0..ids.len());
                            let _guard = row_locks[row].lock().await;
                            let version = next_version.fetch_add(1, Ordering::Relaxed);
                            let person = Person {
                                id: ids[row],
                                name: format!("{row}:{version}"),
                            };
                            match people.update(&person).await {
                                Ok(_) => {
                                    acked[row].store(version, Ordering::SeqCst);
                                    outcome.lock().unwrap().writes += 1;
                                }
                                Err(error) => outcome.lock().unwrap().error(&error),
                            }
                            drop(_guard);
                            let pause = Duration::from_millis(rand::rng().random_range(0..3));
                            tokio::time::sleep(pause).await;
                        }
                    }));
                }
                for _ in 0..self.readers {
                    let (ctx, ids, acked, stop, outcome) = (
                        ctx.clone(),
                        ids.clone(),
                        acked.clone(),
                        stop.clone(),
                        outcome.clone(),
                    );
                    let evict_every = self.evict_every;
                    tasks.push(tokio::spawn(async move {
                        let people = PersonRepo::new(&ctx);
                        let mut n = 0u32;
                        while !stop.load(Ordering::Relaxed) {
                            n += 1;
                            let row = rand::rng().random_range(0..ids.len());
                            if evict_every > 0 && n.is_multiple_of(evict_every) {
                                let _ = people.evict(ids[row]).await;
                            }
                            let floor = acked[row].load(Ordering::SeqCst);
                            match people.get(ids[row]).await {
                                Ok(Some(person)) => {
                                    let mut out = outcome.lock().unwrap();
                                    out.reads += 1;
                                    if version_of(&person.name) < floor {
                                        out.stale(|| {
                                            format!(
                                                "row {row}: read {:?} after version {floor} was acknowledged",
                                                person.name
                                            )
                                        });
                                    }
                                }
                                Ok(None) => outcome.lock().unwrap().stale(|| {
                                    format!("row {row}: read \"does not exist\" (acknowledged: version {floor})")
                                }),
                                Err(error) => outcome.lock().unwrap().error(&error),
                            }
                        }
                    }));
                }
                let duration = self.duration;
                let timer = async {
                    tokio::time::sleep(duration).await;
                };
                tokio::join!(timer, chaos);
                stop.store(true, Ordering::Relaxed);
                for task in tasks {
                    task.await.expect("workload task panicked");
                }
                // Settle: after every write has been acknowledged, a read must see the last one.
                for (row, id) in ids.iter().enumerate() {
                    let person = people.get(*id).await.expect("final read").expect("row exists");
                    let last = acked[row].load(Ordering::SeqCst);
                    if version_of(&person.name) < last {
                        let name = person.name.clone();
                        outcome
                            .lock()
                            .unwrap()
                            .stale(|| format!("row {row}: settled on {name:?}, version {last} acknowledged"));
                    }
                }
                Arc::try_unwrap(outcome)
                    .expect("tasks finished")
                    .into_inner()
                    .unwrap()
            }
        }
    };
}

workload_on!(sqlite);
workload_on!(postgres);
workload_on!(mysql);
