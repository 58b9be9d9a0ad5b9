//! The schema language of issue 13 on real databases, through the shop fixture
//! (`codegen/tests/fixtures/shop.yaml`, generated per dialect for the differential checker):
//! decimal, enum and char values as the database returns them, small integer keys,
//! `unsigned`, lookups on `unique_together` groups kept in step by writes, and bulk writes
//! with ranges, NULL tests and conjunctions that touch exactly the matching rows' keys, and a
//! composite primary key (`Stock`) read and written by its key struct, and a through model
//! (`Supply`) whose rows are a many-to-many relation's pairs. On
//! SQLite, PostgreSQL and MariaDB, with the in-process cache and memcached.

/// The scenarios, on the shop schema generated for database `$db`.
macro_rules! schema_language_scenarios {
    ($db:ident) => {
        use autocache::sqlx::types::Decimal;

        use crate::differential::$db::shop::create_tables;
        use crate::differential::$db::shop::repositories::Db;
        use crate::differential::$db::shop::repositories::{
            Country, CountryRepo, Customer, CustomerChanges, CustomerFilter, CustomerRepo, CustomerTier, NewCountry,
            NewCustomer, NewProduct, NewPurchase, NewStock, NewStore, NewSupplier, NewSupply, Product, ProductChanges,
            ProductFilter, ProductRating, ProductRepo, PurchaseChanges, PurchaseFilter, PurchaseRepo, PurchaseStatus,
            Stock, StockChanges, StockFilter, StockGrade, StockKey, StockRepo, Store, StoreRepo, Supplier,
            SupplierRepo, Supply, SupplyChanges, SupplyFilter, SupplyKey, SupplyRepo,
        };
        use crate::env::{Kind, empty_env};

        type Env = crate::env::Env<Db>;

        fn dec(mantissa: i64, scale: u32) -> Decimal {
            Decimal::new(mantissa, scale)
        }

        async fn country(env: &Env, id: i16, code: &str) -> Country {
            CountryRepo::new(&env.ctx)
                .insert(&NewCountry {
                    id,
                    code: code.into(),
                    name: format!("country {code}"),
                })
                .await
                .unwrap()
        }

        async fn store(env: &Env, country: &Country) -> Store {
            StoreRepo::new(&env.ctx)
                .insert(&NewStore {
                    name: "main".into(),
                    country_id: country.id,
                })
                .await
                .unwrap()
        }

        /// A customer of `store` with the schema's defaults.
        async fn customer(env: &Env, store: &Store, email: &str) -> Customer {
            CustomerRepo::new(&env.ctx)
                .insert(&NewCustomer {
                    store_id: store.id,
                    email: email.into(),
                    last_name: "Ann".into(),
                    tier: None,
                    country_id: None,
                    credit: None,
                })
                .await
                .unwrap()
        }

        async fn product(env: &Env, sku: &str, price: Option<Decimal>, rating: Option<ProductRating>) -> Product {
            ProductRepo::new(&env.ctx)
                .insert(&NewProduct {
                    sku: sku.into(),
                    price,
                    rating,
                    stock: None,
                    weight: None,
                })
                .await
                .unwrap()
        }

        /// Values come back (and are cached) as the database holds them: decimals at their
        /// scale, the enum's variant, `char` without padding, defaults filled in; a small
        /// integer primary key works as any other.
        async fn values_are_what_the_database_holds(env: &Env) {
            let norway = country(env, 47, "no").await;
            assert_eq!(norway.id, 47i16);
            let countries = CountryRepo::new(&env.ctx);
            assert_eq!(countries.get(47).await.unwrap(), Some(norway.clone()));
            // Trailing spaces are not significant in a `char` value.
            assert_eq!(countries.get_by_code("no  ").await.unwrap(), Some(norway.clone()));

            let products = ProductRepo::new(&env.ctx);
            let cheap = product(env, "A1", Some(dec(15, 1)), Some(ProductRating::Pg13)).await;
            assert_eq!(cheap.price.to_string(), "1.50", "bound at the column's scale");
            assert_eq!(cheap.rating, Some(ProductRating::Pg13));
            assert_eq!(ProductRating::from_value("PG-13"), Some(ProductRating::Pg13));
            let default = product(env, "A2", None, None).await;
            assert_eq!(
                default.price.to_string(),
                "10.00",
                "the schema's default, at the column's scale"
            );
            let changes = ProductChanges {
                stock: Some(1),
                ..Default::default()
            };
            let matched = products
                .update_where(&ProductFilter::PriceEq(dec(10, 0)), &changes)
                .await
                .unwrap();
            assert_eq!(matched, 1, "the default is stored as the value the filter binds");
            let default = products.get(default.id).await.unwrap().unwrap();
            assert_eq!((default.stock, default.rating), (1, None));
            // Read back through the cache and, once evicted, from the database.
            assert_eq!(products.get(cheap.id).await.unwrap(), Some(cheap.clone()));
            products.evict(cheap.id).await.unwrap();
            let read = products.get(cheap.id).await.unwrap().unwrap();
            assert_eq!(read.price.to_string(), "1.50");
            assert_eq!(read, cheap);

            // A unique decimal: `0.5` and `0.500` are one value, one key.
            let weighed = Product {
                weight: Some(dec(5, 1)),
                ..cheap.clone()
            };
            let weighed = products.update(&weighed).await.unwrap().unwrap();
            assert_eq!(weighed.weight.map(|w| w.to_string()).as_deref(), Some("0.500"));
            let found = env.queries(0, products.get_by_weight(dec(500, 3))).await.unwrap();
            assert_eq!(found, Some(weighed.clone()), "written through by the update");
            let lighter = products
                .update(&Product {
                    weight: Some(dec(25, 2)),
                    ..weighed
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                products.get_by_weight(dec(5, 1)).await.unwrap(),
                None,
                "old key emptied"
            );
            assert_eq!(products.get_by_weight(dec(250, 3)).await.unwrap(), Some(lighter));

            // `unsigned` and the enum's values are enforced by the database.
            let negative = products
                .insert(&NewProduct {
                    sku: "A3".into(),
                    price: None,
                    rating: None,
                    stock: Some(-1),
                    weight: None,
                })
                .await;
            assert!(negative.is_err(), "a negative unsigned value is refused");
            let store = store(env, &norway).await;
            let customer = customer(env, &store, "ann@example.com").await;
            assert_eq!(customer.tier, CustomerTier::Bronze, "the enum's default");
        }

        /// `get_by_<a>_and_<b>` of a `unique_together` group: written through by inserts and
        /// updates, emptied for old values, "does not exist" cached and replaced.
        async fn unique_together_lookups_follow_writes(env: &Env) {
            let norway = country(env, 1, "no").await;
            let store = store(env, &norway).await;
            let customers = CustomerRepo::new(&env.ctx);
            assert_eq!(
                customers
                    .get_by_store_id_and_email(store.id, "ann@x")
                    .await
                    .unwrap(),
                None
            );
            let ann = customers
                .insert(&NewCustomer {
                    store_id: store.id,
                    email: "ann@x".into(),
                    last_name: "Ann".into(),
                    tier: Some(CustomerTier::Gold),
                    country_id: Some(norway.id),
                    credit: Some(dec(1, 0)),
                })
                .await
                .unwrap();
            let found = env
                .queries(0, customers.get_by_store_id_and_email(store.id, "ann@x"))
                .await;
            assert_eq!(
                found.unwrap(),
                Some(ann.clone()),
                "the cached absence was replaced"
            );
            let renamed = customers
                .update(&Customer {
                    email: "ann@y".into(),
                    ..ann.clone()
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                customers
                    .get_by_store_id_and_email(store.id, "ann@x")
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(
                env.queries(0, customers.get_by_store_id_and_email(store.id, "ann@y"))
                    .await
                    .unwrap(),
                Some(renamed.clone())
            );
            // A bulk update of the group's column moves the key too.
            let changes = CustomerChanges {
                email: Some("ann@z".into()),
                ..Default::default()
            };
            customers
                .update_where(&CustomerFilter::IdEq(ann.id), &changes)
                .await
                .unwrap();
            assert_eq!(
                customers
                    .get_by_store_id_and_email(store.id, "ann@y")
                    .await
                    .unwrap(),
                None
            );
            let moved = customers
                .get_by_store_id_and_email(store.id, "ann@z")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(moved.email, "ann@z");
            // Values with the key's separator stay apart.
            let purchases = PurchaseRepo::new(&env.ctx);
            let purchase = purchases
                .insert(&NewPurchase {
                    customer_id: ann.id,
                    number: 7,
                    status: Some(PurchaseStatus::Shipped),
                    code: Some("a,b".into()),
                    total: dec(1000, 2),
                    placed: None,
                    shipped: None,
                })
                .await
                .unwrap();
            assert_eq!(
                purchases.get_by_customer_id_and_number(ann.id, 7).await.unwrap(),
                Some(purchase.clone())
            );
            assert_eq!(
                purchases
                    .get_by_status_and_code(PurchaseStatus::Shipped, "a,b")
                    .await
                    .unwrap(),
                Some(purchase)
            );
            assert_eq!(
                purchases
                    .get_by_status_and_code(PurchaseStatus::Open, "a,b")
                    .await
                    .unwrap(),
                None
            );
            customers.delete(ann.id).await.unwrap();
            assert_eq!(
                customers
                    .get_by_store_id_and_email(store.id, "ann@z")
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(
                purchases.get_by_customer_id_and_number(ann.id, 7).await.unwrap(),
                None,
                "cascaded"
            );
        }

        /// Ranges, NULL tests and conjunctions select exactly the rows they match; those rows'
        /// keys are written through and the others' are left alone (still cached).
        async fn range_filters_touch_exactly_the_matching_rows(env: &Env) {
            let products = ProductRepo::new(&env.ctx);
            let one = product(env, "P1", Some(dec(100, 2)), None).await;
            let two = product(env, "P2", Some(dec(200, 2)), Some(ProductRating::G)).await;
            let ten = product(env, "P10", Some(dec(1000, 2)), None).await;
            for p in [&one, &two, &ten] {
                products.get(p.id).await.unwrap();
            }
            // `10.00 < 2.50` as text, not as numbers: SQLite compares the decimal text as a number.
            let changes = ProductChanges {
                stock: Some(5),
                ..Default::default()
            };
            let cheap = ProductFilter::PriceLt(dec(250, 2));
            assert_eq!(products.update_where(&cheap, &changes).await.unwrap(), 2);
            let stocks = env
                .queries(0, async {
                    let mut stocks = Vec::new();
                    for p in [&one, &two, &ten] {
                        stocks.push(products.get(p.id).await.unwrap().unwrap().stock);
                    }
                    stocks
                })
                .await;
            assert_eq!(
                stocks,
                vec![5, 5, 0],
                "matched rows written through, the other untouched"
            );
            // A conjunction: priced at least 1.50 and without a rating.
            let both = ProductFilter::All(vec![
                ProductFilter::PriceGe(dec(15, 1)),
                ProductFilter::RatingIsNull,
            ]);
            let changes = ProductChanges {
                stock: Some(9),
                ..Default::default()
            };
            assert_eq!(products.update_where(&both, &changes).await.unwrap(), 1);
            assert_eq!(products.get(ten.id).await.unwrap().unwrap().stock, 9);
            assert_eq!(products.get(two.id).await.unwrap().unwrap().stock, 5);
            // A disjunction, and an empty conjunction (every row).
            let either = ProductFilter::Any(vec![
                ProductFilter::SkuEq("P1".into()),
                ProductFilter::RatingNotNull,
            ]);
            assert_eq!(products.delete_where(&either).await.unwrap(), 2);
            assert_eq!(products.get(one.id).await.unwrap(), None);
            assert_eq!(products.get(two.id).await.unwrap(), None);
            let changes = ProductChanges {
                price: Some(dec(1, 0)),
                ..Default::default()
            };
            assert_eq!(
                products
                    .update_where(&ProductFilter::All(vec![]), &changes)
                    .await
                    .unwrap(),
                1
            );
            assert_eq!(
                products.get(ten.id).await.unwrap().unwrap().price.to_string(),
                "1.00"
            );
        }

        /// `auto_now_add`, `auto_now` and `default: now`: the database reads its clock, and
        /// what is cached is the row the database returned, never the values the program sent.
        async fn database_set_times_are_cached_as_returned(env: &Env) {
            use autocache::sqlx::types::chrono::{TimeZone, Utc};
            // A little earlier than now: the database's clock is the machine's.
            let start = Utc.timestamp_opt(Utc::now().timestamp() - 5, 0).unwrap();
            let norway = country(env, 2, "no").await;
            let store = store(env, &norway).await;
            let customers = CustomerRepo::new(&env.ctx);
            let ann = customer(env, &store, "ann@x").await;
            assert!(
                ann.created >= start && ann.last_update >= start,
                "set by the database: {ann:?}"
            );
            assert_eq!(
                env.queries(0, customers.get(ann.id)).await.unwrap(),
                Some(ann.clone())
            );
            // The program sends other times; the database keeps `created` and sets `last_update`.
            let long_ago = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
            let sent = Customer {
                last_name: "Smith".into(),
                created: long_ago,
                last_update: long_ago,
                ..ann.clone()
            };
            let returned = customers.update(&sent).await.unwrap().unwrap();
            assert_eq!(
                returned.created, ann.created,
                "auto_now_add is never written again"
            );
            assert!(
                returned.last_update >= ann.last_update,
                "auto_now is set on update"
            );
            assert_eq!(returned.last_name, "Smith");
            let cached = env.queries(0, customers.get(ann.id)).await.unwrap().unwrap();
            assert_eq!(
                cached, returned,
                "the cache holds the returned row, not the sent one"
            );
            customers.evict(ann.id).await.unwrap();
            assert_eq!(customers.get(ann.id).await.unwrap(), Some(returned.clone()));
            // A bulk update sets `auto_now` too.
            let changes = CustomerChanges {
                last_name: Some("Jones".into()),
                ..Default::default()
            };
            customers
                .update_where(&CustomerFilter::IdEq(ann.id), &changes)
                .await
                .unwrap();
            let bulk = env.queries(0, customers.get(ann.id)).await.unwrap().unwrap();
            assert!(bulk.last_update >= returned.last_update && bulk.created == ann.created);
            customers.evict(ann.id).await.unwrap();
            assert_eq!(customers.get(ann.id).await.unwrap(), Some(bulk));
            // `default: now` when no value is given; a given value is kept.
            let purchases = PurchaseRepo::new(&env.ctx);
            let new = |number: i16, placed| NewPurchase {
                customer_id: ann.id,
                number,
                status: None,
                code: None,
                total: dec(1, 0),
                placed,
                shipped: None,
            };
            let now = purchases.insert(&new(1, None)).await.unwrap();
            assert!(now.placed >= start);
            let then = purchases.insert(&new(2, Some(long_ago))).await.unwrap();
            assert_eq!(then.placed, long_ago);
            // Ordered by `-placed`: the database's time and the program's compare as times.
            assert_eq!(
                customers.purchases(ann.id).await.unwrap(),
                vec![now.clone(), then.clone()]
            );
            let old = purchases
                .update_where(
                    &PurchaseFilter::All(vec![
                        PurchaseFilter::ShippedIsNull,
                        PurchaseFilter::PlacedLt(start),
                    ]),
                    &PurchaseChanges {
                        status: Some(PurchaseStatus::Cancelled),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(old, 1, "only the purchase placed long ago");
            assert_eq!(
                purchases.get(then.id).await.unwrap().unwrap().status,
                PurchaseStatus::Cancelled
            );
            assert_eq!(
                purchases.get(now.id).await.unwrap().unwrap().status,
                PurchaseStatus::Open
            );
        }

        /// `find_by_<…>` of an index (`index: true`, `indexes:`): the rows holding the values,
        /// in the model's ordering, refilled after every write that adds, moves, re-sorts or
        /// removes one of them, so the next read costs no query.
        async fn index_lookups_follow_writes(env: &Env) {
            let norway = country(env, 3, "no").await;
            let store = store(env, &norway).await;
            let customers = CustomerRepo::new(&env.ctx);
            assert_eq!(customers.find_by_last_name("Ann").await.unwrap(), vec![]);
            let ann = customer(env, &store, "ann@x").await;
            let bob = customer(env, &store, "bob@x").await;
            let both = env.queries(0, customers.find_by_last_name("Ann")).await.unwrap();
            assert_eq!(
                both,
                vec![ann.clone(), bob.clone()],
                "refilled by the inserts, in order"
            );
            // Ordered by tier, then last name: a new tier re-sorts.
            let gold = Customer {
                tier: CustomerTier::Gold,
                ..ann.clone()
            };
            let gold = customers.update(&gold).await.unwrap().unwrap();
            let sorted = env.queries(0, customers.find_by_last_name("Ann")).await.unwrap();
            assert_eq!(sorted, vec![bob.clone(), gold.clone()]);
            // A move to another value refills both.
            let moved = customers
                .update(&Customer {
                    last_name: "Smith".into(),
                    ..bob.clone()
                })
                .await
                .unwrap()
                .unwrap();
            let (ann_now, smith) = env
                .queries(0, async {
                    (
                        customers.find_by_last_name("Ann").await.unwrap(),
                        customers.find_by_last_name("Smith").await.unwrap(),
                    )
                })
                .await;
            assert_eq!((ann_now, smith), (vec![gold.clone()], vec![moved.clone()]));
            // A composite index with a foreign key, kept in step by a bulk update.
            let purchases = PurchaseRepo::new(&env.ctx);
            let open = |number: i16| NewPurchase {
                customer_id: ann.id,
                number,
                status: None,
                code: None,
                total: dec(number.into(), 0),
                placed: None,
                shipped: None,
            };
            let first = purchases.insert(&open(1)).await.unwrap();
            let second = purchases.insert(&open(2)).await.unwrap();
            let opened = purchases
                .find_by_customer_id_and_status(ann.id, PurchaseStatus::Open)
                .await
                .unwrap();
            assert_eq!(opened.len(), 2);
            let changes = PurchaseChanges {
                status: Some(PurchaseStatus::Shipped),
                ..Default::default()
            };
            let shipped = purchases
                .update_where(&PurchaseFilter::IdEq(first.id), &changes)
                .await
                .unwrap();
            assert_eq!(shipped, 1);
            let (opened, shipped) = env
                .queries(0, async {
                    (
                        purchases
                            .find_by_customer_id_and_status(ann.id, PurchaseStatus::Open)
                            .await
                            .unwrap(),
                        purchases
                            .find_by_customer_id_and_status(ann.id, PurchaseStatus::Shipped)
                            .await
                            .unwrap(),
                    )
                })
                .await;
            assert_eq!(opened.iter().map(|p| p.id).collect::<Vec<_>>(), vec![second.id]);
            assert_eq!(shipped.iter().map(|p| p.id).collect::<Vec<_>>(), vec![first.id]);
            // A decimal index: `2` and `2.00` are one value.
            assert_eq!(purchases.find_by_total(dec(200, 2)).await.unwrap().len(), 1);
            // Deletes (a cascade included) take the rows out.
            customers.delete(ann.id).await.unwrap();
            assert_eq!(
                env.queries(0, customers.find_by_last_name("Ann")).await.unwrap(),
                vec![]
            );
            let after = purchases
                .find_by_customer_id_and_status(ann.id, PurchaseStatus::Open)
                .await
                .unwrap();
            assert_eq!(after, vec![], "the cascaded purchases left the index lookup");
        }

        /// A composite primary key (`Stock`: store, product and grade): rows are read, updated
        /// and deleted by their `StockKey`, `get_many` answers several keys in one round trip,
        /// and every write keeps the instance keys, the unique lookup and the collections of
        /// both foreign keys in the key exactly in step, bulk writes and a cascade included.
        async fn composite_keys_follow_writes(env: &Env) {
            let norway = country(env, 3, "no").await;
            let (north, south) = (store(env, &norway).await, store(env, &norway).await);
            let apple = product(env, "apple", None, None).await;
            let pear = product(env, "pear", None, None).await;
            let stocks = StockRepo::new(&env.ctx);
            let (stores, products) = (StoreRepo::new(&env.ctx), ProductRepo::new(&env.ctx));
            let key = |store: &Store, product: &Product, grade| StockKey {
                store_id: store.id,
                product_id: product.id,
                grade,
            };
            let new = |store: &Store, product: &Product, grade, quantity, bin: Option<&str>| NewStock {
                store_id: store.id,
                product_id: product.id,
                grade,
                quantity,
                bin: bin.map(str::to_owned),
            };
            let a = stocks
                .insert(&new(&north, &apple, StockGrade::New, Some(5), Some("A1")))
                .await
                .unwrap();
            let b = stocks
                .insert(&new(&north, &apple, StockGrade::Used, Some(2), None))
                .await
                .unwrap();
            let c = stocks
                .insert(&new(&south, &apple, StockGrade::New, Some(9), Some("B1")))
                .await
                .unwrap();
            let d = stocks
                .insert(&new(&north, &pear, StockGrade::New, None, None))
                .await
                .unwrap();
            assert_eq!(d.quantity, 0, "the default, as the database returned it");
            let (ka, kb, kc, kd) = (
                key(&north, &apple, StockGrade::New),
                key(&north, &apple, StockGrade::Used),
                key(&south, &apple, StockGrade::New),
                key(&north, &pear, StockGrade::New),
            );
            assert_eq!(autocache::Model::id(&a), ka);
            assert!(
                stocks
                    .insert(&new(&north, &apple, StockGrade::New, Some(1), None))
                    .await
                    .is_err(),
                "the same key twice"
            );
            // Inserts wrote the rows through: reads by key cost no query.
            assert_eq!(
                env.queries(0, stocks.get(ka.clone())).await.unwrap(),
                Some(a.clone())
            );
            let missing = key(&south, &pear, StockGrade::Used);
            let many = [ka.clone(), kb.clone(), missing.clone(), ka.clone(), kc.clone()];
            let expected = vec![
                Some(a.clone()),
                Some(b.clone()),
                None,
                Some(a.clone()),
                Some(c.clone()),
            ];
            assert_eq!(env.queries(1, stocks.get_many(&many)).await.unwrap(), expected);
            assert_eq!(
                env.queries(0, stocks.get_many(&many)).await.unwrap(),
                expected,
                "the absence is cached too"
            );
            // The collections of both foreign keys in the key were refilled after commit.
            assert_eq!(
                env.queries(0, stores.stock(north.id)).await.unwrap(),
                vec![a.clone(), b.clone(), d.clone()]
            );
            assert_eq!(
                env.queries(0, products.stocked(apple.id)).await.unwrap(),
                vec![c.clone(), a.clone(), b.clone()]
            );
            assert_eq!(stocks.get_by_bin("A1").await.unwrap(), Some(a.clone()));
            // An update by key: the row, its unique keys and its owners' collections follow.
            let a = stocks
                .update(&Stock {
                    quantity: 1,
                    bin: Some("A2".into()),
                    ..a
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                env.queries(0, stocks.get(ka.clone())).await.unwrap(),
                Some(a.clone())
            );
            assert_eq!(
                env.queries(0, stores.stock(north.id)).await.unwrap(),
                vec![b.clone(), a.clone(), d.clone()],
                "re-sorted by quantity"
            );
            assert_eq!(stocks.get_by_bin("A1").await.unwrap(), None);
            assert_eq!(stocks.get_by_bin("A2").await.unwrap(), Some(a.clone()));
            let gone = Stock {
                product_id: pear.id,
                grade: StockGrade::Used,
                ..a.clone()
            };
            assert_eq!(stocks.update(&gone).await.unwrap(), None, "no row has that key");
            // A bulk update touches exactly the matching rows' keys.
            let north_new = StockFilter::All(vec![
                StockFilter::StoreIdEq(north.id),
                StockFilter::GradeEq(StockGrade::New),
            ]);
            let changes = StockChanges {
                quantity: Some(7),
                ..Default::default()
            };
            assert_eq!(stocks.update_where(&north_new, &changes).await.unwrap(), 2);
            let (a, d) = (Stock { quantity: 7, ..a }, Stock { quantity: 7, ..d });
            assert_eq!(
                env.queries(0, stocks.get_many(&[ka.clone(), kb.clone(), kd.clone()]))
                    .await
                    .unwrap(),
                vec![Some(a.clone()), Some(b.clone()), Some(d.clone())]
            );
            assert_eq!(
                env.queries(0, products.stocked(pear.id)).await.unwrap(),
                vec![d.clone()]
            );
            // Deletes by key, one and in bulk.
            assert!(stocks.delete(kb.clone()).await.unwrap());
            assert!(!stocks.delete(kb.clone()).await.unwrap(), "already deleted");
            assert_eq!(env.queries(0, stocks.get(kb.clone())).await.unwrap(), None);
            assert_eq!(
                env.queries(0, stores.stock(north.id)).await.unwrap(),
                vec![a.clone(), d.clone()]
            );
            let south_new = StockFilter::All(vec![
                StockFilter::StoreIdEq(south.id),
                StockFilter::GradeEq(StockGrade::New),
            ]);
            assert_eq!(stocks.delete_where(&south_new).await.unwrap(), 1);
            assert_eq!(stocks.get(kc).await.unwrap(), None);
            assert_eq!(stocks.get_by_bin("B1").await.unwrap(), None);
            assert_eq!(
                env.queries(0, products.stocked(apple.id)).await.unwrap(),
                vec![a.clone()]
            );
            // Deleting a product cascades to its stock, by key.
            assert!(products.delete(pear.id).await.unwrap());
            assert_eq!(stocks.get(kd).await.unwrap(), None);
            assert_eq!(stores.stock(north.id).await.unwrap(), vec![a.clone()]);
            // An eviction costs one query, and nothing else.
            stocks.evict(ka.clone()).await.unwrap();
            assert_eq!(env.queries(1, stocks.get(ka)).await.unwrap(), Some(a));
        }

        /// Every read of a supplier's pairs, from the cache and from the database: both sides'
        /// many-to-many collections, both foreign keys' `Supply` collections and each pair's
        /// row. The cached reads must equal the database's (never stale); returns the pairs'
        /// products.
        async fn pairs_as_read(env: &Env, supplier: &Supplier, products: &[&Product]) -> Vec<Product> {
            let fresh = env.ctx.uncached();
            let (cached, suppliers) = (SupplierRepo::new(&env.ctx), SupplierRepo::new(&fresh));
            let paired = cached.products(supplier.id).await.unwrap();
            assert_eq!(
                paired,
                suppliers.products(supplier.id).await.unwrap(),
                "stale products"
            );
            assert_eq!(
                cached.supplies(supplier.id).await.unwrap(),
                suppliers.supplies(supplier.id).await.unwrap(),
                "stale supplies of the supplier"
            );
            for product in products {
                let (cached, products) = (ProductRepo::new(&env.ctx), ProductRepo::new(&fresh));
                assert_eq!(
                    cached.suppliers(product.id).await.unwrap(),
                    products.suppliers(product.id).await.unwrap(),
                    "stale suppliers of {}",
                    product.sku
                );
                assert_eq!(
                    cached.supplies(product.id).await.unwrap(),
                    products.supplies(product.id).await.unwrap(),
                    "stale supplies of {}",
                    product.sku
                );
                let key = SupplyKey {
                    product_id: product.id,
                    supplier_id: supplier.id,
                };
                assert_eq!(
                    SupplyRepo::new(&env.ctx).get(key.clone()).await.unwrap(),
                    SupplyRepo::new(&fresh).get(key).await.unwrap(),
                    "stale pair row ({})",
                    product.sku
                );
            }
            paired
        }

        /// A through model (`Supply`, the pairs of `Supplier.products`, with columns of its
        /// own): pairs written either way, by the many-to-many writers on either side or as
        /// `Supply` rows (insert, update, delete, bulk, cascade), are read right after on
        /// both sides, as rows and as the foreign keys' collections, equal to the database's,
        /// and then from the cache.
        async fn through_model_pairs_follow_writes(env: &Env) {
            let (suppliers, products, supplies) = (
                SupplierRepo::new(&env.ctx),
                ProductRepo::new(&env.ctx),
                SupplyRepo::new(&env.ctx),
            );
            let acme = suppliers
                .insert(&NewSupplier { name: "acme".into() })
                .await
                .unwrap();
            let apple = product(env, "apple", None, None).await;
            let pear = product(env, "pear", None, None).await;
            let both = [&apple, &pear];
            let key = |product: &Product| SupplyKey {
                product_id: product.id,
                supplier_id: acme.id,
            };
            let sku = |paired: Vec<Product>| paired.into_iter().map(|p| p.sku).collect::<Vec<_>>();
            // Every key is cached empty ("does not exist" for the pairs' rows) first.
            assert!(pairs_as_read(env, &acme, &both).await.is_empty());
            assert_eq!(env.queries(0, supplies.get(key(&apple))).await.unwrap(), None);
            // The many-to-many writers insert `Supply` rows with the database's values.
            suppliers
                .add_products(acme.id, &[apple.id, pear.id])
                .await
                .unwrap();
            assert_eq!(
                env.queries(0, products.suppliers(apple.id)).await.unwrap(),
                vec![acme.clone()],
                "refilled after commit"
            );
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["apple", "pear"]);
            let apple_pair = supplies
                .get(key(&apple))
                .await
                .unwrap()
                .expect("inserted by add_products");
            assert_eq!(apple_pair.cost, None);
            assert_eq!(
                env.queries(0, supplies.get(key(&apple))).await.unwrap(),
                Some(apple_pair.clone())
            );
            // The pair's own column, written as a row.
            let apple_pair = supplies
                .update(&Supply {
                    cost: Some(dec(150, 2)),
                    ..apple_pair
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                env.queries(0, supplies.get(key(&apple))).await.unwrap(),
                Some(apple_pair.clone())
            );
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["apple", "pear"]);
            // A pair deleted as a row leaves both sides.
            assert!(supplies.delete(key(&pear)).await.unwrap());
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["apple"]);
            assert_eq!(
                env.queries(0, suppliers.products(acme.id)).await.unwrap(),
                vec![apple.clone()]
            );
            assert_eq!(env.queries(0, products.suppliers(pear.id)).await.unwrap(), vec![]);
            // A pair inserted as a row joins both sides.
            let pear_pair = supplies
                .insert(&NewSupply {
                    supplier_id: acme.id,
                    product_id: pear.id,
                    cost: Some(dec(99, 2)),
                })
                .await
                .unwrap();
            assert_eq!(pear_pair.cost, Some(dec(99, 2)));
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["apple", "pear"]);
            assert_eq!(
                env.queries(0, products.suppliers(pear.id)).await.unwrap(),
                vec![acme.clone()]
            );
            // Removed from the other side: the row is gone, the cached row with it.
            products.remove_suppliers(pear.id, &[acme.id]).await.unwrap();
            assert_eq!(supplies.get(key(&pear)).await.unwrap(), None);
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["apple"]);
            assert!(!supplies.delete(key(&pear)).await.unwrap(), "already deleted");
            // Set and clear: the rows follow exactly.
            suppliers.set_products(acme.id, &[pear.id]).await.unwrap();
            assert_eq!(supplies.get(key(&apple)).await.unwrap(), None);
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["pear"]);
            products.set_suppliers(apple.id, &[acme.id]).await.unwrap();
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["apple", "pear"]);
            // Bulk writes of the rows.
            let changes = SupplyChanges {
                cost: Some(Some(dec(7, 0))),
            };
            let of_acme = SupplyFilter::SupplierIdEq(acme.id);
            assert_eq!(supplies.update_where(&of_acme, &changes).await.unwrap(), 2);
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["apple", "pear"]);
            assert_eq!(
                env.queries(0, supplies.get(key(&pear)))
                    .await
                    .unwrap()
                    .map(|p| p.cost),
                Some(Some(dec(700, 2)))
            );
            assert_eq!(
                supplies
                    .delete_where(&SupplyFilter::ProductIdEq(apple.id))
                    .await
                    .unwrap(),
                1
            );
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["pear"]);
            suppliers.clear_products(acme.id).await.unwrap();
            assert!(pairs_as_read(env, &acme, &both).await.is_empty());
            // Cascades: deleting either side deletes its pairs' rows.
            suppliers
                .set_products(acme.id, &[apple.id, pear.id])
                .await
                .unwrap();
            assert_eq!(sku(pairs_as_read(env, &acme, &both).await), ["apple", "pear"]);
            assert!(products.delete(pear.id).await.unwrap());
            assert_eq!(supplies.get(key(&pear)).await.unwrap(), None);
            assert_eq!(sku(pairs_as_read(env, &acme, &[&apple]).await), ["apple"]);
            assert!(suppliers.delete(acme.id).await.unwrap());
            assert_eq!(supplies.get(key(&apple)).await.unwrap(), None);
            assert_eq!(products.suppliers(apple.id).await.unwrap(), vec![]);
            assert_eq!(products.supplies(apple.id).await.unwrap(), vec![]);
            assert_eq!(
                products.supplies(apple.id).await.unwrap(),
                ProductRepo::new(&env.ctx.uncached())
                    .supplies(apple.id)
                    .await
                    .unwrap()
            );
        }

        async fn all_scenarios(kind: Kind) {
            type Scenario = for<'a> fn(&'a Env) -> std::pin::Pin<Box<dyn Future<Output = ()> + 'a>>;
            let scenarios: [(&str, Scenario); 7] = [
                ("composite_keys", |env| {
                    Box::pin(composite_keys_follow_writes(env))
                }),
                ("through_model", |env| {
                    Box::pin(through_model_pairs_follow_writes(env))
                }),
                ("indexes", |env| Box::pin(index_lookups_follow_writes(env))),
                ("times", |env| {
                    Box::pin(database_set_times_are_cached_as_returned(env))
                }),
                ("values", |env| Box::pin(values_are_what_the_database_holds(env))),
                ("unique_together", |env| {
                    Box::pin(unique_together_lookups_follow_writes(env))
                }),
                ("ranges", |env| {
                    Box::pin(range_filters_touch_exactly_the_matching_rows(env))
                }),
            ];
            for (name, scenario) in scenarios {
                let env = empty_env::<Db>(kind).await;
                create_tables(env.ctx.pool())
                    .await
                    .unwrap_or_else(|error| panic!("the shop DDL ({name}): {error}"));
                scenario(&env).await;
            }
        }
    };
}

pub mod sqlite {
    schema_language_scenarios!(sqlite);
    backend_tests!(all_scenarios: memory => Memory, memcached => MemcachedOne);
}

pub mod postgres {
    schema_language_scenarios!(postgres);
    backend_tests!(all_scenarios: memory => Memory, memcached => MemcachedOne);
}

pub mod mysql {
    schema_language_scenarios!(mysql);
    backend_tests!(all_scenarios: memory => Memory, memcached => MemcachedOne);
}
