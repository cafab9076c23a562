//! The sweeper's election: every agent runs this loop, one of them leads. A follower
//! reads the `pinip-sweep` Lease twice a term; the leader renews it, watches Node
//! deletions (metadata only) and sweeps every `SWEEP_INTERVAL` and soon after each
//! deletion. The decisions are `domain::sweep_leadership`'s.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::core::PartialObjectMeta;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::sweeper::{Sweeper, SWEEP_LEASE};
use crate::admin::metrics::SweepResult;
use crate::cluster::claim_store::{guarded_delete, guarded_write};
use crate::cluster::errors::{is_conflict_or_gone, status_code};
use crate::domain::claim_record::MANAGED_BY_LABEL;
use crate::domain::selection::stable_hash;
use crate::domain::sweep_leadership::{
    deletion_spacing, look_period, next_step, renew_period, step_down_after, term, LeaderLease,
    Step,
};
use crate::domain::unchanged_since::UnchangedSince;

/// The label of the sweep Lease (not a claim: claims carry `managed-by=pinip`).
const SWEEP_LABEL_VALUE: &str = "pinip-sweep";

impl Sweeper {
    /// Follow, and lead when elected, until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let term = term(self.interval);
        // Followers look at different moments (a hash of the node name).
        let offset = Duration::from_millis(stable_hash(&self.node_name) % 1000);
        let mut observed = UnchangedSince::default();
        loop {
            match self.try_to_lead(term, &mut observed).await {
                Ok(Some(version)) => {
                    self.lead(version, term, &stop).await;
                    observed.forget();
                }
                Ok(None) => {}
                Err(e) => debug!(error = %e, "could not read the sweep Lease; looking again later"),
            }
            let pause = look_period(term) + offset.min(look_period(term) / 4);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One look at the Lease; the resourceVersion we lead under, if we now lead.
    async fn try_to_lead(
        &self,
        term: Duration,
        observed: &mut UnchangedSince,
    ) -> Result<Option<String>, kube::Error> {
        if self.dry_run {
            // DRY_RUN writes nothing, so nobody can be elected: every agent sweeps (reads
            // and logs what it would free).
            return Ok(Some(String::new()));
        }
        let existing = self.leases.get_opt(SWEEP_LEASE).await?;
        let read = existing.as_ref().map(|lease| LeaderLease {
            holder: lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default(),
            resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
        });
        let unchanged_for = match &read {
            Some(r) => observed.observe(&r.resource_version, Instant::now().into_std()),
            None => Duration::ZERO,
        };
        let written = match next_step(read.as_ref(), &self.node_name, unchanged_for, term) {
            Step::Follow => return Ok(None),
            Step::Create => match self
                .leases
                .create(&PostParams::default(), &self.leader_lease(term, None))
                .await
            {
                Ok(created) => created,
                Err(e) if status_code(&e) == Some(409) => return Ok(None),
                Err(e) => return Err(e),
            },
            Step::Resume | Step::TakeOver => {
                let version = read.map(|r| r.resource_version);
                match guarded_write(&self.leases, SWEEP_LEASE, &self.leader_lease(term, version))
                    .await
                {
                    Ok(written) => written,
                    Err(e) if is_conflict_or_gone(&e) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(Some(written.metadata.resource_version.unwrap_or_default()))
    }

    fn leader_lease(&self, term: Duration, resource_version: Option<String>) -> Lease {
        let now = MicroTime(Timestamp::now());
        Lease {
            metadata: ObjectMeta {
                name: Some(SWEEP_LEASE.into()),
                resource_version,
                labels: Some(BTreeMap::from([(
                    MANAGED_BY_LABEL.to_string(),
                    SWEEP_LABEL_VALUE.to_string(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.node_name.clone()),
                lease_duration_seconds: Some(term.as_secs().max(1) as i32),
                renew_time: Some(now),
                ..LeaseSpec::default()
            }),
        }
    }

    /// Lead until `stop`, a lost Lease, or a term without one successful renewal.
    /// Renewals run beside the sweeps, so a slow sweep never lets the Lease lapse.
    async fn lead(&self, version: String, term: Duration, stop: &CancellationToken) {
        info!("this agent now sweeps for the cluster");
        let version = Mutex::new(version);
        tokio::select! {
            _ = stop.cancelled() => {
                let last = version.lock().map(|v| v.clone()).unwrap_or_default();
                self.resign(&last).await;
            }
            () = self.keep_leading(&version, term) => {}
            () = self.sweep_while_leading() => {}
        }
    }

    /// Renew the Lease three times a term; return once leadership is lost.
    async fn keep_leading(&self, version: &Mutex<String>, term: Duration) {
        if self.dry_run {
            return std::future::pending().await;
        }
        let period = renew_period(term);
        let mut renew = tokio::time::interval_at(Instant::now() + period, period);
        let mut last_renewed = Instant::now();
        loop {
            renew.tick().await;
            let current = version.lock().map(|v| v.clone()).unwrap_or_default();
            let lease = self.leader_lease(term, Some(current));
            match guarded_write(&self.leases, SWEEP_LEASE, &lease).await {
                Ok(written) => {
                    if let Ok(mut v) = version.lock() {
                        *v = written.metadata.resource_version.unwrap_or_default();
                    }
                    last_renewed = Instant::now();
                }
                Err(e) if is_conflict_or_gone(&e) => {
                    info!("another agent took over the sweep");
                    return;
                }
                Err(e) if last_renewed.elapsed() >= step_down_after(term) => {
                    warn!(error = %e, "could not renew the sweep Lease for a whole term; stepping down");
                    return;
                }
                Err(e) => debug!(error = %e, "could not renew the sweep Lease; trying again"),
            }
        }
    }

    /// Sweep at once (a predecessor may have died mid-sweep), then every
    /// `SWEEP_INTERVAL` and soon after Node deletions.
    async fn sweep_while_leading(&self) {
        // Metadata only, and only on the leader: the one watch of every Node.
        let node_metadata: Api<PartialObjectMeta<Node>> =
            Api::all(self.nodes.clone().into_client());
        let mut deletions = watcher(node_metadata, watcher::Config::default())
            .default_backoff()
            .filter_map(|event| async move {
                match event {
                    Ok(watcher::Event::Delete(_)) => Some(()),
                    _ => None,
                }
            })
            .boxed();
        let spacing = deletion_spacing(self.interval);
        let mut next_sweep = Instant::now();
        let mut last_sweep: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = sleep_until(next_sweep) => {
                    self.sweep_and_report().await;
                    last_sweep = Some(Instant::now());
                    next_sweep = Instant::now() + self.interval;
                }
                Some(()) = deletions.next() => {
                    // Soon, but not once per deletion when many nodes go at once.
                    let soon = last_sweep.map_or_else(Instant::now, |at| at + spacing);
                    next_sweep = next_sweep.min(soon.max(Instant::now()));
                }
            }
        }
    }

    /// Give the Lease up on a clean stop, so a follower leads at its next look instead
    /// of after a term (guarded: a Lease someone else took over stays).
    async fn resign(&self, version: &str) {
        if self.dry_run {
            return;
        }
        let resigned = tokio::time::timeout(
            Duration::from_secs(2),
            guarded_delete(&self.leases, SWEEP_LEASE, version),
        )
        .await;
        match resigned {
            Ok(Ok(_)) => debug!("gave the sweep up"),
            Ok(Err(e)) if is_conflict_or_gone(&e) => {}
            Ok(Err(e)) => {
                debug!(error = %e, "could not give the sweep up; it expires after a term")
            }
            Err(_) => debug!("giving the sweep up timed out; it expires after a term"),
        }
    }

    async fn sweep_and_report(&self) {
        match self.sweep().await {
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
        }
    }
}
