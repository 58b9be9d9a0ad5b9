//! P6: the sample app under a read-heavy, zipf-skewed load, uncached and cached.
//!
//! Every operation is a page of the sample app, made of repository calls:
//! - 47.5 %: a person's page: `PersonRepo::get` + `PersonRepo::books`;
//! - 47.5 %: a book's page: `BookRepo::get` + its author (`BookRepo::author`) +
//!   `BookRepo::editors` + `BookRepo::volume`;
//! - 5 %: a write: `PersonRepo::update` of a person's name.
//!
//! The person or book is drawn from a zipf distribution (exponent 1) over the first
//! `universe` people and their books. Uncached, each read call costs one query (the
//! collections are read with their rows in one statement); an update costs its statements
//! (the row is read for update, then updated). The same seeded operations run on a context
//! whose backend never hits, then on the cached one after a warm-up read of every row and
//! collection they can touch.
//!
//! The checker: a person's name encodes a version; writes to a person are serialized and
//! acknowledge their version in order; a read of a person (page or book author) must
//! return at least the version acknowledged before the read started.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use autocache::Context;
use autocache_generated::{BookRepo, Person, PersonRepo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Sqlite;
use tokio::sync::Mutex;

use crate::setup::version_of;

/// A zipf distribution over `0..n` by inverse CDF.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, exponent: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 1..=n {
            total += 1.0 / (k as f64).powf(exponent);
            cdf.push(total);
        }
        for value in &mut cdf {
            *value /= total;
        }
        Zipf { cdf }
    }

    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&p| p < u).min(self.cdf.len() - 1)
    }
}

/// Shape of one run.
#[derive(Clone, Copy)]
pub struct Shape {
    pub universe: i64,
    pub workers: usize,
    pub ops_per_worker: usize,
}

/// What one run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    pub ops: u64,
    pub reads: u64,
    pub writes: u64,
    pub db_queries: u64,
    pub stale: u64,
    pub errors: u64,
    /// Every counter of the context over the run.
    pub stats: autocache::StatsSnapshot,
}

/// State shared by the runs: the checker's acknowledged versions, per-row write locks and
/// the version counter (never reset, so versions only grow).
pub struct Checker {
    acked: Vec<AtomicU64>,
    row_locks: Vec<Mutex<()>>,
    next_version: AtomicU64,
}

impl Checker {
    pub fn new(universe: i64) -> Arc<Checker> {
        Arc::new(Checker {
            acked: (0..=universe).map(|_| AtomicU64::new(0)).collect(),
            row_locks: (0..=universe).map(|_| Mutex::new(())).collect(),
            next_version: AtomicU64::new(1),
        })
    }

    fn reset_acks(&self) {
        for acked in &self.acked {
            acked.store(0, Ordering::SeqCst);
        }
    }
}

/// The books of people `1..=universe` (ids are dense, in person order).
fn books_in(universe: i64) -> i64 {
    (1..=universe)
        .map(|p| {
            if p == 1 {
                crate::setup::AUTHOR_BOOKS as i64
            } else {
                p % 4
            }
        })
        .sum()
}

/// Reads every row and collection the workload can touch, so the measured run starts warm.
/// Each collection is read twice: a miss returns the members from its own query, the next
/// read fills the members' instance keys.
pub async fn warm(ctx: &Context<Sqlite>, universe: i64) {
    let people = PersonRepo::new(ctx);
    let books = BookRepo::new(ctx);
    let ids: Vec<i64> = (1..=universe).collect();
    for chunk in ids.chunks(100) {
        people.get_many(chunk).await.expect("warm people");
    }
    for &p in &ids {
        for _ in 0..2 {
            people.books(p).await.expect("warm books of a person");
        }
    }
    let book_ids: Vec<i64> = (1..=books_in(universe)).collect();
    for chunk in book_ids.chunks(100) {
        books.get_many(chunk).await.expect("warm books");
    }
    for &b in &book_ids {
        for _ in 0..2 {
            books.editors(b).await.expect("warm editors");
            books.volume(b).await.expect("warm volume");
        }
    }
}

