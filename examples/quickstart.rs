//! Quickstart on the embedded defaults: SQLite + the in-process cache, no servers.
//!
//! The repositories below are generated from `schema.yaml` by this package's `build.rs`
//! (`autocache_codegen::compile`), exactly as in a user's crate.

mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample.rs"));
}

use autocache::{Context, StatsSnapshot};
use sample::{BookRepo, NewBook, NewPerson, PersonRepo};
use sqlx::sqlite::SqlitePoolOptions;

fn report(step: &str, before: StatsSnapshot, after: StatsSnapshot) {
    let d = after - before;
    println!(
        "{step:<44} queries={} hits={} misses={} fills={} invalidations={}",
        d.db_queries, d.hits, d.misses, d.fills, d.invalidations
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One connection: an in-memory SQLite database lives as long as its connection.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect("sqlite::memory:")
        .await?;
    sample::create_tables(&pool).await?;
    let ctx = Context::embedded(pool);
    let people = PersonRepo::new(&ctx);
    let books = BookRepo::new(&ctx);

    let mut step = ctx.snapshot();
    let ann = people.insert(&NewPerson { name: "Ann".into() }).await?;
    let dune = books
        .insert(&NewBook {
            title: "Dune".into(),
            author_id: ann.id,
            rank: 1,
        })
        .await?;
    report("insert a person and a book (write-through)", step, ctx.snapshot());

    step = ctx.snapshot();
    let cached = people.get(ann.id).await?;
    report("get the person (cache hit)", step, ctx.snapshot());
    assert_eq!(cached.as_ref(), Some(&ann));

    step = ctx.snapshot();
    let mut renamed = ann.clone();
    renamed.name = "Ann Smith".into();
    people.update(&renamed).await?;
    let after_update = people.get(ann.id).await?;
    report("update, then get (new value, no query)", step, ctx.snapshot());
    assert_eq!(after_update.map(|p| p.name), Some("Ann Smith".to_owned()));

    step = ctx.snapshot();
    books.evict(dune.id).await?;
    books.get(dune.id).await?;
    report("evict the book, then get (one query)", step, ctx.snapshot());

    step = ctx.snapshot();
    people.get_many(&[ann.id, 999]).await?;
    people.get(999).await?;
    report("get_many with a missing id, then get it again", step, ctx.snapshot());

    step = ctx.snapshot();
    books.delete(dune.id).await?;
    let gone = books.get(dune.id).await?;
    report("delete the book, then get (absent, cached)", step, ctx.snapshot());
    assert!(gone.is_none());

    println!("\nstats snapshot: {:#?}", ctx.snapshot());
    Ok(())
}
