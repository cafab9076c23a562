//! Acquiring an address: adopt the one the instance already holds, or claim a free one
//! and attach it, retrying on the one schedule of `domain::retry` until it works.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pinip_providers::{ErrorClass, Instance, Ownership, PoolAddress, ProviderError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::pacing::ThrottledAttach;
use super::record::PendingRecord;
use super::report::{exhausted_note, humanize, Outcome};
use super::{
    cloud, cloud_within, explain_forbidden, sleep_or_shutdown, Agent, AgentError, Held, NodeContext,
};
use crate::cluster::claim_store::{Claim, ClaimAttempt, ClaimError};
use crate::cluster::errors::{is_forbidden, is_namespace_missing};
use crate::domain::claim_record::Phase;
use crate::domain::retry::FailureHint;
use crate::domain::selection::{candidates, held_by};

/// An attach, and the ownership record after it, may wait out one quota window
/// (Compute's add after its delete or its `setLabels`, retried when the window turns),
/// so they get longer than other calls.
pub(super) const ATTACH_TIMEOUT: Duration = Duration::from_secs(120);

/// The outcome of one pass over the pool.
pub(super) enum Pass {
    Assigned(Box<Held>),
    Exhausted {
        matched: usize,
        free: usize,
    },
    Interrupted,
    /// The node's part of the pool did not settle it: read the whole pool now.
    ReadWhole,
}

/// A failed pass, by what the agent does about it.
#[derive(Debug, thiserror::Error)]
pub(super) enum PassError {
    #[error("{0}")]
    Cloud(ProviderError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Config(String),
}

impl From<ProviderError> for PassError {
    fn from(e: ProviderError) -> Self {
        match e.class {
            ErrorClass::InvalidInput => PassError::Config(e.to_string()),
            _ => PassError::Cloud(e),
        }
    }
}

impl PassError {
    fn hint(&self) -> FailureHint {
        match self {
            PassError::Cloud(e) => FailureHint {
                throttled: e.class == ErrorClass::Throttled,
                retry_after: e.retry_after,
            },
            _ => FailureHint::default(),
        }
    }
}

impl Agent {
    /// Adopt or claim+attach, retrying until it works or shutdown (None).
    pub(super) async fn acquire(
        &self,
        ctx: &mut NodeContext,
        preferred: Option<IpAddr>,
        shutdown: &CancellationToken,
    ) -> Result<Option<Held>, AgentError> {
        let acquired = self.acquire_until_done(ctx, preferred, shutdown).await;
        self.give_back_throttled(ctx).await;
        acquired
    }