/// Runs the operations of `shape` (seeded: every run draws the same operations), worker `w`
/// on `contexts[w % contexts.len()]`.
pub async fn run(contexts: &[Context<Sqlite>], shape: Shape, checker: &Arc<Checker>) -> Outcome {
    checker.reset_acks();
    let before: Vec<autocache::StatsSnapshot> = contexts.iter().map(Context::snapshot).collect();
    let person_zipf = Arc::new(Zipf::new(shape.universe as usize, 1.0));
    let book_count = books_in(shape.universe);
    let book_zipf = Arc::new(Zipf::new(book_count as usize, 1.0));
    let mut tasks = Vec::new();
    for worker in 0..shape.workers {
        let ctx = contexts[worker % contexts.len()].clone();
        let (checker, person_zipf, book_zipf) = (checker.clone(), person_zipf.clone(), book_zipf.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(0x5eed_0000 + worker as u64);
            let people = PersonRepo::new(&ctx);
            let books = BookRepo::new(&ctx);
            let mut outcome = Outcome::default();
            // A person's read is stale if older than what was acknowledged before it began.
            let check = |outcome: &mut Outcome, person: &Person, floor: u64| {
                if version_of(&person.name) < floor {
                    outcome.stale += 1;
                }
            };
            for _ in 0..shape.ops_per_worker {
                outcome.ops += 1;
                let roll: f64 = rng.random();
                if roll < 0.05 {
                    let p = person_zipf.sample(&mut rng) as i64 + 1;
                    let _guard = checker.row_locks[p as usize].lock().await;
                    let version = checker.next_version.fetch_add(1, Ordering::Relaxed);
                    let row = Person {
                        id: p,
                        name: format!("{p}:{version}"),
                    };
                    match people.update(&row).await {
                        Ok(Some(_)) => {
                            checker.acked[p as usize].store(version, Ordering::SeqCst);
                            outcome.writes += 1;
                        }
                        Ok(None) | Err(_) => outcome.errors += 1,
                    }
                } else if roll < 0.525 {
                    outcome.reads += 1;
                    let p = person_zipf.sample(&mut rng) as i64 + 1;
                    let floor = checker.acked[p as usize].load(Ordering::SeqCst);
                    match people.get(p).await {
                        Ok(Some(person)) => check(&mut outcome, &person, floor),
                        Ok(None) | Err(_) => outcome.errors += 1,
                    }
                    if people.books(p).await.is_err() {
                        outcome.errors += 1;
                    }
                } else {
                    outcome.reads += 1;
                    let b = book_zipf.sample(&mut rng) as i64 + 1;
                    let Ok(Some(book)) = books.get(b).await else {
                        outcome.errors += 1;
                        continue;
                    };
                    let floor = checker.acked[book.author_id as usize].load(Ordering::SeqCst);
                    match books.author(&book).await {
                        Ok(Some(person)) => check(&mut outcome, &person, floor),
                        Ok(None) | Err(_) => outcome.errors += 1,
                    }
                    if books.editors(b).await.is_err() {
                        outcome.errors += 1;
                    }
                    if books.volume(b).await.is_err() {
                        outcome.errors += 1;
                    }
                }
            }
            outcome
        }));
    }
    let mut total = Outcome::default();
    for task in tasks {
        let outcome = task.await.expect("workload task");
        total.ops += outcome.ops;
        total.reads += outcome.reads;
        total.writes += outcome.writes;
        total.stale += outcome.stale;
        total.errors += outcome.errors;
    }
    total.stats = contexts
        .iter()
        .zip(before)
        .map(|(ctx, before)| ctx.snapshot() - before)
        .fold(autocache::StatsSnapshot::default(), |sum, each| sum + each);
    total.db_queries = total.stats.db_queries;
    total
}
