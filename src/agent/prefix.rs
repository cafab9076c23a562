//! What a node does with a pool listing that a rate limit cut short. Compute serves 500
//! addresses a page: a thousand nodes starting together each read the first page of a
//! pool of 1 100, and the list quota then refuses most of the second and third pages
//! until the window turns. Waiting for them left two thirds of the window's mutations
//! unspent and the next window short of them (docs/design.md, "Why Compute's quota
//! windows are harder"); a node that can take a free address from the pages it read
//! does, and waits only when an unread page could matter
//! (`domain::selection::prefix_choice`).

use std::net::IpAddr;

use pinip_providers::{AssignmentRateLimit, PoolAddress};
use tracing::debug;

use super::{Agent, NodeContext};
use crate::domain::selection::{prefix_choice, PrefixChoice};

impl Agent {
    /// The free addresses of `read` this node tries (fresh claims only, in `pass`), or
    /// None to wait for the rest of the pool.
    pub(super) async fn prefix_candidates<'a>(
        &self,
        ctx: &mut NodeContext,
        read: &'a [PoolAddress],
        preferred: Option<IpAddr>,
    ) -> Option<Vec<&'a PoolAddress>> {
        let ordered = self.settings.cloud.pool.order_by.is_some();
        // Our own claims, by the holder label (one request), for a node that could take
        // from the pages otherwise: one that holds a claim is a restart, whose address
        // may be on a page not read.
        let holds_claim = !ordered
            && preferred.is_none()
            && match ctx.claims.list_mine().await {
                Ok(mine) => !mine.is_empty(),
                Err(e) => {
                    debug!(error = %e, "could not list our claims; waiting for the whole pool");
                    true
                }
            };
        let name = &self.settings.node.name;
        match prefix_choice(read, name, ordered, holds_claim, preferred.is_some()) {
            PrefixChoice::Try(tried) => {
                // The refusal says the window is spent or nearly: the record of an attach
                // made now waits for its turn, as a paced one's does, leaving this
                // window's last mutations to the swaps of peers that read the same page.
                ctx.paced_by_window |= matches!(
                    ctx.provider.assignment_rate_limit(),
                    Some(AssignmentRateLimit::Window { .. })
                );
                Some(tried)
            }
            PrefixChoice::Wait(why) => {
                debug!(
                    read = read.len(),
                    why, "the pool listing was cut short; waiting for the rest"
                );
                None
            }
        }
    }
}
