//! The HTTP handler: one fallback route that classifies the request
//! (`request::resolve`), counts it, injects faults, and serves the verb
//! against the store with the real server's semantics.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query as QueryExtractor, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::events::{stored, view};
use super::faults::Fault;
use super::kind::Kind;
use super::patch::{self, PatchType};
use super::request::{self, Query, RequestInfo, Target, Verb};
use super::status::{self, ApiError, MODIFIED};
use super::table::{self, Repr};
use super::watch::{self, WatchParams};
use super::{meta, Shared};

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let resolved = QueryExtractor::<Query>::try_from_uri(&uri)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
        .and_then(|q| Ok((request::resolve(&method, uri.path(), &q.0, &headers)?, q.0)));
    let info = match &resolved {
        Ok((Target::Resource(info), _)) => Some(info),
        _ => None,
    };
    sh.counts()
        .record(info.map(|i| (i.verb.as_str(), i.resource())));

    let (latency, fault) = sh.roll_faults(
        info.is_some_and(|i| i.verb.writes_existing()),
        info.is_some_and(|i| i.verb.writes_existing() || i.verb == Verb::Create),
    );
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    // A timeout after the write: served below, answered 504 whatever happened.
    let timeout_after_write = fault == Some(Fault::TimeoutAfterWrite);
    if let Some(fault) = fault.filter(|f| *f != Fault::TimeoutAfterWrite) {
        return injected(fault, info).into_response();
    }

    // RBAC (off unless `KubeSim::enforce_rbac`): 401/403 before anything is served.
    if let Ok((target, query)) = &resolved {
        if let Some(refused) = sh.authorize(target, query, uri.path(), &headers) {
            return refused;
        }
    }
    match resolved {
        Err(e) => e.into_response(),
        Ok((Target::NonResource(what), _)) => super::discovery::serve(&what, &sh.address),
        Ok((Target::Resource(info), query)) => {
            tracing::trace!(
                verb = info.verb.as_str(),
                group = info.api_group(),
                resource = info.resource(),
                subresource = info.subresource.as_deref(),
                namespace = info.ns(),
                name = info.name.as_deref(),
                authenticated = info.token.is_some(),
                "kube sim request"
            );
            let served = serve(&sh, &info, &query, &headers, &body)
                .unwrap_or_else(IntoResponse::into_response);
            if timeout_after_write {
                return ApiError::Timeout.into_response();
            }
            served
        }
    }
}

fn injected(fault: Fault, info: Option<&RequestInfo>) -> ApiError {
    match (fault, info) {
        (Fault::Conflict, Some(i)) => {
            ApiError::conflict(i.def(), i.name.as_deref().unwrap_or_default(), MODIFIED)
        }
        (Fault::Unavailable, _) => {
            ApiError::Unavailable("the server is currently unable to handle the request".into())
        }
        _ => ApiError::Internal("injected fault".into()),
    }
}

fn serve(
    sh: &Shared,
    info: &RequestInfo,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let repr = Repr::negotiate(headers, query);
    match info.verb {
        Verb::Get => get(sh, info, repr),
        Verb::List => list(sh, info, query, repr),
        Verb::Watch => Ok(watch::serve(
            &sh.store,
            info,
            WatchParams::parse(info, query)?,
            repr,
            sh.shutdown.clone(),
            sh.bookmark_interval(),
        )),
        Verb::Create => {
            require_json(headers)?;
            create(sh, info, body)
        }
        Verb::Update => {
            require_json(headers)?;
            update(sh, info, body)
        }
        Verb::Patch => patch(sh, info, headers, body),
        Verb::Delete => delete(sh, info, body),
    }
}

fn ok(code: StatusCode, v: Value) -> Response {
    (code, Json(v)).into_response()
}

fn name(info: &RequestInfo) -> &str {
    info.name.as_deref().unwrap_or_default()
}

