//! The HTTP handler: one fallback route that classifies the request
//! (`request::resolve`), counts it, injects faults, and serves the verb
//! against the store with the real server's semantics.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query as QueryExtractor, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::events::{stored, view};
use super::faults::Fault;
use super::field::FieldError;
use super::kind::Kind;
use super::patch::{self, PatchType};
use super::request::{self, Query, RequestInfo, Target, Verb};
use super::schema::{self, FieldValidation};
use super::ssa::{self, Writer};
use super::status::ResourceRef;
use super::status::{self, ApiError, MODIFIED};
use super::store::ListQuery;
use super::table::{self, Repr};
use super::watch::{self, WatchParams};
use super::{meta, validate, Shared};
use super::{protobuf, restart};

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
    let token = request::bearer(&headers);
    let rbac_user = token.as_deref().and_then(|t| {
        super::lock(&sh.rbac)
            .as_ref()
            .and_then(|e| e.policy.user_of(t))
    });
    let client = sh
        .traffic
        .identify(token.as_deref(), rbac_user.clone(), &headers);
    let user = rbac_user.unwrap_or_else(|| match &token {
        Some(_) => "kubernetes-admin".to_string(),
        None => "system:anonymous".to_string(),
    });
    let response = serve_request(&sh, method, uri, headers, body, &user).await;
    sh.traffic.account(&client, response)
}

async fn serve_request(
    sh: &Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    user: &str,
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

    // A restarting server: 503, then 401/403 to requests it would otherwise allow.
    if let Ok((target, _)) = &resolved {
        if let Some(refused) = restart::refusal(sh.restarts.phase(), target, user) {
            return refused;
        }
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
        Ok((Target::Review(review, token), _)) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|c| c.to_str().ok());
            if protobuf::is_protobuf(content_type) {
                match protobuf::to_json(protobuf::Body::Review(review), &body) {
                    Ok(json) => super::review::serve(
                        sh,
                        review,
                        token.as_deref(),
                        json.to_string().as_bytes(),
                    ),
                    Err(e) => e.into_response(),
                }
            } else {
                super::review::serve(sh, review, token.as_deref(), &body)
            }
        }
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
            let served = serve(sh, &info, &query, &headers, &body)
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

/// The field manager of a write: `fieldManager`, else the User-Agent's product name.
fn writer(info: &RequestInfo, query: &Query, headers: &HeaderMap) -> Writer {
    let manager = match query.get("fieldManager").filter(|m| !m.is_empty()) {
        Some(m) => m.clone(),
        None => ssa::manager_from_user_agent(
            headers
                .get(header::USER_AGENT)
                .and_then(|u| u.to_str().ok()),
        ),
    };
    Writer {
        manager,
        api_version: info.def().api_version(),
        subresource: info.subresource.clone(),
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
    let w = writer(info, query, headers);
    match info.verb {
        Verb::Get => get(sh, info, repr),
        Verb::List => list(sh, info, query, repr),
        Verb::Watch => Ok(watch::serve(
            &sh.store,
            info,
            WatchParams::parse(info, query)?,
            repr,
            sh.restarts.generation(),
            sh.bookmark_interval(),
        )),
        Verb::Create => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|c| c.to_str().ok());
            let mode = FieldValidation::from_query(query)?;
            if info.kind == Kind::Namespace && protobuf::is_protobuf(content_type) {
                // `kubectl create namespace` sends protobuf.
                let json = protobuf::to_json(protobuf::Body::Namespace, body)?.to_string();
                return create(sh, info, json.as_bytes(), mode, &w).map(written);
            }
            require_json(headers)?;
            create(sh, info, body, mode, &w).map(written)
        }
        Verb::Update => {
            require_json(headers)?;
            let mode = FieldValidation::from_query(query)?;
            update(sh, info, body, mode, &w).map(written)
        }
        Verb::Patch => {
            let mode = FieldValidation::from_query(query)?;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|c| c.to_str().ok());
            let kind = PatchType::from_content_type(content_type)?;
            let force = patch_options(kind, query, &w)?;
            if kind == PatchType::Apply {
                apply(sh, info, body, mode, &w, force).map(written)
            } else {
                patch(sh, info, kind, body, mode, &w).map(written)
            }
        }
        Verb::Delete => delete(sh, info, body),
    }
}

fn ok(code: StatusCode, v: Value) -> Response {
    (code, Json(v)).into_response()
}

/// A write's answer: status, the object, and field-validation warnings.
struct Written {
    code: StatusCode,
    object: Value,
    warnings: Vec<String>,
}

