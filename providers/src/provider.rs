use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    AssignmentRateLimit, Instance, InstanceRef, Ownership, PoolAddress, PoolPart, PoolRead,
    ProviderError,
};

/// What the agent needs from a cloud, and nothing more.
///
/// Contract shared by every implementation (the agent relies on it, tests check it):
/// - `attach` and `detach` are idempotent: "already attached to this instance" and
///   "not attached" are successes;
/// - `attach` never moves an address that another instance holds: it fails with
///   [`crate::ErrorClass::Conflict`] instead (AWS `AllowReassociation=false`, GCP's in-use check);
/// - errors carry a class the agent acts on (retry, back off harder, next candidate, stop).
#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name for logs and metrics: "aws", "gcp", "fake".
    fn name(&self) -> &'static str;

    /// The instance behind a node: the NIC and private address an attachment targets.
    async fn describe_instance(&self, instance: &InstanceRef) -> Result<Instance, ProviderError>;

    /// Every address of the pool (`FILTER`, IP family), free or attached, in `ORDER_BY` order.
    /// One call answers both "does my instance already hold one?" and "which are free?".
    async fn list_pool(&self) -> Result<Vec<PoolAddress>, ProviderError>;

    /// `list_pool`, except that a listing a rate limit cut short after one or more pages
    /// gives those pages and the refusal ([`PoolRead::Prefix`]) instead of the refusal
    /// alone, for a node that may take a free address from them rather than wait for
    /// the limit (docs/design.md, "Why Compute's quota windows are harder"). Addresses
    /// in use on a prefix are as fresh as `list_pool`'s; free ones are candidates only.
    /// Default: the whole pool or the error, for a cloud that lists in one call.
    async fn list_pool_prefix(&self) -> Result<PoolRead, ProviderError> {
        self.list_pool().await.map(PoolRead::Whole)
    }

    /// Whether [`Provider::list_pool_part`] can read less than the whole pool.
    fn reads_pool_parts(&self) -> bool {
        false
    }

    /// The part of the pool that `part` selects, server-side ([`PoolRead::Part`]), or
    /// what `list_pool_prefix` gives where the cloud cannot select one. Addresses on a
    /// part are as fresh as `list_pool`'s; the agent reads the whole pool when the part
    /// does not settle its node (docs/design.md, "Pool parts"). Default: no parts.
    async fn list_pool_part(&self, part: &PoolPart) -> Result<PoolRead, ProviderError> {
        let _ = part;
        self.list_pool_prefix().await
    }

    /// Attach `address` to `instance` and record `owner` on the cloud object.
    async fn attach(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError>;

    /// `attach` without the ownership record where the record is a call of its own (EC2
    /// `CreateTags`, Compute `setLabels`): the agent writes it with [`Provider::record_owner`] beside the
    /// claim's mark and the publication (docs/design.md, "The critical path of one
    /// assignment"). Default: `attach`, for a cloud whose record rides the attach.
    /// A decorator forwards both of these or neither.
    async fn attach_unrecorded(
        &self,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<(), ProviderError> {
        self.attach(address, instance, owner).await
    }

    /// Write the ownership record that `attach_unrecorded` left out, for an address it
    /// attached to `instance`. Idempotent. Default: nothing (the attach wrote it).
    async fn record_owner(
        &self,
        _address: &PoolAddress,
        _instance: &Instance,
        _owner: &Ownership,
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Give `instance` an ephemeral public IP if it has none at all, for a node that
    /// waits without an address: an address removed by hand, then taken by another node,
    /// must not leave it without egress. Default: nothing (a cloud that restores one by
    /// itself, as EC2 does, or a provider without ephemeral IPs).
    async fn ensure_public_ip(&self, _instance: &Instance) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The published rate limit that bounds this cloud's assignments (the tightest one an
    /// assignment spends from), for agents that share it to pace themselves once
    /// throttled. Default: none known (the agent then backs off blindly).
    fn assignment_rate_limit(&self) -> Option<AssignmentRateLimit> {
        None
    }

    /// Detach `address` if it is still on `instance`, and clear its ownership record.
    async fn detach(
        &self,
        address: &PoolAddress,
        instance: &InstanceRef,
    ) -> Result<(), ProviderError>;
}

/// A shared, dynamically chosen provider (picked from the node's providerID).
pub type ProviderHandle = Arc<dyn Provider>;
