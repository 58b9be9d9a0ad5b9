//! The stale-read checker shared by every node of a scenario: the ack record (one file of
//! `u64` slots, two per row: the `Person` and its `Book`, then two per churn slot), each
//! node's tally, and the report a node sends the orchestrator.
//!
//! The writer stores version `N` in a row's slot after the write of `N` resolved; a reader
//! reads the slot *before* it starts a read, and the read is stale if it returns an older
//! version. The slots are read and written with `pread`/`pwrite` on one file, which every
//! process sees through the same page cache; one writer at a time stores into them.
//!
//! A churn slot follows rows the writer inserts and deletes in turn ([`Churn`]): the state
//! whose write last resolved, and the state whose write last started.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A replacement writer's versions start this far above its predecessor's, so that a
/// version the killed writer committed but never acknowledged is never mistaken for newer.
const GENERATION_STRIDE: u64 = 10_000_000;

/// The version a writer of `generation` writes as its `count`th write: above every version
/// of earlier generations, and (like a book's rank) within `i32`.
pub fn version(generation: u32, count: u64) -> u64 {
    u64::from(generation) * GENERATION_STRIDE + count % GENERATION_STRIDE
}

/// A person's name carries its version: `v<N>`.
pub fn person_name(version: u64) -> String {
    format!("v{version}")
}

/// The version in a person's name (0 if it has none).
pub fn version_of_name(name: &str) -> u64 {
    name.strip_prefix('v').and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// What a slot of the ack record is about.
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// The `Person` row with this index (its name carries the version).
    Person(usize),
    /// The book of the `Person` row with this index (its rank carries the version).
    Book(usize),
}

impl Slot {
    fn offset(self) -> u64 {
        let index = match self {
            Slot::Person(row) => 2 * row,
            Slot::Book(row) => 2 * row + 1,
        };
        8 * index as u64
    }
}

/// Churn slots: each follows one `Person` row at a time, which the writer inserts, then
/// deletes, then replaces by a new one (its inserts lock their reserved key first; its
/// deletes run at a snapshot).
pub const CHURN_SLOTS: usize = 4;

/// The state of a churn slot, as one `u64`: `2 × id` once row `id` is inserted, `2 × id + 1`
/// once it is deleted; 0 before the first insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Churn(pub u64);

impl Churn {
    /// Row `id`, inserted.
    pub fn inserted(id: i64) -> Churn {
        Churn(2 * u64::try_from(id).expect("keys are positive"))
    }

    /// The row this state is about, and whether it is deleted; `None` before the first insert.
    pub fn row(self) -> Option<(i64, bool)> {
        let id = i64::try_from(self.0 / 2).ok().filter(|id| *id > 0)?;
        Some((id, self.0 % 2 == 1))
    }

    /// The state after this one's row is deleted.
    pub fn deleted(self) -> Churn {
        Churn(self.0 | 1)
    }
}

/// The acknowledged versions, in a file every node of a scenario opens.
pub struct AckRecord(File);

impl AckRecord {
    /// Creates the record for `rows` rows and the churn slots at `path`, every version 0.
    pub fn create(path: &Path, rows: usize) -> AckRecord {
        let file = File::create_new(path).unwrap_or_else(|error| panic!("create {}: {error}", path.display()));
        file.write_all_at(&vec![0; 16 * rows], 0)
            .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        let record = AckRecord(file);
        for slot in 0..CHURN_SLOTS {
            record.write_churn(rows, slot, false, Churn(0));
            record.write_churn(rows, slot, true, Churn(0));
        }
        record
    }

    /// Where churn slot `slot`'s resolved (or `started`) state is, after `rows` rows.
    fn churn_offset(rows: usize, slot: usize, started: bool) -> u64 {
        8 * (2 * rows + 2 * slot + usize::from(started)) as u64
    }

    fn write_churn(&self, rows: usize, slot: usize, started: bool, state: Churn) {
        self.0
            .write_all_at(&state.0.to_le_bytes(), Self::churn_offset(rows, slot, started))
            .expect("write the ack record");
    }

    fn read_churn(&self, rows: usize, slot: usize, started: bool) -> Churn {
        let mut bytes = [0; 8];
        self.0
            .read_exact_at(&mut bytes, Self::churn_offset(rows, slot, started))
            .expect("read the ack record");
        Churn(u64::from_le_bytes(bytes))
    }

    /// Records that the write leading churn slot `slot` (after `rows` rows) to `state` starts.
    pub fn start_churn(&self, rows: usize, slot: usize, state: Churn) {
        self.write_churn(rows, slot, true, state);
    }

    /// Records that the write leading churn slot `slot` to `state` resolved.
    pub fn acknowledge_churn(&self, rows: usize, slot: usize, state: Churn) {
        self.write_churn(rows, slot, false, state);
    }

    /// The state of churn slot `slot` whose write last resolved: the oldest a read starting
    /// now may see.
    pub fn churn_floor(&self, rows: usize, slot: usize) -> Churn {
        self.read_churn(rows, slot, false)
    }

    /// The state of churn slot `slot` whose write last started: the newest a read ending
    /// now may see.
    pub fn churn_started(&self, rows: usize, slot: usize) -> Churn {
        self.read_churn(rows, slot, true)
    }

    /// Opens the record the orchestrator created.
    pub fn open(path: &Path) -> AckRecord {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
        AckRecord(file)
    }

    /// Records that the write of `version` to `slot` resolved.
    pub fn acknowledge(&self, slot: Slot, version: u64) {
        self.0
            .write_all_at(&version.to_le_bytes(), slot.offset())
            .expect("write the ack record");
    }

