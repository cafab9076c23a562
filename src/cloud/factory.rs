//! Which provider serves a node, from the scheme of its providerID.

use std::sync::Arc;

use pinip_providers::{ErrorClass, InstanceRef, ProviderError, ProviderHandle};

use crate::cloud::settings::CloudSettings;

/// Builds the provider for a node's cloud (chosen from its providerID). Async: SDKs
/// load credentials and region on construction.
#[async_trait::async_trait]
pub trait ProviderFactory: Send + Sync {
    async fn provider_for(
        &self,
        instance: &InstanceRef,
        settings: &CloudSettings,
    ) -> Result<ProviderHandle, ProviderError>;
}

/// The providers compiled into this binary, for `pinip run` on a real cluster.
pub struct CloudProviders;

#[async_trait::async_trait]
impl ProviderFactory for CloudProviders {
    async fn provider_for(
        &self,
        instance: &InstanceRef,
        settings: &CloudSettings,
    ) -> Result<ProviderHandle, ProviderError> {
        match instance.cloud.as_str() {
            "aws" => Ok(Arc::new(
                crate::cloud::aws_provider(instance, settings).await?,
            )),
            "gce" => Ok(Arc::new(
                crate::cloud::gcp_provider(instance, settings).await?,
            )),
            "oci" => Ok(Arc::new(
                crate::cloud::oci_provider(instance, settings).await?,
            )),
            other => Err(ProviderError::new(
                ErrorClass::InvalidInput,
                "SelectProvider",
                format!("node instance {instance} runs on cloud {other:?}, which this build of pinip cannot manage"),
            )),
        }
    }
}
