//! Response representations chosen by the Accept header: plain objects,
//! `meta.k8s.io/v1 Table` (what `kubectl get` prints from) and
//! `PartialObjectMetadata` (kube-rs metadata watches).

use axum::http::{header, HeaderMap};
use serde_json::{json, Value};

use super::kind::Kind;
use super::meta;
use super::request::Query;

/// How to render objects in a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repr {
    Object,
    Table(IncludeObject),
    Metadata,
}

/// The `includeObject` query parameter of Table requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl Repr {
    /// The first representation in the Accept header that we serve.
    pub fn negotiate(headers: &HeaderMap, query: &Query) -> Repr {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .unwrap_or("");
        for alt in accept.split(',') {
            let params: Vec<&str> = alt.split(';').map(str::trim).collect();
            let is = |p: &str| params.contains(&p);
            if is("as=Table") && is("g=meta.k8s.io") {
                let include = match query.get("includeObject").map(String::as_str) {
                    Some("None") => IncludeObject::None,
                    Some("Object") => IncludeObject::Object,
                    _ => IncludeObject::Metadata,
                };
                return Repr::Table(include);
            }
            if (is("as=PartialObjectMetadata") || is("as=PartialObjectMetadataList"))
                && is("g=meta.k8s.io")
            {
                return Repr::Metadata;
            }
            if params.first().is_some_and(|m| {
                matches!(*m, "application/json" | "*/*" | "application/*") && params.len() == 1
            }) {
                return Repr::Object;
            }
        }
        Repr::Object
    }
}

fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Renders a list response. `objects` are in the requested view already;
/// `list_meta` is the list's `metadata`.
pub fn list(repr: Repr, kind: Kind, objects: Vec<Value>, list_meta: Value) -> Value {
    let def = kind.def();
    match repr {
        Repr::Object => json!({
            "kind": def.list_kind(),
            "apiVersion": def.api_version(),
            "metadata": list_meta,
            "items": objects,
        }),
        Repr::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta,
            "items": objects.iter().map(partial).collect::<Vec<_>>(),
        }),
        Repr::Table(include) => table(kind, &objects, include, list_meta),
    }
}

/// Renders one object (a get, or a watch event's object).
pub fn one(repr: Repr, kind: Kind, obj: Value) -> Value {
    match repr {
        Repr::Object => obj,
        Repr::Metadata => partial(&obj),
        Repr::Table(include) => {
            let rv = meta::resource_version(&obj).unwrap_or_default().to_string();
            table(kind, &[obj], include, json!({"resourceVersion": rv}))
        }
    }
}

fn column(name: &str, ty: &str, format: &str, priority: u32) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": name, "priority": priority})
}

