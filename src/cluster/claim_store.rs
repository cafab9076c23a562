//! Per-address claims: one `coordination.k8s.io/v1` Lease per address
//! (`pinip-<address>` in `LEASE_NAMESPACE`), written *before* any cloud call.
//!
//! - `create` is atomic: `AlreadyExists` means another node got there first → next candidate.
//! - A claim is `claiming` while its holder attaches the address (renewed every
//!   `LEASE_DURATION`/3), then `held` for as long as the node keeps the address.
//! - A `claiming` claim whose resourceVersion has not moved for `LEASE_DURATION`, as
//!   measured on the observer's own monotonic clock (client-go's leader-election rule,
//!   immune to clock skew between nodes), belongs to a crashed agent and may be taken over.
//! - A `held` claim is stale only when its holder Node is gone or now runs on another
//!   instance.
//! - Every takeover and release is a `resourceVersion`-guarded write, so two nodes
//!   can never both win one claim.
//!
//! The claim is coordination, not the last line of defence: the provider's attach
//! refuses an address that another instance holds (see docs/design.md).
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, PostParams};
use kube::Api;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::cluster::errors::{is_conflict_or_gone, status_code, with_retries};
use crate::domain::claim_record::{
    holder_label_value, judge, lease_name, ClaimRecord, Holder, HolderState, Phase, Verdict,
    ADDRESS_ANNOTATION, CLUSTER_ANNOTATION, HOLDER_LABEL, INSTANCE_ANNOTATION, MANAGED_BY_LABEL,
    MANAGED_BY_VALUE, PHASE_ANNOTATION,
};
use crate::domain::identity::parse_provider_id;
use crate::domain::unchanged_since::UnchangedSince;

/// Where the timestamps written into claims come from (a seam: a test may skew it).
pub type WallClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// `LEASE_NAMESPACE` and `LEASE_DURATION`: where the claims live and how long a
/// `claiming` claim binds without renewal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimSettings {
    pub namespace: String,
    pub duration: Duration,
}

pub use crate::cluster::leases::{guarded_delete, guarded_write, list_claims};

/// A claim this node holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub name: String,
    pub address: IpAddr,
    pub phase: Phase,
    resource_version: String,
}

#[derive(Debug)]
pub enum ClaimAttempt {
    Claimed(Claim),
    Taken { holder: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("claim {0} was taken over or deleted by someone else")]
    Lost(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// A `held` claim on an address the cloud shows on our instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adopted {
    pub claim: Claim,
    /// The node whose claim was replaced: it may still publish the address.
    pub taken_from: Option<String>,
}

/// Claims of one node.
pub struct ClaimStore {
    leases: Api<Lease>,
    nodes: Api<Node>,
    me: Holder,
    duration: Duration,
    /// Decide as usual, write nothing (DRY_RUN).
    dry_run: bool,
    /// The wall clock of the timestamps we write (informational only: no decision
    /// compares them across nodes, so a skewed clock changes nothing).
    wall_clock: WallClock,
    /// Lease name → how long we have seen it at its resourceVersion.
    observed: Mutex<HashMap<String, UnchangedSince>>,
}

impl ClaimStore {
    pub fn new(
        client: kube::Client,
        settings: &ClaimSettings,
        me: Holder,
        dry_run: bool,
    ) -> ClaimStore {
        ClaimStore {
            leases: Api::namespaced(client.clone(), &settings.namespace),
            nodes: Api::all(client),
            me,
            duration: settings.duration,
            dry_run,
            wall_clock: Arc::new(Timestamp::now),
            observed: Mutex::new(HashMap::new()),
        }
    }

    /// Write timestamps from this clock instead of the system's.
    pub fn with_wall_clock(mut self, clock: WallClock) -> ClaimStore {
        self.wall_clock = clock;
        self
    }

    pub fn holder(&self) -> &Holder {
        &self.me
    }

