//! Field-level errors, worded like `k8s.io/apimachinery/pkg/util/validation/field`:
//! `spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0`, each one a
//! `StatusCause` (reason, message, field) of a 422 Invalid.

use serde_json::{json, Value};

/// The error types the simulator produces (`field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    Required,
    Invalid,
    NotSupported,
    TooLong,
    Forbidden,
}

impl FieldErrorType {
    /// `StatusCause.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::Forbidden => "FieldValueForbidden",
        }
    }

    fn label(self) -> &'static str {
        match self {
            FieldErrorType::Required => "Required value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::Forbidden => "Forbidden",
        }
    }
}

/// One invalid field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorType,
    /// `metadata.labels`, `spec.leaseDurationSeconds`, ...
    pub field: String,
    /// The offending value (printed for Invalid and NotSupported).
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: &str, detail: &str) -> Self {
        FieldError {
            kind: FieldErrorType::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    pub fn invalid(field: &str, value: impl Into<Value>, detail: &str) -> Self {
        FieldError {
            kind: FieldErrorType::Invalid,
            field: field.into(),
            value: Some(value.into()),
            detail: detail.into(),
        }
    }

    pub fn not_supported(field: &str, value: impl Into<Value>, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| json!(s).to_string()).collect();
        FieldError {
            kind: FieldErrorType::NotSupported,
            field: field.into(),
            value: Some(value.into()),
            detail: format!("supported values: {}", quoted.join(", ")),
        }
    }

    pub fn too_long(field: &str, max_bytes: usize) -> Self {
        FieldError {
            kind: FieldErrorType::TooLong,
            field: field.into(),
            value: None,
            detail: format!("must have at most {max_bytes} bytes"),
        }
    }

    pub fn forbidden(field: &str, detail: &str) -> Self {
        FieldError {
            kind: FieldErrorType::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }

    /// `ErrorBody()`: the message without the field path.
    pub fn body(&self) -> String {
        let mut s = self.kind.label().to_string();
        if let Some(v) = &self.value {
            // Go's %#v for strings is a quoted string; numbers and booleans print plain.
            s.push_str(": ");
            s.push_str(&v.to_string());
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// The `StatusCause` of a 422.
    pub fn cause(&self) -> Value {
        json!({"reason": self.kind.reason(), "message": self.body(), "field": self.field})
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// `ErrorList.ToAggregate().Error()`: one error plain, several in brackets.
pub fn aggregate(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_apimachinery() {
        let e = FieldError::invalid("spec.leaseDurationSeconds", 0, "must be greater than 0");
        assert_eq!(
            e.to_string(),
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
        let e = FieldError::not_supported("type", "Bad", &["Normal", "Warning"]);
        assert_eq!(
            e.body(),
            "Unsupported value: \"Bad\": supported values: \"Normal\", \"Warning\""
        );
        let r = FieldError::required("metadata.name", "name or generateName is required");
        assert_eq!(
            aggregate(std::slice::from_ref(&r)),
            "metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(
            aggregate(&[r.clone(), r]).matches("metadata.name").count(),
            2
        );
    }
}
