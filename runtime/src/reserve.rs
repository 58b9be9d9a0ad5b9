//! Primary keys reserved from the database's sequences, per model, waiting for the inserts
//! that lock first ([`crate::model::KeyedInsert`]). A context reserves a block of keys at a
//! time (`Options::reserved_keys`), so most such inserts send no reservation; keys a process
//! reserved and never used are gaps in the sequence, as a rolled back insert leaves.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The reserved keys of each model (by name), as key text, in the order they were reserved.
#[derive(Default)]
pub(crate) struct Reserved {
    keys: Mutex<HashMap<&'static str, VecDeque<String>>>,
}

impl Reserved {
    /// Takes the next reserved key of `model`, if any is left.
    pub(crate) fn take(&self, model: &'static str) -> Option<String> {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(model)?
            .pop_front()
    }

    /// Adds newly reserved keys of `model`.
    pub(crate) fn add(&self, model: &'static str, keys: impl IntoIterator<Item = String>) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(model)
            .or_default()
            .extend(keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_taken_in_order_per_model() {
        let reserved = Reserved::default();
        assert_eq!(reserved.take("Person"), None);
        reserved.add("Person", ["1".to_owned(), "2".to_owned()]);
        reserved.add("Book", ["7".to_owned()]);
        assert_eq!(reserved.take("Person").as_deref(), Some("1"));
        assert_eq!(reserved.take("Book").as_deref(), Some("7"));
        assert_eq!(reserved.take("Person").as_deref(), Some("2"));
        assert_eq!(reserved.take("Person"), None);
    }
}
