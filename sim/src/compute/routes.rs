//! The HTTP side of the Compute simulator: the v1 paths of the discovery document
//! (`compute.v1.json`), bearer auth, latency and fault injection, request counters,
//! list filtering/ordering/paging, and operations that are RUNNING for a while and
//! can be waited on with `operations/{op}/wait`. Unknown query parameters (`alt`,
//! `returnPartialSuccess`, `requestId`, …) are ignored, as the API does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::errors::ApiError;
use super::faults::Failure;
use super::filter::Filter;
use super::model::{render_address, render_instance, render_operation, Scope, ADDRESS_FIELDS};
use super::state::Applied;
use super::Shared;

/// Longest a `wait` is held open (the API answers after about two minutes).
const WAIT_LIMIT: Duration = Duration::from_secs(120);
const MAX_PAGE: usize = 500;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

#[derive(Debug)]
enum Route {
    ListAddresses {
        region: String,
    },
    AggregatedAddresses,
    GetAddress {
        region: String,
        name: String,
    },
    SetLabels {
        region: String,
        name: String,
    },
    GetInstance {
        zone: String,
        name: String,
    },
    InstanceWrite {
        zone: String,
        name: String,
        what: &'static str,
    },
    GetOperation {
        scope: Scope,
        name: String,
    },
    WaitOperation {
        scope: Scope,
        name: String,
    },
}

/// `(API method name, route)` for the path after `projects/{project}/`.
fn route(verb: &Method, segments: &[&str]) -> Option<(&'static str, Route)> {
    let s = |i: usize| segments[i].to_string();
    Some(match (verb.as_str(), segments) {
        ("GET", ["regions", _, "addresses"]) => {
            ("addresses.list", Route::ListAddresses { region: s(1) })
        }
        ("GET", ["aggregated", "addresses"]) => {
            ("addresses.aggregatedList", Route::AggregatedAddresses)
        }
        ("GET", ["regions", _, "addresses", _]) => (
            "addresses.get",
            Route::GetAddress {
                region: s(1),
                name: s(3),
            },
        ),
        ("POST", ["regions", _, "addresses", _, "setLabels"]) => (
            "addresses.setLabels",
            Route::SetLabels {
                region: s(1),
                name: s(3),
            },
        ),
        ("GET", ["zones", _, "instances", _]) => (
            "instances.get",
            Route::GetInstance {
                zone: s(1),
                name: s(3),
            },
        ),
        ("POST", ["zones", _, "instances", _, "addAccessConfig"]) => (
            "instances.addAccessConfig",
            Route::InstanceWrite {
                zone: s(1),
                name: s(3),
                what: "addAccessConfig",
            },
        ),
        ("POST", ["zones", _, "instances", _, "deleteAccessConfig"]) => (
            "instances.deleteAccessConfig",
            Route::InstanceWrite {
                zone: s(1),
                name: s(3),
                what: "deleteAccessConfig",
            },
        ),
        ("POST", ["zones", _, "instances", _, "updateAccessConfig"]) => (
            "instances.updateAccessConfig",
            Route::InstanceWrite {
                zone: s(1),
                name: s(3),
                what: "updateAccessConfig",
            },
        ),
        ("PATCH", ["zones", _, "instances", _, "updateNetworkInterface"]) => (
            "instances.updateNetworkInterface",
            Route::InstanceWrite {
                zone: s(1),
                name: s(3),
                what: "updateNetworkInterface",
            },
        ),
        ("GET", ["zones", _, "operations", _]) => (
            "zoneOperations.get",
            Route::GetOperation {
                scope: Scope::Zone(s(1)),
                name: s(3),
            },
        ),
        ("POST", ["zones", _, "operations", _, "wait"]) => (
            "zoneOperations.wait",
            Route::WaitOperation {
                scope: Scope::Zone(s(1)),
                name: s(3),
            },
        ),
        ("GET", ["regions", _, "operations", _]) => (
            "regionOperations.get",
            Route::GetOperation {
                scope: Scope::Region(s(1)),
                name: s(3),
            },
        ),
        ("POST", ["regions", _, "operations", _, "wait"]) => (
            "regionOperations.wait",
            Route::WaitOperation {
                scope: Scope::Region(s(1)),
                name: s(3),
            },
        ),
        _ => return None,
    })
}

/// The IAM permission Compute checks for a method.
pub fn permission_of(method: &str) -> String {
    let (resource, verb) = method.split_once('.').unwrap_or((method, ""));
    let verb = match verb {
        "wait" => "get",
        "aggregatedList" => "list",
        other => other,
    };
    format!("compute.{resource}.{verb}")
}

