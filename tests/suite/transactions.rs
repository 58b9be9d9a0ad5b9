//! Transactions (`ctx.begin()`) on SQLite, PostgreSQL and MariaDB, with two memcached servers.
//!
//! Each round opens a transaction that updates a row, inserts one, deletes one and pairs
//! an editor with a book, and keeps it open while reader tasks read all of them through the
//! repositories (the readers' lease wait is short, so they read the database while the
//! transaction holds its uncommitted writes; in rollback rounds they also evict the keys, so
//! they take leases and fill). Then the round rolls back or commits:
//!
//! - during the transaction no reader sees (or caches) any uncommitted effect
//!   (`uncommitted_seen` counts every read that did);
//! - after a rollback the cache serves, and keeps, the state before the transaction, and
//!   the database holds it (`rollback_stale` counts every read, cached or from the
//!   database, that disagreed);
//! - after a commit the next reads see the new data with 0 queries.
//!
//! `R8 db=<dialect> rollback_stale=<n> uncommitted_seen=<n> …` per database; both must be 0.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use autocache::Options;

/// Rounds per database; they alternate rollback and commit.
const ROUNDS: usize = 12;
/// Reader tasks while a transaction is open.
const READERS: usize = 4;
/// How long each round keeps its transaction open under the readers.
const OPEN_FOR: Duration = Duration::from_millis(60);

/// The options of these tests: readers that find a writer's lock wait at most 4 ms, then
/// read the database (without filling), so that they do read it during the transaction.
fn options() -> Options {
    Options {
        busy_wait: Duration::from_millis(4),
        ..Options::default()
    }
}

/// What the readers and the checks saw, across the rounds.
#[derive(Debug, Default)]
struct Tally {
    /// Reads during an open transaction that showed one of its effects.
    uncommitted_seen: AtomicU64,
    /// Reads after a rollback (cached or from the database) that disagreed with the state
    /// before the transaction.
    rollback_stale: AtomicU64,
    /// Reads done by the readers while a transaction was open.
    concurrent_reads: AtomicU64,
    /// Database queries the readers ran while a transaction was open.
    db_reads: AtomicU64,
}

