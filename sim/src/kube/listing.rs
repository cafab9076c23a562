//! What a list asks the store for, and what it gets: the store narrows a list (one
//! name, a limit) before it copies anything, so a selective list of a big kind costs
//! what it returns.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::kind::Kind;

/// Object key: (namespace, name); empty namespace for cluster-scoped kinds.
pub(crate) type Key = (String, String);

/// What narrows a list before anything is copied.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListQuery<'a> {
    /// The one name the list asks for (a `metadata.name=` field selector).
    pub only: Option<&'a str>,
    /// Labels the list requires to equal a value (an equality selector's terms).
    pub labels: &'a [(&'a str, &'a str)],
    /// At most this many (0: no limit).
    pub limit: usize,
}

/// What [`Store::list_matching`] found.
pub struct Listed {
    pub objects: Vec<Value>,
    /// Matching objects beyond the limit.
    pub remaining: usize,
    /// The version the list is consistent with.
    pub rv: u64,
}

/// Object keys by label (`key=value`), per kind: kept by the store's one write path,
/// so a list with an equality label selector (an agent's own claims, by holder) reads
/// the objects it names, not every object of the kind. The real server's watch cache
/// filters its whole kind; here a thousand agents share two cores, and the harness
/// should spend them on the agents.
#[derive(Default)]
pub(crate) struct LabelIndex(HashMap<Kind, HashMap<String, HashMap<String, BTreeSet<Key>>>>);

impl LabelIndex {
    /// Moves `key` from `prev`'s labels to `new`'s.
    pub(crate) fn replace(
        &mut self,
        kind: Kind,
        key: &Key,
        prev: Option<&Value>,
        new: Option<&Value>,
    ) {
        let by_label = self.0.entry(kind).or_default();
        for (label, value) in labels(prev) {
            let Some(values) = by_label.get_mut(label) else {
                continue;
            };
            if let Some(keys) = values.get_mut(value) {
                keys.remove(key);
                if keys.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                by_label.remove(label);
            }
        }
        for (label, value) in labels(new) {
            by_label
                .entry(label.to_string())
                .or_default()
                .entry(value.to_string())
                .or_default()
                .insert(key.clone());
        }
    }

    /// The keys of `kind`'s objects labelled `label=value`, in key order.
    fn keys(&self, kind: Kind, label: &str, value: &str) -> Option<&BTreeSet<Key>> {
        self.0.get(&kind)?.get(label)?.get(value)
    }

    /// For a list requiring `terms` (none: `None`, read the kind), the keys of the
    /// fewest objects that can match: those of the rarest term.
    pub(crate) fn narrowest(&self, kind: Kind, terms: &[(&str, &str)]) -> Option<Vec<&Key>> {
        let mut narrowest: Option<&BTreeSet<Key>> = None;
        for (label, value) in terms {
            let Some(keys) = self.keys(kind, label, value) else {
                return Some(Vec::new());
            };
            if narrowest.is_none_or(|n| keys.len() < n.len()) {
                narrowest = Some(keys);
            }
        }
        narrowest.map(|keys| keys.iter().collect())
    }
}

fn labels(obj: Option<&Value>) -> impl Iterator<Item = (&str, &str)> {
    obj.and_then(|o| o.pointer("/metadata/labels"))
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::status::ApiError;
    use super::super::store::Store;
    use super::*;

    fn lease(name: &str, holder: &str) -> Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": name, "labels": {"managed": "yes", "holder": holder}}})
    }

    fn held_by(store: &Store, ns: &str, holder: &str) -> Vec<String> {
        // The common term first: the store reads by the rarer one.
        let terms = [("managed", "yes"), ("holder", holder)];
        let query = ListQuery {
            labels: &terms,
            ..ListQuery::default()
        };
        store
            .list_matching(Kind::Lease, Some(ns), query, |_| true)
            .objects
            .iter()
            .filter_map(|o| o.pointer("/metadata/name")?.as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn a_labelled_list_follows_creates_relabels_and_deletes() -> Result<(), ApiError> {
        let store = Store::new(1);
        store.create(Kind::Lease, Some("a"), lease("x", "n1"))?;
        store.create(Kind::Lease, Some("a"), lease("y", "n1"))?;
        store.create(Kind::Lease, Some("b"), lease("z", "n1"))?;
        assert_eq!(held_by(&store, "a", "n1"), ["x", "y"]);
        assert_eq!(held_by(&store, "b", "n1"), ["z"]);

        store.update(Kind::Lease, Some("a"), "x", |_| Ok(lease("x", "n2")))?;
        assert_eq!(held_by(&store, "a", "n1"), ["y"]);
        assert_eq!(held_by(&store, "a", "n2"), ["x"]);

        store.update(Kind::Lease, Some("a"), "y", |_| {
            Ok(json!({"metadata": {"name": "y"}}))
        })?;
        assert!(held_by(&store, "a", "n1").is_empty());
        assert!(held_by(&store, "a", "nobody").is_empty());

        store.delete(Kind::Lease, Some("a"), "x", |_| Ok(()))?;
        assert!(held_by(&store, "a", "n2").is_empty());
        assert_eq!(held_by(&store, "b", "n1"), ["z"]);
        Ok(())
    }
}
