//! Values a context makes once per model and then shares: read-mostly, looked up on every
//! call, so a hit takes a read lock and an `Arc` clone, never an allocation.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Values by a `'static` name (a model's name or key prefix), each made on first use.
#[derive(Debug)]
pub(crate) struct Registry<V: ?Sized> {
    values: RwLock<BTreeMap<&'static str, Arc<V>>>,
}

impl<V: ?Sized> Default for Registry<V> {
    fn default() -> Self {
        Self {
            values: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<V: ?Sized> Registry<V> {
    /// The value of `name`, made by `make` if there is none yet.
    pub(crate) fn get_or(&self, name: &'static str, make: impl FnOnce() -> Arc<V>) -> Arc<V> {
        if let Some(value) = self.values.read().unwrap_or_else(|p| p.into_inner()).get(name) {
            return Arc::clone(value);
        }
        let mut values = self.values.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(values.entry(name).or_insert_with(make))
    }

    /// Every value made so far, by name.
    pub(crate) fn all(&self) -> Vec<(&'static str, Arc<V>)> {
        let values = self.values.read().unwrap_or_else(|p| p.into_inner());
        values.iter().map(|(name, value)| (*name, Arc::clone(value))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_made_once_and_shared() {
        let registry: Registry<str> = Registry::default();
        let first = registry.get_or("a", || Arc::from("made"));
        let again = registry.get_or("a", || Arc::from("made twice"));
        assert!(Arc::ptr_eq(&first, &again));
        registry.get_or("b", || Arc::from("other"));
        let names: Vec<&str> = registry.all().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
