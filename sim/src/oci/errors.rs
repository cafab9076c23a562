//! OCI's error answers: `{"code": "...", "message": "..."}` with the HTTP status and an
//! `opc-request-id` header, with the codes of the API Errors reference (Core Services
//! returns the common ones).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404 for an unknown object *and* for a missing permission: OCI does not tell them apart.
    pub fn not_authorized_or_not_found() -> ApiError {
        ApiError::new(
            404,
            "NotAuthorizedOrNotFound",
            "Authorization failed or requested resource not found.",
        )
    }

    /// 404 for a path/method the API does not have.
    pub fn no_route(method: &str, path: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("There is no operation supported at {method} {path}"),
        )
    }

    pub fn not_authenticated(why: &str) -> ApiError {
        ApiError::new(
            401,
            "NotAuthenticated",
            format!("The required information to complete authentication was not provided or was incorrect. {why}"),
        )
    }

    pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidParameter", message)
    }

    pub fn missing_parameter(name: &str) -> ApiError {
        ApiError::new(
            400,
            "MissingParameter",
            format!("Missing required parameter '{name}'."),
        )
    }

    pub fn cannot_parse(why: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            400,
            "CannotParseRequest",
            format!("The request is incorrectly formatted: {why}"),
        )
    }

    /// 409 `Conflict`: the request contradicts the resource's state, and waiting won't help.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "Conflict", message)
    }

    /// 409 `IncorrectState`: the resource is in transition; retry with backoff.
    pub fn incorrect_state(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "IncorrectState", message)
    }

    pub fn no_etag_match() -> ApiError {
        ApiError::new(
            412,
            "NoEtagMatch",
            "The resource's etag does not match the value of the if-match header.",
        )
    }

    pub fn too_many_requests() -> ApiError {
        ApiError::new(429, "TooManyRequests", "Too many requests for the tenancy.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(json!({"code": self.code, "message": self.message})),
        )
            .into_response()
    }
}
