//! A node process: a writer, a checked reader or the naive control reader, each with its
//! own `autocache::Context` (its own database pool and cache connections).
//!
//! A node says `ready` on stdout once connected, runs until its stdin closes (the
//! orchestrator's signal to stop), then prints its [`Report`] line. Readers first read
//! every row once more (the settle check: after the last write resolved, every row must
//! read as its last acknowledged version). A holding writer prints its report, then
//! `holding`, and waits to be killed.

use std::io::Read as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use autocache::codec::{self, Cached};
use autocache::{Context, Lookup, Options};
use rand::Rng;
use sqlx::Postgres;

use crate::checker::{self, AckRecord, CHURN_SLOTS, Churn, Report, Slot, Tally};
use crate::database;
use crate::sample::Person;
use crate::spec::{NodeSpec, Role};

/// A node's stdout line once it is connected.
pub const READY: &str = "ready";
/// A holding writer's stdout line once its transaction holds its locks.
pub const HOLDING: &str = "holding";

/// Concurrent reading tasks in a reader node.
const READ_TASKS: usize = 2;

/// A reader evicts the row it is about to read every this many reads, so that its fills
/// race with the writer's.
const EVICT_EVERY: u64 = 4;

/// Widens the window between a reader's database read and its fill (as the suite's R1).
const FILL_DELAY: Duration = Duration::from_millis(3);

/// Near cache entries per model in an R13 scenario.
const NEAR_ENTRIES: u64 = 1000;

/// The naive reader's longest pause before it stores a churn slot's row: a churn slot's row
/// changes every few tens of milliseconds, a person's every few.
const NAIVE_CHURN_FILL_DELAY: Duration = Duration::from_millis(20);

/// Pause between a writer's writes, so that the readers get their share of a small machine.
const WRITE_PAUSE: Duration = Duration::from_millis(1);

/// Every this many writes, the writer inserts or deletes the row of a churn slot instead.
const CHURN_EVERY: u64 = 4;

/// Runs the node described by `spec` to the end.
pub fn run(spec: NodeSpec) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let node = Node::connect(spec).await;
        let stop = stop_when_stdin_closes();
        say(READY);
        let report = match node.spec.role.clone() {
            Role::Writer {
                generation,
                hold_after_ms,
                first_row,
            } => {
                let rows: Vec<usize> = (first_row..node.spec.people.len()).collect();
                node.write(generation, hold_after_ms, &rows, true, &stop).await
            }
            Role::Reader => Arc::new(node).read(&stop).await,
            Role::NaiveReader => node.read_naively(&stop).await,
            Role::Rolling { rows } => Arc::new(node).roll(rows, stop).await,
        };
        say(&report.to_line());
    });
}

/// Prints one line to the orchestrator.
fn say(line: &str) {
    println!("{line}");
}

/// A flag raised when stdin reaches its end (the orchestrator closed it, or died).
fn stop_when_stdin_closes() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let raised = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        raised.store(true, Ordering::SeqCst);
    });
    stop
}

/// The reads a checked reader makes, in turn.
#[derive(Clone, Copy)]
enum Read {
    /// `PersonRepo::get` of one row.
    Get,
    /// `PersonRepo::get_many` of every row.
    GetMany,
    /// `PersonRepo::books` of one row (a cached collection holding the book's row).
    Books,
    /// `PersonRepo::get` of a churn slot's row, after a `get` of the key after it (the key
    /// its next insert will likely take, so an absence is cached there).
    Churn,
}

impl Read {
    const ALL: [Read; 4] = [Read::Get, Read::GetMany, Read::Books, Read::Churn];
}

/// A connected node.
struct Node {
    spec: NodeSpec,
    ctx: Context<Postgres>,
    acks: AckRecord,
}

impl Node {
    async fn connect(spec: NodeSpec) -> Node {
        let pool = database::node_pool(&spec.database_url, &spec.schema).await;
        let options = Options {
            key_namespace: spec.key_namespace.clone(),
            fill_delay: FILL_DELAY,
            near_entries: if spec.near_channel.is_some() { NEAR_ENTRIES } else { 0 },
            near_asynchronous: spec.near_asynchronous,
            ..Options::default()
        };
        let mut builder = Context::builder(pool).options(options);
        if let Some(url) = &spec.near_channel {
            builder = builder
                .near_channel(url)
                .unwrap_or_else(|error| panic!("near channel {url}: {error}"));
        }
        for name in ["default", "other"] {
            builder = builder
                .backend_url(name, &spec.cache_url)
                .await
                .unwrap_or_else(|error| panic!("connect {} as {name}: {error}", spec.cache_url));
        }
        let acks = AckRecord::open(&spec.acks);
        Node {
            ctx: builder.build(),
            acks,
            spec,
        }
    }

