//! `DRY_RUN`: the agent reads everything and decides as usual, but every write to the
//! cloud is logged instead of made (writes to the cluster are skipped in the claim
//! store, the node publisher and the event notifier).

use async_trait::async_trait;
use pinip_providers::{
    AssignmentRateLimit, Instance, InstanceRef, Ownership, PoolAddress, PoolPart, PoolRead,
    Provider, ProviderError, ProviderHandle,
};
use std::sync::Arc;
use tracing::info;

pub struct DryRunProvider {
    inner: ProviderHandle,
}

impl DryRunProvider {
    pub fn wrap(inner: ProviderHandle) -> ProviderHandle {
        Arc::new(DryRunProvider { inner })
    }
}

#[async_trait]
impl Provider for DryRunProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn assignment_rate_limit(&self) -> Option<AssignmentRateLimit> {
        self.inner.assignment_rate_limit()
    }

    async fn describe_instance(&self, instance: &InstanceRef) -> Result<Instance, ProviderError> {
        self.inner.describe_instance(instance).await
    }

    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        self.inner.list_pool().await
    }

    async fn list_pool_prefix(&self) -> Result<PoolRead, ProviderError> {
        self.inner.list_pool_prefix().await
    }

    fn reads_pool_parts(&self) -> bool {
        self.inner.reads_pool_parts()
    }

    async fn list_pool_part(&self, part: &PoolPart) -> Result<PoolRead, ProviderError> {
        self.inner.list_pool_part(part).await
    }

    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        info!(address = %address.ip, allocation = %address.id, instance = %instance.reference.id, owner_node = %owner.node, "dry run: would attach the address");
        Ok(())
    }

    async fn ensure_public_ip(&self, instance: &Instance) -> Result<(), ProviderError> {
        info!(instance = %instance.reference.id, "dry run: would give the node an ephemeral public IP if it has none");
        Ok(())
    }

    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        info!(address = %address.ip, instance = %instance.id, "dry run: would detach the address");
        Ok(())
    }
}
