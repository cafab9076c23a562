//! A failed Core Services call → the [`ErrorClass`] the agent acts on. Pure.
//!
//! - 429 `TooManyRequests`: throttled;
//! - 401 `NotAuthenticated`: the key, keyId or clock is wrong (permission denied);
//! - 404 `NotAuthorizedOrNotFound`: OCI sends it for a missing object *and* a missing
//!   policy. On a list (whose only object is the compartment) it is a missing policy;
//!   on a GET it is "not found" (and the message says it may be the policy);
//! - 409 `Conflict` (a private IP that already has a public IP) and 412 `NoEtagMatch`
//!   (the address changed since we read it): conflict, i.e. next candidate;
//! - 409 `IncorrectState` (in transition), 5xx, network failures: retry soon;
//! - 400: invalid input (limits and quotas: permanent).

use crate::{ErrorClass, ProviderError};

use super::permissions::{explain, op};
use super::wire::ErrorBody;

const LISTS: &[&str] = &[
    op::LIST_PUBLIC_IPS,
    op::LIST_VNIC_ATTACHMENTS,
    op::LIST_PRIVATE_IPS,
];

pub fn from_http(
    operation: &'static str,
    status: u16,
    body: &str,
    request_id: Option<&str>,
) -> ProviderError {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
    let code = if parsed.code.is_empty() {
        status.to_string()
    } else {
        parsed.code.clone()
    };
    let mut message = if parsed.message.is_empty() {
        format!("HTTP {status}")
    } else {
        parsed.message.clone()
    };
    if let Some(id) = request_id {
        message.push_str(&format!(" (opc-request-id {id})"));
    }
    let class = match (status, code.as_str()) {
        (429, _) => ErrorClass::Throttled,
        (401, _) => ErrorClass::PermissionDenied {
            action: "a valid OCI API key: the config's tenancy/user/fingerprint must name a key uploaded for that user, and the clock must be within 5 minutes".into(),
        },
        (404, "NotAuthorizedOrNotFound") if LISTS.contains(&operation) => ErrorClass::PermissionDenied { action: explain(operation) },
        (404, _) => {
            message.push_str(&format!("; if the object exists, pinip lacks {}", explain(operation)));
            ErrorClass::NotFound
        }
        (403, _) => ErrorClass::PermissionDenied { action: explain(operation) },
        (409, "IncorrectState") | (409, "ExternalServerIncorrectState") => ErrorClass::Transient,
        (409, _) | (412, _) => ErrorClass::Conflict,
        (400, "LimitExceeded") | (400, "QuotaExceeded") => ErrorClass::Permanent,
        (400, "RelatedResourceNotAuthorizedOrNotFound") => ErrorClass::PermissionDenied { action: explain(operation) },
        (400, _) => ErrorClass::InvalidInput,
        (408, _) | (500..=599, _) => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    };
    ProviderError::new(class, operation, message).with_code(code)
}

/// A network failure (connect, timeout, broken body): retry soon.
pub fn from_transport(operation: &'static str, error: &dyn std::fmt::Display) -> ProviderError {
    ProviderError::new(ErrorClass::Transient, operation, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str) -> String {
        serde_json::json!({"code": code, "message": "m"}).to_string()
    }

    #[test]
    fn classes_follow_the_api_errors_table() {
        let class = |o, s, c: &str| from_http(o, s, &body(c), None).class;
        assert_eq!(
            class(op::LIST_PUBLIC_IPS, 429, "TooManyRequests"),
            ErrorClass::Throttled
        );
        assert!(matches!(
            class(op::GET_PUBLIC_IP, 401, "NotAuthenticated"),
            ErrorClass::PermissionDenied { .. }
        ));
        assert!(
            matches!(class(op::LIST_PUBLIC_IPS, 404, "NotAuthorizedOrNotFound"), ErrorClass::PermissionDenied { action } if action.contains("PUBLIC_IP_READ"))
        );
        assert_eq!(
            class(op::GET_INSTANCE, 404, "NotAuthorizedOrNotFound"),
            ErrorClass::NotFound
        );
        assert_eq!(
            class(op::UPDATE_PUBLIC_IP, 409, "Conflict"),
            ErrorClass::Conflict
        );
        assert_eq!(
            class(op::UPDATE_PUBLIC_IP, 412, "NoEtagMatch"),
            ErrorClass::Conflict
        );
        assert_eq!(
            class(op::UPDATE_PUBLIC_IP, 409, "IncorrectState"),
            ErrorClass::Transient
        );
        assert_eq!(
            class(op::LIST_PUBLIC_IPS, 400, "InvalidParameter"),
            ErrorClass::InvalidInput
        );
        assert_eq!(
            class(op::CREATE_PUBLIC_IP, 400, "LimitExceeded"),
            ErrorClass::Permanent
        );
        assert_eq!(
            class(op::GET_VNIC, 503, "ServiceUnavailable"),
            ErrorClass::Transient
        );
        let e = from_http(op::GET_VNIC, 500, "<html>", Some("REQ1"));
        assert_eq!(
            (e.class, e.code.as_deref()),
            (ErrorClass::Transient, Some("500"))
        );
        assert!(e.message.contains("REQ1"));
    }
}
