//! EC2 error answers: the real codes with the real HTTP statuses, rendered as EC2's
//! `<Response><Errors><Error>` document.

use std::fmt::Display;

/// One EC2 error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ec2Error {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Ec2Error {
    pub fn new(code: &str, message: impl Into<String>) -> Ec2Error {
        Ec2Error {
            status: status_of(code),
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn missing(parameter: &str) -> Ec2Error {
        Ec2Error::new(
            "MissingParameter",
            format!("The request must contain the parameter {parameter}"),
        )
    }

    pub fn invalid_value(message: impl Into<String>) -> Ec2Error {
        Ec2Error::new("InvalidParameterValue", message)
    }

    /// `The {what} '{id}' does not exist` under the given `*.NotFound` code.
    pub fn not_found(code: &str, what: &str, id: impl Display) -> Ec2Error {
        Ec2Error::new(code, format!("The {what} '{id}' does not exist"))
    }
}

/// The HTTP status EC2 sends with `code`.
pub fn status_of(code: &str) -> u16 {
    match code {
        "UnauthorizedOperation" => 403,
        "RequestLimitExceeded" | "Unavailable" | "ServiceUnavailable" => 503,
        "InternalError" | "InternalFailure" => 500,
        "DryRunOperation" => 412,
        _ => 400,
    }
}