fn get(sh: &Shared, info: &RequestInfo, repr: Repr) -> Result<Response, ApiError> {
    let obj = sh
        .store
        .get(info.kind, info.ns(), name(info))
        .ok_or_else(|| ApiError::not_found(info.def(), name(info)))?;
    Ok(ok(
        StatusCode::OK,
        table::one(repr, info.kind, view(info.kind, obj)),
    ))
}

/// Continue tokens: the hex of the last returned object's key.
fn encode_continue(obj: &Value) -> String {
    let key = format!(
        "{}\0{}",
        meta::namespace(obj).unwrap_or_default(),
        meta::name(obj).unwrap_or_default()
    );
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::BadRequest("continue key is not valid".into());
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let key = String::from_utf8(bytes).map_err(|_| bad())?;
    let (ns, name) = key.split_once('\0').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}

fn list(sh: &Shared, info: &RequestInfo, query: &Query, repr: Repr) -> Result<Response, ApiError> {
    let selectors = watch::selectors(info, query)?;
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("invalid limit: {l:?}")))?,
    };
    let after = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let (stored, rv) = sh.store.list(info.kind, info.ns());
    let mut items: Vec<Value> = stored
        .into_iter()
        .filter(|o| {
            after.as_ref().is_none_or(|(ns, n)| {
                (
                    meta::namespace(o).unwrap_or_default(),
                    meta::name(o).unwrap_or_default(),
                ) > (ns.as_str(), n.as_str())
            })
        })
        .map(|o| view(info.kind, o))
        .filter(|o| selectors.matches(o))
        .collect();
    let mut list_meta = json!({"resourceVersion": rv.to_string()});
    if limit > 0 && items.len() > limit {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            list_meta["continue"] = json!(encode_continue(last));
            list_meta["remainingItemCount"] = json!(remaining);
        }
    }
    Ok(ok(
        StatusCode::OK,
        table::list(repr, info.kind, items, list_meta),
    ))
}

/// Only JSON bodies are understood (typed Go clients that send protobuf get
/// a clear 415 instead of a decoding error).
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    match media.as_deref() {
        None | Some("application/json") | Some("") => Ok(()),
        Some(_) => Err(ApiError::UnsupportedMediaType("application/json".into())),
    }
}

/// Parses a request body that must be a JSON object of the right type.
fn parse_object(info: &RequestInfo, body: &[u8]) -> Result<Value, ApiError> {
    let mut obj: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("error decoding request body: {e}")))?;
    if !obj.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    let def = info.def();
    let api_version = def.api_version();
    for (field, want) in [
        ("apiVersion", api_version.as_str()),
        ("kind", def.kind_name),
    ] {
        match obj.get(field).and_then(Value::as_str) {
            None | Some("") => obj[field] = json!(want),
            Some(got) if got == want => {}
            Some(got) => {
                return Err(ApiError::BadRequest(format!(
                    "the {field} in the request body ({got}) does not match the expected {field} ({want})"
                )))
            }
        }
    }
    if def.namespaced {
        if let (Some(body_ns), Some(path_ns)) = (meta::namespace(&obj), info.ns()) {
            if body_ns != path_ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request"
                        .into(),
                ));
            }
        }
    } else {
        meta::metadata_mut(&mut obj).remove("namespace");
    }
    Ok(obj)
}

/// Status-subresource rules: the main resource cannot change `.status`,
/// and `/status` can change nothing else.
fn apply_status_rules(info: &RequestInfo, current: &Value, mut next: Value) -> Value {
    if !info.def().has_status {
        return next;
    }
    let (mut out, status) = if info.subresource.as_deref() == Some("status") {
        let status = next.get("status").cloned();
        (current.clone(), status)
    } else {
        let status = current.get("status").cloned();
        (std::mem::take(&mut next), status)
    };
    if let Some(m) = out.as_object_mut() {
        match status {
            Some(s) => m.insert("status".into(), s),
            None => m.remove("status"),
        };
    }
    out
}

