//! Field ownership (`metadata.managedFields`, FieldsV1) as server-side apply keeps it,
//! after `sigs.k8s.io/structured-merge-diff`: every write records which manager set
//! which fields; an apply that changes a field someone else owns is a conflict (409)
//! unless forced; an apply that stops mentioning a field it owned alone removes it.
//!
//! The schema knowledge is a small table: lists are atomic unless listed below as
//! associative (keyed) lists or sets, as the real schemas mark them for these kinds.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::kind::Kind;

/// One step of a field path, written as in FieldsV1.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Elem {
    /// `f:name`
    Field(String),
    /// `k:{"type":"Ready"}`: a keyed list item (key fields sorted by name).
    Key(String),
    /// `v:"x"`: a member of a list of scalars that is a set.
    Value(String),
}

impl Elem {
    fn encode(&self) -> String {
        match self {
            Elem::Field(f) => format!("f:{f}"),
            Elem::Key(k) => format!("k:{k}"),
            Elem::Value(v) => format!("v:{v}"),
        }
    }

    fn decode(s: &str) -> Option<Elem> {
        let (tag, rest) = s.split_at_checked(2)?;
        match tag {
            "f:" => Some(Elem::Field(rest.into())),
            "k:" => Some(Elem::Key(rest.into())),
            "v:" => Some(Elem::Value(rest.into())),
            _ => None,
        }
    }

    /// As SMD prints a path in conflict messages.
    fn display(&self) -> String {
        match self {
            Elem::Field(f) => format!(".{f}"),
            Elem::Key(k) => {
                let keys: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            Elem::Value(v) => format!("[={v}]"),
        }
    }
}

pub type Path = Vec<Elem>;

pub fn display(path: &Path) -> String {
    path.iter().map(Elem::display).collect()
}

/// A set of owned fields.
pub type FieldSet = BTreeSet<Path>;

/// How a list is merged, by the field names leading to it.
enum ListType {
    Atomic,
    Map(&'static [&'static str]),
    Set,
}

fn list_type(kind: Kind, names: &[&str]) -> ListType {
    match (kind, names) {
        (_, ["metadata", "ownerReferences"]) => ListType::Map(&["uid"]),
        (_, ["metadata", "finalizers"]) => ListType::Set,
        (Kind::Node | Kind::Namespace | Kind::Pod, ["status", "conditions"]) => {
            ListType::Map(&["type"])
        }
        (Kind::Node, ["status", "addresses"]) => ListType::Map(&["type"]),
        (Kind::Pod, ["spec", "containers" | "initContainers" | "volumes"]) => {
            ListType::Map(&["name"])
        }
        _ => ListType::Atomic,
    }
}

/// Fields the field manager never tracks (`fieldmanager` strips them).
fn stripped(names: &[&str], has_status: bool) -> bool {
    matches!(
        names,
        ["apiVersion" | "kind"]
            | [
                "metadata",
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "creationTimestamp"
                    | "generation"
                    | "managedFields"
                    | "selfLink"
                    | "deletionTimestamp"
                    | "deletionGracePeriodSeconds"
            ]
    ) || (has_status && names.first() == Some(&"status"))
}

fn item_key(item: &Value, keys: &[&str]) -> String {
    let m: Map<String, Value> = keys
        .iter()
        .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    Value::Object(m).to_string()
}

/// Every owned path of `obj`: leaves, keyed items and set members. For a kind with a
/// `/status` subresource the main resource owns everything but `.status` and the
/// subresource (`status`) only `.status`, as the reset-fields strategies have it.
pub fn fields(kind: Kind, obj: &Value, status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    let strip_status = kind.def().has_status && !status;
    walk(
        kind,
        obj,
        strip_status,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut out,
    );
    if status {
        out.retain(|p| p.first() == Some(&Elem::Field("status".into())));
    }
    out
}

fn walk(
    kind: Kind,
    v: &Value,
    has_status: bool,
    names: &mut Vec<String>,
    path: &mut Path,
    out: &mut FieldSet,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                names.push(k.clone());
                let ns: Vec<&str> = names.iter().map(String::as_str).collect();
                if path.len() < 2 && stripped(&ns, has_status) {
                    names.pop();
                    continue;
                }
                path.push(Elem::Field(k.clone()));
                walk(kind, child, has_status, names, path, out);
                path.pop();
                names.pop();
            }
        }
        Value::Array(items) => {
            let ns: Vec<&str> = names.iter().map(String::as_str).collect();
            match list_type(kind, &ns) {
                ListType::Atomic => {
                    out.insert(path.clone());
                }
                ListType::Set => {
                    for item in items {
                        path.push(Elem::Value(item.to_string()));
                        out.insert(path.clone());
                        path.pop();
                    }
                }
                ListType::Map(keys) => {
                    for item in items {
                        path.push(Elem::Key(item_key(item, keys)));
                        out.insert(path.clone());
                        walk(kind, item, has_status, names, path, out);
                        path.pop();
                    }
                }
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The value at `path`, if any.
pub fn value_at<'a>(obj: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(obj);
    };
    let next = match first {
        Elem::Field(f) => obj.get(f)?,
        Elem::Key(k) => {
            let want: Map<String, Value> = serde_json::from_str(k).ok()?;
            obj.as_array()?
                .iter()
                .find(|item| want.iter().all(|(wk, wv)| item.get(wk) == Some(wv)))?
        }
        Elem::Value(v) => {
            let want: Value = serde_json::from_str(v).ok()?;
            obj.as_array()?.iter().find(|item| **item == want)?
        }
    };
    value_at(next, rest)
}

