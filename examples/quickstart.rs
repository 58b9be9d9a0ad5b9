//! Quickstart on the embedded defaults: SQLite + the in-process cache, no servers.
//!
//! The repositories below are generated from `schema.yaml` by this package's `build.rs`
//! (`autocache_codegen::compile`), exactly as in a user's crate.

mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample.rs"));
}

use autocache::{Context, StatsSnapshot};
use sample::{BookRepo, NewBook, NewPerson, Person, PersonRepo};
use sqlx::sqlite::SqlitePoolOptions;

fn report(step: &str, before: StatsSnapshot, after: StatsSnapshot) {
    let d = after - before;
    println!(
        "{step:<48} queries={} hits={} misses={} fills={}",
        d.db_queries, d.hits, d.misses, d.fills
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

    // Writes keep the cache in step; the reads after them cost no query.
    let ann = people.insert(&NewPerson { name: "Ann".into() }).await?;
    let dune = books
        .insert(&NewBook {
            title: "Dune".into(),
            author_id: ann.id,
            rank: 1,
        })
        .await?;
    let step = ctx.snapshot();
    assert_eq!(people.get(ann.id).await?.as_ref(), Some(&ann));
    report("get a person just inserted", step, ctx.snapshot());

    people
        .update(&Person {
            name: "Ann Smith".into(),
            ..ann.clone()
        })
        .await?;
    let step = ctx.snapshot();
    assert_eq!(people.get(ann.id).await?.map(|p| p.name), Some("Ann Smith".to_owned()));
    report("get a person just updated", step, ctx.snapshot());

    books.evict(dune.id).await?;
    let step = ctx.snapshot();
    books.get(dune.id).await?;
    books.get(dune.id).await?;
    report("get an evicted book twice (one query)", step, ctx.snapshot());

    let step = ctx.snapshot();
    people.get_many(&[ann.id, 999]).await?;
    people.get(999).await?;
    report("get_many with a missing id, then get it", step, ctx.snapshot());

    let step = ctx.snapshot();
    assert_eq!(people.books(ann.id).await?.len(), 1);
    report("ann's books (filled when the book was inserted)", step, ctx.snapshot());

    books.add_editors(dune.id, &[ann.id]).await?;
    let step = ctx.snapshot();
    assert_eq!(people.edited(ann.id).await?.len(), 1);
    report("books ann edits, just after add_editors", step, ctx.snapshot());

    let changes = sample::BookChanges {
        rank: Some(5),
        ..Default::default()
    };
    books
        .update_where(&sample::BookFilter::AuthorIdEq(ann.id), &changes)
        .await?;
    let step = ctx.snapshot();
    assert_eq!(books.get(dune.id).await?.map(|b| b.rank), Some(5));
    report("get a book after a bulk update_where", step, ctx.snapshot());

    books.delete(dune.id).await?;
    let step = ctx.snapshot();
    assert!(books.get(dune.id).await?.is_none());
    assert!(people.books(ann.id).await?.is_empty());
    report("get a deleted book, and ann's books", step, ctx.snapshot());

    println!("\nstats snapshot (totals): {:?}", ctx.snapshot());
    for (model, stats) in ctx.model_snapshots() {
        println!(
            "  {model:<8} queries={} hits={} misses={} fills={} invalidations={}",
            stats.db_queries, stats.hits, stats.misses, stats.fills, stats.invalidations
        );
    }
    Ok(())
}
