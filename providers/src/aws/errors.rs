//! EC2 errors → what the agent does about them. The decision is a pure function of
//! the operation, the EC2 error code, the message and the HTTP status; [`from_sdk`]
//! only extracts those from the SDK's error.

use std::time::Duration;

use aws_sdk_ec2::config::http::HttpResponse as Response;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

use crate::{ErrorClass, ProviderError};

/// EC2's throttling codes (HTTP 503 and 429 are throttling too).
const THROTTLING: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
];

/// The address is taken: try the next candidate.
const CONFLICT: &[&str] = &["Resource.AlreadyAssociated", "InvalidIPAddress.InUse"];

/// Credentials that will work again on their own (the SDK refreshes them).
const TRANSIENT_AUTH: &[&str] = &["ExpiredToken", "RequestExpired", "IDPCommunicationError"];

const PERMISSION: &[&str] = &[
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
];

/// What to do about EC2 error `code` (with `message`, HTTP `status`) from `operation`.
pub fn classify(
    operation: &str,
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
) -> ErrorClass {
    let code = code.unwrap_or("");
    if THROTTLING.contains(&code) || matches!(status, Some(503 | 429)) {
        return ErrorClass::Throttled;
    }
    if CONFLICT.contains(&code) {
        return ErrorClass::Conflict;
    }
    if PERMISSION.contains(&code) {
        return ErrorClass::PermissionDenied {
            action: missing_action(operation, message),
        };
    }
    if code.ends_with(".NotFound") {
        return ErrorClass::NotFound;
    }
    // A FILTER the cloud refuses ("The filter 'x' is invalid"): the user's to fix.
    if code == "InvalidParameterValue"
        && message.is_some_and(|m| m.to_ascii_lowercase().contains("filter"))
    {
        return ErrorClass::InvalidInput;
    }
    // An IPv6 address already on another interface is reported as a bad parameter.
    if code == "InvalidParameterValue"
        && message.is_some_and(|m| m.to_ascii_lowercase().contains("in use"))
    {
        return ErrorClass::Conflict;
    }
    if TRANSIENT_AUTH.contains(&code) {
        return ErrorClass::Transient;
    }
    if code.starts_with("Internal") || code == "Unavailable" || code == "ServiceUnavailable" {
        return ErrorClass::Transient;
    }
    if code.is_empty() {
        // No EC2 error document (a proxy's page, moto's HTML 500): trust the status.
        return match status {
            Some(s) if (400..500).contains(&s) => ErrorClass::Permanent,
            _ => ErrorClass::Transient,
        };
    }
    ErrorClass::Permanent
}

/// The IAM action to grant. EC2's message usually names it ("… is not authorized to
/// perform: ec2:AssociateAddress on resource …"); otherwise it is `ec2:<operation>`.
pub fn missing_action(operation: &str, message: Option<&str>) -> String {
    message
        .and_then(|m| m.split("perform: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|action| action.trim_end_matches([',', '.', ';']).to_string())
        .filter(|action| action.contains(':'))
        .unwrap_or_else(|| format!("ec2:{operation}"))
}

/// An SDK error as a [`ProviderError`].
pub fn from_sdk<E>(operation: &'static str, error: SdkError<E, Response>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let retry_after = error
        .raw_response()
        .and_then(|r| r.headers().get("retry-after"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let (class, code, message) = match &error {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let code = error.code().map(String::from);
            let message = error
                .message()
                .map(String::from)
                .unwrap_or_else(|| describe(&error));
            let class = classify(operation, code.as_deref(), Some(&message), status);
            (class, code, message)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            (ErrorClass::Transient, None, describe(&error))
        }
        _ => (ErrorClass::Permanent, None, describe(&error)),
    };
    let mut provider_error = ProviderError::new(class, operation, message);
    provider_error.code = code;
    provider_error.retry_after = retry_after;
    provider_error
}

/// The SDK's error and its causes on one line.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_backs_off_harder() {
        assert_eq!(
            classify(
                "DescribeAddresses",
                Some("RequestLimitExceeded"),
                None,
                Some(503)
            ),
            ErrorClass::Throttled
        );
        assert_eq!(
            classify("AssociateAddress", None, None, Some(503)),
            ErrorClass::Throttled
        );
    }

    #[test]
    fn an_address_taken_means_next_candidate() {
        assert_eq!(
            classify(
                "AssociateAddress",
                Some("Resource.AlreadyAssociated"),
                None,
                Some(400)
            ),
            ErrorClass::Conflict
        );
        assert_eq!(
            classify(
                "AssignIpv6Addresses",
                Some("InvalidIPAddress.InUse"),
                None,
                Some(400)
            ),
            ErrorClass::Conflict
        );
        assert_eq!(
            classify(
                "AssignIpv6Addresses",
                Some("InvalidParameterValue"),
                Some("Address 2001:db8::5 is in use."),
                Some(400)
            ),
            ErrorClass::Conflict
        );
    }

    #[test]
    fn unauthorized_names_the_missing_action() {
        let message = "You are not authorized to perform this operation. User: arn:aws:sts::1:assumed-role/pinip/x is not authorized to perform: ec2:AssociateAddress on resource: arn:aws:ec2:us-east-1:1:elastic-ip/eipalloc-1 because no identity-based policy allows the ec2:AssociateAddress action.";
        assert_eq!(
            classify(
                "AssociateAddress",
                Some("UnauthorizedOperation"),
                Some(message),
                Some(403)
            ),
            ErrorClass::PermissionDenied {
                action: "ec2:AssociateAddress".into()
            }
        );
        // An encoded message only: the operation names the action.
        assert_eq!(
            classify(
                "CreateTags",
                Some("UnauthorizedOperation"),
                Some("You are not authorized to perform this operation. Encoded authorization failure message: abc"),
                Some(403)
            ),
            ErrorClass::PermissionDenied {
                action: "ec2:CreateTags".into()
            }
        );
    }

    #[test]
    fn not_found_and_the_rest() {
        for code in [
            "InvalidAssociationID.NotFound",
            "InvalidAllocationID.NotFound",
            "InvalidInstanceID.NotFound",
            "InvalidNetworkInterfaceID.NotFound",
        ] {
            assert_eq!(
                classify("X", Some(code), None, Some(400)),
                ErrorClass::NotFound
            );
        }
        assert_eq!(
            classify("X", Some("InternalError"), None, Some(500)),
            ErrorClass::Transient
        );
        assert_eq!(classify("X", None, None, Some(500)), ErrorClass::Transient);
        assert_eq!(
            classify("X", Some("ExpiredToken"), None, Some(400)),
            ErrorClass::Transient
        );
        assert_eq!(
            classify("X", Some("AuthFailure"), None, Some(401)),
            ErrorClass::Permanent
        );
        // A FILTER EC2 refuses is the user's input to fix (exit 2), not a retry.
        assert_eq!(
            classify(
                "X",
                Some("InvalidParameterValue"),
                Some("The filter 'bogus' is invalid"),
                Some(400)
            ),
            ErrorClass::InvalidInput
        );
        assert_eq!(
            classify(
                "X",
                Some("InvalidParameterValue"),
                Some("bad value"),
                Some(400)
            ),
            ErrorClass::Permanent
        );
    }
}