/// Removes the field, item or set member at `path` (nothing if absent).
pub fn remove_at(obj: &mut Value, path: &[Elem]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut parent = obj;
    for e in parent_path {
        let next = match e {
            Elem::Field(f) => parent.get_mut(f),
            Elem::Key(_) | Elem::Value(_) => {
                let Some(found) = value_at(parent, std::slice::from_ref(e)).cloned() else {
                    return;
                };
                parent
                    .as_array_mut()
                    .and_then(|items| items.iter_mut().find(|i| **i == found))
            }
        };
        match next {
            Some(n) => parent = n,
            None => return,
        }
    }
    match last {
        Elem::Field(f) => {
            if let Some(m) = parent.as_object_mut() {
                m.remove(f);
            }
        }
        Elem::Key(_) | Elem::Value(_) => {
            if let Some(found) = value_at(parent, std::slice::from_ref(last)).cloned() {
                if let Some(items) = parent.as_array_mut() {
                    items.retain(|i| *i != found);
                }
            }
        }
    }
}

/// Applies `config` over `live`: maps merge, keyed lists merge by key, sets union,
/// everything else is replaced.
pub fn merge(kind: Kind, live: &Value, config: &Value) -> Value {
    merge_at(kind, live, config, &mut Vec::new())
}

fn merge_at(kind: Kind, live: &Value, config: &Value, names: &mut Vec<String>) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, cv) in c {
                names.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => merge_at(kind, lv, cv, names),
                    None => cv.clone(),
                };
                names.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            let ns: Vec<&str> = names.iter().map(String::as_str).collect();
            match list_type(kind, &ns) {
                ListType::Atomic => config.clone(),
                ListType::Set => {
                    let mut out = l.clone();
                    out.extend(c.iter().filter(|v| !l.contains(v)).cloned());
                    Value::Array(out)
                }
                ListType::Map(keys) => {
                    let mut out = l.clone();
                    for item in c {
                        let key = item_key(item, keys);
                        match out.iter_mut().find(|i| item_key(i, keys) == key) {
                            Some(existing) => *existing = merge_at(kind, existing, item, names),
                            None => out.push(item.clone()),
                        }
                    }
                    Value::Array(out)
                }
            }
        }
        _ => config.clone(),
    }
}

/// FieldsV1 JSON of a set.
pub fn encode(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<Elem, Node>,
    }
    let mut root = Node::default();
    for path in set {
        let mut node = &mut root;
        for e in path {
            node = node.children.entry(e.clone()).or_default();
        }
        node.member = true;
    }
    fn render(node: &Node) -> Value {
        let mut m = Map::new();
        if node.member && !node.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (e, child) in &node.children {
            m.insert(e.encode(), render(child));
        }
        Value::Object(m)
    }
    render(&root)
}

/// A set from FieldsV1 JSON (unknown tokens are skipped).
pub fn decode(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    fn go(v: &Value, path: &mut Path, out: &mut FieldSet) {
        let Some(m) = v.as_object() else { return };
        if (m.is_empty() || m.contains_key(".")) && !path.is_empty() {
            out.insert(path.clone());
        }
        for (k, child) in m {
            if let Some(e) = Elem::decode(k) {
                path.push(e);
                go(child, path, out);
                path.pop();
            }
        }
    }
    go(v, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_through_fields_v1() {
        let node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n", "labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let set = fields(Kind::Node, &node, false);
        // The main resource of a kind with /status never owns status.
        assert!(set.iter().all(|p| p[0] != Elem::Field("status".into())));
        let encoded = encode(&set);
        assert_eq!(
            encoded,
            json!({"f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {"v:\"x\"": {}}},
                   "f:spec": {"f:taints": {}}})
        );
        assert_eq!(decode(&encoded), set);
        let lease = json!({"spec": {"holderIdentity": "a"}});
        let path = vec![
            Elem::Field("spec".into()),
            Elem::Field("holderIdentity".into()),
        ];
        assert_eq!(display(&path), ".spec.holderIdentity");
        assert_eq!(value_at(&lease, &path), Some(&json!("a")));
    }

    #[test]
    fn keyed_lists_merge_by_key() {
        let live = json!({"status": {"conditions": [{"type": "A", "status": "1"}, {"type": "B", "status": "1"}]}});
        let cfg = json!({"status": {"conditions": [{"type": "B", "status": "2"}]}});
        let merged = merge(Kind::Namespace, &live, &cfg);
        assert_eq!(
            merged["status"]["conditions"],
            json!([{"type": "A", "status": "1"}, {"type": "B", "status": "2"}])
        );
        let mut m = merged;
        remove_at(
            &mut m,
            &[
                Elem::Field("status".into()),
                Elem::Field("conditions".into()),
                Elem::Key("{\"type\":\"A\"}".into()),
            ],
        );
        assert_eq!(
            m["status"]["conditions"],
            json!([{"type": "B", "status": "2"}])
        );
    }
}
