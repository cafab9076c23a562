//! The HTTP side of the Compute simulator: the v1 paths of the discovery document
//! (`compute.v1.json`), bearer auth, the declared query parameters (others are
//! refused: [`super::params`]), latency and fault injection, the rate quotas
//! ([`super::limits`]), request counters, lists
//! ([`super::listing`]), and writes whose operations run for a while, apply their
//! change when they complete ([`super::operations`]) and can be waited on with
//! `operations/{op}/wait` (best-effort: it may answer while still RUNNING).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::errors::ApiError;
use super::faults::{Failure, QUOTA_EXCEEDED};
use super::listing::list;
use super::model::{render_address, render_instance, render_operation, OperationError, Scope};
use super::operations::{Change, Write};
use super::state::{Applied, State};
use super::{params, Shared};

/// Longest a `wait` is held open (the API answers after about two minutes).
const WAIT_LIMIT: Duration = Duration::from_secs(120);

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
    sh: &Arc<Shared>,
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
    let query: BTreeMap<String, String> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("Invalid query: {e}")))?;
    params::check(method, &query)?;
    let limited = sh.rate_limit(method);
    let (latency, scripted, denied, roll) = {
        let mut faults = sh.faults();
        let denied = faults.denied.contains(method);
        // A request the quotas refuse still rolls the dice but spends no script.
        let scripted = match limited {
            Ok(()) => faults.take_scripted(method),
            Err(_) => None,
        };
        let roll = faults.roll();
        (faults.faults.latency, scripted, denied, roll)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    limited?;
    let resource = format!("projects/{}", rest.trim_end_matches('/'));
    let write = super::WRITE_METHODS.contains(&method);
    let instance_write = matches!(route, Route::InstanceWrite { .. });
    let quota = write && roll.quota;
    if denied
        || scripted.is_some()
        || roll.error.is_some()
        || (instance_write && roll.not_ready)
        || quota
    {
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
        None if quota => Some((
            QUOTA_EXCEEDED.to_string(),
            "Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 8.0 in region.".to_string(),
        )),
        None => None,
    };
    if let Some(error) = roll.error {
        return Err(error);
    }
    let project_path = format!("projects/{project}");
    match route {
        Route::ListAddresses { region } => list(sh, Some(&region), &query, roll.empty_page),
        Route::AggregatedAddresses => list(sh, None, &query, roll.empty_page),
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
            let target_id = {
                let state = sh.state();
                state
                    .addresses
                    .get(&(region.clone(), name.clone()))
                    .map(|a| a.id)
                    .ok_or_else(|| {
                        ApiError::not_found(&format!(
                            "{project_path}/regions/{region}/addresses/{name}"
                        ))
                    })?
            };
            let change: Change = match failed_operation {
                Some(f) => Box::new(move |_: &mut State| scripted_error(&f)),
                None => {
                    let (region, name) = (region.clone(), name.clone());
                    Box::new(move |state: &mut State| {
                        state.set_labels(&region, &name, &body, &project_path)
                    })
                }
            };
            let write = Write {
                target_link: sh.links.address(&region, &name),
                scope: Scope::Region(region),
                what: "setLabels",
                target_id,
                resource,
            };
            let op = sh.start_operation(write, change, false)?;
            Ok(render_operation(&op, &sh.links))
        }
        Route::GetInstance { zone, name } => {
            let state = sh.state();
            Ok(render_instance(
                state.instance(&zone, &name, &project_path)?,
                &sh.links,
            ))
        }
        Route::InstanceWrite { zone, name, what } => {
            let target_id = sh.state().instance(&zone, &name, &project_path)?.id;
            let nic = query.get("networkInterface").cloned().unwrap_or_default();
            let access = query.get("accessConfig").cloned().unwrap_or_default();
            let body = json_body(body)?;
            let change: Change = match failed_operation {
                Some(f) => Box::new(move |_: &mut State| scripted_error(&f)),
                None => {
                    let (zone, name) = (zone.clone(), name.clone());
                    Box::new(move |state: &mut State| match what {
                        "addAccessConfig" => {
                            state.add_access_config(&zone, &name, &nic, &body, &project_path)
                        }
                        "deleteAccessConfig" => {
                            state.delete_access_config(&zone, &name, &nic, &access, &project_path)
                        }
                        "updateAccessConfig" => {
                            state.update_access_config(&zone, &name, &nic, &body, &project_path)
                        }
                        _ => {
                            state.update_network_interface(&zone, &name, &nic, &body, &project_path)
                        }
                    })
                }
            };
            let write = Write {
                target_link: sh.links.instance(&zone, &name),
                scope: Scope::Zone(zone),
                what,
                target_id,
                resource: resource
                    .rsplit_once('/')
                    .map(|(instance, _)| instance.to_string())
                    .unwrap_or(resource),
            };
            let op = sh.start_operation(write, change, roll.not_ready)?;
            Ok(render_operation(&op, &sh.links))
        }
        Route::GetOperation { scope, name } => {
            let op = sh
                .operation(&scope, &name)
                .ok_or_else(|| ApiError::not_found(&format!("{project_path}/operations/{name}")))?;
            Ok(render_operation(&op, &sh.links))
        }
        Route::WaitOperation { scope, name } => {
            let op = sh
                .operation(&scope, &name)
                .ok_or_else(|| ApiError::not_found(&format!("{project_path}/operations/{name}")))?;
            // Best-effort, as documented: it may answer at once, still RUNNING.
            if !roll.wait_early {
                let until = op.done_at.min(Instant::now() + WAIT_LIMIT);
                tokio::time::sleep_until(until).await;
            }
            let op = sh.operation(&scope, &name).unwrap_or(op);
            Ok(render_operation(&op, &sh.links))
        }
    }
}

fn scripted_error((code, message): &(String, String)) -> Applied {
    let http_status = if code == QUOTA_EXCEEDED { 403 } else { 400 };
    Ok(Some(OperationError {
        code: code.clone(),
        message: message.clone(),
        http_status,
    }))
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON payload received. {e}")))
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
