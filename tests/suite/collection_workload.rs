//! The stale-read checker for collections: writers move books between authors, retitle
//! them, and pair or unpair editors while readers read `books`, `editors` and `edited`;
//! every read must match a state of that collection (members and, for `books`, which caches
//! the rows, their titles) no older than the last one acknowledged before the read began.
//! On every database.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autocache::{Context, Dialect};
use rand::Rng;

use crate::workload::Outcome;

/// What a read of one collection returned: each member's primary key and, for `books`,
/// its title (empty for the collections that are not checked for row contents).
type State = BTreeSet<(i64, String)>;

/// The states one collection went through, in order; the last may still be in flight.
#[derive(Default)]
struct History {
    states: Vec<State>,
    /// How many states are acknowledged (their write's future resolved).
    acked: usize,
}

/// Every collection of the run: `books` of each author, `editors` of each book, `edited` of
/// each editor. A writer holds the lock of every collection it changes for the whole write.
struct Collections {
    books_of: Vec<tokio::sync::Mutex<()>>,
    editors_of: Vec<tokio::sync::Mutex<()>>,
    edited_of: Vec<tokio::sync::Mutex<()>>,
    histories: Mutex<Vec<History>>,
}

impl Collections {
    /// Index of a collection's history: books, then editors, then edited.
    fn slot(&self, kind: usize, index: usize) -> usize {
        match kind {
            0 => index,
            1 => self.books_of.len() + index,
            _ => self.books_of.len() + self.editors_of.len() + index,
        }
    }

    fn current(&self, slot: usize) -> State {
        self.histories.lock().unwrap()[slot]
            .states
            .last()
            .cloned()
            .unwrap_or_default()
    }

    fn begin(&self, slot: usize, state: State) {
        self.histories.lock().unwrap()[slot].states.push(state);
    }

    fn ack(&self, slot: usize) {
        let mut histories = self.histories.lock().unwrap();
        let history = &mut histories[slot];
        history.acked = history.states.len();
    }

    fn floor(&self, slot: usize) -> usize {
        self.histories.lock().unwrap()[slot].acked
    }

    /// Whether `seen` is a state at or after the one acknowledged at `floor`.
    fn fresh(&self, slot: usize, floor: usize, seen: &State) -> bool {
        let histories = self.histories.lock().unwrap();
        histories[slot].states[floor.saturating_sub(1)..]
            .iter()
            .any(|state| state == seen)
    }
}

/// The collection workload on the repositories generated for one database (see [`run`]).
pub trait RunCollections: Dialect {
    fn run_collections(ctx: &Context<Self>, duration: Duration) -> impl Future<Output = Outcome>;
}

/// Runs the collection workload on `ctx` for `duration`.
pub async fn run<DB: RunCollections>(ctx: &Context<DB>, duration: Duration) -> Outcome {
    DB::run_collections(ctx, duration).await
}

