//! The end of a node's tenure: on SIGTERM decide (pure `decide_on_exit`) whether the
//! address goes with the node, and if so detach it, drop the claim and clear the
//! publication within RELEASE_TIMEOUT.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use pinip_providers::ProviderError;
use tracing::{info, warn};

use super::report::Outcome;
use super::{cloud, Agent, Exit, Held, NodeContext};
use crate::domain::exit_decision::{decide_on_exit, ExitDecision, Reason};
use crate::domain::retry::Backoff;

/// A release step that failed; every step is idempotent, so a later release (the agent
/// restarted on this node, or a sweep) finishes what this one could not.
#[derive(Debug, thiserror::Error)]
enum ReleaseError {
    #[error("detach failed: {0}")]
    Detach(ProviderError),
    #[error("could not drop the claim: {0}")]
    Claim(kube::Error),
    #[error("could not clear the Node's publication: {0}")]
    Publication(kube::Error),
    #[error("did not finish within RELEASE_TIMEOUT ({0:?})")]
    Timeout(Duration),
}

impl Agent {
    pub(super) async fn on_shutdown(
        &self,
        ctx: &NodeContext,
        held: &Held,
        last_seen: Option<Node>,
    ) -> Exit {
        let address = held.address.ip;
        // A fresh read: the watch may lag behind a deletion that caused the SIGTERM.
        let node = match tokio::time::timeout(
            Duration::from_secs(5),
            ctx.nodes.get_opt(&self.settings.node.name),
        )
        .await
        {
            Ok(Ok(node)) => node,
            _ => {
                warn!("could not read the Node on exit; deciding from the last state seen");
                last_seen
            }
        };
        match decide_on_exit(self.settings.release.on_exit, node.as_ref()) {
            ExitDecision::Keep(why) => {
                let kept = Outcome::Kept {
                    address,
                    instance: &ctx.instance.id,
                    why: &why,
                };
                self.report.report(Some(&ctx.notifier), kept).await;
                Exit::Kept(address)
            }
            ExitDecision::Release(why) => {
                self.release(ctx, held, &why).await;
                Exit::Released(address)
            }
        }
    }

    /// Detach, drop the claim, clear the publication; bounded by RELEASE_TIMEOUT.
    pub(super) async fn release(&self, ctx: &NodeContext, held: &Held, why: &Reason) {
        self.report.report(None, Outcome::Releasing).await;
        info!(%why, "releasing the address");
        let timeout = self.settings.release.timeout;
        let result = match tokio::time::timeout(timeout, self.release_steps(ctx, held)).await {
            Ok(result) => result,
            Err(_) => Err(ReleaseError::Timeout(timeout)),
        };
        let outcome = match result {
            Ok(()) => Outcome::Released {
                address: held.address.ip,
                instance: &ctx.instance.id,
                why,
            },
            Err(e) => Outcome::ReleaseFailed {
                why,
                error: format!(
                    "release failed: {e}; every step is idempotent, so a later release finishes it"
                ),
            },
        };
        self.report.report(Some(&ctx.notifier), outcome).await;
    }

    async fn release_steps(&self, ctx: &NodeContext, held: &Held) -> Result<(), ReleaseError> {
        let mut delays = Backoff::RELEASE_STEP.delays();
        loop {
            match cloud(ctx.provider.detach(&held.address, &ctx.instance)).await {
                Ok(()) => break,
                Err(e) if e.is_retryable() => match delays.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(ReleaseError::Detach(e)),
                },
                Err(e) => return Err(ReleaseError::Detach(e)),
            }
        }
        ctx.claims
            .release(&held.claim)
            .await
            .map_err(ReleaseError::Claim)?;
        ctx.publisher
            .clear_address()
            .await
            .map_err(ReleaseError::Publication)?;
        Ok(())
    }
}
