//! A map that can undo: planning applies each record to an in-memory copy
//! of the database and must be able to take one record's changes back when
//! that record turns out to be bad, like a savepoint in memory.

use std::collections::HashMap;
use std::hash::Hash;

/// A `HashMap` whose changes since the last [`Journal::commit`] can be
/// rolled back to any [`Journal::mark`].
#[derive(Debug)]
pub(crate) struct Journal<K, V> {
    map: HashMap<K, V>,
    undo: Vec<(K, Option<V>)>,
}

impl<K: Hash + Eq + Clone, V> Journal<K, V> {
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    pub(crate) fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) {
        let old = self.map.insert(key.clone(), value);
        self.undo.push((key, old));
    }

    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(old) = self.map.remove(key) {
            self.undo.push((key.clone(), Some(old)));
        }
    }

    /// Removes every entry whose key matches.
    pub(crate) fn remove_where(&mut self, mut matches: impl FnMut(&K) -> bool) {
        let keys: Vec<K> = self.map.keys().filter(|k| matches(k)).cloned().collect();
        for key in keys {
            self.remove(&key);
        }
    }

    pub(crate) fn mark(&self) -> usize {
        self.undo.len()
    }

    /// Undoes every change made after `mark`.
    pub(crate) fn rollback(&mut self, mark: usize) {
        while self.undo.len() > mark {
            let Some((key, old)) = self.undo.pop() else {
                break;
            };
            match old {
                Some(value) => self.map.insert(key, value),
                None => self.map.remove(&key),
            };
        }
    }

    /// Forgets the undo log: what is in the map now stays.
    pub(crate) fn commit(&mut self) {
        self.undo.clear();
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for Journal<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Journal {
            map: iter.into_iter().collect(),
            undo: Vec::new(),
        }
    }
}

impl<K, V> Default for Journal<K, V> {
    fn default() -> Self {
        Journal {
            map: HashMap::new(),
            undo: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Journal;

    #[test]
    fn rollback_restores_inserts_overwrites_and_removals() {
        let mut j: Journal<i32, &str> = [(1, "one"), (2, "two")].into_iter().collect();
        let mark = j.mark();
        j.insert(1, "uno");
        j.insert(3, "three");
        j.remove(&2);
        j.remove_where(|k| *k == 3);
        assert_eq!(
            (j.get(&1), j.get(&2), j.get(&3)),
            (Some(&"uno"), None, None)
        );
        j.rollback(mark);
        assert_eq!(
            (j.get(&1), j.get(&2), j.get(&3)),
            (Some(&"one"), Some(&"two"), None)
        );
    }

    #[test]
    fn commit_makes_changes_permanent() {
        let mut j: Journal<i32, i32> = Journal::default();
        j.insert(1, 10);
        j.commit();
        let mark = j.mark();
        j.insert(1, 11);
        j.rollback(mark);
        assert_eq!(j.get(&1), Some(&10));
    }
}
