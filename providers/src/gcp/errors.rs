//! A failed Compute call (an HTTP error, or an operation that ended in error) → the
//! [`ErrorClass`] the agent acts on. Pure functions over status, headers and body.
//!
//! - `429`, or a `rateLimitExceeded`/`userRateLimitExceeded`/`quotaExceeded` reason
//!   (Compute sends those with 403 too): throttled, back off harder, honour
//!   `Retry-After`; an operation that ends in `QUOTA_EXCEEDED` (a project quota such
//!   as in-use addresses, reported with HTTP status 403) is throttled as well — it
//!   clears when quota frees up or is raised, and it is not a missing IAM permission;
//! - `400 resourceNotReady` (another operation is running on the instance): retry soon;
//! - an address in use by another resource, or one that cannot go on this NIC (an IPv6
//!   range of another subnetwork or of endpoint type `NETLB`): conflict, i.e. "next
//!   candidate", so one unusable address never blocks a node;
//! - any other 403: permanent until IAM is fixed, and the message names the permission
//!   (from the API's `Required '…' permission` text, else from [`super::permissions`]);
//! - a 400 about `filter`/`orderBy`: invalid input (a bad `FILTER`/`ORDER_BY`);
//! - 404: not found; 412 (stale fingerprint) and 5xx: retry soon.

use std::time::Duration;

use crate::{ErrorClass, ProviderError};

use super::permissions::needed_by;
use super::wire::{ErrorBody, Operation};

/// Reasons Compute uses for throttling.
const THROTTLE_REASONS: &[&str] = &[
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
];

/// Operation error codes that mean "slow down / wait for quota".
const QUOTA_CODES: &[&str] = &["QUOTA_EXCEEDED", "RATE_LIMIT_EXCEEDED"];

/// Another operation holds the resource (HTTP reason and operation code).
const NOT_READY_REASON: &str = "resourceNotReady";
const NOT_READY_CODE: &str = "RESOURCE_NOT_READY";

/// Operation error codes that mean "the address is used by someone else".
const IN_USE_CODES: &[&str] = &[
    "IP_IN_USE_BY_ANOTHER_RESOURCE",
    "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE",
    "EXTERNAL_IP_ADDRESS_IN_USE",
];

/// Classify an HTTP error answer of `method`.
pub fn from_http(
    method: &'static str,
    status: u16,
    retry_after: Option<&str>,
    body: &str,
) -> ProviderError {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
    let detail = parsed.error;
    let reasons: Vec<&str> = detail.errors.iter().map(|e| e.reason.as_str()).collect();
    let message = if detail.message.is_empty() {
        let text = body.trim();
        if text.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {}", truncate(text, 300))
        }
    } else {
        detail.message.clone()
    };
    let code = reasons
        .first()
        .map(|r| r.to_string())
        .or(detail.status.clone())
        .unwrap_or_else(|| status.to_string());
    let throttled = status == 429 || reasons.iter().any(|r| THROTTLE_REASONS.contains(r));
    let in_use = reasons.contains(&"resourceInUseByAnotherResource") || mentions_in_use(&message);
    let class = match status {
        _ if throttled => ErrorClass::Throttled,
        400 if reasons.contains(&NOT_READY_REASON) => ErrorClass::Transient,
        400 if does_not_fit(&message) => ErrorClass::Conflict,
        403 => ErrorClass::PermissionDenied {
            action: permission_in(&message).unwrap_or_else(|| fallback_permission(method)),
        },
        401 => ErrorClass::PermissionDenied {
            action: "a valid access token (Workload Identity or Application Default Credentials)"
                .into(),
        },
        404 => ErrorClass::NotFound,
        409 if in_use || reasons.contains(&"alreadyExists") => ErrorClass::Conflict,
        400 if in_use => ErrorClass::Conflict,
        400 if is_about_filter(&message) => ErrorClass::InvalidInput,
        // 412: a stale fingerprint; the caller re-reads and retries, and if it escapes,
        // the next attempt starts from a fresh read.
        412 | 409 | 408 => ErrorClass::Transient,
        500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    };
    let mut error = ProviderError::new(class, method, message).with_code(code);
    error.retry_after = retry_after.and_then(parse_retry_after);
    error
}

