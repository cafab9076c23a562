//! Server-side apply (`PATCH` with `application/apply-patch+yaml`) and the field
//! ownership every other write records, kept in `metadata.managedFields` like the real
//! server: one entry per (manager, operation, apiVersion, subresource).

use serde_json::{json, Value};

use super::kind::Kind;
use super::managed::{self, FieldSet, Path};
use super::meta;
use super::status::ApiError;

/// Who is writing, and how.
#[derive(Clone, Debug)]
pub struct Writer {
    /// `fieldManager`, or the User-Agent's product name as the real server derives it.
    pub manager: String,
    pub api_version: String,
    /// `status` for writes through `/status`.
    pub subresource: Option<String>,
}

#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    time: String,
    fields: FieldSet,
}

impl Entry {
    /// `printManager` of the conflict message.
    fn describe(&self) -> String {
        let mut s = Value::from(self.manager.as_str()).to_string();
        if let Some(sub) = &self.subresource {
            s = format!("{s} with subresource {}", Value::from(sub.as_str()));
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }

    fn is(&self, w: &Writer, operation: &str) -> bool {
        self.manager == w.manager
            && self.operation == operation
            && self.subresource == w.subresource
            && (operation == "Apply" || self.api_version == w.api_version)
    }
}

fn entries(obj: Option<&Value>) -> Vec<Entry> {
    let Some(list) = obj
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let s = |e: &Value, f: &str| {
        e.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    list.iter()
        .map(|e| Entry {
            manager: s(e, "manager"),
            operation: s(e, "operation"),
            api_version: s(e, "apiVersion"),
            subresource: e
                .get("subresource")
                .and_then(Value::as_str)
                .map(String::from),
            time: s(e, "time"),
            fields: managed::decode(e.get("fieldsV1").unwrap_or(&Value::Null)),
        })
        .collect()
}

fn store_entries(obj: &mut Value, list: Vec<Entry>) {
    let rendered: Vec<Value> = list
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager, "operation": e.operation, "apiVersion": e.api_version,
                "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": managed::encode(&e.fields),
            });
            if let Some(sub) = e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    let m = meta::metadata_mut(obj);
    if rendered.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), Value::Array(rendered));
    }
}

fn is_status(w: &Writer) -> bool {
    w.subresource.as_deref() == Some("status")
}

/// Records a create, update or non-apply patch by `w` turning `old` into `new`: the
/// fields it changed become its own and nobody else's; removed fields are nobody's.
pub fn record_update(kind: Kind, w: &Writer, old: Option<&Value>, new: &mut Value) {
    let mut list = entries(old);
    let now_fields = managed::fields(kind, new, is_status(w));
    let old_fields = old
        .map(|o| managed::fields(kind, o, is_status(w)))
        .unwrap_or_default();
    let changed: FieldSet = now_fields
        .iter()
        .filter(|p| old.and_then(|o| managed::value_at(o, p)) != managed::value_at(new, p))
        .cloned()
        .collect();
    let removed: FieldSet = old_fields.difference(&now_fields).cloned().collect();
    for e in &mut list {
        e.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    if !changed.is_empty() {
        match list.iter_mut().find(|e| e.is(w, "Update")) {
            Some(own) => {
                own.fields.extend(changed);
                own.time = meta::now();
            }
            None => list.push(Entry {
                manager: w.manager.clone(),
                operation: "Update".into(),
                api_version: w.api_version.clone(),
                subresource: w.subresource.clone(),
                time: meta::now(),
                fields: changed,
            }),
        }
    }
    store_entries(new, list);
}

/// The 409 of an apply that would change fields others own.
fn conflict_error(conflicts: &[(String, Path)]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(who, path)| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {who}"),
                   "field": managed::display(path)})
        })
        .collect();
    let message = match conflicts {
        [(who, path)] => format!(
            "Apply failed with 1 conflict: conflict with {who}: {}",
            managed::display(path)
        ),
        many => {
            let mut by_manager: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
            for (who, path) in many {
                by_manager
                    .entry(who.as_str())
                    .or_default()
                    .push(managed::display(path));
            }
            let lines: Vec<String> = by_manager
                .into_iter()
                .flat_map(|(who, paths)| {
                    std::iter::once(format!("conflicts with {who}:"))
                        .chain(paths.into_iter().map(|p| format!("- {p}")))
                })
                .collect();
            format!(
                "Apply failed with {} conflicts: {}",
                many.len(),
                lines.join("\n")
            )
        }
    };
    ApiError::ApplyConflict { message, causes }
}

