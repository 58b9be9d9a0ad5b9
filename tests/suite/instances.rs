//! Instance caching (the seed's first half): inserted, updated and deleted rows read back
//! with the right number of database queries, on every backend (SQLite), and on PostgreSQL
//! and MariaDB with the in-process cache, two memcached servers and redis.

/// The scenarios, on the sample schema generated for database `$db` (see
/// [`crate::databases`]).
macro_rules! instance_scenarios {
    ($db:ident) => {
        use crate::databases::$db::Db;
        use crate::databases::$db::sample::{Book, BookRepo, NewBook, NewPerson, Person, PersonRepo};
        use crate::env::{Kind, env_on};

        type Env = crate::env::Env<Db>;

        async fn person(env: &Env, name: &str) -> Person {
            PersonRepo::new(&env.ctx)
                .insert(&NewPerson { name: name.into() })
                .await
                .expect("insert")
        }

        /// 1. An inserted row is then read with 0 queries.
        async fn inserted_row_reads_from_cache(env: &Env) {
            let ann = person(env, "Ann").await;
            let people = PersonRepo::new(&env.ctx);
            let got = env.queries(0, people.get(ann.id)).await.unwrap();
            assert_eq!(got, Some(ann));
        }

        /// 2. A deleted row reads as "does not exist" with 0 queries.
        async fn deleted_row_reads_absent_from_cache(env: &Env) {
            let bob = person(env, "Bob").await;
            let people = PersonRepo::new(&env.ctx);
            assert!(people.delete(bob.id).await.unwrap());
            assert_eq!(env.queries(0, people.get(bob.id)).await.unwrap(), None);
        }

        /// 3. An updated row reads back updated with 0 queries.
        async fn updated_row_reads_from_cache(env: &Env) {
            let mut cy = person(env, "Cy").await;
            let people = PersonRepo::new(&env.ctx);
            cy.name = "Cyrus".into();
            assert_eq!(people.update(&cy).await.unwrap().as_ref(), Some(&cy));
            assert_eq!(env.queries(0, people.get(cy.id)).await.unwrap(), Some(cy));
        }

        /// 4. After its key is evicted, a read costs exactly 1 query, and then 0 again.
        async fn evicted_row_costs_one_query(env: &Env) {
            let di = person(env, "Di").await;
            let people = PersonRepo::new(&env.ctx);
            people.evict(di.id).await.unwrap();
            assert_eq!(env.queries(1, people.get(di.id)).await.unwrap(), Some(di.clone()));
            assert_eq!(env.queries(0, people.get(di.id)).await.unwrap(), Some(di));
        }

        /// 5. A deleted row whose key was evicted costs exactly 1 query and reads as absent;
        ///    the absence is cached, so the next read costs 0.
        async fn deleted_and_evicted_costs_one_query(env: &Env) {
            let ed = person(env, "Ed").await;
            let people = PersonRepo::new(&env.ctx);
            people.delete(ed.id).await.unwrap();
            people.evict(ed.id).await.unwrap();
            assert_eq!(env.queries(1, people.get(ed.id)).await.unwrap(), None);
            assert_eq!(env.queries(0, people.get(ed.id)).await.unwrap(), None);
        }

        /// 6. A view made by `Context::uncached` reads the database, never the cache, and
        ///    fills nothing: a change made behind the cache's back shows through it only.
        async fn uncached_reads_skip_the_cache(env: &Env) {
            let fay = person(env, "Fay").await;
            let people = PersonRepo::new(&env.ctx);
            let uncached = env.ctx.uncached();
            let direct = PersonRepo::new(&uncached);
            let behind = format!("UPDATE person SET name = 'Fey' WHERE id = {}", fay.id);
            sqlx::query(sqlx::AssertSqlSafe(behind))
                .execute(env.ctx.pool())
                .await
                .unwrap();
            let read = env.queries(1, direct.get(fay.id)).await.unwrap();
            assert_eq!(read.map(|p| p.name).as_deref(), Some("Fey"));
            assert_eq!(
                env.queries(0, people.get(fay.id)).await.unwrap(),
                Some(fay.clone())
            );
            assert_eq!(env.queries(1, direct.books(fay.id)).await.unwrap(), Vec::new());
            assert_eq!(env.queries(1, direct.books(fay.id)).await.unwrap(), Vec::new());
            people.evict(fay.id).await.unwrap();
            env.queries(1, direct.get_many(&[fay.id])).await.unwrap();
            let read = env.queries(1, people.get(fay.id)).await.unwrap();
            assert_eq!(read.map(|p| p.name).as_deref(), Some("Fey"));
        }

        /// 7. `Context::flush` empties every cache: a cached row then costs 1 query, and is
        ///    cached again.
        async fn flush_empties_the_cache(env: &Env) {
            let gil = person(env, "Gil").await;
            let people = PersonRepo::new(&env.ctx);
            assert_eq!(
                env.queries(0, people.get(gil.id)).await.unwrap(),
                Some(gil.clone())
            );
            env.ctx.flush().await.expect("flush every backend");
            assert_eq!(
                env.queries(1, people.get(gil.id)).await.unwrap(),
                Some(gil.clone())
            );
            assert_eq!(env.queries(0, people.get(gil.id)).await.unwrap(), Some(gil));
        }

        /// `get_many`: one cache round trip, the misses in exactly one query, order kept.
        async fn get_many_batches_misses(env: &Env) {
            let people = PersonRepo::new(&env.ctx);
            let a = person(env, "A").await;
            let b = person(env, "B").await;
            let c = person(env, "C").await;
            people.evict(a.id).await.unwrap();
            people.evict(c.id).await.unwrap();
            let missing = c.id + 1000;
            let got = env
                .queries(1, people.get_many(&[c.id, b.id, missing, a.id]))
                .await
                .unwrap();
            assert_eq!(got, vec![Some(c.clone()), Some(b.clone()), None, Some(a.clone())]);
            let again = env
                .queries(0, people.get_many(&[a.id, b.id, c.id, missing]))
                .await
                .unwrap();
            assert_eq!(again, vec![Some(a), Some(b), Some(c), None]);
        }

        /// An id asked for twice is answered twice, whether it hits or falls through to the
        /// database (it read "does not exist" for the second copy on the database path).
        /// Unreadable bytes under the key send every copy to the database read.
        async fn get_many_repeats_ids(env: &Env) {
            let people = PersonRepo::new(&env.ctx);
            let a = person(env, "Twice").await;
            let b = person(env, "Once").await;
            let missing = b.id + 1000;
            let expected = vec![
                Some(a.clone()),
                Some(a.clone()),
                Some(b.clone()),
                None,
                Some(a.clone()),
            ];
            let asked = [a.id, a.id, b.id, missing, a.id];
            let key = autocache::repo::primary_key::<Person>(&env.ctx, &a.id);
            let backend = env.ctx.backend_for(&<Person as autocache::Model>::INFO).unwrap();
            backend
                .lock(&[&key], b"garbage", std::time::Duration::from_secs(60))
                .await
                .unwrap();
            assert_eq!(people.get_many(&asked).await.unwrap(), expected, "database path");
            assert_eq!(people.get_many(&asked).await.unwrap(), expected, "hits");
        }

        /// Models on the `other` backend behave the same (Book, with a foreign key to Person).
        async fn other_backend_model(env: &Env) {
            let author = person(env, "Author").await;
            let books = BookRepo::new(&env.ctx);
            let book = books
                .insert(&NewBook {
                    title: "Dune".into(),
                    author_id: author.id,
                    rank: 3,
                })
                .await
                .unwrap();
            assert_eq!(
                env.queries(0, books.get(book.id)).await.unwrap(),
                Some(book.clone())
            );
            books.evict(book.id).await.unwrap();
            assert_eq!(env.queries(1, books.get(book.id)).await.unwrap(), Some(book));
        }

        /// Writes send the fewest statements the dialect allows: an update whose keys follow
        /// from the primary key (`Person`) locks first and sends only its statement where the
        /// statement returns the row (SQLite, PostgreSQL); another update (`Book`, a member of
        /// its author's two collections) needs the old row: one statement where it returns the
        /// old row itself (PostgreSQL), else the old row's select too (and MySQL's select of
        /// the new row), then the re-reads of the two collections; a delete of a row nothing depends on: where
        /// the dialect locks rows, the row's lock (so nothing comes to point at it before the
        /// `DELETE`), then one probe of its footprint (many-to-many owners and dependents asked
        /// together) and the `DELETE` — one statement where a `DELETE` may run in a `WITH`
        /// (PostgreSQL).
        async fn writes_send_the_fewest_statements(env: &Env) {
            let fay = person(env, "Fay").await;
            let people = PersonRepo::new(&env.ctx);
            let update = |returns| match returns {
                autocache::UpdateReturns::OldThenRow => 1,
                autocache::UpdateReturns::Row => 2,
                _ => 3,
            };
            let person_update = match <Person as autocache::Model>::SQL.update_returns {
                autocache::UpdateReturns::Nothing => 3,
                _ => 1,
            };
            assert!(<Person as autocache::Model>::UPDATE_LOCKS_FIRST);
            assert!(!<Book as autocache::Model>::UPDATE_LOCKS_FIRST);
            let renamed = Person {
                name: "Fay Renamed".into(),
                ..fay.clone()
            };
            let updated = env.queries(person_update, people.update(&renamed)).await.unwrap();
            assert_eq!(updated, Some(renamed.clone()));
            assert_eq!(env.queries(0, people.get(fay.id)).await.unwrap(), Some(renamed));
            let book = BookRepo::new(&env.ctx)
                .insert(&NewBook {
                    title: "Fay's".into(),
                    author_id: fay.id,
                    rank: 1,
                })
                .await
                .unwrap();
            let retitled = Book {
                title: "Fay's, revised".into(),
                ..book.clone()
            };
            let book_update = update(<Book as autocache::Model>::SQL.update_returns) + 2;
            let books = BookRepo::new(&env.ctx);
            assert_eq!(
                env.queries(book_update, books.update(&retitled)).await.unwrap(),
                Some(retitled)
            );
            assert!(books.delete(book.id).await.unwrap());
            // PostgreSQL: the probe and the DELETE in one statement at a snapshot; SQLite's
            // write transaction needs no row lock before the probe; MySQL locks the row first.
            assert!(<Person as autocache::Model>::ONLY_INSTANCE_KEY);
            let delete = match (
                <Person as autocache::Model>::SQL.lock_rows,
                <Db as autocache::Dialect>::BEGIN_SNAPSHOT,
            ) {
                (_, Some(_)) => 1,
                ("", None) => 2,
                (_, None) => 3,
            };
            assert!(env.queries(delete, people.delete(fay.id)).await.unwrap());
            assert_eq!(env.queries(0, people.get(fay.id)).await.unwrap(), None);
        }

        /// An insert overrides an absence a reader cached for the row's key: the key after
        /// a new row's (the database's next, or the context's next reserved one) is read as
        /// absent and cached, then a row is inserted with it and reads back with 0 queries.
        /// Where the insert locks its key first (PostgreSQL's `Person`), it sends one
        /// statement, no transaction, and reserves keys a block at a time.
        async fn an_insert_replaces_a_cached_absence(env: &Env) {
            let people = PersonRepo::new(&env.ctx);
            let next = person(env, "Gus").await.id + 1;
            assert_eq!(people.get(next).await.unwrap(), None);
            assert_eq!(
                env.queries(0, people.get(next)).await.unwrap(),
                None,
                "the absence is cached"
            );
            let hal = people.insert(&NewPerson { name: "Hal".into() }).await.unwrap();
            assert_eq!(hal.id, next, "keys are handed out in order");
            assert_eq!(env.queries(0, people.get(next)).await.unwrap(), Some(hal));

            let keyed = <Person as autocache::Model>::SQL.keyed_insert.is_some();
            assert_eq!(
                keyed,
                stringify!($db) == "postgres",
                "PostgreSQL's Person locks first"
            );
            assert!(
                <Book as autocache::Model>::SQL.keyed_insert.is_none(),
                "a book joins its author's books"
            );
            if keyed {
                let inserts = u64::from(env.ctx.options().reserved_keys) + 1;
                let before = env.ctx.snapshot();
                for i in 0..inserts {
                    person(env, &format!("Ida {i}")).await;
                }
                let reservations = (env.ctx.snapshot() - before).db_queries - inserts;
                assert!(
                    (1..=2).contains(&reservations),
                    "{reservations} reservations for {inserts} inserts"
                );
            }
        }

        /// PostgreSQL: a key column whose default the table computes without a sequence
        /// cannot be reserved from: inserts run in a transaction and take the database's key,
        /// and read back from the cache as any insert does.
        async fn inserts_without_a_sequence(kind: Kind) {
            if stringify!($db) != "postgres" {
                return;
            }
            let env = env_on::<Db>(kind).await;
            for statement in [
                "ALTER TABLE person ALTER COLUMN id DROP IDENTITY",
                "ALTER TABLE person ALTER COLUMN id SET DEFAULT 1000000 + CAST(floor(random() * 1000000000) AS BIGINT)",
            ] {
                sqlx::query(statement).execute(env.ctx.pool()).await.unwrap();
            }
            let people = PersonRepo::new(&env.ctx);
            // The first insert finds no sequence (its reservation returns no key), the next
            // ones do not ask again.
            for (name, statements) in [("Jo", 2), ("Kai", 1)] {
                let inserted = env
                    .queries(statements, people.insert(&NewPerson { name: name.into() }))
                    .await
                    .unwrap();
                assert!(inserted.id > 1_000_000, "the table's own default: {inserted:?}");
                assert_eq!(
                    env.queries(0, people.get(inserted.id)).await.unwrap(),
                    Some(inserted)
                );
            }
        }

        async fn all_scenarios(kind: Kind) {
            inserts_without_a_sequence(kind).await;
            let env = env_on::<Db>(kind).await;
            inserted_row_reads_from_cache(&env).await;
            deleted_row_reads_absent_from_cache(&env).await;
            updated_row_reads_from_cache(&env).await;
            evicted_row_costs_one_query(&env).await;
            deleted_and_evicted_costs_one_query(&env).await;
            uncached_reads_skip_the_cache(&env).await;
            flush_empties_the_cache(&env).await;
            get_many_batches_misses(&env).await;
            get_many_repeats_ids(&env).await;
            other_backend_model(&env).await;
            writes_send_the_fewest_statements(&env).await;
            an_insert_replaces_a_cached_absence(&env).await;
        }
    };
}

on_every_database!(instance_scenarios);
