//! Every cloud call counted and timed, by provider, operation and outcome: a decorator
//! around whichever provider serves the node, so no provider has to remember it.

use std::sync::Arc;

use async_trait::async_trait;
use pinip_providers::{
    AssignmentRateLimit, ErrorClass, Instance, InstanceRef, Ownership, PoolAddress, Provider,
    ProviderError, ProviderHandle,
};
use tokio::time::Instant;

use crate::admin::metrics::Metrics;

pub struct MeteredProvider {
    inner: ProviderHandle,
    metrics: Arc<Metrics>,
}

impl MeteredProvider {
    pub fn wrap(inner: ProviderHandle, metrics: Arc<Metrics>) -> ProviderHandle {
        Arc::new(MeteredProvider { inner, metrics })
    }

    fn record<T>(&self, operation: &str, started: Instant, result: &Result<T, ProviderError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => error_class_label(&e.class),
        };
        self.metrics
            .cloud_call(self.inner.name(), operation, outcome, started.elapsed());
    }
}

/// The `outcome` label of a failed call.
pub fn error_class_label(class: &ErrorClass) -> &'static str {
    match class {
        ErrorClass::Transient => "transient",
        ErrorClass::Throttled => "throttled",
        ErrorClass::Conflict => "conflict",
        ErrorClass::NotFound => "not_found",
        ErrorClass::PermissionDenied { .. } => "permission_denied",
        ErrorClass::InvalidInput => "invalid_input",
        ErrorClass::Permanent => "permanent",
    }
}

#[async_trait]
impl Provider for MeteredProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn assignment_rate_limit(&self) -> Option<AssignmentRateLimit> {
        self.inner.assignment_rate_limit()
    }

    async fn describe_instance(&self, instance: &InstanceRef) -> Result<Instance, ProviderError> {
        let started = Instant::now();
        let result = self.inner.describe_instance(instance).await;
        self.record("describe_instance", started, &result);
        result
    }

    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        let started = Instant::now();
        let result = self.inner.list_pool().await;
        self.record("list_pool", started, &result);
        result
    }

    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        let result = self.inner.attach(address, instance, owner).await;
        self.record("attach", started, &result);
        result
    }

    /// Counted as `attach`: the same cloud change, its record left to `record_owner`.
    async fn attach_unrecorded(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        let result = self.inner.attach_unrecorded(address, instance, owner).await;
        self.record("attach", started, &result);
        result
    }

    async fn record_owner(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        let result = self.inner.record_owner(address, instance, owner).await;
        self.record("record_owner", started, &result);
        result
    }

    async fn ensure_public_ip(&self, instance: &Instance) -> Result<(), ProviderError> {
        let started = Instant::now();
        let result = self.inner.ensure_public_ip(instance).await;
        self.record("ensure_public_ip", started, &result);
        result
    }

    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        let started = Instant::now();
        let result = self.inner.detach(address, instance).await;
        self.record("detach", started, &result);
        result
    }
}
