use std::fmt;
use std::str::FromStr;

use clap::Args;
use pinip_providers::gcp::{GcpProvider, GcpSettings, TokenSource};
use pinip_providers::{InstanceRef, ProviderError};

use crate::cloud::settings::CloudSettings;

/// GCP-only settings. Credentials come from Application Default Credentials (Workload
/// Identity through the metadata server, `GOOGLE_APPLICATION_CREDENTIALS`, or gcloud);
/// these two flags exist for emulators and tests, never for production.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct GcpArgs {
    /// Base URL of the Compute API, e.g. `http://127.0.0.1:8089/compute/v1/` (gcloud's
    /// `api_endpoint_overrides/compute` form). Default: Google's endpoint.
    #[arg(long = "gcp-compute-endpoint", env = "GCP_COMPUTE_ENDPOINT")]
    pub compute_endpoint: Option<String>,
    /// A fixed bearer token instead of Application Default Credentials (emulators, tests).
    #[arg(
        long = "gcp-access-token",
        env = "GCP_ACCESS_TOKEN",
        hide_env_values = true
    )]
    pub access_token: Option<AccessToken>,
}

/// A bearer token that never shows in logs or `Debug` output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AccessToken(pub String);

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

impl FromStr for AccessToken {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(AccessToken(s.trim().to_string()))
    }
}

impl GcpArgs {
    /// The endpoint override, if set to something.
    pub fn endpoint(&self) -> Option<&str> {
        self.compute_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
    }

    /// The static token, if set to something.
    pub fn static_token(&self) -> Option<&str> {
        self.access_token
            .as_ref()
            .map(|t| t.0.as_str())
            .filter(|t| !t.is_empty())
    }
}

/// The GCP provider for a node: project from `PROJECT` or the providerID
/// (`gce://project/zone/name`), region from `REGION` or the zone, the endpoint override
/// and static token from `args` when set (else Google and Application Default Credentials).
pub async fn gcp_provider(
    instance: &InstanceRef,
    settings: &CloudSettings,
) -> Result<GcpProvider, ProviderError> {
    let args = &settings.gcp;
    let token = match args.static_token() {
        Some(token) => TokenSource::Static(token.to_string()),
        None => TokenSource::application_default().await?,
    };
    GcpProvider::new(GcpSettings {
        project: settings
            .project
            .clone()
            .or_else(|| instance.project.clone())
            .unwrap_or_default(),
        region: settings
            .region
            .clone()
            .or_else(|| instance.region())
            .unwrap_or_default(),
        endpoint: args.endpoint().map(String::from),
        token,
        pool: settings.pool.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_mean_unset_and_tokens_stay_secret() {
        let args = GcpArgs {
            compute_endpoint: Some("  ".into()),
            access_token: Some("s3cret".parse().unwrap()),
        };
        assert_eq!(args.endpoint(), None);
        assert_eq!(args.static_token(), Some("s3cret"));
        assert!(!format!("{args:?}").contains("s3cret"));
        assert_eq!(GcpArgs::default().static_token(), None);
    }
}
