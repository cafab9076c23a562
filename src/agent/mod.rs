//! One agent, one node: identity → adopt or claim+attach → publish → steady state
//! → exit decision. The decisions live in `domain`; these files sequence them and do
//! the IO, one stage per file, and `report` turns what happened into telemetry.

mod acquire;
mod identify;
mod ownership;
mod pacing;
mod partial;
mod record;
mod release;
mod report;
mod steady;
mod sweep_leader;
pub mod sweeper;
mod waiting;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use pinip_providers::{
    ErrorClass, Instance, InstanceRef, PoolAddress, ProviderError, ProviderHandle,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info_span, warn, Instrument};

use crate::admin::metrics::Metrics;
use crate::admin::status::AgentStatus;
use crate::cloud::dry_run::DryRunProvider;
use crate::cloud::factory::ProviderFactory;
use crate::cloud::metered::MeteredProvider;
use crate::cluster::claim_store::{Claim, ClaimStore, WallClock};
use crate::cluster::errors::is_forbidden;
use crate::cluster::events::Notifier;
use crate::cluster::publish::{self, NodePublisher};
use crate::config::Settings;
use crate::domain::claim_record::Holder;
use crate::domain::exit_decision::{decide_on_exit, ExitDecision};
use crate::domain::retry::DenialStreak;
use report::{HowAssigned, Outcome, Reporter};
use sweeper::Sweeper;

/// A single cloud call never blocks the agent longer than this.
const CLOUD_CALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Bad configuration or an unsupported node: fix and restart (exit code 2).
    #[error("{0}")]
    Config(String),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// How the agent ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped before any address was held.
    NothingHeld,
    /// The address stays on the node (pod restart, rollout).
    Kept(IpAddr),
    Released(IpAddr),
}

/// An address this node holds: attached in the cloud and claimed in the cluster.
struct Held {
    address: PoolAddress,
    claim: Claim,
    adopted: bool,
    /// Another node whose claim on this address we replaced (the cloud shows the
    /// address on our instance): its publication of the address is stale.
    taken_from: Option<String>,
    /// The ownership record of a fresh attach, still being written.
    record: Option<record::PendingRecord>,
}

/// Everything about the node once it is known.
struct NodeContext {
    nodes: Api<Node>,
    publisher: NodePublisher,
    instance: InstanceRef,
    described: Option<Instance>,
    provider: ProviderHandle,
    claims: ClaimStore,
    notifier: Notifier,
    /// Free addresses in the last pool listing (how many agents can still compete).
    free_seen: Option<usize>,
    /// A claimed candidate whose attach the cloud throttled, tried first next pass.
    resume: Option<pacing::ThrottledAttach>,
    /// This acquisition was paced into a quota window (its record then waits for the
    /// next one: `domain::pacing::record_deferral`).
    paced_by_window: bool,
    /// This node read its part of the pool (`agent::partial`); it reads whole pools now.
    part_read: bool,
}

/// Why the steady state ended.
enum SteadyExit {
    Shutdown(Box<Option<Node>>),
    NodeDeleted,
    AddressLost,
    /// The address is still ours in the cloud, but our claim was replaced or dropped.
    ClaimLost,
}

pub struct Agent {
    settings: Arc<Settings>,
    client: kube::Client,
    providers: Arc<dyn ProviderFactory>,
    report: Reporter,
    wall_clock: Option<WallClock>,
    denials: Mutex<DenialStreak>,
    census: pacing::Census,
}

impl Agent {
    pub fn new(
        settings: Settings,
        client: kube::Client,
        providers: Arc<dyn ProviderFactory>,
    ) -> (Agent, watch::Receiver<AgentStatus>) {
        let (report, status) = Reporter::new(Arc::new(Metrics::new()));
        let agent = Agent {
            settings: Arc::new(settings),
            client,
            providers,
            report,
            wall_clock: None,
            denials: Mutex::new(DenialStreak::default()),
            census: pacing::Census::default(),
        };
        (agent, status)
    }

    /// Write claim timestamps from `clock` (a seam for tests that skew clocks: no
    /// decision compares timestamps across nodes, and the tests prove it).
    pub fn with_wall_clock(mut self, clock: WallClock) -> Agent {
        self.wall_clock = Some(clock);
        self
    }

    /// Has this 403 persisted for PERMISSION_GRACE (then it is a configuration error)?
    fn denial_persists(&self, e: &kube::Error) -> bool {
        let mut streak = self.denials.lock().unwrap_or_else(|p| p.into_inner());
        streak.persists(
            &e.to_string(),
            self.report.elapsed(),
            self.settings.permission_grace,
        )
    }

    /// The API server answered: a later 403 starts a new streak, so denials on either
    /// side of a success are not added up into one that "persisted".
    fn kube_answered(&self) {
        self.denials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The agent's metrics, for the admin server.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.report.metrics()
    }

