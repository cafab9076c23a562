//! The sweep: after abrupt node loss (instance terminated, Node deleted with no agent
//! left to release), free the addresses and claims their nodes left behind.
//!
//! One elected agent sweeps (`agent::sweep_leader`, `domain::sweep_leadership`): only it
//! reads every claim and Node. Sweeping is idempotent (detach only from the vanished
//! owner's instance, claim deletes guarded by resourceVersion), so two leaders for a
//! moment cost nothing but a duplicate read.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::ListParams;
use kube::Api;
use pinip_providers::{InstanceRef, ProviderHandle};
use tracing::{debug, info, warn};

use crate::admin::metrics::Metrics;
use crate::cluster::claim_store::{guarded_delete, list_claims};
use crate::cluster::errors::is_conflict_or_gone;
use crate::domain::claim_record::ClaimRecord;
use crate::domain::exit_decision::ReleasePolicy;
use crate::domain::identity::parse_provider_id;
use crate::domain::sweep_plan::{plan, LiveNodes, Published};

/// The Lease that elects the sweeper.
pub const SWEEP_LEASE: &str = "pinip-sweep";

pub struct Sweeper {
    pub leases: Api<Lease>,
    pub nodes: Api<Node>,
    pub provider: ProviderHandle,
    /// The sweeping agent's own instance: the cloud and project the pool lives in.
    pub home: InstanceRef,
    pub node_name: String,
    pub cluster: String,
    pub interval: Duration,
    pub metrics: Arc<Metrics>,
    pub dry_run: bool,
    /// `RELEASE_ON_EXIT`: with `false`, addresses stay on vanished nodes' instances.
    pub release_on_exit: ReleasePolicy,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    pub freed: usize,
    pub claims_dropped: usize,
    /// Left on a vanished node's instance (`RELEASE_ON_EXIT=false`).
    pub kept: usize,
}

impl Sweeper {
    /// One sweep: read nodes, pool and claims; free what vanished nodes left behind.
    pub async fn sweep(&self) -> anyhow::Result<SweepOutcome> {
        // Read order matters: claims, then the pool, then the Nodes. A node that joins
        // while we read claims its address and attaches it before it can appear in a
        // claim or in the pool; reading the Nodes last means every owner we see in the
        // first two reads is in the node list unless it really is gone (docs/design.md,
        // "a node joins while a sweep runs"). Claims before the pool: a claim written after our pool read could otherwise be judged against
        // a pool that predates it; deletes are resourceVersion-guarded, so a claim that
        // changes after we read it is never dropped.
        let claims: Vec<ClaimRecord> = list_claims(&self.leases).await?;
        let pool = self.provider.list_pool().await?;
        self.metrics
            .pool_seen(pool.len(), pool.iter().filter(|a| a.is_free()).count());
        let node_list = self.nodes.list(&ListParams::default()).await?.items;
        let published: Published = node_list
            .iter()
            .filter_map(|n| {
                Some((
                    n.metadata.name.clone()?,
                    crate::cluster::publish::published_address(n)?,
                ))
            })
            .collect();
        let live: LiveNodes = node_list
            .into_iter()
            .filter_map(|n| {
                let instance = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.provider_id.as_deref())
                    .and_then(|id| parse_provider_id(id).ok())
                    .map(|i| i.id);
                Some((n.metadata.name?, instance))
            })
            .collect();
        let mut todo = plan(&pool, &live, &published, &claims, &self.cluster);
        if self.release_on_exit == ReleasePolicy::Never {
            todo = todo.keeping_attached();
        }
        let mut outcome = SweepOutcome {
            kept: todo.kept.len(),
            ..SweepOutcome::default()
        };
        for item in &todo.kept {
            debug!(address = %item.address.ip, owner_node = %item.owner.node, owner_instance = %item.owner.instance, why = %item.why, "sweep: RELEASE_ON_EXIT=false, leaving the address on its vanished node's instance");
        }
        let mut not_freed = std::collections::BTreeSet::new();
        for item in &todo.free {
            let owner_instance = InstanceRef {
                cloud: self.home.cloud.clone(),
                project: self.home.project.clone(),
                // The owner's zone is not recorded; providers find the attachment from the address.
                zone: String::new(),
                id: item.owner.instance.clone(),
            };
            info!(address = %item.address.ip, owner_node = %item.owner.node, owner_instance = %item.owner.instance, why = %item.why, "sweep: freeing an address its node left behind");
            match self.provider.detach(&item.address, &owner_instance).await {
                Ok(()) => outcome.freed += 1,
                Err(e) => {
                    not_freed.insert(item.address.ip);
                    warn!(address = %item.address.ip, error = %e, "sweep: could not free the address")
                }
            }
        }
        for item in &todo.drop {
            // The claim is how the next sweep finds an address still on a vanished
            // instance: it goes only once the address is free.
            if item.claim.address.is_some_and(|a| not_freed.contains(&a)) {
                continue;
            }
            info!(claim = %item.claim.name, holder = %item.claim.holder, why = %item.why, "sweep: dropping a stale claim");
            if self.dry_run {
                continue;
            }
            match guarded_delete(&self.leases, &item.claim.name, &item.claim.resource_version).await
            {
                Ok(_) => outcome.claims_dropped += 1,
                Err(e) if is_conflict_or_gone(&e) => {}
                Err(e) => {
                    warn!(claim = %item.claim.name, error = %e, "sweep: could not drop the claim")
                }
            }
        }
        Ok(outcome)
    }
}
