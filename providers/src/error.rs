use std::fmt;
use std::time::Duration;

/// What the agent should do about a failed cloud call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network blip, 5xx: retry soon.
    Transient,
    /// The cloud asked us to slow down (`RequestLimitExceeded`, 429): back off harder.
    Throttled,
    /// The address is taken (by another instance, or a concurrent attach): try the next candidate.
    Conflict,
    /// The object is gone (instance terminated, address released).
    NotFound,
    /// Missing permission: retrying will not help until someone fixes IAM.
    PermissionDenied { action: String },
    /// Bad configuration or input (malformed filter, unknown order key): stop and report.
    InvalidInput,
    /// Anything else that retrying will not fix.
    Permanent,
}

/// A cloud call failed; `class` says what to do, the rest says what happened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ProviderError {
    pub class: ErrorClass,
    /// The cloud operation, e.g. "AssociateAddress", "addAccessConfig".
    pub operation: &'static str,
    /// The cloud's own error code, when it gave one.
    pub code: Option<String>,
    pub message: String,
    /// A delay the cloud asked for (Retry-After), if any.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(class: ErrorClass, operation: &'static str, message: impl Into<String>) -> Self {
        ProviderError {
            class,
            operation,
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn invalid_input(operation: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::InvalidInput, operation, message)
    }

    /// Worth retrying as is (perhaps after a longer pause)?
    pub fn is_retryable(&self) -> bool {
        matches!(self.class, ErrorClass::Transient | ErrorClass::Throttled)
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.operation)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.message)?;
        if let ErrorClass::PermissionDenied { action } = &self.class {
            write!(
                f,
                "; grant the permission `{action}` to pinip's cloud identity"
            )?;
        }
        Ok(())
    }
}
