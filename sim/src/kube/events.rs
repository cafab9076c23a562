//! events.k8s.io/v1 Events are a second view of core/v1 Events: the real
//! server stores one object and renames fields per API version. Events are
//! stored in core form; these convert an object between the two views.

use serde_json::{Map, Value};

use super::kind::Kind;

/// (events.k8s.io/v1 field, core/v1 field) pairs that differ in name.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(obj: Value, api_version: &str, to_core: bool) -> Value {
    let Value::Object(map) = obj else {
        return obj;
    };
    let mut out = Map::with_capacity(map.len());
    for (k, v) in map {
        let key = RENAMES
            .iter()
            .find_map(|(v1, core)| {
                let (from, to) = if to_core { (v1, core) } else { (core, v1) };
                (*from == k).then(|| to.to_string())
            })
            .unwrap_or(k);
        out.insert(key, v);
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// The object as the API of `kind` shows it, from its stored form.
pub fn view(kind: Kind, stored: Value) -> Value {
    match kind {
        Kind::EventV1 => to_v1(stored),
        _ => stored,
    }
}

/// The stored form of an object given in the API of `kind`.
pub fn stored(kind: Kind, view: Value) -> Value {
    match kind {
        Kind::EventV1 => to_core(view),
        _ => view,
    }
}

/// events.k8s.io/v1 form → stored core/v1 form.
pub fn to_core(obj: Value) -> Value {
    rename(obj, "v1", true)
}

/// Stored core/v1 form → events.k8s.io/v1 form.
pub fn to_v1(obj: Value) -> Value {
    rename(obj, "events.k8s.io/v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "regarding": {"name": "n"}, "note": "hi",
            "series": {"count": 2}});
        let core = to_core(v1.clone());
        assert_eq!(core["involvedObject"]["name"], "n");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(to_v1(core), v1);
    }
}
