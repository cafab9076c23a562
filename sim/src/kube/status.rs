//! API errors and the `meta/v1 Status` bodies the real API server sends for
//! them, so clients (kube-rs, kubectl) see the same `code`/`reason`/`message`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::field::{aggregate, FieldError};
use super::kind::ResourceDef;

/// Every way a request can fail, with the real server's wording.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{resource} \"{name}\" not found")]
    NotFound { resource: ResourceRef, name: String },
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists { resource: ResourceRef, name: String },
    /// Optimistic-concurrency failure; `detail` follows the colon in the
    /// message ("the object has been modified; ..." or a precondition).
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {detail}")]
    Conflict {
        resource: ResourceRef,
        name: String,
        detail: String,
    },
    /// A field-level validation failure (422 with the kind named, one cause per field).
    #[error("{group_kind} \"{name}\" is invalid: {agg}", group_kind = resource.group_kind(), agg = aggregate(errors))]
    Invalid {
        resource: ResourceRef,
        name: String,
        errors: Vec<FieldError>,
    },
    /// 422 without a named object, e.g. a failed JSON-patch `test` op.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    BadRequest(String),
    /// Server-side apply would change fields other managers own (409, with one
    /// `FieldManagerConflict` cause per field).
    #[error("{message}")]
    ApplyConflict { message: String, causes: Vec<Value> },
    #[error("the server could not find the requested resource")]
    UnknownPath,
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {0}"
    )]
    UnsupportedMediaType(String),
    /// A resourceVersion older than the kept history (HTTP 410).
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
    #[error("Internal error occurred: {0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
    /// The server's deadline passed (HTTP 504); a write may have been applied anyway.
    #[error(
        "Timeout: request did not complete within requested timeout - context deadline exceeded"
    )]
    Timeout,
}

/// What a Status' `details` names: group, plural and kind of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub group: String,
    pub plural: String,
    pub kind: String,
}

impl ResourceRef {
    /// `Lease.coordination.k8s.io` or `Node`.
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

impl std::fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

impl From<&ResourceDef> for ResourceRef {
    fn from(d: &ResourceDef) -> Self {
        ResourceRef {
            group: d.group.to_string(),
            plural: d.plural.to_string(),
            kind: d.kind_name.to_string(),
        }
    }
}

/// The message the real server uses for a stale resourceVersion.
pub const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// Seconds clients are told to wait after an injected 503.
pub const RETRY_AFTER_SECS: u64 = 1;

impl ApiError {
    pub fn conflict(def: &ResourceDef, name: &str, detail: impl Into<String>) -> Self {
        ApiError::Conflict {
            resource: def.into(),
            name: name.to_string(),
            detail: detail.into(),
        }
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        ApiError::NotFound {
            resource: def.into(),
            name: name.to_string(),
        }
    }

    pub fn invalid(def: &ResourceDef, name: &str, errors: Vec<FieldError>) -> Self {
        ApiError::Invalid {
            resource: def.into(),
            name: name.to_string(),
            errors,
        }
    }

    /// `Ok` for no errors, else 422 Invalid with every one of them.
    pub fn check(def: &ResourceDef, name: &str, errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(def, name, errors))
        }
    }

    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::UnknownPath => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict { .. } => StatusCode::CONFLICT,
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Expired { .. } => StatusCode::GONE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::UnknownPath => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Expired { .. } => "Expired",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::Timeout => "Timeout",
        }
    }

    /// The `details` object, shaped like the real server's per reason.
    fn details(&self) -> Option<Value> {
        match self {
            ApiError::NotFound { resource, name }
            | ApiError::AlreadyExists { resource, name }
            | ApiError::Conflict { resource, name, .. } => Some(json!({
                "name": name, "group": resource.group, "kind": resource.plural,
            })),
            ApiError::Invalid {
                resource,
                name,
                errors,
            } => Some(json!({
                "name": name,
                "group": resource.group,
                "kind": resource.kind,
                "causes": errors.iter().map(FieldError::cause).collect::<Vec<_>>(),
            })),
            ApiError::ApplyConflict { causes, .. } => Some(json!({"causes": causes})),
            ApiError::UnknownPath => Some(json!({})),
            ApiError::Internal(m) => Some(json!({"causes": [{"message": m}]})),
            ApiError::Unavailable(_) => Some(json!({"retryAfterSeconds": RETRY_AFTER_SECS})),
            _ => None,
        }
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        if let Some(d) = self.details() {
            status["details"] = d;
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.code(), axum::Json(self.to_status())).into_response();
        if matches!(self, ApiError::Unavailable(_)) {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        resp
    }
}

/// The `Status` a successful delete answers with.
pub fn deleted(def: &ResourceDef, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": def.group, "kind": def.plural, "uid": uid},
    })
}