/// Classify an operation that ended (`DONE`) with errors. None: it succeeded.
pub fn from_operation(method: &'static str, op: &Operation) -> Option<ProviderError> {
    let errors = op.error.as_ref().map(|e| &e.errors[..]).unwrap_or(&[]);
    if errors.is_empty() && op.http_error_status_code.is_none_or(|s| s < 400) {
        return None;
    }
    let code = errors
        .first()
        .map(|e| e.code.clone())
        .unwrap_or_else(|| "OPERATION_FAILED".into());
    let message = {
        let joined: Vec<String> = errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code.clone()
                } else {
                    e.message.clone()
                }
            })
            .collect();
        let text = if joined.is_empty() {
            op.http_error_message.clone().unwrap_or_default()
        } else {
            joined.join("; ")
        };
        format!("operation {} ended in error: {text}", op.name)
    };
    let status = op.http_error_status_code.unwrap_or(0);
    let class = if errors
        .iter()
        .any(|e| IN_USE_CODES.contains(&e.code.as_str()))
        || mentions_in_use(&message)
    {
        ErrorClass::Conflict
    } else if errors
        .iter()
        .any(|e| QUOTA_CODES.contains(&e.code.as_str()))
        || status == 429
    {
        ErrorClass::Throttled
    } else if errors.iter().any(|e| e.code == NOT_READY_CODE) {
        ErrorClass::Transient
    } else if status == 403 || code.contains("PERMISSION") {
        ErrorClass::PermissionDenied {
            action: permission_in(&message).unwrap_or_else(|| fallback_permission(method)),
        }
    } else if code == "RESOURCE_NOT_FOUND" || status == 404 {
        ErrorClass::NotFound
    } else if code == "INTERNAL_ERROR"
        || code == "CONDITION_NOT_MET"
        || status >= 500
        || status == 412
    {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    };
    Some(ProviderError::new(class, method, message).with_code(code))
}

/// A network failure (connect, timeout, broken body): retry soon.
pub fn from_transport(method: &'static str, error: &dyn std::fmt::Display) -> ProviderError {
    ProviderError::new(ErrorClass::Transient, method, error.to_string())
}

/// A request refused by a per-minute rate quota (HTTP 429, or 403 with a rate
/// reason): it clears when the window turns. Not a project quota such as in-use
/// addresses (an operation ending in `QUOTA_EXCEEDED`), which waits for quota to free up.
pub fn is_rate_limited(error: &ProviderError) -> bool {
    error.class == ErrorClass::Throttled
        && error.code.as_deref().is_some_and(|c| {
            matches!(
                c,
                "rateLimitExceeded" | "userRateLimitExceeded" | "429" | "RESOURCE_EXHAUSTED"
            )
        })
}

/// A 412: the fingerprint we sent is stale; re-read and try again.
pub fn is_stale_fingerprint(error: &ProviderError) -> bool {
    error
        .code
        .as_deref()
        .is_some_and(|c| matches!(c, "conditionNotMet" | "412" | "FAILED_PRECONDITION"))
}

/// `Required 'compute.instances.addAccessConfig' permission for '…'` → the permission.
fn permission_in(message: &str) -> Option<String> {
    let start = message.find("'compute.")? + 1;
    let end = message[start..].find('\'')? + start;
    Some(message[start..end].to_string())
}

fn fallback_permission(method: &str) -> String {
    match needed_by(method) {
        [] => format!("the permissions of {method}"),
        list => list.join(", "),
    }
}

fn mentions_in_use(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("in use by another")
        || lower.contains("in-use")
        || lower.contains("already being used")
        || lower.contains("is already in use")
}

/// A 400 about the address named in an access config that says it cannot go on this
/// NIC (wrong subnetwork or endpoint type): another address may.
fn does_not_fit(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    (lower.contains("externalipv6") || lower.contains("natip"))
        && (lower.contains("subnetwork")
            || lower.contains("endpoint type")
            || lower.contains("ipv6endpointtype"))
}

fn is_about_filter(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("filter") || lower.contains("orderby") || lower.contains("sorting")
}

