//! Bulk writes invalidate exactly the keys of the rows they touched: instance keys, unique
//! keys and every collection — the seed's `update()` left all of them stale. On every
//! backend (SQLite), and on PostgreSQL and MariaDB.

/// The scenarios, on the sample schema generated for database `$db`.
macro_rules! bulk_scenarios {
    ($db:ident) => {
        use crate::databases::$db::Db;
        use crate::databases::$db::sample::{
            Book, BookChanges, BookFilter, BookRepo, NewBook, NewPerson, NewVolume, Person, PersonRepo, VolumeChanges,
            VolumeFilter, VolumeRepo,
        };
        use crate::env::{Kind, env_on};

        type Env = crate::env::Env<Db>;

        async fn person(env: &Env, name: &str) -> Person {
            PersonRepo::new(&env.ctx)
                .insert(&NewPerson { name: name.into() })
                .await
                .unwrap()
        }

        async fn book(env: &Env, author: &Person, title: &str, rank: i32) -> Book {
            BookRepo::new(&env.ctx)
                .insert(&NewBook {
                    title: title.into(),
                    author_id: author.id,
                    rank,
                })
                .await
                .unwrap()
        }

        fn titles(books: &[Book]) -> Vec<&str> {
            books.iter().map(|b| b.title.as_str()).collect()
        }

        async fn update_where_refreshes_rows_and_collections(env: &Env) {
            let (people, books) = (PersonRepo::new(&env.ctx), BookRepo::new(&env.ctx));
            let (ann, bob) = (person(env, "Ann").await, person(env, "Bob").await);
            let a1 = book(env, &ann, "a1", 1).await;
            let a2 = book(env, &ann, "a2", 2).await;
            let b1 = book(env, &bob, "b1", 5).await;
            assert_eq!(titles(&people.books(ann.id).await.unwrap()), ["a2", "a1"]);
            assert_eq!(titles(&people.books(bob.id).await.unwrap()), ["b1"]);

            // Re-rank every book of Ann's: the rows and the order change, nothing else.
            let changed = books
                .update_where(
                    &BookFilter::AuthorIdEq(ann.id),
                    &BookChanges {
                        rank: Some(10),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(changed, 2);
            assert_eq!(
                env.queries(0, books.get(a1.id)).await.unwrap().map(|b| b.rank),
                Some(10)
            );
            assert_eq!(
                titles(&env.queries(0, people.books(ann.id)).await.unwrap()),
                ["a1", "a2"]
            );
            assert_eq!(
                env.queries(0, books.get(b1.id)).await.unwrap(),
                Some(b1.clone()),
                "untouched row"
            );

            // Move two books to Bob: both collections follow.
            let moved = books
                .update_where(
                    &BookFilter::IdIn(vec![a2.id, a1.id]),
                    &BookChanges {
                        author_id: Some(bob.id),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(moved, 2);
            assert!(env.queries(0, people.books(ann.id)).await.unwrap().is_empty());
            assert_eq!(
                titles(&env.queries(0, people.books(bob.id)).await.unwrap()),
                ["a1", "a2", "b1"]
            );

            // A filter that matches nothing changes nothing.
            let rank = BookChanges {
                rank: Some(1),
                ..Default::default()
            };
            assert_eq!(
                books
                    .update_where(&BookFilter::IdIn(vec![]), &rank)
                    .await
                    .unwrap(),
                0
            );
        }

        async fn delete_where_empties_exactly_the_deleted_rows(env: &Env) {
            let (people, books) = (PersonRepo::new(&env.ctx), BookRepo::new(&env.ctx));
            let cy = person(env, "Cy").await;
            let keep = book(env, &cy, "keep", 1).await;
            let gone = book(env, &cy, "gone", 7).await;
            let ed = person(env, "Ed").await;
            books.add_editors(gone.id, &[ed.id]).await.unwrap();
            assert_eq!(people.books(cy.id).await.unwrap().len(), 2);
            assert_eq!(titles(&people.edited(ed.id).await.unwrap()), ["gone"]);

            assert_eq!(books.delete_where(&BookFilter::RankEq(7)).await.unwrap(), 1);
            assert_eq!(env.queries(0, books.get(gone.id)).await.unwrap(), None);
            assert_eq!(
                env.queries(0, books.get(keep.id)).await.unwrap(),
                Some(keep.clone())
            );
            assert_eq!(
                titles(&env.queries(0, people.books(cy.id)).await.unwrap()),
                ["keep"]
            );
            assert!(people.edited(ed.id).await.unwrap().is_empty());
        }

        async fn bulk_moves_of_unique_columns(env: &Env) {
            let (books, volumes) = (BookRepo::new(&env.ctx), VolumeRepo::new(&env.ctx));
            let di = person(env, "Di").await;
            let (first, second) = (
                book(env, &di, "first", 1).await,
                book(env, &di, "second", 1).await,
            );
            let volume = volumes
                .insert(&NewVolume {
                    book_id: first.id,
                    order_in_series: None,
                })
                .await
                .unwrap();
            assert_eq!(
                volumes.get_by_book_id(first.id).await.unwrap(),
                Some(volume.clone())
            );
            assert_eq!(volumes.get_by_book_id(second.id).await.unwrap(), None);

            let changes = VolumeChanges {
                book_id: Some(second.id),
                ..Default::default()
            };
            assert_eq!(
                volumes
                    .update_where(&VolumeFilter::BookIdEq(first.id), &changes)
                    .await
                    .unwrap(),
                1
            );
            assert_eq!(
                volumes.get_by_book_id(first.id).await.unwrap(),
                None,
                "old unique key emptied"
            );
            assert_eq!(
                volumes.get_by_book_id(second.id).await.unwrap().map(|v| v.id),
                Some(volume.id)
            );
            assert_eq!(env.queries(0, books.volume(first.id)).await.unwrap(), None);
            assert_eq!(
                env.queries(0, books.volume(second.id))
                    .await
                    .unwrap()
                    .map(|v| v.id),
                Some(volume.id)
            );
        }

        async fn all_scenarios(kind: Kind) {
            let env = env_on::<Db>(kind).await;
            update_where_refreshes_rows_and_collections(&env).await;
            delete_where_empties_exactly_the_deleted_rows(&env).await;
            bulk_moves_of_unique_columns(&env).await;
        }
    };
}

on_every_database!(bulk_scenarios);
