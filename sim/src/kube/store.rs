//! The versioned object store: objects as JSON, one global resourceVersion
//! counter (like etcd's revision), a bounded history of changes for watches
//! that resume from a resourceVersion, and the fan-out of new changes to watches.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::fanout::Fanout;
use super::listing::{Key, LabelIndex};
pub use super::listing::{ListQuery, Listed};

use super::faults::SplitMix64;
use super::field::FieldError;
use super::kind::Kind;
use super::meta;
use super::status::ApiError;

/// How many past changes are kept for watches resuming from an old version.
pub const HISTORY_LIMIT: usize = 10_000;

/// A watch event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change. `prev` lets a selective watch turn a MODIFIED into
/// ADDED/DELETED when the object enters or leaves its selector.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub kind: Kind,
    pub event: EventType,
    pub object: Value,
    pub prev: Option<Value>,
}

/// Where a new watch starts.
pub enum WatchStart {
    /// Current objects of the kind (sent as ADDED), then new changes.
    Snapshot(Vec<Value>),
    /// Retained changes after the requested version, then new changes.
    Backlog(Vec<Arc<Change>>),
}

/// Everything a watch needs, taken atomically under the store lock.
pub struct Subscription {
    pub start: WatchStart,
    pub current_rv: u64,
    pub rx: broadcast::Receiver<Arc<Change>>,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<Kind, BTreeMap<Key, Value>>,
    history: VecDeque<Arc<Change>>,
    /// The newest version no longer in `history`; older watches get 410.
    compacted_rv: u64,
    rng: SplitMix64,
    fanout: Fanout,
    labels: LabelIndex,
}

/// Thread-safe store; every method holds the lock only briefly, never
/// across an await.
pub struct Store {
    inner: Mutex<Inner>,
}

/// Object key: empty namespace for cluster-scoped kinds.
fn key(ns: Option<&str>, name: &str) -> Key {
    (ns.unwrap_or_default().to_string(), name.to_string())
}

