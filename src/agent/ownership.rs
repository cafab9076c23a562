//! The cloud's ownership record of an address (tags, labels): who we are, mending a
//! record that does not name us, and whether a failed attach may have made it ours.

use std::net::IpAddr;

use pinip_providers::{Ownership, PoolAddress};
use tracing::{debug, info, warn};

use super::report::Outcome;
use super::{cloud, Agent, NodeContext};
use crate::domain::selection::held_by;

impl Agent {
    /// Who we are, as the cloud's ownership record should say.
    pub(super) fn owner(&self, ctx: &NodeContext) -> Ownership {
        Ownership {
            cluster: self.settings.node.cluster.clone(),
            node: self.settings.node.name.clone(),
            instance: ctx.instance.id.clone(),
        }
    }

    /// Correct an ownership record that does not name this node: a tag/label write that
    /// failed after the attach, or an address attached before pinip ran. Attach is
    /// idempotent on our own instance and records the owner; one cloud write, only then.
    pub(super) async fn repair_ownership(&self, ctx: &NodeContext, address: &PoolAddress) {
        let owner = self.owner(ctx);
        if address.owner.as_ref() == Some(&owner) {
            return;
        }
        let instance = match &ctx.described {
            Some(instance) => instance.clone(),
            None => match cloud(ctx.provider.describe_instance(&ctx.instance)).await {
                Ok(instance) => instance,
                Err(e) => {
                    warn!(error = %e, "could not read the instance to correct the ownership record; retried at the next verification");
                    return;
                }
            },
        };
        match cloud(ctx.provider.attach(address, &instance, &owner)).await {
            Ok(()) => {
                info!(address = %address.ip, previous_owner = ?address.owner, "ownership record corrected")
            }
            Err(e) => {
                warn!(address = %address.ip, error = %e, "could not correct the ownership record; retried at the next verification")
            }
        }
    }

    /// After a failed attach: could the cloud have attached `address` to us anyway?
    /// True unless a fresh read says it did not.
    pub(super) async fn may_be_on_our_instance(&self, ctx: &NodeContext, address: IpAddr) -> bool {
        match cloud(ctx.provider.list_pool()).await {
            Ok(pool) => {
                self.report.report(None, Outcome::pool_seen(&pool)).await;
                held_by(&pool, &ctx.instance.id)
                    .iter()
                    .any(|held| held.ip == address)
            }
            Err(e) => {
                debug!(%address, error = %e, "could not re-read the pool after a failed attach; keeping the claim");
                true
            }
        }
    }
}