    async fn acquire_until_done(
        &self,
        ctx: &mut NodeContext,
        preferred: Option<IpAddr>,
        shutdown: &CancellationToken,
    ) -> Result<Option<Held>, AgentError> {
        self.report.report(None, Outcome::Acquiring).await;
        ctx.paced_by_window = false;
        let policy = self.settings.retry;
        let mut failures: u32 = 0;
        // Throttled passes in a row: paced (`agent::pacing`), never counted as failures.
        let mut throttled: u32 = 0;
        let mut taint_given_up = false;
        let mut publication_cleared = false;
        // Once per wait: a node whose address was removed by hand and then went to
        // another node has no public IP at all (GCP, OCI) until it gets one back.
        let mut public_ip_ensured = false;
        // The reason last written on the Node (`pinip.dev/waiting`), so it changes once.
        let mut waiting_shown: Option<&'static str> = None;
        loop {
            if shutdown.is_cancelled() {
                return Ok(None);
            }
            let passed = self.pass(ctx, preferred, shutdown).await;
            if passed.is_ok() {
                self.kube_answered();
            }
            let delay = match passed {
                Ok(Pass::Assigned(held)) => return Ok(Some(*held)),
                Ok(Pass::Interrupted) => return Ok(None),
                Ok(Pass::ReadWhole) => continue,
                Ok(Pass::Exhausted { matched, free }) => {
                    failures = 0;
                    throttled = 0;
                    if !public_ip_ensured {
                        public_ip_ensured = self.ensure_public_ip(ctx).await;
                    }
                    // The node may still publish an address it no longer holds (lost while
                    // this agent was down): a waiting node must not advertise it.
                    if preferred.is_some() && !publication_cleared {
                        publication_cleared = self.withdraw_own_publication(ctx).await;
                    }
                    let note = exhausted_note(
                        &self.settings.cloud.pool.filter,
                        matched,
                        free,
                        policy.interval,
                    );
                    let why =
                        format!("pool exhausted: {matched} addresses match the pool, none is free");
                    self.show_waiting(ctx, &mut waiting_shown, "pool-exhausted", &why)
                        .await;
                    let exhausted = Outcome::PoolExhausted {
                        matched,
                        free,
                        note,
                    };
                    self.report.report(Some(&ctx.notifier), exhausted).await;
                    policy.interval
                }
                Err(PassError::Config(message)) => return Err(AgentError::Config(message)),
                Err(PassError::Kube(e)) if is_forbidden(&e) && self.denial_persists(&e) => {
                    return Err(explain_forbidden(&e))
                }
                Err(PassError::Kube(e)) if is_namespace_missing(&e) => {
                    return Err(AgentError::Config(format!(
                        "LEASE_NAMESPACE {:?} does not exist ({e}); create it or set LEASE_NAMESPACE to the DaemonSet's namespace",
                        self.settings.claims.namespace
                    )))
                }
                Err(PassError::Cloud(e)) if e.class == ErrorClass::Throttled => {
                    throttled += 1;
                    let pause = self.throttled_pause(ctx, &e, throttled).await;
                    let text = e.to_string();
                    let outcome = Outcome::Throttled { error: &text, pause };
                    self.report.report(None, outcome).await;
                    pause
                }
                Err(error) => {
                    failures += 1;
                    throttled = 0;
                    let text = error.to_string();
                    let class = match &error {
                        PassError::Cloud(e) => Some(&e.class),
                        _ => None,
                    };
                    let failed = Outcome::AttemptFailed {
                        error: &text,
                        class,
                        attempt: failures,
                    };
                    self.report.report(Some(&ctx.notifier), failed).await;
                    if policy.is_stalled_now(failures) {
                        let note = format!(
                            "{failures} attempts in a row failed (last: {error}); still trying every {}",
                            humanize(policy.interval)
                        );
                        self.show_waiting(ctx, &mut waiting_shown, "stalled", &note)
                            .await;
                        let stalled = Outcome::Stalled { error: &text, note };
                        self.report.report(Some(&ctx.notifier), stalled).await;
                    }
                    policy.after_failure(failures, error.hint(), fastrand::f64())
                }
            };
            self.maybe_give_up_taint(ctx, &mut taint_given_up).await;
            if !sleep_or_shutdown(delay, shutdown).await {
                return Ok(None);
            }
        }
    }

