//! Primary keys reserved from the database's sequences, per model, waiting for the inserts
//! that lock first ([`crate::model::KeyedInsert`]). A context reserves a block of keys at a
//! time (`Options::reserved_keys`), so most such inserts send no reservation; keys a process
//! reserved and never used are gaps in the sequence, as a rolled back insert leaves.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The reserved keys of each model (by name), as key text, in the order they were reserved;
/// `None` for a model whose keys cannot be reserved (its key column has no sequence).
#[derive(Default)]
pub(crate) struct Reserved {
    keys: Mutex<HashMap<&'static str, Option<VecDeque<String>>>>,
}

/// What [`Reserved::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// The next reserved key.
    Key(String),
    /// None left: reserve more.
    Empty,
    /// The model's keys cannot be reserved.
    Unavailable,
}

impl Reserved {
    /// Takes the next reserved key of `model`, if any is left.
    pub(crate) fn take(&self, model: &'static str) -> Taken {
        match self.keys.lock().unwrap_or_else(|e| e.into_inner()).get_mut(model) {
            Some(Some(keys)) => keys.pop_front().map_or(Taken::Empty, Taken::Key),
            Some(None) => Taken::Unavailable,
            None => Taken::Empty,
        }
    }

    /// Adds newly reserved keys of `model`.
    pub(crate) fn add(&self, model: &'static str, keys: impl IntoIterator<Item = String>) {
        let mut reserved = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = reserved.entry(model).or_insert_with(|| Some(VecDeque::new())) {
            queue.extend(keys);
        }
    }

    /// Records that `model`'s keys cannot be reserved.
    pub(crate) fn make_unavailable(&self, model: &'static str) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).insert(model, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_in_order_per_model() {
        let reserved = Reserved::default();
        let key = |text: &str| Taken::Key(text.to_owned());
        assert_eq!(reserved.take("Person"), Taken::Empty);
        reserved.add("Person", ["1".to_owned(), "2".to_owned()]);
        reserved.add("Book", ["7".to_owned()]);
        assert_eq!(reserved.take("Person"), key("1"));
        assert_eq!(reserved.take("Book"), key("7"));
        assert_eq!(reserved.take("Person"), key("2"));
        assert_eq!(reserved.take("Person"), Taken::Empty);
    }

    #[test]
    fn a_model_without_a_sequence_stays_unavailable() {
        let reserved = Reserved::default();
        reserved.make_unavailable("Tag");
        reserved.add("Tag", ["3".to_owned()]);
        assert_eq!(reserved.take("Tag"), Taken::Unavailable);
        assert_eq!(reserved.take("Person"), Taken::Empty);
    }
}