    /// Writes version `version` of row `row`'s person, or of its book, with this node's build.
    async fn write_slot(&self, slot: Slot, version: u64) -> autocache::Result<()> {
        let build = self.spec.build;
        match slot {
            Slot::Person(row) => {
                build
                    .update_person(&self.ctx, self.spec.people[row], checker::person_name(version))
                    .await
            }
            Slot::Book(row) => {
                let rank = i32::try_from(version).expect("versions fit a book's rank");
                let (id, author) = (self.spec.books[row], self.spec.people[row]);
                build.update_book(&self.ctx, id, author, format!("b{row}"), rank).await
            }
        }
    }

    /// The writer: each row's person, then its book, in turn over `rows`, one write at a time;
    /// with `churn`, every [`CHURN_EVERY`]th write is a churn slot's insert or delete.
    async fn write(
        &self,
        generation: u32,
        hold_after_ms: Option<u64>,
        rows: &[usize],
        churn: bool,
        stop: &AtomicBool,
    ) -> Report {
        let hold_at = hold_after_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
        let mut tally = Tally::default();
        let mut count = 0;
        while !stop.load(Ordering::SeqCst) {
            if hold_at.is_some_and(|at| Instant::now() >= at) {
                return self.hold(checker::version(generation, count + 1), tally, stop).await;
            }
            count += 1;
            if churn && count % CHURN_EVERY == 0 {
                let started = Instant::now();
                match self.churn((count / CHURN_EVERY) as usize % CHURN_SLOTS).await {
                    Ok(()) => tally.write(started.elapsed()),
                    Err(error) => tally.error(&error),
                }
                tokio::time::sleep(WRITE_PAUSE).await;
                continue;
            }
            let version = checker::version(generation, count);
            let row = rows[(count as usize - 1) / 2 % rows.len()];
            let started = Instant::now();
            let slot = if count % 2 == 0 {
                Slot::Person(row)
            } else {
                Slot::Book(row)
            };
            match self.write_slot(slot, version).await {
                Ok(()) => {
                    tally.write(started.elapsed());
                    self.acks.acknowledge(slot, version);
                }
                Err(error) => tally.error(&error),
            }
            tokio::time::sleep(WRITE_PAUSE).await;
        }
        tally.report()
    }

    /// The next write of churn slot `slot`: deletes its row, or inserts a new one once it is
    /// deleted (or before the first), recording the write's start and resolution.
    async fn churn(&self, slot: usize) -> autocache::Result<()> {
        let (build, rows) = (self.spec.build, self.spec.people.len());
        let state = self.acks.churn_floor(rows, slot);
        match state.row() {
            Some((id, false)) => {
                self.acks.start_churn(rows, slot, state.deleted());
                build.delete_person(&self.ctx, id).await?;
                self.acks.acknowledge_churn(rows, slot, state.deleted());
            }
            _ => {
                let id = build.insert_person(&self.ctx, format!("churn {slot}")).await?;
                self.acks.start_churn(rows, slot, Churn::inserted(id));
                self.acks.acknowledge_churn(rows, slot, Churn::inserted(id));
            }
        }
        Ok(())
    }

    /// Updates the first row's person and book in a transaction that holds their locks,
    /// reports, says [`HOLDING`] and waits, never committing, until killed (or stopped).
    async fn hold(&self, version: u64, mut tally: Tally, stop: &AtomicBool) -> Report {
        let tx = match self.ctx.begin().await {
            Ok(tx) => tx,
            Err(error) => {
                tally.error(&error);
                return tally.report();
            }
        };
        let person = Person {
            id: self.spec.people[0],
            name: checker::person_name(version),
        };
        let book = crate::sample::Book {
            id: self.spec.books[0],
            title: "b0".to_owned(),
            author_id: self.spec.people[0],
            rank: i32::try_from(version).expect("versions fit a book's rank"),
        };
        let (people, books) = (crate::sample::PersonRepo::new(&tx), crate::sample::BookRepo::new(&tx));
        for written in [
            people.update(&person).await.map(drop),
            books.update(&book).await.map(drop),
        ] {
            if let Err(error) = written {
                tally.error(&error);
            }
        }
        let report = tally.report();
        say(&report.to_line());
        say(HOLDING);
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = tx.rollback().await;
        report
    }