fn table(kind: Kind, objects: &[Value], include: IncludeObject, list_meta: Value) -> Value {
    let columns = match kind {
        Kind::Node => vec![
            column("Name", "string", "name", 0),
            column("Status", "string", "", 0),
            column("Roles", "string", "", 0),
            column("Age", "string", "", 0),
            column("Version", "string", "", 0),
            column("Internal-IP", "string", "", 1),
            column("External-IP", "string", "", 1),
        ],
        Kind::Namespace => vec![
            column("Name", "string", "name", 0),
            column("Status", "string", "", 0),
            column("Age", "string", "", 0),
        ],
        Kind::Pod => vec![
            column("Name", "string", "name", 0),
            column("Status", "string", "", 0),
            column("Age", "string", "", 0),
            column("Node", "string", "", 1),
        ],
        Kind::Lease => vec![
            column("Name", "string", "name", 0),
            column("Holder", "string", "", 0),
            column("Age", "string", "", 0),
        ],
        Kind::Event | Kind::EventV1 => vec![
            column("Last Seen", "string", "", 0),
            column("Type", "string", "", 0),
            column("Reason", "string", "", 0),
            column("Object", "string", "", 0),
            column("Message", "string", "", 0),
            column("Name", "string", "name", 1),
        ],
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = json!({"cells": cells(kind, obj)});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial(obj),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, p| v.get(p))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn cells(kind: Kind, obj: &Value) -> Vec<Value> {
    let name = meta::name(obj).unwrap_or_default();
    let age = age(s(obj, &["metadata", "creationTimestamp"]));
    match kind {
        Kind::Node => {
            let addr = |ty: &str| {
                obj.pointer("/status/addresses")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|x| s(x, &["type"]) == ty))
                    .map(|x| s(x, &["address"]).to_string())
                    .unwrap_or_else(|| "<none>".into())
            };
            json!([
                name,
                node_status(obj),
                node_roles(obj),
                age,
                s(obj, &["status", "nodeInfo", "kubeletVersion"]),
                addr("InternalIP"),
                addr("ExternalIP"),
            ])
        }
        Kind::Namespace => json!([name, s(obj, &["status", "phase"]), age]),
        Kind::Pod => json!([
            name,
            s(obj, &["status", "phase"]),
            age,
            s(obj, &["spec", "nodeName"])
        ]),
        Kind::Lease => json!([name, s(obj, &["spec", "holderIdentity"]), age]),
        Kind::Event | Kind::EventV1 => {
            // Cells read whichever view's field names are present.
            let pick = |a: &[&str], b: &[&str]| {
                let x = s(obj, a);
                if x.is_empty() {
                    s(obj, b)
                } else {
                    x
                }
            };
            let regarding = obj
                .get("involvedObject")
                .or_else(|| obj.get("regarding"))
                .cloned()
                .unwrap_or(Value::Null);
            let last_seen = [
                &["series", "lastObservedTime"][..],
                &["lastTimestamp"],
                &["deprecatedLastTimestamp"],
                &["eventTime"],
                &["metadata", "creationTimestamp"],
            ]
            .into_iter()
            .map(|p| s(obj, p))
            .find(|t| !t.is_empty())
            .unwrap_or("");
            json!([
                self::age(last_seen),
                s(obj, &["type"]),
                s(obj, &["reason"]),
                format!(
                    "{}/{}",
                    s(&regarding, &["kind"]).to_ascii_lowercase(),
                    s(&regarding, &["name"])
                ),
                pick(&["message"], &["note"]),
                name,
            ])
        }
    }
    .as_array()
    .cloned()
    .unwrap_or_default()
}

fn node_status(obj: &Value) -> String {
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| s(c, &["type"]) == "Ready"))
        .map(|c| s(c, &["status"]));
    let mut status = match ready {
        Some("True") => "Ready",
        Some("False") => "NotReady",
        _ => "Unknown",
    }
    .to_string();
    if obj.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(obj: &Value) -> String {
    let mut roles: Vec<String> = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("node-role.kubernetes.io/")
                        .map(str::to_string)
                        .or_else(|| (k == "kubernetes.io/role").then(|| s(v, &[]).to_string()))
                })
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

/// Age since an RFC 3339 time, formatted like the server's HumanDuration.
fn age(since: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(since) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds();
    human_duration(secs)
}

fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match () {
        _ if secs < 120 => format!("{secs}s"),
        _ if m < 10 && secs % 60 != 0 => format!("{m}m{}s", secs % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h % 24 != 0 => format!("{d}d{}h", h % 24),
        _ if d < 730 => format!("{d}d"),
        _ => format!("{}y", d / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(185), "3m5s");
        assert_eq!(human_duration(900), "15m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
    }

    #[test]
    fn kubectl_accept_header_means_table() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
                .parse()
                .expect("static header"),
        );
        assert_eq!(
            Repr::negotiate(&h, &Query::new()),
            Repr::Table(IncludeObject::Metadata)
        );
        assert_eq!(
            Repr::negotiate(&HeaderMap::new(), &Query::new()),
            Repr::Object
        );
    }
}
