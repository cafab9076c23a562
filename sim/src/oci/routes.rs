//! The HTTP side of the OCI simulator: the Core Services paths under `/20160918/`,
//! request signatures, latency and fault injection, request counters, `limit`/`page`
//! paging with `opc-next-page`, `etag`/`if-match`, and `opc-request-id` on every answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::errors::ApiError;
use super::faults::Failure;
use super::model::{
    etag, render_attachment, render_instance, render_private_ip, render_public_ip, render_vnic,
    Lifetime, PipState,
};
use super::Shared;

const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/imds/{instance}/opc/v2/{*path}",
            axum::routing::get(super::metadata::serve),
        )
        .route("/v1/x509", axum::routing::post(super::federation::federate))
        .fallback(handle)
        .with_state(shared)
}

/// An answer: a JSON body, and its ETag and next-page token when it has them.
struct Answer {
    body: Value,
    etag: Option<String>,
    next_page: Option<String>,
}

impl Answer {
    fn plain(body: Value) -> Answer {
        Answer {
            body,
            etag: None,
            next_page: None,
        }
    }
}

/// `(operation, path parameter)` for a method and the path after `/20160918/`.
pub fn route(verb: &Method, segments: &[&str]) -> Option<(&'static str, String)> {
    let id = |i: usize| segments.get(i).map(|s| s.to_string()).unwrap_or_default();
    Some(match (verb.as_str(), segments) {
        ("GET", ["publicIps"]) => ("ListPublicIps", String::new()),
        ("POST", ["publicIps"]) => ("CreatePublicIp", String::new()),
        ("POST", ["publicIps", "actions", "getByPrivateIpId"]) => {
            ("GetPublicIpByPrivateIpId", String::new())
        }
        ("POST", ["publicIps", "actions", "getByIpAddress"]) => {
            ("GetPublicIpByIpAddress", String::new())
        }
        ("GET", ["publicIps", _]) => ("GetPublicIp", id(1)),
        ("PUT", ["publicIps", _]) => ("UpdatePublicIp", id(1)),
        ("DELETE", ["publicIps", _]) => ("DeletePublicIp", id(1)),
        ("GET", ["vnicAttachments"]) => ("ListVnicAttachments", String::new()),
        ("GET", ["vnics", _]) => ("GetVnic", id(1)),
        ("GET", ["privateIps"]) => ("ListPrivateIps", String::new()),
        ("GET", ["privateIps", _]) => ("GetPrivateIp", id(1)),
        ("GET", ["instances", _]) => ("GetInstance", id(1)),
        _ => return None,
    })
}

async fn handle(
    AxumState(sh): AxumState<Arc<Shared>>,
    verb: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = sh.request_id(headers.get("opc-request-id").and_then(|v| v.to_str().ok()));
    let (mut response, etag, next) = match serve(&sh, &verb, &uri, &headers, &body).await {
        // A delete answers 204 with no body.
        Ok(a) if a.body.is_null() => (StatusCode::NO_CONTENT.into_response(), a.etag, a.next_page),
        Ok(a) => (Json(a.body).into_response(), a.etag, a.next_page),
        Err(e) => (e.into_response(), None, None),
    };
    let h = response.headers_mut();
    for (name, value) in [
        ("opc-request-id", Some(request_id)),
        ("etag", etag),
        ("opc-next-page", next),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    }
    response
}