async fn handle(
    AxumState(sh): AxumState<Arc<Shared>>,
    verb: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match serve(&sh, &verb, &uri, &headers, &body).await {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn serve(
    sh: &Shared,
    verb: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, ApiError> {
    sh.count(None);
    let path = uri.path();
    let rest = path
        .strip_prefix("/compute/v1/projects/")
        .ok_or_else(|| ApiError::not_found(path))?;
    let segments: Vec<&str> = rest.split('/').collect();
    let project = segments.first().copied().unwrap_or_default();
    let (method, route) = route(verb, &segments[1..]).ok_or_else(|| ApiError::not_found(path))?;
    sh.count(Some(method));
    if project != sh.links.project {
        return Err(ApiError::not_found(&format!("projects/{project}")));
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = bearer {
        *super::lock(&sh.last_token) = Some(token.to_string());
    } else {
        return Err(ApiError::new(
            401,
            "required",
            "Request is missing required authentication credential. Expected OAuth 2 access token.",
        ));
    }
    let (latency, scripted, denied, random) = {
        let mut faults = sh.faults();
        let denied = faults.denied.contains(method);
        let scripted = faults.take_scripted(method);
        let random = faults.roll();
        (faults.faults.latency, scripted, denied, random)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resource = format!("projects/{}", rest.trim_end_matches('/'));
    if denied || scripted.is_some() || random.is_some() {
        sh.count_injected();
    }
    if denied {
        return Err(ApiError::forbidden(&permission_of(method), &resource));
    }
    let failed_operation = match scripted {
        Some(Failure::Http {
            status,
            reason,
            message,
        }) => return Err(ApiError::new(status, reason, message)),
        Some(Failure::Operation { code, message }) => Some((code, message)),
        None => None,
    };
    if let Some(error) = random {
        return Err(error);
    }
    let query: BTreeMap<String, String> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("Invalid query: {e}")))?;
    let project_path = format!("projects/{project}");
    match route {
        Route::ListAddresses { region } => list(sh, Some(&region), &query),
        Route::AggregatedAddresses => list(sh, None, &query),
        Route::GetAddress { region, name } => {
            let state = sh.state();
            let address = state
                .addresses
                .get(&(region.clone(), name.clone()))
                .ok_or_else(|| {
                    ApiError::not_found(&format!(
                        "{project_path}/regions/{region}/addresses/{name}"
                    ))
                })?;
            let users = state.holders().remove(&address.ip).unwrap_or_default();
            Ok(render_address(address, &users, &sh.links, |i| {
                state.zone_of(i)
            }))
        }
        Route::SetLabels { region, name } => {
            let body = json_body(body)?;
            let (target_link, target_id) = {
                let state = sh.state();
                let a = state
                    .addresses
                    .get(&(region.clone(), name.clone()))
                    .ok_or_else(|| {
                        ApiError::not_found(&format!(
                            "{project_path}/regions/{region}/addresses/{name}"
                        ))
                    })?;
                (sh.links.address(&region, &name), a.id)
            };
            let applied = match failed_operation {
                Some(f) => scripted_error(f),
                None => sh.state().set_labels(&region, &name, &body, &project_path),
            };
            operation(
                sh,
                Scope::Region(region),
                "setLabels",
                target_link,
                target_id,
                applied,
            )
        }
        Route::GetInstance { zone, name } => {
            let state = sh.state();
            Ok(render_instance(
                state.instance(&zone, &name, &project_path)?,
                &sh.links,
            ))
        }
        Route::InstanceWrite { zone, name, what } => {
            let (target_link, target_id) = {
                let state = sh.state();
                let i = state.instance(&zone, &name, &project_path)?;
                (sh.links.instance(&zone, &name), i.id)
            };
            let nic = query.get("networkInterface").cloned().ok_or_else(|| {
                ApiError::bad_request("Required parameter 'networkInterface' is missing")
            })?;
            let applied = match failed_operation {
                Some(f) => scripted_error(f),
                None => {
                    let mut state = sh.state();
                    match what {
                        "addAccessConfig" => state.add_access_config(
                            &zone,
                            &name,
                            &nic,
                            &json_body(body)?,
                            &project_path,
                        ),
                        "deleteAccessConfig" => {
                            let access = query.get("accessConfig").ok_or_else(|| {
                                ApiError::bad_request(
                                    "Required parameter 'accessConfig' is missing",
                                )
                            })?;
                            state.delete_access_config(&zone, &name, &nic, access, &project_path)
                        }
                        "updateAccessConfig" => state.update_access_config(
                            &zone,
                            &name,
                            &nic,
                            &json_body(body)?,
                            &project_path,
                        ),
                        _ => state.update_network_interface(
                            &zone,
                            &name,
                            &nic,
                            &json_body(body)?,
                            &project_path,
                        ),
                    }
                }
            };
            operation(sh, Scope::Zone(zone), what, target_link, target_id, applied)
        }
        Route::GetOperation { scope, name } => {
            let op = sh
                .operation(&scope, &name)
                .ok_or_else(|| ApiError::not_found(&format!("{project_path}/operations/{name}")))?;
            Ok(render_operation(&op, &sh.links, Instant::now()))
        }
        Route::WaitOperation { scope, name } => {
            let op = sh
                .operation(&scope, &name)
                .ok_or_else(|| ApiError::not_found(&format!("{project_path}/operations/{name}")))?;
            let until = op.done_at.min(Instant::now() + WAIT_LIMIT);
            tokio::time::sleep_until(until).await;
            Ok(render_operation(&op, &sh.links, Instant::now()))
        }
    }
}

fn scripted_error((code, message): (String, String)) -> Applied {
    Ok(Some(super::model::OperationError {
        code,
        message,
        http_status: 400,
    }))
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON payload received. {e}")))
}

/// A mutating call's answer: an operation, RUNNING for `operation_time`, ending in the
/// error the call produced, if any. A call refused outright is an HTTP error instead.
fn operation(
    sh: &Shared,
    scope: Scope,
    what: &str,
    target_link: String,
    target_id: u64,
    applied: Applied,
) -> Result<Value, ApiError> {
    let error = applied?;
    let op = sh.new_operation(scope, what, target_link, target_id, error);
    Ok(render_operation(&op, &sh.links, Instant::now()))
}

fn list(
    sh: &Shared,
    region: Option<&str>,
    query: &BTreeMap<String, String>,
) -> Result<Value, ApiError> {
    let filter = match query
        .get("filter")
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
    {
        Some(text) => Some(Filter::parse(text, ADDRESS_FIELDS).map_err(|why| {
            ApiError::invalid_field(
                "filter",
                text,
                &format!("Invalid list filter expression: {why}."),
            )
        })?),
        None => None,
    };
    let max = match query.get("maxResults") {
        None => MAX_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_field("maxResults", text, "Must be between 1 and 500.")
            })?,
    };
    let offset = match query.get("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .ok_or_else(|| ApiError::invalid_field("pageToken", token, "Invalid page token."))?,
    };
    let mut rows: Vec<(String, String, u64, Value)> = {
        let state = sh.state();
        let holders = state.holders();
        state
            .addresses
            .values()
            .filter(|a| region.is_none_or(|r| a.region == r))
            .map(|a| {
                let users = holders.get(&a.ip).cloned().unwrap_or_default();
                let rendered = render_address(a, &users, &sh.links, |i| state.zone_of(i));
                (a.region.clone(), a.name.clone(), a.id, rendered)
            })
            .filter(|(_, _, _, v)| filter.as_ref().is_none_or(|f| f.matches(v)))
            .collect()
    };
    match query
        .get("orderBy")
        .map(|o| o.split_whitespace().collect::<Vec<_>>())
    {
        None => rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1))),
        Some(words) if words == ["name"] => rows.sort_by(|a, b| a.1.cmp(&b.1)),
        Some(words) if words == ["creationTimestamp", "desc"] => {
            rows.sort_by_key(|row| std::cmp::Reverse(row.2))
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "orderBy",
                query.get("orderBy").map(String::as_str).unwrap_or_default(),
                "Sorting is only supported by name or creationTimestamp desc.",
            ))
        }
    }
    let total = rows.len();
    let page: Vec<(String, Value)> = rows
        .into_iter()
        .skip(offset)
        .take(max)
        .map(|(r, _, _, v)| (r, v))
        .collect();
    let next = (offset + page.len() < total)
        .then(|| URL_SAFE_NO_PAD.encode(format!("offset:{}", offset + page.len())));
    let mut out = match region {
        Some(region) => {
            let mut out = json!({
                "kind": "compute#addressList",
                "id": format!("projects/{}/regions/{region}/addresses", sh.links.project),
                "selfLink": format!("{}/addresses", sh.links.region(region)),
            });
            if !page.is_empty() {
                out["items"] = json!(page.into_iter().map(|(_, v)| v).collect::<Vec<_>>());
            }
            out
        }
        None => {
            let mut scoped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for (region, v) in page {
                scoped
                    .entry(format!("regions/{region}"))
                    .or_default()
                    .push(v);
            }
            let items: serde_json::Map<String, Value> = scoped
                .into_iter()
                .map(|(k, v)| (k, json!({"addresses": v})))
                .collect();
            json!({
                "kind": "compute#addressAggregatedList",
                "id": format!("projects/{}/aggregated/addresses", sh.links.project),
                "selfLink": format!("{}/aggregated/addresses", sh.links.project()),
                "items": items,
            })
        }
    };
    if let Some(token) = next {
        out["nextPageToken"] = json!(token);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_permissions() {
        let (m, _) = route(
            &Method::PATCH,
            &["zones", "z", "instances", "n", "updateNetworkInterface"],
        )
        .unwrap();
        assert_eq!(permission_of(m), "compute.instances.updateNetworkInterface");
        let (m, _) = route(&Method::POST, &["zones", "z", "operations", "op-1", "wait"]).unwrap();
        assert_eq!(permission_of(m), "compute.zoneOperations.get");
        assert_eq!(
            permission_of("addresses.aggregatedList"),
            "compute.addresses.list"
        );
        assert!(route(
            &Method::GET,
            &["zones", "z", "instances", "n", "addAccessConfig"]
        )
        .is_none());
        assert!(route(&Method::DELETE, &["regions", "r", "addresses", "a"]).is_none());
    }
}
