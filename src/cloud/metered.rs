//! Every cloud call counted and timed, by provider, operation and outcome: a decorator
//! around whichever provider serves the node, so no provider has to remember it.

use std::sync::Arc;

use async_trait::async_trait;
use pinip_providers::{
    AssignmentRateLimit, ErrorClass, Instance, InstanceRef, Ownership, PoolAddress, PoolPart,
    PoolRead, Provider, ProviderError, ProviderHandle,
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

    /// Run one call of the inner provider, counted and timed as `operation`.
    async fn timed<T>(
        &self,
        operation: &str,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        self.timed_as(operation, call, |_| None).await
    }

    /// `timed`, with `refused_in` naming the refusal an answer that is `Ok` carries.
    async fn timed_as<T>(
        &self,
        operation: &str,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
        refused_in: impl Fn(&T) -> Option<&ProviderError>,
    ) -> Result<T, ProviderError> {
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(answer) => refused_in(answer).map_or("ok", |e| error_class_label(&e.class)),
            Err(e) => error_class_label(&e.class),
        };
        self.metrics
            .cloud_call(self.inner.name(), operation, outcome, started.elapsed());
        result
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
        self.timed("describe_instance", self.inner.describe_instance(instance))
            .await
    }

    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError> {
        self.timed("list_pool", self.inner.list_pool()).await
    }

    /// Counted as `list_pool`; a prefix under the refusal's class, as the listing was.
    async fn list_pool_prefix(&self) -> Result<PoolRead, ProviderError> {
        self.timed_as(
            "list_pool",
            self.inner.list_pool_prefix(),
            PoolRead::refusal,
        )
        .await
    }

    fn reads_pool_parts(&self) -> bool {
        self.inner.reads_pool_parts()
    }

    /// Counted as `list_pool` too: a part is a pool listing with one filter more.
    async fn list_pool_part(&self, part: &PoolPart) -> Result<PoolRead, ProviderError> {
        self.timed_as(
            "list_pool",
            self.inner.list_pool_part(part),
            PoolRead::refusal,
        )
        .await
    }

    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        self.timed("attach", self.inner.attach(address, instance, owner))
            .await
    }

    /// Counted as `attach`: the same cloud change, its record left to `record_owner`.
    async fn attach_unrecorded(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        self.timed(
            "attach",
            self.inner.attach_unrecorded(address, instance, owner),
        )
        .await
    }

    async fn record_owner(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        self.timed(
            "record_owner",
            self.inner.record_owner(address, instance, owner),
        )
        .await
    }

    async fn ensure_public_ip(&self, instance: &Instance) -> Result<(), ProviderError> {
        self.timed("ensure_public_ip", self.inner.ensure_public_ip(instance))
            .await
    }

    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError> {
        self.timed("detach", self.inner.detach(address, instance))
            .await
    }
}
