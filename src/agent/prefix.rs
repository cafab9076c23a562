//! A pass over a pool listing that a rate limit cut short. Compute serves 500 addresses
//! a page: a thousand nodes starting together each read the first page of a pool of
//! 1 100, and the list quota then refuses most of the second and third pages until the
//! window turns. Waiting for them left two thirds of the window's mutations unspent and
//! the next window short of them (docs/design.md, "Why Compute's quota windows are
//! harder"); a node that can take a free address from the pages it read does, and waits
//! only when an unread page could matter (`domain::selection::prefix_choice`).

use std::net::IpAddr;

use pinip_providers::{AssignmentRateLimit, PoolAddress, ProviderError};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::acquire::{Pass, PassError};
use super::report::Outcome;
use super::{Agent, NodeContext};
use crate::domain::selection::{prefix_choice, PrefixChoice};

impl Agent {
    /// Claim and attach one of the first few free addresses of `read`, or give the
    /// listing's `refusal` back to wait for the rest of the pool as before.
    pub(super) async fn pass_on_prefix(
        &self,
        ctx: &mut NodeContext,
        read: &[PoolAddress],
        refusal: ProviderError,
        preferred: Option<IpAddr>,
        shutdown: &CancellationToken,
    ) -> Result<Pass, PassError> {
        let ordered = self.settings.cloud.pool.order_by.is_some();
        // Our own claims, by the holder label (one request): a node that holds one is
        // a restart, whose address may be on a page not read.
        let holds_claim = match ctx.claims.list_mine().await {
            Ok(mine) => !mine.is_empty(),
            Err(e) => {
                debug!(error = %e, "could not list our claims; waiting for the whole pool");
                true
            }
        };
        let choice = prefix_choice(
            read,
            &self.settings.node.name,
            ordered,
            holds_claim,
            preferred.is_some(),
        );
        let tried = match choice {
            PrefixChoice::Try(tried) => tried,
            PrefixChoice::Wait(why) => {
                debug!(
                    read = read.len(),
                    why, "the pool listing was cut short; waiting for the rest"
                );
                return Err(PassError::Cloud(refusal));
            }
        };
        let instance = self.described(ctx).await?;
        let owner = self.owner(ctx);
        // The refusal says the window is spent or nearly: the record of an attach made
        // now waits for its turn, as a paced one's does, leaving this window's last
        // mutations to the swaps of peers that read the same page.
        ctx.paced_by_window |= matches!(
            ctx.provider.assignment_rate_limit(),
            Some(AssignmentRateLimit::Window { .. })
        );
        for candidate in tried {
            if shutdown.is_cancelled() {
                return Ok(Pass::Interrupted);
            }
            // Only fresh claims: a claim met here was most likely made a moment ago by a
            // peer reading the same page, and binds; judging it is the whole listing's job.
            let Some(claim) = ctx.claims.try_create(candidate.ip).await? else {
                self.report.report(None, Outcome::ClaimConflict).await;
                continue;
            };
            if let Some(assigned) = self
                .attach_claimed(ctx, candidate, claim, &instance, &owner)
                .await?
            {
                return Ok(assigned);
            }
        }
        debug!(
            read = read.len(),
            "no address of the pages read was to be had; waiting for the rest"
        );
        Err(PassError::Cloud(refusal))
    }
}