async fn serve(
    sh: &Shared,
    verb: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answer, ApiError> {
    sh.count(None);
    let path = uri.path();
    let segments: Vec<&str> = path
        .strip_prefix("/20160918/")
        .ok_or_else(|| ApiError::no_route(verb.as_str(), path))?
        .split('/')
        .collect();
    let (operation, id) =
        route(verb, &segments).ok_or_else(|| ApiError::no_route(verb.as_str(), path))?;
    sh.count(Some(operation));
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or(path);
    let key_id = {
        let keys = super::lock(&sh.keys);
        let principals = super::lock(&sh.principals);
        let now = chrono::Utc::now();
        // API keys from the key ring; `ST$<token>` from the token's own jwk.
        let lookup = |key_id: &str| match key_id.strip_prefix("ST$") {
            Some(token) => principals.session_key(token, now.timestamp()),
            None => keys.lookup(key_id),
        };
        super::signature::verify_with(&lookup, true, verb, target, headers, body, now)
    };
    match key_id {
        Ok(key) => *super::lock(&sh.last_key) = Some(key),
        Err(e) => {
            sh.count_unauthenticated();
            return Err(e);
        }
    }
    let (latency, transition, scripted, denied, random) = {
        let mut faults = sh.faults();
        let denied = faults.denied.contains(operation);
        let scripted = faults.take_scripted(operation);
        let random = faults.roll();
        (
            faults.faults.latency,
            faults.faults.transition_time,
            scripted,
            denied,
            random,
        )
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if denied || scripted.is_some() || random.is_some() {
        sh.count_injected();
    }
    if denied {
        // OCI answers a missing policy statement exactly like a missing object.
        return Err(ApiError::not_authorized_or_not_found());
    }
    let landed_error = match scripted {
        Some(f @ Failure::Refused { .. }) => return Err(f.error()),
        Some(f @ Failure::LandedThenFailed { .. }) => Some(f.error()),
        None => None,
    };
    if let Some(error) = random {
        return Err(error);
    }
    let query: BTreeMap<String, String> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| ApiError::invalid_parameter(format!("Invalid query: {e}")))?;
    let now = Instant::now();
    let mut state = sh.state();
    state.settle(now);
    let if_match = headers.get("if-match").and_then(|v| v.to_str().ok());
    let answer = match operation {
        "ListPublicIps" => {
            let scope = query
                .get("scope")
                .ok_or_else(|| ApiError::missing_parameter("scope"))?;
            let compartment = compartment_of(&state.compartments, &query)?;
            let ad = query.get("availabilityDomain");
            let lifetime = query.get("lifetime").map(String::as_str);
            if !matches!(lifetime, None | Some("EPHEMERAL") | Some("RESERVED")) {
                return Err(ApiError::invalid_parameter(
                    "lifetime must be EPHEMERAL or RESERVED.",
                ));
            }
            let regional = match scope.as_str() {
                "REGION" => true,
                "AVAILABILITY_DOMAIN" if ad.is_some() => false,
                "AVAILABILITY_DOMAIN" => {
                    return Err(ApiError::invalid_parameter(
                        "availabilityDomain is required when scope is AVAILABILITY_DOMAIN.",
                    ))
                }
                _ => {
                    return Err(ApiError::invalid_parameter(
                        "scope must be REGION or AVAILABILITY_DOMAIN.",
                    ))
                }
            };
            let rows: Vec<Value> = state
                .public_ips
                .values()
                .filter(|p| p.compartment == compartment && p.state != PipState::Terminated)
                .filter(|p| match (regional, p.lifetime) {
                    (true, Lifetime::Reserved) => true,
                    (false, Lifetime::Ephemeral) => p.availability_domain.as_ref() == ad,
                    _ => false,
                })
                .filter(|p| lifetime.is_none_or(|l| l == p.lifetime.api_name()))
                .map(render_public_ip)
                .collect();
            page(rows, &query)?
        }
        "GetPublicIp" => {
            let p = state.live(&id)?;
            with_etag(render_public_ip(p), &p.id, p.generation)
        }
        "UpdatePublicIp" => {
            let current = state.live(&id)?;
            check_if_match(if_match, &current.id, current.generation)?;
            state.update_public_ip(&id, &json_object(body)?, now, transition)?;
            let p = state.live(&id)?;
            with_etag(render_public_ip(p), &p.id, p.generation)
        }
        "CreatePublicIp" => {
            let created = super::now_timestamp();
            let new = state.create_public_ip(&json_object(body)?, now, transition, created)?;
            let p = state.live(&new)?;
            with_etag(render_public_ip(p), &p.id, p.generation)
        }
        "DeletePublicIp" => {
            let current = state.live(&id)?;
            check_if_match(if_match, &current.id, current.generation)?;
            state.delete_public_ip(&id, now, transition)?;
            Answer::plain(Value::Null)
        }
        "GetPublicIpByPrivateIpId" => {
            let private_ip = body_str(body, "privateIpId")?;
            if !state.private_ips.contains_key(&private_ip) {
                return Err(ApiError::not_authorized_or_not_found());
            }
            let p = state
                .occupant(&private_ip)
                .ok_or_else(ApiError::not_authorized_or_not_found)?;
            with_etag(render_public_ip(p), &p.id, p.generation)
        }
        "GetPublicIpByIpAddress" => {
            let ip = body_str(body, "ipAddress")?;
            let p = state
                .public_ips
                .values()
                .find(|p| p.ip.to_string() == ip && p.state != PipState::Terminated)
                .ok_or_else(ApiError::not_authorized_or_not_found)?;
            with_etag(render_public_ip(p), &p.id, p.generation)
        }
        "ListVnicAttachments" => {
            let compartment = compartment_of(&state.compartments, &query)?;
            let rows: Vec<Value> = state
                .vnics
                .values()
                .filter(|v| v.compartment == compartment)
                .filter(|v| query.get("instanceId").is_none_or(|i| *i == v.instance_id))
                .filter(|v| query.get("vnicId").is_none_or(|i| *i == v.id))
                .filter(|v| {
                    query
                        .get("availabilityDomain")
                        .is_none_or(|a| *a == v.availability_domain)
                })
                .map(render_attachment)
                .collect();
            page(rows, &query)?
        }
        "GetVnic" => {
            let v = state
                .vnics
                .get(&id)
                .ok_or_else(ApiError::not_authorized_or_not_found)?;
            let primary = state
                .private_ips
                .values()
                .find(|p| p.vnic_id == v.id && p.is_primary);
            let public = primary.and_then(|p| state.occupant(&p.id)).map(|p| p.ip);
            let body = render_vnic(v, primary.map(|p| p.ip), public);
            with_etag(body, &v.id, u64::from(v.attached))
        }
        "ListPrivateIps" => {
            let (vnic, subnet, address) = (
                query.get("vnicId"),
                query.get("subnetId"),
                query.get("ipAddress"),
            );
            if vnic.is_none() && subnet.is_none() {
                return Err(ApiError::invalid_parameter(
                    "Specify vnicId, subnetId, or subnetId and ipAddress.",
                ));
            }
            let rows: Vec<Value> = state
                .private_ips
                .values()
                .filter(|p| vnic.is_none_or(|v| *v == p.vnic_id))
                .filter(|p| subnet.is_none_or(|s| *s == p.subnet_id))
                .filter(|p| address.is_none_or(|a| *a == p.ip.to_string()))
                .map(render_private_ip)
                .collect();
            page(rows, &query)?
        }
        "GetPrivateIp" => {
            let p = state
                .private_ips
                .get(&id)
                .ok_or_else(ApiError::not_authorized_or_not_found)?;
            with_etag(render_private_ip(p), &p.id, 1)
        }
        "GetInstance" => {
            let i = state
                .instances
                .get(&id)
                .ok_or_else(ApiError::not_authorized_or_not_found)?;
            with_etag(render_instance(i, &state.region), &i.id, i.generation)
        }
        _ => return Err(ApiError::no_route(verb.as_str(), path)),
    };
    match landed_error {
        Some(error) => Err(error),
        None => Ok(answer),
    }
}

fn with_etag(body: Value, id: &str, generation: u64) -> Answer {
    Answer {
        body,
        etag: Some(etag(id, generation)),
        next_page: None,
    }
}

/// `if-match` (when sent) must be the object's current ETag, else 412.
fn check_if_match(if_match: Option<&str>, id: &str, generation: u64) -> Result<(), ApiError> {
    match if_match {
        Some(tag) if tag.trim_matches('"') != etag(id, generation) => {
            Err(ApiError::no_etag_match())
        }
        _ => Ok(()),
    }
}

/// `compartmentId`: required, and one the tenancy has (else 404, as for a missing policy).
fn compartment_of(
    known: &std::collections::BTreeSet<String>,
    query: &BTreeMap<String, String>,
) -> Result<String, ApiError> {
    let compartment = query
        .get("compartmentId")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::missing_parameter("compartmentId"))?;
    if !known.contains(compartment) {
        return Err(ApiError::not_authorized_or_not_found());
    }
    Ok(compartment.clone())
}