    /// One pass: list the pool (one cloud call answers "already mine?" and "what is
    /// free?"), then claim and attach the first candidate that is free in both places;
    /// from a partial read, fresh claims only (`agent::partial`).
    async fn pass(
        &self,
        ctx: &mut NodeContext,
        preferred: Option<IpAddr>,
        shutdown: &CancellationToken,
    ) -> Result<Pass, PassError> {
        if let Some(assigned) = self.resume_throttled(ctx).await? {
            return Ok(assigned);
        }
        let (pool, cut_short) = self.read_pool(ctx, preferred).await?;
        if cut_short.is_none() {
            self.report.report(None, Outcome::pool_seen(&pool)).await;
        }
        if let Some(mine) = held_by(&pool, &ctx.instance.id).into_iter().next() {
            let adopted = ctx.claims.ensure_held(mine.ip).await?;
            self.repair_ownership(ctx, mine).await;
            return Ok(Pass::Assigned(Box::new(Held {
                address: mine.clone(),
                claim: adopted.claim,
                adopted: true,
                taken_from: adopted.taken_from,
                record: None,
            })));
        }
        let ordered = self.settings.cloud.pool.order_by.is_some();
        let (free, cut_short) = match cut_short {
            None => {
                let free = candidates(&pool, &self.settings.node.name, ordered, preferred);
                ctx.free_seen = Some(free.len());
                if free.is_empty() {
                    return Ok(Pass::Exhausted {
                        matched: pool.len(),
                        free: 0,
                    });
                }
                (free, None)
            }
            Some(unread) => match self
                .partial_candidates(ctx, &pool, preferred, &unread)
                .await?
            {
                Some(tried) => (tried, Some(unread)),
                None => return unread.end_pass(),
            },
        };
        let instance = self.described(ctx).await?;
        let owner = self.owner(ctx);
        // Without ORDER_BY, a claim that exists is judged (a read or two) only once no
        // unclaimed candidate is left: N nodes starting together mostly meet each
        // other's fresh claims, which bind anyway. The preferred address (ours before)
        // and ORDER_BY's order are judged in turn.
        let defer_conflicts = !ordered;
        let mut conflicted = Vec::new();
        for (position, candidate) in free.iter().enumerate() {
            if shutdown.is_cancelled() {
                return Ok(Pass::Interrupted);
            }
            let judge_now = !defer_conflicts || (position == 0 && preferred == Some(candidate.ip));
            let attempt = if judge_now {
                ctx.claims.try_claim(candidate.ip).await?
            } else {
                match ctx.claims.try_create(candidate.ip).await? {
                    Some(claim) => ClaimAttempt::Claimed(claim),
                    None => {
                        self.report.report(None, Outcome::ClaimConflict).await;
                        conflicted.push(candidate);
                        continue;
                    }
                }
            };
            let claim = match attempt {
                ClaimAttempt::Claimed(claim) => claim,
                ClaimAttempt::Taken { holder } => {
                    self.report.report(None, Outcome::ClaimConflict).await;
                    debug!(address = %candidate.ip, %holder, "claimed by another node; next candidate");
                    continue;
                }
            };
            if let Some(assigned) = self
                .attach_claimed(ctx, candidate, claim, &instance, &owner)
                .await?
            {
                return Ok(assigned);
            }
        }
        // A partial read's conflicts are judged by a later pass's whole listing.
        if let Some(unread) = cut_short {
            debug!(
                read = pool.len(),
                "no address of the partial read was to be had"
            );
            return unread.end_pass();
        }
        for candidate in conflicted {
            if shutdown.is_cancelled() {
                return Ok(Pass::Interrupted);
            }
            // Its conflict was counted when the create met it.
            let claim = match ctx.claims.take_over_if_stale(candidate.ip).await? {
                ClaimAttempt::Claimed(claim) => claim,
                ClaimAttempt::Taken { holder } => {
                    debug!(address = %candidate.ip, %holder, "its claim binds; next candidate");
                    continue;
                }
            };
            if let Some(assigned) = self
                .attach_claimed(ctx, candidate, claim, &instance, &owner)
                .await?
            {
                return Ok(assigned);
            }
        }
        Ok(Pass::Exhausted {
            matched: pool.len(),
            free: free.len(),
        })
    }

