//! Minimal OpenAPI v3 documents. kubectl's default `--validate=strict`
//! first asks OpenAPI v3 whether the server does field validation itself
//! (a `fieldValidation` parameter on the kind's PATCH operation); saying yes
//! lets plain `kubectl create -f` work without a full schema. OpenAPI v2
//! stays absent.

use serde_json::{json, Map, Value};

use super::kind::{ResourceDef, ALL};

/// `api/v1` or `apis/{group}/v1`: the OpenAPI v3 path of a group version.
fn gv_path(group: &str) -> String {
    if group.is_empty() {
        "api/v1".into()
    } else {
        format!("apis/{group}/v1")
    }
}

fn groups() -> Vec<&'static str> {
    let mut gs: Vec<&str> = ALL.iter().map(|d| d.group).collect();
    gs.dedup();
    gs
}

/// Serves `/openapi/v3` (`rest` empty) and `/openapi/v3/{group version}`.
pub fn v3(rest: &str) -> Option<Value> {
    if rest.is_empty() {
        let paths: Map<String, Value> = groups()
            .into_iter()
            .map(|g| {
                let p = gv_path(g);
                let url = format!("/openapi/v3/{p}?hash=pinip-sim-1");
                (p, json!({"serverRelativeURL": url}))
            })
            .collect();
        return Some(json!({"paths": paths}));
    }
    let group = groups().into_iter().find(|g| gv_path(g) == rest)?;
    let paths: Map<String, Value> = ALL
        .iter()
        .filter(|d| d.group == group)
        .map(|d| (item_path(d), json!({"patch": patch_op(d)})))
        .collect();
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", super::discovery::MAJOR, super::discovery::MINOR)},
        "paths": paths,
        "components": {},
    }))
}

fn item_path(d: &ResourceDef) -> String {
    let prefix = format!("/{}", gv_path(d.group));
    if d.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", d.plural)
    } else {
        format!("{prefix}/{}/{{name}}", d.plural)
    }
}

fn patch_op(d: &ResourceDef) -> Value {
    let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string"}});
    json!({
        "operationId": format!("patch{}", d.kind_name),
        "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation")],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": d.group, "version": d.version, "kind": d.kind_name},
    })
}