/// The object after `w` applies `config` to `live` (`None`: the object is created).
/// `config` is in the API form the request came through, and so is `live`.
pub fn apply(
    kind: Kind,
    w: &Writer,
    force: bool,
    live: Option<&Value>,
    config: &Value,
) -> Result<Value, ApiError> {
    let applied = managed::fields(kind, config, is_status(w));
    let mut list = entries(live);
    let mut conflicts = Vec::new();
    if let Some(live) = live {
        for e in list.iter_mut().filter(|e| !e.is(w, "Apply")) {
            let clashing: Vec<Path> = e
                .fields
                .intersection(&applied)
                .filter(|p| {
                    !matches!(p.last(), Some(managed::Elem::Key(_)))
                        && managed::value_at(live, p) != managed::value_at(config, p)
                })
                .cloned()
                .collect();
            if force {
                e.fields.retain(|p| !clashing.contains(p));
            } else {
                conflicts.extend(clashing.into_iter().map(|p| (e.describe(), p)));
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflict_error(&conflicts));
    }
    let mut result = match live {
        Some(live) => managed::merge(kind, live, config),
        None => config.clone(),
    };
    // Fields this manager applied before, applies no more, and nobody else owns: gone.
    let previous: FieldSet = list
        .iter()
        .find(|e| e.is(w, "Apply"))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for path in previous.difference(&applied) {
        let shared = list
            .iter()
            .any(|e| !e.is(w, "Apply") && e.fields.contains(path));
        if !shared {
            managed::remove_at(&mut result, path);
        }
    }
    match list.iter_mut().find(|e| e.is(w, "Apply")) {
        Some(own) => {
            own.fields = applied;
            own.time = meta::now();
            own.api_version = w.api_version.clone();
        }
        None => list.push(Entry {
            manager: w.manager.clone(),
            operation: "Apply".into(),
            api_version: w.api_version.clone(),
            subresource: w.subresource.clone(),
            time: meta::now(),
            fields: applied,
        }),
    }
    store_entries(&mut result, list);
    Ok(result)
}

/// The manager name the real server derives from a User-Agent: its product part.
pub fn manager_from_user_agent(user_agent: Option<&str>) -> String {
    let ua = user_agent.unwrap_or_default();
    let product = ua.split('/').next().unwrap_or_default();
    product.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(name: &str) -> Writer {
        Writer {
            manager: name.into(),
            api_version: "coordination.k8s.io/v1".into(),
            subresource: None,
        }
    }

    fn lease(holder: &str) -> Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "l", "namespace": "ns"}, "spec": {"holderIdentity": holder}})
    }

    #[test]
    fn apply_conflicts_with_another_managers_field_unless_forced() {
        let mut created = lease("a");
        record_update(Kind::Lease, &writer("kubectl-create"), None, &mut created);
        assert_eq!(
            created["metadata"]["managedFields"][0]["operation"],
            "Update"
        );
        let same = apply(
            Kind::Lease,
            &writer("kubectl"),
            false,
            Some(&created),
            &lease("a"),
        );
        assert!(same.is_ok(), "the same value is shared ownership");
        let clash = apply(
            Kind::Lease,
            &writer("kubectl"),
            false,
            Some(&created),
            &lease("b"),
        );
        let Err(ApiError::ApplyConflict { message, .. }) = clash else {
            panic!("expected a conflict, got {clash:?}");
        };
        assert_eq!(
            message,
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using coordination.k8s.io/v1: .spec.holderIdentity"
        );
        let forced = apply(
            Kind::Lease,
            &writer("kubectl"),
            true,
            Some(&created),
            &lease("b"),
        )
        .unwrap_or_default();
        assert_eq!(forced["spec"]["holderIdentity"], "b");
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .map(|l| l.iter().filter_map(|e| e["manager"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(
            managers,
            ["kubectl"],
            "the forced field left kubectl-create"
        );
    }

    #[test]
    fn a_field_no_longer_applied_is_removed() {
        let mut with_label = lease("a");
        with_label["metadata"]["labels"] = json!({"x": "1"});
        let first = apply(Kind::Lease, &writer("m"), false, None, &with_label).unwrap_or_default();
        assert_eq!(first["metadata"]["labels"]["x"], "1");
        let second =
            apply(Kind::Lease, &writer("m"), false, Some(&first), &lease("a")).unwrap_or_default();
        assert!(second["metadata"]["labels"].get("x").is_none(), "{second}");
    }

    #[test]
    fn user_agent_product_names_the_manager() {
        assert_eq!(
            manager_from_user_agent(Some("kubectl/v1.32.4 (linux/amd64) kubernetes/abc")),
            "kubectl"
        );
        assert_eq!(manager_from_user_agent(None), "");
    }
}