fn written(w: Written) -> Response {
    let mut response = ok(w.code, w.object);
    for text in &w.warnings {
        if let Ok(v) = HeaderValue::from_str(&schema::warning_header(text)) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
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
    let after_token = |o: &Value| {
        after.as_ref().is_none_or(|(ns, n)| {
            (
                meta::namespace(o).unwrap_or_default(),
                meta::name(o).unwrap_or_default(),
            ) > (ns.as_str(), n.as_str())
        })
    };
    // Selectors match the stored form directly except for events.k8s.io (renamed fields):
    // only then can the store apply them, and the limit, before copying.
    let direct = info.kind != Kind::EventV1;
    let equalities: Vec<(&str, &str)> = match direct {
        true => selectors.labels.equalities().collect(),
        false => Vec::new(),
    };
    let narrow = ListQuery {
        only: direct
            .then(|| selectors.fields.required("metadata.name"))
            .flatten(),
        labels: &equalities,
        limit: if direct { limit } else { 0 },
    };
    // A first page without selectors keeps every object: counting the rest of a big
    // kind (`remainingItemCount`, the agents' census of Nodes) then reads none of them.
    let keeps_all = after.is_none() && (!direct || selectors.is_empty());
    let listed = sh.store.list_matching(info.kind, info.ns(), narrow, |o| {
        keeps_all || (after_token(o) && (!direct || selectors.matches(o)))
    });
    let rv = listed.rv;
    let mut items: Vec<Value> = listed
        .objects
        .into_iter()
        .map(|o| view(info.kind, o))
        .filter(|o| direct || selectors.matches(o))
        .collect();
    let mut remaining = listed.remaining;
    if limit > 0 && items.len() > limit {
        remaining += items.len() - limit;
        items.truncate(limit);
    }
    let mut list_meta = json!({"resourceVersion": rv.to_string()});
    if limit > 0 && remaining > 0 {
        if let Some(last) = items.last() {
            list_meta["continue"] = json!(encode_continue(last));
            // The real server counts the rest only for a list without selectors
            // (ListMeta: "if the list request contained label or field selectors, then
            // the number of remaining items is unknown and the field will be left unset").
            if !has_selector(query) {
                list_meta["remainingItemCount"] = json!(remaining);
            }
        }
    }
    Ok(ok(
        StatusCode::OK,
        table::list(repr, info.kind, items, list_meta),
    ))
}

fn has_selector(query: &Query) -> bool {
    ["labelSelector", "fieldSelector"]
        .iter()
        .any(|key| query.get(*key).is_some_and(|v| !v.is_empty()))
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
        // The request's namespace is the object's before validation (rest.BeforeCreate).
        if let Some(ns) = info.ns() {
            meta::metadata_mut(&mut obj).insert("namespace".into(), json!(ns));
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

/// Writes that create need the namespace (the NamespaceLifecycle admission plugin
/// answers `namespaces "x" not found` before anything is validated).
fn require_namespace(sh: &Shared, info: &RequestInfo) -> Result<(), ApiError> {
    match info.ns() {
        Some(ns) if sh.store.get(Kind::Namespace, None, ns).is_none() => {
            Err(ApiError::not_found(Kind::Namespace.def(), ns))
        }
        _ => Ok(()),
    }
}

/// What the Namespace strategy fills in on create.
fn namespace_defaults(obj: &mut Value) {
    if obj.pointer("/status/phase").is_none() {
        obj["status"] = json!({"phase": "Active"});
    }
    if obj.pointer("/spec/finalizers").is_none() {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
    }
}

fn create(
    sh: &Shared,
    info: &RequestInfo,
    body: &[u8],
    mode: FieldValidation,
    w: &Writer,
) -> Result<Written, ApiError> {
    let checked = schema::check(info.kind, parse_object(info, body)?, mode)?;
    let mut obj = checked.object;
    require_namespace(sh, info)?;
    if info.kind == Kind::Namespace {
        namespace_defaults(&mut obj);
    }
    ssa::record_update(info.kind, w, None, &mut obj);
    let obj = stored(info.kind, obj);
    validate::validate(info.kind, &obj, true)?;
    let created = sh.store.create(info.kind, info.ns(), obj)?;
    Ok(Written {
        code: StatusCode::CREATED,
        object: view(info.kind, created),
        warnings: checked.warnings,
    })
}

/// PUT. For kinds that allow it (Leases, Events) a missing object is created, even
/// when the body carries a resourceVersion (`store.go`'s `Update`: a version on an
/// object that does not exist is not a precondition); that answers 201.
fn update(
    sh: &Shared,
    info: &RequestInfo,
    body: &[u8],
    mode: FieldValidation,
    w: &Writer,
) -> Result<Written, ApiError> {
    let checked = schema::check(info.kind, parse_object(info, body)?, mode)?;
    let obj = checked.object;
    check_name(info, &obj)?;
    let allow_create = info.def().create_on_update && info.subresource.is_none();
    // Checked before the store lock is taken; only consulted if the object is missing.
    let namespace = require_namespace(sh, info);
    let (saved, created) = sh
        .store
        .update_or_create(info.kind, info.ns(), name(info), |cur| match cur {
            Some(cur) => {
                let (rv, uid) = (meta::resource_version(&obj), meta::uid(&obj));
                check_preconditions(info, cur, rv, uid, false)?;
                let mut next = view(
                    info.kind,
                    apply_status_rules(info, cur, stored(info.kind, obj.clone())),
                );
                ssa::record_update(info.kind, w, Some(&view(info.kind, cur.clone())), &mut next);
                let next = stored(info.kind, next);
                validate::validate(info.kind, &next, false)?;
                Ok(Some(next))
            }
            None if allow_create => {
                namespace.clone()?;
                let mut new = obj.clone();
                ssa::record_update(info.kind, w, None, &mut new);
                let new = stored(info.kind, new);
                validate::validate(info.kind, &new, true)?;
                Ok(Some(new))
            }
            None => Ok(None),
        })?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Written {
        code,
        object: view(info.kind, saved),
        warnings: checked.warnings,
    })
}

fn patch(
    sh: &Shared,
    info: &RequestInfo,
    kind: PatchType,
    body: &[u8],
    mode: FieldValidation,
    w: &Writer,
) -> Result<Written, ApiError> {
    let mut warnings = Vec::new();
    let updated = sh.store.update(info.kind, info.ns(), name(info), |cur| {
        let patched = patch::apply(kind, &view(info.kind, cur.clone()), body)?;
        if !patched.is_object() {
            return Err(ApiError::BadRequest(
                "the patched object is not a JSON object".into(),
            ));
        }
        let checked = schema::check(info.kind, patched, mode)?;
        warnings = checked.warnings;
        let patched = checked.object;
        check_name(info, &patched)?;
        // A patch that carries the version it was made against must match.
        let (rv, uid) = (meta::resource_version(&patched), meta::uid(&patched));
        check_preconditions(info, cur, rv, uid, false)?;
        let mut next = view(
            info.kind,
            apply_status_rules(info, cur, stored(info.kind, patched)),
        );
        ssa::record_update(info.kind, w, Some(&view(info.kind, cur.clone())), &mut next);
        let next = stored(info.kind, next);
        validate::validate(info.kind, &next, false)?;
        Ok(next)
    })?;
    Ok(Written {
        code: StatusCode::OK,
        object: view(info.kind, updated),
        warnings,
    })
}

/// `ValidatePatchOptions`: `force` only for apply, apply only with a `fieldManager`
/// (422 on `PatchOptions.meta.k8s.io`). Returns `force`.
fn patch_options(kind: PatchType, query: &Query, w: &Writer) -> Result<bool, ApiError> {
    let force = match query.get("force").map(String::as_str) {
        None | Some("") => None,
        Some("true" | "1") => Some(true),
        Some(_) => Some(false),
    };
    let mut errs = Vec::new();
    if kind != PatchType::Apply && force.is_some() {
        errs.push(FieldError::forbidden(
            "force",
            "may not be specified for non-apply patch",
        ));
    }
    let explicit = query.get("fieldManager").is_some_and(|m| !m.is_empty());
    if kind == PatchType::Apply && !explicit {
        errs.push(FieldError::required(
            "fieldManager",
            "is required for apply patch",
        ));
    }
    if w.manager.len() > 128 {
        errs.push(FieldError::too_long("fieldManager", 128));
    }
    if errs.is_empty() {
        return Ok(force == Some(true));
    }
    Err(ApiError::Invalid {
        resource: ResourceRef {
            group: "meta.k8s.io".into(),
            plural: String::new(),
            kind: "PatchOptions".into(),
        },
        name: String::new(),
        errors: errs,
    })
}

/// Server-side apply: creates a missing object (any kind, unlike PUT), merges into an
/// existing one, and refuses with 409 to change fields other managers own unless forced.
/// The body must be JSON (which is YAML); kubectl sends JSON.
fn apply(
    sh: &Shared,
    info: &RequestInfo,
    body: &[u8],
    mode: FieldValidation,
    w: &Writer,
    force: bool,
) -> Result<Written, ApiError> {
    let config = parse_object(info, body).map_err(|e| match e {
        ApiError::BadRequest(m) if m.starts_with("error decoding") => {
            ApiError::BadRequest(format!(
            "{m} (the simulator reads apply bodies as JSON, the subset of YAML that kubectl sends)"
        ))
        }
        other => other,
    })?;
    check_name(info, &config)?;
    let checked = schema::check(info.kind, config, mode)?;
    let config = checked.object;
    let namespace = require_namespace(sh, info);
    let (saved, created) = sh
        .store
        .update_or_create(info.kind, info.ns(), name(info), |cur| {
            let live = cur.map(|c| view(info.kind, c.clone()));
            if cur.is_none() {
                namespace.clone()?;
                if info.subresource.is_some() {
                    return Ok(None);
                }
            }
            let mut next = ssa::apply(info.kind, w, force, live.as_ref(), &config)?;
            if info.kind == Kind::Namespace && cur.is_none() {
                namespace_defaults(&mut next);
            }
            let next = match cur {
                Some(cur) => {
                    let (rv, uid) = (meta::resource_version(&config), meta::uid(&config));
                    check_preconditions(info, cur, rv, uid, false)?;
                    apply_status_rules(info, cur, stored(info.kind, next))
                }
                None => stored(info.kind, next),
            };
            validate::validate(info.kind, &next, cur.is_none())?;
            Ok(Some(next))
        })?;
    Ok(Written {
        code: if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        object: view(info.kind, saved),
        warnings: checked.warnings,
    })
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
