//! Field validation against the kinds' real schemas (`fieldValidation=Strict|Warn|Ignore`,
//! server default Warn). The schema is k8s-openapi's typed structs: an object is decoded
//! into its type and encoded again; every field of the request that did not survive is
//! unknown. Like the real server, unknown fields are dropped from what is stored,
//! reported as `Warning: 299` headers (Warn) or refused with 400 (Strict), and a value of
//! the wrong type is refused with 400 whatever the mode.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::kind::Kind;
use super::request::Query;
use super::status::ApiError;

/// The `fieldValidation` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        match query.get("fieldValidation").map(String::as_str) {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::BadRequest(format!(
                "fieldValidation must be one of Ignore, Warn, or Strict, got {other:?}"
            ))),
        }
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// The object as its typed struct sees it.
fn typed_view(kind: Kind, obj: &Value) -> Result<Value, String> {
    use k8s_openapi::api::{coordination, core, events};
    match kind {
        Kind::Node => round_trip::<core::v1::Node>(obj),
        Kind::Namespace => round_trip::<core::v1::Namespace>(obj),
        Kind::Pod => round_trip::<core::v1::Pod>(obj),
        Kind::Lease => round_trip::<coordination::v1::Lease>(obj),
        Kind::Event => round_trip::<core::v1::Event>(obj),
        Kind::EventV1 => round_trip::<events::v1::Event>(obj),
    }
}

/// Removes from `given` what `known` does not have, collecting the paths.
fn prune(given: &mut Value, known: &Value, path: &str, unknown: &mut Vec<String>) {
    match (given, known) {
        (Value::Object(g), Value::Object(k)) => {
            let keys: Vec<String> = g.keys().cloned().collect();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (g.get_mut(&key), k.get(&key)) {
                    (Some(Value::Null), _) => {}
                    (Some(v), Some(kv)) => prune(v, kv, &child, unknown),
                    (Some(_), None) => {
                        unknown.push(child);
                        g.remove(&key);
                    }
                    (None, _) => {}
                }
            }
        }
        (Value::Array(g), Value::Array(k)) if g.len() == k.len() => {
            for (i, (gv, kv)) in g.iter_mut().zip(k).enumerate() {
                prune(gv, kv, &format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

/// The outcome of checking one request body.
pub struct Checked {
    /// The object without its unknown fields.
    pub object: Value,
    /// `Warning` header values (Warn mode).
    pub warnings: Vec<String>,
}

/// Checks `obj` (in the API form of `kind`) under `mode`.
pub fn check(kind: Kind, mut obj: Value, mode: FieldValidation) -> Result<Checked, ApiError> {
    let def = kind.def();
    let cannot_handle = |e: &str| {
        ApiError::BadRequest(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            def.kind_name, def.version, def.kind_name
        ))
    };
    let known = typed_view(kind, &obj).map_err(|e| cannot_handle(&e))?;
    let mut unknown = Vec::new();
    prune(&mut obj, &known, "", &mut unknown);
    if unknown.is_empty() {
        return Ok(Checked {
            object: obj,
            warnings: Vec::new(),
        });
    }
    let described: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field {}", Value::from(p.as_str())))
        .collect();
    match mode {
        FieldValidation::Strict => Err(cannot_handle(&format!(
            "strict decoding error: {}",
            described.join(", ")
        ))),
        FieldValidation::Warn => Ok(Checked {
            object: obj,
            warnings: described,
        }),
        FieldValidation::Ignore => Ok(Checked {
            object: obj,
            warnings: Vec::new(),
        }),
    }
}

/// A `Warning` header value: `299 - "text"` with the text quoted as HTTP wants.
pub fn warning_header(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("299 - \"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_found_and_dropped() {
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l", "labels": {"a": "b"}, "bogus": 1},
            "spec": {"holderIdentity": "n", "holder": "typo", "renewTime": null}});
        let checked = check(Kind::Lease, lease.clone(), FieldValidation::Warn).ok();
        let checked = checked.expect("warn mode accepts");
        assert_eq!(
            checked.warnings,
            [
                "unknown field \"metadata.bogus\"",
                "unknown field \"spec.holder\""
            ]
        );
        assert!(checked.object["spec"].get("holder").is_none());
        assert_eq!(checked.object["metadata"]["labels"]["a"], "b");
        let strict = check(Kind::Lease, lease, FieldValidation::Strict);
        assert!(
            matches!(strict, Err(ApiError::BadRequest(m)) if m.contains("strict decoding error: unknown field \"metadata.bogus\""))
        );
    }

    #[test]
    fn wrong_types_are_refused_in_every_mode() {
        let lease = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": "15"}});
        assert!(check(Kind::Lease, lease, FieldValidation::Ignore).is_err());
    }

    #[test]
    fn events_k8s_io_fields_are_known_in_their_own_api() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e"}, "regarding": {"kind": "Node", "name": "n"}, "note": "x"});
        let checked = check(Kind::EventV1, ev.clone(), FieldValidation::Strict);
        assert!(checked.is_ok());
        let mut core = ev;
        core["apiVersion"] = json!("v1");
        let refused = check(Kind::Event, core, FieldValidation::Strict);
        assert!(
            matches!(refused, Err(ApiError::BadRequest(m)) if m.contains("unknown field \"regarding\""))
        );
    }
}