/// `Retry-After: 7` (seconds); the HTTP-date form is rare on Google APIs and ignored.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gcp::permissions::method;
    use crate::gcp::wire::{OperationError, OperationErrors};

    fn body(code: u16, reason: &str, message: &str) -> String {
        serde_json::json!({"error": {"code": code, "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}]}})
        .to_string()
    }

    #[test]
    fn throttling_is_recognised_by_status_and_by_reason() {
        let e = from_http(method::ADDRESSES_LIST, 429, Some("3"), "");
        assert_eq!(e.class, ErrorClass::Throttled);
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
        let e = from_http(
            method::ADDRESSES_LIST,
            403,
            None,
            &body(403, "rateLimitExceeded", "Rate Limit Exceeded"),
        );
        assert_eq!(e.class, ErrorClass::Throttled);
        assert!(e.is_retryable());
        assert!(is_rate_limited(&e), "a per-minute window: {e:?}");
        let e = from_http(method::ADDRESSES_LIST, 429, None, "");
        assert!(is_rate_limited(&e), "{e:?}");
    }

    #[test]
    fn not_ready_is_transient_quota_is_throttling_and_misfits_are_conflicts() {
        let e = from_http(
            method::ADD_ACCESS_CONFIG,
            400,
            None,
            &body(
                400,
                "resourceNotReady",
                "The resource 'projects/p/zones/z/instances/n' is not ready",
            ),
        );
        assert_eq!(e.class, ErrorClass::Transient);
        let quota = Operation {
            name: "op-q".into(),
            status: "DONE".into(),
            error: Some(OperationErrors {
                errors: vec![OperationError {
                    code: "QUOTA_EXCEEDED".into(),
                    message:
                        "Quota 'IN_USE_ADDRESSES' exceeded.  Limit: 8.0 in region us-central1."
                            .into(),
                }],
            }),
            http_error_status_code: Some(403),
            ..Operation::default()
        };
        let e = from_operation(method::ADD_ACCESS_CONFIG, &quota).unwrap();
        assert_eq!(e.class, ErrorClass::Throttled, "{e}");
        assert!(e.message.contains("IN_USE_ADDRESSES"));
        assert!(
            !is_rate_limited(&e),
            "a project quota does not clear at the minute"
        );
        let e = from_http(
            method::ADDRESSES_LIST,
            403,
            None,
            &body(
                403,
                "quotaExceeded",
                "Quota exceeded for quota metric 'Read requests'",
            ),
        );
        assert_eq!(e.class, ErrorClass::Throttled);
        let e = from_http(
            method::UPDATE_NETWORK_INTERFACE,
            400,
            None,
            &body(400, "invalid", "Invalid value for field 'resource.ipv6AccessConfigs[0].externalIpv6': '2600::'. The address 'v6' belongs to subnetwork 'b', not to the subnetwork 'a' of the network interface."),
        );
        assert_eq!(e.class, ErrorClass::Conflict);
    }

    #[test]
    fn forbidden_names_the_permission() {
        let e = from_http(
            method::ADD_ACCESS_CONFIG,
            403,
            None,
            &body(403, "forbidden", "Required 'compute.instances.addAccessConfig' permission for 'projects/p/zones/z/instances/n'"),
        );
        assert_eq!(
            e.class,
            ErrorClass::PermissionDenied {
                action: "compute.instances.addAccessConfig".into()
            }
        );
        assert!(e
            .to_string()
            .contains("grant the permission `compute.instances.addAccessConfig`"));
        // Without the permission in the text, the table says what the method needs.
        let e = from_http(
            method::UPDATE_NETWORK_INTERFACE,
            403,
            None,
            &body(403, "forbidden", "Forbidden"),
        );
        assert!(
            matches!(&e.class, ErrorClass::PermissionDenied { action } if action.contains("compute.instances.updateNetworkInterface")),
            "{e}"
        );
    }

    #[test]
    fn an_address_in_use_means_next_candidate() {
        let e = from_http(
            method::ADD_ACCESS_CONFIG,
            400,
            None,
            &body(400, "invalid", "Invalid value for field 'resource.natIP': '203.0.113.10'. Specified IP address is in-use and would result in a conflict."),
        );
        assert_eq!(e.class, ErrorClass::Conflict);
        let op = Operation {
            name: "op-1".into(),
            status: "DONE".into(),
            error: Some(OperationErrors {
                errors: vec![OperationError {
                    code: "IP_IN_USE_BY_ANOTHER_RESOURCE".into(),
                    message: "IP '203.0.113.10' is already being used by another resource.".into(),
                }],
            }),
            http_error_status_code: Some(400),
            ..Operation::default()
        };
        let e = from_operation(method::ADD_ACCESS_CONFIG, &op).unwrap();
        assert_eq!(e.class, ErrorClass::Conflict);
        assert!(e.message.contains("op-1"));
    }

    #[test]
    fn operations_that_end_in_error_are_errors() {
        let ok = Operation {
            name: "op".into(),
            status: "DONE".into(),
            ..Operation::default()
        };
        assert!(from_operation(method::DELETE_ACCESS_CONFIG, &ok).is_none());
        let failed = Operation {
            http_error_status_code: Some(500),
            http_error_message: Some("INTERNAL SERVER ERROR".into()),
            ..ok
        };
        let e = from_operation(method::DELETE_ACCESS_CONFIG, &failed).unwrap();
        assert_eq!(e.class, ErrorClass::Transient);
    }

    #[test]
    fn a_bad_filter_is_invalid_input_and_other_statuses_map_sensibly() {
        let e = from_http(
            method::ADDRESSES_LIST,
            400,
            None,
            &body(
                400,
                "invalid",
                "Invalid value for field 'filter': 'labels.x=(('. Invalid list filter expression.",
            ),
        );
        assert_eq!(e.class, ErrorClass::InvalidInput);
        assert_eq!(
            from_http(method::INSTANCES_GET, 404, None, "").class,
            ErrorClass::NotFound
        );
        assert_eq!(
            from_http(method::INSTANCES_GET, 503, None, "<html>").class,
            ErrorClass::Transient
        );
        assert_eq!(
            from_http(method::UPDATE_NETWORK_INTERFACE, 412, None, "").class,
            ErrorClass::Transient
        );
        assert_eq!(
            from_http(method::INSTANCES_GET, 400, None, "{}").class,
            ErrorClass::Permanent
        );
    }
}
