//! The cloud's ownership record of an address (tags, labels): who we are, and mending
//! a record that does not name us.

use pinip_providers::{Ownership, PoolAddress};
use tracing::{info, warn};

use super::{cloud, Agent, NodeContext};

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
}