    fn lease(&self, address: IpAddr, phase: Phase, resource_version: Option<String>) -> Lease {
        let now = MicroTime((self.wall_clock)());
        Lease {
            metadata: ObjectMeta {
                name: Some(lease_name(&address)),
                resource_version,
                labels: Some(BTreeMap::from([
                    (MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string()),
                    (HOLDER_LABEL.to_string(), holder_label_value(&self.me.node)),
                ])),
                annotations: Some(BTreeMap::from([
                    (ADDRESS_ANNOTATION.to_string(), address.to_string()),
                    (INSTANCE_ANNOTATION.to_string(), self.me.instance.clone()),
                    (PHASE_ANNOTATION.to_string(), phase.as_str().to_string()),
                    (CLUSTER_ANNOTATION.to_string(), self.me.cluster.clone()),
                ])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.me.node.clone()),
                lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                ..LeaseSpec::default()
            }),
        }
    }

    fn claim_from(&self, lease: &Lease, address: IpAddr, phase: Phase) -> Claim {
        Claim {
            name: lease_name(&address),
            address,
            phase,
            resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
        }
    }

    fn unchanged_for(&self, record: &ClaimRecord) -> Duration {
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        observed
            .entry(record.name.clone())
            .or_default()
            .observe(&record.resource_version, Instant::now().into_std())
    }

    async fn holder_state(&self, record: &ClaimRecord) -> Result<HolderState, kube::Error> {
        if record.phase == Phase::Claiming {
            return Ok(HolderState::Unknown);
        }
        Ok(match self.nodes.get_opt(&record.holder).await? {
            None => HolderState::Gone,
            Some(node) => HolderState::Present {
                instance: node
                    .spec
                    .and_then(|s| s.provider_id)
                    .and_then(|id| parse_provider_id(&id).ok())
                    .map(|i| i.id),
            },
        })
    }

    /// Try to claim `address` for this node before touching the cloud: a fresh claim,
    /// or the takeover of a stale one.
    pub async fn try_claim(&self, address: IpAddr) -> Result<ClaimAttempt, kube::Error> {
        if self.dry_run {
            return self.try_claim_dry(address).await;
        }
        match self.try_create(address).await? {
            Some(claim) => Ok(ClaimAttempt::Claimed(claim)),
            None => self.take_over_if_stale(address).await,
        }
    }

