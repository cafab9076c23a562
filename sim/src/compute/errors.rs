//! Compute's error answers: `{"error": {"code", "message", "errors": [{"domain",
//! "reason", "message"}]}}` with the HTTP status, as googleapis send them.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `Invalid value for field '<field>': '<value>'. <why>`.
    pub fn invalid_field(field: &str, value: &str, why: &str) -> ApiError {
        ApiError::new(
            400,
            "invalid",
            format!("Invalid value for field '{field}': '{value}'. {why}"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "badRequest", message)
    }

    pub fn not_found(resource: &str) -> ApiError {
        ApiError::new(
            404,
            "notFound",
            format!("The resource '{resource}' was not found"),
        )
    }

    /// 403 the way Compute words a missing permission.
    pub fn forbidden(permission: &str, resource: &str) -> ApiError {
        ApiError::new(
            403,
            "forbidden",
            format!("Required '{permission}' permission for '{resource}'"),
        )
    }

    pub fn stale_fingerprint(what: &str) -> ApiError {
        ApiError::new(
            412,
            "conditionNotMet",
            format!("Supplied fingerprint does not match current {what} fingerprint."),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({"error": {
            "code": self.status,
            "message": self.message,
            "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
        }});
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}