    /// Run until `shutdown`; then keep or release the address as the node's fate says.
    pub async fn run(self, shutdown: CancellationToken) -> Result<Exit, AgentError> {
        let span = info_span!("agent", node = %self.settings.node.name);
        let result = self.run_inner(&shutdown).instrument(span).await;
        let released = match &result {
            Ok(Exit::Released(ip)) => Some(*ip),
            _ => None,
        };
        self.report
            .report(None, Outcome::Stopped { released })
            .await;
        result
    }

    async fn run_inner(&self, shutdown: &CancellationToken) -> Result<Exit, AgentError> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        loop {
            let Some((node, instance)) = self.wait_for_identity(&nodes, shutdown).await? else {
                return Ok(Exit::NothingHeld);
            };
            let mut ctx = self.node_context(&nodes, &node, instance).await?;
            let span =
                info_span!("node", instance = %ctx.instance.id, cloud = %ctx.provider.name());
            // The sweeper runs inside this task (not spawned), so it dies with the agent.
            let sweeper_stop = shutdown.child_token();
            let sweeping = self
                .sweeper(&ctx)
                .run(sweeper_stop.clone())
                .instrument(span.clone());
            let serving = async {
                let served = self
                    .serve_node(&mut ctx, node, shutdown)
                    .instrument(span)
                    .await;
                sweeper_stop.cancel();
                served
            };
            let (served, ()) = tokio::join!(serving, sweeping);
            match served {
                Ok(Some(exit)) => return Ok(exit),
                // The Node was deleted and its address released: wait for it to come back.
                Ok(None) => continue,
                Err(AgentError::Kube(e)) if is_forbidden(&e) && self.denial_persists(&e) => {
                    return Err(explain_forbidden(&e))
                }
                // A transient API failure, or a 403 that has not persisted yet (a
                // restarting API server denies for a moment): start over from the Node
                // (adoption makes that safe: what the node holds is kept), after a pause.
                Err(AgentError::Kube(e)) => {
                    warn!(error = %e, "Kubernetes API call failed; starting over from the Node");
                    if !sleep_or_shutdown(Duration::from_secs(1), shutdown).await {
                        return Ok(Exit::NothingHeld);
                    }
                    continue;
                }
                Err(config) => return Err(config),
            }
        }
    }

    /// The provider (metered inside, dry-run outside: only calls that reach the cloud
    /// are counted) and the node's Kubernetes handles.
    async fn node_context(
        &self,
        nodes: &Api<Node>,
        node: &Node,
        instance: InstanceRef,
    ) -> Result<NodeContext, AgentError> {
        let settings = &self.settings;
        let provider = self
            .providers
            .provider_for(&instance, &settings.cloud)
            .await
            .map_err(|e| AgentError::Config(e.to_string()))?;
        let provider = MeteredProvider::wrap(provider, self.metrics());
        let provider = if settings.dry_run {
            DryRunProvider::wrap(provider)
        } else {
            provider
        };
        let holder = Holder {
            node: settings.node.name.clone(),
            instance: instance.id.clone(),
            cluster: settings.node.cluster.clone(),
        };
        let mut claims = ClaimStore::new(
            self.client.clone(),
            &settings.claims,
            holder,
            settings.dry_run,
        );
        if let Some(clock) = &self.wall_clock {
            claims = claims.with_wall_clock(Arc::clone(clock));
        }
        Ok(NodeContext {
            nodes: nodes.clone(),
            publisher: NodePublisher::new(nodes.clone(), &settings.node.name, settings.dry_run),
            claims,
            notifier: self.notifier(node),
            instance,
            described: None,
            provider,
            free_seen: None,
            resume: None,
            paced_by_window: false,
            part_read: false,
        })
    }

    fn notifier(&self, node: &Node) -> Notifier {
        Notifier::new(
            self.client.clone(),
            &self.settings.node,
            self.settings.dry_run,
            node.metadata.uid.clone(),
        )
    }

    fn sweeper(&self, ctx: &NodeContext) -> Sweeper {
        Sweeper {
            leases: Api::namespaced(self.client.clone(), &self.settings.claims.namespace),
            nodes: ctx.nodes.clone(),
            provider: Arc::clone(&ctx.provider),
            home: ctx.instance.clone(),
            node_name: self.settings.node.name.clone(),
            cluster: self.settings.node.cluster.clone(),
            interval: self.settings.sweep_interval,
            metrics: self.metrics(),
            dry_run: self.settings.dry_run,
            release_on_exit: self.settings.release.on_exit,
        }
    }

    /// Serve one node identity until shutdown (Some) or the Node's deletion (None).
    async fn serve_node(
        &self,
        ctx: &mut NodeContext,
        mut node: Node,
        shutdown: &CancellationToken,
    ) -> Result<Option<Exit>, AgentError> {
        // After a restart, the address the node still shows is tried first.
        let mut preferred: Option<IpAddr> = publish::published_address(&node);
        let mut first_assignment = true;
        loop {
            let Some(mut held) = self.acquire(ctx, preferred, shutdown).await? else {
                // Stopped while (re-)acquiring: every claim stays. The one on the address
                // the node still publishes reserves it for the next agent; one whose
                // attach failed half-way may be the only record of an address already on
                // our instance. The next agent drops what it does not hold, a sweep does
                // if the node is gone, and a `claiming` claim expires after LEASE_DURATION
                // (docs/design.md, "stopped while acquiring").
                return Ok(Some(Exit::NothingHeld));
            };
            let address = held.address.ip;
            let span = info_span!("address", %address);
            let mut record = held.record.take();
            let outcome = async {
                let published = self.publish(ctx, &held, &node).await;
                // Nothing else happens to the address before its record is written.
                if published.is_err() {
                    if let Some(record) = record.take() {
                        self.finish_record(ctx, record, shutdown).await;
                    }
                }
                published?;
                let how = match (held.adopted, preferred) {
                    (true, _) => HowAssigned::Adopted,
                    (false, Some(previous)) if previous == address => HowAssigned::Reattached,
                    (false, _) => HowAssigned::Claimed,
                };
                let assigned = Outcome::Assigned {
                    address,
                    instance: &ctx.instance.id,
                    how,
                    first: first_assignment,
                };
                self.report.report(Some(&ctx.notifier), assigned).await;
                first_assignment = false;
                if let Some(record) = record {
                    self.finish_record(ctx, record, shutdown).await;
                }
                self.steady_state(ctx, &held, node.clone(), shutdown).await
            }
            .instrument(span.clone())
            .await?;
            match outcome {
                SteadyExit::Shutdown(last_seen) => {
                    let exit = self
                        .on_shutdown(ctx, &held, *last_seen)
                        .instrument(span)
                        .await;
                    return Ok(Some(exit));
                }
                SteadyExit::NodeDeleted => {
                    match decide_on_exit(self.settings.release.on_exit, None) {
                        ExitDecision::Release(why) => {
                            self.release(ctx, &held, &why).instrument(span).await
                        }
                        ExitDecision::Keep(why) => {
                            self.report
                                .report(None, Outcome::KeptAfterNodeDeletion { why: &why })
                                .await
                        }
                    }
                    return Ok(None);
                }
                SteadyExit::ClaimLost => {
                    self.report
                        .report(None, Outcome::ClaimLost { address })
                        .await;
                    preferred = Some(address);
                    node = ctx.nodes.get(&self.settings.node.name).await?;
                }
                SteadyExit::AddressLost => {
                    let lost = Outcome::AddressLost {
                        address,
                        instance: &ctx.instance.id,
                    };
                    self.report.report(Some(&ctx.notifier), lost).await;
                    preferred = Some(address);
                    node = ctx.nodes.get(&self.settings.node.name).await?;
                }
            }
        }
    }

    /// Put the held address on the Node, then drop every other claim of ours.
    async fn publish(&self, ctx: &NodeContext, held: &Held, node: &Node) -> Result<(), AgentError> {
        let address = held.address.ip;
        if let Some(previous) = &held.taken_from {
            self.withdraw_stale_publication(ctx, previous, &address)
                .await;
        }
        if !publish::is_published(node, &address) {
            ctx.publisher.publish_address(&address).await?;
        }
        // Only now: until the node shows its new address, the old one stays claimed,
        // so no other node can take it while this node still publishes it.
        if let Err(e) = ctx.claims.release_leftovers(Some(address)).await {
            warn!(error = %e, "could not drop leftover claims; retried on the next assignment");
        }
        Ok(())
    }

    /// The cloud shows `address` on our instance and we replaced `previous`'s claim on it:
    /// take the address off that node's publication before ours goes up.
    async fn withdraw_stale_publication(
        &self,
        ctx: &NodeContext,
        previous: &str,
        address: &IpAddr,
    ) {
        match publish::withdraw_stale(&ctx.nodes, previous, address, self.settings.dry_run).await {
            Ok(true) => {
                tracing::info!(previous_holder = %previous, "withdrew the address from the node that published it before")
            }
            Ok(false) => {}
            Err(e) => {
                warn!(previous_holder = %previous, error = %e, "could not withdraw the stale publication of the previous holder; its agent drops it at its next verification")
            }
        }
    }
}

/// A 403 that persisted for PERMISSION_GRACE is a deployment problem: say what to grant.
fn explain_forbidden(e: &kube::Error) -> AgentError {
    AgentError::Config(format!(
        "the Kubernetes API kept refusing a call for PERMISSION_GRACE: {e}; apply the RBAC of deploy/base/rbac.yaml or the Helm chart ({})",
        crate::cluster::permissions::summary()
    ))
}

/// A cloud call with a deadline; a call that hangs becomes a transient error.
async fn cloud<T>(
    call: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    cloud_within(CLOUD_CALL_TIMEOUT, call).await
}

/// [`cloud`] with a deadline of its own.
async fn cloud_within<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::new(
            ErrorClass::Transient,
            "cloud call",
            format!("no answer within {deadline:?}"),
        )),
    }
}

/// Sleep unless shutdown comes first; false means shutdown.
async fn sleep_or_shutdown(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}
