//! The sweep: after abrupt node loss (instance terminated, Node deleted with no agent
//! left to release), free the addresses and claims their nodes left behind.
//!
//! Every agent runs the loop; a sweep token (the Lease `pinip-sweep`, written with a
//! resourceVersion-guarded replace) lets one agent per interval do the work. Sweeping
//! is idempotent (detach only from the vanished owner's instance, claim deletes guarded
//! by resourceVersion), so a token race costs nothing but a duplicate read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use kube::core::PartialObjectMeta;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use pinip_providers::{InstanceRef, ProviderHandle};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::admin::metrics::{Metrics, SweepResult};
use crate::cluster::claim_store::list_claims;
use crate::cluster::errors::{is_conflict_or_gone, status_code};
use crate::domain::claim_record::ClaimRecord;
use crate::domain::exit_decision::ReleasePolicy;
use crate::domain::identity::parse_provider_id;
use crate::domain::sweep_plan::{plan, LiveNodes, Published};

pub const SWEEP_LEASE: &str = "pinip-sweep";
/// Sweeps triggered by a Node deletion are at least this far apart.
const MIN_SPACING: Duration = Duration::from_secs(5);

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
    /// Sweep every `interval` (jittered per node) and soon after any Node is deleted.
    pub async fn run(self, stop: CancellationToken) {
        let offset =
            Duration::from_millis(crate::domain::selection::stable_hash(&self.node_name) % 1000);
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + self.interval + offset,
            self.interval,
        );
        // Metadata only: every agent runs this, so keep each watch small.
        let node_metadata: Api<PartialObjectMeta<Node>> =
            Api::all(self.nodes.clone().into_client());
        let deletions = watcher(node_metadata, watcher::Config::default())
            .default_backoff()
            .filter_map(|event| async move {
                match event {
                    Ok(watcher::Event::Delete(_)) => Some(()),
                    _ => None,
                }
            })
            .boxed();
        let mut deletions = deletions;
        loop {
            let min_age = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.interval,
                Some(()) = deletions.next() => MIN_SPACING,
            };
            match self.take_token(min_age).await {
                Ok(true) => match self.sweep().await {
                    Ok(outcome) => {
                        self.metrics.swept(SweepResult::Swept);
                        self.metrics.sweep_freed.inc_by(outcome.freed as u64);
                        if (outcome.freed, outcome.claims_dropped) != (0, 0) {
                            info!(
                                freed = outcome.freed,
                                claims_dropped = outcome.claims_dropped,
                                kept = outcome.kept,
                                "sweep done"
                            );
                        }
                    }
                    Err(e) => {
                        self.metrics.swept(SweepResult::Failed);
                        warn!(error = %e, "sweep failed; the next one retries");
                    }
                },
                Ok(false) => debug!("another agent swept recently"),
                Err(e) => debug!(error = %e, "could not take the sweep token"),
            }
        }
    }

    /// Take the sweep token if the last sweep is older than `min_age` (on our clock; a
    /// skewed clock only makes sweeps a little more or less frequent).
    pub async fn take_token(&self, min_age: Duration) -> Result<bool, kube::Error> {
        if self.dry_run {
            return Ok(true);
        }
        let now = Timestamp::now();
        let lease = |rv: Option<String>| Lease {
            metadata: ObjectMeta {
                name: Some(SWEEP_LEASE.into()),
                resource_version: rv,
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "pinip-sweep".to_string(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.node_name.clone()),
                lease_duration_seconds: Some(self.interval.as_secs().max(1) as i32),
                renew_time: Some(MicroTime(now)),
                ..LeaseSpec::default()
            }),
        };
        let Some(existing) = self.leases.get_opt(SWEEP_LEASE).await? else {
            return match self
                .leases
                .create(&PostParams::default(), &lease(None))
                .await
            {
                Ok(_) => Ok(true),
                Err(e) if status_code(&e) == Some(409) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let last = existing
            .spec
            .as_ref()
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0);
        let age = last
            .map(|t| now.duration_since(t))
            .and_then(|d| Duration::try_from(d).ok());
        if age.is_some_and(|age| age < min_age) {
            return Ok(false);
        }
        match self
            .leases
            .replace(
                SWEEP_LEASE,
                &PostParams::default(),
                &lease(existing.metadata.resource_version.clone()),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict_or_gone(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One sweep: read nodes, pool and claims; free what vanished nodes left behind.
    pub async fn sweep(&self) -> anyhow::Result<SweepOutcome> {
        // Read order matters: claims, then the pool, then the Nodes. A node that joins
        // while we read claims its address and attaches it before it can appear in a
        // claim or in the pool; reading the Nodes last means every owner we see in the
        // first two reads is in the node list unless it really is gone. (Nodes first
        // made a node that joined mid-sweep look vanished: its fresh address was
        // detached and its claim dropped while it published the address, and another
        // node then took and published it too; chaos seed 5 in CI.) Claims before the
        // pool: a claim written after our pool read could otherwise be judged against
        // a pool that predates it; deletes are resourceVersion-guarded, so a claim that
        // changes after we read it is never dropped.
        let claims: Vec<ClaimRecord> = list_claims(&self.leases).await?;
        let pool = self.provider.list_pool().await?;
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
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: Some(item.claim.resource_version.clone()),
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match self.leases.delete(&item.claim.name, &params).await {
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