    /// The last version acknowledged for `slot`: the oldest a read starting now may return.
    pub fn floor(&self, slot: Slot) -> u64 {
        let mut bytes = [0; 8];
        self.0
            .read_exact_at(&mut bytes, slot.offset())
            .expect("read the ack record");
        u64::from_le_bytes(bytes)
    }
}

/// What one node counted (its tasks share it).
#[derive(Debug, Default)]
pub struct Tally {
    writes: u64,
    stale: u64,
    stale_churn: u64,
    caller_errors: u64,
    read_latencies_us: Vec<u64>,
    max_write_us: u64,
    first_stale: Option<String>,
    first_error: Option<String>,
}

impl Tally {
    /// Counts a read that took `took`.
    pub fn read(&mut self, took: Duration) {
        self.read_latencies_us.push(micros(took));
    }

    /// Counts an acknowledged write that took `took`.
    pub fn write(&mut self, took: Duration) {
        self.writes += 1;
        self.max_write_us = self.max_write_us.max(micros(took));
    }

    /// Checks that `slot` was read at `version` or newer than `floor`; `None`: the row
    /// was missing from the answer, which is stale too (no row is ever deleted).
    pub fn check(&mut self, slot: Slot, version: Option<u64>, floor: u64) {
        if version.is_none_or(|version| version < floor) {
            self.stale += 1;
            self.first_stale
                .get_or_insert_with(|| format!("{slot:?} read at {version:?} after {floor} was acknowledged"));
        }
    }

    /// Checks a read of churn slot `slot`'s row: `floor` was resolved before the read began,
    /// `started` had started by the time it ended, and the row was `found` or not. A row
    /// whose insert resolved must be found unless its delete had started; a row whose delete
    /// resolved must not be.
    pub fn check_churn(&mut self, slot: usize, floor: Churn, started: Churn, found: bool) {
        let Some((id, deleted)) = floor.row() else { return };
        let stale = match deleted {
            true => found,
            false => !found && started == floor,
        };
        if stale {
            self.stale += 1;
            self.stale_churn += 1;
            self.first_stale.get_or_insert_with(|| {
                format!("churn slot {slot}: row {id} found={found} after {floor:?} was acknowledged")
            });
        }
    }

    /// Counts an error returned to the caller.
    pub fn error(&mut self, error: &dyn std::fmt::Display) {
        self.caller_errors += 1;
        self.first_error.get_or_insert_with(|| error.to_string());
    }

    /// The report of these counts.
    pub fn report(mut self) -> Report {
        self.read_latencies_us.sort_unstable();
        let reads = self.read_latencies_us.len();
        let p99 = match reads {
            0 => 0,
            n => self.read_latencies_us[(n * 99).div_ceil(100) - 1],
        };
        Report {
            reads: reads as u64,
            writes: self.writes,
            stale: self.stale,
            stale_churn: self.stale_churn,
            caller_errors: self.caller_errors,
            p99_read_us: p99,
            max_write_us: self.max_write_us,
            first_stale: self.first_stale,
            first_error: self.first_error,
            near_hits: 0,
            lookups: 0,
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// What a node reports (one stdout line, [`Report::LINE_PREFIX`] and JSON); also a
/// scenario's total over its nodes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// Reads completed (a `get_many` counts once).
    pub reads: u64,
    /// Writes acknowledged.
    pub writes: u64,
    /// Rows read older than acknowledged before the read began (or missing).
    pub stale: u64,
    /// The churn slots' share of `stale`: a row found after its delete resolved, or missed
    /// after its insert resolved.
    #[serde(default)]
    pub stale_churn: u64,
    /// Errors returned by the repositories to the caller.
    pub caller_errors: u64,
    /// The 99th percentile read latency (a scenario's: the worst node's).
    pub p99_read_us: u64,
    /// The slowest acknowledged write.
    pub max_write_us: u64,
    /// The first stale read, to explain a failure.
    pub first_stale: Option<String>,
    /// The first caller error, to explain a failure.
    pub first_error: Option<String>,
    /// Keys a checked reader's context served from its near cache (R13).
    #[serde(default)]
    pub near_hits: u64,
    /// Keys a checked reader's context looked up: near hits, remote hits and misses.
    #[serde(default)]
    pub lookups: u64,
}

impl Report {
    /// Starts a node's report line on stdout.
    pub const LINE_PREFIX: &'static str = "report ";

    /// The stdout line carrying this report.
    pub fn to_line(&self) -> String {
        format!(
            "{}{}",
            Self::LINE_PREFIX,
            serde_json::to_string(self).expect("a report serializes")
        )
    }

    /// The report in a node's stdout line, if the line is one.
    pub fn from_line(line: &str) -> Option<Report> {
        serde_json::from_str(line.strip_prefix(Self::LINE_PREFIX)?).ok()
    }

    /// Adds a node's report to this scenario total.
    pub fn add(&mut self, node: Report) {
        self.reads += node.reads;
        self.writes += node.writes;
        self.stale += node.stale;
        self.stale_churn += node.stale_churn;
        self.caller_errors += node.caller_errors;
        self.p99_read_us = self.p99_read_us.max(node.p99_read_us);
        self.max_write_us = self.max_write_us.max(node.max_write_us);
        self.first_stale = self.first_stale.take().or(node.first_stale);
        self.first_error = self.first_error.take().or(node.first_error);
        self.near_hits += node.near_hits;
        self.lookups += node.lookups;
    }
}
