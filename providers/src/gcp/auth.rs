//! Where the bearer token of every Compute call comes from: Application Default
//! Credentials through `gcp_auth` (Workload Identity via the metadata server, a key
//! file in `GOOGLE_APPLICATION_CREDENTIALS`, or gcloud's user credentials), or a
//! static token for emulators and tests, so nothing ever reaches Google or the
//! metadata server there.

use std::fmt;
use std::sync::Arc;

use crate::{ErrorClass, ProviderError};

/// The OAuth scope of the Compute API.
pub const COMPUTE_SCOPE: &str = "https://www.googleapis.com/auth/compute";

#[derive(Clone)]
pub enum TokenSource {
    /// A fixed token (emulators, the simulator, tests). Never refreshed.
    Static(String),
    /// Application Default Credentials (refreshed and cached by gcp_auth).
    Adc(Arc<dyn gcp_auth::TokenProvider>),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::Static(_) => f.write_str("TokenSource::Static(<redacted>)"),
            TokenSource::Adc(_) => f.write_str("TokenSource::Adc"),
        }
    }
}

impl TokenSource {
    /// Application Default Credentials. Fails when no method works (no metadata server,
    /// no key file, no gcloud), with gcp_auth's reasons.
    pub async fn application_default() -> Result<TokenSource, ProviderError> {
        gcp_auth::provider()
            .await
            .map(TokenSource::Adc)
            .map_err(|e| {
                ProviderError::new(
                    ErrorClass::PermissionDenied {
                        action: "Application Default Credentials (Workload Identity, GOOGLE_APPLICATION_CREDENTIALS or gcloud)".into(),
                    },
                    "auth",
                    format!("no GCP credentials found: {e}"),
                )
            })
    }

    /// The current bearer token.
    pub async fn token(&self) -> Result<String, ProviderError> {
        match self {
            TokenSource::Static(token) => Ok(token.clone()),
            TokenSource::Adc(provider) => provider
                .token(&[COMPUTE_SCOPE])
                .await
                .map(|t| t.as_str().to_string())
                // The metadata server or the token endpoint may blip: retry soon.
                .map_err(|e| {
                    ProviderError::new(
                        ErrorClass::Transient,
                        "auth",
                        format!("could not get an access token: {e}"),
                    )
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_tokens_are_returned_and_never_printed() {
        let source = TokenSource::Static("secret-123".into());
        assert_eq!(source.token().await.unwrap(), "secret-123");
        assert!(!format!("{source:?}").contains("secret"));
    }
}
