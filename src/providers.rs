//! Which provider serves a node, from the scheme of its providerID.

use std::sync::Arc;

use pinip_providers::fake::FakeCloud;
use pinip_providers::{ErrorClass, InstanceRef, ProviderError, ProviderHandle};

use crate::agent::ProviderFactory;
use crate::config::Settings;

/// The providers compiled into this binary, for `pinip run` on a real cluster.
pub struct CloudProviders;

#[async_trait::async_trait]
impl ProviderFactory for CloudProviders {
    async fn provider_for(
        &self,
        instance: &InstanceRef,
        settings: &Settings,
    ) -> Result<ProviderHandle, ProviderError> {
        let unsupported = |what: &str| {
            ProviderError::new(
                ErrorClass::InvalidInput,
                "SelectProvider",
                format!("node instance {instance} runs on {what}, which this build of pinip cannot manage"),
            )
        };
        match instance.cloud.as_str() {
            "aws" => Ok(Arc::new(
                crate::cloud_args::aws_provider(instance, settings, &settings.aws).await?,
            )),
            "gce" => Ok(Arc::new(
                crate::cloud_args::gcp_provider(instance, settings, &settings.gcp).await?,
            )),
            other => Err(unsupported(&format!("cloud {other:?}"))),
        }
    }
}

/// Every node served by one in-memory cloud (simulations and tests).
pub struct FakeProviders(pub Arc<FakeCloud>);

#[async_trait::async_trait]
impl ProviderFactory for FakeProviders {
    async fn provider_for(
        &self,
        _instance: &InstanceRef,
        settings: &Settings,
    ) -> Result<ProviderHandle, ProviderError> {
        Ok(Arc::new(self.0.provider(&settings.pool)?))
    }
}
