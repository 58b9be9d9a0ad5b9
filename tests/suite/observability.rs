//! What an operator sees: per-model stats, and a tracing span on every repository call
//! with the model, the operation, the backend and the hits and misses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use autocache_generated::{BookRepo, NewBook, NewPerson, PersonRepo};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};

use crate::env::{Kind, env};

/// Records the fields of every `autocache` span opened on one thread as `name=value` text.
#[derive(Clone)]
struct Spans {
    texts: Arc<Mutex<Vec<String>>>,
    /// The test's thread: the other tests of the binary run on others.
    thread: ThreadId,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl Spans {
    /// Whether the current thread is the test's.
    fn ours(&self) -> bool {
        std::thread::current().id() == self.thread
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: LayerContext<'_, S>) {
        if attrs.metadata().name() == "autocache" && self.ours() {
            let mut text = String::new();
            attrs.record(&mut Fields(&mut text));
            self.texts.lock().unwrap().push(text);
        }
    }

    fn on_record(&self, _id: &Id, values: &Record<'_>, _ctx: LayerContext<'_, S>) {
        if !self.ours() {
            return;
        }
        let mut text = String::new();
        values.record(&mut Fields(&mut text));
        if let Some(last) = self.texts.lock().unwrap().last_mut() {
            last.push_str(&text);
        }
    }
}

#[tokio::test]
async fn stats_per_model_and_spans_per_call() {
    let env = env(Kind::Memory).await;
    // A global subscriber, not a scoped one: tracing caches whether a span is enabled per
    // call site for the whole process, and a scoped subscriber races with the tests running
    // on other threads (a CI run lost this test's spans so).
    let spans = Spans {
        texts: Arc::default(),
        thread: std::thread::current().id(),
    };
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(spans.clone()))
        .expect("no other test sets a global subscriber");

    let people = PersonRepo::new(&env.ctx);
    let ann = people.insert(&NewPerson { name: "Ann".into() }).await.unwrap();
    let book = BookRepo::new(&env.ctx)
        .insert(&NewBook {
            title: "T".into(),
            author_id: ann.id,
            rank: 1,
        })
        .await
        .unwrap();
    people.get(ann.id).await.unwrap();
    people.evict(ann.id).await.unwrap();
    people.get(ann.id).await.unwrap();

    let models = env.ctx.model_snapshots();
    assert_eq!(
        (models["Person"].hits, models["Person"].misses, models["Person"].fills),
        (1, 1, 2)
    );
    assert_eq!(
        models["Book"].fills, 2,
        "the book's instance key and its author's `books`, refilled after commit"
    );
    assert!(models["Book"].db_queries >= 1);
    let total = env.ctx.snapshot();
    assert_eq!(total.hits, models.values().map(|m| m.hits).sum::<u64>());

    let spans = spans.texts.lock().unwrap().clone();
    assert!(
        spans
            .iter()
            .any(|s| s.contains("model=\"Person\"") && s.contains("op=\"insert\"")),
        "{spans:?}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s.contains("op=\"get_many\"") && s.contains("hits=1") && s.contains("misses=0")),
        "{spans:?}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s.contains("op=\"get_many\"") && s.contains("misses=1")),
        "{spans:?}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s.contains("model=\"Book\"") && s.contains("backend=\"other\"")),
        "{spans:?}"
    );
    let _ = book;
}

#[tokio::test]
async fn counters_through_the_metrics_facade() {
    let env = env(Kind::Memory).await;
    let people = PersonRepo::new(&env.ctx);
    let ann = people.insert(&NewPerson { name: "Ann".into() }).await.unwrap();
    people.get(ann.id).await.unwrap();
    people.get(ann.id).await.unwrap();

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || env.ctx.record_metrics());
    let counters: HashMap<(String, Vec<(String, String)>), u64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let DebugValue::Counter(n) = value else { return None };
            let labels = key.key().labels().map(|l| (l.key().to_owned(), l.value().to_owned()));
            Some(((key.key().name().to_owned(), labels.collect()), n))
        })
        .collect();

    let total = env.ctx.snapshot();
    let person = env.ctx.model_snapshots()["Person"];
    assert!(person.hits >= 2, "{person:?}");
    assert_eq!(counters[&("autocache_hits_total".to_owned(), vec![])], total.hits);
    assert_eq!(
        counters[&("autocache_db_queries_total".to_owned(), vec![])],
        total.db_queries
    );
    let person_label = vec![("model".to_owned(), "Person".to_owned())];
    assert_eq!(
        counters[&("autocache_model_hits_total".to_owned(), person_label.clone())],
        person.hits
    );
    assert_eq!(
        counters[&("autocache_model_fills_total".to_owned(), person_label)],
        person.fills
    );
}
