//! Named backends, as in the seed's multicache: Person keys land on the `default` servers and
//! Book keys on the `other` servers — checked by asking the memcached servers themselves.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use autocache::{Context, Options};
use autocache_generated::{Book, BookRepo, NewBook, NewPerson, Person, PersonRepo};
use autocache_testkit::memcached::{self, Memcached};

use crate::env::{database, unique_name};

/// Whether the memcached server at `addr` holds `key` (meta get, no value).
fn holds(addr: &str, key: &str) -> bool {
    let mut stream = TcpStream::connect(addr).expect("connect memcached");
    write!(stream, "mg {key}\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.starts_with("HD")
}

#[tokio::test]
async fn models_use_their_named_backends() {
    let default = Memcached::start();
    let other = Memcached::start();
    let (pool, _path) = database().await;
    let options = Options {
        key_namespace: format!("{}:", unique_name("mc")),
        ..Options::default()
    };
    let ctx = Context::builder(pool)
        .options(options)
        .backend_url("default", &memcached::url(&[&default]))
        .await
        .unwrap()
        .backend_url("other", &memcached::url(&[&other]))
        .await
        .unwrap()
        .build();
    let ann = PersonRepo::new(&ctx)
        .insert(&NewPerson { name: "Ann".into() })
        .await
        .unwrap();
    let book = BookRepo::new(&ctx)
        .insert(&NewBook {
            title: "Emma".into(),
            author_id: ann.id,
            rank: 1,
        })
        .await
        .unwrap();
    let person_key = autocache::repo::primary_key::<Person>(&ctx, &ann.id);
    let book_key = autocache::repo::primary_key::<Book>(&ctx, &book.id);
    assert!(holds(&default.addr(), &person_key) && !holds(&other.addr(), &person_key));
    assert!(holds(&other.addr(), &book_key) && !holds(&default.addr(), &book_key));
}