impl Store {
    pub fn new(seed: u64) -> Self {
        Store {
            inner: Mutex::new(Inner {
                rv: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted_rv: 0,
                rng: SplitMix64::new(seed),
                fanout: Fanout::default(),
                labels: LabelIndex::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not wedge the whole simulated cluster.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, kind: Kind, ns: Option<&str>, name: &str) -> Option<Value> {
        let kind = kind.storage();
        self.lock()
            .objects
            .get(&kind)
            .and_then(|m| m.get(&key(ns, name)))
            .cloned()
    }

    /// What `read` makes of the stored object, without copying it.
    pub fn inspect<R>(
        &self,
        kind: Kind,
        ns: Option<&str>,
        name: &str,
        read: impl FnOnce(&Value) -> R,
    ) -> Option<R> {
        let kind = kind.storage();
        self.lock()
            .objects
            .get(&kind)
            .and_then(|m| m.get(&key(ns, name)))
            .map(read)
    }

    /// Objects of a kind (in one namespace, or all), ordered by
    /// namespace/name, with the version they are consistent with.
    pub fn list(&self, kind: Kind, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        (Inner::list(&inner, kind.storage(), ns), inner.rv)
    }

    /// Like [`Store::list`], copying only what the list returns (a selective list of a
    /// big kind copies what it returns, not the whole kind): the objects `keep` accepts,
    /// only the one named `only` when the list names one (`metadata.name=`), the first
    /// `limit` of them (0: all) and how many more matched.
    pub fn list_matching(
        &self,
        kind: Kind,
        ns: Option<&str>,
        query: ListQuery<'_>,
        keep: impl Fn(&Value) -> bool,
    ) -> Listed {
        let inner = self.lock();
        let rv = inner.rv;
        let Some(m) = inner.objects.get(&kind.storage()) else {
            return Listed {
                objects: Vec::new(),
                remaining: 0,
                rv,
            };
        };
        let one_key = query
            .only
            .and_then(|name| match (ns, kind.def().namespaced) {
                (Some(ns), _) => Some(key(Some(ns), name)),
                (None, false) => Some(key(None, name)),
                // A named list across namespaces may match one object in each.
                (None, true) => None,
            });
        let labelled = inner.labels.narrowest(kind.storage(), query.labels);
        let candidates: Box<dyn Iterator<Item = &Value>> = match (one_key, ns, labelled) {
            (Some(k), _, _) => Box::new(m.get(&k).into_iter()),
            (None, _, Some(keys)) => Box::new(
                keys.into_iter()
                    .filter(move |(n, _)| ns.is_none_or(|ns| n == ns))
                    .filter_map(|k| m.get(k)),
            ),
            (None, Some(ns), None) => Box::new(
                m.range((ns.to_string(), String::new())..)
                    .take_while(move |((n, _), _)| n == ns)
                    .map(|(_, v)| v),
            ),
            (None, None, None) => Box::new(m.values()),
        };
        let mut matching = candidates.filter(|v| keep(v));
        let objects: Vec<Value> = match query.limit {
            0 => matching.by_ref().cloned().collect(),
            limit => matching.by_ref().take(limit).cloned().collect(),
        };
        Listed {
            objects,
            remaining: matching.count(),
            rv,
        }
    }

    /// Stores a new object: fills uid, creationTimestamp and resourceVersion,
    /// resolves `generateName`.
    pub fn create(&self, kind: Kind, ns: Option<&str>, obj: Value) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        inner.create(kind, ns, obj)
    }

    /// Read-modify-write of one object under the lock (the equivalent of the
    /// real server's GuaranteedUpdate). `f` sees the stored object and
    /// returns the desired one; system metadata is then restored and the
    /// version bumped. A write that changes nothing is not a new version.
    pub fn update(
        &self,
        kind: Kind,
        ns: Option<&str>,
        name: &str,
        f: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        self.update_or_create(kind, ns, name, |cur| match cur {
            Some(cur) => f(cur).map(Some),
            None => Ok(None),
        })
        .map(|(v, _)| v)
    }

    /// Like [`Store::update`], but `f` also sees a missing object (`None`) and may
    /// return the object to create in its place (create-on-update, as the real
    /// server's `Update` does for strategies that allow it) or `None` for NotFound.
    /// The flag tells whether the object was created. One lock: no other write
    /// falls between the read and the write.
    pub fn update_or_create(
        &self,
        kind: Kind,
        ns: Option<&str>,
        name: &str,
        f: impl FnOnce(Option<&Value>) -> Result<Option<Value>, ApiError>,
    ) -> Result<(Value, bool), ApiError> {
        let def = kind.def();
        let kind = kind.storage();
        let mut inner = self.lock();
        let current = inner
            .objects
            .get(&kind)
            .and_then(|m| m.get(&key(ns, name)))
            .cloned();
        let Some(current) = current else {
            let Some(mut new) = f(None)? else {
                return Err(ApiError::not_found(def, name));
            };
            meta::metadata_mut(&mut new).insert("name".into(), json!(name));
            return inner.create(kind, ns, new).map(|v| (v, true));
        };
        let Some(mut next) = f(Some(&current))? else {
            return Err(ApiError::not_found(def, name));
        };
        if !next.is_object() {
            return Err(ApiError::BadRequest("object must be a JSON object".into()));
        }
        {
            let old = current.get("metadata").and_then(Value::as_object);
            let m = meta::metadata_mut(&mut next);
            for field in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "resourceVersion",
            ] {
                match old.and_then(|o| o.get(field)) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
        }
        for field in ["apiVersion", "kind"] {
            if let Some(v) = current.get(field) {
                next[field] = v.clone();
            }
        }
        if next == current {
            return Ok((current, false));
        }
        let rv = inner.rv + 1;
        meta::metadata_mut(&mut next).insert("resourceVersion".into(), json!(rv.to_string()));
        inner.commit(kind, ns, name, EventType::Modified, Some(next.clone()));
        Ok((next, false))
    }

    /// Removes an object after `check` accepted the stored one (used for
    /// delete preconditions). The DELETED event carries the deletion version.
    pub fn delete(
        &self,
        kind: Kind,
        ns: Option<&str>,
        name: &str,
        check: impl FnOnce(&Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let def = kind.def();
        let kind = kind.storage();
        let mut inner = self.lock();
        let current = inner
            .objects
            .get(&kind)
            .and_then(|m| m.get(&key(ns, name)))
            .ok_or_else(|| ApiError::not_found(def, name))?;
        check(current)?;
        let change = inner.commit(kind, ns, name, EventType::Deleted, None);
        Ok(change.object.clone())
    }

    /// Starts a watch on `kind` (or on its one object `name`): from a snapshot when
    /// `from` is `None`, otherwise from the retained changes after version `from`.
    pub fn subscribe(
        &self,
        kind: Kind,
        ns: Option<&str>,
        name: Option<&str>,
        from: Option<u64>,
    ) -> Result<Subscription, ApiError> {
        let kind = kind.storage();
        let mut inner = self.lock();
        let start = match from {
            None => WatchStart::Snapshot(match name {
                Some(name) => inner
                    .objects
                    .get(&kind)
                    .and_then(|m| m.get(&key(ns, name)))
                    .into_iter()
                    .cloned()
                    .collect(),
                None => Inner::list(&inner, kind, ns),
            }),
            Some(rv) if rv < inner.compacted_rv => {
                return Err(ApiError::Expired {
                    requested: rv,
                    oldest: inner.compacted_rv + 1,
                })
            }
            Some(rv) => WatchStart::Backlog(
                inner
                    .history
                    .iter()
                    .filter(|c| c.rv > rv && c.kind == kind)
                    .cloned()
                    .collect(),
            ),
        };
        let rx = inner.fanout.subscribe(kind, ns, name);
        Ok(Subscription {
            start,
            current_rv: inner.rv,
            rx,
        })
    }
}

impl Inner {
    fn create(&mut self, kind: Kind, ns: Option<&str>, mut obj: Value) -> Result<Value, ApiError> {
        let def = kind.def();
        let kind = kind.storage();
        let name = match meta::name(&obj) {
            Some(n) => n.to_string(),
            None => match meta::str_field(&obj, "generateName") {
                Some(prefix) => loop {
                    let candidate = format!("{prefix}{}", self.random_suffix());
                    if !self.contains(kind, ns, &candidate) {
                        break candidate;
                    }
                },
                None => {
                    return Err(ApiError::invalid(
                        def,
                        "",
                        vec![FieldError::required(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ))
                }
            },
        };
        if self.contains(kind, ns, &name) {
            return Err(ApiError::AlreadyExists {
                resource: def.into(),
                name,
            });
        }
        let uid = self.new_uid();
        let rv = self.rv + 1;
        {
            let m = meta::metadata_mut(&mut obj);
            m.insert("name".into(), json!(name));
            match ns {
                Some(ns) => m.insert("namespace".into(), json!(ns)),
                None => m.remove("namespace"),
            };
            m.insert("uid".into(), json!(uid));
            m.insert("creationTimestamp".into(), json!(meta::now()));
            // A version in a create (or a create-on-update) is not a precondition.
            m.insert("resourceVersion".into(), json!(rv.to_string()));
            m.remove("deletionTimestamp");
        }
        self.commit(kind, ns, &name, EventType::Added, Some(obj.clone()));
        Ok(obj)
    }

    fn list(&self, kind: Kind, ns: Option<&str>) -> Vec<Value> {
        let Some(m) = self.objects.get(&kind) else {
            return Vec::new();
        };
        match ns {
            Some(ns) => m
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => m.values().cloned().collect(),
        }
    }

    fn contains(&self, kind: Kind, ns: Option<&str>, name: &str) -> bool {
        self.objects
            .get(&kind)
            .is_some_and(|m| m.contains_key(&key(ns, name)))
    }

    /// Applies one change: bumps the version, stores or removes the object,
    /// records it in the history and tells the watches.
    fn commit(
        &mut self,
        kind: Kind,
        ns: Option<&str>,
        name: &str,
        event: EventType,
        new: Option<Value>,
    ) -> Arc<Change> {
        self.rv += 1;
        let rv = self.rv;
        let objects = self.objects.entry(kind).or_default();
        let k = key(ns, name);
        let prev = match &new {
            Some(obj) => objects.insert(k.clone(), obj.clone()),
            None => objects.remove(&k),
        };
        self.labels.replace(kind, &k, prev.as_ref(), new.as_ref());
        let object = match new {
            Some(obj) => obj,
            None => {
                let mut gone = prev.clone().unwrap_or(Value::Null);
                meta::metadata_mut(&mut gone)
                    .insert("resourceVersion".into(), json!(rv.to_string()));
                gone
            }
        };
        let change = Arc::new(Change {
            rv,
            kind,
            event,
            object,
            prev,
        });
        if self.history.len() >= HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        self.history.push_back(change.clone());
        self.fanout.send(&change, ns, name);
        change
    }

    fn next_random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn new_uid(&mut self) -> String {
        let a = self.next_random();
        let b = self.next_random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// Five characters from the alphabet the real server uses for generateName.
    fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut r = self.next_random();
        (0..5)
            .map(|_| {
                let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
                r /= ALPHABET.len() as u64;
                c
            })
            .collect()
    }
}