    /// Attach a claimed candidate and mark the claim held: the assignment, or `None`
    /// to try the next candidate (unavailable in the cloud).
    pub(super) async fn attach_claimed(
        &self,
        ctx: &mut NodeContext,
        candidate: &PoolAddress,
        mut claim: Claim,
        instance: &Instance,
        owner: &Ownership,
    ) -> Result<Option<Pass>, PassError> {
        match self
            .attach_renewing(ctx, candidate, instance, owner, &mut claim)
            .await
        {
            Ok(()) => {
                // Beside the claim's mark and the publication, never cut off (`agent::record`).
                let record = PendingRecord::start(
                    Arc::clone(&ctx.provider),
                    candidate.clone(),
                    instance.clone(),
                    owner.clone(),
                    self.record_deferral(ctx),
                );
                let mut taken_from = None;
                match ctx.claims.mark_held(&mut claim).await {
                    Ok(()) => {}
                    // Someone took the claim over while we attached: the cloud says the
                    // address is ours, so the claim is corrected to match.
                    Err(ClaimError::Lost(_)) => {
                        let adopted = ctx.claims.ensure_held(candidate.ip).await?;
                        claim = adopted.claim;
                        taken_from = adopted.taken_from;
                    }
                    Err(ClaimError::Kube(e)) => return Err(PassError::Kube(e)),
                }
                Ok(Some(Pass::Assigned(Box::new(Held {
                    address: candidate.clone(),
                    claim,
                    adopted: false,
                    taken_from,
                    record: Some(record),
                }))))
            }
            // Refused before anything changed: the claim is kept for the next pass,
            // which tries the attach again without listing the pool (`agent::pacing`).
            Err(e) if e.class == ErrorClass::Throttled => {
                ctx.resume = Some(ThrottledAttach {
                    candidate: candidate.clone(),
                    claim,
                });
                Err(PassError::Cloud(e))
            }
            Err(e) => {
                // A fresh claim goes back, and our held claim (the address our node
                // still publishes) too if the cloud says the address is no longer to
                // be had; but never a claim on an address the cloud shows on our
                // instance. An attach can fail after the cloud attached (EC2
                // associates, then tags): the claim, which names our instance, is
                // then the only record that the address is ours, and the one a sweep
                // follows if this node vanishes before the next pass adopts it.
                let unavailable = matches!(e.class, ErrorClass::Conflict | ErrorClass::NotFound);
                let give_back = (claim.phase == Phase::Claiming || unavailable)
                    && !self.may_be_on_our_instance(ctx, candidate.ip).await;
                // A held claim is that of the address our node publishes: the
                // publication comes down first, or another node could take the address
                // and publish it while ours still does.
                if give_back
                    && (claim.phase != Phase::Held || self.withdraw_own_publication(ctx).await)
                {
                    if let Err(release_error) = ctx.claims.release(&claim).await {
                        warn!(error = %release_error, "could not release a claim after a failed attach; it expires after LEASE_DURATION");
                    }
                }
                if unavailable {
                    debug!(address = %candidate.ip, error = %e, "address unavailable in the cloud; next candidate");
                    return Ok(None);
                }
                Err(PassError::Cloud(e))
            }
        }
    }

    /// Take our node's publication of an address it no longer holds down; false if
    /// that failed (the caller tries again, and keeps the address's claim meanwhile).
    async fn withdraw_own_publication(&self, ctx: &NodeContext) -> bool {
        match ctx.publisher.clear_address().await {
            Ok(()) => {
                self.report.report(None, Outcome::PublicationCleared).await;
                true
            }
            Err(e) => {
                warn!(error = %e, "could not clear the stale publication; retrying");
                false
            }
        }
    }

    /// A node about to wait gets an ephemeral public IP if it has none; true once asked.
    async fn ensure_public_ip(&self, ctx: &mut NodeContext) -> bool {
        let instance = match self.described(ctx).await {
            Ok(instance) => instance,
            Err(e) => {
                debug!(error = %e, "could not read the instance; its public IP is checked at the next pass");
                return false;
            }
        };
        match cloud(ctx.provider.ensure_public_ip(&instance)).await {
            Ok(()) => true,
            Err(e) => {
                debug!(error = %e, "could not check the node's public IP; again at the next pass");
                false
            }
        }
    }

    /// The instance as the cloud describes it, read once per node.
    pub(super) async fn described(&self, ctx: &mut NodeContext) -> Result<Instance, ProviderError> {
        if let Some(instance) = &ctx.described {
            return Ok(instance.clone());
        }
        let described = cloud(ctx.provider.describe_instance(&ctx.instance)).await?;
        ctx.described = Some(described.clone());
        Ok(described)
    }

    /// Attach (the ownership record follows in `agent::record`) while renewing the
    /// claim, so a slow cloud does not let it expire.
    async fn attach_renewing(
        &self,
        ctx: &NodeContext,
        address: &PoolAddress,
        instance: &Instance,
        owner: &Ownership,
        claim: &mut Claim,
    ) -> Result<(), ProviderError> {
        let attach = cloud_within(
            ATTACH_TIMEOUT,
            ctx.provider.attach_unrecorded(address, instance, owner),
        );
        tokio::pin!(attach);
        let period = (self.settings.claims.duration / 3).max(Duration::from_millis(200));
        let mut renew = tokio::time::interval_at(Instant::now() + period, period);
        loop {
            tokio::select! {
                result = &mut attach => return result,
                _ = renew.tick() => {
                    if let Err(e) = ctx.claims.renew(claim).await {
                        warn!(error = %e, "could not renew the claim during attach");
                    }
                }
            }
        }
    }
}