/// Optimistic concurrency: a version or uid in the request must match.
fn check_preconditions(
    info: &RequestInfo,
    current: &Value,
    rv: Option<&str>,
    uid: Option<&str>,
    as_precondition: bool,
) -> Result<(), ApiError> {
    let (def, name) = (info.def(), name(info));
    let cur_uid = meta::uid(current).unwrap_or_default();
    if let Some(uid) = uid.filter(|u| *u != cur_uid) {
        return Err(ApiError::conflict(
            def,
            name,
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {cur_uid}"
            ),
        ));
    }
    let cur_rv = meta::resource_version(current).unwrap_or_default();
    if let Some(rv) = rv.filter(|r| *r != cur_rv) {
        let detail = if as_precondition {
            format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {cur_rv}")
        } else {
            MODIFIED.to_string()
        };
        return Err(ApiError::conflict(def, name, detail));
    }
    Ok(())
}

fn check_name(info: &RequestInfo, obj: &Value) -> Result<(), ApiError> {
    let got = meta::name(obj).unwrap_or_default();
    if got != name(info) {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({got}) does not match the name on the URL ({})",
            name(info)
        )));
    }
    Ok(())
}

fn create(sh: &Shared, info: &RequestInfo, body: &[u8]) -> Result<Response, ApiError> {
    let mut obj = parse_object(info, body)?;
    if info.kind == Kind::Namespace && obj.pointer("/status/phase").is_none() {
        obj["status"] = json!({"phase": "Active"});
    }
    let created = sh
        .store
        .create(info.kind, info.ns(), stored(info.kind, obj))?;
    Ok(ok(StatusCode::CREATED, view(info.kind, created)))
}

fn update(sh: &Shared, info: &RequestInfo, body: &[u8]) -> Result<Response, ApiError> {
    let obj = parse_object(info, body)?;
    check_name(info, &obj)?;
    let updated = sh.store.update(info.kind, info.ns(), name(info), |cur| {
        let (rv, uid) = (meta::resource_version(&obj), meta::uid(&obj));
        check_preconditions(info, cur, rv, uid, false)?;
        Ok(apply_status_rules(
            info,
            cur,
            stored(info.kind, obj.clone()),
        ))
    })?;
    Ok(ok(StatusCode::OK, view(info.kind, updated)))
}

fn patch(
    sh: &Shared,
    info: &RequestInfo,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok());
    let kind = PatchType::from_content_type(content_type)?;
    let updated = sh.store.update(info.kind, info.ns(), name(info), |cur| {
        let patched = patch::apply(kind, &view(info.kind, cur.clone()), body)?;
        if !patched.is_object() {
            return Err(ApiError::BadRequest(
                "the patched object is not a JSON object".into(),
            ));
        }
        check_name(info, &patched)?;
        // A patch that carries the version it was made against must match.
        let (rv, uid) = (meta::resource_version(&patched), meta::uid(&patched));
        check_preconditions(info, cur, rv, uid, false)?;
        Ok(apply_status_rules(info, cur, stored(info.kind, patched)))
    })?;
    Ok(ok(StatusCode::OK, view(info.kind, updated)))
}

fn delete(sh: &Shared, info: &RequestInfo, body: &[u8]) -> Result<Response, ApiError> {
    let opts: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding DeleteOptions: {e}")))?
    };
    let pre = opts.get("preconditions");
    let field = |f: &str| pre.and_then(|p| p.get(f)).and_then(Value::as_str);
    let gone = sh.store.delete(info.kind, info.ns(), name(info), |cur| {
        check_preconditions(info, cur, field("resourceVersion"), field("uid"), true)
    })?;
    let uid = meta::uid(&gone).unwrap_or_default();
    Ok(ok(
        StatusCode::OK,
        status::deleted(info.def(), name(info), uid),
    ))
}
