//! What an agent does when the cloud throttles a pass: pause by the pacing schedule of
//! `domain::pacing` (its place among the agents sharing the account's limit), not by
//! the failure backoff. Throttling is not failure: it never counts toward
//! RETRY_ATTEMPTS, and the cloud's own `Retry-After` is a floor, not an addition.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pinip_providers::{AssignmentRateLimit, PoolAddress, ProviderError};
use tracing::{debug, warn};

use super::acquire::{Pass, PassError};
use super::{Agent, NodeContext};
use crate::cluster::census::count_nodes;
use crate::cluster::claim_store::Claim;
use crate::domain::claim_record::Phase;
use crate::domain::pacing::{pause_after_throttle, record_deferral, Sharing};
use crate::domain::retry::FailureHint;

/// A node count is read again after this long (a scale-up changes it).
const CENSUS_AGE: Duration = Duration::from_secs(600);

/// The cluster's Node count as last read, and when.
#[derive(Default)]
pub(super) struct Census(Mutex<Option<(u64, Instant)>>);

impl Census {
    fn fresh(&self) -> Option<u64> {
        let seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        seen.filter(|(_, at)| at.elapsed() < CENSUS_AGE)
            .map(|(n, _)| n)
    }

    fn record(&self, nodes: u64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((nodes, Instant::now()));
    }
}

/// A claimed candidate whose attach the cloud refused by throttling. Nothing changed
/// in the cloud, so the next pass renews the claim and attaches again, without
/// listing the pool first: a refused call must not cost a read besides. The cloud
/// stays the second guard (an attach never moves an address another instance holds).
pub(super) struct ThrottledAttach {
    pub candidate: PoolAddress,
    pub claim: Claim,
}

impl Agent {
    /// Attach the candidate a throttled pass left claimed: the assignment, or None for
    /// a normal pass (nothing left, the claim lost, or the address no longer free).
    pub(super) async fn resume_throttled(
        &self,
        ctx: &mut NodeContext,
    ) -> Result<Option<Pass>, PassError> {
        let Some(ThrottledAttach {
            candidate,
            mut claim,
        }) = ctx.resume.take()
        else {
            return Ok(None);
        };
        if let Err(e) = ctx.claims.renew(&mut claim).await {
            debug!(address = %candidate.ip, error = %e, "the throttled attempt's claim is gone; a fresh pass");
            return Ok(None);
        }
        let instance = self.described(ctx).await?;
        let owner = self.owner(ctx);
        self.attach_claimed(ctx, &candidate, claim, &instance, &owner)
            .await
    }

    /// Acquiring ended (shutdown, an error) with a throttled attempt's claim still
    /// held: give a fresh (`claiming`) one back, so it does not wait out LEASE_DURATION.
    /// A `held` one is the claim of the address our node still publishes (a re-attach
    /// after the address was lost): it stays, or another node could take and publish
    /// an address ours still advertises (Compute chaos seeds 40012 and 40022). The next
    /// agent re-attaches it, or its next publication (or the sweep) drops it.
    pub(super) async fn give_back_throttled(&self, ctx: &mut NodeContext) {
        if let Some(ThrottledAttach { claim, .. }) = ctx.resume.take() {
            if claim.phase == Phase::Held {
                debug!(address = %claim.address, "keeping the claim of the address this node publishes");
                return;
            }
            if let Err(e) = ctx.claims.release(&claim).await {
                warn!(error = %e, "could not release a claim after a throttled attach; it expires after LEASE_DURATION");
            }
        }
    }

    /// The pause after the `streak`-th throttled pass in a row.
    pub(super) async fn throttled_pause(
        &self,
        ctx: &mut NodeContext,
        error: &ProviderError,
        streak: u32,
    ) -> Duration {
        let backoff = || {
            let hint = FailureHint {
                throttled: true,
                retry_after: error.retry_after,
            };
            self.settings
                .retry
                .after_failure(streak, hint, fastrand::f64())
        };
        let Some(limit) = ctx.provider.assignment_rate_limit() else {
            return backoff();
        };
        let nodes = self.node_count().await;
        let sharing = Sharing::of(&self.settings.node.name, nodes, ctx.free_seen);
        let Some(pause) = pause_after_throttle(
            &limit,
            &sharing,
            streak,
            wall_clock(),
            error.retry_after,
            fastrand::f64(),
        ) else {
            return backoff();
        };
        ctx.paced_by_window |= matches!(limit, AssignmentRateLimit::Window { .. });
        debug!(
            streak,
            sharers = sharing.sharers,
            place = sharing.place,
            pause_ms = pause.as_millis() as u64,
            "throttled: paced"
        );
        pause
    }

    /// When to write the record of the attach this acquisition just made: None for at
    /// once; later when a quota window paced it (`domain::pacing::record_deferral`).
    pub(super) fn record_deferral(&self, ctx: &mut NodeContext) -> Option<Duration> {
        let paced = std::mem::take(&mut ctx.paced_by_window);
        let limit = ctx.provider.assignment_rate_limit()?;
        record_deferral(&limit, paced, wall_clock(), fastrand::f64())
    }

    /// The cluster's Node count: read once, then again after [`CENSUS_AGE`]; None if
    /// the server does not count (the pacing then leans on the pool's free addresses).
    pub(super) async fn node_count(&self) -> Option<u64> {
        if let Some(nodes) = self.census.fresh() {
            return Some(nodes);
        }
        match count_nodes(&self.client).await {
            Ok(Some(nodes)) => {
                self.census.record(nodes);
                Some(nodes)
            }
            Ok(None) => None,
            Err(e) => {
                debug!(error = %e, "could not count the Nodes; pacing by the pool alone");
                None
            }
        }
    }
}

/// Time since the Unix epoch: quota windows start at whole minutes of it.
fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
