//! The builds of the application a node can run, as two deploys would have them: the sample
//! schema's generated code ([`Build::V1`], what every R9 scenario runs) and its next version
//! (`tests/processes/rolling/sample_v2.yaml`: a field added to `Person` and to `Book`, so
//! both move to new key digests), generated with its lock file ([`Build::V2`]: it knows the
//! retired digests of V1) or without ([`Build::V2Naive`]: only the current digest, the
//! rolling deploy's control). A node uses the repositories only through [`Build`].

use autocache::Context;
use serde::{Deserialize, Serialize};
use sqlx::Postgres;

/// Which generated code a node runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Build {
    /// `schema.yaml`.
    #[default]
    V1,
    /// `sample_v2.yaml` with `sample_v2.lock`.
    V2,
    /// `sample_v2.yaml` without a lock file.
    V2Naive,
}

/// The operations a node makes, written once per generated module: `$person` and `$book`
/// are the fields a version adds to the rows it writes.
macro_rules! operations {
    ($name:ident, $module:ident, { $($person:ident: $person_value:expr),* }, { $($book:ident: $book_value:expr),* }) => {
        mod $name {
            use autocache::Context;
            use sqlx::Postgres;

            use crate::$module::{Book, BookRepo, NewPerson, Person, PersonRepo};

            pub async fn insert_person(ctx: &Context<Postgres>, name: String) -> autocache::Result<i64> {
                let new = NewPerson { name, $($person: $person_value),* };
                Ok(PersonRepo::new(ctx).insert(&new).await?.id)
            }

            pub async fn delete_person(ctx: &Context<Postgres>, id: i64) -> autocache::Result<bool> {
                PersonRepo::new(ctx).delete(id).await
            }

            pub async fn update_person(ctx: &Context<Postgres>, id: i64, name: String) -> autocache::Result<()> {
                let person = Person { id, name, $($person: $person_value),* };
                PersonRepo::new(ctx).update(&person).await.map(drop)
            }

            pub async fn update_book(ctx: &Context<Postgres>, id: i64, author_id: i64, title: String, rank: i32) -> autocache::Result<()> {
                let book = Book { id, title, author_id, rank, $($book: $book_value),* };
                BookRepo::new(ctx).update(&book).await.map(drop)
            }

            pub async fn person_name(ctx: &Context<Postgres>, id: i64) -> autocache::Result<Option<String>> {
                Ok(PersonRepo::new(ctx).get(id).await?.map(|person| person.name))
            }

            pub async fn person_names(ctx: &Context<Postgres>, ids: &[i64]) -> autocache::Result<Vec<Option<String>>> {
                let found = PersonRepo::new(ctx).get_many(ids).await?;
                Ok(found.into_iter().map(|person| person.map(|p| p.name)).collect())
            }

            pub async fn evict_person(ctx: &Context<Postgres>, id: i64) -> autocache::Result<()> {
                PersonRepo::new(ctx).evict(id).await
            }

            pub async fn book_ranks(ctx: &Context<Postgres>, person: i64) -> autocache::Result<Vec<(i64, i32)>> {
                let books = PersonRepo::new(ctx).books(person).await?;
                Ok(books.into_iter().map(|book| (book.id, book.rank)).collect())
            }
        }
    };
}

operations!(v1, sample, {}, {});
operations!(v2, sample_v2, { nickname: Some("n".to_owned()) }, { subtitle: Some("s".to_owned()) });
operations!(v2_naive, sample_v2_naive, { nickname: Some("n".to_owned()) }, { subtitle: Some("s".to_owned()) });

/// Calls one operation of the build's module.
macro_rules! dispatch {
    ($build:expr, $operation:ident($($arg:expr),*)) => {
        match $build {
            Build::V1 => v1::$operation($($arg),*).await,
            Build::V2 => v2::$operation($($arg),*).await,
            Build::V2Naive => v2_naive::$operation($($arg),*).await,
        }
    };
}

impl Build {
    /// Updates a person's name (every column, as `PersonRepo::update`).
    pub async fn update_person(self, ctx: &Context<Postgres>, id: i64, name: String) -> autocache::Result<()> {
        dispatch!(self, update_person(ctx, id, name))
    }

    /// Updates a book (every column, as `BookRepo::update`).
    pub async fn update_book(
        self,
        ctx: &Context<Postgres>,
        id: i64,
        author_id: i64,
        title: String,
        rank: i32,
    ) -> autocache::Result<()> {
        dispatch!(self, update_book(ctx, id, author_id, title, rank))
    }

    /// `PersonRepo::insert` of a person named `name`: its key.
    pub async fn insert_person(self, ctx: &Context<Postgres>, name: String) -> autocache::Result<i64> {
        dispatch!(self, insert_person(ctx, name))
    }

    /// `PersonRepo::delete`: whether the row existed.
    pub async fn delete_person(self, ctx: &Context<Postgres>, id: i64) -> autocache::Result<bool> {
        dispatch!(self, delete_person(ctx, id))
    }

    /// `PersonRepo::get`: the person's name, if the row exists.
    pub async fn person_name(self, ctx: &Context<Postgres>, id: i64) -> autocache::Result<Option<String>> {
        dispatch!(self, person_name(ctx, id))
    }

    /// `PersonRepo::get_many`: the people's names, in order.
    pub async fn person_names(self, ctx: &Context<Postgres>, ids: &[i64]) -> autocache::Result<Vec<Option<String>>> {
        dispatch!(self, person_names(ctx, ids))
    }

    /// `PersonRepo::evict`: drops the person's cached row (as an LRU eviction would).
    pub async fn evict_person(self, ctx: &Context<Postgres>, id: i64) -> autocache::Result<()> {
        dispatch!(self, evict_person(ctx, id))
    }

    /// `PersonRepo::books`: `(id, rank)` of the person's books (a cached collection).
    pub async fn book_ranks(self, ctx: &Context<Postgres>, person: i64) -> autocache::Result<Vec<(i64, i32)>> {
        dispatch!(self, book_ranks(ctx, person))
    }
}