    /// A process of a rolling deploy: writes `rows` while it reads every row, until stopped.
    async fn roll(self: Arc<Self>, rows: Vec<usize>, stop: Arc<AtomicBool>) -> Report {
        let writer = {
            let (node, stop) = (self.clone(), stop.clone());
            tokio::spawn(async move { node.write(1, None, &rows, false, &stop).await })
        };
        let mut report = self.read(&stop).await;
        report.add(writer.await.expect("the writing task panicked"));
        report
    }

    /// The checked reader: [`READ_TASKS`] tasks of `get`, `get_many` and `books` reads.
    async fn read(self: Arc<Self>, stop: &Arc<AtomicBool>) -> Report {
        let node = self;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let tasks: Vec<_> = (0..READ_TASKS)
            .map(|_| {
                let (node, tally, stop) = (node.clone(), tally.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut count = 0;
                    while !stop.load(Ordering::SeqCst) {
                        count += 1;
                        let row = rand::rng().random_range(0..node.spec.people.len());
                        if count % EVICT_EVERY == 0 {
                            // An operator call, not a read: its errors during faults are not counted.
                            let _ = node.spec.build.evict_person(&node.ctx, node.spec.people[row]).await;
                        }
                        let read = Read::ALL[count as usize % Read::ALL.len()];
                        node.read_once(read, row, &tally).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a reading task panicked");
        }
        // Settle: the writer has stopped, so every row must read as its last acknowledged version.
        for row in 0..node.spec.people.len() {
            for read in Read::ALL {
                node.read_once(read, row, &tally).await;
            }
        }
        for slot in 0..CHURN_SLOTS {
            node.read_once(Read::Churn, slot, &tally).await;
        }
        let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(PoisonError::into_inner));
        let stats = node.ctx.snapshot();
        Report {
            near_hits: stats.near_hits,
            lookups: stats.near_hits + stats.hits + stats.misses,
            ..tally.report()
        }
    }

    /// One `read` of `row` (`get_many`: of every row; a churn read: of churn slot `row`,
    /// modulo their number), checked against the floors read before it started.
    async fn read_once(&self, read: Read, row: usize, tally: &Mutex<Tally>) {
        let (build, ctx) = (self.spec.build, &self.ctx);
        let rows = self.spec.people.len();
        let started = Instant::now();
        let checked: Vec<(Slot, u64, Option<u64>)> = match read {
            Read::Churn => return self.read_churn(row % CHURN_SLOTS, tally).await,
            Read::Get => {
                let floor = self.acks.floor(Slot::Person(row));
                match build.person_name(ctx, self.spec.people[row]).await {
                    Ok(name) => vec![(
                        Slot::Person(row),
                        floor,
                        name.map(|name| checker::version_of_name(&name)),
                    )],
                    Err(error) => return lock(tally).error(&error),
                }
            }
            Read::GetMany => {
                let floors: Vec<u64> = (0..rows).map(|row| self.acks.floor(Slot::Person(row))).collect();
                match build.person_names(ctx, &self.spec.people).await {
                    Ok(found) => (0..rows)
                        .map(|row| {
                            let version = found
                                .get(row)
                                .cloned()
                                .flatten()
                                .map(|name| checker::version_of_name(&name));
                            (Slot::Person(row), floors[row], version)
                        })
                        .collect(),
                    Err(error) => return lock(tally).error(&error),
                }
            }
            Read::Books => {
                let floor = self.acks.floor(Slot::Book(row));
                match build.book_ranks(ctx, self.spec.people[row]).await {
                    Ok(books) => {
                        let book = books.iter().find(|(id, _)| *id == self.spec.books[row]);
                        vec![(
                            Slot::Book(row),
                            floor,
                            book.map(|(_, rank)| u64::try_from(*rank).unwrap_or(0)),
                        )]
                    }
                    Err(error) => return lock(tally).error(&error),
                }
            }
        };
        let mut tally = lock(tally);
        tally.read(started.elapsed());
        for (slot, floor, version) in checked {
            tally.check(slot, version, floor);
        }
    }

    /// A churn read of churn slot `slot`: the key after its row's first (the next insert's,
    /// most likely), then its row, checked against the slot's states before and after.
    async fn read_churn(&self, slot: usize, tally: &Mutex<Tally>) {
        let (build, ctx, rows) = (self.spec.build, &self.ctx, self.spec.people.len());
        let started = Instant::now();
        let floor = self.acks.churn_floor(rows, slot);
        let Some((id, _)) = floor.row() else { return };
        let found = match build.person_name(ctx, id + 1).await {
            Ok(_) => build.person_name(ctx, id).await,
            Err(error) => Err(error),
        };
        let mut tally = lock(tally);
        match found {
            Ok(found) => {
                tally.read(started.elapsed());
                let started = self.acks.churn_started(rows, slot);
                tally.check_churn(slot, floor, started, found.is_some());
            }
            Err(error) => tally.error(&error),
        }
    }

    /// The control: `get` by hand the seed's way, a lookup and on any miss a plain SQL read
    /// stored with an unconditional set, racing the writer like the checked reader does;
    /// every other read is of a churn slot's row (checked as the checked reader's are).
    async fn read_naively(self, stop: &AtomicBool) -> Report {
        let cache = autocache::backend::connect(&self.spec.cache_url)
            .await
            .unwrap_or_else(|error| panic!("connect {}: {error}", self.spec.cache_url));
        let rows = self.spec.people.len();
        let mut tally = Tally::default();
        let mut count: u64 = 0;
        while !stop.load(Ordering::SeqCst) {
            count += 1;
            if count.is_multiple_of(2) {
                let slot = rand::rng().random_range(0..CHURN_SLOTS);
                let floor = self.acks.churn_floor(rows, slot);
                let Some((id, _)) = floor.row() else { continue };
                let started = Instant::now();
                match self.get_naively(&*cache, id, count, NAIVE_CHURN_FILL_DELAY).await {
                    Ok(found) => {
                        tally.read(started.elapsed());
                        let started = self.acks.churn_started(rows, slot);
                        tally.check_churn(slot, floor, started, found.is_some());
                    }
                    Err(error) => tally.error(&error),
                }
                continue;
            }
            let row = rand::rng().random_range(0..rows);
            let floor = self.acks.floor(Slot::Person(row));
            let started = Instant::now();
            match self
                .get_naively(&*cache, self.spec.people[row], count, FILL_DELAY)
                .await
            {
                Ok(person) => {
                    tally.read(started.elapsed());
                    let version = person.map(|person| checker::version_of_name(&person.name));
                    tally.check(Slot::Person(row), version, floor);
                }
                Err(error) => tally.error(&error),
            }
        }
        tally.report()
    }

    /// Reads row `id` (the `count`-th naive read) the seed's way: its key evicted now and
    /// then; a cached row or absence is served; anything else is read with plain SQL and,
    /// after up to `delay`, stored unconditionally.
    async fn get_naively(
        &self,
        cache: &dyn autocache::CacheBackend,
        id: i64,
        count: u64,
        delay: Duration,
    ) -> Result<Option<Person>, sqlx::Error> {
        let options = self.ctx.options();
        let key = autocache::repo::primary_key::<Person>(&self.ctx, &id);
        if count.is_multiple_of(EVICT_EVERY) {
            let _ = cache.evict(&[&key]).await;
        }
        let found = cache.lookup(&[&key], options.lease_ttl).await;
        if let Ok(Some(Lookup::Value { bytes, .. })) = found.map(|mut found| found.pop()) {
            match codec::decode::<Person>(&bytes) {
                Cached::Value(person) => return Ok(Some(person)),
                Cached::Absent => return Ok(None),
                Cached::Locked { .. } | Cached::Corrupt => {}
            }
        }
        let person: Option<Person> = sqlx::query_as("SELECT id, name FROM person WHERE id = $1")
            .bind(id)
            .fetch_optional(self.ctx.pool())
            .await?;
        tokio::time::sleep(rand::rng().random_range(Duration::ZERO..=delay)).await;
        let bytes = codec::encode(person.as_ref()).expect("a person encodes");
        let _ = cache.lock(&[&key], &bytes, Duration::from_secs(3600)).await;
        Ok(person)
    }
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}