impl Tally {
    fn check(counter: &AtomicU64, ok: bool) {
        if !ok {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The test on the sample schema generated for database `$db` (see [`crate::databases`]).
macro_rules! transaction_scenarios {
    ($db:ident) => {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};

        use super::{OPEN_FOR, READERS, ROUNDS, Tally, options};
        use crate::databases::TestDatabase;
        use crate::databases::$db::Db;
        use crate::databases::$db::sample::{BookRepo, NewBook, NewPerson, Person, PersonRepo};
        use crate::env::{Kind, env_on_with};

        fn ids(people: &[Person]) -> Vec<i64> {
            people.iter().map(|p| p.id).collect()
        }

        /// A transaction dropped without commit or rollback gives its locks back: the row is
        /// served from the cache again at once (the old value), not after `lock_ttl`.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dropped_transaction_gives_locks_back() {
            let env = env_on_with::<Db>(Kind::MemcachedTwo, options()).await;
            let ctx = &env.ctx;
            let people = PersonRepo::new(ctx);
            let ann = people.insert(&NewPerson { name: "ann".into() }).await.unwrap();
            {
                let tx = ctx.begin().await.unwrap();
                let changed = Person {
                    name: "uncommitted".into(),
                    ..ann.clone()
                };
                PersonRepo::new(&tx).update(&changed).await.unwrap();
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                let before = ctx.snapshot();
                assert_eq!(people.get(ann.id).await.unwrap(), Some(ann.clone()));
                if (ctx.snapshot() - before).db_queries == 0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the dropped transaction's lock is still held"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn memcached_two_servers() {
            let env = env_on_with::<Db>(Kind::MemcachedTwo, options()).await;
            let ctx = &env.ctx;
            let (people, books) = (PersonRepo::new(ctx), BookRepo::new(ctx));
            let author = people
                .insert(&NewPerson {
                    name: "author".into(),
                })
                .await
                .unwrap();
            let book = books
                .insert(&NewBook {
                    title: "anthology".into(),
                    author_id: author.id,
                    rank: 1,
                })
                .await
                .unwrap();
            let tally = Arc::new(Tally::default());
            let mut committed_editors: Vec<Person> = Vec::new();

            for round in 0..ROUNDS {
                let commit = round % 2 == 1;
                // The committed state before the transaction (cached by the inserts).
                let kept = people
                    .insert(&NewPerson {
                        name: format!("kept{round}:before"),
                    })
                    .await
                    .unwrap();
                let doomed = people
                    .insert(&NewPerson {
                        name: format!("doomed{round}"),
                    })
                    .await
                    .unwrap();
                assert_eq!(
                    ids(&books.editors(book.id).await.unwrap()),
                    ids(&committed_editors)
                );

                let tx = ctx.begin().await.unwrap();
                let (tx_people, tx_books) = (PersonRepo::new(&tx), BookRepo::new(&tx));
                let changed = Person {
                    name: format!("kept{round}:uncommitted"),
                    ..kept.clone()
                };
                assert_eq!(tx_people.update(&changed).await.unwrap().as_ref(), Some(&changed));
                let added = tx_people
                    .insert(&NewPerson {
                        name: format!("added{round}"),
                    })
                    .await
                    .unwrap();
                assert!(tx_people.delete(doomed.id).await.unwrap());
                tx_books.add_editors(book.id, &[kept.id]).await.unwrap();
                assert_eq!(
                    tx_people.get(kept.id).await.unwrap(),
                    Some(changed.clone()),
                    "own writes"
                );
                assert_eq!(tx_people.get(doomed.id).await.unwrap(), None, "own delete");
                let mut editors = ids(&committed_editors);
                editors.push(kept.id);
                editors.sort_unstable();
                assert_eq!(
                    ids(&tx_books.editors(book.id).await.unwrap()),
                    editors,
                    "own pairing"
                );

                // Readers on other tasks while the transaction holds its uncommitted writes.
                let before = ctx.snapshot();
                let stop = Arc::new(AtomicBool::new(false));
                let readers: Vec<_> = (0..READERS)
                    .map(|reader| {
                        let (ctx, tally, stop) = (ctx.clone(), tally.clone(), stop.clone());
                        let (kept, doomed, editors) = (kept.clone(), doomed.clone(), ids(&committed_editors));
                        let (added, book_id) = (added.id, book.id);
                        tokio::spawn(async move {
                            let (people, books) = (PersonRepo::new(&ctx), BookRepo::new(&ctx));
                            let seen = &tally.uncommitted_seen;
                            let mut n = reader;
                            while !stop.load(Ordering::Relaxed) {
                                n += 1;
                                if !commit && n % 3 == 0 {
                                    // Take the writer's lock away: this reader then takes a
                                    // lease and fills from the database.
                                    let _ = people.evict(kept.id).await;
                                    let _ = people.evict(added).await;
                                    let _ = books.evict_editors(book_id).await;
                                }
                                Tally::check(seen, people.get(kept.id).await.unwrap().as_ref() == Some(&kept));
                                Tally::check(seen, people.get(added).await.unwrap().is_none());
                                Tally::check(
                                    seen,
                                    people.get(doomed.id).await.unwrap().as_ref() == Some(&doomed),
                                );
                                Tally::check(seen, ids(&books.editors(book_id).await.unwrap()) == editors);
                                tally.concurrent_reads.fetch_add(4, Ordering::Relaxed);
                            }
                        })
                    })
                    .collect();
                tokio::time::sleep(OPEN_FOR).await;
                stop.store(true, Ordering::Relaxed);
                for reader in readers {
                    reader.await.expect("reader panicked");
                }
                let db_reads = (ctx.snapshot() - before).db_queries;
                tally.db_reads.fetch_add(db_reads, Ordering::Relaxed);

                if commit {
                    tx.commit().await.unwrap();
                    committed_editors.push(changed.clone());
                    // The next reads see the new data, from the cache.
                    assert_eq!(env.queries(0, people.get(kept.id)).await.unwrap(), Some(changed));
                    assert_eq!(env.queries(0, people.get(added.id)).await.unwrap(), Some(added));
                    assert_eq!(env.queries(0, people.get(doomed.id)).await.unwrap(), None);
                    let editors = env.queries(0, books.editors(book.id)).await.unwrap();
                    assert_eq!(editors, committed_editors);
                } else {
                    tx.rollback().await.unwrap();
                    let stale = &tally.rollback_stale;
                    // What the cache serves, twice: the second read must not need the database.
                    for _ in 0..2 {
                        Tally::check(stale, people.get(kept.id).await.unwrap().as_ref() == Some(&kept));
                        Tally::check(stale, people.get(added.id).await.unwrap().is_none());
                        Tally::check(
                            stale,
                            people.get(doomed.id).await.unwrap().as_ref() == Some(&doomed),
                        );
                        Tally::check(stale, books.editors(book.id).await.unwrap() == committed_editors);
                    }
                    // ... and from the cache: it holds the state before the transaction.
                    env.queries(0, async {
                        people.get(kept.id).await.unwrap();
                        people.get(added.id).await.unwrap();
                        people.get(doomed.id).await.unwrap();
                        books.editors(book.id).await.unwrap();
                    })
                    .await;
                    // What the database holds, bypassing the cache.
                    let uncached = ctx.uncached();
                    let check = PersonRepo::new(&uncached);
                    Tally::check(stale, check.get(kept.id).await.unwrap().as_ref() == Some(&kept));
                    Tally::check(stale, check.get(added.id).await.unwrap().is_none());
                    Tally::check(
                        stale,
                        check.get(doomed.id).await.unwrap().as_ref() == Some(&doomed),
                    );
                    books.evict_editors(book.id).await.unwrap();
                    let editors = env.queries(1, books.editors(book.id)).await.unwrap();
                    Tally::check(stale, editors == committed_editors);
                }
            }

            let (stale, seen) = (
                tally.rollback_stale.load(Ordering::Relaxed),
                tally.uncommitted_seen.load(Ordering::Relaxed),
            );
            let reads = tally.concurrent_reads.load(Ordering::Relaxed);
            let db_reads = tally.db_reads.load(Ordering::Relaxed);
            println!(
                "R8 db={} rollback_stale={stale} uncommitted_seen={seen} rounds={ROUNDS} concurrent_reads={reads} \
                 of_which_db_queries={db_reads}",
                <Db as TestDatabase>::DIALECT
            );
            assert!(
                reads >= (ROUNDS * READERS * 4) as u64,
                "readers barely ran: {tally:?}"
            );
            assert!(
                db_reads > 0,
                "readers never read the database during a transaction: {tally:?}"
            );
            assert_eq!((stale, seen), (0, 0), "{tally:?}");
        }
    };
}

pub mod sqlite {
    transaction_scenarios!(sqlite);
}

pub mod postgres {
    transaction_scenarios!(postgres);
}

pub mod mysql {
    transaction_scenarios!(mysql);
}
