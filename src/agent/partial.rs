//! Reading the pool, and what a node does with less than the whole of it.
//!
//! - A **prefix**: Compute serves 500 addresses a page; a thousand nodes starting
//!   together each read the first page of a pool of 1 100, and the list quota then
//!   refuses most of the later pages until the window turns. A node that can take a
//!   free address from the pages it read does, and waits only when an unread page could
//!   matter (`domain::selection::prefix_choice`; docs/design.md, "Why Compute's quota
//!   windows are harder").
//! - A **part**: in a large cluster a fresh node reads first the part of the pool its
//!   name picks, server-side, and reads the rest only when the part does not settle it
//!   (`domain::pool_part`; docs/design.md, "Pool parts").

use std::net::IpAddr;

use pinip_providers::{AssignmentRateLimit, PoolAddress, PoolRead, ProviderError};
use tracing::debug;

use super::acquire::{Pass, PassError};
use super::{cloud, Agent, NodeContext};
use crate::domain::pool_part::{carried_outside, first_part, part_choice};
use crate::domain::selection::{prefix_choice, PartialChoice};

/// What a pass did not read of the pool.
pub(super) enum Unread {
    /// A rate limit refused the rest: wait for it, as for any throttled call.
    Refused(ProviderError),
    /// The rest of the pool, outside the node's part: read it now.
    OutsidePart,
}

impl Unread {
    /// How a pass ends whose partial read settled nothing.
    pub(super) fn end_pass(self) -> Result<Pass, PassError> {
        match self {
            Unread::Refused(refusal) => Err(PassError::Cloud(refusal)),
            Unread::OutsidePart => Ok(Pass::ReadWhole),
        }
    }
}

impl Agent {
    /// The pool, and on a node's first pass the instance too, read side by side: the
    /// two reads do not depend on each other and both stand before the first attach.
    /// A failed describe is left to `described`, which reads again when it is needed.
    /// Split into what was read and what was not.
    pub(super) async fn read_pool(
        &self,
        ctx: &mut NodeContext,
        preferred: Option<IpAddr>,
    ) -> Result<(Vec<PoolAddress>, Option<Unread>), ProviderError> {
        let read = if ctx.described.is_some() {
            self.pool_read(ctx, preferred).await
        } else {
            let (pool, described) = tokio::join!(
                self.pool_read(ctx, preferred),
                cloud(ctx.provider.describe_instance(&ctx.instance))
            );
            match described {
                Ok(instance) => ctx.described = Some(instance),
                Err(e) => {
                    debug!(error = %e, "could not describe the instance yet; read again when needed")
                }
            }
            pool
        }?;
        Ok(match read {
            PoolRead::Whole(pool) => (pool, None),
            PoolRead::Prefix { addresses, refusal } => (addresses, Some(Unread::Refused(refusal))),
            PoolRead::Part(addresses) => {
                ctx.part_read = true;
                (addresses, Some(Unread::OutsidePart))
            }
        })
    }

    /// The node's part of the pool while it may take one (fresh, without `ORDER_BY`,
    /// in a cluster large enough: `domain::pool_part::first_part`), else the pool.
    async fn pool_read(
        &self,
        ctx: &NodeContext,
        preferred: Option<IpAddr>,
    ) -> Result<PoolRead, ProviderError> {
        let fresh = !ctx.part_read
            && preferred.is_none()
            && self.settings.cloud.pool.order_by.is_none()
            && ctx.provider.reads_pool_parts();
        let part = match fresh {
            true => first_part(&self.settings.node.name, self.node_count().await),
            false => None,
        };
        match part {
            Some(part) => cloud(ctx.provider.list_pool_part(&part)).await,
            None => cloud(ctx.provider.list_pool_prefix()).await,
        }
    }

    /// The free addresses of a partial `read` this node tries (fresh claims only, in
    /// `pass`), or None when what was not read could matter.
    pub(super) async fn partial_candidates<'a>(
        &self,
        ctx: &mut NodeContext,
        read: &'a [PoolAddress],
        preferred: Option<IpAddr>,
        unread: &Unread,
    ) -> Result<Option<Vec<&'a PoolAddress>>, PassError> {
        let ordered = self.settings.cloud.pool.order_by.is_some();
        let name = &self.settings.node.name;
        let choice = match unread {
            Unread::Refused(_) => {
                let holds_claim = !ordered && preferred.is_none() && self.holds_claim(ctx).await;
                prefix_choice(read, name, ordered, holds_claim, preferred.is_some())
            }
            Unread::OutsidePart => {
                let instance = self.described(ctx).await?;
                let outside = carried_outside(&instance.reserved_ips, read);
                let holds_claim = preferred.is_none() && !outside && self.holds_claim(ctx).await;
                part_choice(read, name, holds_claim, preferred.is_some(), outside)
            }
        };
        match choice {
            PartialChoice::Try(tried) => {
                // A refusal says the window is spent or nearly: the record of an attach
                // made now waits for its turn, as a paced one's does, leaving this
                // window's last mutations to the swaps of peers that read the same page.
                ctx.paced_by_window |= matches!(unread, Unread::Refused(_))
                    && matches!(
                        ctx.provider.assignment_rate_limit(),
                        Some(AssignmentRateLimit::Window { .. })
                    );
                Ok(Some(tried))
            }
            PartialChoice::Decline(why) => {
                debug!(
                    read = read.len(),
                    why, "a partial pool read does not settle the node"
                );
                Ok(None)
            }
        }
    }

    /// Whether this node holds a claim (one request, by the holder label): a restart,
    /// whose address may be among the addresses not read.
    async fn holds_claim(&self, ctx: &NodeContext) -> bool {
        match ctx.claims.list_mine().await {
            Ok(mine) => !mine.is_empty(),
            Err(e) => {
                debug!(error = %e, "could not list our claims; reading the whole pool");
                true
            }
        }
    }
}