    /// Claim `address` only if nobody has a claim on it (one create, no reads): `None`
    /// when a Lease exists, which [`ClaimStore::take_over_if_stale`] can judge later.
    pub async fn try_create(&self, address: IpAddr) -> Result<Option<Claim>, kube::Error> {
        if self.dry_run {
            return Ok(match self.try_claim_dry(address).await? {
                ClaimAttempt::Claimed(claim) => Some(claim),
                ClaimAttempt::Taken { .. } => None,
            });
        }
        let fresh = self.lease(address, Phase::Claiming, None);
        match self.leases.create(&PostParams::default(), &fresh).await {
            Ok(created) => Ok(Some(self.claim_from(&created, address, Phase::Claiming))),
            Err(e) if status_code(&e) == Some(409) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Judge the existing claim on `address` and take it over when it no longer binds.
    pub async fn take_over_if_stale(&self, address: IpAddr) -> Result<ClaimAttempt, kube::Error> {
        if self.dry_run {
            return self.try_claim_dry(address).await;
        }
        let name = lease_name(&address);
        let Some(existing) = self.leases.get_opt(&name).await? else {
            // Released between our create and get: someone is moving; let the next pass retry.
            return Ok(ClaimAttempt::Taken {
                holder: "(just released)".into(),
            });
        };
        let Some(record) = ClaimRecord::from_lease(&existing) else {
            return Ok(ClaimAttempt::Taken {
                holder: "(a Lease pinip did not write)".into(),
            });
        };
        let ours = record.names(&self.me);
        let verdict = if ours {
            // Our own claim (the agent restarted, or the address was detached from us).
            Verdict::Stale("our own earlier claim".into())
        } else {
            let unchanged = self.unchanged_for(&record);
            judge(&record, unchanged, &self.holder_state(&record).await?)
        };
        match verdict {
            Verdict::Binding => Ok(ClaimAttempt::Taken {
                holder: record.holder,
            }),
            Verdict::Stale(reason) => {
                // A held claim of ours stays held while we re-attach: our node still
                // publishes the address, so it must stay reserved to us even if this
                // agent dies mid-attach (a `claiming` claim would expire and let another
                // node take an address our Node still advertises).
                let phase = if ours && record.phase == Phase::Held {
                    Phase::Held
                } else {
                    Phase::Claiming
                };
                let takeover = self.lease(address, phase, Some(record.resource_version.clone()));
                match guarded_write(&self.leases, &name, &takeover).await {
                    Ok(replaced) => {
                        if !ours {
                            info!(address = %address, previous_holder = %record.holder, %reason, "took over a stale claim");
                        }
                        Ok(ClaimAttempt::Claimed(
                            self.claim_from(&replaced, address, phase),
                        ))
                    }
                    Err(e) if is_conflict_or_gone(&e) => Ok(ClaimAttempt::Taken {
                        holder: record.holder,
                    }),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// DRY_RUN: read the claim and judge it, write nothing.
    async fn try_claim_dry(&self, address: IpAddr) -> Result<ClaimAttempt, kube::Error> {
        let name = lease_name(&address);
        let existing = self.leases.get_opt(&name).await?;
        let verdict = match existing.as_ref().and_then(ClaimRecord::from_lease) {
            None => Verdict::Stale("no claim yet".into()),
            Some(record) if record.holder == self.me.node => Verdict::Stale("our own claim".into()),
            Some(record) => {
                let unchanged = self.unchanged_for(&record);
                match judge(&record, unchanged, &self.holder_state(&record).await?) {
                    Verdict::Binding => {
                        return Ok(ClaimAttempt::Taken {
                            holder: record.holder,
                        })
                    }
                    stale => stale,
                }
            }
        };
        info!(%address, lease = %name, ?verdict, "dry run: would claim the address");
        Ok(ClaimAttempt::Claimed(
            self.dry_claim(address, Phase::Claiming),
        ))
    }

    fn dry_claim(&self, address: IpAddr, phase: Phase) -> Claim {
        Claim {
            name: lease_name(&address),
            address,
            phase,
            resource_version: "dry-run".into(),
        }
    }

    /// Renew (or change the phase of) a claim we hold; fails with `Lost` if someone else
    /// took it over.
    async fn rewrite(&self, claim: &mut Claim, phase: Phase) -> Result<(), ClaimError> {
        if self.dry_run {
            claim.phase = phase;
            return Ok(());
        }
        let lease = self.lease(claim.address, phase, Some(claim.resource_version.clone()));
        match guarded_write(&self.leases, &claim.name, &lease).await {
            Ok(written) => {
                claim.resource_version = written.metadata.resource_version.unwrap_or_default();
                claim.phase = phase;
                Ok(())
            }
            Err(e) if is_conflict_or_gone(&e) => Err(ClaimError::Lost(claim.name.clone())),
            Err(e) => Err(ClaimError::Kube(e)),
        }
    }

    pub async fn renew(&self, claim: &mut Claim) -> Result<(), ClaimError> {
        self.rewrite(claim, claim.phase).await
    }

    pub async fn mark_held(&self, claim: &mut Claim) -> Result<(), ClaimError> {
        self.rewrite(claim, Phase::Held).await
    }

    /// Make sure we hold a `held` claim for an address the cloud says is attached to our
    /// instance (adoption after a restart, or after losing a claim mid-attach). The cloud
    /// is the truth here, so any other holder's claim is replaced.
    pub async fn ensure_held(&self, address: IpAddr) -> Result<Adopted, kube::Error> {
        let name = lease_name(&address);
        if self.dry_run {
            info!(%address, lease = %name, "dry run: would record the claim as held");
            return Ok(Adopted {
                claim: self.dry_claim(address, Phase::Held),
                taken_from: None,
            });
        }
        loop {
            match self.leases.get_opt(&name).await? {
                None => {
                    let lease = self.lease(address, Phase::Held, None);
                    match self.leases.create(&PostParams::default(), &lease).await {
                        Ok(created) => {
                            return Ok(Adopted {
                                claim: self.claim_from(&created, address, Phase::Held),
                                taken_from: None,
                            })
                        }
                        Err(e) if status_code(&e) == Some(409) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Some(existing) => {
                    let record = ClaimRecord::from_lease(&existing);
                    let already_ours = record.as_ref().is_some_and(|r| {
                        r.holder == self.me.node
                            && r.phase == Phase::Held
                            && r.instance == self.me.instance
                    });
                    if already_ours {
                        return Ok(Adopted {
                            claim: self.claim_from(&existing, address, Phase::Held),
                            taken_from: None,
                        });
                    }
                    let taken_from = record
                        .as_ref()
                        .filter(|r| r.holder != self.me.node && !r.holder.is_empty())
                        .map(|r| r.holder.clone());
                    if let Some(previous) = &taken_from {
                        info!(address = %address, previous_holder = %previous, "the cloud shows this address on our instance; correcting its claim");
                    }
                    let rv = existing.metadata.resource_version.clone();
                    let lease = self.lease(address, Phase::Held, rv);
                    match guarded_write(&self.leases, &name, &lease).await {
                        Ok(written) => {
                            return Ok(Adopted {
                                claim: self.claim_from(&written, address, Phase::Held),
                                taken_from,
                            })
                        }
                        Err(e) if is_conflict_or_gone(&e) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Is this claim still ours? False once someone replaced or deleted it (a sweep, or a
    /// node the cloud shows the address on).
    pub async fn is_ours(&self, claim: &Claim) -> Result<bool, kube::Error> {
        if self.dry_run {
            return Ok(true);
        }
        let lease = with_retries(|| self.leases.get_opt(&claim.name)).await?;
        Ok(lease
            .as_ref()
            .and_then(ClaimRecord::from_lease)
            .is_some_and(|r| r.names(&self.me) && r.address == Some(claim.address)))
    }

    /// Give a claim up (guarded: if someone else took it over meanwhile, theirs stays).
    pub async fn release(&self, claim: &Claim) -> Result<(), kube::Error> {
        if self.dry_run {
            info!(claim = %claim.name, "dry run: would release the claim");
            return Ok(());
        }
        match guarded_delete(&self.leases, &claim.name, &claim.resource_version).await {
            Ok(_) => Ok(()),
            Err(e) if is_conflict_or_gone(&e) => {
                debug!(claim = %claim.name, "claim already gone or taken over; nothing to release");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The claims that name this node, found by the holder label on the server: an
    /// agent's reads do not grow with the cluster. (A claim written before the label
    /// existed is not found here; it expires, or the sweep drops it.)
    pub async fn list_mine(&self) -> Result<Vec<ClaimRecord>, kube::Error> {
        let selector = format!(
            "{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{HOLDER_LABEL}={}",
            holder_label_value(&self.me.node)
        );
        let listed = self
            .leases
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(listed
            .items
            .iter()
            .filter_map(ClaimRecord::from_lease)
            .filter(|r| r.holder == self.me.node)
            .collect())
    }

    /// Drop claims this node holds for addresses other than `keep` (left behind by a
    /// crash mid-claim), so no claim outlives its purpose.
    pub async fn release_leftovers(&self, keep: Option<IpAddr>) -> Result<usize, kube::Error> {
        if self.dry_run {
            return Ok(0);
        }
        let mut released = 0;
        // Transient API errors are retried here: a leftover nobody drops would keep a free
        // address reserved (the sweep catches what still slips through).
        for record in with_retries(|| self.list_mine()).await? {
            if keep.is_some() && record.address == keep {
                continue;
            }
            let Some(address) = record.address else {
                continue;
            };
            let claim = Claim {
                name: record.name.clone(),
                address,
                phase: record.phase,
                resource_version: record.resource_version.clone(),
            };
            with_retries(|| self.release(&claim)).await?;
            released += 1;
        }
        Ok(released)
    }
}
