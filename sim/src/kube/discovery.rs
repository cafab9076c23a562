//! Discovery documents (legacy, non-aggregated JSON) so kubectl can map
//! kinds and short names to resources. kubectl asks for aggregated
//! discovery first; answering `application/json` makes it fall back.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::kind::{ResourceDef, ALL};
use super::request::NonResource;
use super::status::ApiError;

/// The Kubernetes version the simulator claims to be.
pub const MAJOR: &str = "1";
pub const MINOR: &str = "32";

pub fn serve(what: &NonResource, server_address: &str) -> Response {
    match what {
        NonResource::Version => Json(version()).into_response(),
        NonResource::Health => (StatusCode::OK, "ok").into_response(),
        NonResource::CoreVersions => Json(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
            ],
        }))
        .into_response(),
        NonResource::Groups => Json(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups().into_iter().map(group).collect::<Vec<_>>(),
        }))
        .into_response(),
        NonResource::Group(g) => {
            let mut doc = group(g);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            Json(doc).into_response()
        }
        NonResource::Resources { group } => Json(resource_list(group)).into_response(),
        NonResource::OpenApi(path) => match path
            .strip_prefix("v3")
            .map(|r| r.trim_start_matches('/'))
            .and_then(super::openapi::v3)
        {
            Some(doc) => Json(doc).into_response(),
            None => ApiError::UnknownPath.into_response(),
        },
    }
}

fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": format!("v{MAJOR}.{MINOR}.0-pinip-sim"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Non-core API groups, in discovery order.
fn groups() -> Vec<&'static str> {
    let mut gs: Vec<&str> = ALL
        .iter()
        .map(|d| d.group)
        .filter(|g| !g.is_empty())
        .collect();
    gs.dedup();
    gs
}

fn group(name: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [gv.clone()], "preferredVersion": gv})
}

fn resource_entries(d: &ResourceDef) -> Vec<Value> {
    let mut main = json!({
        "name": d.plural,
        "singularName": d.singular,
        "namespaced": d.namespaced,
        "kind": d.kind_name,
        "verbs": d.verbs,
    });
    if !d.short_names.is_empty() {
        main["shortNames"] = json!(d.short_names);
    }
    if !d.categories.is_empty() {
        main["categories"] = json!(d.categories);
    }
    let mut entries = vec![main];
    if d.has_status {
        entries.push(json!({
            "name": format!("{}/status", d.plural),
            "singularName": "",
            "namespaced": d.namespaced,
            "kind": d.kind_name,
            "verbs": ["get", "patch", "update"],
        }));
    }
    entries
}

fn resource_list(group: &str) -> Value {
    let group_version = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": ALL
            .iter()
            .filter(|d| d.group == group)
            .flat_map(|d| resource_entries(d))
            .collect::<Vec<_>>(),
    })
}
