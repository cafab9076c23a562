//! The steady state: nothing to do but watch the own Node (no cloud calls), check the
//! cloud every VERIFY_INTERVAL, restore a removed publication while the claim is ours,
//! and lift the startup taint once the node reports the address.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::{watcher, WatchStreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::report::Outcome;
use super::{cloud, Agent, AgentError, Held, NodeContext, SteadyExit};
use crate::cluster::publish;
use crate::domain::selection::held_by;

impl Agent {
    pub(super) async fn steady_state(
        &self,
        ctx: &NodeContext,
        held: &Held,
        node: Node,
        shutdown: &CancellationToken,
    ) -> Result<SteadyExit, AgentError> {
        let name = self.settings.node.name.clone();
        let address = held.address.ip;
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut node_events = watcher(ctx.nodes.clone(), config).default_backoff().boxed();
        let verify_every = self.settings.verify_interval;
        let mut verify = tokio::time::interval_at(Instant::now() + verify_every, verify_every);
        let taint_key = self
            .settings
            .taint
            .key
            .clone()
            .filter(|key| publish::has_taint(&node, key));
        let taint_deadline = Instant::now() + self.settings.taint.wait;
        let mut taint_pending = taint_key.is_some();
        let mut last_seen = Some(node);
        let mut seen_in_relist = true;
        loop {
            if let (true, Some(key), Some(current)) = (taint_pending, &taint_key, &last_seen) {
                let reported = publish::reports_address(current, &address);
                if reported || Instant::now() >= taint_deadline {
                    if ctx.publisher.remove_taint(key).await? {
                        let how = if reported {
                            "the node reports the address"
                        } else {
                            "the node did not report the address within TAINT_WAIT"
                        };
                        let removed = Outcome::TaintRemoved { key, how };
                        self.report.report(Some(&ctx.notifier), removed).await;
                    }
                    taint_pending = false;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(SteadyExit::Shutdown(Box::new(last_seen))),
                _ = tokio::time::sleep_until(taint_deadline), if taint_pending => {}
                event = node_events.next() => match event {
                    Some(Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n))) => {
                        seen_in_relist = true;
                        if !publish::is_published(&n, &address) {
                            // Only while the claim is ours: a node that took the address
                            // over withdrew this publication, and it must stay withdrawn.
                            if !ctx.claims.is_ours(&held.claim).await? {
                                return Ok(SteadyExit::ClaimLost);
                            }
                            info!("node publication missing; restoring it");
                            ctx.publisher.publish_address(&address).await?;
                            // Checked again after the write: a takeover that fell between
                            // the check and the write would otherwise leave our
                            // publication up until the next verification.
                            if !ctx.claims.is_ours(&held.claim).await? {
                                ctx.publisher.clear_address().await?;
                                return Ok(SteadyExit::ClaimLost);
                            }
                        }
                        last_seen = Some(n);
                    }
                    Some(Ok(watcher::Event::Delete(_))) => return Ok(SteadyExit::NodeDeleted),
                    Some(Ok(watcher::Event::Init)) => seen_in_relist = false,
                    // A (re)list that did not contain the node means it is gone.
                    Some(Ok(watcher::Event::InitDone)) if !seen_in_relist => return Ok(SteadyExit::NodeDeleted),
                    Some(Ok(watcher::Event::InitDone)) => {}
                    Some(Err(e)) => debug!(error = %e, "node watch interrupted; it resumes by itself"),
                    None => return Ok(SteadyExit::Shutdown(Box::new(last_seen))),
                },
                _ = verify.tick(), if !self.settings.dry_run => {
                    if let Some(exit) = self.verify(ctx, held).await {
                        return Ok(exit);
                    }
                }
            }
        }
    }

    /// One verification: the address is still on our instance in the cloud, and its
    /// claim is still ours (an address held without its claim could be claimed, and
    /// once detached published, by another node). None: all is well, or unknown.
    async fn verify(&self, ctx: &NodeContext, held: &Held) -> Option<SteadyExit> {
        let address = held.address.ip;
        let pool = match cloud(ctx.provider.list_pool()).await {
            Ok(pool) => {
                self.report.report(None, Outcome::pool_seen(&pool)).await;
                pool
            }
            Err(e) => {
                warn!(error = %e, "could not verify the attachment; will check again");
                return None;
            }
        };
        if !held_by(&pool, &ctx.instance.id)
            .iter()
            .any(|a| a.ip == address)
        {
            return Some(SteadyExit::AddressLost);
        }
        debug!("attachment verified");
        if let Some(listed) = pool.iter().find(|a| a.ip == address) {
            self.repair_ownership(ctx, listed).await;
        }
        match ctx.claims.is_ours(&held.claim).await {
            Ok(true) => None,
            Ok(false) => Some(SteadyExit::ClaimLost),
            Err(e) => {
                warn!(error = %e, "could not check the claim; will check again");
                None
            }
        }
    }
}