/// One page of `rows` per `limit` and `page`; `opc-next-page` when more remain.
fn page(rows: Vec<Value>, query: &BTreeMap<String, String>) -> Result<Answer, ApiError> {
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!("limit must be between 1 and {MAX_LIMIT}."))
            })?,
    };
    let offset = match query.get("page").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .ok_or_else(|| ApiError::invalid_parameter("Invalid page token."))?,
    };
    let total = rows.len();
    let items: Vec<Value> = rows.into_iter().skip(offset).take(limit).collect();
    let end = offset + items.len();
    Ok(Answer {
        body: Value::Array(items),
        etag: None,
        next_page: (end < total).then(|| URL_SAFE_NO_PAD.encode(format!("offset:{end}"))),
    })
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::cannot_parse("the body must be a JSON object")),
        Err(e) => Err(ApiError::cannot_parse(e)),
    }
}

fn body_str(body: &[u8], key: &str) -> Result<String, ApiError> {
    json_object(body)?
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .ok_or_else(|| ApiError::missing_parameter(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_cover_the_operations() {
        assert_eq!(
            route(&Method::PUT, &["publicIps", "x"]).map(|r| r.0),
            Some("UpdatePublicIp")
        );
        assert_eq!(
            route(&Method::POST, &["publicIps", "actions", "getByPrivateIpId"]).map(|r| r.0),
            Some("GetPublicIpByPrivateIpId")
        );
        assert!(route(&Method::PATCH, &["publicIps", "x"]).is_none());
        assert!(route(&Method::GET, &["vnics"]).is_none());
    }

    #[test]
    fn paging_walks_every_row_once() {
        let rows: Vec<Value> = (0..7).map(Value::from).collect();
        let mut query = BTreeMap::from([("limit".to_string(), "3".to_string())]);
        let mut seen = Vec::new();
        loop {
            let a = page(rows.clone(), &query).unwrap();
            seen.extend(a.body.as_array().unwrap().clone());
            match a.next_page {
                Some(next) => query.insert("page".into(), next),
                None => break,
            };
        }
        assert_eq!(seen, rows);
        query.insert("page".into(), "garbage!".into());
        assert_eq!(
            page(rows.clone(), &query).err().map(|e| e.status),
            Some(400)
        );
        query.insert("limit".into(), "0".into());
        assert!(page(rows, &query).is_err());
    }
}
