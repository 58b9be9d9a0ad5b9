//! The stale reads of issue 12, each as a scenario on the cache-breaking schema
//! (`codegen/tests/fixtures/breakers.yaml`): collections of two relations with one
//! `related_name` on different targets keep apart; a SET NULL and a cascade refresh every
//! collection holding the changed rows, not only the deleted parent's; a foreign-key cycle's
//! first rows go in through the repositories. On every database.

macro_rules! cascades {
    ($db:ident) => {
        use crate::differential::$db::breakers::repositories::*;
        use crate::env::{Kind, empty_env};

        pub async fn all_scenarios(kind: Kind) {
            let env = empty_env::<Db>(kind).await;
            let ctx = &env.ctx;
            create_tables(ctx.pool()).await.unwrap();
            let (shops, employees, customers) = (ShopRepo::new(ctx), EmployeeRepo::new(ctx), CustomerRepo::new(ctx));
            let (addresses, clerks, orders, invoices) = (
                AddressRepo::new(ctx),
                ClerkRepo::new(ctx),
                OrderRepo::new(ctx),
                InvoiceRepo::new(ctx),
            );

            // A cycle's first rows: the shop without its manager, the employee, then the shop's
            // manager, in one transaction.
            let tx = ctx.begin().await.unwrap();
            let shop = ShopRepo::new(&tx)
                .insert(&NewShop {
                    name: "one".into(),
                    opens_at: None,
                    manager_id: None,
                })
                .await
                .unwrap();
            let manager = EmployeeRepo::new(&tx)
                .insert(&NewEmployee {
                    shop_id: shop.id,
                    boss_id: None,
                    badge: "m1".into(),
                })
                .await
                .unwrap();
            let shop = ShopRepo::new(&tx)
                .update(&Shop {
                    manager_id: Some(manager.id),
                    ..shop
                })
                .await
                .unwrap()
                .unwrap();
            tx.commit().await.unwrap();
            assert_eq!(shops.get(shop.id).await.unwrap(), Some(shop.clone()));
            assert_eq!(
                employees.managed_shops(manager.id).await.unwrap(),
                vec![shop.clone()]
            );
            let other_shop = shops
                .insert(&NewShop {
                    name: "two".into(),
                    opens_at: None,
                    manager_id: None,
                })
                .await
                .unwrap();

            // One `related_name` (`customers`) on Shop and on Address: ids 1 of both exist, and
            // each collection holds only its own rows.
            let address = addresses
                .insert(&NewAddress {
                    street: "main".into(),
                })
                .await
                .unwrap();
            assert_eq!(address.id, shop.id, "the two owners share an id");
            let at_address = customers
                .insert(&NewCustomer {
                    name: "a".into(),
                    shop_id: other_shop.id,
                    address_id: Some(address.id),
                    referrer_id: None,
                })
                .await
                .unwrap();
            let in_shop = customers
                .insert(&NewCustomer {
                    name: "b".into(),
                    shop_id: shop.id,
                    address_id: None,
                    referrer_id: None,
                })
                .await
                .unwrap();
            assert_eq!(shops.customers(shop.id).await.unwrap(), vec![in_shop.clone()]);
            assert_eq!(
                addresses.customers(address.id).await.unwrap(),
                vec![at_address.clone()]
            );

            // SET NULL: deleting an order empties its invoices' `order_id` in their other owners'
            // collections too (the clerk's and the customer's, both cached first).
            let clerk = clerks.insert(&NewClerk { name: "c".into() }).await.unwrap();
            let placed_on = sqlx::types::chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
            let order = orders
                .insert(&NewOrder {
                    number: 1,
                    placed_on,
                    customer_id: in_shop.id,
                })
                .await
                .unwrap();
            let invoice = invoices
                .insert(&NewInvoice {
                    order_id: Some(order.id),
                    customer_id: in_shop.id,
                    clerk_id: clerk.id,
                    checker_id: None,
                    total: 5,
                })
                .await
                .unwrap();
            assert_eq!(clerks.invoices(clerk.id).await.unwrap(), vec![invoice.clone()]);
            assert_eq!(
                customers.invoices(in_shop.id).await.unwrap(),
                vec![invoice.clone()]
            );
            assert!(orders.delete(order.id).await.unwrap());
            let cleared = Invoice {
                order_id: None,
                ..invoice
            };
            assert_eq!(
                clerks.invoices(clerk.id).await.unwrap(),
                vec![cleared.clone()],
                "clerk's copy"
            );
            assert_eq!(
                customers.invoices(in_shop.id).await.unwrap(),
                vec![cleared.clone()],
                "customer's copy"
            );
            assert_eq!(invoices.get(cleared.id).await.unwrap(), Some(cleared.clone()));

            // CASCADE: deleting the customer deletes its invoices, which leave the clerk's
            // collection too.
            assert!(customers.delete(in_shop.id).await.unwrap());
            assert_eq!(
                clerks.invoices(clerk.id).await.unwrap(),
                vec![],
                "cascaded invoice still listed"
            );
            assert_eq!(invoices.get(cleared.id).await.unwrap(), None);
            assert_eq!(shops.customers(shop.id).await.unwrap(), vec![]);

            // A row pointing at the parent, inserted by a transaction that commits while the
            // parent's delete waits on it (the insert holds the parent row's key lock): the
            // cascade removes it too, so its cached copy must read "does not exist". Then the
            // same inside a transaction that read before it deleted (on MySQL that read would
            // fix the snapshot of a REPEATABLE READ transaction, older than the insert); not on
            // SQLite, whose write transactions do not overlap.
            insert_while_parent_is_deleted(ctx, other_shop.id, clerk.id, false).await;
            if !<Customer as autocache::Model>::SQL.lock_rows.is_empty() {
                insert_while_parent_is_deleted(ctx, other_shop.id, clerk.id, true).await;
            }
        }

        /// Inserts an invoice for a new customer in a transaction that commits 300 ms into the
        /// customer's delete (standalone, or `in_transaction` after a read in it), then checks
        /// that the cascaded invoice reads "does not exist" and left its clerk's collection.
        async fn insert_while_parent_is_deleted(ctx: &autocache::Context<Db>, shop_id: i64, clerk_id: i64, in_transaction: bool) {
            let (customers, invoices) = (CustomerRepo::new(ctx), InvoiceRepo::new(ctx));
            let parent = customers
                .insert(&NewCustomer {
                    name: format!("racing {in_transaction}"),
                    shop_id,
                    address_id: None,
                    referrer_id: None,
                })
                .await
                .unwrap();
            let deleting = match in_transaction {
                true => Some(ctx.begin().await.unwrap()),
                false => None,
            };
            if let Some(deleting) = &deleting {
                let read = CustomerRepo::new(deleting).get(parent.id).await.unwrap();
                assert_eq!(read, Some(parent.clone()));
            }
            let inserting = ctx.begin().await.unwrap();
            let late = InvoiceRepo::new(&inserting)
                .insert(&NewInvoice {
                    order_id: None,
                    customer_id: parent.id,
                    clerk_id,
                    checker_id: None,
                    total: 7,
                })
                .await
                .unwrap();
            let delete = async {
                match deleting {
                    Some(deleting) => {
                        assert!(CustomerRepo::new(&deleting).delete(parent.id).await.unwrap());
                        deleting.commit().await.unwrap();
                    }
                    None => assert!(customers.delete(parent.id).await.unwrap()),
                }
            };
            let commit_later = async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                inserting.commit().await.unwrap();
            };
            tokio::join!(delete, commit_later);
            assert_eq!(
                invoices.get(late.id).await.unwrap(),
                None,
                "a row inserted while its parent's delete waited (in a transaction: {in_transaction}), cascaded, still cached"
            );
            assert_eq!(ClerkRepo::new(ctx).invoices(clerk_id).await.unwrap(), vec![]);
        }
    };
}

on_every_database!(cascades);