/// Implements [`RunCollections`] for database `$db` (see [`crate::databases`]).
macro_rules! collections_on {
    ($db:ident) => {
        impl RunCollections for crate::databases::$db::Db {
            async fn run_collections(ctx: &Context<Self>, duration: Duration) -> Outcome {
                use crate::databases::$db::sample::{Book, BookRepo, NewBook, NewPerson, PersonRepo};

                const AUTHORS: usize = 2;
                const BOOKS: usize = 4;
                const EDITORS: usize = 2;
                let people = PersonRepo::new(ctx);
                let books = BookRepo::new(ctx);
                let mut authors = Vec::new();
                for i in 0..AUTHORS {
                    authors.push(
                        people
                            .insert(&NewPerson {
                                name: format!("author{i}"),
                            })
                            .await
                            .unwrap(),
                    );
                }
                let mut editors = Vec::new();
                for i in 0..EDITORS {
                    editors.push(
                        people
                            .insert(&NewPerson {
                                name: format!("editor{i}"),
                            })
                            .await
                            .unwrap(),
                    );
                }
                let state = Arc::new(Collections {
                    books_of: (0..AUTHORS).map(|_| tokio::sync::Mutex::new(())).collect(),
                    editors_of: (0..BOOKS).map(|_| tokio::sync::Mutex::new(())).collect(),
                    edited_of: (0..EDITORS).map(|_| tokio::sync::Mutex::new(())).collect(),
                    histories: Mutex::new(
                        (0..AUTHORS + BOOKS + EDITORS)
                            .map(|_| History::default())
                            .collect(),
                    ),
                });
                let mut all_books: Vec<Book> = Vec::new();
                for i in 0..BOOKS {
                    let author = &authors[i % AUTHORS];
                    all_books.push(
                        books
                            .insert(&NewBook {
                                title: format!("book{i}"),
                                author_id: author.id,
                                rank: 1,
                            })
                            .await
                            .unwrap(),
                    );
                }
                for (slot, history) in state.histories.lock().unwrap().iter_mut().enumerate() {
                    let initial: State = if slot < AUTHORS {
                        all_books
                            .iter()
                            .filter(|b| b.author_id == authors[slot].id)
                            .map(|b| (b.id, b.title.clone()))
                            .collect()
                    } else {
                        BTreeSet::new()
                    };
                    history.states.push(initial);
                    history.acked = 1;
                }
                let authors = Arc::new(authors);
                let editors = Arc::new(editors);
                let all_books = Arc::new(Mutex::new(all_books));
                let stop = Arc::new(AtomicBool::new(false));
                let outcome = Arc::new(Mutex::new(Outcome::default()));
                let mut tasks = Vec::new();
                let next_title = Arc::new(std::sync::atomic::AtomicU64::new(1));

                for writer in 0..4 {
                    let next_title = next_title.clone();
                    let (ctx, state, authors, editors, all_books, stop, outcome) = (
                        ctx.clone(),
                        state.clone(),
                        authors.clone(),
                        editors.clone(),
                        all_books.clone(),
                        stop.clone(),
                        outcome.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        let books = BookRepo::new(&ctx);
                        while !stop.load(Ordering::Relaxed) {
                            let b = rand::rng().random_range(0..BOOKS);
                            let ok = if writer % 2 == 0 {
                                // Retitle book b and, every other time, move it to the other
                                // author (both `books` collections are held: the book's
                                // author is read under them).
                                let _g1 = state.books_of[0].lock().await;
                                let _g2 = state.books_of[1].lock().await;
                                let book = all_books.lock().unwrap()[b].clone();
                                let from = authors.iter().position(|a| a.id == book.author_id).unwrap();
                                let to = if rand::rng().random_bool(0.5) {
                                    (from + 1) % AUTHORS
                                } else {
                                    from
                                };
                                let title = format!("book{b}:{}", next_title.fetch_add(1, Ordering::Relaxed));
                                let (s_from, s_to) = (state.slot(0, from), state.slot(0, to));
                                let mut from_set = state.current(s_from);
                                from_set.remove(&(book.id, book.title.clone()));
                                if s_to == s_from {
                                    from_set.insert((book.id, title.clone()));
                                    state.begin(s_from, from_set);
                                } else {
                                    let mut to_set = state.current(s_to);
                                    to_set.insert((book.id, title.clone()));
                                    state.begin(s_from, from_set);
                                    state.begin(s_to, to_set);
                                }
                                let moved = Book {
                                    author_id: authors[to].id,
                                    title,
                                    ..book
                                };
                                let ok = books.update(&moved).await;
                                all_books.lock().unwrap()[b] = moved;
                                state.ack(s_from);
                                state.ack(s_to);
                                ok
                            } else {
                                // Pair or unpair book b with editor e.
                                let e = rand::rng().random_range(0..EDITORS);
                                let _g1 = state.editors_of[b].lock().await;
                                let _g2 = state.edited_of[e].lock().await;
                                let (s_editors, s_edited) = (state.slot(1, b), state.slot(2, e));
                                let book_id = all_books.lock().unwrap()[b].id;
                                let editor_id = editors[e].id;
                                let mut editors_set = state.current(s_editors);
                                let mut edited_set = state.current(s_edited);
                                let (editor, edited) = ((editor_id, String::new()), (book_id, String::new()));
                                let add = !editors_set.contains(&editor);
                                if add {
                                    editors_set.insert(editor);
                                    edited_set.insert(edited);
                                } else {
                                    editors_set.remove(&editor);
                                    edited_set.remove(&edited);
                                }
                                state.begin(s_editors, editors_set);
                                state.begin(s_edited, edited_set);
                                let result = if add {
                                    books.add_editors(book_id, &[editor_id]).await
                                } else {
                                    books.remove_editors(book_id, &[editor_id]).await
                                };
                                state.ack(s_editors);
                                state.ack(s_edited);
                                result.map(|_| None)
                            };
                            let mut out = outcome.lock().unwrap();
                            match ok {
                                Ok(_) => out.writes += 1,
                                Err(error) => out.error(&error),
                            }
                        }
                    }));
                }
                for _ in 0..12 {
                    let (ctx, state, authors, editors, all_books, stop, outcome) = (
                        ctx.clone(),
                        state.clone(),
                        authors.clone(),
                        editors.clone(),
                        all_books.clone(),
                        stop.clone(),
                        outcome.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        let (people, books) = (PersonRepo::new(&ctx), BookRepo::new(&ctx));
                        let mut n = 0u32;
                        while !stop.load(Ordering::Relaxed) {
                            n += 1;
                            let kind = rand::rng().random_range(0..3);
                            let index = rand::rng().random_range(0..[AUTHORS, BOOKS, EDITORS][kind]);
                            let slot = state.slot(kind, index);
                            let floor = state.floor(slot);
                            let seen: Result<State, _> = match kind {
                                0 => {
                                    let id = authors[index].id;
                                    if n.is_multiple_of(4) {
                                        let _ = people.evict_books(id).await;
                                    }
                                    people
                                        .books(id)
                                        .await
                                        .map(|v| v.iter().map(|b| (b.id, b.title.clone())).collect())
                                }
                                1 => {
                                    let id = all_books.lock().unwrap()[index].id;
                                    if n.is_multiple_of(4) {
                                        let _ = books.evict_editors(id).await;
                                    }
                                    books
                                        .editors(id)
                                        .await
                                        .map(|v| v.iter().map(|p| (p.id, String::new())).collect())
                                }
                                _ => {
                                    let id = editors[index].id;
                                    if n.is_multiple_of(4) {
                                        let _ = people.evict_edited(id).await;
                                    }
                                    people
                                        .edited(id)
                                        .await
                                        .map(|v| v.iter().map(|b| (b.id, String::new())).collect())
                                }
                            };
                            let mut out = outcome.lock().unwrap();
                            match seen {
                                Ok(seen) => {
                                    out.reads += 1;
                                    if !state.fresh(slot, floor, &seen) {
                                        out.stale(|| {
                                            format!(
                                                "collection {kind}/{index}: read {seen:?}, not a state from #{floor} on"
                                            )
                                        });
                                    }
                                }
                                Err(error) => out.error(&error),
                            }
                        }
                    }));
                }
                tokio::time::sleep(duration).await;
                stop.store(true, Ordering::Relaxed);
                for task in tasks {
                    task.await.expect("collection workload task panicked");
                }
                Arc::try_unwrap(outcome)
                    .expect("tasks finished")
                    .into_inner()
                    .unwrap()
            }
        }
    };
}

collections_on!(sqlite);
collections_on!(postgres);
collections_on!(mysql);
