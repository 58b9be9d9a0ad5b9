//! Related collections (the seed's second half) with the query counts its tests assert,
//! on every backend (SQLite), and on PostgreSQL and MariaDB with the in-process cache, two
//! memcached servers and redis: reverse foreign keys in order, one-to-one both ways,
//! many-to-many from both sides, forward keys through the cache, and parent deletes.

/// The scenarios, on the sample schema generated for database `$db` (see
/// [`crate::databases`]).
macro_rules! collection_scenarios {
    ($db:ident) => {
        use crate::databases::$db::Db;
        use crate::databases::$db::sample::{
            Book, BookRepo, NewBook, NewPerson, NewVolume, Person, PersonRepo, Volume, VolumeRepo,
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
            let new = NewBook {
                title: title.into(),
                author_id: author.id,
                rank,
            };
            BookRepo::new(&env.ctx).insert(&new).await.unwrap()
        }

        fn titles(books: &[Book]) -> Vec<&str> {
            books.iter().map(|b| b.title.as_str()).collect()
        }

        /// Three books created out of order come back as "rank desc, title asc", with 0 queries;
        /// after a rank change the order follows; an evicted collection costs exactly 1 query.
        async fn reverse_foreign_key_ordering(env: &Env) {
            let people = PersonRepo::new(&env.ctx);
            let books = BookRepo::new(&env.ctx);
            let ann = person(env, "Ann").await;
            book(env, &ann, "b", 1).await;
            let c = book(env, &ann, "c", 2).await;
            book(env, &ann, "a", 1).await;
            let got = env.queries(0, people.books(ann.id)).await.unwrap();
            assert_eq!(titles(&got), ["c", "a", "b"]);

            books.update(&Book { rank: 0, ..c }).await.unwrap();
            let got = env.queries(0, people.books(ann.id)).await.unwrap();
            assert_eq!(titles(&got), ["a", "b", "c"]);

            people.evict_books(ann.id).await.unwrap();
            let got = env.queries(1, people.books(ann.id)).await.unwrap();
            assert_eq!(titles(&got), ["a", "b", "c"]);
            assert_eq!(
                titles(&env.queries(0, people.books(ann.id)).await.unwrap()),
                ["a", "b", "c"]
            );
        }

        /// Moving a book to another author updates both authors' collections (0 queries for both).
        async fn moving_a_book(env: &Env) {
            let people = PersonRepo::new(&env.ctx);
            let (bob, cy) = (person(env, "Bob").await, person(env, "Cy").await);
            let moved = book(env, &bob, "moved", 1).await;
            book(env, &bob, "stays", 1).await;
            people.books(cy.id).await.unwrap();
            BookRepo::new(&env.ctx)
                .update(&Book {
                    author_id: cy.id,
                    ..moved
                })
                .await
                .unwrap();
            assert_eq!(
                titles(&env.queries(0, people.books(bob.id)).await.unwrap()),
                ["stays"]
            );
            assert_eq!(
                titles(&env.queries(0, people.books(cy.id)).await.unwrap()),
                ["moved"]
            );
        }

        /// One-to-one: create, update, delete, evict and move, read from both sides.
        async fn one_to_one(env: &Env) {
            let books = BookRepo::new(&env.ctx);
            let volumes = VolumeRepo::new(&env.ctx);
            let di = person(env, "Di").await;
            let (first, second) = (
                book(env, &di, "first", 1).await,
                book(env, &di, "second", 1).await,
            );
            assert_eq!(env.queries(1, books.volume(first.id)).await.unwrap(), None);

            let volume = volumes
                .insert(&NewVolume {
                    book_id: first.id,
                    order_in_series: None,
                })
                .await
                .unwrap();
            assert_eq!(volume.order_in_series, 1, "schema default");
            assert_eq!(
                env.queries(0, books.volume(first.id)).await.unwrap(),
                Some(volume.clone())
            );

            let updated = volumes
                .update(&Volume {
                    order_in_series: 2,
                    ..volume.clone()
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                env.queries(0, books.volume(first.id)).await.unwrap(),
                Some(updated.clone())
            );

            books.evict_volume(first.id).await.unwrap();
            assert_eq!(
                env.queries(1, books.volume(first.id)).await.unwrap(),
                Some(updated.clone())
            );

            let moved = volumes
                .update(&Volume {
                    book_id: second.id,
                    ..updated
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(env.queries(0, books.volume(first.id)).await.unwrap(), None);
            assert_eq!(
                env.queries(0, books.volume(second.id)).await.unwrap(),
                Some(moved.clone())
            );
            assert_eq!(
                env.queries(0, volumes.book(&moved)).await.unwrap(),
                Some(second.clone())
            );

            volumes.delete(moved.id).await.unwrap();
            assert_eq!(env.queries(0, books.volume(second.id)).await.unwrap(), None);
            books.evict_volume(second.id).await.unwrap();
            assert_eq!(env.queries(1, books.volume(second.id)).await.unwrap(), None);
        }

        /// Many-to-many from both sides: add, add another and remove the first, set, clear; a
        /// book's rank change shows in `edited`, a person's name change in `editors`.
        async fn many_to_many(env: &Env) {
            let books = BookRepo::new(&env.ctx);
            let people = PersonRepo::new(&env.ctx);
            let author = person(env, "Author").await;
            let (ed, flo) = (person(env, "Ed").await, person(env, "Flo").await);
            let (x, y) = (book(env, &author, "x", 1).await, book(env, &author, "y", 2).await);

            books.add_editors(x.id, &[ed.id]).await.unwrap();
            assert_eq!(
                env.queries(0, books.editors(x.id)).await.unwrap(),
                vec![ed.clone()]
            );
            assert_eq!(
                titles(&env.queries(0, people.edited(ed.id)).await.unwrap()),
                ["x"]
            );

            books.add_editors(x.id, &[flo.id]).await.unwrap();
            books.remove_editors(x.id, &[ed.id]).await.unwrap();
            assert_eq!(
                env.queries(0, books.editors(x.id)).await.unwrap(),
                vec![flo.clone()]
            );
            assert_eq!(env.queries(0, people.edited(ed.id)).await.unwrap(), vec![]);

            // The reverse side writes too.
            people.add_edited(flo.id, &[y.id]).await.unwrap();
            assert_eq!(
                titles(&env.queries(0, people.edited(flo.id)).await.unwrap()),
                ["y", "x"]
            );
            assert_eq!(
                env.queries(0, books.editors(y.id)).await.unwrap(),
                vec![flo.clone()]
            );

            // Ordering follows a rank change, re-sorted by the writer: the next read costs
            // no query (the seed's ordering test); names follow a rename.
            books.update(&Book { rank: 9, ..x.clone() }).await.unwrap();
            assert_eq!(
                titles(&env.queries(0, people.edited(flo.id)).await.unwrap()),
                ["x", "y"]
            );
            let renamed = people
                .update(&Person {
                    name: "Florence".into(),
                    ..flo.clone()
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                env.queries(0, books.editors(x.id)).await.unwrap(),
                vec![renamed.clone()]
            );

            books.set_editors(y.id, &[ed.id, flo.id]).await.unwrap();
            assert_eq!(
                env.queries(0, books.editors(y.id)).await.unwrap(),
                vec![ed.clone(), renamed.clone()]
            );
            assert_eq!(
                titles(&env.queries(0, people.edited(ed.id)).await.unwrap()),
                ["y"]
            );
            books.clear_editors(y.id).await.unwrap();
            assert_eq!(env.queries(0, books.editors(y.id)).await.unwrap(), vec![]);
            assert_eq!(
                titles(&env.queries(0, people.edited(ed.id)).await.unwrap()),
                Vec::<&str>::new()
            );

            books.evict_editors(x.id).await.unwrap();
            assert_eq!(env.queries(1, books.editors(x.id)).await.unwrap(), vec![renamed]);
        }

        /// A book's author through the cache: 0 queries when cached.
        async fn forward_foreign_key(env: &Env) {
            let gus = person(env, "Gus").await;
            let b = book(env, &gus, "fwd", 1).await;
            assert_eq!(
                env.queries(0, BookRepo::new(&env.ctx).author(&b)).await.unwrap(),
                Some(gus)
            );
        }

        /// Deleting a person cascades (as the schema says) to their books and those books' volumes:
        /// every cached key of theirs reads the database's answer afterwards.
        async fn deleting_a_parent_cascades(env: &Env) {
            let people = PersonRepo::new(&env.ctx);
            let books = BookRepo::new(&env.ctx);
            let volumes = VolumeRepo::new(&env.ctx);
            let hal = person(env, "Hal").await;
            let editor = person(env, "Ivy").await;
            let b = book(env, &hal, "gone", 1).await;
            let v = volumes
                .insert(&NewVolume {
                    book_id: b.id,
                    order_in_series: Some(3),
                })
                .await
                .unwrap();
            books.add_editors(b.id, &[editor.id]).await.unwrap();
            // Everything cached.
            assert_eq!(people.books(hal.id).await.unwrap().len(), 1);
            assert!(books.volume(b.id).await.unwrap().is_some());
            assert_eq!(titles(&people.edited(editor.id).await.unwrap()), ["gone"]);

            assert!(people.delete(hal.id).await.unwrap());
            assert_eq!(people.get(hal.id).await.unwrap(), None);
            assert_eq!(books.get(b.id).await.unwrap(), None);
            assert_eq!(volumes.get(v.id).await.unwrap(), None);
            assert!(people.books(hal.id).await.unwrap().is_empty());
            assert_eq!(books.volume(b.id).await.unwrap(), None);
            assert!(people.edited(editor.id).await.unwrap().is_empty());
            assert!(books.editors(b.id).await.unwrap().is_empty());
        }

        /// Deleting a person no book points at but who edits one (a pair points at them): the
        /// collections they owned and the ones they were in read the database's answer.
        async fn deleting_an_editor(env: &Env) {
            let people = PersonRepo::new(&env.ctx);
            let books = BookRepo::new(&env.ctx);
            let author = person(env, "Jo").await;
            let editor = person(env, "Kim").await;
            let b = book(env, &author, "edited", 1).await;
            books.add_editors(b.id, &[editor.id]).await.unwrap();
            // Both sides cached.
            assert_eq!(titles(&people.edited(editor.id).await.unwrap()), ["edited"]);
            assert_eq!(books.editors(b.id).await.unwrap().len(), 1);

            assert!(people.delete(editor.id).await.unwrap());
            assert!(people.edited(editor.id).await.unwrap().is_empty());
            assert!(books.editors(b.id).await.unwrap().is_empty());
        }

        /// A book written for a person, and a pair making them an editor, by a transaction
        /// that commits while the person's delete runs (its statements hold the person row's
        /// key lock, so the delete waits for it): the database's cascade removes both, so the
        /// book reads "does not exist" and every collection either was in reads empty. On
        /// PostgreSQL the delete's first try (at `REPEATABLE READ`, no row lock first: one
        /// statement that commits on its own in a context whose person deletes found nothing
        /// pointing at them, else a transaction) is refused by the database and tried again;
        /// not on SQLite, whose write transactions do not overlap.
        async fn writes_while_a_person_is_deleted(env: &Env) {
            if <Person as autocache::Model>::SQL.lock_rows.is_empty() {
                return;
            }
            let (people, books) = (PersonRepo::new(&env.ctx), BookRepo::new(&env.ctx));
            let doomed = person(env, "Lu").await;
            let edited = book(env, &person(env, "Max").await, "edited late", 1).await;
            assert!(people.books(doomed.id).await.unwrap().is_empty());
            assert!(books.editors(edited.id).await.unwrap().is_empty());
            let writing = env.ctx.begin().await.unwrap();
            let late = BookRepo::new(&writing)
                .insert(&NewBook {
                    title: "written late".into(),
                    author_id: doomed.id,
                    rank: 1,
                })
                .await
                .unwrap();
            BookRepo::new(&writing)
                .add_editors(edited.id, &[doomed.id])
                .await
                .unwrap();
            let commit_later = async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                writing.commit().await.unwrap();
            };
            let (deleted, ()) = tokio::join!(people.delete(doomed.id), commit_later);
            assert!(deleted.unwrap());
            assert_eq!(
                books.get(late.id).await.unwrap(),
                None,
                "the cascaded book, still cached"
            );
            assert!(people.books(doomed.id).await.unwrap().is_empty());
            assert!(people.edited(doomed.id).await.unwrap().is_empty());
            assert!(
                books.editors(edited.id).await.unwrap().is_empty(),
                "the cascaded pair, still cached"
            );
            assert_eq!(people.get(doomed.id).await.unwrap(), None);
        }

        async fn all_scenarios(kind: Kind) {
            // In a context that has deleted no person yet: on PostgreSQL the delete tries one
            // statement at a snapshot first, which commits on its own.
            writes_while_a_person_is_deleted(&env_on::<Db>(kind).await).await;
            let env = env_on::<Db>(kind).await;
            reverse_foreign_key_ordering(&env).await;
            moving_a_book(&env).await;
            one_to_one(&env).await;
            many_to_many(&env).await;
            forward_foreign_key(&env).await;
            deleting_a_parent_cascades(&env).await;
            deleting_an_editor(&env).await;
            writes_while_a_person_is_deleted(&env).await;
        }
    };
}

on_every_database!(collection_scenarios);
